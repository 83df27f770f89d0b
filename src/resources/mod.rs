//! Resources: the things vds-proxy puts on a host, and what each kind needs from the engine.
//!
//! Every resource is a file at a path with an owner and a mode. What differs between kinds
//! is how a staged copy is validated before it goes live and what must run after it changed;
//! each kind answers that through [`KindOps`]. The kinds several systems use live here
//! ([`SHARED`]); a kind only one system uses lives in that
//! system's folder, and the system registers it so the engine can take its files back.

pub mod action;
pub mod binary;
pub mod dropin;
pub mod file;
pub mod unit;

use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

pub use action::Action;
use sha2::{Digest, Sha256};

/// The kind of a resource: its name in the manifest and its behaviour. Kinds are equal
/// when their names are.
#[derive(Clone, Copy)]
pub struct Kind {
    name: &'static str,
    ops: &'static dyn KindOps,
}

impl Kind {
    /// A plain config file.
    pub const FILE: Kind = Kind::new("file", &file::FileOps);
    /// A systemd unit file.
    pub const UNIT: Kind = Kind::new("unit", &unit::UnitOps);
    /// An executable shipped by vds-proxy.
    pub const BINARY: Kind = Kind::new("binary", &binary::BinaryOps);
    /// A systemd drop-in for a unit vds-proxy does not own.
    pub const DROPIN: Kind = Kind::new("dropin", &dropin::DropInOps);

    /// A kind named `name` (lowercase, unique among the registered kinds) behaving as `ops`.
    pub const fn new(name: &'static str, ops: &'static dyn KindOps) -> Kind {
        Kind { name, ops }
    }

    /// The behaviour of this kind.
    pub fn ops(self) -> &'static dyn KindOps {
        self.ops
    }

    /// The name a kind has in the manifest (`file`, `unit`, `dropin`, ...).
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The kind named `name` (a manifest's entry) among `kinds`.
    pub fn find(kinds: &[Kind], name: &str) -> Option<Kind> {
        kinds.iter().copied().find(|k| k.name == name)
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Kind {}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

pub const SHARED: [Kind; 4] = [Kind::FILE, Kind::UNIT, Kind::BINARY, Kind::DROPIN];

/// See [`KindOps::unit_file_to_verify`].
pub struct UnitFileToVerify {
    /// Writes `file` before the check, if it is not the staged copy.
    pub prepare: Option<String>,
    /// The unit file to check.
    pub file: String,
}

/// What a kind contributes to the engine.
pub trait KindOps {
    /// A shell command (already quoted) that exits non-zero if the staged copy at `staged`
    /// must not go live; `None` when the kind has no validator. It runs inside the apply
    /// script, so it may call its functions (`verify_unit FILE`, `verify_dropin UNIT FILE`).
    fn validate(&self, res: &Resource, staged: &str) -> Option<String>;

    /// systemd reads it: a change or removal needs `daemon-reload`, and it is verified only
    /// after binaries went live (units are checked against them).
    fn systemd(&self) -> bool {
        false
    }

    /// For a file systemd reads: the unit file `systemd-analyze verify` checks for the staged
    /// copy at `staged`, and the shell command (already quoted) that writes it first when it
    /// is not the staged copy itself. The files of one apply are checked in one run (it
    /// loads every unit on the host each time); `validate` names the one at fault.
    fn unit_file_to_verify(&self, _res: &Resource, _staged: &str) -> Option<UnitFileToVerify> {
        None
    }

    /// A shell command that puts a changed file at `path` into effect in its running unit
    /// without reloading it, run in place of the reload its change triggers: `$old` names the
    /// file's previous version. It exits 0 when it did; on any other exit (a change it cannot
    /// take live) the unit reloads as usual, so it may refuse whatever it does not recognise.
    fn live_update(&self, _path: &str) -> Option<String> {
        None
    }

    /// A shell command that takes back what the file at `path` configured, run before the
    /// file is pruned (k3s keeps a manifest's objects when the file goes). A failure is
    /// reported, and the file still goes.
    fn before_remove(&self, _path: &str) -> Option<String> {
        None
    }

    /// A shell command that deletes for good what the file at `path` leaves behind (a
    /// certificate), run only once the host converged: a rollback before then still finds
    /// it in place. A failure is reported.
    fn after_remove(&self, _path: &str) -> Option<String> {
        None
    }

    /// Files on the host that belong with the one at `path` and go away with it (a
    /// WireGuard config's private key), deleted once the apply succeeded.
    fn also_remove(&self, _path: &str) -> Vec<String> {
        Vec::new()
    }
}

/// The part of a node's setup a resource or unit belongs to. `deploy --only` selects parts
/// by tag (see `cli::Tag`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Host preparation: kernel settings, firewall rules, drop-ins (tag `setup`).
    Setup,
    /// Replicated backends (tag `scale`).
    Backends,
    /// Load balancer configuration (tags `scale` and `config`).
    Balancer,
    /// Everything else, e.g. route forwarders (no tag: only full deploys touch them).
    #[default]
    Routes,
}

impl Part {
    /// True for the default part (left out of the manifest).
    pub fn is_default(&self) -> bool {
        *self == Part::Routes
    }
}

/// The bytes a resource holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Rendered text.
    Text(String),
    /// A local file uploaded as is (binaries); only its digest is part of the plan.
    Local {
        source: PathBuf,
        size: u64,
        /// `uname -m` of the machines it runs on.
        arch: String,
    },
}

