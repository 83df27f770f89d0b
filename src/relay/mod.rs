//! The bundled TCP relay (`vds-proxy relay --config FILE`): one process serving every route
//! of a node, replacing `socat ... fork`.
//!
//! Per route: a listener, upstreams tried in order (failover) or in turn (round robin) with a
//! connect timeout and a back-off for upstreams that failed, optional active checks, optional
//! PROXY protocol both ways, a connection limit, an idle timeout, TCP keepalive, and correct
//! half-close. Lifecycle: systemd readiness (`Type=notify`), SIGHUP re-reads the config
//! (new listeners bound before anything changes; established connections keep flowing; a bad
//! config is logged and the old one keeps serving), SIGTERM stops accepting and drains.

pub mod config;
pub mod log;
pub mod metrics;
pub mod proxy_protocol;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use config::{Balance, Config, RouteConfig};
use metrics::{RouteStats, Stats};

/// How long a client may take to send its PROXY header.
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The most one read takes from a socket. Data goes through one buffer per thread
/// (`SCRATCH`), so idle connections cost no buffer memory and a burst the other side
/// takes at once costs no allocation.
const BURST: usize = 32 * 1024;
/// Full bursts a stream moves before it lets the other connections of its worker run.
const YIELD_EVERY: u32 = 16;

thread_local! {
    /// Where this thread reads a burst to before writing it on; never held across an await.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; BURST].into_boxed_slice());
}

/// Runs the relay with the config at `path` until SIGTERM/SIGINT.
pub fn run(path: &Path) -> Result<()> {
    let cfg = config::load(path)?;
    let workers = Workers::start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(serve(path, cfg, &workers));
    log::flush(Duration::from_secs(1));
    res
}

/// The threads that carry connections: one single-threaded runtime per core, each waiting
/// on every route's listening socket. A connection is accepted, relayed and closed on one
/// thread, by its own event loop: no hand-over or wake-up between threads, and a new
/// connection goes to a thread that is free to take it. Signals, reloads, health checks
/// and metrics run on the main thread.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
}

impl Workers {
    fn start() -> Result<Self> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            std::thread::Builder::new()
                .name(format!("relay-{i}"))
                .spawn(move || rt.block_on(tick()))
                .context("cannot start a relay thread")?;
        }
        Ok(Workers { handles })
    }
}

/// One upstream and its health.
struct Upstream {
    addr: SocketAddr,
    /// Milliseconds since `epoch` until which it is skipped; 0 = healthy.
    down_until: AtomicU64,
}

/// A route as connections see it: config, upstream health, counters.
struct Route {
    cfg: RouteConfig,
    upstreams: Vec<Upstream>,
    next: AtomicUsize,
    stats: Arc<RouteStats>,
    epoch: Instant,
}

