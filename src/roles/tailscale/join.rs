//! Nodes with `tailscale_tags` join the tailnet: the prepare step reads whether tailscaled
//! is logged in (`join.sh`); for a node that is not, a deploy makes a single-use,
//! pre-authorized auth key with the node's tags through the API, and the plan installs it
//! as a secret file whose activation runs `tailscale up --auth-key=file:…
//! --advertise-tags=…`. Once the node is in, the next deploy prunes the spent key.

use std::collections::BTreeMap;

use super::api::Api;
use super::of;
use crate::contract::{PrepareMode, Prepared};
use crate::inventory::Inventory;
use crate::resources::{Action, Kind, Resource};
use crate::shell::quote;

/// Where a node's auth key is put for `tailscale up` (0600, pruned once it has joined).
pub const AUTH_KEY: &str = "/etc/vds-proxy/tailscale-authkey";

/// What the prepare step found: node → its tailscaled state, and the keys made for the
/// nodes that must join.
#[derive(Debug, Default)]
pub struct Joins {
    pub state: BTreeMap<String, String>,
    /// node → auth key (a dry run records a placeholder).
    pub keys: BTreeMap<String, String>,
}

/// The prepare script of `node`, when it has tags.
pub fn script(inv: &Inventory, node: &str) -> Option<String> {
    let n = inv.node(node)?;
    (!n.tailscale_tags.is_empty()).then(|| format!("{}ts_state\n", include_str!("join.sh")))
}

/// The state line a node printed.
pub fn state_of(stdout: &str) -> Option<&str> {
    stdout.lines().find_map(|l| l.strip_prefix("@ts "))
}

/// Reads the states; for each node that must join, makes its key (or, reading only, a
/// placeholder). Problems stop a deploy before any host changes.
pub fn read(inv: &Inventory, outputs: &BTreeMap<String, Prepared>) -> (Joins, Vec<String>) {
    let mut joins = Joins::default();
    let mut problems = Vec::new();
    let tailnet = of(inv).map_or("-", |t| t.name.as_str());
    let mut api: Option<Result<Option<Api>, String>> = None;
    for (node, out) in outputs {
        let Some(n) = inv.node(node).filter(|n| !n.tailscale_tags.is_empty()) else {
            continue;
        };
        let Some(state) = state_of(out.stdout) else {
            continue;
        };
        joins.state.insert(node.clone(), state.to_string());
        let deploying = out.mode != PrepareMode::Read;
        match state {
            "Running" => {}
            "absent" if deploying => problems.push(format!(
                "{node}: tailscale is not installed, but the node has tailscale_tags; install it (https://tailscale.com/download) and deploy again"
            )),
            "absent" => {}
            _ if !deploying => {
                joins
                    .keys
                    .insert(node.clone(), "<auth key, made at deploy>".into());
            }
            _ => {
                let client = api.get_or_insert_with(|| Api::from_env(tailnet).map_err(|e| format!("{e:#}")));
                match client {
                    Ok(Some(client)) => match client.auth_key(&n.tailscale_tags, node) {
                        Ok(key) => {
                            joins.keys.insert(node.clone(), key);
                        }
                        Err(e) => problems.push(format!("{node}: cannot make its Tailscale auth key: {e:#}")),
                    },
                    Ok(None) => problems.push(format!(
                        "{node} is not in the tailnet (tailscaled: {state}); set TS_API_KEY so deploy can make it a \
                        pre-authorized key, or run `tailscale up --advertise-tags={}` on it",
                        n.tailscale_tags.join(",")
                    )),
                    Err(e) => problems.push(e.clone()),
                }
            }
        }
    }
    (joins, problems)
}

/// The key file and the `tailscale up` it triggers, for a node that must join.
pub fn resource(tags: &[String], key: &str) -> Resource {
    Resource::text(Kind::FILE, AUTH_KEY, format!("{key}\n"), 0o600)
        .secret()
        .on_change(Action::Run {
            name: "tailscale up".into(),
            command: format!(
                "tailscale up --auth-key=file:{} --advertise-tags={}",
                AUTH_KEY,
                quote(&tags.join(","))
            ),
        })
}
