//! The wireguard system's tests on real test hosts (included in `tests/testbed.rs`, whose harness
//! it uses).

use super::*;

/// A WireGuard mesh of the given hosts (userspace: these kernels have no wireguard module).
fn wireguard_inventory(hosts: &[u32]) -> String {
    let members: Vec<String> = hosts
        .iter()
        .map(|i| format!(r#"{{"node": "h{i}", "address": "10.99.0.{i}/24", "userspace": true}}"#))
        .collect();
    format!(
        r#"{{"nodes": [{}], "wireguard": [{{"interface": "wg0", "members": [{}]}}]}}"#,
        nodes_json(3),
        members.join(", ")
    )
}

/// Sends a line from host `from` to `addr:port` and returns the answer.
fn echo_from(from: u32, addr: &str, port: u16) -> String {
    stdout(&ssh(
        from,
        &format!("echo through-the-tunnel | timeout 5 socat - TCP:{addr}:{port}"),
    ))
}

/// Seeds 000/001: a WireGuard tunnel between two hosts with keys made on the hosts; a
/// third peer joins without restarting the first tunnel; status reports handshakes;
/// remove deletes interface, config and keys.
#[test]
fn wireguard_tunnels_carry_traffic_and_grow_without_restarts() {
    let env = Env::new("wireguard");
    ssh(
        3,
        "systemctl stop wg-echo 2>/dev/null; systemctl reset-failed wg-echo 2>/dev/null; systemd-run -q --unit=wg-echo socat TCP-LISTEN:9100,fork,reuseaddr EXEC:cat",
    );
    std::fs::write(env.dir.join("nodes.json"), wireguard_inventory(&[1, 2])).unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    // Right after deploying a fresh mesh, before any traffic, status is healthy: deploy
    // and status start the handshakes themselves (what CI runs: deploy, then status).
    let st = env.vds(&["status"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st));
    assert_row(&st, "h1 wireguard wg0 peer h2 ok handshake");
    // h2 runs the echo service on 9000 (Env::clean); reach it over the tunnel.
    assert_eq!(echo_from(1, "10.99.0.2", 9000), "through-the-tunnel\n");

    // The private key stays on the node, 0600, and is never in what vds-proxy printed.
    let key = stdout(&ssh(
        1,
        "stat -c '%a %U' /etc/wireguard/wg0.key; cat /etc/wireguard/wg0.key",
    ));
    let mut lines = key.lines();
    assert_eq!(lines.next(), Some("600 root"));
    let private = lines.next().unwrap().to_string();
    assert!(!text(&out).contains(&private));
    assert!(!stdout(&ssh(1, "cat /etc/wireguard/wg0.conf")).contains(&private));

    // A no-op re-apply restarts nothing and keeps the keys.
    let tunnel = invocation(1, "wg-quick@wg0.service");
    let out = env.vds(&["deploy"]);
    assert_row(&out, "h1 0 ok (no changes)");
    assert_eq!(invocation(1, "wg-quick@wg0.service"), tunnel);
    assert!(stdout(&ssh(1, "cat /etc/wireguard/wg0.key")).contains(&private));

    // A third peer: h1's tunnel is reloaded (wg syncconf), not restarted, and keeps its key.
    std::fs::write(env.dir.join("nodes.json"), wireguard_inventory(&[1, 2, 3])).unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(invocation(1, "wg-quick@wg0.service"), tunnel);
    let st = env.vds(&["status"]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st));
    assert_eq!(echo_from(1, "10.99.0.2", 9000), "through-the-tunnel\n");
    assert_eq!(echo_from(1, "10.99.0.3", 9100), "through-the-tunnel\n");

    // --rotate-keys: new keys on every node, the tunnels restart with them and carry on.
    let out = env.vds(&["deploy", "--rotate-keys"]);
    assert_ok(&out);
    let rotated = stdout(&ssh(1, "cat /etc/wireguard/wg0.key"));
    assert_ne!(rotated.trim(), private);
    assert!(!text(&out).contains(rotated.trim()));
    assert_eq!(echo_from(1, "10.99.0.2", 9000), "through-the-tunnel\n");
    assert_eq!(echo_from(1, "10.99.0.3", 9100), "through-the-tunnel\n");
    assert_eq!(echo_from(2, "10.99.0.3", 9100), "through-the-tunnel\n");

    let out = env.vds(&["status"]);
    assert_ok(&out);
    let s = squeezed(&out);
    for (node, peer) in [(1, 2), (1, 3), (2, 1), (3, 1)] {
        assert!(
            s.contains(&format!("h{node} wireguard wg0 peer h{peer} ok handshake ")),
            "{s}"
        );
    }
    assert!(!s.contains(&private), "status printed a private key");

    // A peer removed by hand: status sees it, deploy puts it back without a restart.
    assert!(
        ssh(1, "wg set wg0 peer $(wg show wg0 peers | head -1) remove")
            .status
            .success()
    );
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        squeezed(&out)
            .contains("h1 file /etc/wireguard/wg0.conf FAIL what it configures is not in effect"),
        "{}",
        text(&out)
    );
    let tunnel = invocation(1, "wg-quick@wg0.service");
    let out = env.vds(&["deploy"]);
    assert_says(&out, "put back what these configure");
    assert_eq!(invocation(1, "wg-quick@wg0.service"), tunnel);
    assert_eq!(stdout(&ssh(1, "wg show wg0 peers | wc -l")).trim(), "2");
    assert_eq!(echo_from(1, "10.99.0.2", 9000), "through-the-tunnel\n");
    assert_eq!(echo_from(1, "10.99.0.3", 9100), "through-the-tunnel\n");

    // A stopped tunnel is reported, in the words of the seed's alert.
    assert!(ssh(3, "systemctl stop wg-quick@wg0").status.success());
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(&out, "h3 unit wg-quick@wg0.service FAIL inactive");

    let out = env.vds(&["remove"]);
    assert_ok(&out);
    for i in 1..=3 {
        let left = stdout(&ssh(
            i,
            "ip link show wg0 2>/dev/null; ls -A /etc/wireguard; ls -d /etc/systemd/system/wg-quick@wg0.service.d 2>/dev/null; pgrep wireguard-go",
        ));
        assert_eq!(left, "", "h{i} still has WireGuard state");
    }
    ssh(3, "systemctl stop wg-echo");
}

