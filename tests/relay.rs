//! The relay on loopback: the real `vds-proxy relay` process against small test servers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An echo server: writes back what it reads, closes after the client's FIN.
fn echo_server() -> u16 {
    serve(|mut s| {
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// A server that writes `msg` and closes.
fn banner_server(msg: &'static str) -> u16 {
    serve(move |mut s| {
        let _ = s.write_all(msg.as_bytes());
    })
}

fn serve(f: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let f = Arc::new(f);
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let f = f.clone();
            thread::spawn(move || f(s));
        }
    });
    port
}

struct Relay {
    child: Child,
    config: PathBuf,
    /// Holds the config; removed when the relay is dropped.
    _dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Relay {
    fn start(config: &str) -> Relay {
        Self::start_with(config, None)
    }

    fn start_with(config: &str, nofile: Option<u32>) -> Relay {
        let dir = tempfile::Builder::new()
            .prefix("vds-relay-test-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, config).unwrap();
        let bin = env!("CARGO_BIN_EXE_vds-proxy");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "ulimit -n {n} && exec \"$0\" relay --config \"$1\""
                    ))
                    .arg(bin)
                    .arg(&path);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.arg("relay").arg("--config").arg(&path);
                c
            }
        };
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("serving") {
                    let _ = tx.send(());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("relay did not start");
        Relay {
            child,
            config: path,
            _dir: dir,
            log,
        }
    }

    fn reload(&self, config: &str) {
        std::fs::write(&self.config, config).unwrap();
        let before = self.log().matches("reload").count();
        signal(&self.child, "HUP");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.log().matches("reload").count() == before {
            assert!(
                Instant::now() < deadline,
                "no reload logged: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most 5 s) until the log holds `text`: the relay writes its records in
    /// batches, up to ~110 ms after they happened.
    fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.log().contains(text) {
            assert!(Instant::now() < deadline, "no {text:?} in: {}", self.log());
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
}

fn route(name: &str, listen: u16, upstreams: &[u16], extra: &str) -> String {
    let ups: Vec<String> = upstreams
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        "[[route]]\nname = \"{name}\"\nlisten = \"127.0.0.1:{listen}\"\nupstreams = [{}]\n{extra}\n",
        ups.join(", ")
    )
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Writes `msg` (from a thread, so a large echo cannot fill both directions' buffers),
/// half-closes, and reads until the relay closes.
fn roundtrip(port: u16, msg: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    let mut w = s.try_clone().unwrap();
    let msg = msg.to_vec();
    let writer = thread::spawn(move || {
        let _ = w.write_all(&msg);
        let _ = w.shutdown(Shutdown::Write);
    });
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    out
}

fn metrics(port: u16) -> String {
    let mut s = connect(port);
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, name: &str, route: &str) -> u64 {
    let key = format!("vds_relay_{name}{{route=\"{route}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("{key} missing in {text}"))
        .parse()
        .unwrap()
}

#[test]
fn forwards_and_passes_half_close_both_ways() {
    let up = echo_server();
    let (listen, m) = (free_port(), free_port());
    let _r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route("echo", listen, &[up], "")
    ));
    // Client half-closes; the echo server sees EOF only through the relay and closes after.
    let big = vec![7u8; 3 * 1024 * 1024];
    assert_eq!(roundtrip(listen, &big), big);
    // Upstream closes first (banner), the client still gets everything.
    let text = metrics(m);
    assert_eq!(metric(&text, "bytes_in_total", "echo"), big.len() as u64);
    assert_eq!(metric(&text, "bytes_out_total", "echo"), big.len() as u64);
    assert_eq!(metric(&text, "connections_total", "echo"), 1);
}

#[test]
fn upstream_closing_first_reaches_the_client() {
    let up = banner_server("hello and goodbye\n");
    let listen = free_port();
    let r = Relay::start(&route("banner", listen, &[up], ""));
    let mut s = connect(listen);
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, "hello and goodbye\n");
    // The client can still write after the upstream's FIN without the relay crashing.
    let _ = s.write_all(b"late");
    drop(s);
    r.wait_for_log("route=banner");
    assert_eq!(roundtrip(listen, b""), b"hello and goodbye\n");
}

#[test]
fn fails_over_to_the_next_upstream_and_backs_off() {
    let dead = free_port();
    let up = banner_server("b\n");
    let (listen, m) = (free_port(), free_port());
    let _r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route("fo", listen, &[dead, up], "backoff_ms = 60000")
    ));
    for _ in 0..5 {
        assert_eq!(roundtrip(listen, b""), b"b\n");
    }
    // The dead upstream was tried once, then skipped while it backs off.
    assert_eq!(metric(&metrics(m), "upstream_failures_total", "fo"), 1);
}

