//! Roles: one module folder per system vds-proxy can build (forwarded routes, replicated
//! services, HAProxy, TPROXY, WireGuard, k3s workloads, the web edge, the node registry,
//! compose applications, PostgreSQL backups, the Tailscale policy, the firewall). A role owns everything about
//! its system — its inventory section (model, parsing, validation, the ports it claims,
//! its secrets), its plan (resources and units), the templates it renders, its status
//! checks and anything it must read from the nodes before planning — and the rest of
//! vds-proxy knows it only through [`Role`] and the registry [`ALL`].
//!
//! Adding a system: see "Adding a system" in README.md.

pub mod backups;
pub mod balancer;
pub mod compose;
pub mod firewall;
pub mod k3s;
pub mod registry;
pub mod replicas;
pub mod routes;
pub mod tailscale;
pub mod tproxy;
pub mod web;
pub mod wireguard;

use std::collections::BTreeMap;

use crate::engine::gather::Facts;
use crate::engine::status::Check;
use crate::inventory::{Claims, Collector, Fields, Inventory, Node, Sections};
use crate::resources::binary::Artifact;
use crate::resources::{Action, Resource, UnitSpec};
use crate::templates::{TemplateError, Templates};

/// Every role, in the order their resources are laid out in a plan (and their sections
/// are read and checked).
pub const ALL: &[&dyn Role] = &[
    &routes::System,
    &replicas::System,
    &tproxy::System,
    &balancer::System,
    &wireguard::System,
    &k3s::System,
    &web::System,
    &registry::System,
    &compose::System,
    &backups::System,
    &tailscale::System,
    // Last: it reads the ports every other system claims.
    &firewall::System,
];

/// What a role reads when it plans one node.
pub struct Ctx<'a> {
    pub inv: &'a Inventory,
    pub node: &'a Node,
    pub templates: &'a Templates,
    /// The vds-proxy build shipped to nodes that run one of its bundled servers.
    pub bundle: &'a Artifact,
    /// What the prepare step read from the nodes (see [`Role::prepare_script`]).
    pub prepared: &'a Sections,
}

/// What a role adds to a node's plan.
#[derive(Default)]
pub struct Output {
    pub resources: Vec<Resource>,
    pub units: Vec<UnitSpec>,
    /// What to do when the bundled vds-proxy binary changes, one entry per bundled server
    /// the node runs; when any role adds one, the plan installs the binary once (first).
    pub bundle_users: Vec<Action>,
}

/// What the prepare step may do on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareMode {
    /// Only read what exists (`show --diff`, `deploy --dry-run`, `status`).
    Read,
    /// Create what is missing (a deploy).
    Create,
    /// Replace what exists (`deploy --rotate-keys`).
    Rotate,
}

/// What one node printed in the prepare step, and the mode it ran in.
pub struct Prepared<'a> {
    pub mode: PrepareMode,
    pub stdout: &'a str,
}

/// What the status script printed on one node, gathered facts included.
pub struct StatusInput<'a> {
    pub stdout: &'a str,
    pub facts: &'a Facts,
    /// TCP ports something listens on.
    pub listening: &'a [u16],
}

/// A TCP endpoint `status` checks end to end: a connection to it must reach something.
pub struct Probe {
    /// The node the check is reported for.
    pub node: String,
    /// The check's name in the table, e.g. `route web:8443`.
    pub check: String,
    pub host: String,
    pub port: u16,
    /// The detail when it is reached.
    pub reached: String,
}

/// What a system changed (or would change) outside the hosts, e.g. through a service's API.
#[derive(Debug, Default)]
pub struct Outside {
    /// Lines for the operator (a diff, what was done).
    pub lines: Vec<String>,
    /// Something differs from the inventory (and, in a dry run, was left as it is).
    pub changes: bool,
}

