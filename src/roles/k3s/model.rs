//! k3s workloads as the inventory declares them.

use std::collections::BTreeMap;

use serde::Serialize;

/// Workloads on a k3s cluster, delivered as manifests into the auto-deploy directory of
/// its server node.
#[derive(Debug, Clone, Serialize)]
pub struct K3s {
    /// The k3s server node.
    pub node: String,
    pub namespace: String,
    /// Where k3s picks up manifests (`/var/lib/rancher/k3s/server/manifests`).
    pub manifests_dir: String,
    pub apps: Vec<K3sApp>,
    pub jobs: Vec<K3sJob>,
    /// A WireGuard egress DaemonSet: every node's traffic leaves through a tunnel.
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
    /// Published on the node's own address (a `hostPort`, e.g. 8443).
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
