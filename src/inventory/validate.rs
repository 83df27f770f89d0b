//! Checks across the whole inventory: names, references and port conflicts.

use std::collections::BTreeMap;

use super::error::{Collector, suggest};
use super::model::{Inventory, Topology, WgMember};

/// Records every cross-reference problem of `inv` in `c`.
pub fn validate(inv: &Inventory, c: &mut Collector) {
    if inv.nodes.is_empty() {
        c.push(
            "$.nodes",
            "the inventory has no nodes; add at least one node, e.g. {\"name\": \"vds-1\", \"public_ip\": \"203.0.113.10\"}",
        );
    }

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in inv.nodes.iter().enumerate() {
        if n.name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(&n.name, i) {
            c.push(
                format!("$.nodes[{i}].name"),
                format!(
                    "duplicate node name \"{}\" (first used at $.nodes[{first}]); node names must be unique",
                    n.name
                ),
            );
            seen.insert(&n.name, first);
        }
    }
    let names: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();

    // Every (node, port) something listens on, with the JSON path that claims it.
    let mut listeners: BTreeMap<(&str, u16), String> = BTreeMap::new();
    let mut claim = |c: &mut Collector, node: &'_ str, port: u16, path: String| {
        let key = (
            names.iter().copied().find(|n| *n == node).unwrap_or(""),
            port,
        );
        if key.0.is_empty() || port == 0 {
            return;
        }
        match listeners.get(&key) {
            Some(first) => c.push(
                path,
                format!(
                    "port {port} on node \"{node}\" is already used by {first}; pick another port"
                ),
            ),
            None => {
                listeners.insert(key, path);
            }
        }
    };

    for (i, r) in inv.routes.iter().enumerate() {
        let base = format!("$.routes[{i}]");
        check_node_ref(inv, c, &format!("{base}.proxy_node"), &r.proxy_node, &names);
        if check_node_ref(
            inv,
            c,
            &format!("{base}.target_node"),
            &r.target_node,
            &names,
        ) && let Some(t) = inv.nodes.iter().find(|n| n.name == r.target_node)
            && t.mesh_address().is_none()
        {
            c.push(
                format!("{base}.target_node"),
                format!(
                    "target node \"{}\" has no address to forward to; give it a tailscale_ip or public_ip",
                    r.target_node
                ),
            );
        }
        claim(c, &r.proxy_node, r.port, format!("{base}.port"));
    }

    let mut services: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in inv.services.iter().enumerate() {
        let base = format!("$.services[{i}]");
        if !s.name.is_empty()
            && let Some(first) = services.insert(&s.name, i)
        {
            c.push(
                format!("{base}.name"),
                format!(
                    "duplicate service name \"{}\" (first used at $.services[{first}])",
                    s.name
                ),
            );
        }
        check_node_ref(inv, c, &format!("{base}.node"), &s.node, &names);
        let last = u32::from(s.base_port) + s.replicas.saturating_sub(1);
        if last > 65535 {
            c.push(
                format!("{base}.replicas"),
                format!(
                    "{} replicas from base_port {} would need port {last}; lower base_port or replicas",
                    s.replicas, s.base_port
                ),
            );
            continue;
        }
        for n in 1..=s.replicas {
            claim(c, &s.node, s.replica_port(n), format!("{base} replica {n}"));
        }
        if let Some(b) = &s.balancer {
            claim(c, &s.node, b.port, format!("{base}.balancer.port"));
            let usable = inv.backend_address(s).is_some_and(|a| !a.is_loopback());
            if b.transparent && !usable {
                c.push(
                    format!("{base}.balancer.backend_address"),
                    "a transparent balancer needs a non-loopback address of the node to reach its replicas on (replies from 127.0.0.1 cannot be routed back to a client address); set backend_address, or tailscale_ip or public_ip on the node",
                );
            }
        }
    }
    if let Some(k) = &inv.k3s {
        check_node_ref(inv, c, "$.k3s.node", &k.node, &names);
        let roles: Vec<&str> = k
            .apps
            .iter()
            .filter_map(|a| a.role.as_deref())
            .chain(["job"])
            .collect();
        let mut apps: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, a) in k.apps.iter().enumerate() {
            let base = format!("$.k3s.apps[{i}]");
            if let Some(first) = apps.insert(&a.name, i) {
                c.push(
                    format!("{base}.name"),
                    format!(
                        "duplicate app name \"{}\" (first used at $.k3s.apps[{first}])",
                        a.name
                    ),
                );
            }
            for p in a.host_port.iter().chain(a.node_port.iter()) {
                claim(c, &k.node, *p, format!("{base} (k3s app {})", a.name));
            }
            for (j, r) in a.allow_from.iter().enumerate() {
                if !roles.contains(&r.as_str()) {
                    c.push(
                        format!("{base}.allow_from[{j}]"),
                        format!("no app has role \"{r}\"; known roles: {}", roles.join(", ")),
                    );
                }
            }
        }
    }
    validate_wireguard(inv, c, &names);
}

/// WireGuard networks: members are active nodes, once each, with distinct addresses; the
/// hub (if any) is a member; every pair that must peer can reach one side.
fn validate_wireguard(inv: &Inventory, c: &mut Collector, names: &[&str]) {
    let mut interfaces: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, w) in inv.wireguard.iter().enumerate() {
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
        let mut addresses: BTreeMap<std::net::IpAddr, usize> = BTreeMap::new();
        for (j, m) in w.members.iter().enumerate() {
            let mpath = format!("{base}.members[{j}]");
            check_node_ref(inv, c, &format!("{mpath}.node"), &m.node, names);
            if let Some(first) = nodes.insert(&m.node, j) {
                c.push(
                    format!("{mpath}.node"),
                    format!(
                        "node \"{}\" is already a member ({base}.members[{first}])",
                        m.node
                    ),
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

/// Checks that `name` is an active node; returns true if it is.
fn check_node_ref(
    inv: &Inventory,
    c: &mut Collector,
    path: &str,
    name: &str,
    names: &[&str],
) -> bool {
    if name.is_empty() {
        return false;
    }
    match inv.nodes.iter().find(|n| n.name == name) {
        None => {
            let hint = match suggest(name, names) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => format!("known nodes: {}", names.join(", ")),
            };
            c.push(path, format!("node \"{name}\" does not exist; {hint}"));
            false
        }
        Some(n) if !n.active => {
            c.push(
                path,
                format!("node \"{name}\" is inactive (\"active\": false); activate it or remove this entry"),
            );
            false
        }
        Some(_) => true,
    }
}
