//! The bundled node registry and farm discovery API (`vds-proxy serve --config FILE`): the
//! inventory's nodes (`GET /v1/web/nodes`), farms that register and send heartbeats
//! (`/api/farms`), bearer tokens with roles, kept in SQLite (see [`api`] for the routes).
//!
//! Lifecycle as the relay's: systemd readiness (`Type=notify`), SIGHUP re-reads the config
//! (tokens, nodes, limits; a new listen address is bound before the old one closes; a bad
//! config is logged and the old one keeps serving), SIGTERM stops accepting and lets the
//! requests in progress finish.

pub mod api;
pub mod auth;
pub mod config;
pub mod metrics;
pub mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use api::Shared;
use config::Config;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the registry with the config at `path` until SIGTERM/SIGINT.
pub fn run(path: &Path) -> Result<()> {
    let cfg = config::load(path)?;
    let store = store::Store::open(&cfg.database)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(serve(path, cfg, store));
    crate::relay::log::flush(Duration::from_secs(1));
    res
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

async fn serve(path: &Path, cfg: Config, store: store::Store) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut listen = cfg.listen;
    let mut listener = bind(listen).await?;
    let mut drain = Duration::from_millis(cfg.drain_timeout_ms);
    let shared = Arc::new(Shared::new(cfg, store));
    let graceful = GracefulShutdown::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    crate::relay::notify("READY=1");
    crate::relay_log!("registry: serving on {listen}");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        crate::relay_log!("registry: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = shared.clone();
                let service = service_fn(move |req| api::handle(shared.clone(), peer, req));
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = hup.recv() => {
                crate::relay::notify("RELOADING=1");
                match reload(path, listen).await {
                    Ok((cfg, new_listener)) => {
                        if let Some(l) = new_listener {
                            listener = l;
                            listen = cfg.listen;
                        }
                        drain = Duration::from_millis(cfg.drain_timeout_ms);
                        shared.swap(cfg);
                        shared.metrics.reloads.fetch_add(1, Relaxed);
                        crate::relay_log!("registry: reloaded, serving on {listen}");
                    }
                    Err(e) => {
                        shared.metrics.reload_failures.fetch_add(1, Relaxed);
                        crate::relay_log!("registry: reload rejected, the previous config keeps serving: {e:#}");
                    }
                }
                crate::relay::notify("READY=1");
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    crate::relay::notify("STOPPING=1");
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        crate::relay_log!("registry: stopped with requests still in progress");
    } else {
        crate::relay_log!("registry: stopped");
    }
    Ok(())
}

/// Reads the config again; binds its listen address first when it changed, so a config
/// that cannot be served changes nothing.
async fn reload(path: &Path, listen: SocketAddr) -> Result<(Config, Option<TcpListener>)> {
    let cfg = config::load(path)?;
    let listener = if cfg.listen != listen {
        Some(bind(cfg.listen).await?)
    } else {
        None
    };
    Ok((cfg, listener))
}
