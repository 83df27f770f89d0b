//! What is claimed on a node (TCP and UDP ports something listens on: sshd, routes,
//! balancers, tunnels), checked once for the whole inventory: the second claim of the same
//! port is an error naming the first.

use std::collections::BTreeMap;

use super::{Collector, Inventory};

/// The claims made so far, each with the JSON path that made it.
#[derive(Debug, Default, Clone)]
pub struct Claims {
    ports: BTreeMap<(String, &'static str, u16), (String, bool)>,
}

/// A port something vds-proxy deploys listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub udp: bool,
    pub port: u16,
    /// The JSON path that claimed it, e.g. `$.routes[0].port`.
    pub by: String,
    /// Bound to the loopback address only: the firewall leaves it closed.
    pub local: bool,
}

impl Claims {
    /// Every port claimed on `node`: TCP first, each in port order.
    pub fn on(&self, node: &str) -> Vec<Claimed> {
        let mut out: Vec<Claimed> = self
            .ports
            .iter()
            .filter(|((n, _, _), _)| n == node)
            .map(|((_, what, port), (by, local))| Claimed {
                udp: *what == "UDP port",
                port: *port,
                by: by.clone(),
                local: *local,
            })
            .collect();
        out.sort_by_key(|c| (c.udp, c.port));
        out
    }

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
        self.claim(inv, c, node, ("port", port), path, false);
    }

    /// `path` says something listens on TCP `port` of `node`'s loopback address only (no
    /// other system may take the port, and the firewall keeps it closed).
    pub fn local_port(
        &mut self,
        inv: &Inventory,
        c: &mut Collector,
        node: &str,
        port: u16,
        path: String,
    ) {
        self.claim(inv, c, node, ("port", port), path, true);
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
        self.claim(inv, c, node, ("UDP port", port), path, false);
    }

    fn claim(
        &mut self,
        inv: &Inventory,
        c: &mut Collector,
        node: &str,
        (what, port): (&'static str, u16),
        path: String,
        local: bool,
    ) {
        if port == 0 || inv.node(node).is_none() {
            return;
        }
        let key = (node.to_string(), what, port);
        match self.ports.get(&key) {
            Some((first, _)) => c.push(
                path,
                format!(
                    "{what} {port} on node \"{node}\" is already used by {first}; pick another port"
                ),
            ),
            None => {
                self.ports.insert(key, (path, local));
            }
        }
    }
}