/// A verb a system adds to the command line (e.g. `backup`), dispatched like the others.
pub struct Verb {
    /// Its definition: name, help, arguments.
    pub command: fn() -> clap::Command,
    /// Runs it with its parsed arguments; returns the exit code.
    pub run: fn(&VerbCtx, &clap::ArgMatches) -> anyhow::Result<i32>,
}

/// What a system's verb may use: the inventory, and a script run on a node.
pub struct VerbCtx<'a> {
    pub inv: &'a Inventory,
    /// Runs a script on a node of the inventory (as root); its exit status, stdout and
    /// stderr.
    pub run_on: &'a dyn Fn(&str, &str) -> anyhow::Result<crate::transport::Output>,
}

/// Every system's verbs.
pub fn verbs() -> Vec<Verb> {
    ALL.iter().flat_map(|r| r.verbs()).collect()
}

/// One system vds-proxy can build. Only `name` and `plan` are required.
pub trait Role: Sync {
    /// The system's name, e.g. `wireguard`.
    fn name(&self) -> &'static str;

    /// The top-level inventory keys it reads.
    fn keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// Reads its keys of the top-level object into its section, recording every problem
    /// with its JSON path. Must store its section even when its keys are absent.
    fn parse(&self, _top: &Fields, _c: &mut Collector, _into: &mut Sections) {}

    /// Checks across the inventory once every section is read (node references,
    /// duplicates), and claims the ports its system listens on.
    fn validate(&self, _inv: &Inventory, _c: &mut Collector, _claims: &mut Claims) {}

    /// The secret values its section holds: never printed.
    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    /// A count for `validate`'s summary, e.g. `2 route(s)`.
    fn summary(&self, _inv: &Inventory) -> Option<String> {
        None
    }

    /// A table `show --table NAME` prints: (NAME, text).
    fn table(&self, _inv: &Inventory) -> Option<(&'static str, String)> {
        None
    }

    /// The templates it renders: (name, embedded text), overridable by file name.
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Adds what `ctx.node` needs: pure, no host contacted.
    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError>;

    /// A script the node runs before planning (one round trip per node for all roles),
    /// whose output [`Role::prepare_read`] turns into values the plan needs.
    fn prepare_script(&self, _inv: &Inventory, _node: &str, _mode: PrepareMode) -> Option<String> {
        None
    }

    /// Reads what every node printed in the prepare step into `into`; returns the problems
    /// that must stop a deploy before any host changes.
    fn prepare_read(
        &self,
        _inv: &Inventory,
        _outputs: &BTreeMap<String, Prepared>,
        _into: &mut Sections,
    ) -> Vec<String> {
        Vec::new()
    }

    /// Script lines `status` runs on `node` (after the facts are gathered).
    fn status_script(&self, _inv: &Inventory, _node: &str) -> String {
        String::new()
    }

    /// The status checks of `node`, read from what its status script printed.
    fn status_checks(&self, _inv: &Inventory, _node: &str, _seen: &StatusInput) -> Vec<Check> {
        Vec::new()
    }

    /// Converges what the system keeps outside the hosts (a service's API) before `deploy`
    /// touches any host; with `dry_run` it only compares. An error stops the deploy with
    /// no host changed.
    fn converge_outside(&self, _inv: &Inventory, _dry_run: bool) -> anyhow::Result<Outside> {
        Ok(Outside::default())
    }

    /// Shell lines that delete the data its services made on `node` (a database, dumps),
    /// run by `remove --purge-data` once everything vds-proxy installed there is taken
    /// back; each deleted path is printed as `@purged PATH`.
    fn purge_script(&self, _inv: &Inventory, _node: &str) -> String {
        String::new()
    }

    /// Verbs it adds to the command line.
    fn verbs(&self) -> Vec<Verb> {
        Vec::new()
    }

    /// End-to-end probes of what `node` serves.
    fn probes(&self, _inv: &Inventory, _node: &str) -> Vec<Probe> {
        Vec::new()
    }
}

/// Every role's templates, for [`Templates`].
pub fn templates() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALL.iter().flat_map(|r| r.templates().iter().copied())
}
