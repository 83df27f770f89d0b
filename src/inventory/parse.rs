//! Reading `nodes.json` into the model; each field is checked on its own here,
//! cross-references are checked in `validate`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use serde_json::Value;

use super::error::Collector;
use super::model::*;
use super::reader::{Fields, kind, port_value};

const TOP_KEYS: &[&str] = &["nodes", "routes", "services", "wireguard", "k3s"];
const NODE_KEYS: &[&str] = &[
    "name",
    "public_ip",
    "tailscale_ip",
    "domain",
    "ssh_user",
    "ssh_host",
    "ssh_port",
    "sudo",
    "connection",
    "ports",
    "ram_gb",
    "active",
];
const ROUTE_KEYS: &[&str] = &[
    "domain",
    "port",
    "listen",
    "proxy_node",
    "target_node",
    "target_port",
    "service",
    "ssl",
    "description",
    "forwarder",
];
const SERVICE_KEYS: &[&str] = &[
    "name",
    "node",
    "replicas",
    "base_port",
    "exec",
    "secret",
    "description",
    "balancer",
    "image",
    "container_port",
];
const WG_KEYS: &[&str] = &[
    "interface",
    "port",
    "topology",
    "hub",
    "keepalive",
    "handshake_timeout",
    "members",
];
const WG_MEMBER_KEYS: &[&str] = &[
    "node",
    "address",
    "endpoint",
    "allowed_ips",
    "route_all",
    "userspace",
];
const K3S_KEYS: &[&str] = &[
    "node",
    "namespace",
    "manifests_dir",
    "apps",
    "jobs",
    "egress",
];
const K3S_APP_KEYS: &[&str] = &[
    "name",
    "image",
    "replicas",
    "port",
    "host_port",
    "node_port",
    "tls_dir",
    "role",
    "allow_from",
    "env",
    "secret_env",
];
const K3S_JOB_KEYS: &[&str] = &["name", "image", "parallelism", "completions", "ttl_seconds"];
const K3S_EGRESS_KEYS: &[&str] = &["image", "secret"];
const BALANCER_KEYS: &[&str] = &[
    "port",
    "algorithm",
    "check",
    "transparent",
    "stats_socket",
    "stats_address",
    "backend_address",
    "drain_timeout",
];

/// Parses the text of `nodes.json`; `file` names it in messages.
pub fn parse(file: &Path, text: &str, c: &mut Collector) -> Inventory {
    let mut inv = Inventory {
        source: file.to_path_buf(),
        nodes: Vec::new(),
        routes: Vec::new(),
        services: Vec::new(),
        wireguard: Vec::new(),
        k3s: None,
    };
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            c.push_at(
                e.line(),
                e.column(),
                format!("invalid JSON: {}", strip_position(&e)),
            );
            return inv;
        }
    };
    let Some(top) = Fields::new(c, "$", &root, TOP_KEYS) else {
        return inv;
    };
    for (path, v) in top.opt_array(c, "nodes") {
        if let Some(n) = node(c, &path, v) {
            inv.nodes.push(n);
        }
    }
    for (path, v) in top.opt_array(c, "routes") {
        if let Some(r) = route(c, &path, v) {
            inv.routes.push(r);
        }
    }
    for (path, v) in top.opt_array(c, "services") {
        if let Some(s) = service(c, &path, v) {
            inv.services.push(s);
        }
    }
    for (path, v) in top.opt_array(c, "wireguard") {
        if let Some(w) = wireguard(c, &path, v) {
            inv.wireguard.push(w);
        }
    }
    if let Some(v) = top.get("k3s") {
        inv.k3s = k3s(c, &top.path_of("k3s"), v);
    }
    inv
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A name that ends up in unit file names and remote commands: `[a-z0-9][a-z0-9-]*`.
pub fn is_safe_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A DNS name or address usable as an SSH destination or a domain.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

