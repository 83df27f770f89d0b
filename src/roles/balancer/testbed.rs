//! The balancer system's tests on real test hosts (included in `tests/testbed.rs`, whose harness
//! it uses).

use super::*;

#[test]
fn a_broken_haproxy_config_is_caught_before_it_goes_live() {
    let env = Env::new("haproxy-check");
    std::fs::write(env.dir.join("nodes.json"), balanced(1)).unwrap();
    assert!(env.vds(&["deploy"]).status.success());
    let before = stdout(&ssh(1, "sha256sum /etc/haproxy/haproxy.cfg"));
    let worker = haproxy_worker();
    let tpl = env.dir.join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(
        tpl.join("haproxy.cfg.j2"),
        "global\n    no-such-directive {{ node.name }}\nfrontend f\n    bind :8500\n",
    )
    .unwrap();
    let out = env.vds(&["deploy", "--templates", tpl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, "validation failed; nothing was changed");
    assert_says(&out, "/etc/haproxy/haproxy.cfg");
    assert_eq!(
        stdout(&ssh(1, "sha256sum /etc/haproxy/haproxy.cfg")),
        before
    );
    assert_eq!(haproxy_worker(), worker);
    assert!(env.vds(&["remove"]).status.success());
}

/// Polls the state of server `echo-{n}` until it is `want`; returns how long that took.
fn wait_server_state(n: u32, want: &str, limit: std::time::Duration) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        let servers = haproxy_servers();
        let name = format!("echo-{n}");
        if servers.iter().any(|(s, st)| *s == name && st == want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "echo-{n} not {want} after {limit:?}: {servers:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A stopped replica is DOWN within ~6 s (inter 2000 fall 3) while a steady client loses
/// no connection, and UP again within ~4 s (rise 2) once it is back.
#[test]
fn a_stopped_replica_is_taken_out_and_put_back_by_the_health_checks() {
    let env = Env::new("failover");
    std::fs::write(env.dir.join("nodes.json"), balanced(2)).unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    wait_servers_up(2);

    // A steady client through the whole time HAProxy needs to notice: connections refused
    // by the stopped replica are retried on the other one (retries + redispatch).
    let client = SteadyClient::start(8500);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stopping = std::time::Instant::now();
    assert!(ssh(1, "systemctl stop echo@2.service").status.success());
    let stopped = std::time::Instant::now();
    let down = wait_server_state(2, "DOWN", std::time::Duration::from_secs(9));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (ok, failed) = client.stop();
    eprintln!("echo-2 DOWN after {down:?}; {ok} connections meanwhile, failed: {failed:?}");
    // A connection the replica is echoing at the moment it is killed is cut: no balancer
    // can save that one. Every connection opened after it is stopped must work.
    let (cut, after): (Vec<Failure>, Vec<Failure>) = failed
        .into_iter()
        .partition(|f| f.began <= stopped && f.ended >= stopping);
    assert!(
        after.is_empty(),
        "{} connection(s) failed after the replica was stopped: {after:?}",
        after.len()
    );
    assert!(
        cut.len() <= 1,
        "more than the one in flight was cut: {cut:?}"
    );
    assert!(ok > 50, "only {ok} connections in {down:?}");
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(&out, "backend echo/echo-2 FAIL DOWN (unit echo@2.service ");

    assert!(ssh(1, "systemctl start echo@2.service").status.success());
    let up = wait_server_state(2, "UP", std::time::Duration::from_secs(7));
    eprintln!("echo-2 UP after {up:?}");
    assert!(env.vds(&["status"]).status.success());
    assert!(env.vds(&["remove"]).status.success());
}
