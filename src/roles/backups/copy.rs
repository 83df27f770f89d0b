//! Copies of the dumps on another node. The node that dumps gets a key pair of its own
//! (generated there in the prepare step; the private key never leaves it) and the target's
//! host key in a known_hosts file; the target gets a system user `vds-backup` whose
//! `authorized_keys` holds that public key with `restrict` and a forced command — the
//! backup tool's `receive` into the copy directory — so the key can store dumps there and
//! do nothing else. No sshd setting and no other user's keys are touched.

use std::collections::{BTreeMap, BTreeSet};

use super::{Backup, CopyTo, TOOL, of};
use crate::contract::{PrepareMode, Prepared};
use crate::inventory::{Collector, Inventory, Node};
use crate::resources::{Action, Kind, Resource};
use crate::shell::quote;

/// Where the copy key pair and its known_hosts live on the node that dumps.
pub const DIR: &str = "/etc/vds-proxy/backup-copy";
/// The user the copies arrive as on the node that keeps them.
pub const USER: &str = "vds-backup";
/// Its home: only `.ssh/authorized_keys` (root's, 0644) is there.
pub const HOME: &str = "/var/lib/vds-backup";

/// The default directory for copies from `source`.
pub fn directory_for(source: &str) -> String {
    format!("/var/backups/vds-proxy/copies/{source}")
}

/// What the prepare step read: each dumping node's copy public key and each target's SSH
/// host key (`type base64`).
#[derive(Debug, Clone, Default)]
pub struct CopyKeys {
    pub client: BTreeMap<String, String>,
    pub host: BTreeMap<String, String>,
}

/// The target must be another node of the inventory with an address the source can reach;
/// all copies from one node to another go to one directory.
pub fn validate(inv: &Inventory, c: &mut Collector, b: &Backup, to: &CopyTo) {
    let at = format!("{}.node", to.path);
    if !inv.check_node_ref(c, &at, &to.node) {
        return;
    }
    if to.node == b.node {
        c.push(
            at,
            "a copy on the node that made the dump is no off-host copy; name another node",
        );
        return;
    }
    if inv.node(&to.node).and_then(|n| n.mesh_address()).is_none() {
        c.push(
            at,
            format!(
                "node {} has no address {} can reach it at; give it a tailscale_ip or public_ip",
                to.node, b.node
            ),
        );
    }
    let first = of(inv).iter().find_map(|o| {
        o.copy_to
            .as_ref()
            .filter(|t| o.node == b.node && t.node == to.node)
    });
    if let Some(first) = first
        && first.directory != to.directory
    {
        c.push(
            format!("{}.directory", to.path),
            format!(
                "copies from {} to {} already go to {} ({}); one directory per pair of nodes",
                b.node, to.node, first.directory, first.path
            ),
        );
    }
}

fn sends(inv: &Inventory, node: &str) -> bool {
    of(inv)
        .iter()
        .any(|b| b.node == node && b.copy_to.is_some())
}

/// The nodes that send copies to `node`, each with the directory they go to.
pub fn sources_of<'a>(inv: &'a Inventory, node: &str) -> BTreeMap<&'a str, &'a str> {
    of(inv)
        .iter()
        .filter_map(|b| {
            let t = b.copy_to.as_ref()?;
            (t.node == node).then_some((b.node.as_str(), t.directory.as_str()))
        })
        .collect()
}

/// The prepare lines for `node`: a sender makes (or reads) its key pair, a target prints
/// its ed25519 host key.
pub fn script(inv: &Inventory, node: &str, mode: PrepareMode) -> Option<String> {
    let mut s = String::new();
    if sends(inv, node) {
        let (dir, key) = (quote(DIR), quote(&format!("{DIR}/id_ed25519")));
        let comment = quote(&format!("vds-proxy backup copies from {node}"));
        s += &match mode {
            PrepareMode::Read => {
                format!("if [ -r {key}.pub ]; then echo \"@copykey $(cat {key}.pub)\"; fi\n")
            }
            PrepareMode::Create | PrepareMode::Rotate => {
                let fresh = if mode == PrepareMode::Rotate {
                    format!("rm -f {key} {key}.pub; ")
                } else {
                    String::new()
                };
                format!(
                    "{fresh}if mkdir -p -m 0700 {dir} && {{ [ -r {key} ] || ssh-keygen -q -t ed25519 -N '' -C {comment} -f {key}; }}; \
                     then echo \"@copykey $(cat {key}.pub)\"; else echo @copykeyfail; fi\n"
                )
            }
        };
    }
    if !sources_of(inv, node).is_empty() {
        s += "echo \"@hostkey $(cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null)\"\n";
    }
    (!s.is_empty()).then_some(s)
}

/// `ssh-ed25519 BASE64` from a line's words, if that is what they hold.
fn ed25519(words: &[&str]) -> Option<String> {
    match words {
        ["ssh-ed25519", key, ..]
            if key.len() >= 68
                && key
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)) =>
        {
            Some(format!("ssh-ed25519 {key}"))
        }
        _ => None,
    }
}