/// Free text that goes into a unit's Description=: one line, printable.
fn is_one_line(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

fn safe_name(c: &mut Collector, f: &Fields, key: &str, required: bool) -> Option<String> {
    let s = if required {
        f.req_str(c, key)?
    } else {
        f.opt_str(c, key)?
    };
    if is_safe_name(&s) {
        Some(s)
    } else {
        c.push(
            f.path_of(key),
            format!(
                "\"{s}\" is not a safe name; use lowercase letters, digits and '-', starting with a letter or digit (at most 63 characters), e.g. \"vds-1\""
            ),
        );
        None
    }
}

fn hostname(c: &mut Collector, f: &Fields, key: &str) -> Option<String> {
    let s = f.opt_str(c, key)?;
    if is_hostname(&s) {
        Some(s)
    } else {
        c.push(
            f.path_of(key),
            format!("\"{s}\" is not a valid host name; expected e.g. \"tg.example.com\""),
        );
        None
    }
}

fn one_line(c: &mut Collector, f: &Fields, key: &str) -> Option<String> {
    let s = f.opt_str(c, key)?;
    if is_one_line(&s) {
        Some(s)
    } else {
        c.push(
            f.path_of(key),
            "must be a single line without control characters",
        );
        None
    }
}

fn node(c: &mut Collector, path: &str, v: &Value) -> Option<Node> {
    let f = Fields::new(c, path, v, NODE_KEYS)?;
    let name = safe_name(c, &f, "name", true);
    let ssh_user = f.opt_str(c, "ssh_user").unwrap_or_else(|| "root".into());
    if !is_safe_user(&ssh_user) {
        c.push(
            f.path_of("ssh_user"),
            format!(
                "\"{ssh_user}\" is not a valid user name; expected e.g. \"root\" or \"deploy\""
            ),
        );
    }
    let connection = match f.opt_str(c, "connection").as_deref() {
        None | Some("ssh") => Connection::Ssh,
        Some("local") => Connection::Local,
        Some(other) => {
            c.push(
                f.path_of("connection"),
                format!("unknown connection \"{other}\"; expected \"ssh\" or \"local\""),
            );
            Connection::Ssh
        }
    };
    let ports = ports_map(c, &f);
    let node = Node {
        name: name.unwrap_or_default(),
        public_ip: f.opt_ip(c, "public_ip"),
        tailscale_ip: f.opt_ip(c, "tailscale_ip"),
        domain: hostname(c, &f, "domain"),
        sudo: f.bool_or(c, "sudo", ssh_user != "root"),
        ssh_user,
        ssh_host: hostname(c, &f, "ssh_host"),
        ssh_port: f.opt_port(c, "ssh_port").unwrap_or(22),
        connection,
        ports,
        ram_gb: f.opt_f64(c, "ram_gb"),
        active: f.bool_or(c, "active", true),
    };
    Some(node)
}

fn is_safe_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        && !s.starts_with('-')
}

fn ports_map(c: &mut Collector, f: &Fields) -> BTreeMap<String, Vec<u16>> {
    let mut out = BTreeMap::new();
    let Some(v) = f.get("ports") else {
        return out;
    };
    let Value::Object(map) = v else {
        c.push(
            f.path_of("ports"),
            format!(
                "expected an object of port lists like {{\"socat\": [8443]}}, found {}",
                kind(v)
            ),
        );
        return out;
    };
    for (key, list) in map {
        let path = format!("{}.{}", f.path_of("ports"), key);
        let Value::Array(items) = list else {
            c.push(
                &path,
                format!("expected an array of ports, found {}", kind(list)),
            );
            continue;
        };
        let ports = items
            .iter()
            .enumerate()
            .filter_map(|(i, p)| port_value(c, &format!("{path}[{i}]"), p))
            .collect();
        out.insert(key.clone(), ports);
    }
    out
}

fn route(c: &mut Collector, path: &str, v: &Value) -> Option<Route> {
    let f = Fields::new(c, path, v, ROUTE_KEYS)?;
    let forwarder = match f.opt_str(c, "forwarder").as_deref() {
        None | Some("relay") => Forwarder::Relay,
        Some("socat") => Forwarder::Socat,
        Some(other) => {
            c.push(
                f.path_of("forwarder"),
                format!("unknown forwarder \"{other}\"; expected \"relay\" (default) or \"socat\""),
            );
            Forwarder::Relay
        }
    };
    Some(Route {
        domain: hostname(c, &f, "domain"),
        port: f.req_port(c, "port").unwrap_or(0),
        listen: f
            .opt_ip(c, "listen")
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        proxy_node: f.req_str(c, "proxy_node").unwrap_or_default(),
        target_node: f.req_str(c, "target_node").unwrap_or_default(),
        target_port: f.req_port(c, "target_port").unwrap_or(0),
        service: safe_name(c, &f, "service", true).unwrap_or_default(),
        ssl: f.bool_or(c, "ssl", false),
        description: one_line(c, &f, "description"),
        forwarder,
    })
}

