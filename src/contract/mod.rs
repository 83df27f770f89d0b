//! The contract between the engine and the systems vds-proxy builds: the traits a system
//! implements and the plain data they exchange. It sits below both: the engine and the
//! verbs reach a system only through a [`Systems`] handed down from the top (where the
//! one list of systems is), and a system imports nothing above this layer (the inventory
//! reader and its value types, resources, templates, shell quoting and the transport are
//! beside it).
//!
//! A system's core is its inventory section ([`SectionReader`]) and its plan ([`System`]);
//! everything else is a small capability trait it opts into by registering for it
//! ([`Systems`]): tables, the prepare step, status, probes, converging outside the hosts,
//! purging data, verbs of its own.

pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::inventory::SectionReader;
use crate::inventory::{Inventory, Node, Sections};
use crate::resources::binary::Artifact;
use crate::resources::{Action, Kind, Resource, UnitSpec};
use crate::templates::{TemplateError, Templates};

/// The manifest the engine keeps on each host: one JSON object per line, each managed
/// file's line starting `{"path":"PATH","sha256":"HEX",` (an empty digest for a file that
/// holds a secret), so a node-side script can read it with `sed`.
pub const MANIFEST: &str = "/var/lib/vds-proxy/state.json";

/// One system vds-proxy can build: its inventory section and its plan.
pub trait System: SectionReader {
    /// The templates it renders: (name, embedded text), overridable by file name.
    fn templates(&self) -> &'static [(&'static str, &'static str)];

    /// Adds what `ctx.node` needs: pure, no host contacted.
    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError>;
}

/// A table `show --table NAME` prints.
pub trait Table: Sync {
    /// (NAME, text).
    fn table(&self, inv: &Inventory) -> Option<(&'static str, String)>;
}

/// Values read from the nodes before planning (keys made on the node, say): one round trip
/// per node for every system that opts in.
pub trait Prepare: Sync {
    /// The script `node` runs, if the system needs anything from it.
    fn prepare_script(&self, inv: &Inventory, node: &str, mode: PrepareMode) -> Option<String>;

    /// Reads what every node printed into `into`; returns the problems that must stop a
    /// deploy before any host changes.
    fn prepare_read(
        &self,
        inv: &Inventory,
        outputs: &BTreeMap<String, Prepared>,
        into: &mut Sections,
    ) -> Vec<String>;
}

/// Rows of `status` for what the system runs on a node.
pub trait Status: Sync {
    /// Script lines `status` runs on `node` (after the facts are gathered).
    fn status_script(&self, inv: &Inventory, node: &str) -> String;

    /// The checks of `node`, read from what its status script printed.
    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check>;
}

/// End-to-end TCP probes of what a node serves (`status`).
pub trait Probes: Sync {
    fn probes(&self, inv: &Inventory, node: &str) -> Vec<Probe>;
}

/// Something the system keeps outside the hosts (a service's API), converged before
/// `deploy` touches any host.
pub trait ConvergeOutside: Sync {
    /// With `dry_run` it only compares. An error stops the deploy with no host changed.
    fn converge_outside(&self, inv: &Inventory, dry_run: bool) -> anyhow::Result<Outside>;
}

/// Data the system's services made on a node (a database, dumps), deleted by
/// `remove --purge-data` once everything vds-proxy installed there is taken back.
pub trait Purge: Sync {
    /// Shell lines that delete it; each deleted path is printed as `@purged PATH`.
    fn purge_script(&self, inv: &Inventory, node: &str) -> String;
}

/// The systems a command works with, and who opted into which capability, in the order
/// the top registered them (the order their resources are laid out in a plan).
#[derive(Clone, Default)]
pub struct Systems {
    /// Every system (its section and plan).
    pub all: Vec<&'static dyn System>,
    pub tables: Vec<&'static dyn Table>,
    pub prepare: Vec<&'static dyn Prepare>,
    pub status: Vec<&'static dyn Status>,
    pub probes: Vec<&'static dyn Probes>,
    pub outside: Vec<&'static dyn ConvergeOutside>,
    pub purge: Vec<&'static dyn Purge>,
    pub verbs: Vec<Verb>,
    /// The resource kinds the engine may find in a manifest: the shared ones, then each
    /// system's own.
    pub kinds: Vec<Kind>,
}

impl Systems {
    /// The systems that `register` functions add, in their order.
    pub fn of(registers: &[fn(&mut Systems)]) -> Systems {
        let mut r = Systems {
            kinds: crate::resources::SHARED.to_vec(),
            ..Systems::default()
        };
        for register in registers {
            register(&mut r);
        }
        r
    }

