//! The tproxy system's tests on real test hosts (included in `tests/testbed.rs`, whose harness
//! it uses).

use super::*;

/// A balanced service on h1 whose replicas answer with the address they see the client at.
fn balanced_peer_echo(replicas: u32, transparent: bool) -> String {
    format!(
        r#"{{"nodes": [{{"name": "h1", "public_ip": "10.213.1.2", "tailscale_ip": "10.213.1.2"}}],
            "services": [{{"name": "echo", "node": "h1", "replicas": {replicas}, "base_port": 10000,
              "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "SYSTEM:echo peer=$SOCAT_PEERADDR"],
              "balancer": {{"port": 8500, "transparent": {transparent}}}}}]}}"#
    )
}

/// What a replica behind h1:8500 says about the client.
fn peer_seen() -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{}:8500", ip(1)).parse().unwrap(),
        std::time::Duration::from_secs(3),
    )
    .expect("connect to the balancer");
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Seed 003 tests 6 and 7: TPROXY rules exist once, the backend sees the client's own
/// address, a re-apply duplicates nothing, and remove takes back exactly what vds-proxy
/// added (rules it did not create stay).
#[test]
fn a_transparent_balancer_passes_the_client_address_and_remove_takes_back_only_its_rules() {
    let env = Env::new("tproxy");
    let forwarding = stdout(&ssh(1, "sysctl -n net.ipv4.ip_forward"));
    let out = ssh(
        1,
        "iptables -t mangle -A PREROUTING -p udp --dport 5353 -j MARK --set-mark 0x7 && ip rule add fwmark 0x7 lookup 200",
    );
    assert_ok(&out);
    std::fs::write(env.dir.join("nodes.json"), balanced_peer_echo(2, true)).unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    wait_servers_up(2);

    // The replica sees this machine's address (the other end of h1's veth), not haproxy's.
    assert_eq!(peer_seen(), "peer=10.213.1.1\n");

    let rules = || {
        stdout(&ssh(
            1,
            "iptables -t mangle -S; ip rule; ip route show table 100",
        ))
    };
    let live = rules();
    for want in [
        "-A PREROUTING -j VDS_TPROXY\n",
        "-A OUTPUT -j VDS_TPROXY_OUT\n",
        "-A VDS_TPROXY -p tcp -m socket --transparent -j MARK --set-xmark 0x1/0x1\n",
        "-A VDS_TPROXY -p tcp -m tcp --dport 8500 -j TPROXY --on-port 8500 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1\n",
        "-A VDS_TPROXY_OUT -p tcp -m tcp --sport 10001 -j MARK --set-xmark 0x1/0x1\n",
        "from all fwmark 0x1/0x1 lookup 100\n",
        "local default dev lo scope host \n",
    ] {
        assert_eq!(live.matches(want).count(), 1, "{want:?} once in:\n{live}");
    }
    // haproxy runs as its own user with the capabilities of its drop-in.
    let procs = stdout(&ssh(1, "ps -o user= -C haproxy | sort -u"));
    assert_eq!(procs, "haproxy\n");
    let caps = stdout(&ssh(
        1,
        "grep CapEff /proc/$(systemctl show -P MainPID haproxy)/status",
    ));
    assert!(caps.contains("0000000000003400"), "{caps}");

    // Re-apply and an explicit reload of the rules unit: nothing doubles.
    let out = env.vds(&["deploy"]);
    assert_says(&out, "ok (no changes)");
    assert!(ssh(1, "systemctl reload vds-tproxy").status.success());
    assert_eq!(rules(), live);

    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(
        &out,
        "backend echo/echo-2 ok UP (unit echo@2.service active)",
    );

    // Rules flushed by hand: status sees it, deploy puts them back (the files are unchanged).
    assert!(ssh(1, "iptables -t mangle -D PREROUTING -j VDS_TPROXY && iptables -t mangle -F VDS_TPROXY && ip rule del fwmark 0x1/0x1 lookup 100").status.success());
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        squeezed(&out)
            .contains("file /etc/vds-proxy/tproxy.rules FAIL what it configures is not in effect"),
        "{}",
        text(&out)
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "put back what these configure");
    assert_eq!(rules(), live);
    assert_eq!(peer_seen(), "peer=10.213.1.1\n");

    // Remove: no rule, route, drop-in, config or unit of vds-proxy is left; the foreign
    // rule and policy rule are untouched, haproxy runs as the package set it up.
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    let after = rules();
    assert!(!after.contains("VDS_TPROXY"), "{after}");
    assert!(!after.contains("lookup 100"), "{after}");
    assert!(!after.contains("local default"), "{after}");
    assert!(
        after.contains(
            "-A PREROUTING -p udp -m udp --dport 5353 -j MARK --set-xmark 0x7/0xffffffff"
        ),
        "{after}"
    );
    assert!(after.contains("from all fwmark 0x7 lookup 200"), "{after}");
    let left = stdout(&ssh(
        1,
        "ls -d /etc/systemd/system/haproxy.service.d /etc/sysctl.d/60-vds-proxy-tproxy.conf /etc/vds-proxy /etc/systemd/system/vds-tproxy.service /etc/systemd/system/echo@.service 2>/dev/null; systemctl list-units --no-legend 'echo@*' vds-tproxy.service",
    ));
    assert_eq!(left, "");
    assert_eq!(
        stdout(&ssh(1, "sysctl -n net.ipv4.ip_forward")),
        forwarding,
        "the kernel setting is back to what it was"
    );
    assert_eq!(stdout(&ssh(1, "systemctl is-active haproxy")), "active\n");
    assert_eq!(
        stdout(&ssh(
            1,
            "ps -o user= -p $(systemctl show -P MainPID haproxy)"
        )),
        "root\n"
    );
    ssh(
        1,
        "iptables -t mangle -D PREROUTING -p udp --dport 5353 -j MARK --set-mark 0x7; ip rule del fwmark 0x7 lookup 200",
    );
}
