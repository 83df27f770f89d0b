//! What is claimed on a node (TCP and UDP ports something listens on: sshd, routes,
//! balancers, tunnels), checked once for the whole inventory: the second claim of the same
//! port is an error naming the first.

use std::collections::BTreeMap;

use super::{Collector, Inventory};

/// The claims made so far, each with the JSON path that made it.
#[derive(Debug, Default)]
pub struct Claims {
    ports: BTreeMap<(String, &'static str, u16), String>,
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
        self.claim(inv, c, node, ("port", port), path);
    }

    /// Like [`Claims::port`], for UDP.
    pub fn udp_port(
        &mut self,
        inv: &Inventory,
        c: &mut Collector,
        node: &str,
        port: u16,
        path: String,
    ) {
        self.claim(inv, c, node, ("UDP port", port), path);
    }

    fn claim(
        &mut self,
        inv: &Inventory,
        c: &mut Collector,
        node: &str,
        (what, port): (&'static str, u16),
        path: String,
    ) {
        if port == 0 || inv.node(node).is_none() {
            return;
        }
        let key = (node.to_string(), what, port);
        match self.ports.get(&key) {
            Some(first) => c.push(
                path,
                format!(
                    "{what} {port} on node \"{node}\" is already used by {first}; pick another port"
                ),
            ),
            None => {
                self.ports.insert(key, path);
            }
        }
    }
}
