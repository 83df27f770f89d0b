//! Runs the real `vds-proxy` binary on the examples and on bad inventories.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vds-proxy"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NODES_CONFIG");
    c
}

fn tmp_inventory(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vds-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("nodes.json");
    std::fs::write(&p, text).unwrap();
    p
}

/// Each bad inventory and the exact messages it must produce (after the file name).
const BAD: &[(&str, &str, &[&str])] = &[
    (
        "syntax",
        "{\"nodes\": [\n  {\"name\": \"a\",}\n]}",
        &["2:16: invalid JSON: trailing comma"],
    ),
    (
        "empty",
        "{}",
        &[
            "$.nodes: the inventory has no nodes; add at least one node, e.g. {\"name\": \"vds-1\", \"public_ip\": \"203.0.113.10\"}",
        ],
    ),
    (
        "unknown-key",
        r#"{"nodes": [{"name": "a", "tailscale_ipp": "100.64.0.1"}]}"#,
        &[
            "$.nodes[0].tailscale_ipp: unknown key \"tailscale_ipp\"; did you mean \"tailscale_ip\"?",
        ],
    ),
    (
        "duplicate-node",
        r#"{"nodes": [{"name": "a"}, {"name": "a"}]}"#,
        &[
            "$.nodes[1].name: duplicate node name \"a\" (first used at $.nodes[0]); node names must be unique",
        ],
    ),
    (
        "bad-name",
        r#"{"nodes": [{"name": "VDS_1;rm"}]}"#,
        &[
            "$.nodes[0].name: \"VDS_1;rm\" is not a safe name; use lowercase letters, digits and '-', starting with a letter or digit (at most 63 characters), e.g. \"vds-1\"",
        ],
    ),
    (
        "bad-ip",
        r#"{"nodes": [{"name": "a", "public_ip": "300.1.1.1"}]}"#,
        &[
            "$.nodes[0].public_ip: \"300.1.1.1\" is not an IP address; expected e.g. \"203.0.113.10\" or \"fd7a:115c::1\"",
        ],
    ),
    (
        "missing-node",
        concat!(
            r#"{"nodes": [{"name": "vds-1", "tailscale_ip": "100.64.0.10"}], "routes": ["#,
            r#"{"port": 8443, "proxy_node": "vds-2", "target_node": "vds-1", "target_port": 8443, "service": "web"}]}"#
        ),
        &["$.routes[0].proxy_node: node \"vds-2\" does not exist; did you mean \"vds-1\"?"],
    ),
    (
        "inactive-node",
        concat!(
            r#"{"nodes": [{"name": "a", "tailscale_ip": "100.64.0.10"}, {"name": "b", "tailscale_ip": "100.64.0.1", "active": false}], "routes": ["#,
            r#"{"port": 8443, "proxy_node": "a", "target_node": "b", "target_port": 8443, "service": "web"}]}"#
        ),
        &[
            "$.routes[0].target_node: node \"b\" is inactive (\"active\": false); activate it or remove this entry",
        ],
    ),
    (
        "port-range",
        concat!(
            r#"{"nodes": [{"name": "a", "tailscale_ip": "100.64.0.10"}], "routes": ["#,
            r#"{"port": 70000, "proxy_node": "a", "target_node": "a", "target_port": 0, "service": "web"}]}"#
        ),
        &[
            "$.routes[0].port: port 70000 is out of range; expected a whole number from 1 to 65535",
            "$.routes[0].target_port: port 0 is out of range; expected a whole number from 1 to 65535",
        ],
    ),
    (
        "port-conflict",
        concat!(
            r#"{"nodes": [{"name": "a", "tailscale_ip": "100.64.0.10"}], "routes": ["#,
            r#"{"port": 8443, "proxy_node": "a", "target_node": "a", "target_port": 1, "service": "one"},"#,
            r#"{"port": 8443, "proxy_node": "a", "target_node": "a", "target_port": 2, "service": "two"}]}"#
        ),
        &[
            "$.routes[1].port: port 8443 on node \"a\" is already used by $.routes[0].port; pick another port",
        ],
    ),
    (
        "bad-forwarder",
        concat!(
            r#"{"nodes": [{"name": "a", "tailscale_ip": "100.64.0.10"}], "routes": ["#,
            r#"{"port": 8443, "proxy_node": "a", "target_node": "a", "target_port": 1, "service": "one", "forwarder": "nginx"}]}"#
        ),
        &[
            "$.routes[0].forwarder: unknown forwarder \"nginx\"; expected \"relay\" (default) or \"socat\"",
        ],
    ),
    (
        "bad-secret",
        r#"{"nodes": [{"name": "a"}], "services": [{"name": "mt", "node": "a", "exec": ["/bin/x"], "secret": "xyz"}]}"#,
        &[
            "$.services[0].secret: the secret must be 32 hexadecimal characters (generate one with `openssl rand -hex 16`)",
        ],
    ),
    (
        "wireguard",
        concat!(
            r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b"}], "wireguard": [{"interface": "wg 0", "topology": "hub", "hub": "a", "members": ["#,
            r#"{"node": "a", "address": "10.8.0.1", "route_all": true}, {"node": "b", "address": "10.8.0.2/24"}]}, {"topology": "hub", "members": []}]}"#
        ),
        &[
            "$.wireguard[0].interface: \"wg 0\" is not an interface name; use at most 15 lowercase letters, digits, '-' or '_', e.g. \"wg0\"",
            "$.wireguard[0].members[0].address: \"10.8.0.1\" is not an address with a prefix length; expected e.g. \"10.8.0.2/24\"",
            "$.wireguard[0].members[0].route_all: route_all sends a spoke's egress through the hub: only members of a \"hub\" network other than the hub can have it",
            "$.wireguard[1].members: a WireGuard network needs at least two members",
            "$.wireguard[1].hub: a \"hub\" network needs \"hub\": the node the others peer with",
        ],
    ),
    (
        "wireguard-unreachable",
        concat!(
            r#"{"nodes": [{"name": "a"}, {"name": "b"}], "wireguard": [{"members": ["#,
            r#"{"node": "a", "address": "10.8.0.1/24"}, {"node": "b", "address": "10.8.0.2/24"}]}]}"#
        ),
        &[
            "$.wireguard[0].members[0]: neither \"a\" nor its peer \"b\" can be reached: set \"endpoint\" on one of them (or public_ip on its node)",
        ],
    ),
    (
        "stats-socket",
        concat!(
            r#"{"nodes": [{"name": "a"}], "services": [{"name": "mt", "node": "a", "exec": ["/bin/true"], "#,
            r#""balancer": {"stats_socket": "/tmp/x y.sock"}}]}"#
        ),
        &[
            "$.services[0].balancer.stats_socket: expected a socket in /run/haproxy/ (haproxy runs as user haproxy and can only create it there), e.g. \"/run/haproxy/admin.sock\"",
        ],
    ),
    (
        "transparent-loopback",
        concat!(
            r#"{"nodes": [{"name": "a"}], "services": [{"name": "mt", "node": "a", "exec": ["/bin/true"], "#,
            r#""balancer": {"transparent": true}}]}"#
        ),
        &[
            "$.services[0].balancer.backend_address: a transparent balancer needs a non-loopback address of the node to reach its replicas on (replies from 127.0.0.1 cannot be routed back to a client address); set backend_address, or tailscale_ip or public_ip on the node",
        ],
    ),
];

