//! What roles claim on a node (TCP ports they listen on), checked once for the whole
//! inventory: the second claim of the same port is an error naming the first.

use std::collections::BTreeMap;

use super::{Collector, Inventory};

/// The claims made so far, each with the JSON path that made it.
#[derive(Debug, Default)]
pub struct Claims {
    ports: BTreeMap<(String, u16), String>,
}

impl Claims {
    /// `path` says something listens on TCP `port` of `node`; a port claimed before is an
    /// error. Unknown nodes and port 0 (already reported) are skipped.
    pub fn port(
        &mut self,
        inv: &Inventory,
        c: &mut Collector,
        node: &str,
        port: u16,
        path: String,
    ) {
        if port == 0 || inv.node(node).is_none() {
            return;
        }
        match self.ports.get(&(node.to_string(), port)) {
            Some(first) => c.push(
                path,
                format!(
                    "port {port} on node \"{node}\" is already used by {first}; pick another port"
                ),
            ),
            None => {
                self.ports.insert((node.to_string(), port), path);
            }
        }
    }
}
