//! What is claimed on a node (TCP and UDP ports something listens on: sshd, routes,
//! balancers, tunnels), checked once for the whole inventory: the second claim of the same
//! port is an error naming the first.

use std::collections::BTreeMap;

use super::{Collector, Inventory};

/// The claims made so far, each with the JSON path that made it.
#[derive(Debug, Default, Clone)]
pub struct Claims {
    ports: BTreeMap<(String, u16, bool), Claimed>,
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
    /// The only sources that may connect (addresses or networks); empty: any.
    pub from: Vec<String>,
}

impl Claims {
    /// Every port claimed on `node`: TCP first, each in port order.
    pub fn on(&self, node: &str) -> Vec<Claimed> {
        let mut out: Vec<Claimed> = self
            .ports
            .iter()
            .filter(|((n, _, _), _)| n == node)
            .map(|(_, claimed)| claimed.clone())
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
        self.claim(inv, c, node, Claimed::tcp(port, path));
    }

    /// Like [`Claims::port`], for a port only the sources `from` (addresses or networks)
    /// may reach: the firewall opens it to them alone.
    pub fn port_from(
        &mut self,
        inv: &Inventory,
        c: &mut Collector,
        node: &str,
        port: u16,
        path: String,
        from: Vec<String>,
    ) {
        self.claim(
            inv,
            c,
            node,
            Claimed {
                from,
                ..Claimed::tcp(port, path)
            },
        );
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
        self.claim(
            inv,
            c,
            node,
            Claimed {
                local: true,
                ..Claimed::tcp(port, path)
            },
        );
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
        self.claim(
            inv,
            c,
            node,
            Claimed {
                udp: true,
                ..Claimed::tcp(port, path)
            },
        );
    }

    fn claim(&mut self, inv: &Inventory, c: &mut Collector, node: &str, claimed: Claimed) {
        if claimed.port == 0 || inv.node(node).is_none() {
            return;
        }
        let what = if claimed.udp { "UDP port" } else { "port" };
        let port = claimed.port;
        match self.ports.get(&(node.to_string(), port, claimed.udp)) {
            Some(first) => c.push(
                claimed.by,
                format!(
                    "{what} {port} on node \"{node}\" is already used by {}; pick another port",
                    first.by
                ),
            ),
            None => {
                self.ports
                    .insert((node.to_string(), port, claimed.udp), claimed);
            }
        }
    }
}

impl Claimed {
    fn tcp(port: u16, by: String) -> Claimed {
        Claimed {
            udp: false,
            port,
            by,
            local: false,
            from: Vec::new(),
        }
    }
}