#[test]
fn round_robin_alternates() {
    let (a, b) = (banner_server("a"), banner_server("b"));
    let listen = free_port();
    let _r = Relay::start(&route("rr", listen, &[a, b], "balance = \"round-robin\""));
    let got: Vec<Vec<u8>> = (0..4).map(|_| roundtrip(listen, b"")).collect();
    assert_eq!(
        got,
        vec![b"a".to_vec(), b"b".to_vec(), b"a".to_vec(), b"b".to_vec()]
    );
}

#[test]
fn excess_connections_are_refused_fast_and_counted() {
    let up = echo_server();
    let (listen, m) = (free_port(), free_port());
    let _r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route("lim", listen, &[up], "max_connections = 2")
    ));
    let mut held: Vec<TcpStream> = (0..2).map(|_| connect(listen)).collect();
    for s in &mut held {
        s.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    }
    let mut extra = connect(listen);
    let t = Instant::now();
    let mut b = [0u8; 1];
    let r = extra.read(&mut b);
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "the third connection must be closed"
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(metric(&metrics(m), "connections_refused_total", "lim"), 1);
    drop(held);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(roundtrip(listen, b"again"), b"again");
}

#[test]
fn idle_connections_are_closed() {
    let up = echo_server();
    let (listen, m) = (free_port(), free_port());
    let _r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route("idle", listen, &[up], "idle_timeout_ms = 300")
    ));
    // A client that sends nothing.
    let mut s = connect(listen);
    let t = Instant::now();
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).unwrap(), 0);
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(3));
    assert_eq!(metric(&metrics(m), "idle_timeouts_total", "idle"), 1);
    assert_eq!(roundtrip(listen, b"still serving"), b"still serving");
}

/// How many of this machine's established TCP sockets that `filter` (an `ss` filter)
/// selects have a keepalive timer (`ss -o`: "timer:(keepalive,…)").
fn keepalive_timers(filter: &str) -> usize {
    let out = Command::new("ss")
        .args(["-Htno", "state", "established", filter])
        .output()
        .expect("ss (iproute2) is needed by this test");
    assert!(out.status.success(), "ss failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .matches("timer:(keepalive,")
        .count()
}

/// The client's side has keepalive from the start (inherited from the listener); the
/// upstream side gets it once the connection has lived a second — short connections
/// never pay for it — and keeps the route's interval.
#[test]
fn long_connections_get_keepalive_on_both_sides() {
    let up = echo_server();
    let listen = free_port();
    let _r = Relay::start(&route("ka", listen, &[up], "keepalive_secs = 42"));
    let mut s = connect(listen);
    s.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).unwrap();
    // The relay's accepted socket: its local port is the listener's.
    assert_eq!(keepalive_timers(&format!("( sport = :{listen} )")), 1);
    assert_eq!(keepalive_timers(&format!("( dport = :{up} )")), 0);
    thread::sleep(Duration::from_millis(1500));
    // The relay's upstream socket: its peer is the echo server (whose own socket, with
    // the echo port as its local port, has no keepalive).
    assert_eq!(keepalive_timers(&format!("( dport = :{up} )")), 1);
    assert_eq!(keepalive_timers(&format!("( sport = :{up} )")), 0);
    s.write_all(b"pong").unwrap();
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"pong");
}

#[test]
fn reload_keeps_open_connections_and_applies_new_listeners() {
    let (a, b) = (echo_server(), banner_server("new upstream"));
    let (l1, l2) = (free_port(), free_port());
    let r = Relay::start(&route("one", l1, &[a], ""));
    let mut open = connect(l1);
    open.write_all(b"before ").unwrap();
    let mut buf = [0u8; 7];
    open.read_exact(&mut buf).unwrap();

    r.reload(&format!(
        "{}{}",
        route("one", l1, &[b], ""),
        route("two", l2, &[a], "")
    ));
    // The established connection still flows to its old upstream.
    open.write_all(b"after").unwrap();
    let mut buf = [0u8; 5];
    open.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after");
    // New connections use the new config; the new listener works.
    assert_eq!(roundtrip(l1, b""), b"new upstream");
    assert_eq!(roundtrip(l2, b"two"), b"two");

    // A bad config is rejected and the old one keeps serving.
    r.reload("[[route]]\nname = \"broken\"\nlisten = \"not an address\"\nupstreams = []\n");
    assert!(r.log().contains("reload rejected"), "{}", r.log());
    assert_eq!(roundtrip(l2, b"still"), b"still");
    // A listener that cannot be bound rejects the whole reload.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let tp = taken.local_addr().unwrap().port();
    r.reload(&format!(
        "{}{}",
        route("one", l1, &[a], ""),
        route("three", tp, &[a], "")
    ));
    assert_eq!(
        roundtrip(l2, b"kept"),
        b"kept",
        "route two must survive a failed reload"
    );
}