/// A systemd unit that must be enabled and running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitSpec {
    /// The unit name, e.g. `vds-relay.service` or `mtproxy@2.service`.
    pub name: String,
    pub enable: bool,
    pub start: bool,
    /// When it is no longer wanted, stop it only after everything else is active (a
    /// backend that a balancer must stop sending traffic to first).
    pub late_stop: bool,
    /// With `late_stop`: how long to wait for its established connections to close
    /// before stopping it (0: stop after the grace period).
    pub drain_secs: u32,
    pub part: Part,
    /// TCP ports it listens on once active: checked after every apply that touched it.
    pub ports: Vec<u16>,
    /// A script run after an apply (re)started or reloaded the unit, that waits a bounded
    /// time until it works (a tunnel's first handshake); what it prints is reported, and it
    /// cannot fail the apply.
    #[serde(skip)]
    pub settle: Option<String>,
}

impl UnitSpec {
    /// Puts the unit in `part`.
    pub fn in_part(mut self, part: Part) -> Self {
        self.part = part;
        self
    }
}

/// One file vds-proxy manages on a host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    pub kind: Kind,
    /// Absolute path on the host.
    pub path: String,
    #[serde(serialize_with = "ser_content")]
    pub content: Content,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    #[serde(serialize_with = "ser_mode")]
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// The content holds a secret: never printed or diffed.
    pub secret: bool,
    /// The route or service this resource belongs to (`--service` filters and removes by it).
    pub service: Option<String>,
    /// What to run when this resource changed.
    pub on_change: Vec<Action>,
    pub part: Part,
    /// A shell command that fails when what this file configures is not live (rules
    /// flushed by hand, say); gather runs it, and a deploy then runs `on_change` again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_check: Option<String>,
    /// A shell command that succeeds when what this file is for is already on the host
    /// without it (an image archive whose image the engine has): gather runs it when the
    /// file is missing, and the file is then neither uploaded nor recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present_check: Option<String>,
    /// A change that could cut the deploy off from the host (firewall rules): its
    /// activation arms a revert on the host, which only `confirm` over a new SSH
    /// connection cancels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Confirm>,
}

/// How a change that could lock vds-proxy out is confirmed (see [`Resource::confirm`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirm {
    /// Run over a new SSH connection after the change went live: cancels the revert.
    pub command: String,
    /// Seconds after which the host puts the previous version back by itself.
    pub revert_after: u32,
}

impl Resource {
    /// A text resource owned by root.
    pub fn text(kind: Kind, path: impl Into<String>, content: String, mode: u32) -> Self {
        let sha256 = sha256_hex(content.as_bytes());
        Resource {
            kind,
            path: path.into(),
            content: Content::Text(content),
            sha256,
            mode,
            owner: "root".into(),
            group: "root".into(),
            secret: false,
            service: None,
            on_change: Vec::new(),
            part: Part::default(),
            live_check: None,
            present_check: None,
            confirm: None,
        }
    }

    /// Makes the change one that must be confirmed over a new connection (see [`Confirm`]).
    pub fn confirm(mut self, command: impl Into<String>, revert_after: u32) -> Self {
        self.confirm = Some(Confirm {
            command: command.into(),
            revert_after,
        });
        self
    }

    /// Sets the command that checks what this file configures is live.
    pub fn live_check(mut self, cmd: impl Into<String>) -> Self {
        self.live_check = Some(cmd.into());
        self
    }

    /// Sets the command that tells the file is not needed on the host (see
    /// [`Resource::present_check`]).
    pub fn present_check(mut self, cmd: impl Into<String>) -> Self {
        self.present_check = Some(cmd.into());
        self
    }

    /// Puts the resource in `part`.
    pub fn in_part(mut self, part: Part) -> Self {
        self.part = part;
        self
    }

    /// Marks the resource as belonging to a route or service.
    pub fn for_service(mut self, service: &str) -> Self {
        self.service = Some(service.to_string());
        self
    }

    /// Adds an action to run when the resource changed.
    pub fn on_change(mut self, action: Action) -> Self {
        self.on_change.push(action);
        self
    }

    /// Marks the content as secret.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// The text content, if this is a text resource.
    pub fn text_content(&self) -> Option<&str> {
        match &self.content {
            Content::Text(t) => Some(t),
            Content::Local { .. } => None,
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `bytes` as lowercase hex, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ser_mode<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:04o}"))
}

fn ser_content<S: Serializer>(c: &Content, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Content::Text(t) => s.serialize_str(t),
        Content::Local { source, size, arch } => s.serialize_str(&format!(
            "<{} bytes for {} from {}>",
            size,
            arch,
            source.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, SHARED};

    #[test]
    fn kinds_are_found_by_their_manifest_name() {
        assert_eq!(Kind::find(&SHARED, "unit"), Some(Kind::UNIT));
        assert_eq!(
            Kind::find(&SHARED, "dropin").map(Kind::name),
            Some("dropin")
        );
        assert_eq!(Kind::find(&SHARED, "nope"), None);
    }
}
