//! The prepare step of WireGuard: each node's private key is generated on that node and
//! stays there; only the public keys the peers' configs need come back (one round trip
//! per member node, shared with every other role's prepare step).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;

use super::model::WgNetwork;
use super::wg_quick as kind;
use crate::contract::{PrepareMode, Prepared};
use crate::shell::quote;

/// Public keys read from the nodes: (node, interface) → key. Private keys never leave them.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys(pub BTreeMap<(String, String), String>);

impl PublicKeys {
    /// The key of `node`'s `iface`, or a placeholder naming where it will come from (shown
    /// by `show`, which does not contact the nodes).
    pub fn get_or_placeholder(&self, node: &str, iface: &str) -> String {
        self.0
            .get(&(node.to_string(), iface.to_string()))
            .cloned()
            .unwrap_or_else(|| format!("<public key of {node}/{iface}, read at deploy>"))
    }
}

/// A WireGuard public key: 32 bytes in base64 (44 characters ending in `=`).
fn is_public_key(k: &str) -> bool {
    k.len() == 44
        && base64::engine::general_purpose::STANDARD
            .decode(k)
            .is_ok_and(|b| b.len() == 32)
}

fn interfaces_of<'a>(networks: &'a [WgNetwork], node: &str) -> BTreeSet<&'a str> {
    networks
        .iter()
        .filter(|w| w.member(node).is_some())
        .map(|w| w.interface.as_str())
        .collect()
}

/// The script for `node`: `wg_keys` (keys.sh) with the node's interfaces.
pub fn script(networks: &[WgNetwork], node: &str, mode: PrepareMode) -> Option<String> {
    let ifaces = interfaces_of(networks, node);
    if ifaces.is_empty() {
        return None;
    }
    let mode = match mode {
        PrepareMode::Read => "read",
        PrepareMode::Create => "create",
        PrepareMode::Rotate => "rotate",
    };
    let args: Vec<String> = ifaces.iter().map(|i| quote(i)).collect();
    Some(format!(
        "{}wg_keys {mode} {} {}\n",
        include_str!("keys.sh"),
        quote(kind::DIR),
        args.join(" ")
    ))
}

/// Reads the public keys every node printed. A node that is not only read must have
/// answered with a key for each of its interfaces; reading is best effort (status reports
/// an unreachable node itself, a dry run shows a placeholder).
pub fn read(
    networks: &[WgNetwork],
    outputs: &BTreeMap<String, Prepared>,
) -> (PublicKeys, Vec<String>) {
    let mut keys = PublicKeys::default();
    let mut problems = Vec::new();
    for (node, out) in outputs {
        let mut problem = |p: String| {
            if out.mode != PrepareMode::Read {
                problems.push(p);
            }
        };
        for line in out.stdout.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("@pub"), Some(iface), Some(key)) if is_public_key(key) => {
                    keys.0
                        .insert((node.clone(), iface.to_string()), key.to_string());
                }
                (Some("@pub"), Some(iface), _) => problem(format!(
                    "{node}: {iface}'s public key is not a WireGuard key; check {}",
                    kind::key_file(iface)
                )),
                (Some("@nowg"), _, _) => problem(format!(
                    "{node}: the wg command is missing; install wireguard-tools (and wireguard-go for userspace tunnels)"
                )),
                (Some("@keyfail"), Some(iface), _) => {
                    problem(format!("{node}: could not generate a key for {iface}"))
                }
                _ => {}
            }
        }
    }
    // A deploy writes peers' configs: every member's key must be known.
    let deploying = outputs.values().any(|o| o.mode != PrepareMode::Read);
    let mut missing = Vec::new();
    for w in networks.iter().filter(|_| deploying) {
        for m in &w.members {
            if !keys.0.contains_key(&(m.node.clone(), w.interface.clone())) {
                missing.push(format!("{}/{}", m.node, w.interface));
            }
        }
    }
    if !missing.is_empty() && problems.is_empty() {
        problems.push(format!(
            "no WireGuard key yet on {}; deploy those nodes first (or deploy without --node)",
            missing.join(", ")
        ));
    }
    (keys, problems)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_32_byte_base64_keys_are_public_keys() {
        assert!(super::is_public_key(
            "KpsRVjodxC8f/l3/1WrwZ7PHqoFcl5JKDtWEkwhuon8="
        ));
        assert!(!super::is_public_key("(none)"));
        assert!(!super::is_public_key(
            "KpsRVjodxC8f/l3/1WrwZ7PHqoFcl5JKDtWEkwhuon8"
        ));
    }
}
