//! The tailnet policy file: checked against the rules Tailscale applies (every tag used has
//! an owner, groups exist, ports are ports), and written as HuJSON, the format the admin
//! console and the API take.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{Acl, Tailnet};
use crate::inventory::{Collector, Inventory, is_tailscale_tag, parse_cidr};
use crate::inventory::{Email, decimal};

/// `autogroup:` names a policy may use as an owner, a source or a destination.
const AUTOGROUPS: &[&str] = &[
    "autogroup:admin",
    "autogroup:member",
    "autogroup:owner",
    "autogroup:it-admin",
    "autogroup:network-admin",
    "autogroup:billing-admin",
    "autogroup:auditor",
    "autogroup:tagged",
    "autogroup:shared",
];
/// Autogroups valid only as a destination.
const DST_AUTOGROUPS: &[&str] = &["autogroup:self", "autogroup:internet"];

fn is_email(s: &str) -> bool {
    Email::parse(s).is_ok()
}

fn is_group(s: &str) -> bool {
    s.strip_prefix("group:").is_some_and(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
    })
}

fn is_address(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok() || (s.contains('/') && parse_cidr(s).is_some())
}

/// A port entry: `*`, a port, or a range `A-B`.
fn is_port(s: &str) -> bool {
    let port = |p: &str| decimal::<u16>(p).filter(|n| *n >= 1);
    s == "*"
        || port(s).is_some()
        || s.split_once('-')
            .is_some_and(|(a, b)| port(a).zip(port(b)).is_some_and(|(a, b)| a < b))
}