/// Reads the keys every node printed; a deploy needs every sender's key and every
/// target's host key.
pub fn read(inv: &Inventory, outputs: &BTreeMap<String, Prepared>) -> (CopyKeys, Vec<String>) {
    let mut keys = CopyKeys::default();
    let mut problems = Vec::new();
    for (node, out) in outputs {
        for line in out.stdout.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.split_first() {
                Some((&"@copykey", rest)) => {
                    if let Some(k) = ed25519(rest) {
                        keys.client.insert(node.clone(), k);
                    }
                }
                Some((&"@hostkey", rest)) => {
                    if let Some(k) = ed25519(rest) {
                        keys.host.insert(node.clone(), k);
                    } else if out.mode != PrepareMode::Read {
                        problems.push(format!(
                            "{node}: no ed25519 SSH host key (/etc/ssh/ssh_host_ed25519_key.pub) for the backup copies to check; create one (ssh-keygen -A)"
                        ));
                    }
                }
                Some((&"@copykeyfail", _)) if out.mode != PrepareMode::Read => problems.push(
                    format!("{node}: could not make the backup copy key in {DIR}"),
                ),
                _ => {}
            }
        }
    }
    let deploying = outputs.values().any(|o| o.mode != PrepareMode::Read);
    if deploying && problems.is_empty() {
        let mut missing = BTreeSet::new();
        for b in of(inv) {
            if let Some(t) = &b.copy_to {
                if !keys.client.contains_key(&b.node) {
                    missing.insert(format!("the copy key of {}", b.node));
                }
                if !keys.host.contains_key(&t.node) {
                    missing.insert(format!("the host key of {}", t.node));
                }
            }
        }
        if !missing.is_empty() {
            problems.push(format!(
                "backup copies need {}, read when those nodes are deployed; deploy them too (or deploy without --node)",
                missing.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    (keys, problems)
}

/// What `remove --purge-data` deletes on a node that keeps copies: the copies of the
/// inventory's databases, and the copy user once no key may log in as it.
pub fn purge_script(inv: &Inventory, node: &str) -> Vec<String> {
    let mut out: Vec<String> = of(inv)
        .iter()
        .filter(|b| b.copy_to.as_ref().is_some_and(|t| t.node == node))
        .map(|b| {
            let dir = quote(&b.copy_to.as_ref().expect("filtered").directory);
            format!(
                "{}; rmdir {dir} 2>/dev/null; true\n",
                super::delete_dumps(&dir, &b.database)
            )
        })
        .collect();
    if !out.is_empty() {
        out.push(format!(
            "if [ ! -e {HOME}/.ssh/authorized_keys ] && id -u {USER} >/dev/null 2>&1 && userdel {USER}; then echo '@purged user {USER}'; fi\n"
        ));
    }
    out
}

/// Where a node that dumps reaches a node that keeps copies (`validate` made sure it has
/// one).
fn address(target: &Node) -> String {
    target
        .mesh_address()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// The environment the backup service of `b` runs with to send its copies.
pub fn unit_env(inv: &Inventory, b: &Backup) -> Vec<(String, String)> {
    let Some(t) = &b.copy_to else {
        return Vec::new();
    };
    let Some(target) = inv.node(&t.node) else {
        return Vec::new();
    };
    vec![
        ("COPY_TO".into(), format!("{USER}@{}", address(target))),
        ("COPY_PORT".into(), target.ssh_port.to_string()),
        ("COPY_KEEP".into(), t.keep.to_string()),
        ("COPY_DIR".into(), DIR.into()),
    ]
}

/// What the copies need on `node`: the known_hosts of a sender, the user and authorized
/// keys of a target.
pub fn resources(inv: &Inventory, node: &str, keys: Option<&CopyKeys>) -> Vec<Resource> {
    let mut out = Vec::new();
    if sends(inv, node) {
        let targets: BTreeSet<&str> = of(inv)
            .iter()
            .filter(|b| b.node == node)
            .filter_map(|b| b.copy_to.as_ref().map(|t| t.node.as_str()))
            .collect();
        let mut text = String::from("# Managed by vds-proxy: the nodes that keep backup copies.\n");
        for t in targets {
            let Some(n) = inv.node(t) else { continue };
            let host = if n.ssh_port == 22 {
                address(n)
            } else {
                format!("[{}]:{}", address(n), n.ssh_port)
            };
            match keys.and_then(|k| k.host.get(t)) {
                Some(k) => text += &format!("{host} {k}\n"),
                None => text += &format!("# {host}: <host key of {t}, read at deploy>\n"),
            }
        }
        out.push(Resource::text(
            super::ssh_client::SSH_CLIENT,
            format!("{DIR}/known_hosts"),
            text,
            0o644,
        ));
    }
    let sources = sources_of(inv, node);
    if !sources.is_empty() {
        let mut text = String::from(
            "# Managed by vds-proxy: keys that may only store backup copies (backup receive).\n",
        );
        for (source, dir) in &sources {
            match keys.and_then(|k| k.client.get(*source)) {
                Some(k) => {
                    text += &format!(
                        "restrict,command=\"/bin/sh {TOOL} receive {dir}\" {k} vds-proxy backup copies from {source}\n"
                    )
                }
                None => text += &format!("# <copy key of {source}, read at deploy>\n"),
            }
        }
        let dirs: BTreeSet<&str> = sources.values().copied().collect();
        let make: Vec<String> = dirs
            .iter()
            // Made only when missing: an existing directory keeps its owner and mode.
            .map(|d| format!("[ -d {0} ] || install -d -o {USER} -m 0700 {0}", quote(d)))
            .collect();
        let exists = format!("id -u {USER} >/dev/null 2>&1");
        let dirs_ok: Vec<String> = dirs
            .iter()
            .map(|d| format!("[ -d {} ]", quote(d)))
            .collect();
        out.push(
            Resource::text(
                Kind::FILE,
                format!("{HOME}/.ssh/authorized_keys"),
                text,
                0o644,
            )
            .on_change(Action::Run {
                name: format!("create user {USER} and the copy directories"),
                command: format!(
                    "{{ {exists} || useradd --system --home-dir {HOME} --no-create-home --shell /bin/sh {USER}; }} && {}",
                    make.join(" && ")
                ),
            })
            .live_check(format!("{exists} && {}", dirs_ok.join(" && "))),
        );
    }
    out
}
