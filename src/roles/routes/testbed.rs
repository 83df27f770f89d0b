//! The routes system's tests on real test hosts (included in `tests/testbed.rs`, whose harness
//! it uses).

use super::*;

/// Sends SIGCONT to journald on h1 when dropped, so a failing test leaves it running.
struct ResumeJournald;

impl Drop for ResumeJournald {
    fn drop(&mut self) {
        let _ = ssh(
            1,
            "kill -CONT $(systemctl show -P MainPID systemd-journald)",
        );
    }
}

#[test]
fn a_relay_config_change_reloads_without_restarting() {
    let env = Env::new("reload");
    env.inventory(TWO_ROUTES);
    assert!(env.vds(&["deploy"]).status.success());
    let relay = invocation(1, "vds-relay.service");
    let mut held = std::net::TcpStream::connect(format!("{}:8443", ip(1))).unwrap();
    held.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    env.inventory(
        r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"},
            {"port": 8445, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web3"},
            {"port": 8444, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "api", "forwarder": "socat"}]"#,
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "reloaded vds-relay.service");
    assert_eq!(
        invocation(1, "vds-relay.service"),
        relay,
        "a config change restarted the relay"
    );
    assert_eq!(echo(&ip(1), 8445), "ping through vds-proxy\n");
    // The connection opened before the reload still flows.
    use std::io::{Read, Write};
    held.write_all(b"held\n").unwrap();
    let mut buf = [0u8; 5];
    held.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"held\n");
}

/// A stopped journald (SIGSTOP: its sockets stay, nobody reads them) does not slow the
/// deployed relay: every connection still goes through while its log records are dropped,
/// and once journald runs again the relay's journal says how many were lost.
#[test]
fn a_stopped_journald_does_not_slow_the_relay() {
    let env = Env::new("journald-stall");
    // An echo server fast enough to relay thousands of connections in a few seconds (the
    // socat echo forks per connection): the benchmarks' C backend, on h2:9100.
    let backend = env.dir.join("backend");
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&backend)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/relay/backend.c"
        ))
        .output()
        .expect("cc (the C compiler Rust links with) runs");
    assert_ok(&out);
    let out = ssh_with_input(
        2,
        "systemctl stop test-fast-echo 2>/dev/null; systemctl reset-failed test-fast-echo 2>/dev/null; cat > /usr/local/bin/vds-test-backend && chmod 755 /usr/local/bin/vds-test-backend && systemd-run -q --unit=test-fast-echo -p LimitNOFILE=20000 /usr/local/bin/vds-test-backend 9100 9101 any",
        &std::fs::read(&backend).unwrap(),
    );
    assert_ok(&out);
    env.inventory(
        r#"[{"port": 8460, "proxy_node": "h1", "target_node": "h2", "target_port": 9100, "service": "stall"}]"#,
    );
    assert_ok(&env.vds(&["deploy"]));
    assert_eq!(echo(&ip(1), 8460), "ping through vds-proxy\n");
    let relay = invocation(1, "vds-relay.service");

    // Stopped; resumed by the guard, or by a timer should this test not get that far.
    let out = ssh(
        1,
        "pid=$(systemctl show -P MainPID systemd-journald) && kill -STOP $pid && systemd-run -q --on-active=120 /bin/sh -c \"kill -CONT $pid\"",
    );
    assert_ok(&out);
    let resume = ResumeJournald;
    // Far more records than the relay's queue (8192) and journald's socket hold; a
    // connection that waited for the log would time out.
    let per_thread = 4_000;
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let failed = failed.clone();
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let addr = format!("{}:8460", ip(1)).parse().unwrap();
                for _ in 0..per_thread {
                    let ok = (|| -> std::io::Result<bool> {
                        let timeout = std::time::Duration::from_secs(3);
                        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
                        s.set_read_timeout(Some(timeout))?;
                        s.write_all(b"x")?;
                        let mut b = [0u8; 1];
                        s.read_exact(&mut b)?;
                        Ok(&b == b"x")
                    })();
                    if !matches!(ok, Ok(true)) {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(
        stdout(&ssh(
            1,
            "awk '{print $3}' /proc/$(systemctl show -P MainPID systemd-journald)/stat"
        ))
        .trim(),
        "T",
        "journald was stopped throughout the load"
    );
    drop(resume);
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        failed,
        0,
        "{failed} of {} connections failed",
        4 * per_thread
    );

    let note =
        format!("journalctl _SYSTEMD_INVOCATION_ID={relay} -o cat | grep 'log record(s) dropped'");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let line = loop {
        let out = ssh(1, &note);
        if out.status.success() {
            break stdout(&out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relay's journal does not say records were dropped: {}",
            stdout(&ssh(
                1,
                &format!("journalctl _SYSTEMD_INVOCATION_ID={relay} -o cat | tail -5")
            ))
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let dropped: u64 = line
        .lines()
        .map(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no count in {l:?}"))
        })
        .sum();
    assert!(dropped > 1_000, "only {dropped} records dropped: {line}");
    // Every connection is either in the journal or in that count (the first is the echo).
    let written: u64 = stdout(&ssh(
        1,
        &format!(
            "journalctl _SYSTEMD_INVOCATION_ID={relay} -o cat | grep -c 'route=stall-8460 client='"
        ),
    ))
    .trim()
    .parse()
    .unwrap();
    assert_eq!(written + dropped, 4 * per_thread + 1, "{line}");
    assert_ok(&ssh(
        2,
        "systemctl stop test-fast-echo; rm -f /usr/local/bin/vds-test-backend",
    ));
}

/// The units vds-proxy renders score "OK" or better in `systemd-analyze security`.
#[test]
fn forwarder_units_are_hardened() {
    let env = Env::new("security");
    env.inventory(TWO_ROUTES);
    assert!(env.vds(&["deploy"]).status.success());
    for unit in ["vds-relay.service", "socat-proxy-api-8444.service"] {
        let out = stdout(&ssh(
            1,
            &format!("systemd-analyze security --no-pager {unit} | tail -1"),
        ));
        let score: f64 = out
            .split(": ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in {out:?}"));
        assert!(score < 5.0, "{unit}: {out}");
        assert!(out.contains("OK") || out.contains("SAFE"), "{unit}: {out}");
    }
}