/// Checks the tailnet section and the nodes' tags; every problem with its JSON path.
pub fn validate(inv: &Inventory, tailnet: Option<&Tailnet>, c: &mut Collector) {
    let owned: BTreeSet<&str> = tailnet
        .map(|t| t.tag_owners.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for (i, n) in inv.nodes.iter().enumerate() {
        for tag in &n.tailscale_tags {
            if !owned.contains(tag.as_str()) {
                c.push(
                    format!("$.nodes[{i}].tailscale_tags"),
                    format!(
                        "{tag} has no owner; add it to \"tailnet\".\"tag_owners\", e.g. \"{tag}\": [\"autogroup:admin\"]"
                    ),
                );
            }
        }
    }
    let Some(t) = tailnet else { return };
    for (group, members) in &t.groups {
        let path = format!("$.tailnet.groups[{group:?}]");
        if !is_group(group) {
            c.push(
                &path,
                format!("{group:?} is not a group name; expected e.g. \"group:ops\""),
            );
        }
        for m in members.iter().filter(|m| !is_email(m)) {
            c.push(
                &path,
                format!(
                    "{m:?} is not a member; expected an e-mail address like \"alice@example.com\""
                ),
            );
        }
    }
    for (tag, owners) in &t.tag_owners {
        let path = format!("$.tailnet.tag_owners[{tag:?}]");
        if !is_tailscale_tag(tag) {
            c.push(
                &path,
                format!("{tag:?} is not a tag; expected \"tag:\" and letters, digits or dashes, e.g. \"tag:farm\""),
            );
        }
        for o in owners {
            let ok = AUTOGROUPS.contains(&o.as_str())
                || is_email(o)
                || (is_group(o) && t.groups.contains_key(o))
                || (is_tailscale_tag(o) && owned.contains(o.as_str()));
            if !ok {
                c.push(
                    &path,
                    format!("owner {o:?}: {}", why_not(t, &owned, o, false)),
                );
            }
        }
    }
    for a in &t.acls {
        check_acl(t, &owned, a, c);
    }
}

fn check_acl(t: &Tailnet, owned: &BTreeSet<&str>, a: &Acl, c: &mut Collector) {
    for (i, s) in a.src.iter().enumerate() {
        if !selector_ok(t, owned, s, false) {
            c.push(
                format!("{}.src[{i}]", a.path),
                format!("{s:?}: {}", why_not(t, owned, s, false)),
            );
        }
    }
    for (i, d) in a.dst.iter().enumerate() {
        if !selector_ok(t, owned, d, true) {
            c.push(
                format!("{}.dst[{i}]", a.path),
                format!("{d:?}: {}", why_not(t, owned, d, true)),
            );
        }
    }
    for (i, p) in a.ports.iter().enumerate() {
        if !is_port(p) {
            c.push(
                format!("{}.ports[{i}]", a.path),
                format!(
                    "{p} is not a port; expected 1 to 65535, a range like \"8000-8100\", or \"*\""
                ),
            );
        }
    }
    if a.ports.len() > 1 && a.ports.iter().any(|p| p == "*") {
        c.push(
            format!("{}.ports", a.path),
            "\"*\" already means every port; list it alone",
        );
    }
}

/// Whether `s` may be a rule's source (or destination, with `dst`).
fn selector_ok(t: &Tailnet, owned: &BTreeSet<&str>, s: &str, dst: bool) -> bool {
    s == "*"
        || AUTOGROUPS.contains(&s)
        || (dst && DST_AUTOGROUPS.contains(&s))
        || is_email(s)
        || is_address(s)
        || (is_group(s) && t.groups.contains_key(s))
        || (is_tailscale_tag(s) && owned.contains(s))
}

/// What would make `s` valid.
fn why_not(t: &Tailnet, owned: &BTreeSet<&str>, s: &str, dst: bool) -> String {
    if is_tailscale_tag(s) && !owned.contains(s) {
        return format!(
            "the tag has no owner; add it to \"tailnet\".\"tag_owners\", e.g. \"{s}\": [\"autogroup:admin\"]"
        );
    }
    if is_group(s) && !t.groups.contains_key(s) {
        return format!(
            "no such group; define it in \"tailnet\".\"groups\", e.g. \"{s}\": [\"alice@example.com\"]"
        );
    }
    if s.starts_with("autogroup:") {
        let mut known: Vec<&str> = AUTOGROUPS.to_vec();
        if dst {
            known.extend(DST_AUTOGROUPS);
        }
        return format!(
            "unknown autogroup here; expected one of {}",
            known.join(", ")
        );
    }
    "expected a tag (\"tag:farm\"), a group (\"group:ops\"), an autogroup, an e-mail address, an IP address or network, or \"*\"".into()
}

/// The policy file, as HuJSON (JSON with comments and trailing commas).
pub fn hujson(inv: &Inventory, t: &Tailnet) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut out = String::new();
    out.push_str("// Managed by vds-proxy: generated from the inventory (\"tailnet\" and the nodes' tailscale_tags).\n");
    out.push_str("// Edits made in the admin console are replaced by the next deploy.\n{\n");
    if !t.groups.is_empty() {
        out.push_str("  \"groups\": {\n");
        for (g, members) in &t.groups {
            let _ = writeln!(out, "    {}: {},", q(g), list(members));
        }
        out.push_str("  },\n");
    }
    out.push_str("  \"tagOwners\": {\n");
    for (tag, owners) in &t.tag_owners {
        let users: Vec<&str> = inv
            .nodes
            .iter()
            .filter(|n| n.tailscale_tags.contains(tag))
            .map(|n| n.name.as_str())
            .collect();
        if !users.is_empty() {
            let _ = writeln!(out, "    // nodes: {}", users.join(", "));
        }
        let _ = writeln!(out, "    {}: {},", q(tag), list(owners));
    }
    out.push_str("  },\n  \"acls\": [\n");
    for a in &t.acls {
        if let Some(why) = &a.why {
            let _ = writeln!(out, "    // {why}");
        }
        let ports = a.ports.join(",");
        let dst: Vec<String> = a
            .dst
            .iter()
            .map(|d| match d.contains(':') && is_address(d) {
                true => format!("[{d}]:{ports}"),
                false => format!("{d}:{ports}"),
            })
            .collect();
        let _ = writeln!(
            out,
            "    {{\"action\": \"accept\", \"src\": {}, \"dst\": {}}},",
            list(&a.src),
            list(&dst)
        );
    }
    out.push_str("  ],\n}\n");
    out
}
