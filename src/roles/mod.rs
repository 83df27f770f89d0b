//! Roles turn what the inventory says about one node into resources for that node.
//!
//! Each role is a pure function of the inventory; `plan` calls them in order.

pub mod balancer;
pub mod forwarder;
pub mod k3s;
pub mod replicas;
pub mod tproxy;
pub mod wireguard;

use crate::inventory::{Inventory, Node};
use crate::resources::binary::Artifact;
use crate::resources::{Resource, UnitSpec};
use crate::templates::{TemplateError, Templates};

/// What a role reads.
pub struct Ctx<'a> {
    pub inv: &'a Inventory,
    pub node: &'a Node,
    pub templates: &'a Templates,
    /// The relay build to ship to nodes that need it.
    pub relay: &'a Artifact,
    /// WireGuard public keys read from the nodes.
    pub keys: &'a wireguard::PublicKeys,
}

/// What a role adds to a node's plan.
#[derive(Default)]
pub struct Output {
    pub resources: Vec<Resource>,
    pub units: Vec<UnitSpec>,
}

/// The signature every role has.
pub type Role = fn(&Ctx, &mut Output) -> Result<(), TemplateError>;

/// All roles, in the order their resources are laid out in a plan.
pub const ALL: &[Role] = &[
    forwarder::plan,
    replicas::plan,
    tproxy::plan,
    balancer::plan,
    wireguard::plan,
    k3s::plan,
];