#[test]
fn sigterm_drains_open_connections() {
    let up = echo_server();
    let listen = free_port();
    let mut r = Relay::start(&format!(
        "drain_timeout_ms = 5000\n{}",
        route("drain", listen, &[up], "")
    ));
    let mut open = connect(listen);
    open.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    open.read_exact(&mut b).unwrap();
    signal(&r.child, "TERM");
    thread::sleep(Duration::from_millis(300));
    // No new connections...
    assert!(
        TcpStream::connect(("127.0.0.1", listen)).is_err(),
        "still accepting after SIGTERM"
    );
    // ...but the open one keeps working until it ends.
    open.write_all(b"y").unwrap();
    open.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
    assert!(
        r.child.try_wait().unwrap().is_none(),
        "exited while a connection was open"
    );
    drop(open);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "did not exit after the drain"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn proxy_protocol_v1_and_v2_are_sent_to_the_upstream() {
    for (version, want_prefix) in [
        ("v1", b"PROXY TCP4 127.0.0.1 127.0.0.1 ".to_vec()),
        ("v2", b"\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c".to_vec()),
    ] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let up = serve(move |mut s| {
            let mut buf = vec![0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            seen2.lock().unwrap().extend_from_slice(&buf[..n]);
            let _ = s.write_all(b"ok");
        });
        let listen = free_port();
        let _r = Relay::start(&route(
            "pp",
            listen,
            &[up],
            &format!("send_proxy = \"{version}\""),
        ));
        let mut c = connect(listen);
        let client_port = c.local_addr().unwrap().port();
        let mut out = [0u8; 2];
        c.read_exact(&mut out).unwrap();
        let got = seen.lock().unwrap().clone();
        assert!(got.starts_with(&want_prefix), "{version}: {got:?}");
        if version == "v1" {
            assert_eq!(
                String::from_utf8(got).unwrap(),
                format!("PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {listen}\r\n")
            );
        } else {
            assert_eq!(&got[24..26], &client_port.to_be_bytes());
        }
    }
}

#[test]
fn accepted_proxy_headers_are_passed_on_and_bad_ones_counted() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let up = serve(move |mut s| {
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        seen2.lock().unwrap().push(all);
    });
    let (listen, m) = (free_port(), free_port());
    let r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route(
            "front",
            listen,
            &[up],
            "accept_proxy = true\nsend_proxy = \"v1\""
        )
    ));
    roundtrip(
        listen,
        b"PROXY TCP4 198.51.100.7 203.0.113.1 40000 443\r\npayload",
    );
    // Garbage instead of a header; then a client that sends nothing and leaves.
    roundtrip(listen, b"GET / HTTP/1.1\r\n\r\n");
    drop(connect(listen));
    thread::sleep(Duration::from_millis(300));
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![b"PROXY TCP4 198.51.100.7 203.0.113.1 40000 443\r\npayload".to_vec()]
    );
    assert_eq!(metric(&metrics(m), "bad_proxy_header_total", "front"), 2);
    r.wait_for_log("malformed PROXY header");
}

#[test]
fn survives_fd_exhaustion() {
    let up = echo_server();
    let (listen, m) = (free_port(), free_port());
    let _r = Relay::start_with(
        &format!(
            "metrics = \"127.0.0.1:{m}\"\n{}",
            route("fd", listen, &[up], "")
        ),
        Some(64),
    );
    // Far more connections than 64 descriptors can hold (each needs two).
    let mut held = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", listen)) {
            held.push(s);
        }
    }
    thread::sleep(Duration::from_millis(300));
    drop(held);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(roundtrip(listen, b"alive"), b"alive");
    let text = metrics(m);
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("vds_relay_accept_errors_total "))
        .unwrap();
    let failures = metric(&text, "upstream_failures_total", "fd");
    assert!(
        errors.parse::<u64>().unwrap() + failures > 0,
        "exhaustion was not counted: {text}"
    );
}