fn service(c: &mut Collector, path: &str, v: &Value) -> Option<Service> {
    let f = Fields::new(c, path, v, SERVICE_KEYS)?;
    let image = f.get("image").is_some().then(|| image(c, &f));
    let exec = match f.get("exec") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a.as_str() {
                Some(s) if is_one_line(s) => Some(s.to_string()),
                _ => {
                    c.push(
                        format!("{}[{}]", f.path_of("exec"), i),
                        "expected a one-line string argument",
                    );
                    None
                }
            })
            .collect(),
        None if image.is_some() => Vec::new(),
        _ => {
            c.push(
                f.path_of("exec"),
                "required (unless \"image\" runs the replicas as containers): the replica's command line as an array of strings, e.g. [\"/usr/local/bin/mtproto-proxy\", \"-H\", \"{port}\"]",
            );
            Vec::new()
        }
    };
    let secret = f.opt_str(c, "secret");
    if let Some(s) = &secret
        && !(s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        c.push(
            f.path_of("secret"),
            "the secret must be 32 hexadecimal characters (generate one with `openssl rand -hex 16`)",
        );
    }
    let balancer = f
        .get("balancer")
        .and_then(|b| balancer(c, &f.path_of("balancer"), b));
    Some(Service {
        name: safe_name(c, &f, "name", true).unwrap_or_default(),
        node: f.req_str(c, "node").unwrap_or_default(),
        replicas: f.opt_uint(c, "replicas", 0, 64).unwrap_or(1) as u32,
        base_port: f.opt_port(c, "base_port").unwrap_or(10000),
        exec,
        secret,
        description: one_line(c, &f, "description"),
        balancer,
        image,
        container_port: f.opt_port(c, "container_port").unwrap_or(443),
    })
}

fn balancer(c: &mut Collector, path: &str, v: &Value) -> Option<Balancer> {
    let f = Fields::new(c, path, v, BALANCER_KEYS)?;
    let algorithm = f
        .opt_str(c, "algorithm")
        .unwrap_or_else(|| "leastconn".into());
    const ALGORITHMS: &[&str] = &["leastconn", "roundrobin", "source", "first", "static-rr"];
    if !ALGORITHMS.contains(&algorithm.as_str()) {
        c.push(
            f.path_of("algorithm"),
            format!(
                "unknown algorithm \"{algorithm}\"; expected one of {}",
                ALGORITHMS.join(", ")
            ),
        );
    }
    let check = one_line(c, &f, "check").unwrap_or_else(|| "inter 2000 fall 3 rise 2".into());
    let stats_socket = f
        .opt_str(c, "stats_socket")
        .unwrap_or_else(|| "/run/haproxy/admin.sock".into());
    let name_ok = stats_socket.strip_prefix("/run/haproxy/").is_some_and(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    if !name_ok {
        c.push(
            f.path_of("stats_socket"),
            "expected a socket in /run/haproxy/ (haproxy runs as user haproxy and can only create it there), e.g. \"/run/haproxy/admin.sock\"",
        );
    }
    let stats_address = f
        .opt_str(c, "stats_address")
        .unwrap_or_else(|| "127.0.0.1:8404".into());
    if stats_address.parse::<std::net::SocketAddr>().is_err() {
        c.push(
            f.path_of("stats_address"),
            format!("\"{stats_address}\" is not an address:port; expected e.g. \"127.0.0.1:8404\""),
        );
    }
    Some(Balancer {
        port: f.opt_port(c, "port").unwrap_or(443),
        algorithm,
        check,
        transparent: f.bool_or(c, "transparent", false),
        stats_socket,
        stats_address,
        backend_address: f.opt_ip(c, "backend_address"),
        drain_timeout: f.opt_uint(c, "drain_timeout", 0, 86_400).unwrap_or(30) as u32,
    })
}

/// A network interface name: what `ip link` and `wg-quick@NAME` accept, and safe in paths.
pub fn is_interface_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// `ADDRESS/PREFIX` with a prefix that fits the address family.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix))
}

