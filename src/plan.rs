//! The plan: a pure function of the inventory giving, per node, the resources it must hold,
//! the units that must run, and the actions a first deploy would take.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::inventory::{Connection, Inventory};
use crate::resources::binary::Artifact;
use crate::resources::{Action, Resource, UnitSpec, unit};
use crate::roles::wireguard::PublicKeys;
use crate::roles::{self, Ctx, Output};
use crate::templates::{TemplateError, Templates};

/// What every node must look like.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub hosts: Vec<HostPlan>,
}

/// What one node must look like.
#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    pub node: String,
    pub connection: Connection,
    pub resources: Vec<Resource>,
    pub units: Vec<UnitSpec>,
}

impl HostPlan {
    /// The actions a deploy onto an empty host runs, in order.
    pub fn first_deploy_actions(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.resources.iter().any(|r| r.kind.ops().systemd()) {
            out.push("systemctl daemon-reload".to_string());
        }
        for u in &self.units {
            match (u.enable, u.start) {
                (true, true) => out.push(format!("systemctl enable --now {}", u.name)),
                (true, false) => out.push(format!("systemctl enable {}", u.name)),
                (false, true) => out.push(format!("systemctl start {}", u.name)),
                (false, false) => {}
            }
        }
        out
    }

    /// The actions to run when exactly the resources in `changed` changed (deduplicated,
    /// daemon-reload first; a reload is dropped where the same unit restarts).
    pub fn actions_for<'a>(changed: impl IntoIterator<Item = &'a Resource>) -> Vec<Action> {
        let set: BTreeSet<Action> = changed
            .into_iter()
            .flat_map(|r| r.on_change.iter().cloned())
            .collect();
        set.iter()
            .filter(|a| match a {
                Action::Reload(u) => !set.contains(&Action::Restart(u.clone())),
                _ => true,
            })
            .cloned()
            .collect()
    }

    /// Keeps only the resources and units of route or service `name`.
    pub fn retain_service(&mut self, name: &str) {
        self.resources
            .retain(|r| r.service.as_deref() == Some(name));
        let paths: Vec<String> = self.resources.iter().map(|r| r.path.clone()).collect();
        self.units
            .retain(|u| paths.iter().any(|p| unit::serves(p, &u.name)));
    }
}

/// Builds the plan for every active node of `inv`.
pub fn build(
    inv: &Inventory,
    templates: &Templates,
    relay: &Artifact,
    keys: &PublicKeys,
) -> Result<Plan, TemplateError> {
    let mut hosts = Vec::new();
    for node in inv.nodes.iter().filter(|n| n.active) {
        let ctx = Ctx {
            inv,
            node,
            templates,
            relay,
            keys,
        };
        let mut out = Output::default();
        for role in roles::ALL {
            role(&ctx, &mut out)?;
        }
        hosts.push(HostPlan {
            node: node.name.clone(),
            connection: node.connection,
            resources: out.resources,
            units: out.units,
        });
    }
    Ok(Plan { hosts })
}
