//! The plan: a pure function of the inventory giving, per node, the resources it must hold,
//! the units that must run, and the actions a first deploy would take.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::contract::{Ctx, Output, Systems};
use crate::inventory::{Connection, Inventory, Sections};
use crate::resources::binary::{self, Artifact};
use crate::resources::{Kind, Resource, UnitSpec, unit};
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
    /// The resource kinds a manifest on this node may name (see [`Kind::find`]).
    #[serde(skip)]
    pub kinds: Vec<Kind>,
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

    /// Keeps only the resources and units of route or service `name`.
    pub fn retain_service(&mut self, name: &str) {
        self.resources
            .retain(|r| r.service.as_deref() == Some(name));
        let paths: Vec<String> = self.resources.iter().map(|r| r.path.clone()).collect();
        self.units
            .retain(|u| paths.iter().any(|p| unit::serves(p, &u.name)));
    }
}

/// Why a plan could not be built: a template failed, or two roles want the same file or
/// unit on a node (an inventory whose names collide).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(
        "node {node}: {what} is wanted by both {first} and {second}; rename one of them in the inventory"
    )]
    Clash {
        node: String,
        what: String,
        first: &'static str,
        second: &'static str,
    },
}

/// Builds the plan for every active node of `inv`; `prepared` holds what the prepare step
/// read from the nodes (empty for an offline plan).
pub fn build(
    inv: &Inventory,
    templates: &Templates,
    bundle: &Artifact,
    prepared: &Sections,
    systems: &Systems,
) -> Result<Plan, PlanError> {
    let mut hosts = Vec::new();
    for node in inv.nodes.iter().filter(|n| n.active) {
        let ctx = Ctx {
            inv,
            node,
            templates,
            bundle,
            prepared,
        };
        let mut out = Output::default();
        let mut owners = Owners::default();
        for system in &systems.all {
            let (r0, u0) = (out.resources.len(), out.units.len());
            system.plan(&ctx, &mut out)?;
            owners.claim(&node.name, system.name(), &out, r0, u0)?;
        }
        if !out.bundle_users.is_empty() {
            let mut bin = binary::binary(binary::BUNDLE_NAME, bundle);
            bin.on_change = std::mem::take(&mut out.bundle_users);
            out.resources.insert(0, bin);
        }
        hosts.push(HostPlan {
            node: node.name.clone(),
            connection: node.connection,
            resources: out.resources,
            units: out.units,
            kinds: systems.kinds.clone(),
        });
    }
    Ok(Plan { hosts })
}

/// Which role planned each file and unit of one node, so no two claim the same.
#[derive(Default)]
struct Owners {
    files: BTreeMap<String, &'static str>,
    units: BTreeMap<String, &'static str>,
}

impl Owners {
    /// Records what `role` added to `out` (past `r0` resources and `u0` units).
    fn claim(
        &mut self,
        node: &str,
        role: &'static str,
        out: &Output,
        r0: usize,
        u0: usize,
    ) -> Result<(), PlanError> {
        let clash = |what: String, first| PlanError::Clash {
            node: node.to_string(),
            what,
            first,
            second: role,
        };
        for r in &out.resources[r0..] {
            if let Some(first) = self.files.insert(r.path.clone(), role) {
                return Err(clash(format!("file {}", r.path), first));
            }
        }
        for u in &out.units[u0..] {
            if let Some(first) = self.units.insert(u.name.clone(), role) {
                return Err(clash(format!("unit {}", u.name), first));
            }
        }
        Ok(())
    }
}
