//! k3s workloads: Deployments with their Services and NetworkPolicies, batch Jobs and a
//! WireGuard egress DaemonSet, rendered as Kubernetes manifests into the auto-deploy
//! directory of the k3s server node; pruning removes them.
//!
//! Inventory key `k3s` (`model.rs`, `parse.rs`); plan in `plan.rs`; status: each app's
//! deployment readiness through kubectl (`status.rs`).

pub mod manifest;
mod model;
mod parse;
mod plan;
mod status;

pub use model::{K3s, K3sApp, K3sEgress, K3sJob};

use crate::contract::Check;
use crate::contract::{self, Ctx, Output, Status, StatusInput, Systems};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, Sections};
use crate::templates::TemplateError;

#[derive(Debug, Default)]
struct Section(Option<K3s>);

/// The k3s workloads of `inv`, if any.
pub fn of(inv: &Inventory) -> Option<&K3s> {
    inv.section::<Section>().0.as_ref()
}

/// The k3s role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "k3s"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["k3s"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let k = top
            .get("k3s")
            .and_then(|v| parse::k3s(c, &top.path_of("k3s"), v));
        into.insert(Section(k));
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        if let Some(k) = of(inv) {
            parse::validate(inv, k, c, claims);
        }
    }

    fn secrets(&self, inv: &Inventory) -> Vec<String> {
        of(inv)
            .iter()
            .flat_map(|k| &k.apps)
            .flat_map(|a| a.secret_env.values().cloned())
            .collect()
    }

    fn summary(&self, _inv: &Inventory) -> Option<String> {
        None
    }
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        plan::TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan::plan(ctx, out)
    }
}

impl Status for System {
    fn status_script(&self, inv: &Inventory, node: &str) -> String {
        status::script(of(inv), node)
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        status::checks(of(inv), node, seen.stdout)
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.push(manifest::K8S);
    r.all.push(&System);
    r.status.push(&System);
}
