//! Nodes: the machines of the inventory, and how vds-proxy reaches them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::error::Collector;
use super::reader::{Fields, HOSTNAME, SAFE_NAME, kind, port_value, shown};

/// How vds-proxy reaches a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// Over SSH (the default).
    Ssh,
    /// The machine vds-proxy runs on, without SSH.
    Local,
}

/// A machine in the inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: String,
    pub public_ip: Option<IpAddr>,
    /// The node's mesh address (Tailscale or WireGuard): where routes reach it.
    pub tailscale_ip: Option<IpAddr>,
    pub domain: Option<String>,
    pub ssh_user: String,
    /// Address to SSH to; defaults to `tailscale_ip`, then `public_ip`, then `name`.
    pub ssh_host: Option<String>,
    pub ssh_port: u16,
    /// Wrap remote commands in `sudo -n`; defaults to true when `ssh_user` is not root.
    pub sudo: bool,
    pub connection: Connection,
    /// Informational port map from the `vds_proxy.sh` format (`{"socat": [8443]}`).
    pub ports: BTreeMap<String, Vec<u16>>,
    pub ram_gb: Option<f64>,
    pub active: bool,
    /// The Tailscale tags the node advertises, e.g. `tag:farm`.
    pub tailscale_tags: Vec<String>,
}

impl Node {
    /// The address an SSH connection goes to.
    pub fn ssh_destination(&self) -> String {
        self.ssh_host
            .clone()
            .or_else(|| self.tailscale_ip.map(|ip| ip.to_string()))
            .or_else(|| self.public_ip.map(|ip| ip.to_string()))
            .unwrap_or_else(|| self.name.clone())
    }

    /// The address routes use to reach this node over the mesh.
    pub fn mesh_address(&self) -> Option<IpAddr> {
        self.tailscale_ip.or(self.public_ip)
    }
}

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
    "tailscale_tags",
];

/// A Tailscale tag: `tag:` and a name of letters, digits and dashes.
pub fn is_tailscale_tag(s: &str) -> bool {
    s.strip_prefix("tag:").is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !n.starts_with('-')
    })
}

/// Reads one entry of `nodes`.
pub fn parse(c: &mut Collector, path: &str, v: &Value) -> Option<Node> {
    let f = Fields::new(c, path, v, NODE_KEYS)?;
    let name = f.req_checked_str(c, "name", &SAFE_NAME);
    let ssh_user = f.opt_str(c, "ssh_user").unwrap_or_else(|| "root".into());
    if !is_safe_user(&ssh_user) {
        c.push(
            f.path_of("ssh_user"),
            format!(
                "\"{ssh_user}\" is not a valid user name; expected e.g. \"root\" or \"deploy\""
            ),
        );
    }
    let connection = f.choice(
        c,
        "connection",
        &[("ssh", Connection::Ssh), ("local", Connection::Local)],
        Connection::Ssh,
    );
    Some(Node {
        name: name.unwrap_or_default(),
        public_ip: f.opt_ip(c, "public_ip"),
        tailscale_ip: f.opt_ip(c, "tailscale_ip"),
        domain: f.checked_str(c, "domain", &HOSTNAME),
        sudo: f.bool_or(c, "sudo", ssh_user != "root"),
        ssh_user,
        ssh_host: f.checked_str(c, "ssh_host", &HOSTNAME),
        ssh_port: f.opt_port(c, "ssh_port").unwrap_or(22),
        connection,
        ports: ports_map(c, &f),
        ram_gb: f.opt_f64(c, "ram_gb").filter(|gb| {
            let ok = *gb >= 0.0;
            if !ok {
                c.push(
                    f.path_of("ram_gb"),
                    format!("{gb} GB of memory? expected 0 or more"),
                );
            }
            ok
        }),
        active: f.bool_or(c, "active", true),
        tailscale_tags: f.list(
            c,
            "tailscale_tags",
            "tags",
            "expected a Tailscale tag like \"tag:farm\" (letters, digits and dashes after \"tag:\")",
            |s| is_tailscale_tag(s).then(|| s.to_string()),
        ),
    })
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
        let path = format!("{}[{}]", f.path_of("ports"), shown(key));
        let key_ok = !key.is_empty()
            && key.len() <= 63
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !key_ok {
            c.push(
                &path,
                "is not a name for a list of ports; use letters, digits and _ . - (at most 63), e.g. \"socat\"",
            );
            continue;
        }
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

/// Duplicate names; `nodes` must not be empty.
pub fn validate(nodes: &[Node], c: &mut Collector) {
    if nodes.is_empty() {
        c.push(
            "$.nodes",
            "the inventory has no nodes; add at least one node, e.g. {\"name\": \"vds-1\", \"public_ip\": \"203.0.113.10\"}",
        );
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.name.is_empty() {
            continue;
        }
        if let Some(&first) = seen.get(n.name.as_str()) {
            c.push(
                format!("$.nodes[{i}].name"),
                format!(
                    "duplicate node name \"{}\" (first used at $.nodes[{first}]); node names must be unique",
                    n.name
                ),
            );
        } else {
            seen.insert(&n.name, i);
        }
    }
}
