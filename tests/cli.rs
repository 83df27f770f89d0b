//! Runs the real `vds-proxy` binary on the examples and on bad inventories.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vds-proxy"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NODES_CONFIG");
    c
}

/// What a command printed, standard output then standard error.
fn both_outputs(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An inventory file in a directory of its own, removed with it.
struct TmpInventory {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl std::ops::Deref for TmpInventory {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.path
    }
}

impl AsRef<std::path::Path> for TmpInventory {
    fn as_ref(&self) -> &std::path::Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for TmpInventory {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

fn tmp_inventory(name: &str, text: &str) -> TmpInventory {
    let dir = tempfile::Builder::new()
        .prefix(&format!("vds-cli-{name}-"))
        .tempdir()
        .unwrap();
    let path = dir.path().join("nodes.json");
    std::fs::write(&path, text).unwrap();
    TmpInventory { _dir: dir, path }
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
            "$.services[0].secret: the secret (not shown) is not 32 hexadecimal characters (generate one with `openssl rand -hex 16`)",
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
    // Hardening: inputs that could hurt a host or mislead a program that reads them.
    (
        "unit-name",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "services": [{"name": "user", "node": "a", "exec": ["/bin/true"]}]}"#,
        &[
            "$.services[0].name: \"user\" is the name of a system unit (its units would replace user@.service); pick another name",
        ],
    ),
    (
        "k8s-file-namespace",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "k3s": {"node": "a", "apps": [{"name": "namespace", "image": "nginx:1", "port": 80}]}}"#,
        &[
            "$.k3s.apps[0].name: its manifest would be vds-proxy-vds-proxy-namespace.yaml, the file of the namespace; rename it",
        ],
    ),
    (
        "k8s-file-job",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "k3s": {"node": "a", "apps": [{"name": "job-warmup", "image": "nginx:1", "port": 80}], "jobs": [{"name": "warmup", "image": "busybox:1"}]}}"#,
        &[
            "$.k3s.apps[0].name: its manifest would be vds-proxy-vds-proxy-job-warmup.yaml, the file of $.k3s.jobs[0].name; rename it",
        ],
    ),
    (
        "k8s-file-egress",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "k3s": {"node": "a", "apps": [{"name": "wg-egress", "image": "nginx:1", "port": 80}], "egress": {"image": "wg:1"}}}"#,
        &[
            "$.k3s.apps[0].name: its manifest would be vds-proxy-vds-proxy-wg-egress.yaml, the file of $.k3s.egress; rename it",
        ],
    ),
    (
        "k8s-name",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "k3s": {"node": "a", "apps": [{"name": "1web", "image": "nginx:1", "port": 80}]}}"#,
        &[
            "$.k3s.apps[0].name: \"1web\" is not a Kubernetes Service name; use at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit, e.g. \"web\"",
        ],
    ),
    (
        "empty-refs",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "routes": [{"port": 8443, "proxy_node": "", "target_node": "", "target_port": 1, "service": "web"}], "services": [{"name": "s", "node": "", "exec": ["/bin/true"]}], "k3s": {"node": ""}, "wireguard": [{"members": [{"node": "", "address": "10.8.0.1/24"}, {"node": "a", "address": "10.8.0.2/24"}]}]}"#,
        &[
            "$.routes[0].proxy_node: is empty; name a node of \"nodes\"",
            "$.routes[0].target_node: is empty; name a node of \"nodes\"",
            "$.services[0].node: is empty; name a node of \"nodes\"",
            "$.wireguard[0].members[0].node: is empty; name a node of \"nodes\"",
            "$.k3s.node: is empty; name a node of \"nodes\"",
        ],
    ),
    (
        "stats-port",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "services": [{"name": "s", "node": "a", "exec": ["/bin/true"], "balancer": {"port": 443}}], "routes": [{"port": 8404, "proxy_node": "a", "target_node": "b", "target_port": 1, "service": "web"}]}"#,
        &[
            "$.services[0].balancer.stats_address (HAProxy's stats page): port 8404 on node \"a\" is already used by $.routes[0].port; pick another port",
        ],
    ),
    (
        "ssh-port",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "routes": [{"port": 22, "proxy_node": "a", "target_node": "b", "target_port": 22, "service": "web"}]}"#,
        &[
            "$.routes[0].port: port 22 on node \"a\" is already used by $.nodes[0].ssh_port (sshd, which vds-proxy connects to); pick another port",
        ],
    ),
    (
        "wg-udp",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "wireguard": [{"interface": "wg0", "members": [{"node": "a", "address": "10.8.0.1/24"}, {"node": "b", "address": "10.8.0.2/24"}]}, {"interface": "wg1", "members": [{"node": "a", "address": "10.9.0.1/24"}, {"node": "b", "address": "10.9.0.2/24"}]}]}"#,
        &[
            "$.wireguard[1].port (wg1): UDP port 51820 on node \"a\" is already used by $.wireguard[0].port (wg0); pick another port",
            "$.wireguard[1].port (wg1): UDP port 51820 on node \"b\" is already used by $.wireguard[0].port (wg0); pick another port",
        ],
    ),
    (
        "two-balancers",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "services": [{"name": "s", "node": "a", "exec": ["/bin/true"], "balancer": {"port": 443}}, {"name": "t", "node": "a", "base_port": 11000, "exec": ["/bin/true"], "balancer": {"port": 444, "stats_socket": "/run/haproxy/other.sock", "stats_address": "127.0.0.1:8405"}}]}"#,
        &[
            "$.services[1].balancer.stats_socket: \"/run/haproxy/other.sock\" differs from $.services[0].balancer.stats_socket (\"/run/haproxy/admin.sock\"), but the balancers of one node are one HAProxy with one stats_socket; give every balancer of this node the same value",
            "$.services[1].balancer.stats_address: \"127.0.0.1:8405\" differs from $.services[0].balancer.stats_address (\"127.0.0.1:8404\"), but the balancers of one node are one HAProxy with one stats_address; give every balancer of this node the same value",
        ],
    ),
    (
        "route-loop",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "routes": [{"port": 8443, "proxy_node": "a", "target_node": "a", "target_port": 8443, "service": "web"}]}"#,
        &[
            "$.routes[0].target_port: the route would forward port 8443 of \"a\" to itself; point it at the port the service listens on",
        ],
    ),
    (
        "check-text",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "services": [{"name": "s", "node": "a", "exec": ["/bin/true"], "balancer": {"check": "inter 2000 disabled addr 10.9.9.9 port 22 # x"}}]}"#,
        &[
            "$.services[0].balancer.check: \"inter 2000 disabled addr 10.9.9.9 port 22 # x\" is not a health check; expected settings from inter, fastinter, downinter (milliseconds), fall and rise (counts), e.g. \"inter 2000 fall 3 rise 2\"",
        ],
    ),
    (
        "exec-prefix",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "services": [{"name": "s", "node": "a", "exec": ["+/bin/sh", "-c", "id"]}]}"#,
        &["$.services[0].exec[0]: the command must be an absolute path, e.g. \"/usr/bin/socat\""],
    ),
    (
        "image-flag",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "services": [{"name": "s", "node": "a", "image": "--privileged"}, {"name": "t", "node": "a", "base_port": 11000, "image": ""}]}"#,
        &[
            "$.services[0].image: \"--privileged\" is not an image reference; expected e.g. \"ghcr.io/example/tgweb:1.4\" or \"telegrammessenger/proxy:latest\"",
            "$.services[1].image: \"\" is not an image reference; expected e.g. \"ghcr.io/example/tgweb:1.4\" or \"telegrammessenger/proxy:latest\"",
        ],
    ),
    (
        "wg-iface",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "wireguard": [{"interface": "-h", "members": [{"node": "a", "address": "10.8.0.1/24"}, {"node": "b", "address": "10.8.0.2/24"}]}]}"#,
        &[
            "$.wireguard[0].interface: \"-h\" is not an interface name; use at most 15 lowercase letters, digits, '-' or '_', e.g. \"wg0\"",
        ],
    ),
    (
        "wg-endpoint",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "wireguard": [{"members": [{"node": "a", "address": "10.8.0.1/24", "endpoint": "vpn.example.com]:51820"}, {"node": "b", "address": "10.8.0.2/24", "endpoint": "[[host:+51820"}]}]}"#,
        &[
            "$.wireguard[0].members[0].endpoint: \"vpn.example.com]:51820\" is not host:port; expected e.g. \"203.0.113.10:51820\", \"vpn.example.com:51820\" or \"[2001:db8::10]:51820\"",
            "$.wireguard[0].members[1].endpoint: \"[[host:+51820\" is not host:port; expected e.g. \"203.0.113.10:51820\", \"vpn.example.com:51820\" or \"[2001:db8::10]:51820\"",
        ],
    ),
    (
        "socat-v6",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "routes": [{"port": 8443, "listen": "::1", "forwarder": "socat", "proxy_node": "a", "target_node": "b", "target_port": 1, "service": "web"}]}"#,
        &[
            "$.routes[0].listen: a socat route listens on an IPv4 address; use the relay (the default forwarder) to listen on IPv6",
        ],
    ),
    (
        "ram",
        r#"{"nodes": [{"name": "a", "ram_gb": -2}]}"#,
        &["$.nodes[0].ram_gb: -2 GB of memory? expected 0 or more"],
    ),
    (
        "env-control",
        "{\"nodes\": [{\"name\": \"a\", \"public_ip\": \"203.0.113.1\"}, {\"name\": \"b\", \"public_ip\": \"203.0.113.2\"}], \"k3s\": {\"node\": \"a\", \"apps\": [{\"name\": \"web\", \"image\": \"nginx:1\", \"port\": 80, \"env\": {\"A\": \"x\\u0001y\"}}]}}",
        &[
            "$.k3s.apps[0].env.A: expected NAME (letters, digits, '_') with a one-line string value (no control characters)",
        ],
    ),
    (
        "port-overflow",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "services": [{"name": "s", "node": "a", "base_port": 65535, "replicas": 2, "exec": ["/bin/true"]}]}"#,
        &[
            "$.services[0].replicas: 2 replicas from base_port 65535 would need port 65536; lower base_port or replicas",
        ],
    ),
    (
        "short-secret",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "k3s": {"node": "a", "apps": [{"name": "web", "image": "nginx:1", "port": 80, "secret_env": {"P": "1"}}]}}"#,
        &[
            "$.k3s.apps[0].secret_env.P: a secret shorter than 8 characters is no secret (and could not be told apart in output); use a longer one, or put the value in \"env\"",
        ],
    ),
    (
        "escape",
        "{\"nodes\": [{\"name\": \"a\\u001b[31mred\"}]}",
        &[
            "$.nodes[0].name: \"a\\u{1b}[31mred\" is not a safe name; use lowercase letters, digits and '-', starting with a letter or digit (at most 63 characters), e.g. \"vds-1\"",
        ],
    ),
    (
        "description",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}], "routes": [{"port": 8443, "proxy_node": "a", "target_node": "b", "target_port": 1, "service": "web", "description": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}"#,
        &[
            "$.routes[0].description: expected one line of at most 200 characters, without control characters or backslashes",
        ],
    ),
    (
        "duplicate-key",
        "{\"nodes\": [{\"name\": \"a\"}],\n \"nodes\": [{\"name\": \"b\"}]}",
        &["2:8: invalid JSON: key \"nodes\" appears twice in one object; keep one"],
    ),
    (
        "web-injection",
        r#"{"nodes": [{"name": "a"}], "acme": {"directory": "http://ca.example/dir", "email": "ops"},
            "sites": [{"name": "app", "node": "a", "domains": ["*.example.com", "app.example.com"], "tls": "files",
              "headers": {"X-A": "v\"; return 200; \"", "Bad Name": "x"}, "max_body": "10 mb",
              "locations": [{"path": "/api { return 200; }", "upstream": "127.0.0.1:8000;"},
                            {"path": "/", "upstream": "127.0.0.1:3000", "rate_limit": {"rate": "fast"}}]},
                      {"name": "app", "node": "b", "domains": ["app.example.com"], "locations": []}]}"#,
        &[
            "$.acme.directory: \"http://ca.example/dir\" is not an https:// URL; expected e.g. \"https://acme-v02.api.letsencrypt.org/directory\"",
            "$.acme.email: \"ops\" is not an email address; expected e.g. \"ops@example.com\"",
            "$.sites[0].domains[0]: \"*.example.com\" contains the character '*'; a domain name has only letters, digits, - and .",
            "$.sites[0].tls: \"files\" needs \"certificate\" and \"certificate_key\": the paths of the certificate chain and its key on the node",
            "$.sites[0].headers[\"Bad Name\"]: is not a header name; use letters, digits and dashes",
            "$.sites[0].headers[\"X-A\"]: header values are one line of at most 1000 characters without '\"', '\\' or '$'",
            "$.sites[0].locations[0].path: \"/api { return 200; }\" is not a URL path prefix; expected e.g. \"/\" or \"/api/\" (letters, digits and / . _ ~ - only)",
            "$.sites[0].locations[0].upstream: \"127.0.0.1:8000;\" is not host:port; expected e.g. \"127.0.0.1:3000\"",
            "$.sites[0].locations[1].rate_limit.rate: \"fast\" is not a rate; expected requests per second or minute, e.g. \"10r/s\" or \"300r/m\"",
            "$.sites[0].max_body: \"10 mb\" is not a size; expected a number with an optional k, m or g, e.g. \"10m\"",
            "$.sites[1].name: site \"app\" is already defined at $.sites[0]; give each site its own name",
            "$.sites[1].node: node \"b\" does not exist; did you mean \"a\"?",
        ],
    ),
    (
        "web-ports",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.10"}],
            "routes": [{"port": 443, "proxy_node": "a", "target_node": "a", "target_port": 9000, "service": "x"}],
            "sites": [{"name": "one", "node": "a", "domains": ["a.example.com"], "locations": [{"path": "/", "upstream": "127.0.0.1:1"}]},
                      {"name": "two", "node": "a", "domains": ["a.example.com"], "tls": "off", "locations": [{"path": "/", "upstream": "127.0.0.1:2"}]}]}"#,
        &[
            "$.sites[0].https_port: port 443 on node \"a\" is already used by $.routes[0].port; pick another port",
            "$.sites[1].domains[0]: \"a.example.com\" is already served on port 80 of node \"a\" by $.sites[0]",
        ],
    ),
    (
        "firewall-values",
        r#"{"nodes": [{"name": "a"}],
            "firewalls": [{"node": "a", "revert_after": 5, "trusted_interfaces": ["eth0; accept", "a-very-long-interface-name"],
                           "allow": [{"port": "90-80"}, {"port": 70000, "protocol": "icmp"}, {"port": 53, "from": ["10.0.0.0/33", "example.com"]},
                                     {"port": 25, "from": []}, {"from": ["10.0.0.1"]}]},
                          {"node": "a"}, {"node": "b"}]}"#,
        &[
            "$.firewalls[0].allow[0].port: \"90-80\" is not a port; expected a whole number from 1 to 65535 or a range like \"60000-60100\"",
            "$.firewalls[0].allow[1].port: 70000 is not a port; expected a whole number from 1 to 65535 or a range like \"60000-60100\"",
            "$.firewalls[0].allow[1].protocol: unknown protocol \"icmp\"; expected \"tcp\" (default) or \"udp\"",
            "$.firewalls[0].allow[2].from[0]: expected an address or network like \"203.0.113.7\" or \"10.0.0.0/8\"",
            "$.firewalls[0].allow[2].from[1]: expected an address or network like \"203.0.113.7\" or \"10.0.0.0/8\"",
            "$.firewalls[0].allow[3].from: an empty list would allow nobody; leave \"from\" out to allow everyone",
            "$.firewalls[0].allow[4].port: required port is missing; expected a port like 5432 or a range like \"60000-60100\"",
            "$.firewalls[0].trusted_interfaces[0]: expected an interface name like \"tailscale0\" or \"wg0\" (letters, digits, _ . -, at most 15)",
            "$.firewalls[0].trusted_interfaces[1]: expected an interface name like \"tailscale0\" or \"wg0\" (letters, digits, _ . -, at most 15)",
            "$.firewalls[0].revert_after: expected a whole number from 10 to 3600, found 5",
            "$.firewalls[1].node: node \"a\" already has a firewall at $.firewalls[0]; put all its rules in one entry",
            "$.firewalls[2].node: node \"b\" does not exist; did you mean \"a\"?",
        ],
    ),
    (
        "registry-and-tailnet-values",
        r#"{"nodes": [{"name": "a", "tailscale_tags": ["farm", "tag:farm"]}],
 "routes": [{"port": 8080, "proxy_node": "a", "target_node": "a", "target_port": 80, "service": "x"}],
 "registries": [{"node": "a", "rate_limit": -1, "tokens": [
     {"name": "w", "role": "writer", "token": "short"},
     {"name": "f", "role": "farm", "token": "0123456789abcdef0123456789"},
     {"name": "w", "role": "reader", "farm": "100.64.0.9", "token": "0123456789abcdef0123456789"},
     {"token": "has space 0123456789abcdef0123"}]},
   {"node": "a", "port": 8081}],
 "tailnet": {"name": "bad name", "groups": {"ops": ["alice"]},
   "tag_owners": {"tag:mobile": ["group:nobody", "autogroup:admins"], "farm": ["autogroup:admin"]},
   "acls": [{"src": ["tag:ghost", "*"], "dst": ["autogroup:internet"], "ports": [0, "*", "9-3"]},
            {"dst": ["tag:mobile"], "ports": []}]}}"#,
        &[
            "$.nodes[0].tailscale_tags[0]: expected a Tailscale tag like \"tag:farm\" (letters, digits and dashes after \"tag:\")",
            "$.registries[0].rate_limit: expected a whole number from 0 to 1000000, found -1",
            "$.registries[0].tokens[0].role: unknown role \"writer\"; expected \"reader\" (default), \"farm\" or \"admin\"",
            "$.registries[0].tokens[0].token: the secret (not shown) is not a usable token; expected 24 to 256 printable characters without spaces, e.g. from `openssl rand -hex 16`",
            "$.registries[0].tokens[1].farm: a farm token needs \"farm\": the Tailscale address it may register, e.g. \"100.64.0.7\"",
            "$.registries[0].tokens[2].farm: only tokens with role \"farm\" are tied to a farm; remove it or set role to \"farm\"",
            "$.registries[0].tokens[3].name: required string is missing",
            "$.registries[0].tokens[3].role: required role is missing; expected \"reader\", \"farm\" or \"admin\"",
            "$.registries[0].tokens[3].token: the secret (not shown) is not a usable token; expected 24 to 256 printable characters without spaces, e.g. from `openssl rand -hex 16`",
            "$.registries[1].tokens: required tokens are missing; without one nobody can use the API. Add {\"name\": \"web\", \"role\": \"reader\", \"token\": \"…\"}",
            "$.tailnet.name: \"bad name\" is not a tailnet name; expected e.g. \"example.com\", or \"-\" for the API key's tailnet",
            "$.tailnet.acls[1].src: required src is missing or empty; expected e.g. [\"tag:mobile\"]",
            "$.tailnet.acls[1].ports: required ports are missing or empty; expected e.g. [8080, 8081], [\"8000-8100\"] or [\"*\"]",
            "$.routes[0].target_node: target node \"a\" has no address to forward to; give it a tailscale_ip or public_ip",
            "$.registries[0].port: port 8080 on node \"a\" is already used by $.routes[0].port; pick another port",
            "$.registries[0].tokens[2].token: is the same token as $.registries[0].tokens[1]; give each holder its own",
            "$.registries[1].node: node a already has a registry ($.registries[0]); one per node",
            "$.nodes[0].tailscale_tags: tag:farm has no owner; add it to \"tailnet\".\"tag_owners\", e.g. \"tag:farm\": [\"autogroup:admin\"]",
            "$.tailnet.groups[\"ops\"]: \"ops\" is not a group name; expected e.g. \"group:ops\"",
            "$.tailnet.groups[\"ops\"]: \"alice\" is not a member; expected an e-mail address like \"alice@example.com\"",
            "$.tailnet.tag_owners[\"farm\"]: \"farm\" is not a tag; expected \"tag:\" and letters, digits or dashes, e.g. \"tag:farm\"",
            "$.tailnet.tag_owners[\"tag:mobile\"]: owner \"group:nobody\": no such group; define it in \"tailnet\".\"groups\", e.g. \"group:nobody\": [\"alice@example.com\"]",
            "$.tailnet.tag_owners[\"tag:mobile\"]: owner \"autogroup:admins\": unknown autogroup here; expected one of autogroup:admin, autogroup:member, autogroup:owner, autogroup:it-admin, autogroup:network-admin, autogroup:billing-admin, autogroup:auditor, autogroup:tagged, autogroup:shared",
            "$.tailnet.acls[0].src[0]: \"tag:ghost\": the tag has no owner; add it to \"tailnet\".\"tag_owners\", e.g. \"tag:ghost\": [\"autogroup:admin\"]",
            "$.tailnet.acls[0].ports[0]: 0 is not a port; expected 1 to 65535, a range like \"8000-8100\", or \"*\"",
            "$.tailnet.acls[0].ports[2]: 9-3 is not a port; expected 1 to 65535, a range like \"8000-8100\", or \"*\"",
            "$.tailnet.acls[0].ports: \"*\" already means every port; list it alone",
        ],
    ),
    (
        "backup-values",
        r#"{"nodes": [{"name": "a"}],
 "backups": [{"node": "a", "database": "1app; rm -rf /", "directory": "/etc", "time": "25:00", "keep": {"daily": 0, "weekly": -1, "yearly": 2}, "os_user": "Post gres"},
             {"node": "a", "database": "app"}, {"node": "a", "database": "app"}, {"node": "b"}]}"#,
        &[
            "$.backups[0].database: \"1app; rm -rf /\" is not a database name vds-proxy can back up; expected letters, digits and _ (at most 63, not starting with a digit)",
            "$.backups[0].os_user: \"Post gres\" is not a user name; expected e.g. \"postgres\"",
            "$.backups[0].directory: \"/etc\" is a system directory; vds-proxy keeps data only in a directory of its own, e.g. \"/var/backups/postgresql\" or \"/srv/app/data\"",
            "$.backups[0].time: \"25:00\" is not a time of day; expected \"HH:MM\", e.g. \"03:15\"",
            "$.backups[0].keep.yearly: unknown key \"yearly\"; allowed keys: daily, weekly, monthly",
            "$.backups[0].keep.daily: expected a whole number from 1 to 1000, found 0",
            "$.backups[0].keep.weekly: expected a whole number from 0 to 1000, found -1",
            "$.backups[3].database: required string is missing",
            "$.backups[2].database: database app on node a is already backed up by $.backups[1]; one entry per database",
        ],
    ),
    (
        "app-values",
        r#"{"nodes": [{"name": "a", "public_ip": "10.0.0.1"}],
 "routes": [{"port": 8443, "proxy_node": "a", "target_node": "a", "target_port": 9000, "service": "x"}],
 "apps": [{"name": "Shop", "node": "a", "engine": "kubernetes", "services": [
   {"name": "web", "image": "Web:latest; id", "ports": ["8080:80", "http"],
    "env": {"1X": "a", "OK": "line\nbreak", "N": [1]}, "volumes": ["data", "/:/x"],
    "healthcheck": {"tests": "x"}, "restart": "sometimes"}]},
  {"name": "empty", "node": "a"},
  {"name": "shop", "node": "a", "services": [
   {"name": "web", "image": "localhost/web:1", "ports": ["8080:80"], "publish": ["8443"],
    "volumes": ["data:/data", "/srv/data:/data:ro"], "depends_on": ["db", "web"]},
   {"name": "web", "image": "localhost/web:1", "ports": ["8080"]}]}]}"#,
        &[
            "$.apps[0].name: \"Shop\" is not a safe name; use lowercase letters, digits and '-', starting with a letter or digit (at most 63 characters), e.g. \"vds-1\"",
            "$.apps[0].engine: unknown engine \"kubernetes\"; expected \"podman\" (default) or \"docker\"",
            "$.apps[0].services[0].image: \"Web:latest; id\" is not an image reference; expected e.g. \"docker.io/library/postgres:16\" or \"localhost/shop-api:1.4\"",
            "$.apps[0].services[0].env.1X: \"1X\" is not an environment variable name; expected letters, digits and _, not starting with a digit",
            "$.apps[0].services[0].env.N: expected a string, found an array",
            "$.apps[0].services[0].env.OK: must be a single line without control characters",
            "$.apps[0].services[0].ports[1]: \"http\" is not NODE_PORT:CONTAINER_PORT in digits (bound to 127.0.0.1), e.g. \"8000:8000\"",
            "$.apps[0].services[0].volumes[0]: \"data\" is not SOURCE:/container/path; expected \"VOLUME:/container/path\" (a named volume) or \"/node/path:/container/path\", either with \":ro\"",
            "$.apps[0].services[0].volumes[1]: \"/:/x\" has a node path that is a system directory; vds-proxy keeps data only in a directory of its own, e.g. \"/var/backups/postgresql\" or \"/srv/app/data\"",
            "$.apps[0].services[0].healthcheck.tests: unknown key \"tests\"; did you mean \"test\"?",
            "$.apps[0].services[0].healthcheck.test: required string is missing",
            "$.apps[0].services[0].restart: unknown restart \"sometimes\"; expected \"unless-stopped\" (default), \"always\", \"on-failure\" or \"no\"",
            "$.apps[1].services: missing: an app needs at least one service, e.g. [{\"name\": \"web\", \"image\": \"localhost/web:1\"}], or \"compose_file\": \"shop/docker-compose.yml\"",
            "$.apps[2].services[0].depends_on[0]: \"db\" is not another service of app shop; expected one of: (none)",
            "$.apps[2].services[0].depends_on[1]: \"web\" is not another service of app shop; expected one of: (none)",
            "$.apps[2].services[0].volumes: /data is mounted twice in service web",
            "$.apps[2].services[0].publish[0]: port 8443 on node \"a\" is already used by $.routes[0].port; pick another port",
            "$.apps[2].services[1].name: service web is defined twice in app shop",
            "$.apps[2].services[1].ports[0]: port 8080 on node \"a\" is already used by $.apps[2].services[0].ports[0]; pick another port",
        ],
    ),
    (
        "backup-in-app",
        r#"{"nodes": [{"name": "a"}, {"name": "b"}],
 "apps": [{"name": "shop", "node": "a", "services": [{"name": "db", "image": "localhost/pg:15"}]}],
 "backups": [{"node": "b", "database": "x", "app": "shop", "service": "db"},
             {"node": "a", "database": "y", "app": "shop", "service": "pg", "db_user": "App User"},
             {"node": "a", "database": "z", "app": "shop"}]}"#,
        &[
            "$.backups[1].db_user: \"App User\" is not a user name; expected e.g. \"postgres\"",
            "$.backups[2].service: a database in a compose app needs both \"app\" and \"service\" (the service PostgreSQL runs in)",
            "$.backups[0].app: no app shop on node b; the database must run on the node that keeps its dumps",
            "$.backups[1].service: app shop has no service pg; expected one of: db",
        ],
    ),
    (
        "backup-copies",
        r#"{"nodes": [{"name": "a", "public_ip": "10.0.0.1"}, {"name": "b", "ssh_host": "b.example.com"}, {"name": "c", "public_ip": "10.0.0.3"}],
 "backups": [{"node": "a", "database": "x", "copy_to": {"node": "a"}},
             {"node": "a", "database": "y", "copy_to": {"node": "b", "keep": 0}},
             {"node": "a", "database": "z", "copy_to": {"node": "c", "directory": "/srv/copies"}},
             {"node": "a", "database": "w", "copy_to": {"node": "c", "directory": "/srv/other"}},
             {"node": "a", "database": "v", "copy_to": {"node": "d", "dir": "/x"}}]}"#,
        &[
            "$.backups[1].copy_to.keep: expected a whole number from 1 to 1000, found 0",
            "$.backups[4].copy_to.dir: unknown key \"dir\"; allowed keys: node, directory, keep",
            "$.backups[0].copy_to.node: a copy on the node that made the dump is no off-host copy; name another node",
            "$.backups[1].copy_to.node: node b has no address a can reach it at; give it a tailscale_ip or public_ip",
            "$.backups[3].copy_to.directory: copies from a to c already go to /srv/copies ($.backups[2].copy_to); one directory per pair of nodes",
            "$.backups[4].copy_to.node: node \"d\" does not exist; did you mean \"a\"?",
        ],
    ),
    // Paths on nodes, by class: each spelling of a system directory, a value that would
    // add an nginx directive or a systemd variable, the host's root as a volume.
    (
        "node-paths",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}],
            "acme": {"ca_file": "/x LD_PRELOAD=/tmp/evil.so"},
            "sites": [{"name": "app", "node": "a", "domains": ["app.example.com"], "tls": "files",
                       "certificate": "/etc/ssl/a.pem",
                       "certificate_key": "/etc/ssl/a.key; location /leak/ { alias /; autoindex on; }",
                       "locations": [{"path": "/", "upstream": "127.0.0.1:3000"}]},
                      {"name": "two", "node": "a", "domains": ["two.example.com"], "tls": "files",
                       "certificate": "/etc/ssl/%n.pem", "certificate_key": "/etc/ssl/two\n.key",
                       "locations": [{"path": "/", "upstream": "127.0.0.1:3000"}]}],
            "backups": [{"node": "a", "database": "x", "directory": "/var/..", "copy_to": {"node": "b", "directory": "//etc"}},
                        {"node": "a", "database": "y", "directory": "/var/lib", "copy_to": {"node": "b", "directory": "/var/backups/"}}],
            "apps": [{"name": "shop", "node": "a", "services": [
                      {"name": "web", "image": "localhost/web:1", "volumes": ["/.:/host", "//:/host2", "/var/lib:/x", "data:/"]}]}]}"#,
        &[
            "$.acme.ca_file: \"/x LD_PRELOAD=/tmp/evil.so\" contains a space; a path on a node has no spaces or control characters",
            "$.sites[0].certificate_key: \"/etc/ssl/a.key; location /leak/ { alias /; autoindex on; }\" contains a space; a path on a node has no spaces or control characters",
            "$.sites[0].tls: \"files\" needs \"certificate\" and \"certificate_key\": the paths of the certificate chain and its key on the node",
            "$.sites[1].certificate: \"/etc/ssl/%n.pem\" contains the character '%'; a path on a node has only letters, digits and . _ - + @ /",
            "$.sites[1].certificate_key: \"/etc/ssl/two\\n.key\" contains the control character U+000A; a path on a node has no spaces or control characters",
            "$.sites[1].tls: \"files\" needs \"certificate\" and \"certificate_key\": the paths of the certificate chain and its key on the node",
            "$.apps[0].services[0].volumes[0]: \"/.:/host\" has a node path that has a \".\" or \"..\" segment; write the directory it stands for",
            "$.apps[0].services[0].volumes[1]: \"//:/host2\" has a node path that has an empty segment (//); write each / once",
            "$.apps[0].services[0].volumes[2]: \"/var/lib:/x\" has a node path that is a system directory; vds-proxy keeps data only in a directory of its own, e.g. \"/var/backups/postgresql\" or \"/srv/app/data\"",
            "$.apps[0].services[0].volumes[3]: \"data:/\" mounts over the container's / ; name a directory inside it",
            "$.backups[0].directory: \"/var/..\" has a \".\" or \"..\" segment; write the directory it stands for",
            "$.backups[0].copy_to.directory: \"//etc\" has an empty segment (//); write each / once",
            "$.backups[1].directory: \"/var/lib\" is a system directory; vds-proxy keeps data only in a directory of its own, e.g. \"/var/backups/postgresql\" or \"/srv/app/data\"",
            "$.backups[1].copy_to.directory: \"/var/backups/\" ends with /; write it without the trailing /",
        ],
    ),
    // A secret's value is never in a message: its path and the rule only.
    (
        "secrets-never-echoed",
        r#"{"nodes": [{"name": "a", "tailscale_ip": "100.64.0.1"}, {"name": "b", "tailscale_ip": "100.64.0.2"}],
            "registries": [
              {"node": "a", "tokens": [{"name": "web", "role": "reader", "token": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                                      {"name": "ops", "role": "admin", "token": "s3cr3t-0123456789abcdef-xyz"}]},
              {"node": "b", "tokens": [{"name": "ops", "role": "reader", "token": "s3cr3t-0123456789abcdef-xyz"}]}],
            "apps": [{"name": "shop", "node": "a", "services": [
                      {"name": "web", "image": "localhost/web:1",
                       "env": {"DB_PASSWORD": "x", "SHOWN": "hunter22-but-longer"},
                       "secret_env": {"DB_PASSWORD": "correct-horse-battery", "API_KEY": "hunter22-but-longer", "PIN": "1234"}}]}]}"#,
        &[
            "$.registries[0].tokens[0].token: the secret (not shown) has fewer than 8 different characters, which a guess finds at once; use e.g. `openssl rand -hex 16`",
            "$.apps[0].services[0].secret_env.API_KEY: the secret (not shown) is also the plain value of env.SHOWN, which is printed; a secret must not be reused as a plain value",
            "$.apps[0].services[0].secret_env.DB_PASSWORD: DB_PASSWORD is also in \"env\"; a variable is either plain or secret, not both",
            "$.apps[0].services[0].secret_env.PIN: the secret (not shown) is shorter than 8 characters, which a guess finds at once",
            "$.registries[1].tokens[0].role: its token (not shown) is also $.registries[0].tokens[1]'s on another registry, with another role; give each role its own token",
        ],
    ),
    // Accepted before, by class: numbers with a sign, domains ending in '-', a header given
    // twice in two cases, a location over the ACME challenge path, e-mails with ':' or ','.
    (
        "by-class",
        r#"{"nodes": [{"name": "a", "tailscale_ip": "100.64.0.1", "tailscale_tags": ["tag:farm"]}],
            "sites": [{"name": "app", "node": "a", "domains": ["app-.example.com", "ok.example.com"],
                       "headers": {"X-Frame-Options": "DENY", "x-frame-options": "SAMEORIGIN"},
                       "locations": [{"path": "/", "upstream": "127.0.0.1:3000"},
                                     {"path": "/.well-known/acme-challenge/x", "upstream": "127.0.0.1:3001"}]}],
            "backups": [{"node": "a", "database": "app", "time": "+3:15"}],
            "apps": [{"name": "shop", "node": "a", "services": [{"name": "web", "image": "localhost/web:1", "ports": ["+80:80"]}]},
                     {"name": "empty", "node": "a", "services": []}],
            "tailnet": {"groups": {"group:ops": ["a@b:*", "x@y,tag:farm"]},
                        "tag_owners": {"tag:farm": ["autogroup:admin"]},
                        "acls": [{"src": ["group:ops"], "dst": ["tag:farm"], "ports": ["+80"]}]}}"#,
        &[
            "$.sites[0].domains[0]: \"app-.example.com\" has a label that starts or ends with - (\"app-\")",
            "$.sites[0].headers[\"x-frame-options\"]: is the header \"X-Frame-Options\" again (header names are the same in any case); give it once",
            "$.sites[0].locations[1].path: \"/.well-known/acme-challenge/x\" is under /.well-known/acme-challenge, where certbot proves the domain is yours; pick another path",
            "$.apps[0].services[0].ports[0]: \"+80:80\" is not NODE_PORT:CONTAINER_PORT in digits (bound to 127.0.0.1), e.g. \"8000:8000\"",
            "$.apps[1].services: is empty: an app needs at least one service, e.g. [{\"name\": \"web\", \"image\": \"localhost/web:1\"}], or \"compose_file\": \"shop/docker-compose.yml\"",
            "$.backups[0].time: \"+3:15\" is not a time of day; expected \"HH:MM\", e.g. \"03:15\"",
            "$.tailnet.groups[\"group:ops\"]: \"a@b:*\" is not a member; expected an e-mail address like \"alice@example.com\"",
            "$.tailnet.groups[\"group:ops\"]: \"x@y,tag:farm\" is not a member; expected an e-mail address like \"alice@example.com\"",
            "$.tailnet.acls[0].ports[0]: +80 is not a port; expected 1 to 65535, a range like \"8000-8100\", or \"*\"",
        ],
    ),
    (
        "messages-that-say-what",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}],
            "sites": [{"name": "app", "node": "a", "domains": ["app.example.com"], "headers": {"X-Empty": ""},
                       "locations": [{"path": "/", "upstream": "127.0.0.1:3000"}]}],
            "apps": [{"name": "shop", "node": "a", "services": [
                {"name": "web", "image": "localhost/web:1", "ports": ["0:80", "8080:70000"], "depends_on": ["api"]},
                {"name": "api", "image": "localhost/api:1", "depends_on": ["db"]},
                {"name": "db", "image": "localhost/db:1", "depends_on": ["web"]}]}]}"#,
        &[
            "$.sites[0].headers[\"X-Empty\"]: is empty; give the header a value, or null to leave a default header out",
            "$.apps[0].services[0].ports[0]: \"0:80\" has node port 0; a port is 1 to 65535",
            "$.apps[0].services[0].ports[1]: \"8080:70000\" has container port 70000; a port is 1 to 65535",
            "$.apps[0].services[1].depends_on: the services wait for each other in a circle (api -> db -> web -> api); no order can start them",
        ],
    ),
    (
        "wireguard-member-twice",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}, {"name": "b", "public_ip": "203.0.113.2"}],
            "wireguard": [{"members": [{"node": "a", "address": "10.8.0.1/24"}, {"node": "b", "address": "10.8.0.2/24"},
                                       {"node": "a", "address": "10.8.0.3/24"}]}]}"#,
        &[
            "$.wireguard[0].members[2].node: node \"a\" is already a member ($.wireguard[0].members[0])",
        ],
    ),
    (
        "secret-in-plain-text",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}],
            "services": [{"name": "mtp", "node": "a", "replicas": 1, "secret": "0123456789abcdef0123456789abcdef",
                          "description": "proxy with secret 0123456789abcdef0123456789abcdef",
                          "exec": ["/usr/local/bin/mtproto-proxy", "-S", "0123456789abcdef0123456789abcdef", "-H", "{port}"]}]}"#,
        &[
            "$.services[0].description: holds a secret of this inventory (not shown) inside a value that is printed and written in plain text; name it only where secrets go",
        ],
    ),
    (
        "ports-key",
        "{\"nodes\": [{\"name\": \"a\", \"ports\": {\"so\\ncat\": [1], \"x\\u0000\": [2], \"ok\": [3]}}]}",
        &[
            "$.nodes[0].ports[\"so\\ncat\"]: is not a name for a list of ports; use letters, digits and _ . - (at most 63), e.g. \"socat\"",
            "$.nodes[0].ports[\"x\\u0000\"]: is not a name for a list of ports; use letters, digits and _ . - (at most 63), e.g. \"socat\"",
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
fn a_bom_or_bytes_that_are_not_utf8_are_named_with_their_position() {
    for (name, bytes, want) in [
        (
            "bom",
            &b"\xef\xbb\xbf{\"nodes\": []}"[..],
            "1:1: the file starts with a byte order mark (BOM); save it as UTF-8 without one",
        ),
        (
            "latin1",
            &b"{\"nodes\": [\n{\"name\": \"a\xff\"}]}"[..],
            "2:12: the file is not UTF-8 text (an invalid byte here); save it as UTF-8",
        ),
    ] {
        let path = tmp_inventory(name, "");
        std::fs::write(&path, bytes).unwrap();
        let out = bin().arg("-i").arg(&path).arg("validate").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim(), format!("error: {}:{want}", path.display()));
    }
}

#[test]
fn thousands_of_problems_print_fifty_and_a_count() {
    let nodes: Vec<String> = (0..20).map(|i| format!(r#"{{"name": "n{i}"}}"#)).collect();
    let routes: Vec<String> = (0..4000)
        .map(|i| {
            format!(
                r#"{{"port": {}, "proxy_node": "x{i}", "target_node": "y{i}", "target_port": 1, "service": "s{i}"}}"#,
                8000 + i
            )
        })
        .collect();
    let text = format!(
        r#"{{"nodes": [{}], "routes": [{}]}}"#,
        nodes.join(","),
        routes.join(",")
    );
    let path = tmp_inventory("thousands", &text);
    let out = bin().arg("-i").arg(&path).arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 51, "{stderr}");
    assert_eq!(
        lines[50],
        "error: ... and 7950 more problem(s) like these; fix the ones above first"
    );
    assert!(stderr.len() < 10_000, "{} bytes", stderr.len());
}

#[test]
fn a_bad_relay_config_is_bad_input() {
    let tmp = tempfile::Builder::new()
        .prefix("vds-cli-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    let cfg = dir.join("relay.toml");
    std::fs::write(
        &cfg,
        "[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\nupstreams = []\n",
    )
    .unwrap();
    let out = bin()
        .arg("relay")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("route a has no upstreams"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On a terminal a fleet gets one bar with the counts, and each failure is printed as it
/// happens; in a log (no terminal) only the failures, a line each. Twelve nodes whose SSH
/// port is closed fail at once; `script` gives the deploy a terminal.
#[test]
fn a_fleet_shows_one_bar_and_every_failure_as_it_happens() {
    let nodes: Vec<String> = (1..=12)
        .map(|i| format!(r#"{{"name": "n{i}", "public_ip": "127.0.0.{i}", "ssh_port": 1}}"#))
        .collect();
    let routes: Vec<String> = (1..=12)
        .map(|i| {
            format!(
                r#"{{"port": {}, "proxy_node": "n{i}", "target_node": "n1", "target_port": 9000, "service": "s{i}", "forwarder": "socat"}}"#,
                8000 + i
            )
        })
        .collect();
    let inv = tmp_inventory(
        "fleet",
        &format!(
            r#"{{"nodes": [{}], "routes": [{}]}}"#,
            nodes.join(", "),
            routes.join(", ")
        ),
    );
    std::fs::write(
        inv.parent().unwrap().join("vds-proxy.toml"),
        "connect_timeout = 2\nparallel = 4\n",
    )
    .unwrap();
    let command = format!(
        "{} -i {} deploy",
        env!("CARGO_BIN_EXE_vds-proxy"),
        inv.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("COLUMNS", "120")
        .output()
        .expect("script (util-linux) runs the deploy on a terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{screen}");
    assert!(
        screen.contains("12/12 hosts · 0 changed · 12 failed"),
        "{screen}"
    );
    for i in 1..=12 {
        let line = format!("FAILED: n{i} (127.0.0.{i}:1): cannot connect");
        assert!(screen.contains(&line), "{line}: {screen}");
    }
    let plain = bin().arg("-i").arg(&inv).arg("deploy").output().unwrap();
    let log = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(
        log.lines().filter(|l| l.starts_with("FAILED: n")).count(),
        12,
        "{log}"
    );
    assert!(!log.contains("hosts ·"), "no bar in a log: {log}");
}

/// Builds for other architectures are checked when the settings load: an architecture
/// vds-proxy does not know, a file that is missing, and a file that is not an executable
/// for the architecture it is named for are bad input (exit 2), every one reported.
#[test]
fn builds_named_in_the_settings_must_be_for_their_architecture() {
    let inv = tmp_inventory(
        "builds",
        r#"{"nodes": [{"name": "a", "public_ip": "10.0.0.1"}]}"#,
    );
    let dir = inv.parent().unwrap().to_path_buf();
    std::fs::write(dir.join("script"), "#!/bin/sh\necho not a build\n").unwrap();
    let settings = dir.join("vds-proxy.toml");
    let run = |text: &str| {
        std::fs::write(&settings, text).unwrap();
        let out = bin()
            .arg("-i")
            .arg(&inv)
            .arg("--settings")
            .arg(&settings)
            .arg("validate")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = run("[relay_binaries]\nsparc = \"x\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("relay_binaries.sparc: not an architecture vds-proxy builds for; one of x86_64, aarch64, armv7l, riscv64"),
        "{stderr}"
    );
    let (code, stderr) = run("[relay_binaries]\naarch64 = \"script\"\nriscv64 = \"missing\"\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("relay_binaries.aarch64: ")
            && stderr.contains("script is not an aarch64 executable (its ELF header says neither)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("relay_binaries.riscv64: cannot read ") && stderr.contains("missing"),
        "{stderr}"
    );
    let (code, stderr) = run(&format!(
        "[relay_binaries]\n{} = \"{}\"\n",
        std::env::consts::ARCH,
        env!("CARGO_BIN_EXE_vds-proxy")
    ));
    assert_eq!(code, Some(0), "{stderr}");
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

/// Secrets kept out of nodes.json: read from the environment, a file beside the inventory
/// or a command's output, planned into the node's files, printed nowhere; a reference that
/// cannot be read is bad input naming its JSON path and the reference, never a value.
#[test]
fn secret_references_are_read_and_never_printed() {
    let secret = "0123456789abcdef0123456789abcdef";
    let token = "env-token-0123456789abcdef-xyz";
    let inv = tmp_inventory(
        "secret-refs",
        r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1", "tailscale_ip": "100.64.0.1"}],
            "services": [{"name": "mtp", "node": "a", "replicas": 1, "secret": {"file": "mtp.secret"},
                          "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{port}"]}],
            "registries": [{"node": "a", "tokens": [
                {"name": "web", "role": "reader", "token": {"env": "VDS_TEST_READER_TOKEN"}},
                {"name": "ops", "role": "admin", "token": {"command": ["sh", "-c", "echo ops-token-$((6*7))-0123456789abcdef"]}}]}],
            "apps": [{"name": "shop", "node": "a", "services": [{"name": "web", "image": "localhost/web:1",
                      "secret_env": {"DB_PASSWORD": {"command": ["printf", "db-%s", "password-from-pass"]}}}]}]}"#,
    );
    let dir = inv.parent().unwrap();
    std::fs::write(dir.join("mtp.secret"), format!("{secret}\n")).unwrap();
    let values = [
        secret,
        token,
        "ops-token-42-0123456789abcdef",
        "db-password-from-pass",
    ];
    for args in [&["validate"][..], &["show"], &["show", "--format", "json"]] {
        let out = bin()
            .arg("-i")
            .arg(&inv)
            .args(args)
            .env("VDS_TEST_READER_TOKEN", token)
            .output()
            .unwrap();
        let all = both_outputs(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        for v in values {
            assert!(!all.contains(v), "{args:?} printed a secret");
        }
    }
    // The environment variable missing, the file gone, the command failing after printing.
    std::fs::remove_file(dir.join("mtp.secret")).unwrap();
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        "echo ops-token",
        "printf 'ops-token-%s' leaked; exit 1; echo ops-token",
    );
    std::fs::write(&inv, text).unwrap();
    let out = bin().arg("-i").arg(&inv).arg("validate").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let file = inv.display();
    let got: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim_start_matches("error: "))
        .collect();
    assert_eq!(
        got[..3],
        [
            format!(
                "{file}: $.services[0].secret: cannot read the secret file {}: No such file or directory (os error 2)",
                dir.join("mtp.secret").display()
            ),
            format!(
                "{file}: $.registries[0].tokens[0].token: the environment variable VDS_TEST_READER_TOKEN is not set; export it before running vds-proxy"
            ),
            format!(
                "{file}: $.registries[0].tokens[1].token: `sh -c printf 'ops-token-%s' leaked; exit 1; echo ops-token-$((6*7))-0123456789abcdef` failed (exit status: 1); what it printed is not shown"
            ),
        ]
    );
    assert!(!stderr.contains("ops-token-leaked"));
}

/// `validate --offline-secrets` (CI without the secrets): references and encrypted values
/// are checked for their shape only — nothing read, nothing decrypted, no command run.
#[test]
fn offline_secrets_checks_only_the_shape_of_references() {
    let tmp = tempfile::Builder::new()
        .prefix("vds-offline-ran-")
        .tempdir()
        .unwrap();
    let marker = tmp.path().join("ran");
    let inv = tmp_inventory(
        "offline-secrets",
        &format!(
            r#"{{"nodes": [{{"name": "a", "public_ip": "203.0.113.1", "tailscale_ip": "100.64.0.1"}}],
            "services": [{{"name": "mtp", "node": "a", "replicas": 1, "secret": {{"file": "missing.secret"}},
                          "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{{port}}"]}}],
            "registries": [{{"node": "a", "tokens": [
                {{"name": "web", "role": "reader", "token": {{"env": "VDS_TEST_NEVER_SET"}}}},
                {{"name": "ops", "role": "admin", "token": {{"command": ["touch", "{}"]}}}},
                {{"name": "enc", "role": "reader", "token": "ENC[age:YWdlLWVuY3J5cHRpb24ub3JnL3Yx]"}}]}}]}}"#,
            marker.display()
        ),
    );
    let out = bin()
        .arg("-i")
        .arg(&inv)
        .args(["validate", "--offline-secrets"])
        .env_remove("VDS_PROXY_AGE_KEY_FILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!marker.exists(), "a command ran");
    // Without the flag, the same inventory is bad input.
    let out = bin()
        .arg("-i")
        .arg(&inv)
        .arg("validate")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_file(&marker);
    // A reference of the wrong shape is bad input either way.
    let text = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("VDS_TEST_NEVER_SET", "1BAD NAME");
    std::fs::write(&inv, text).unwrap();
    let out = bin()
        .arg("-i")
        .arg(&inv)
        .args(["validate", "--offline-secrets"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "$.registries[0].tokens[0].token: \"1BAD NAME\" is not an environment variable name"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An inventory encrypted as a whole with SOPS is decrypted with `sops -d`, in memory.
/// SOPS is not packaged for Debian 12 and nothing else may be fetched here, so `sops` is a
/// stand-in that decrypts SOPS's own value format (`ENC[AES256_GCM,data:BASE64,…]`, here
/// base64 only) and drops the `sops` key, as sops does.
#[test]
fn a_sops_encrypted_inventory_is_read_through_sops() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let tmp = tempfile::Builder::new()
        .prefix("vds-sops-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let standin = dir.join("bin/sops");
    std::fs::write(
        &standin,
        "#!/usr/bin/env python3\nimport sys, json, base64\n\
         doc = json.load(open(sys.argv[-1]))\ndoc.pop('sops')\n\
         def d(v):\n    if isinstance(v, dict): return {k: d(x) for k, x in v.items()}\n\
         \x20   if isinstance(v, list): return [d(x) for x in v]\n\
         \x20   if isinstance(v, str) and v.startswith('ENC[AES256_GCM,data:'):\n\
         \x20       return base64.b64decode(v.split('data:')[1].split(',')[0]).decode()\n\
         \x20   return v\nprint(json.dumps(d(doc)))\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &standin,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let token = "sops-token-0123456789abcdef-xyz";
    let inv = tmp_inventory(
        "sops",
        &format!(
            r#"{{"nodes": [{{"name": "ENC[AES256_GCM,data:{},type:str]", "tailscale_ip": "100.64.0.1"}}],
                "registries": [{{"node": "a", "tokens": [{{"name": "web", "role": "reader",
                  "token": "ENC[AES256_GCM,data:{},type:str]"}}]}}],
                "sops": {{"age": [{{"recipient": "age1x"}}], "version": "3.9.0"}}}}"#,
            b64("a"),
            b64(token)
        ),
    );
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = bin()
        .arg("-i")
        .arg(&inv)
        .args(["show"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let all = both_outputs(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("node a ("), "{all}");
    assert!(!all.contains(token));
    // Without sops: bad input that says so.
    let out = bin()
        .arg("-i")
        .arg(&inv)
        .arg("validate")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("$.sops: the inventory is encrypted with SOPS, and sops cannot run")
    );
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
    let tmp = tempfile::Builder::new()
        .prefix("vds-cli-tpl-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
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

/// `--detailed-exitcode` only means something for a dry run: without `--dry-run` it is a
/// usage error (exit 2), and no host is contacted.
#[test]
fn detailed_exitcode_needs_a_dry_run() {
    let path = tmp_inventory(
        "detailed",
        r#"{"nodes": [{"name": "a", "public_ip": "192.0.2.1"}]}"#,
    );
    let out = bin()
        .arg("-i")
        .arg(&path)
        .args(["deploy", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--dry-run"), "{stderr}");
}

/// `completions bash` prints a script bash accepts that completes the verbs and flags;
/// zsh and fish scripts come from the same definitions.
#[test]
fn completions_cover_the_verbs_and_flags() {
    let out = bin().args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).unwrap();
    for word in [
        "deploy",
        "status",
        "remove",
        "--detailed-exitcode",
        "--only",
    ] {
        assert!(script.contains(word), "{word} missing");
    }
    let tmp = tempfile::Builder::new()
        .prefix("vds-completion-")
        .tempdir()
        .unwrap();
    let file = tmp.path().join("vds-completion.bash");
    std::fs::write(&file, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("deploy"),
            "{shell}"
        );
    }
}

/// `man` prints a roff manual page naming the verbs.
#[test]
fn the_man_page_is_roff_with_the_verbs() {
    let out = bin().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH vds-proxy 1"), "{page}");
    for verb in ["deploy", "status", "remove", "completions"] {
        assert!(page.contains(verb), "{verb} missing");
    }
}

// Each system's command-line tests, from its folder (`src/roles/<name>/cli.rs`; listed by
// build.rs).
include!(concat!(env!("OUT_DIR"), "/system_cli_tests.rs"));