#[test]
fn active_checks_mark_a_dead_upstream_down_and_bring_it_back() {
    // The first upstream is down at start; active checks find it down before any client
    // does, so no client connection pays for a failed connect to it.
    let dead_port = free_port();
    let up = banner_server("second");
    let (listen, m) = (free_port(), free_port());
    let _r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route(
            "ac",
            listen,
            &[dead_port, up],
            "check_interval_ms = 100\nbackoff_ms = 150"
        )
    ));
    thread::sleep(Duration::from_millis(300));
    let failures_before = metric(&metrics(m), "upstream_failures_total", "ac");
    for _ in 0..3 {
        assert_eq!(roundtrip(listen, b""), b"second");
    }
    assert_eq!(
        metric(&metrics(m), "upstream_failures_total", "ac"),
        failures_before
    );
    // It comes back: checks mark it up, and failover order prefers it again.
    let l = TcpListener::bind(("127.0.0.1", dead_port)).unwrap();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(b"first");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(3);
    while roundtrip(listen, b"") != b"first" {
        assert!(
            Instant::now() < deadline,
            "the recovered upstream was never used again"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn active_checks_keep_running_after_a_reload() {
    let dead_port = free_port();
    let up = banner_server("second");
    let (listen, m) = (free_port(), free_port());
    let r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route("ac2", listen, &[up], "")
    ));
    r.reload(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route(
            "ac2",
            listen,
            &[dead_port, up],
            "check_interval_ms = 100\nbackoff_ms = 150"
        )
    ));
    // Several back-off periods later the checks must still be marking the dead upstream
    // down, so clients never try it.
    thread::sleep(Duration::from_millis(500));
    let before = metric(&metrics(m), "upstream_failures_total", "ac2");
    for _ in 0..3 {
        assert_eq!(roundtrip(listen, b""), b"second");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        metric(&metrics(m), "upstream_failures_total", "ac2"),
        before
    );
}

