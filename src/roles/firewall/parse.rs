//! Reading and checking `firewalls`: every value that reaches the nftables rules is checked
//! here (ports, protocols, CIDRs, interface names), so an entry cannot inject rules.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Allow, Firewall, REVERT_AFTER_DEFAULT};
use crate::inventory::decimal;
use crate::inventory::{Collector, Fields, Inventory, kind, parse_cidr};

const FIREWALL_KEYS: &[&str] = &["node", "allow", "trusted_interfaces", "revert_after"];
const ALLOW_KEYS: &[&str] = &["port", "protocol", "from"];

/// An interface name the kernel accepts (at most 15 bytes) that is safe in a rule.
fn is_interface(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// Reads one entry of `firewalls`.
pub fn firewall(c: &mut Collector, path: &str, v: &Value) -> Option<Firewall> {
    let f = Fields::new(c, path, v, FIREWALL_KEYS)?;
    let node = f.req_ref(c, "node").unwrap_or_default();
    let allow = f.objects(c, "allow", allow);
    let trusted_interfaces = f.list(
        c,
        "trusted_interfaces",
        "interface names",
        "expected an interface name like \"tailscale0\" or \"wg0\" (letters, digits, _ . -, at most 15)",
        |s| is_interface(s).then(|| s.to_string()),
    );
    let revert_after = f
        .opt_uint(c, "revert_after", 10, 3600)
        .map_or(REVERT_AFTER_DEFAULT, |n| n as u32);
    Some(Firewall {
        path: path.to_string(),
        node,
        allow,
        trusted_interfaces,
        revert_after,
    })
}

/// Reads one entry of `allow`.
fn allow(c: &mut Collector, path: &str, v: &Value) -> Option<Allow> {
    let f = Fields::new(c, path, v, ALLOW_KEYS)?;
    let ports = match f.get("port") {
        None => {
            c.push(
                f.path_of("port"),
                "required port is missing; expected a port like 5432 or a range like \"60000-60100\"",
            );
            None
        }
        Some(v) => port_range(c, &f.path_of("port"), v),
    };
    let udp = f.choice(c, "protocol", &[("tcp", false), ("udp", true)], false);
    let from = f.list(
        c,
        "from",
        "networks",
        "expected an address or network like \"203.0.113.7\" or \"10.0.0.0/8\"",
        |s| {
            if s.contains('/') {
                parse_cidr(s).map(|(ip, p)| format!("{ip}/{p}"))
            } else {
                s.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
            }
        },
    );
    if matches!(f.get("from"), Some(Value::Array(a)) if a.is_empty()) {
        c.push(
            f.path_of("from"),
            "an empty list would allow nobody; leave \"from\" out to allow everyone",
        );
    }
    Some(Allow {
        path: path.to_string(),
        udp,
        ports: ports?,
        from,
    })
}

/// A port (a number) or a range ("A-B", A < B).
fn port_range(c: &mut Collector, path: &str, v: &Value) -> Option<(u16, u16)> {
    let parsed = match v {
        Value::Number(n) => n
            .as_u64()
            .filter(|n| (1..=65535).contains(n))
            .map(|n| (n as u16, n as u16)),
        Value::String(s) => s.split_once('-').and_then(|(a, b)| {
            let (a, b) = (decimal::<u16>(a)?, decimal::<u16>(b)?);
            (a >= 1 && a < b).then_some((a, b))
        }),
        _ => None,
    };
    if parsed.is_none() {
        let shown = match v {
            Value::String(_) | Value::Number(_) => v.to_string(),
            other => kind(other).to_string(),
        };
        c.push(
            path,
            format!("{shown} is not a port; expected a whole number from 1 to 65535 or a range like \"60000-60100\""),
        );
    }
    parsed
}

/// Checks across the inventory: nodes exist, one firewall per node.
pub fn validate(inv: &Inventory, firewalls: &[Firewall], c: &mut Collector) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for fw in firewalls {
        if !inv.check_node_ref(c, &format!("{}.node", fw.path), &fw.node) {
            continue;
        }
        if let Some(first) = seen.insert(&fw.node, &fw.path) {
            c.push(
                format!("{}.node", fw.path),
                format!(
                    "node \"{}\" already has a firewall at {first}; put all its rules in one entry",
                    fw.node
                ),
            );
        }
    }
}
