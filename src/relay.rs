//! The bundled TCP relay (`vds-proxy relay --config FILE`): one process serving every route
//! of a node, replacing `socat ... fork`.
//!
//! This is the first cut: listeners from a TOML file, upstreams tried in order with a
//! connect timeout, half-close handled by `copy_bidirectional`, systemd readiness
//! notification, SIGHUP reload (listeners added/removed/re-pointed, open connections kept),
//! SIGTERM drain. Metrics, PROXY protocol and health back-off are for a later change.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The relay's config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
}

/// One listener and where its connections go.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub listen: String,
    /// Tried in order until one accepts.
    pub upstreams: Vec<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
}

fn default_connect_timeout() -> u64 {
    5000
}

/// Reads and checks a relay config.
pub fn load(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: Config =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for r in &cfg.routes {
        if r.upstreams.is_empty() {
            bail!("{}: route {} has no upstreams", path.display(), r.name);
        }
    }
    Ok(cfg)
}

/// Runs the relay until SIGTERM/SIGINT.
pub fn run(path: &Path) -> Result<()> {
    let cfg = load(path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(path, cfg))
}

struct Listener {
    config: watch::Sender<Arc<RouteConfig>>,
    stop: watch::Sender<bool>,
}

async fn serve(path: &Path, cfg: Config) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut listeners: BTreeMap<String, Listener> = BTreeMap::new();
    apply(&mut listeners, &cfg).await?;
    notify("READY=1");
    eprintln!("relay: serving {} route(s)", listeners.len());
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                notify("RELOADING=1");
                match load(path) {
                    Ok(cfg) => match apply(&mut listeners, &cfg).await {
                        Ok(()) => eprintln!("relay: reloaded, {} route(s)", listeners.len()),
                        Err(e) => eprintln!("relay: reload failed, keeping the old config: {e:#}"),
                    },
                    Err(e) => eprintln!("relay: reload failed, keeping the old config: {e:#}"),
                }
                notify("READY=1");
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    notify("STOPPING=1");
    for l in listeners.values() {
        let _ = l.stop.send(true);
    }
    // Established connections run in their own tasks; give them a bounded time to finish.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// Makes the running listeners match `cfg`; binds every new listener before changing anything.
async fn apply(listeners: &mut BTreeMap<String, Listener>, cfg: &Config) -> Result<()> {
    let mut fresh = Vec::new();
    for r in &cfg.routes {
        if !listeners.contains_key(&r.listen) {
            let l = TcpListener::bind(&r.listen)
                .await
                .with_context(|| format!("route {}: cannot listen on {}", r.name, r.listen))?;
            fresh.push((r.clone(), l));
        }
    }
    let wanted: Vec<&str> = cfg.routes.iter().map(|r| r.listen.as_str()).collect();
    listeners.retain(|addr, l| {
        let keep = wanted.contains(&addr.as_str());
        if !keep {
            let _ = l.stop.send(true);
        }
        keep
    });
    for r in &cfg.routes {
        if let Some(l) = listeners.get(&r.listen) {
            l.config.send_replace(Arc::new(r.clone()));
        }
    }
    for (r, l) in fresh {
        let (ctx, crx) = watch::channel(Arc::new(r.clone()));
        let (stx, srx) = watch::channel(false);
        tokio::spawn(accept_loop(l, crx, srx));
        listeners.insert(
            r.listen.clone(),
            Listener {
                config: ctx,
                stop: stx,
            },
        );
    }
    Ok(())
}

async fn accept_loop(
    l: TcpListener,
    config: watch::Receiver<Arc<RouteConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            res = l.accept() => match res {
                Ok((client, _)) => {
                    let route = config.borrow().clone();
                    tokio::spawn(relay_one(client, route));
                }
                Err(e) => {
                    eprintln!("relay: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn relay_one(mut client: TcpStream, route: Arc<RouteConfig>) {
    let started = std::time::Instant::now();
    let peer = client
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let timeout = Duration::from_millis(route.connect_timeout_ms);
    let mut upstream = None;
    for u in &route.upstreams {
        match tokio::time::timeout(timeout, TcpStream::connect(u)).await {
            Ok(Ok(s)) => {
                upstream = Some((u.clone(), s));
                break;
            }
            Ok(Err(e)) => eprintln!("relay: route {} upstream {u}: {e}", route.name),
            Err(_) => eprintln!(
                "relay: route {} upstream {u}: connect timed out",
                route.name
            ),
        }
    }
    let Some((name, mut up)) = upstream else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (to_up, to_client) = tokio::io::copy_bidirectional(&mut client, &mut up)
        .await
        .unwrap_or((0, 0));
    eprintln!(
        "relay: route={} client={peer} upstream={name} bytes_up={to_up} bytes_down={to_client} duration_ms={}",
        route.name,
        started.elapsed().as_millis()
    );
}

/// Sends a state line to systemd's notification socket, if there is one.
fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let res = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(e) = res {
        eprintln!("relay: cannot notify systemd: {e}");
    }
}