/// A log reader that stalls (here: a stderr pipe nobody reads any more) does not slow
/// forwarding: once the pipe and the relay's queue are full, log records are dropped and
/// counted, and every connection still goes through. Read again, the log says how many
/// records it lost.
#[test]
fn a_stalled_log_reader_does_not_slow_forwarding() {
    use std::io::BufRead;
    let up = echo_server();
    let (listen, m) = (free_port(), free_port());
    let tmp = tempfile::Builder::new()
        .prefix("vds-relay-stall-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    let cfg = dir.join("relay.toml");
    let text = format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route("stall", listen, &[up], "")
    );
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vds-proxy"))
        .arg("relay")
        .arg("--config")
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read until the relay serves, then never read again: the pipe fills up.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("serving") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "relay did not start"
        );
    }
    // Far more log lines than a pipe (64 KiB) and the relay's queue hold.
    let per_thread = 3_000;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..per_thread {
                    assert_eq!(roundtrip(listen, b"x"), b"x");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("every connection went through");
    }
    // A connection's record is queued (or dropped) as the relay closes it, after the
    // client has its echo: wait until none is open and the count has settled.
    let dropped_now = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("vds_relay_log_dropped_total "))
            .expect("log_dropped_total exported")
            .parse()
            .unwrap()
    };
    let mut text = metrics(m);
    for _ in 0..50 {
        thread::sleep(Duration::from_millis(200));
        let again = metrics(m);
        let settled = metric(&again, "connections_open", "stall") == 0
            && dropped_now(&again) == dropped_now(&text);
        text = again;
        if settled {
            break;
        }
    }
    assert_eq!(metric(&text, "connections_total", "stall"), 4 * per_thread);
    let dropped = dropped_now(&text);
    assert!(dropped > 2_000, "only {dropped} records dropped");
    // Read again: the backlog comes out, then a line with the count of what was dropped.
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("log record(s) dropped") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let note = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the log says records were dropped");
    assert!(
        note.starts_with(&format!("relay: {dropped} log record(s) dropped:")),
        "{note} (the metric says {dropped})"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `log = "off"` and `"errors"`: no line per connection, failures still for `errors`.
#[test]
fn routes_log_every_connection_only_failures_or_nothing() {
    let up = echo_server();
    let dead = free_port();
    let (a, b, c) = (free_port(), free_port(), free_port());
    let relay = Relay::start(&format!(
        "{}{}{}",
        route("all", a, &[up], ""),
        route("quiet", b, &[dead], "log = \"errors\""),
        route("silent", c, &[dead], "log = \"off\"")
    ));
    assert_eq!(roundtrip(a, b"1"), b"1");
    for port in [b, c] {
        // No upstream: the relay accepts and closes (or resets) at once.
        let mut s = connect(port);
        let _ = s.read_to_end(&mut Vec::new());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(relay.log().contains("route=all client=") && relay.log().contains("route=quiet")) {
        assert!(Instant::now() < deadline, "{}", relay.log());
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    let log = relay.log();
    assert!(
        log.contains("route=all client=") && log.contains("end=closed"),
        "{log}"
    );
    assert!(
        log.contains("route=quiet client=") && log.contains("no upstream reachable"),
        "{log}"
    );
    assert!(!log.contains("route=silent"), "{log}");
}

/// Per-worker counts: `vds_relay_{name}{worker="N"}` for each worker thread.
fn per_worker(text: &str, name: &str) -> Vec<u64> {
    let key = format!("vds_relay_{name}{{worker=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&key))
        .filter_map(|l| l.split_once("\"} ")?.1.parse().ok())
        .collect()
}

/// Sixteen streams open at once, each sending and receiving all the time (as a proxied TLS
/// session does), spread over the worker threads: no worker carries them all while another
/// idles, and every stream's bytes come back whole.
#[test]
fn concurrent_streams_spread_over_the_workers() {
    let workers = thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        workers >= 2,
        "this test needs at least 2 cores (the relay runs a worker per core); this machine has {workers}"
    );
    let up = echo_server();
    let (listen, m) = (free_port(), free_port());
    let _r = Relay::start(&format!(
        "metrics = \"127.0.0.1:{m}\"\n{}",
        route("spread", listen, &[up], "")
    ));
    let streams: Vec<TcpStream> = (0..16)
        .map(|_| {
            let s = connect(listen);
            // Each one passes bytes both ways, so it is carried before the next opens.
            let mut w = s.try_clone().unwrap();
            w.write_all(b"ping").unwrap();
            let mut back = [0u8; 4];
            let mut r = s.try_clone().unwrap();
            r.read_exact(&mut back).unwrap();
            s
        })
        .collect();
    let text = metrics(m);
    let open = per_worker(&text, "worker_connections_open");
    assert_eq!(open.len(), workers, "{text}");
    assert_eq!(open.iter().sum::<u64>(), 16, "{text}");
    let most = *open.iter().max().unwrap();
    assert!(
        most <= 16 / workers as u64 + 1,
        "16 streams over {workers} workers: {open:?}"
    );
    // Both ways at once on every stream, through whichever worker carries it.
    let handles: Vec<_> = streams
        .into_iter()
        .map(|s| {
            thread::spawn(move || {
                let msg = vec![9u8; 1 << 20];
                let mut w = s.try_clone().unwrap();
                let m2 = msg.clone();
                let writer = thread::spawn(move || w.write_all(&m2).unwrap());
                let mut got = vec![0u8; msg.len()];
                let mut r = s;
                r.read_exact(&mut got).unwrap();
                writer.join().unwrap();
                got == msg
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap(), "a stream's bytes came back changed");
    }
}

/// Voluntary context switches of the relay's log writer thread so far.
fn log_writer_wakeups(relay: &Relay) -> u64 {
    let tasks = format!("/proc/{}/task", relay.child.id());
    for t in std::fs::read_dir(&tasks).unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == "relay-log" {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap();
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap();
        }
    }
    panic!("no relay-log thread in {tasks}");
}

/// An idle relay's log writer sleeps until there is something to write (it used to drain
/// an empty queue 100 times a second: a tenth of a 2-core machine at 100 idle hosts), and
/// a record that comes later is still written.
#[test]
fn an_idle_relay_log_writer_sleeps_until_a_record_comes() {
    let up = echo_server();
    let listen = free_port();
    let r = Relay::start(&route("echo", listen, &[up], ""));
    thread::sleep(Duration::from_millis(600));
    let before = log_writer_wakeups(&r);
    thread::sleep(Duration::from_secs(1));
    let idle = log_writer_wakeups(&r) - before;
    assert!(
        idle <= 3,
        "the log writer woke {idle} times in an idle second"
    );
    assert_eq!(roundtrip(listen, b"ping"), b"ping");
    r.wait_for_log("route=echo");
    // Quiet again: asleep again.
    thread::sleep(Duration::from_millis(600));
    let before = log_writer_wakeups(&r);
    thread::sleep(Duration::from_secs(1));
    assert!(log_writer_wakeups(&r) - before <= 3);
}
