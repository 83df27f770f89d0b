//! Kubernetes manifests for k3s's auto-deploy directory: k3s applies what appears there.
//!
//! No host-side validator: a server-side dry run needs the namespace the same delivery
//! creates. Rendered manifests are checked against the official schemas in the tests.

use super::{Kind, KindOps, Resource};

/// Behaviour of [`super::Kind::K8s`].
pub struct K8sOps;

impl KindOps for K8sOps {
    fn validate(&self, _res: &Resource, _staged: &str) -> Option<String> {
        None
    }
}

/// A manifest file `name` in the auto-deploy directory `dir` (0600: it may hold env values).
pub fn manifest(dir: &str, name: &str, text: String) -> Resource {
    Resource::text(Kind::K8s, format!("{dir}/{name}"), text, 0o600)
}
