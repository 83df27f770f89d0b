//! WireGuard networks as the inventory declares them.

use std::net::IpAddr;

use serde::Serialize;

/// Who peers with whom in a WireGuard network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Every member peers with every other (two members: a point-to-point pair).
    Mesh,
    /// Members peer only with the hub (e.g. workers sending their egress through a VDS).
    Hub,
}

/// A WireGuard network: one interface on each member node.
#[derive(Debug, Clone, Serialize)]
pub struct WgNetwork {
    /// Interface name on every member, e.g. `wg0`.
    pub interface: String,
    /// UDP port every member listens on.
    pub port: u16,
    pub topology: Topology,
    /// The hub node (topology `hub`).
    pub hub: Option<String>,
    /// PersistentKeepalive (seconds) towards peers with an endpoint; 0 turns it off.
    pub keepalive: u16,
    /// `status` reports a peer whose latest handshake is older than this as down.
    pub handshake_timeout: u32,
    pub members: Vec<WgMember>,
}

/// One node's place in a WireGuard network.
#[derive(Debug, Clone, Serialize)]
pub struct WgMember {
    pub node: String,
    /// The node's tunnel address with the network's prefix length.
    pub address: IpAddr,
    pub prefix: u8,
    /// Where the others reach it (`host:port`); defaults to the node's public IP and the port.
    pub endpoint: Option<String>,
    /// Networks behind this member, routed to it through the tunnel.
    pub allowed_ips: Vec<String>,
    /// A spoke that sends all its egress through the hub (AllowedIPs 0.0.0.0/0).
    pub route_all: bool,
    /// Run the tunnel with wireguard-go (no kernel module: old kernels, containers).
    pub userspace: bool,
}

impl WgMember {
    /// The address with its prefix, as wg-quick's `Address`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix)
    }

    /// The address as a single-host network, as a peer's `AllowedIPs` entry.
    pub fn host_cidr(&self) -> String {
        let bits = if self.address.is_ipv4() { 32 } else { 128 };
        format!("{}/{bits}", self.address)
    }
}

impl WgNetwork {
    /// The member on `node`.
    pub fn member(&self, node: &str) -> Option<&WgMember> {
        self.members.iter().find(|m| m.node == node)
    }

    /// Whether `node` is this network's hub.
    pub fn is_hub(&self, node: &str) -> bool {
        self.hub.as_deref() == Some(node)
    }

    /// The members `node` peers with.
    pub fn peers_of(&self, node: &str) -> Vec<&WgMember> {
        match (self.topology, self.hub.as_deref()) {
            (Topology::Hub, Some(hub)) if node != hub => {
                self.members.iter().filter(|m| m.node == hub).collect()
            }
            _ => self.members.iter().filter(|m| m.node != node).collect(),
        }
    }

    /// The AllowedIPs `me` has for its peer `p`: the peer's address, the subnet through
    /// the hub for a spoke, the networks behind the peer; everything for a `route_all` spoke.
    pub fn allowed_ips(&self, me: &WgMember, p: &WgMember) -> Vec<String> {
        if me.route_all {
            return vec!["0.0.0.0/0".to_string()];
        }
        let mut allowed = vec![p.host_cidr()];
        if self.topology == Topology::Hub && !self.is_hub(&me.node) {
            allowed.extend(self.subnet());
        }
        allowed.extend(p.allowed_ips.iter().cloned());
        allowed.dedup();
        allowed
    }

    /// The network all member addresses are in (from the hub's, else the first member's
    /// address and prefix), e.g. `10.8.0.0/24`.
    pub fn subnet(&self) -> Option<String> {
        let m = self
            .hub
            .as_deref()
            .and_then(|h| self.member(h))
            .or(self.members.first())?;
        match m.address {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(m.prefix)).unwrap_or(0);
                let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
                Some(format!("{net}/{}", m.prefix))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(m.prefix))
                    .unwrap_or(0);
                let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
                Some(format!("{net}/{}", m.prefix))
            }
        }
    }
}
