//! Reading and checking `wireguard`: members are active nodes, once each, with distinct
//! addresses; the hub (if any) is a member; every pair that must peer can reach one side.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use super::model::{Topology, WgMember, WgNetwork};
use crate::inventory::{Claims, Collector, Fields, Inventory, is_host_port, parse_cidr};

const KEYS: &[&str] = &[
    "interface",
    "port",
    "topology",
    "hub",
    "keepalive",
    "handshake_timeout",
    "members",
];
const MEMBER_KEYS: &[&str] = &[
    "node",
    "address",
    "endpoint",
    "allowed_ips",
    "route_all",
    "userspace",
];

/// A network interface name: what `ip link` and `wg-quick@NAME` accept, safe in paths and
/// never taken for an option (it starts with a letter or digit).
pub fn is_interface_name(s: &str) -> bool {
    s.len() <= 15
        && s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// Reads one entry of `wireguard`.
pub fn network(c: &mut Collector, path: &str, v: &Value) -> Option<WgNetwork> {
    let f = Fields::new(c, path, v, KEYS)?;
    let interface = f.opt_str(c, "interface").unwrap_or_else(|| "wg0".into());
    if !is_interface_name(&interface) {
        c.push(
            f.path_of("interface"),
            format!("\"{interface}\" is not an interface name; use at most 15 lowercase letters, digits, '-' or '_', e.g. \"wg0\""),
        );
    }
    let topology = f.choice(
        c,
        "topology",
        &[("mesh", Topology::Mesh), ("hub", Topology::Hub)],
        Topology::Mesh,
    );
    let members = f.objects(c, "members", member);
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

fn member(c: &mut Collector, path: &str, v: &Value) -> Option<WgMember> {
    let f = Fields::new(c, path, v, MEMBER_KEYS)?;
    let node = f.req_ref(c, "node").unwrap_or_default();
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
    if let Some(e) = &endpoint
        && !is_host_port(e)
    {
        c.push(
            f.path_of("endpoint"),
            format!("\"{e}\" is not host:port; expected e.g. \"203.0.113.10:51820\", \"vpn.example.com:51820\" or \"[2001:db8::10]:51820\""),
        );
    }
    let allowed_ips = f.list(
        c,
        "allowed_ips",
        "networks",
        "expected a network like \"192.168.10.0/24\"",
        |s| parse_cidr(s).map(|(ip, p)| format!("{ip}/{p}")),
    );
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

/// Checks every network of `inv` across the inventory.
pub fn validate(inv: &Inventory, networks: &[WgNetwork], c: &mut Collector, claims: &mut Claims) {
    let mut interfaces: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, w) in networks.iter().enumerate() {
        let base = format!("$.wireguard[{i}]");
        if let Some(first) = interfaces.insert(&w.interface, i) {
            c.push(
                format!("{base}.interface"),
                format!(
                    "interface \"{}\" is already used by $.wireguard[{first}]; give each network its own interface name",
                    w.interface
                ),
            );
        }
        if w.members.len() < 2 {
            c.push(
                format!("{base}.members"),
                "a WireGuard network needs at least two members",
            );
        }
        let mut nodes: BTreeMap<&str, usize> = BTreeMap::new();
        let mut addresses: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (j, m) in w.members.iter().enumerate() {
            let mpath = format!("{base}.members[{j}]");
            inv.check_node_ref(c, &format!("{mpath}.node"), &m.node);
            if let Some(first) = nodes.insert(&m.node, j) {
                c.push(
                    format!("{mpath}.node"),
                    format!(
                        "node \"{}\" is already a member ({base}.members[{first}])",
                        m.node
                    ),
                );
            } else {
                // Once per node: a member named twice is that error, not a port clash
                // with itself.
                claims.udp_port(
                    inv,
                    c,
                    &m.node,
                    w.port,
                    format!("{base}.port ({})", w.interface),
                );
            }
            if let Some(first) = addresses.insert(m.address, j) {
                c.push(
                    format!("{mpath}.address"),
                    format!(
                        "address {} is already used by {base}.members[{first}]",
                        m.address
                    ),
                );
            }
            if m.route_all && (w.topology != Topology::Hub || w.is_hub(&m.node)) {
                c.push(
                    format!("{mpath}.route_all"),
                    "route_all sends a spoke's egress through the hub: only members of a \"hub\" network other than the hub can have it",
                );
            }
        }
        match (w.topology, w.hub.as_deref()) {
            (Topology::Hub, None) => c.push(
                format!("{base}.hub"),
                "a \"hub\" network needs \"hub\": the node the others peer with",
            ),
            (Topology::Hub, Some(h)) if w.member(h).is_none() => c.push(
                format!("{base}.hub"),
                format!("hub \"{h}\" is not a member of this network; add it to members"),
            ),
            (Topology::Mesh, Some(_)) => c.push(
                format!("{base}.hub"),
                "only a \"hub\" network has a hub; set \"topology\": \"hub\" or remove \"hub\"",
            ),
            _ => {}
        }
        let reachable = |m: &WgMember| {
            m.endpoint.is_some() || inv.node(&m.node).is_some_and(|n| n.public_ip.is_some())
        };
        let hub_ok = w.hub.as_deref().is_some_and(|h| w.member(h).is_some());
        if w.topology == Topology::Hub && !hub_ok {
            continue;
        }
        for (j, m) in w.members.iter().enumerate() {
            for p in w.peers_of(&m.node) {
                // Each pair once: in a mesh from its first node, in a hub from the spoke.
                let once = match w.topology {
                    Topology::Mesh => m.node < p.node,
                    Topology::Hub => !w.is_hub(&m.node),
                };
                if once && !reachable(m) && !reachable(p) {
                    c.push(
                        format!("{base}.members[{j}]"),
                        format!(
                            "neither \"{}\" nor its peer \"{}\" can be reached: set \"endpoint\" on one of them (or public_ip on its node)",
                            m.node, p.node
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_interface_name;
    use crate::inventory::is_host_port;

    #[test]
    fn endpoints_are_host_port_or_bracketed_ipv6_port() {
        for ok in [
            "203.0.113.10:51820",
            "vpn.example.com:51820",
            "[2001:db8::10]:51820",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "vpn.example.com]:51820",
            "[[host:+51820",
            "2001:db8::10:51820",
            "[vpn.example.com]:51820",
            "host:0",
            "host",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn interface_names_never_look_like_options() {
        assert!(is_interface_name("wg0"));
        assert!(!is_interface_name("-h"));
        assert!(!is_interface_name("_x"));
        assert!(!is_interface_name("wg0-far-too-long"));
    }
}