fn wireguard(c: &mut Collector, path: &str, v: &Value) -> Option<WgNetwork> {
    let f = Fields::new(c, path, v, WG_KEYS)?;
    let interface = f.opt_str(c, "interface").unwrap_or_else(|| "wg0".into());
    if !is_interface_name(&interface) {
        c.push(
            f.path_of("interface"),
            format!("\"{interface}\" is not an interface name; use at most 15 lowercase letters, digits, '-' or '_', e.g. \"wg0\""),
        );
    }
    let topology = match f.opt_str(c, "topology").as_deref() {
        None | Some("mesh") => Topology::Mesh,
        Some("hub") => Topology::Hub,
        Some(other) => {
            c.push(
                f.path_of("topology"),
                format!("unknown topology \"{other}\"; expected \"mesh\" or \"hub\""),
            );
            Topology::Mesh
        }
    };
    let members = f
        .opt_array(c, "members")
        .into_iter()
        .filter_map(|(p, m)| wg_member(c, &p, m))
        .collect();
    Some(WgNetwork {
        interface,
        port: f.opt_port(c, "port").unwrap_or(51820),
        topology,
        hub: f.opt_str(c, "hub"),
        keepalive: f.opt_uint(c, "keepalive", 0, 65535).unwrap_or(25) as u16,
        handshake_timeout: f
            .opt_uint(c, "handshake_timeout", 10, 86_400)
            .unwrap_or(180) as u32,
        members,
    })
}