    /// Every system's inventory section reader.
    pub fn sections(&self) -> Vec<&'static dyn SectionReader> {
        self.all
            .iter()
            .map(|s| *s as &'static dyn SectionReader)
            .collect()
    }

    /// Every system's templates.
    pub fn templates(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.all.iter().flat_map(|s| s.templates().iter().copied())
    }
}

/// What a system reads when it plans one node.
pub struct Ctx<'a> {
    pub inv: &'a Inventory,
    pub node: &'a Node,
    pub templates: &'a Templates,
    /// The vds-proxy build shipped to nodes that run one of its bundled servers.
    pub bundle: &'a Artifact,
    /// What the prepare step read from the nodes (see [`Prepare`]).
    pub prepared: &'a Sections,
}

/// What a system adds to a node's plan.
#[derive(Default)]
pub struct Output {
    pub resources: Vec<Resource>,
    pub units: Vec<UnitSpec>,
    /// What to do when the bundled vds-proxy binary changes, one entry per bundled server
    /// the node runs; when any system adds one, the plan installs the binary once (first).
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

/// What the status script printed on one node, and what the engine read there.
pub struct StatusInput<'a> {
    pub stdout: &'a str,
    /// Each unit gathered on the node, with its active state (`active`, `failed` …).
    pub units: &'a BTreeMap<String, String>,
    /// TCP ports something listens on.
    pub listening: &'a [u16],
}

impl StatusInput<'_> {
    /// The active state of `unit`: `inactive` when systemd has not loaded it, `unknown`
    /// when it was not gathered.
    pub fn unit_active(&self, unit: &str) -> &str {
        match self.units.get(unit).map(String::as_str) {
            None => "inactive",
            Some("") => "unknown",
            Some(a) => a,
        }
    }
}

/// One line of the status table.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub node: String,
    /// What was checked: `ssh`, `unit NAME`, `file PATH`, or what a system names its checks.
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    /// A check of `node`.
    pub fn new(node: &str, check: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Check {
            node: node.to_string(),
            check: check.into(),
            ok,
            detail: detail.into(),
        }
    }
}

/// A TCP endpoint `status` checks end to end: a connection to it must reach something.
pub struct Probe {
    /// The node the check is reported for.
    pub node: String,
    /// The check's name in the table.
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

/// A verb a system adds to the command line, dispatched like the others.
#[derive(Clone)]
pub struct Verb {
    /// Its definition: name, help, arguments.
    pub command: fn() -> clap::Command,
    /// Runs it with its parsed arguments; returns the exit code.
    pub run: fn(&VerbCtx, &clap::ArgMatches) -> anyhow::Result<i32>,
}

/// What a system's verb may use: the inventory, reading inventory text again, and a script
/// run on a node.
pub struct VerbCtx<'a> {
    pub inv: &'a Inventory,
    /// The tool settings (`vds-proxy.toml`).
    pub settings: &'a crate::settings::Settings,
    /// Reads inventory text (an edited copy of the inventory) with every system.
    pub read: &'a dyn Fn(&str) -> Result<Inventory, crate::inventory::InputErrors>,
    /// Runs a script on a node of the inventory (as root); its exit status, stdout and
    /// stderr.
    pub run_on: &'a dyn Fn(&str, &str) -> anyhow::Result<crate::transport::Output>,
}

/// Bad input found by a system outside the inventory's own checks (a verb's arguments):
/// exit code 2, like every input error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
