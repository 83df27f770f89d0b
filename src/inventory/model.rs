//! The validated inventory: nodes, routes and replicated services.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

/// Everything `nodes.json` declares, after validation.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// The file it was read from.
    pub source: PathBuf,
    pub nodes: Vec<Node>,
    pub routes: Vec<Route>,
    pub services: Vec<Service>,
    pub wireguard: Vec<WgNetwork>,
    pub k3s: Option<K3s>,
}

impl Inventory {
    /// The address haproxy connects to the replicas of `s` on: the balancer's
    /// `backend_address`, else for a transparent balancer the node's mesh or public address
    /// (a reply from 127.0.0.1 cannot be routed back to a client address), else 127.0.0.1.
    pub fn backend_address(&self, s: &Service) -> Option<IpAddr> {
        let b = s.balancer.as_ref()?;
        if let Some(a) = b.backend_address {
            return Some(a);
        }
        if !b.transparent {
            return Some(IpAddr::from([127, 0, 0, 1]));
        }
        let node = self.node(&s.node)?;
        node.tailscale_ip.or(node.public_ip)
    }
}

/// How vds-proxy reaches a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// Over SSH (the default).
    Ssh,
    /// The machine vds-proxy runs on, without SSH.
    Local,
}

/// A machine in the inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: String,
    pub public_ip: Option<IpAddr>,
    /// The node's mesh address (Tailscale or WireGuard): where routes reach it.
    pub tailscale_ip: Option<IpAddr>,
    pub domain: Option<String>,
    pub ssh_user: String,
    /// Address to SSH to; defaults to `tailscale_ip`, then `public_ip`, then `name`.
    pub ssh_host: Option<String>,
    pub ssh_port: u16,
    /// Wrap remote commands in `sudo -n`; defaults to true when `ssh_user` is not root.
    pub sudo: bool,
    pub connection: Connection,
    /// Informational port map from the seed format (`{"socat": [8443]}`).
    pub ports: BTreeMap<String, Vec<u16>>,
    pub ram_gb: Option<f64>,
    pub active: bool,
}

impl Node {
    /// The address an SSH connection goes to.
    pub fn ssh_destination(&self) -> String {
        self.ssh_host
            .clone()
            .or_else(|| self.tailscale_ip.map(|ip| ip.to_string()))
            .or_else(|| self.public_ip.map(|ip| ip.to_string()))
            .unwrap_or_else(|| self.name.clone())
    }

    /// The address routes use to reach this node over the mesh.
    pub fn mesh_address(&self) -> Option<IpAddr> {
        self.tailscale_ip.or(self.public_ip)
    }
}

/// Which program forwards a route's port on its proxy node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarder {
    /// The relay bundled in vds-proxy (`vds-proxy relay`), one process per node.
    Relay,
    /// `socat TCP-LISTEN:...,fork`, exactly as `vds_proxy.sh` deployed it.
    Socat,
}

impl Forwarder {
    /// The name used in the inventory and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Forwarder::Relay => "relay",
            Forwarder::Socat => "socat",
        }
    }
}

/// A public port on a proxy node forwarded to a port on a target node.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub domain: Option<String>,
    pub port: u16,
    /// Address the proxy node listens on (default `0.0.0.0`).
    pub listen: IpAddr,
    pub proxy_node: String,
    pub target_node: String,
    pub target_port: u16,
    pub service: String,
    pub ssl: bool,
    pub description: Option<String>,
    pub forwarder: Forwarder,
}

/// A service run as N identical replicas on one node (seed 003's MTProxy).
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub node: String,
    /// How many instances run (`mtproxy_replicas`).
    pub replicas: u32,
    /// Port of replica 1; replica n listens on `base_port + n - 1` (`mtproxy_base_port`).
    pub base_port: u16,
    /// Command line of one replica; `{port}` and `{secret}` are substituted per instance.
    pub exec: Vec<String>,
    /// A secret handed to the replicas (e.g. the MTProxy 32-hex secret); never printed.
    #[serde(skip)]
    pub secret: Option<String>,
    pub description: Option<String>,
    pub balancer: Option<Balancer>,
    /// Run each replica as this container image (`docker run`, as seed 003 does); `exec`
    /// then holds extra arguments for the container.
    pub image: Option<String>,
    /// The port the container listens on inside (the MTProxy image: 443).
    pub container_port: u16,
}

impl Service {
    /// Port of replica `n` (1-based).
    pub fn replica_port(&self, n: u32) -> u16 {
        self.base_port + (n as u16) - 1
    }
}

/// The HAProxy frontend in front of a replicated service.
#[derive(Debug, Clone, Serialize)]
pub struct Balancer {
    pub port: u16,
    pub algorithm: String,
    pub check: String,
    pub transparent: bool,
    pub stats_socket: String,
    pub stats_address: String,
    /// Seconds a scale-down waits for a removed replica's connections to close.
    pub drain_timeout: u32,
    /// Where haproxy reaches the replicas; see [`Inventory::backend_address`].
    pub backend_address: Option<IpAddr>,
}

/// Who peers with whom in a WireGuard network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Every member peers with every other (two members: a point-to-point pair).
    Mesh,
    /// Members peer only with the hub (seed 001: workers send their egress through the VDS).
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

/// Workloads on a k3s cluster (seeds 000 and 001), delivered as manifests into the
/// auto-deploy directory of its server node.
#[derive(Debug, Clone, Serialize)]
pub struct K3s {
    /// The k3s server node.
    pub node: String,
    pub namespace: String,
    /// Where k3s picks up manifests (`/var/lib/rancher/k3s/server/manifests`).
    pub manifests_dir: String,
    pub apps: Vec<K3sApp>,
    pub jobs: Vec<K3sJob>,
    /// The WireGuard egress DaemonSet of seed 001.
    pub egress: Option<K3sEgress>,
}

/// A Deployment with its Service.
#[derive(Debug, Clone, Serialize)]
pub struct K3sApp {
    pub name: String,
    pub image: String,
    pub replicas: u32,
    /// The container port.
    pub port: u16,
    /// Published on the node's own address (seed 000's `hostPort: 8443`).
    pub host_port: Option<u16>,
    /// Published through a NodePort Service (30000-32767).
    pub node_port: Option<u16>,
    /// A host directory of TLS files (real files, not symlinks) mounted at `/certs`.
    pub tls_dir: Option<String>,
    /// Label `vds-proxy/role` of its pods, e.g. `control`.
    pub role: Option<String>,
    /// Only pods with these roles may connect to it (a NetworkPolicy); empty: anyone.
    pub allow_from: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Like `env`, but kept in a Secret and never printed (redacted in show, diffs, status).
    #[serde(skip)]
    pub secret_env: BTreeMap<String, String>,
}

/// A batch Job; its pods get role `job` and accept no connections (jobs cannot reach
/// each other).
#[derive(Debug, Clone, Serialize)]
pub struct K3sJob {
    pub name: String,
    pub image: String,
    pub parallelism: u32,
    pub completions: u32,
    /// Finished Jobs (and their pods) are deleted after this many seconds.
    pub ttl_seconds: u32,
}

/// A privileged DaemonSet that brings up `wg0` on every node from a Secret.
#[derive(Debug, Clone, Serialize)]
pub struct K3sEgress {
    pub image: String,
    /// The Secret holding the WireGuard config (created by the operator; never rendered).
    pub secret: String,
}
