//! The prepare step, before planning: every role that needs values from the nodes (keys
//! made on the node, say) gives a script; each node runs the scripts of all roles in one
//! round trip, and each role reads back what it needs. The connections stay open for the
//! deploy that follows.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::fanout::join_all;
use crate::inventory::{Inventory, Sections};
use crate::roles::{self, PrepareMode, Prepared};
use crate::transport::{self, ConnectOptions};

/// Runs the prepare scripts on every node that has one, each in the mode `mode_of` gives
/// it. Fails, before any host changed, on a problem with a node that is not only read;
/// reading is best effort.
pub async fn run(
    inv: &Inventory,
    opts: &ConnectOptions,
    mode_of: impl Fn(&str) -> PrepareMode,
) -> Result<Sections> {
    let scripts: Vec<(&str, PrepareMode, String)> = inv
        .nodes
        .iter()
        .filter(|n| n.active)
        .filter_map(|n| {
            let mode = mode_of(&n.name);
            let script: String = roles::ALL
                .iter()
                .filter_map(|r| r.prepare_script(inv, &n.name, mode))
                .collect();
            (!script.is_empty()).then_some((n.name.as_str(), mode, script))
        })
        .collect();
    let mut prepared = Sections::default();
    if scripts.is_empty() {
        return Ok(prepared);
    }
    let jobs = scripts.iter().map(|(node, mode, script)| async move {
        let run = async {
            let n = inv.node(node).expect("active nodes are in the inventory");
            let t = transport::connect(n, opts).await?;
            let out = t.run(script).await?;
            opts.pool.put(node, t);
            anyhow::Ok(out.stdout)
        };
        (*node, *mode, run.await)
    });
    let mut problems = Vec::new();
    let mut stdout = BTreeMap::new();
    for (node, mode, res) in join_all(jobs).await {
        match res {
            Ok(out) => {
                stdout.insert(node.to_string(), (mode, out));
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
        for role in roles::ALL {
            problems.extend(role.prepare_read(inv, &outputs, &mut prepared));
        }
    }
    if !problems.is_empty() {
        bail!(
            "reading what the nodes hold before planning failed; no host was changed:\n{}",
            problems.join("\n")
        );
    }
    Ok(prepared)
}