impl Route {
    fn new(cfg: RouteConfig, stats: &Stats, epoch: Instant) -> Self {
        Route {
            upstreams: cfg
                .upstreams
                .iter()
                .map(|&addr| Upstream {
                    addr,
                    down_until: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
            stats: stats.route(&cfg.name),
            cfg,
            epoch,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Upstreams in the order to try: healthy ones first (by the balance rule), then the
    /// ones backing off, as a last resort.
    fn order(&self) -> Vec<&Upstream> {
        let n = self.upstreams.len();
        let start = match self.cfg.balance {
            Balance::Failover => 0,
            Balance::RoundRobin => self.next.fetch_add(1, Relaxed) % n,
        };
        let now = self.now_ms();
        let (mut up, down): (Vec<&Upstream>, Vec<&Upstream>) = (0..n)
            .map(|i| &self.upstreams[(start + i) % n])
            .partition(|u| u.down_until.load(Relaxed) <= now);
        up.extend(down);
        up
    }

    fn mark_down(&self, u: &Upstream) {
        u.down_until
            .store(self.now_ms() + self.cfg.backoff_ms.max(1), Relaxed);
    }

    /// Connects to the first upstream that answers, the route's socket options set. With
    /// `data_waiting` (the client has sent its first bytes already), the handshake's last
    /// ACK is held back (`TCP_QUICKACK` off) to leave with those bytes: one packet less per
    /// connection, as HAProxy's `option tcp-smart-connect`. A server that speaks first gets
    /// its ACK at once.
    async fn connect(&self, data_waiting: bool) -> Option<(SocketAddr, TcpStream)> {
        for u in self.order() {
            let attempt = open(u.addr, data_waiting);
            match tokio::time::timeout(self.cfg.connect_timeout(), attempt).await {
                Ok(Ok(s)) => {
                    u.down_until.store(0, Relaxed);
                    return Some((u.addr, s));
                }
                Ok(Err(e)) => {
                    if self.cfg.log.errors() {
                        crate::relay_log!(
                            "relay: route={} upstream={} connect failed: {e}",
                            self.cfg.name,
                            u.addr
                        );
                    }
                    self.stats.upstream_failures.fetch_add(1, Relaxed);
                    self.mark_down(u);
                }
                Err(_) => {
                    if self.cfg.log.errors() {
                        crate::relay_log!(
                            "relay: route={} upstream={} connect timed out",
                            self.cfg.name,
                            u.addr
                        );
                    }
                    self.stats.upstream_failures.fetch_add(1, Relaxed);
                    self.mark_down(u);
                }
            }
        }
        None
    }
}

/// A connection to `addr`, its options set before the handshake.
async fn open(addr: SocketAddr, hold_ack: bool) -> io::Result<TcpStream> {
    let s = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // Keepalive comes later, from `pump`, if the connection lives long enough to need it.
    let _ = socket2::SockRef::from(&s).set_tcp_nodelay(true);
    if hold_ack {
        let _ = socket2::SockRef::from(&s).set_tcp_quickack(false);
    }
    s.connect(addr).await
}

/// A running listener: the route its connections use now, and its stop switch.
struct Listener {
    route: watch::Sender<Arc<Route>>,
    stop: watch::Sender<bool>,
}

async fn serve(path: &Path, cfg: Config, workers: &Workers) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let stats = Arc::new(Stats::new(workers.handles.len()));
    let epoch = Instant::now();
    let mut listeners: BTreeMap<SocketAddr, Listener> = BTreeMap::new();
    let mut metrics_task = None;
    apply(&mut listeners, &cfg, &stats, epoch, workers)?;
    let mut metrics_at = cfg.metrics;
    if let Some(addr) = cfg.metrics {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        metrics_task = Some(tokio::spawn(metrics::serve(l, stats.clone())));
    }
    let mut drain_timeout = Duration::from_millis(cfg.drain_timeout_ms);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    notify("READY=1");
    crate::relay_log!("relay: serving {} route(s)", listeners.len());
    loop {
        tokio::select! {
            _ = hup.recv() => {
                notify("RELOADING=1");
                let res = match config::load(path) {
                    Ok(cfg) => apply(&mut listeners, &cfg, &stats, epoch, workers).map(|()| cfg),
                    Err(e) => Err(e),
                };
                match res {
                    Ok(cfg) => {
                        stats.reloads.fetch_add(1, Relaxed);
                        drain_timeout = Duration::from_millis(cfg.drain_timeout_ms);
                        // A new metrics address is taken on reload too (a failure to bind
                        // it is logged; the routes keep serving).
                        if cfg.metrics != metrics_at {
                            if let Some(t) = metrics_task.take() {
                                t.abort();
                            }
                            metrics_at = cfg.metrics;
                            if let Some(addr) = cfg.metrics {
                                match TcpListener::bind(addr).await {
                                    Ok(l) => metrics_task = Some(tokio::spawn(metrics::serve(l, stats.clone()))),
                                    Err(e) => crate::relay_log!("relay: cannot listen for metrics on {addr}: {e}"),
                                }
                            }
                        }
                        crate::relay_log!("relay: reloaded, serving {} route(s)", listeners.len());
                    }
                    Err(e) => {
                        stats.reload_failures.fetch_add(1, Relaxed);
                        crate::relay_log!("relay: reload rejected, the previous config keeps serving: {e:#}");
                    }
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
    drop(listeners);
    let deadline = Instant::now() + drain_timeout;
    let open = stats.open();
    if open > 0 {
        crate::relay_log!(
            "relay: draining {open} connection(s) for at most {} ms",
            drain_timeout.as_millis()
        );
    }
    while stats.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(t) = metrics_task {
        t.abort();
    }
    crate::relay_log!(
        "relay: stopped with {} connection(s) still open",
        stats.open()
    );
    Ok(())
}

/// Makes the listeners match `cfg`. Every new listener is bound first, so a config that
/// cannot be served changes nothing.
fn apply(
    listeners: &mut BTreeMap<SocketAddr, Listener>,
    cfg: &Config,
    stats: &Arc<Stats>,
    epoch: Instant,
    workers: &Workers,
) -> Result<()> {
    let mut fresh = Vec::new();
    for r in &cfg.routes {
        if !listeners.contains_key(&r.listen) {
            let socks = bind(r.listen, workers.handles.len())
                .with_context(|| format!("route {}: cannot listen on {}", r.name, r.listen))?;
            fresh.push((r.clone(), socks));
        }
    }
    listeners.retain(|addr, l| {
        let keep = cfg.routes.iter().any(|r| r.listen == *addr);
        if !keep {
            let _ = l.stop.send(true);
        }
        keep
    });
    for r in &cfg.routes {
        if let Some(l) = listeners.get(&r.listen) {
            let route = Arc::new(Route::new(r.clone(), stats, epoch));
            // Replace first: the new route's checks must not see their own replacement as
            // the signal to stop (the old route's checks do, and end).
            l.route.send_replace(route.clone());
            spawn_checks(&route, l.stop.subscribe(), l.route.subscribe());
        }
    }
    for (r, socks) in fresh {
        let route = Arc::new(Route::new(r.clone(), stats, epoch));
        let (rtx, rrx) = watch::channel(route.clone());
        let (stx, srx) = watch::channel(false);
        spawn_checks(&route, srx.clone(), rrx.clone());
        for (me, (sock, worker)) in socks.into_iter().zip(&workers.handles).enumerate() {
            let (rrx, srx, stats) = (rrx.clone(), srx.clone(), stats.clone());
            let all = workers.handles.clone();
            // Registered from inside the worker, so the worker's event loop owns it.
            worker.spawn(async move {
                match TcpListener::from_std(sock) {
                    Ok(l) => accept_loop(l, rrx, srx, stats, Worker { me, all }).await,
                    Err(e) => crate::relay_log!("relay: cannot use a listening socket: {e}"),
                }
            });
        }
        listeners.insert(
            r.listen,
            Listener {
                route: rtx,
                stop: stx,
            },
        );
    }
    Ok(())
}

/// A timer that always fires before any connection's deadline (connect timeout, idle
/// timeout): the event loop then sleeps with that wake-up already set, and arming a
/// connection's timer does not have to wake the loop that is arming it (an eventfd write
/// and an extra `epoll_wait` per connection otherwise).
async fn tick() {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One listening socket on `addr`, as `n` descriptors: one per worker. Every worker waits
/// on the same accept queue, so a new connection goes to whichever worker is free first
/// (the others find the queue empty).
fn bind(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    // Inherited by every accepted connection (set after `listen`, which resets it): the
    // ACK of what a client sends first is held back to leave with the first bytes sent to
    // it, one packet less per connection (HAProxy's `option tcp-smart-accept`).
    let _ = s.set_tcp_quickack(false);
    let s = std::net::TcpListener::from(s);
    let mut all = Vec::with_capacity(n.max(1));
    for _ in 1..n.max(1) {
        all.push(s.try_clone()?);
    }
    all.push(s);
    Ok(all)
}

/// Active health checks of a route's upstreams, until the route is replaced or stopped.
fn spawn_checks(
    route: &Arc<Route>,
    mut stop: watch::Receiver<bool>,
    mut current: watch::Receiver<Arc<Route>>,
) {
    if route.cfg.check_interval_ms == 0 {
        return;
    }
    let route = route.clone();
    tokio::spawn(async move {
        let every = Duration::from_millis(route.cfg.check_interval_ms);
        loop {
            for u in &route.upstreams {
                let ok = matches!(
                    tokio::time::timeout(route.cfg.connect_timeout(), TcpStream::connect(u.addr))
                        .await,
                    Ok(Ok(_))
                );
                if ok {
                    u.down_until.store(0, Relaxed);
                } else {
                    // Down at least until the next check can say otherwise (a success
                    // clears it at once); a longer passive back-off is kept.
                    let next_check = route.cfg.check_interval_ms + route.cfg.connect_timeout_ms;
                    let hold = next_check.max(route.cfg.backoff_ms).max(1);
                    u.down_until.fetch_max(route.now_ms() + hold, Relaxed);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
                _ = current.changed() => return,
            }
        }
    });
}

/// A worker as its accept loop knows it: its index, and every worker's event loop.
struct Worker {
    me: usize,
    all: Vec<tokio::runtime::Handle>,
}

/// A worker that carries more than this many connections more than the least busy one
/// hands what it accepts to that one. Every worker waits on the same accept queue, and the
/// one that wakes first takes the connection: long streams would otherwise pile up on one
/// thread while the other idles. Short connections close before counts part this far, so
/// they stay on the thread that accepted them (no hand-over, no wake-up of another thread).
const IMBALANCE: u64 = 1;

async fn accept_loop(
    l: TcpListener,
    route: watch::Receiver<Arc<Route>>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Stats>,
    worker: Worker,
) {
    let mut tuned: Option<Arc<Route>> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            res = l.accept() => match res {
                Ok((client, peer)) => {
                    let route = route.borrow().clone();
                    // Accepted sockets inherit the listener's options: set them again when a
                    // reload changed the route (this client got the previous ones).
                    if !tuned.as_ref().is_some_and(|t| Arc::ptr_eq(t, &route)) {
                        tune(socket2::SockRef::from(&l), &route.cfg);
                        tune(socket2::SockRef::from(&client), &route.cfg);
                        tuned = Some(route.clone());
                    }
                    let open = route.stats.open.load(Relaxed) as usize;
                    if open >= route.cfg.max_connections {
                        route.stats.refused.fetch_add(1, Relaxed);
                        // Reset rather than FIN, so the client knows at once.
                        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
                        drop(client);
                        continue;
                    }
                    route.stats.open.fetch_add(1, Relaxed);
                    route.stats.total.fetch_add(1, Relaxed);
                    // Only a worker already carrying more than IMBALANCE looks at the others
                    // (no other can have fewer than none): not on every short connection.
                    let mine = stats.workers[worker.me].open.load(Relaxed);
                    let to = match (mine > IMBALANCE).then(|| stats.least_busy()) {
                        Some((least, fewest)) if mine > fewest + IMBALANCE => least,
                        _ => worker.me,
                    };
                    let client = if to == worker.me {
                        Carried::Here(client)
                    } else {
                        match client.into_std() {
                            Ok(s) => {
                                stats.workers[worker.me].handed_over.fetch_add(1, Relaxed);
                                Carried::There(s)
                            }
                            Err(_) => {
                                route.stats.open.fetch_sub(1, Relaxed);
                                continue;
                            }
                        }
                    };
                    let w = &stats.workers[to];
                    w.open.fetch_add(1, Relaxed);
                    w.total.fetch_add(1, Relaxed);
                    let stats = stats.clone();
                    let carry = async move {
                        let client = match client {
                            Carried::Here(c) => Some(c),
                            Carried::There(s) => TcpStream::from_std(s).ok(),
                        };
                        if let Some(client) = client {
                            handle(client, peer, &route).await;
                        }
                        route.stats.open.fetch_sub(1, Relaxed);
                        stats.workers[to].open.fetch_sub(1, Relaxed);
                    };
                    if to == worker.me {
                        tokio::spawn(carry);
                    } else {
                        worker.all[to].spawn(carry);
                    }
                }
                Err(e) => {
                    // EMFILE/ENFILE and friends: count, back off a little, keep serving.
                    stats.accept_errors.fetch_add(1, Relaxed);
                    crate::relay_log!("relay: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

/// An accepted connection: carried by the worker that accepted it, or handed to another
/// (as a plain socket, which that worker's event loop takes over).
enum Carried {
    Here(TcpStream),
    There(std::net::TcpStream),
}

/// How a relayed connection ended, for the log line.
enum End {
    Closed,
    IdleTimeout,
    Error(io::Error),
}

async fn handle(client: TcpStream, peer: SocketAddr, route: &Route) {
    let started = Instant::now();
    let cfg = &route.cfg;
    let stats = &route.stats;
    let mut client = client;
    // Only a PROXY header sent upstream needs the address the client connected to.
    let local = match cfg.send_proxy {
        Some(_) => client.local_addr().unwrap_or(cfg.listen),
        None => cfg.listen,
    };
    let (mut src, mut dst, mut early) = (peer, local, Vec::new());
    if cfg.accept_proxy {
        match read_proxy_header(&mut client).await {
            Ok((addrs, rest)) => {
                if let Some((s, d)) = addrs {
                    (src, dst) = (s, d);
                }
                early = rest;
            }
            Err(e) => {
                stats.bad_proxy_header.fetch_add(1, Relaxed);
                if cfg.log.errors() {
                    crate::relay_log!("relay: route={} client={peer} rejected: {e}", cfg.name);
                }
                return;
            }
        }
    }
    if !cfg.accept_proxy {
        // What the client has sent already goes out with the upstream handshake's ACK.
        match read_early(&client) {
            Ok(bytes) => early = bytes,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    let Some((upstream_addr, mut upstream)) = route.connect(!early.is_empty()).await else {
        stats.no_upstream.fetch_add(1, Relaxed);
        if cfg.log.errors() {
            crate::relay_log!(
                "relay: route={} client={src} no upstream reachable",
                cfg.name
            );
        }
        return;
    };
    let mut head = Vec::new();
    if let Some(v) = cfg.send_proxy {
        head = proxy_protocol::encode(v, src, dst);
    }
    head.extend_from_slice(&early);
    if !head.is_empty()
        && let Err(e) = upstream.write_all(&head).await
    {
        stats.errors.fetch_add(1, Relaxed);
        if cfg.log.errors() {
            crate::relay_log!(
                "relay: route={} client={src} upstream={upstream_addr} write failed: {e}",
                cfg.name
            );
        }
        return;
    }
    let early_len = early.len() as u64;
    stats.bytes_in.fetch_add(early_len, Relaxed);
    // Not kept for the connection's life.
    drop((head, early));
    let (up, down, end) = pump(client, upstream, cfg, stats).await;
    let failed = matches!(end, End::Error(_));
    let end = match end {
        End::Closed => "closed".to_string(),
        End::IdleTimeout => "idle-timeout".to_string(),
        End::Error(e) => {
            stats.errors.fetch_add(1, Relaxed);
            format!("error ({e})")
        }
    };
    if !(cfg.log.all() || failed && cfg.log.errors()) {
        return;
    }
    crate::relay_log!(
        "relay: route={} client={src} upstream={upstream_addr} bytes_up={} bytes_down={down} duration_ms={} end={end}",
        cfg.name,
        up + early_len,
        started.elapsed().as_millis()
    );
}

/// TCP_NODELAY and keepalive as the route wants them. Set on a listener, they are
/// inherited by every connection it accepts (no system call per client); upstream sockets
/// get TCP_NODELAY before connecting and keepalive from `pump`.
fn tune(s: socket2::SockRef, cfg: &RouteConfig) {
    let _ = s.set_tcp_nodelay(true);
    keepalive(s, cfg);
}

/// Upstream sockets get their keepalive once a connection has lived this long (or its idle
/// timeout, if shorter): no probe is due sooner (`keepalive_secs` is at least 1), and the
/// many connections that end before it save three system calls each.
const KEEPALIVE_AFTER: Duration = Duration::from_secs(1);

/// Keepalive as the route wants it: on with its idle time and interval, or off.
fn keepalive(s: socket2::SockRef, cfg: &RouteConfig) {
    if cfg.keepalive_secs > 0 {
        let ka = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(cfg.keepalive_secs))
            .with_interval(Duration::from_secs(cfg.keepalive_secs.clamp(1, 30)));
        let _ = s.set_tcp_keepalive(&ka);
    } else {
        let _ = s.set_keepalive(false);
    }
}

/// Reads a PROXY header; returns the addresses it names and any bytes read past it.
async fn read_proxy_header(
    client: &mut TcpStream,
) -> Result<(Option<(SocketAddr, SocketAddr)>, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(128);
    let read = async {
        loop {
            let mut chunk = [0u8; 256];
            let n = client.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before a PROXY header".to_string());
            }
            buf.extend_from_slice(&chunk[..n]);
            match proxy_protocol::parse(&buf) {
                Ok(h) => return Ok((h.addrs, buf[h.len..].to_vec())),
                Err(proxy_protocol::ParseError::Incomplete)
                    if buf.len() < proxy_protocol::MAX_HEADER => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    match tokio::time::timeout(PROXY_HEADER_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err("no PROXY header within 5 s".to_string()),
    }
}

/// Copies both ways until both sides have closed (half-close passed on), one side fails,
/// or nothing moved for the route's idle timeout. The upstream socket gets its keepalive
/// after `KEEPALIVE_AFTER`.
async fn pump(
    client: TcpStream,
    upstream: TcpStream,
    cfg: &RouteConfig,
    stats: &RouteStats,
) -> (u64, u64, End) {
    let idle = cfg.idle_timeout();
    let epoch = Instant::now();
    let last = AtomicU64::new(0);
    let (up_n, down_n) = (AtomicU64::new(0), AtomicU64::new(0));
    let ended = AtomicBool::new(false);
    let both = async {
        tokio::try_join!(
            copy_half(
                &client,
                &upstream,
                &ended,
                &last,
                epoch,
                &up_n,
                &stats.bytes_in
            ),
            copy_half(
                &upstream,
                &client,
                &ended,
                &last,
                epoch,
                &down_n,
                &stats.bytes_out
            ),
        )
    };
    // Ends only when the connection has been idle for too long.
    let watchdog = async {
        if cfg.keepalive_secs > 0 {
            tokio::time::sleep(KEEPALIVE_AFTER.min(idle.unwrap_or(Duration::MAX))).await;
            keepalive(socket2::SockRef::from(&upstream), cfg);
        }
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let since = epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Relaxed)));
            if since >= idle {
                return;
            }
            tokio::time::sleep(idle - since).await;
        }
    };
    let end = tokio::select! {
        r = both => match r { Ok(_) => End::Closed, Err(e) => End::Error(e) },
        () = watchdog => {
            // Counted before the sockets close: whoever sees the close sees the count.
            stats.idle_timeouts.fetch_add(1, Relaxed);
            End::IdleTimeout
        }
    };
    (up_n.load(Relaxed), down_n.load(Relaxed), end)
}

/// One read of at most a burst (`buf` is `SCRATCH`): a short read emptied the socket, so
/// its readiness is forgotten.
fn read_burst(r: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let n = r.try_read(buf)?;
    if n < buf.len() {
        forget_readable(r);
    }
    Ok(n)
}

/// What the client sent before its connection was accepted (at most one burst).
fn read_early(client: &TcpStream) -> io::Result<Vec<u8>> {
    SCRATCH.with_borrow_mut(|buf| {
        let n = read_burst(client, buf)?;
        Ok(buf[..n].to_vec())
    })
}

/// One read from a socket, already passed on as far as the other socket would take it.
enum Moved {
    /// The reading side closed.
    End,
    /// Nothing to read now.
    Drained,
    /// `n` bytes read (fewer than `BURST`: the read emptied the socket); `rest` is what the
    /// writing side did not take yet.
    Bytes { n: usize, rest: Option<Vec<u8>> },
}

/// Reads one burst from `r` into this thread's buffer and writes it to `w` at once; only
/// what `w` cannot take now is copied out, to be waited for.
fn move_burst(r: &TcpStream, w: &TcpStream) -> io::Result<Moved> {
    SCRATCH.with_borrow_mut(|buf| {
        let n = match read_burst(r, buf) {
            Ok(0) => return Ok(Moved::End),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Moved::Drained),
            Err(e) => return Err(e),
        };
        let sent = match w.try_write(&buf[..n]) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        let rest = (sent < n).then(|| buf[sent..n].to_vec());
        Ok(Moved::Bytes { n, rest })
    })
}

/// Copies what `r` sends to `w` until `r` closes its side, then passes the half-close on —
/// unless the other direction has ended already: both sockets are closed next, which sends
/// the FIN anyway, so the `shutdown` call is saved.
async fn copy_half(
    r: &TcpStream,
    w: &TcpStream,
    ended: &AtomicBool,
    last: &AtomicU64,
    epoch: Instant,
    count: &AtomicU64,
    total: &AtomicU64,
) -> io::Result<()> {
    let mut full = 0;
    loop {
        r.readable().await?;
        loop {
            match move_burst(r, w)? {
                Moved::End => {
                    if !ended.swap(true, Relaxed) {
                        let _ = socket2::SockRef::from(w).shutdown(std::net::Shutdown::Write);
                    }
                    return Ok(());
                }
                Moved::Drained => break,
                Moved::Bytes { n, rest } => {
                    if let Some(rest) = rest {
                        write_all(w, &rest).await?;
                    }
                    count.fetch_add(n as u64, Relaxed);
                    total.fetch_add(n as u64, Relaxed);
                    last.store(epoch.elapsed().as_millis() as u64, Relaxed);
                    if n < BURST {
                        break;
                    }
                    // A stream that always has a full burst waiting never awaits above:
                    // without this it kept its worker (and the accept loop on it) for as
                    // long as it flowed — a short connection arriving while bulk streams
                    // ran waited 0.5 s (p99). Every YIELD_EVERY bursts it lets the others
                    // run, and the event loop look for new events (a yielded task runs
                    // again after the next look).
                    full += 1;
                    if full == YIELD_EVERY {
                        full = 0;
                        tokio::task::yield_now().await;
                    }
                }
            }
        }
    }
}

/// After a short read emptied `s`: forgets its readiness now rather than learn it from one
/// more `recv` failing with EAGAIN. Data or a FIN arriving later is a new event; a FIN that
/// came with this data stays known (tokio keeps "read closed").
fn forget_readable(s: &TcpStream) {
    let _ = s.try_io(Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}

/// Writes all of `data`, waiting for room when the socket's buffer is full.
async fn write_all(w: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match w.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => w.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends a state line to systemd's notification socket, if there is one.
pub(crate) fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let res = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(e) = res {
        crate::relay_log!("relay: cannot notify systemd: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `tune` sets on a listener is what every accepted connection has: the relay
    /// relies on it instead of setting options per client.
    #[test]
    fn accepted_sockets_inherit_the_listeners_tuning() {
        let cfg: RouteConfig = toml::from_str(
            "name = \"t\"\nlisten = \"127.0.0.1:1\"\nupstreams = [\"127.0.0.1:2\"]\nkeepalive_secs = 42\n",
        )
        .unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tune(socket2::SockRef::from(&l), &cfg);
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        let s = socket2::SockRef::from(&a);
        assert!(s.tcp_nodelay().unwrap());
        assert!(s.keepalive().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(42));
        assert_eq!(s.tcp_keepalive_interval().unwrap(), Duration::from_secs(30));
    }

    /// Connections accepted on a relay listener start with delayed ACKs (the kernel's
    /// "pingpong" mode, which `TCP_QUICKACK` reads back as off): the ACK of a client's
    /// first bytes waits to leave with the reply. `listen` resets the mode, so `bind`
    /// must set it after listening; a plain listener's connections ACK at once.
    #[test]
    fn accepted_sockets_hold_back_their_first_ack() {
        let relay = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap().remove(0);
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for (l, quick) in [(&relay, false), (&plain, true)] {
            let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (a, _) = l.accept().unwrap();
            assert_eq!(socket2::SockRef::from(&a).tcp_quickack().unwrap(), quick);
        }
    }
}