#[test]
fn every_bad_inventory_gives_its_messages_and_exit_2() {
    for (name, text, messages) in BAD {
        let path = tmp_inventory(name, text);
        let out = bin().arg("-i").arg(&path).arg("validate").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let file = path.display().to_string();
        let got: Vec<&str> = stderr
            .lines()
            .map(|l| l.trim_start_matches("error: "))
            .collect();
        let want: Vec<String> = messages
            .iter()
            .map(|m| {
                if m.starts_with('$') {
                    format!("{file}: {m}")
                } else {
                    format!("{file}:{m}")
                }
            })
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let path = tmp_inventory(
        "many",
        r#"{"nodes": [{"name": "Bad Name", "public_ip": "nope", "colour": 1}], "routez": []}"#,
    );
    let out = bin().arg("-i").arg(&path).arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 4, "{stderr}");
    assert!(
        stderr.contains("$.routez: unknown key \"routez\"; did you mean \"routes\"?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("$.nodes[0].colour: unknown key"),
        "{stderr}"
    );
}

#[test]
fn seed_example_loads_unchanged_and_renders() {
    let out = bin()
        .args(["-i", "inventory/nodes.example.json", "validate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .args(["-i", "inventory/nodes.example.json", "show", "--routes"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tg.example.com  8443  vds-1  k3s-node:8443 (100.64.0.1)  tgweb    relay"),
        "{text}"
    );
}

#[test]
fn inventory_path_comes_from_nodes_config_when_no_flag() {
    let out = bin()
        .env("NODES_CONFIG", "examples/mesh.json")
        .args(["-v", "validate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("inventory: examples/mesh.json (from NODES_CONFIG)")
    );
    let out = bin().arg("validate").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "default path inventory/nodes.json does not exist"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("inventory/nodes.json: $: cannot read the inventory")
    );
}

#[test]
fn show_never_prints_secrets() {
    for args in [
        &["show"][..],
        &["show", "--format", "json"],
        &["show", "--service", "mtproxy"],
        &["show", "--node", "k3s-node"],
    ] {
        let out = bin()
            .args(["-i", "examples/mesh.json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("mtproxy") || text.contains("k3s-node"),
            "{args:?}"
        );
        for secret in ["0123456789abcdef0123456789abcdef", "s3cret-db-password"] {
            assert!(!text.contains(secret), "{args:?} leaked a secret");
        }
        assert!(text.contains("<redacted>"), "{args:?}");
    }
}

#[test]
fn show_filters_by_node_and_service() {
    let out = bin()
        .args(["-i", "examples/mesh.json", "show", "--node", "k3s-node"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("node k3s-node") && !text.contains("node vds-1"),
        "{text}"
    );
    let out = bin()
        .args(["-i", "examples/mesh.json", "show", "--service", "tgapi"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("socat-proxy-tgapi-30081.service"), "{text}");
    assert!(!text.contains("mtproxy@.service"), "{text}");
    let out = bin()
        .args(["-i", "examples/mesh.json", "show", "--node", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn broken_template_override_is_an_input_error_naming_the_template() {
    let dir = std::env::temp_dir().join(format!("vds-cli-tpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("relay.toml.j2"),
        "{% for r in routes %}\n{{ r.nope }}\n{% endfor %}\n",
    )
    .unwrap();
    let out = bin()
        .args(["-i", "inventory/nodes.example.json", "show", "--templates"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("template relay.toml.j2 line 2: undefined value"),
        "{stderr}"
    );
}
