//! k3s deployment readiness for `status`, read with `kubectl` on the k3s node.

use std::collections::BTreeMap;

use super::model::K3s;
use crate::engine::status::Check;
use crate::shell::quote;

/// `k8s_ready` (status.sh) when `node` is the k3s node and runs apps.
pub fn script(k: Option<&K3s>, node: &str) -> String {
    match k.filter(|k| k.node == node && !k.apps.is_empty()) {
        Some(k) => format!(
            "{}k8s_ready {}\n",
            include_str!("status.sh"),
            quote(&k.namespace)
        ),
        None => String::new(),
    }
}

/// One check per app: its deployment has as many ready replicas as it wants.
pub fn checks(k: Option<&K3s>, node: &str, stdout: &str) -> Vec<Check> {
    let Some(k) = k.filter(|k| k.node == node) else {
        return Vec::new();
    };
    let mut ready: BTreeMap<String, u32> = BTreeMap::new();
    for l in stdout.lines().filter_map(|l| l.strip_prefix("@k8s ")) {
        let mut f = l.split_whitespace();
        if let Some(name) = f.next() {
            ready.insert(
                name.to_string(),
                f.next().and_then(|r| r.parse().ok()).unwrap_or(0),
            );
        }
    }
    let errors: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@k8s-err "))
        .collect();
    let no_kubectl = stdout.lines().any(|l| l == "@k8s-nokubectl");
    k.apps
        .iter()
        .map(|a| {
            let (ns, name, wanted) = (&k.namespace, &a.name, a.replicas);
            let (ok, detail) = if no_kubectl {
                (
                    false,
                    format!(
                        "kubectl not found on {node}: cannot read readiness (is k3s installed?)"
                    ),
                )
            } else if !errors.is_empty() {
                (false, format!("kubectl failed: {}", errors.join(" ")))
            } else {
                match ready.get(name) {
                    None => (
                        false,
                        "no such deployment yet (k3s applies the manifest shortly after deploy)"
                            .to_string(),
                    ),
                    Some(&r) => (r >= wanted, format!("{r}/{wanted} replicas ready")),
                }
            };
            Check::new(node, format!("k3s deployment {ns}/{name}"), ok, detail)
        })
        .collect()
}
