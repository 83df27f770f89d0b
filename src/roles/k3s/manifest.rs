//! Kubernetes manifests for k3s's auto-deploy directory: k3s applies what appears there,
//! but keeps the objects when the file is deleted, so pruning deletes them first.
//!
//! No host-side validator: a server-side dry run needs the namespace the same delivery
//! creates. Rendered manifests are checked against the official schemas in the tests.

use crate::resources::{Kind, KindOps, Resource};
use crate::shell::quote;

/// A Kubernetes manifest in k3s's auto-deploy directory.
pub const K8S: Kind = Kind::new("k8s", &K8sOps);

/// Behaviour of [`K8S`].
pub struct K8sOps;

impl KindOps for K8sOps {
    fn validate(&self, _res: &Resource, _staged: &str) -> Option<String> {
        None
    }

    fn before_remove(&self, path: &str) -> Option<String> {
        Some(format!(
            "k3s kubectl delete --ignore-not-found -f {}",
            quote(path)
        ))
    }
}

/// A manifest file `name` in the auto-deploy directory `dir` (0600: it may hold env values).
pub fn manifest(dir: &str, name: &str, text: String) -> Resource {
    Resource::text(K8S, format!("{dir}/{name}"), text, 0o600)
}
