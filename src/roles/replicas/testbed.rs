//! Replicated services on a real test host (included in `tests/testbed.rs`, whose harness
//! it uses): scaling without failed connections, draining, exact command lines, and a
//! secret kept out of the inventory reaches only its replica's 0600 file.

use super::*;

/// A connection through the balancer on h1 that stays open; each call of `ping` sends a
/// line and reads it back.
struct Held(std::net::TcpStream);

impl Held {
    fn open() -> Held {
        let s = std::net::TcpStream::connect(format!("{}:8500", ip(1))).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        let mut h = Held(s);
        assert!(h.ping(), "a fresh connection echoes");
        h
    }

    fn ping(&mut self) -> bool {
        use std::io::{BufRead, Write};
        if self.0.write_all(b"still here\n").is_err() {
            return false;
        }
        let mut line = String::new();
        let mut r = std::io::BufReader::new(&self.0);
        matches!(r.read_line(&mut line), Ok(n) if n > 0) && line == "still here\n"
    }
}

/// A service's secret read from the environment of the deploy: the replica's env file on
/// the node holds it, mode 0600, owned by root; no output of deploy, show or status has
/// it; a changed value redeploys that file only, an unchanged one is a no-op.
#[test]
fn a_secret_from_the_environment_reaches_only_its_replicas_file() {
    let env = Env::new("secret-env");
    let first = "5ec2e70000000000000000000000beef";
    let second = "5ec2e70000000000000000000000cafe";
    env.inventory("[]");
    env.add_sections(
        r#""services": [{"name": "sec", "node": "h1", "replicas": 1, "base_port": 10400,
            "secret": {"env": "VDS_TEST_REPLICA_SECRET"},
            "exec": ["/usr/bin/socat", "TCP-LISTEN:{port},fork,reuseaddr", "EXEC:cat"]}]"#,
    );
    let vds = |args: &[&str], value: &str| {
        env.command(args)
            .env("VDS_TEST_REPLICA_SECRET", value)
            .output()
            .unwrap()
    };
    let out = vds(&["deploy"], first);
    assert_ok(&out);
    let file = "/etc/vds-proxy/sec/1.env";
    assert_eq!(
        stdout(&ssh(
            1,
            &format!("stat -c '%a %U' {file}; grep -c '^SECRET={first}$' {file}")
        )),
        "600 root\n1\n"
    );
    for args in [&["show"][..], &["show", "--diff"], &["status"], &["deploy"]] {
        let out = vds(args, first);
        assert!(!text(&out).contains(first), "{args:?} printed the secret");
    }
    assert!(text(&vds(&["deploy"], first)).contains("no changes"));
    let out = vds(&["deploy", "--format", "json"], second);
    assert_ok(&out);
    let changed = text(&out);
    assert!(
        !changed.contains(second) && !changed.contains(first),
        "{changed}"
    );
    // That file, and only that file, was deployed again.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = report["hosts"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, [file], "{changed}");
    assert_eq!(
        stdout(&ssh(1, &format!("grep -c '^SECRET={second}$' {file}"))),
        "1\n"
    );
    // Without the variable: bad input, the host untouched.
    let out = env
        .command(&["deploy"])
        .env_remove("VDS_TEST_REPLICA_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(
        "$.services[0].secret: the environment variable VDS_TEST_REPLICA_SECRET is not set"
    ));
    assert_eq!(
        stdout(&ssh(1, &format!("grep -c '^SECRET={second}$' {file}"))),
        "1\n"
    );
    assert_ok(&vds(&["remove"], second));
}

