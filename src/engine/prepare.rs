//! The prepare step, before planning: every system that needs values from the nodes (keys
//! made on the node, say) gives a script; each node runs the scripts of all of them in one
//! round trip, and each reads back what it needs. The connections stay open for the
//! deploy that follows.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::fanout::join_all;
use crate::contract::{PrepareMode, Prepared, Systems};
use crate::inventory::{Inventory, Sections};
use crate::transport::{self, ConnectOptions};

/// What the prepare step read: the systems' sections, and the architecture (`uname -m`)
/// of each node that asked for it.
#[derive(Default)]
pub struct Read {
    pub sections: Sections,
    pub arch: BTreeMap<String, String>,
}

/// The line a node's architecture comes back on, first in its output.
const ARCH_LINE: &str = "echo \"@arch $(uname -m)\"\n";

/// Runs the prepare scripts on every node that has one, each in the mode `mode_of` gives
/// it, and reads the architecture of the nodes `needs_arch` names. Fails, before any host
/// changed, on a problem with a node that is not only read; reading is best effort.
pub async fn run(
    inv: &Inventory,
    opts: &ConnectOptions,
    mode_of: impl Fn(&str) -> PrepareMode,
    needs_arch: impl Fn(&str) -> bool,
    systems: &Systems,
) -> Result<Read> {
    // Per node: its mode, its script, and whether the systems asked for anything (a node
    // contacted only for its architecture is only read: if it cannot be reached, that host
    // fails on its own in the deploy and the others go on).
    let scripts: Vec<(&str, PrepareMode, String, bool)> = inv
        .nodes
        .iter()
        .filter(|n| n.active)
        .filter_map(|n| {
            let mode = mode_of(&n.name);
            let asked_for: String = systems
                .prepare
                .iter()
                .filter_map(|s| s.prepare_script(inv, &n.name, mode))
                .collect();
            let asked = !asked_for.is_empty();
            let mode = if asked { mode } else { PrepareMode::Read };
            let arch = if needs_arch(&n.name) { ARCH_LINE } else { "" };
            let script = format!("{arch}{asked_for}");
            (!script.is_empty()).then_some((n.name.as_str(), mode, script, asked))
        })
        .collect();
    let mut read = Read::default();
    if scripts.is_empty() {
        return Ok(read);
    }
    let jobs = scripts
        .iter()
        .map(|(node, mode, script, asked)| async move {
            let run = async {
                let n = inv.node(node).expect("active nodes are in the inventory");
                let t = transport::connect(n, opts).await?;
                let out = t.run(script).await?;
                opts.pool.put(node, t);
                anyhow::Ok(out.stdout)
            };
            (*node, *mode, *asked, run.await)
        });
    let mut problems = Vec::new();
    let mut stdout = BTreeMap::new();
    for (node, mode, asked, res) in join_all(jobs).await {
        match res {
            Ok(out) => {
                let out = match out.strip_prefix("@arch ").and_then(|o| o.split_once('\n')) {
                    Some((arch, rest)) => {
                        read.arch.insert(node.to_string(), arch.trim().to_string());
                        rest.to_string()
                    }
                    None => out,
                };
                if asked {
                    stdout.insert(node.to_string(), (mode, out));
                }
            }
            Err(e) if mode != PrepareMode::Read => problems.push(format!("{e:#}")),
            Err(_) => {}
        }
    }
    let outputs: BTreeMap<String, Prepared> = stdout
        .iter()
        .map(|(node, (mode, out))| {
            let p = Prepared {
                mode: *mode,
                stdout: out,
            };
            (node.clone(), p)
        })
        .collect();
    if problems.is_empty() {
        for s in &systems.prepare {
            problems.extend(s.prepare_read(inv, &outputs, &mut read.sections));
        }
    }
    if !problems.is_empty() {
        bail!(
            "reading what the nodes hold before planning failed; no host was changed:\n{}",
            problems.join("\n")
        );
    }
    Ok(read)
}
