//! End-to-end probes: a TCP connection to a public port must reach what is behind it.
//!
//! A proxy accepts the connection even when its target is down, then closes it at once.
//! So a probe connects, then waits briefly: a connection that stays open or yields data went
//! through; one closed straight away with no data did not.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::gather::{LIBRARY, call};
use crate::transport::Transport;

/// How long a probe waits for the connection, and then for an early close.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A proxy that cannot reach its target closes well within this.
pub const CLOSE_WINDOW: Duration = Duration::from_millis(700);

/// Result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Reached,
    Failed(String),
}

/// Probes `host:port` from the machine vds-proxy runs on.
pub async fn from_here(host: &str, port: u16) -> ProbeResult {
    let addr = format!("{host}:{port}");
    let mut s = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Err(_) => return ProbeResult::Failed(format!("connect to {addr} timed out")),
        Ok(Err(e)) => return ProbeResult::Failed(format!("connect to {addr}: {e}")),
        Ok(Ok(s)) => s,
    };
    let mut buf = [0u8; 64];
    match tokio::time::timeout(CLOSE_WINDOW, s.read(&mut buf)).await {
        Err(_) => ProbeResult::Reached,
        Ok(Ok(0)) => ProbeResult::Failed(format!(
            "{addr} accepted and closed at once: the proxy cannot reach its target"
        )),
        Ok(Ok(_)) => ProbeResult::Reached,
        Ok(Err(e)) => ProbeResult::Failed(format!("{addr}: {e}")),
    }
}

/// Probes `host:port` from another host, with bash's `/dev/tcp`.
pub async fn from_host(t: &dyn Transport, host: &str, port: u16) -> ProbeResult {
    let script = format!("{LIBRARY}{}", call("probe", [host, &port.to_string()]));
    match t.run(&script).await {
        Err(e) => ProbeResult::Failed(e.to_string()),
        Ok(out) => match out.stdout.trim().strip_prefix("@probe ") {
            Some("0") => ProbeResult::Reached,
            Some("4") => ProbeResult::Failed(format!(
                "{host}:{port} accepted and closed at once: the proxy cannot reach its target"
            )),
            Some(code) => ProbeResult::Failed(format!(
                "{host}:{port} not reachable from {} (exit {code})",
                t.label()
            )),
            None => ProbeResult::Failed(format!(
                "probe from {} failed: {}",
                t.label(),
                out.stderr.trim()
            )),
        },
    }
}