/// A scale-down whose stop fails (the unit's links cannot be removed: /etc read-only
/// there) fails the deploy with why, and the host is as it was: the replica still
/// configured, running and in the manifest. Once /etc is writable again, the next deploy
/// stops it for real.
#[test]
fn a_stop_that_fails_is_reported_and_rolled_back_never_done() {
    let env = Env::new("stop-fails");
    let section = |n: u32| {
        format!(
            r#""services": [{{"name": "stopme", "node": "h1", "replicas": {n}, "base_port": 10600,
                "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "EXEC:cat"]}}]"#
        )
    };
    env.inventory("[]");
    env.add_sections(&section(3));
    assert_ok(&env.vds(&["deploy"]));
    let wants = "/etc/systemd/system/multi-user.target.wants";
    assert_ok(&ssh(1, &format!("mount --bind -o ro {wants} {wants}")));
    env.inventory("[]");
    env.add_sections(&section(2));
    let out = env.vds(&["deploy"]);
    let said = text(&out);
    let _ = ssh(1, &format!("umount {wants}"));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot stop stopme@3.service: it is still active and enabled"),
        "{said}"
    );
    assert!(!said.contains("stopped stopme@3.service"), "{said}");
    assert_eq!(
        stdout(&ssh(
            1,
            "systemctl is-active stopme@3.service; systemctl is-enabled stopme@3.service; \
             test -e /etc/vds-proxy/stopme/3.env && grep -c 'stopme/3.env' /var/lib/vds-proxy/state.json"
        )),
        "active\nenabled\n1\n"
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(
        stdout(&ssh(
            1,
            "systemctl is-active stopme@3.service; systemctl is-enabled stopme@3.service"
        )),
        "inactive\ndisabled\n"
    );
    assert_ok(&env.vds(&["remove"]));
}

/// Seed 003: replicas behind HAProxy, scaled by editing one number, under load; new
/// replicas join the running HAProxy without a reload.
#[test]
fn balanced_replicas_scale_without_failed_connections() {
    let env = Env::new("balancer");
    let orig = stdout(&ssh(1, "sha256sum /etc/haproxy/haproxy.cfg"));
    std::fs::write(env.dir.join("nodes.json"), balanced(2)).unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(echo(&ip(1), 8500), "ping through vds-proxy\n");
    wait_servers_up(2);

    // A no-op re-apply does not reload haproxy.
    let worker = haproxy_worker();
    let out = env.vds(&["deploy"]);
    assert_says(&out, "h1    0        ok (no changes)");
    assert_eq!(haproxy_worker(), worker);

    // A client keeps opening and using connections through every scaling step. Scaling
    // up adds the new server to the running haproxy (its runtime API: no new worker);
    // scaling down reloads it (the removed replicas drain first).
    let client = SteadyClient::start(8500);
    for replicas in [3u32, 1] {
        std::fs::write(env.dir.join("nodes.json"), balanced(replicas)).unwrap();
        let out = env.vds(&["deploy"]);
        assert_ok(&out);
        if replicas == 3 {
            assert_says(&out, "updated haproxy.service in place, without a reload");
            assert_eq!(haproxy_worker(), worker, "scaling up started a new worker");
            // Added once it listens, at full health: status is healthy right away.
            assert_ok(&env.vds(&["status"]));
        } else {
            assert_says(&out, "reloaded haproxy.service");
            assert_ne!(haproxy_worker(), worker);
        }
        wait_servers_up(replicas as usize);
        let cfg = stdout(&ssh(
            1,
            "grep -c '^    server echo-' /etc/haproxy/haproxy.cfg",
        ));
        assert_eq!(cfg.trim(), replicas.to_string());
        let units = stdout(&ssh(
            1,
            "systemctl list-units --no-legend --state=active 'echo@*' | wc -l",
        ));
        assert_eq!(units.trim(), replicas.to_string());
    }
    let (ok, failed) = client.stop();
    assert!(ok > 20, "the client barely ran: {ok}");
    assert!(
        failed.is_empty(),
        "{} failed connections of {}: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );

    // Remove: the package's haproxy.cfg is back, haproxy still runs, no replica is left.
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    // Said as what happened: the host's own file is put back, not removed.
    assert_says(&out, "put back /etc/haproxy/haproxy.cfg");
    assert!(!text(&out).contains("removed /etc/haproxy/haproxy.cfg"), "{}", text(&out));
    assert_eq!(stdout(&ssh(1, "sha256sum /etc/haproxy/haproxy.cfg")), orig);
    assert_eq!(stdout(&ssh(1, "systemctl is-active haproxy")), "active\n");
    let left = stdout(&ssh(
        1,
        "ls /etc/systemd/system/ /etc/vds-proxy 2>&1; systemctl list-units --no-legend 'echo@*'",
    ));
    assert!(!left.contains("echo@"), "{left}");
}

/// Scale-down waits for the connections the old haproxy worker still holds on a removed
/// replica before stopping it, and says when drain_timeout cut some.
#[test]
fn a_scale_down_waits_for_open_connections_on_removed_replicas() {
    let env = Env::new("drain");
    let inventory = |replicas: u32, drain: u32| {
        balanced(replicas).replace(
            r#""balancer": {"port": 8500}"#,
            &format!(r#""balancer": {{"port": 8500, "drain_timeout": {drain}}}"#),
        )
    };
    std::fs::write(env.dir.join("nodes.json"), inventory(2, 30)).unwrap();
    assert!(env.vds(&["deploy"]).status.success());
    wait_servers_up(2);

    // leastconn puts one held connection on each replica.
    let mut held = vec![Held::open(), Held::open()];
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(7));
        let alive = held.iter_mut().all(|h| h.ping());
        drop(held);
        alive
    });
    std::fs::write(env.dir.join("nodes.json"), inventory(1, 30)).unwrap();
    let start = std::time::Instant::now();
    let out = env.vds(&["deploy"]);
    let took = start.elapsed();
    assert_ok(&out);
    assert!(
        closer.join().unwrap(),
        "a held connection was cut by the scale-down"
    );
    // It waited for the held connection: the drain took seconds, the deploy until the close.
    let waited: u64 = stdout(&out)
        .split("stopped echo@2.service after its connections closed (")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no drain line: {}", text(&out)));
    assert!(waited >= 1, "did not wait: {}", text(&out));
    assert!(
        took >= std::time::Duration::from_secs(6),
        "did not wait: {took:?}"
    );
    assert_eq!(
        stdout(&ssh(1, "systemctl is-active echo@2.service")),
        "inactive\n"
    );

    // With a short drain_timeout, a connection that stays open is cut, and the deploy says so.
    std::fs::write(env.dir.join("nodes.json"), inventory(2, 1)).unwrap();
    assert!(env.vds(&["deploy"]).status.success());
    wait_servers_up(2);
    let held = vec![Held::open(), Held::open()];
    std::fs::write(env.dir.join("nodes.json"), inventory(1, 1)).unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(
        &out,
        "stopped echo@2.service with 1 connection(s) still open",
    );
    drop(held);
    assert!(env.vds(&["remove"]).status.success());
}

