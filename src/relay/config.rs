//! The relay's config file (TOML), rendered by vds-proxy from `src/roles/routes/templates/relay.toml.j2`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The whole config: global settings and one `[[route]]` per listener.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Prometheus text endpoint, e.g. `127.0.0.1:9901`; off when absent.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
    /// How long SIGTERM waits for open connections before exiting.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

/// How a route picks among its upstreams.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// The first healthy upstream, in order.
    #[default]
    Failover,
    /// Each connection starts at the next upstream.
    RoundRobin,
}

/// PROXY protocol version sent to upstreams.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProxyVersion {
    V1,
    V2,
}

/// One listener and where its connections go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub listen: SocketAddr,
    /// Upstream `address:port`s.
    pub upstreams: Vec<SocketAddr>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// A connection with no traffic either way for this long is closed; 0 = never.
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connections beyond this are closed at once and counted as refused.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// TCP keepalive idle time on both sockets; 0 = off.
    #[serde(default = "defaults::keepalive_secs")]
    pub keepalive_secs: u64,
    /// Send a PROXY protocol header of this version to the upstream.
    #[serde(default)]
    pub send_proxy: Option<ProxyVersion>,
    /// Expect a PROXY protocol header (v1 or v2) from the client (a front balancer).
    #[serde(default)]
    pub accept_proxy: bool,
    /// An upstream that refused or timed out is skipped for this long.
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: u64,
    /// Active TCP health checks of every upstream at this interval; 0 = off.
    #[serde(default)]
    pub check_interval_ms: u64,
    /// What the route logs: every connection (default), only failures, or nothing.
    #[serde(default)]
    pub log: LogLevel,
}

/// How much a route logs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// One line per connection, and every failure.
    #[default]
    All,
    /// Only failures (an upstream that cannot be reached, a bad PROXY header, I/O errors).
    Errors,
    /// Nothing.
    Off,
}

impl LogLevel {
    /// Whether each connection gets its line.
    pub fn all(self) -> bool {
        self == LogLevel::All
    }

    /// Whether failures are logged.
    pub fn errors(self) -> bool {
        self != LogLevel::Off
    }
}

impl RouteConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_ms > 0).then(|| Duration::from_millis(self.idle_timeout_ms))
    }
    pub fn backoff(&self) -> Duration {
        Duration::from_millis(self.backoff_ms)
    }
}

mod defaults {
    pub fn drain_timeout_ms() -> u64 {
        30_000
    }
    pub fn connect_timeout_ms() -> u64 {
        5_000
    }
    pub fn idle_timeout_ms() -> u64 {
        3_600_000
    }
    pub fn max_connections() -> usize {
        20_000
    }
    pub fn keepalive_secs() -> u64 {
        60
    }
    pub fn backoff_ms() -> u64 {
        10_000
    }
}

/// Parses a config text; `origin` names it in messages.
pub fn parse(origin: &str, text: &str) -> Result<Config> {
    let cfg: Config = toml::from_str(text).with_context(|| format!("parsing {origin}"))?;
    let mut seen = std::collections::BTreeSet::new();
    for r in &cfg.routes {
        if r.upstreams.is_empty() {
            bail!("{origin}: route {} has no upstreams", r.name);
        }
        if r.max_connections == 0 {
            bail!(
                "{origin}: route {}: max_connections must be at least 1",
                r.name
            );
        }
        if !seen.insert(r.listen) {
            bail!("{origin}: two routes listen on {}", r.listen);
        }
    }
    Ok(cfg)
}

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = parse(
            "t",
            "[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\nupstreams = [\"127.0.0.1:2\"]\n",
        )
        .unwrap();
        assert_eq!(c.routes[0].balance, Balance::Failover);
        assert_eq!(c.routes[0].max_connections, 20_000);
        assert_eq!(c.routes[0].send_proxy, None);
        let e = parse(
            "t",
            "[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\nupstreams = []\n",
        );
        assert!(e.unwrap_err().to_string().contains("no upstreams"));
        let e = parse(
            "t",
            "[[route]]\nname = \"a\"\nlisten = \"nope\"\nupstreams = []\n",
        );
        assert!(format!("{:#}", e.unwrap_err()).contains("invalid socket address"));
    }
}
