//! WireGuard tunnels: one `wg-quick` interface per network on each member, in a full mesh
//! or around a hub (a spoke can send all its egress through the hub). Private keys are
//! made on the nodes in the prepare step (`keys.rs`) and never leave them.
//!
//! Inventory key `wireguard` (`model.rs`, `parse.rs`); plan in `plan.rs`; status: each
//! peer's latest handshake (`status.rs`).

mod keys;
mod model;
mod parse;
mod plan;
mod status;
pub mod wg_quick;

use std::collections::BTreeMap;

pub use keys::PublicKeys;
pub use model::{Topology, WgMember, WgNetwork};
pub use parse::is_interface_name;

use crate::contract::Check;
use crate::contract::{
    self, Ctx, Output, Prepare, PrepareMode, Prepared, Status, StatusInput, Systems,
};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, Sections};
use crate::templates::TemplateError;

#[derive(Debug, Default)]
struct Section(Vec<WgNetwork>);

/// The WireGuard networks of `inv`.
pub fn of(inv: &Inventory) -> &[WgNetwork] {
    &inv.section::<Section>().0
}

/// The WireGuard role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "wireguard"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["wireguard"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let networks = top.objects(c, "wireguard", parse::network);
        into.insert(Section(networks));
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        parse::validate(inv, of(inv), c, claims);
    }

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
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

impl Prepare for System {
    fn prepare_script(&self, inv: &Inventory, node: &str, mode: PrepareMode) -> Option<String> {
        keys::script(of(inv), node, mode)
    }

    fn prepare_read(
        &self,
        inv: &Inventory,
        outputs: &BTreeMap<String, Prepared>,
        into: &mut Sections,
    ) -> Vec<String> {
        let (keys, problems) = keys::read(of(inv), outputs);
        into.insert(keys);
        problems
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
    r.kinds.push(wg_quick::WG_QUICK);
    r.all.push(&System);
    r.prepare.push(&System);
    r.status.push(&System);
}
