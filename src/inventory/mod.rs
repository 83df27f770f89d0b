//! The inventory: `nodes.json` read and checked. Nodes are read here; every other
//! top-level key belongs to the system that reads it into its own section through a
//! [`SectionReader`] handed in by the caller, so this module names no system.

mod claims;
mod error;
mod node;
mod reader;
pub mod secret;
mod sections;
mod strict;
mod values;

use std::any::Any;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use claims::{Claimed, Claims};
pub use error::{Collector, InputError, InputErrors, suggest};
pub use node::{Connection, Node, is_tailscale_tag};
pub use reader::{
    Check, Fields, HOSTNAME, SAFE_NAME, decimal, is_host_port, is_hostname, is_one_line,
    is_safe_name, kind, name_of, parse_cidr, port_value, shown,
};
pub use sections::{SectionReader, Sections};
pub use values::{DomainName, Email, NodePath, SYSTEM_DIRS, is_image_reference};

/// Everything `nodes.json` declares, after validation.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file it was read from.
    pub source: PathBuf,
    pub nodes: Vec<Node>,
    /// Each role's section, by type.
    sections: Sections,
    /// The ports each node's systems listen on (sshd included), from validation.
    claims: Claims,
    /// Every secret value the sections hold, for redaction of all output.
    secrets: Vec<String>,
    /// Every secret field: (JSON path, written in plain text rather than referenced or
    /// encrypted).
    secret_fields: Vec<(String, bool)>,
    /// Every secret value read: (JSON path, where it came from, the value).
    secret_sources: Vec<(String, String, String)>,
}

/// Where the inventory path came from, for verbose output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSource {
    Flag,
    Env,
    Default,
}

/// Picks the inventory path: `--inventory`, else `NODES_CONFIG`, else `inventory/nodes.json`.
pub fn resolve_path(flag: Option<&Path>, env: Option<&str>) -> (PathBuf, PathSource) {
    match (flag, env) {
        (Some(p), _) => (p.to_path_buf(), PathSource::Flag),
        (None, Some(e)) if !e.is_empty() => (PathBuf::from(e), PathSource::Env),
        _ => (PathBuf::from("inventory/nodes.json"), PathSource::Default),
    }
}

/// Reads, parses and validates the inventory at `path` with the systems' `readers`,
/// reporting every problem at once.
pub fn load(path: &Path, readers: &[&dyn SectionReader]) -> Result<Inventory, InputErrors> {
    load_with(path, readers, Secrets::Read)
}

/// How much of the secrets a command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secrets {
    /// Every value: references resolved, encrypted values decrypted.
    Read,
    /// None: references and encrypted values checked for their shape only (see
    /// [`secret`]); a SOPS-encrypted inventory is not decrypted either.
    Shape,
    /// None of the values, but a SOPS-encrypted inventory is decrypted (its structure is
    /// encrypted too): for what prints no secret (`show`).
    Structure,
    /// Only the secret fields at these JSON paths (what the selected nodes' files hold);
    /// the others as with `Structure`.
    Only(std::collections::BTreeSet<String>),
}

/// [`load`], reading as much of the secrets as `secrets` says.
pub fn load_with(
    path: &Path,
    readers: &[&dyn SectionReader],
    secrets: Secrets,
) -> Result<Inventory, InputErrors> {
    let mut c = Collector::new(path.display().to_string());
    match std::fs::read(path) {
        Ok(bytes) => match text_of(&bytes) {
            Ok(text) if secrets != Secrets::Shape && secret::is_sops(text) => {
                match secret::sops_decrypt(path) {
                    Ok(plain) => return read(path, &plain, readers, &secrets),
                    Err(why) => c.push("$.sops", why),
                }
            }
            Ok(text) => return read(path, text, readers, &secrets),
            Err((line, col, message)) => c.push_at(line, col, message),
        },
        Err(e) => c.push(
            "$",
            format!("cannot read the inventory: {e}; pass --inventory PATH or set NODES_CONFIG"),
        ),
    }
    c.finish(Inventory::empty(path, readers))
}

/// The file's text, or where and why it is not UTF-8 text (line, column, message).
pub fn text_of(bytes: &[u8]) -> Result<&str, (usize, usize, String)> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err((
            1,
            1,
            "the file starts with a byte order mark (BOM); save it as UTF-8 without one".into(),
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let col = good.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        (
            line,
            col,
            "the file is not UTF-8 text (an invalid byte here); save it as UTF-8".into(),
        )
    })
}

/// Parses and validates inventory text with the systems' `readers`; `path` names it in
/// messages.
pub fn from_str(
    path: &Path,
    text: &str,
    readers: &[&dyn SectionReader],
) -> Result<Inventory, InputErrors> {
    read(path, text, readers, &Secrets::Read)
}

fn read(
    path: &Path,
    text: &str,
    readers: &[&dyn SectionReader],
    secrets: &Secrets,
) -> Result<Inventory, InputErrors> {
    let mut c = Collector::new(path.display().to_string());
    match secrets {
        Secrets::Read => {}
        Secrets::Shape | Secrets::Structure => c.offline_secrets = true,
        Secrets::Only(paths) => c.read_only = Some(paths.clone()),
    }
    let (mut inv, root) = parse(path, text, &mut c, readers);
    if c.is_empty() || !inv.nodes.is_empty() {
        node::validate(&inv.nodes, &mut c);
        let mut claims = Claims::default();
        // vds-proxy reaches a node over SSH on this port: nothing else may take it.
        for (i, n) in inv.nodes.iter().enumerate() {
            let first = !inv.nodes[..i].iter().any(|m| m.name == n.name);
            if n.connection == Connection::Ssh && first {
                let path = format!("$.nodes[{i}].ssh_port (sshd, which vds-proxy connects to)");
                claims.port(&inv, &mut c, &n.name.clone(), n.ssh_port, path);
            }
        }
        for r in readers {
            r.validate(&inv, &mut c, &mut claims);
        }
        inv.claims = claims;
        inv.secrets = readers.iter().flat_map(|r| r.secrets(&inv)).collect();
        inv.secret_fields = c.secret_fields().to_vec();
        inv.secret_sources = c.secret_sources().to_vec();
        if let Some(root) = &root {
            secrets_in_plain_text(root, "$", &inv.secrets, &mut c);
        }
    }
    c.finish(inv)
}

