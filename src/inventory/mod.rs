//! The inventory: `nodes.json` parsed, checked and turned into typed nodes, routes and services.

mod error;
mod model;
mod parse;
mod reader;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{Collector, InputError, InputErrors};
pub use model::*;
pub use parse::{is_hostname, is_safe_name};

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

/// Reads, parses and validates the inventory at `path`, reporting every problem at once.
pub fn load(path: &Path) -> Result<Inventory, InputErrors> {
    let mut c = Collector::new(path.display().to_string());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            c.push(
                "$",
                format!(
                    "cannot read the inventory: {e}; pass --inventory PATH or set NODES_CONFIG"
                ),
            );
            return c.finish(empty(path));
        }
    };
    from_str(path, &text)
}

/// Parses and validates inventory text; `path` names it in messages.
pub fn from_str(path: &Path, text: &str) -> Result<Inventory, InputErrors> {
    let mut c = Collector::new(path.display().to_string());
    let inv = parse::parse(path, text, &mut c);
    if c.is_empty() || !inv.nodes.is_empty() {
        validate::validate(&inv, &mut c);
    }
    c.finish(inv)
}

fn empty(path: &Path) -> Inventory {
    Inventory {
        source: path.to_path_buf(),
        nodes: Vec::new(),
        routes: Vec::new(),
        services: Vec::new(),
        wireguard: Vec::new(),
        k3s: None,
    }
}

impl Inventory {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The services on `node` that have a balancer, each with its balancer.
    pub fn balanced_on<'a>(
        &'a self,
        node: &'a str,
    ) -> impl Iterator<Item = (&'a Service, &'a Balancer)> + 'a {
        self.services
            .iter()
            .filter(move |s| s.node == node)
            .filter_map(|s| Some((s, s.balancer.as_ref()?)))
    }

    /// Every secret value the inventory holds, for redaction of all output.
    pub fn secrets(&self) -> Vec<String> {
        let services = self.services.iter().filter_map(|s| s.secret.clone());
        let apps = self
            .k3s
            .iter()
            .flat_map(|k| &k.apps)
            .flat_map(|a| a.secret_env.values().cloned());
        services.chain(apps).collect()
    }
}