/// Seed 001: a worker (h2) sends all its egress through the hub (h1) over WireGuard; a
/// server elsewhere (h3) sees the hub's address, not the worker's.
#[test]
fn a_route_all_spoke_sends_its_egress_through_the_hub() {
    let env = Env::new("wg-egress");
    ssh(
        3,
        "systemctl stop peer-echo 2>/dev/null; systemctl reset-failed peer-echo 2>/dev/null; systemd-run -q --unit=peer-echo socat TCP-LISTEN:9200,fork,reuseaddr 'SYSTEM:echo peer=$SOCAT_PEERADDR'",
    );
    let seen_by_h3 = || stdout(&ssh(2, "timeout 5 socat - TCP:10.213.3.2:9200 </dev/null"));
    let forwarding = stdout(&ssh(1, "sysctl -n net.ipv4.ip_forward"));
    assert_eq!(
        seen_by_h3(),
        "peer=10.213.2.2\n",
        "before: h2 goes out directly"
    );
    let nodes: Vec<String> = (1..=3)
        .map(|i| format!(r#"{{"name": "h{i}", "public_ip": "{0}"}}"#, ip(i)))
        .collect();
    std::fs::write(
        env.dir.join("nodes.json"),
        format!(
            r#"{{"nodes": [{}], "wireguard": [{{"interface": "wg1", "topology": "hub", "hub": "h1", "members": [
                {{"node": "h1", "address": "10.98.0.1/24", "userspace": true}},
                {{"node": "h2", "address": "10.98.0.2/24", "userspace": true, "route_all": true}}]}}]}}"#,
            nodes.join(", ")
        ),
    )
    .unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(
        seen_by_h3(),
        "peer=10.213.1.2\n",
        "h2's egress leaves through h1"
    );
    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(&out, "h2 wireguard wg1 peer h1 ok handshake");

    assert!(env.vds(&["remove"]).status.success());
    assert_eq!(
        seen_by_h3(),
        "peer=10.213.2.2\n",
        "after remove: direct again"
    );
    assert_eq!(
        stdout(&ssh(1, "iptables -t nat -S | grep -c MASQUERADE")),
        "0\n"
    );
    assert_eq!(
        stdout(&ssh(1, "sysctl -n net.ipv4.ip_forward")),
        forwarding,
        "the hub's forwarding setting is back to what it was"
    );
    ssh(3, "systemctl stop peer-echo");
}
