//! The firewall system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// The rendered nftables rules pass `nft -c` (nftables' own check).
#[test]
fn rendered_firewall_rules_pass_nft_check() {
    let (_, plan) = plan_of("examples/web.json");
    let tmp = tempfile::Builder::new().prefix("vds-firewall-").tempdir().unwrap();
    let file = tmp.path().join("vds-firewall.nft");
    std::fs::write(&file, firewall_rules(&plan)).unwrap();
    must_pass(&["nft", "-c", "-f", "apt-get install nftables"], &file);
    std::fs::remove_file(&file).unwrap();
}

/// Whatever the inventory says, the SSH port vds-proxy uses is open, and so is every port
/// the node's systems listen on (a route, a WireGuard tunnel) — and nothing else.
#[test]
fn the_firewall_opens_the_ssh_port_and_every_claimed_port() {
    // An app's published port is opened, its loopback-only port (8000) is not.
    let text = r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1", "ssh_port": 2222},
                             {"name": "b", "public_ip": "203.0.113.2"}],
        "routes": [{"port": 8443, "proxy_node": "a", "target_node": "b", "target_port": 9000, "service": "web"}],
        "wireguard": [{"interface": "wg0", "topology": "hub", "hub": "a", "port": 51820,
                       "members": [{"node": "a", "address": "10.8.0.1/24"}, {"node": "b", "address": "10.8.0.2/24"}]}],
        "apps": [{"name": "shop", "node": "a", "services": [
                  {"name": "web", "image": "localhost/web:1", "ports": ["8000:80"], "publish": ["443:8443"]}]}],
        "firewalls": [{"node": "a"}]}"#;
    let inv = inventory::from_str(Path::new("nodes.json"), text, &roles::all().sections()).unwrap();
    let t = Templates::new(None, roles::all().templates()).unwrap();
    let plan = plan::build(&inv, &t, &fake_relay(), &fake_keys(&inv), &roles::all()).unwrap();
    let rules = firewall_rules(&plan);
    let accepts: Vec<&str> = rules
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("dport"))
        .collect();
    assert_eq!(
        accepts,
        [
            "tcp dport 2222 accept comment \"SSH: vds-proxy connects here\"",
            "tcp dport 443 accept comment \"$.apps[0].services[0].publish[0]\"",
            "tcp dport 8443 accept comment \"$.routes[0].port\"",
            "udp dport 51820 accept comment \"$.wireguard[0].port (wg0)\"",
        ],
        "{rules}"
    );
    assert!(rules.contains("policy drop;"), "{rules}");
}
