//! WireGuard keys: each node's private key is generated on that node and stays there;
//! this step (one round trip per member node, before planning) reads back only the
//! public keys the peers' configs need.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use anyhow::{Result, bail};

use crate::inventory::Inventory;
use crate::resources::wireguard;
use crate::roles::wireguard::PublicKeys;
use crate::shell::quote;
use crate::transport::{self, ConnectOptions};

/// A WireGuard public key: 32 bytes in base64 (44 characters ending in `=`).
fn is_public_key(k: &str) -> bool {
    use base64::Engine as _;
    k.len() == 44
        && base64::engine::general_purpose::STANDARD
            .decode(k)
            .is_ok_and(|b| b.len() == 32)
}

/// What the key step may do on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Only read keys that exist (`show --diff`, `deploy --dry-run`, `status`).
    Read,
    /// Generate a key where there is none.
    Create,
    /// Replace every key with a new one (`deploy --rotate-keys`).
    Rotate,
}

/// The script for one node: ensure (or rotate) the key of each interface, print its public key.
fn script(interfaces: &BTreeSet<&str>, mode: KeyMode) -> String {
    let mut s = String::from(
        "export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         command -v wg >/dev/null 2>&1 || { echo '@nowg'; exit 0; }\n\
         umask 077\n",
    );
    for iface in interfaces {
        let k = quote(&wireguard::key_file(iface));
        let generate = format!(
            "mkdir -p {dir} && wg genkey > {k}.tmp && mv -f {k}.tmp {k} || {{ echo '@keyfail {iface}'; }}",
            dir = quote(wireguard::DIR)
        );
        let _ = match mode {
            KeyMode::Read => writeln!(s, "true"),
            KeyMode::Create => writeln!(s, "[ -s {k} ] || {{ {generate}; }}"),
            KeyMode::Rotate => writeln!(s, "{generate}"),
        };
        let _ = writeln!(
            s,
            "if [ -s {k} ]; then echo \"@pub {iface} $(wg pubkey < {k})\"; else echo '@nokey {iface}'; fi"
        );
    }
    s
}

/// Reads the public keys of every WireGuard member node, all at once, creating or rotating
/// them where `mode_of(node)` says so. Fails, before any host is changed, if a node that
/// is not only read cannot be reached or has no `wg`; reading is best effort (status
/// reports an unreachable node itself, a dry run shows a placeholder).
pub async fn gather(
    inv: &Inventory,
    opts: &ConnectOptions,
    mode_of: impl Fn(&str) -> KeyMode,
) -> Result<PublicKeys> {
    let mut per_node: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for w in &inv.wireguard {
        for m in &w.members {
            per_node.entry(&m.node).or_default().insert(&w.interface);
        }
    }
    let jobs = per_node.iter().map(|(node, ifaces)| {
        let mode = mode_of(node);
        async move {
            let run = async {
                let n = inv.node(node).expect("members are validated nodes");
                let t = transport::connect(n, opts).await?;
                let out = t.run(&script(ifaces, mode)).await?;
                opts.pool.put(node, t);
                anyhow::Ok(out)
            };
            (node.to_string(), mode, run.await)
        }
    });
    let mut keys = PublicKeys::default();
    let mut problems = Vec::new();
    for (node, mode, res) in super::futures_join(jobs).await {
        let mut problem = |p: String| {
            if mode != KeyMode::Read {
                problems.push(p);
            }
        };
        let out = match res {
            Ok(out) => out,
            Err(e) => {
                problem(format!("{e:#}"));
                continue;
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
                    wireguard::key_file(iface)
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
    if !problems.is_empty() {
        bail!(
            "reading WireGuard keys failed; no host was changed:\n{}",
            problems.join("\n")
        );
    }
    Ok(keys)
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