fn wg_member(c: &mut Collector, path: &str, v: &Value) -> Option<WgMember> {
    let f = Fields::new(c, path, v, WG_MEMBER_KEYS)?;
    let node = f.req_str(c, "node").unwrap_or_default();
    let (address, prefix) = match f.req_str(c, "address") {
        Some(a) => parse_cidr(&a).unwrap_or_else(|| {
            c.push(
                f.path_of("address"),
                format!(
                    "\"{a}\" is not an address with a prefix length; expected e.g. \"10.8.0.2/24\""
                ),
            );
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        }),
        None => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
    };
    let endpoint = f.opt_str(c, "endpoint");
    if let Some(e) = &endpoint {
        let ok = e.rsplit_once(':').is_some_and(|(h, p)| {
            is_hostname(h.trim_matches(['[', ']'])) && p.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            c.push(
                f.path_of("endpoint"),
                format!("\"{e}\" is not host:port; expected e.g. \"203.0.113.10:51820\""),
            );
        }
    }
    let allowed_ips = match f.get("allowed_ips") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a.as_str().and_then(parse_cidr) {
                Some((ip, p)) => Some(format!("{ip}/{p}")),
                None => {
                    c.push(
                        format!("{}[{i}]", f.path_of("allowed_ips")),
                        "expected a network like \"192.168.10.0/24\"",
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            c.push(
                f.path_of("allowed_ips"),
                format!("expected an array of networks, found {}", kind(other)),
            );
            Vec::new()
        }
    };
    Some(WgMember {
        node,
        address,
        prefix,
        endpoint,
        allowed_ips,
        route_all: f.bool_or(c, "route_all", false),
        userspace: f.bool_or(c, "userspace", false),
    })
}

/// A container image reference: one word of printable characters.
fn image(c: &mut Collector, f: &Fields) -> String {
    let image = f.req_str(c, "image").unwrap_or_default();
    if !image.is_empty()
        && (image
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control())
            || image.len() > 255)
    {
        c.push(
            f.path_of("image"),
            format!(
                "\"{image}\" is not an image reference; expected e.g. \"ghcr.io/example/tgweb:1.4\""
            ),
        );
    }
    image
}

fn absolute_path(c: &mut Collector, f: &Fields, key: &str) -> Option<String> {
    let p = f.opt_str(c, key)?;
    if p.starts_with('/') && is_one_line(&p) && !p.contains(['"', '\\']) {
        Some(p)
    } else {
        c.push(
            f.path_of(key),
            format!("\"{p}\" is not an absolute path; expected e.g. \"/opt/certs/letsencrypt/tg.example.com\""),
        );
        None
    }
}

fn k3s(c: &mut Collector, path: &str, v: &Value) -> Option<K3s> {
    let f = Fields::new(c, path, v, K3S_KEYS)?;
    let node = f.req_str(c, "node").unwrap_or_default();
    let namespace = safe_name(c, &f, "namespace", false).unwrap_or_else(|| "vds-proxy".into());
    let manifests_dir = absolute_path(c, &f, "manifests_dir")
        .unwrap_or_else(|| "/var/lib/rancher/k3s/server/manifests".into());
    let apps = f
        .opt_array(c, "apps")
        .into_iter()
        .filter_map(|(p, a)| k3s_app(c, &p, a))
        .collect();
    let jobs = f
        .opt_array(c, "jobs")
        .into_iter()
        .filter_map(|(p, j)| {
            let f = Fields::new(c, &p, j, K3S_JOB_KEYS)?;
            Some(K3sJob {
                name: safe_name(c, &f, "name", true).unwrap_or_default(),
                image: image(c, &f),
                parallelism: f.opt_uint(c, "parallelism", 1, 10_000).unwrap_or(1) as u32,
                completions: f.opt_uint(c, "completions", 1, 1_000_000).unwrap_or(1) as u32,
                ttl_seconds: f.opt_uint(c, "ttl_seconds", 0, 604_800).unwrap_or(600) as u32,
            })
        })
        .collect();
    let egress = f.get("egress").and_then(|e| {
        let f = Fields::new(c, &f.path_of("egress"), e, K3S_EGRESS_KEYS)?;
        Some(K3sEgress {
            image: image(c, &f),
            secret: safe_name(c, &f, "secret", false).unwrap_or_else(|| "wg-egress".into()),
        })
    });
    Some(K3s {
        node,
        namespace,
        manifests_dir,
        apps,
        jobs,
        egress,
    })
}

fn k3s_app(c: &mut Collector, path: &str, v: &Value) -> Option<K3sApp> {
    let f = Fields::new(c, path, v, K3S_APP_KEYS)?;
    let node_port = f.opt_port(c, "node_port");
    if let Some(p) = node_port
        && !(30000..=32767).contains(&p)
    {
        c.push(
            f.path_of("node_port"),
            format!("node port {p} is outside the NodePort range; expected 30000-32767"),
        );
    }
    let host_port = f.opt_port(c, "host_port");
    if host_port.is_some() && node_port.is_some() {
        c.push(
            f.path_of("node_port"),
            "an app is published either on a hostPort or on a NodePort, not both; remove one",
        );
    }
    let allow_from = match f.get("allow_from") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r.as_str() {
                Some(s) if is_safe_name(s) => Some(s.to_string()),
                _ => {
                    c.push(
                        format!("{}[{i}]", f.path_of("allow_from")),
                        "expected a role name, e.g. \"control\"",
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            c.push(
                f.path_of("allow_from"),
                format!("expected an array of role names, found {}", kind(other)),
            );
            Vec::new()
        }
    };
    let env = env_map(c, &f, "env");
    let secret_env = env_map(c, &f, "secret_env");
    Some(K3sApp {
        name: safe_name(c, &f, "name", true).unwrap_or_default(),
        image: image(c, &f),
        replicas: f.opt_uint(c, "replicas", 0, 1000).unwrap_or(1) as u32,
        port: f.req_port(c, "port").unwrap_or(1),
        host_port,
        node_port,
        tls_dir: absolute_path(c, &f, "tls_dir"),
        role: safe_name(c, &f, "role", false),
        allow_from,
        env,
        secret_env,
    })
}

/// An object of environment variables: NAME (letters, digits, '_') to string.
fn env_map(c: &mut Collector, f: &Fields, key: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match f.get(key) {
        None => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let name_ok = k
                    .chars()
                    .next()
                    .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
                    && k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
                match v.as_str() {
                    Some(val) if name_ok => {
                        env.insert(k.clone(), val.to_string());
                    }
                    _ => c.push(
                        format!("{}.{k}", f.path_of(key)),
                        "expected NAME (letters, digits, '_') with a string value",
                    ),
                }
            }
        }
        Some(other) => c.push(
            f.path_of(key),
            format!(
                "expected an object of NAME: \"value\", found {}",
                kind(other)
            ),
        ),
    }
    env
}