/// A secret inside another value (a description, a command line, a URL) would be printed
/// and written in plain text: every string that holds one without being it is refused,
/// naming where it stands, never the value. (Secrets shorter than 8 characters are left
/// out: they would match by chance; systems refuse them anyway.)
fn secrets_in_plain_text(v: &Value, path: &str, secrets: &[String], c: &mut Collector) {
    match v {
        Value::String(s)
            if secrets
                .iter()
                .any(|k| k.chars().count() >= 8 && s != k && s.contains(k.as_str())) =>
        {
            c.push(
                path,
                "holds a secret of this inventory (not shown) inside a value that is printed and \
                 written in plain text; name it only where secrets go",
            );
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                secrets_in_plain_text(item, &format!("{path}[{i}]"), secrets, c);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                secrets_in_plain_text(item, &format!("{path}.{k}"), secrets, c);
            }
        }
        _ => {}
    }
}

/// The inventory read from `text`, and the JSON it was read from (none when it is not JSON).
fn parse(
    path: &Path,
    text: &str,
    c: &mut Collector,
    readers: &[&dyn SectionReader],
) -> (Inventory, Option<Value>) {
    let mut inv = Inventory::empty(path, readers);
    let root: Value = match serde_json::from_str::<strict::Strict>(text) {
        Ok(v) => v.0,
        Err(e) => {
            let s = e.to_string();
            let message = s.rfind(" at line ").map_or(s.as_str(), |i| &s[..i]);
            c.push_at(e.line(), e.column(), format!("invalid JSON: {message}"));
            return (inv, None);
        }
    };
    let keys: Vec<&'static str> = std::iter::once("nodes")
        .chain(readers.iter().flat_map(|r| r.keys().iter().copied()))
        .collect();
    let Some(top) = Fields::new(c, "$", &root, &keys) else {
        return (inv, None);
    };
    inv.nodes = top.objects(c, "nodes", node::parse);
    for r in readers {
        r.parse(&top, c, &mut inv.sections);
    }
    (inv, Some(root))
}

impl Inventory {
    /// An inventory with no nodes and every system's section empty.
    fn empty(path: &Path, readers: &[&dyn SectionReader]) -> Self {
        // Every system reads an empty object: its section exists, empty.
        let nothing = Value::Object(serde_json::Map::new());
        let mut c = Collector::new("");
        let mut sections = Sections::default();
        if let Some(top) = Fields::new(&mut c, "$", &nothing, &[]) {
            for r in readers {
                r.parse(&top, &mut c, &mut sections);
            }
        }
        Inventory {
            source: path.to_path_buf(),
            nodes: Vec::new(),
            sections,
            claims: Claims::default(),
            secrets: Vec::new(),
            secret_fields: Vec::new(),
            secret_sources: Vec::new(),
        }
    }

    /// The ports the systems of `node` listen on, sshd's included.
    pub fn claimed_on(&self, node: &str) -> Vec<Claimed> {
        self.claims.on(node)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The section of type `T`, which a registered system read.
    pub fn section<T: Any + Send + Sync>(&self) -> &T {
        self.sections.get::<T>().unwrap_or_else(|| {
            panic!(
                "no inventory section {}: the system that reads it is not registered",
                std::any::type_name::<T>()
            )
        })
    }

    /// Every secret value the inventory holds, for redaction of all output.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// Every secret field: (JSON path, written in plain text rather than referenced or
    /// encrypted).
    pub fn secret_fields(&self) -> &[(String, bool)] {
        &self.secret_fields
    }

    /// Where the secrets `text` holds come from, as `show` names them:
    /// `<secret: env:NAME> ($.path)`, one per secret value found in it.
    pub fn secrets_named_in(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .secret_sources
            .iter()
            .filter(|(_, _, v)| !v.is_empty() && text.contains(v.as_str()))
            .map(|(path, source, _)| format!("<secret: {source}> ({path})"))
            .collect();
        out.dedup();
        out
    }

    /// Checks that `name`, found at `path`, is an active node; returns true if it is.
    pub fn check_node_ref(&self, c: &mut Collector, path: &str, name: &str) -> bool {
        if name.is_empty() {
            return false;
        }
        match self.node(name) {
            None => {
                let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
                // Past the problems that are printed, no hint is computed (a did-you-mean
                // over every node for each of thousands of errors took seconds).
                let hint = match (!c.is_full()).then(|| suggest(name, &names)) {
                    None => String::new(),
                    Some(Some(s)) => format!("did you mean \"{s}\"?"),
                    Some(None) if names.len() > 10 => format!(
                        "known nodes: {}, ... ({} in all)",
                        names[..10].join(", "),
                        names.len()
                    ),
                    Some(None) => format!("known nodes: {}", names.join(", ")),
                };
                let sep = if hint.is_empty() { "" } else { "; " };
                c.push(path, format!("node \"{name}\" does not exist{sep}{hint}"));
                false
            }
            Some(n) if !n.active => {
                c.push(
                    path,
                    format!("node \"{name}\" is inactive (\"active\": false); activate it or remove this entry"),
                );
                false
            }
            Some(_) => true,
        }
    }
}
