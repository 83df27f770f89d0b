//! k3s deployment readiness for `status`, read with `kubectl` on the k3s node.

use std::collections::BTreeMap;

use super::status::Check;
use crate::inventory::Inventory;
use crate::roles::k3s;
use crate::shell::quote;

/// Script lines printing `@k8s NAME READY WANTED` per deployment of the namespace, when
/// `node` is the k3s node.
pub fn script(inv: &Inventory, node: &str) -> String {
    let Some(k) = inv
        .k3s
        .as_ref()
        .filter(|k| k.node == node && !k.apps.is_empty())
    else {
        return String::new();
    };
    format!(
        "if command -v kubectl >/dev/null 2>&1; then kubectl -n {} get deployments -o jsonpath='{{range .items[*]}}@k8s {{.metadata.name}} {{.status.readyReplicas}} {{.spec.replicas}}{{\"\\n\"}}{{end}}' 2>&1 | sed '/^@k8s /!s/^/@k8s-err /'; else echo '@k8s-nokubectl'; fi\n",
        quote(&k.namespace)
    )
}

/// One check per app: its deployment has as many ready replicas as it wants.
pub fn checks(inv: &Inventory, node: &str, stdout: &str) -> Vec<Check> {
    let Some(k) = inv.k3s.as_ref().filter(|k| k.node == node) else {
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
    k3s::deployments(k)
        .into_iter()
        .map(|(ns, name, wanted)| {
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
                match ready.get(&name) {
                    None => (
                        false,
                        "no such deployment yet (k3s applies the manifest shortly after deploy)"
                            .to_string(),
                    ),
                    Some(&r) => (r >= wanted, format!("{r}/{wanted} replicas ready")),
                }
            };
            Check {
                node: node.to_string(),
                check: format!("k3s deployment {ns}/{name}"),
                ok,
                detail,
            }
        })
        .collect()
}