/// Words of a replica's command that systemd would otherwise interpret (`%n`, `${SECRET}`,
/// quotes, a trailing backslash, a `;`) are accepted on purpose: they are quoted so that
/// systemd runs exactly the words given, which the replica's own output shows.
#[test]
fn replica_commands_run_exactly_the_words_given() {
    let env = Env::new("argv");
    let inv = r#"{"nodes": [{"name": "h1", "public_ip": "10.213.1.2"}],
        "services": [{"name": "argv", "node": "h1", "replicas": 1, "base_port": 65535,
          "exec": ["/bin/sh", "-c", "printf '<%s>' \"$@\"; echo; exec socat TCP-LISTEN:$PORT,fork,reuseaddr EXEC:cat", "sh",
                   "%n", "${SECRET}", "x\"y", "a\\", "b;c", "{port}"]}]}"#;
    std::fs::write(env.dir.join("nodes.json"), inv).unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    let mut seen = String::new();
    for _ in 0..50 {
        seen = stdout(&ssh(
            1,
            "journalctl _SYSTEMD_INVOCATION_ID=$(systemctl show -P InvocationID argv@1.service) -o cat --no-pager | grep '^<'",
        ));
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen, "<%n><${SECRET}><x\"y><a\\><b;c><65535>\n");
    // No description given: the unit says whose replica it is.
    let unit = stdout(&ssh(1, "systemctl show -P Description argv@1.service"));
    assert_eq!(unit, "vds-proxy replica of argv (replica 1)\n");
    assert!(env.vds(&["remove"]).status.success());
}
