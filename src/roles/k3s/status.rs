//! k3s status, read on the k3s node with its kubectl (`status.sh`): each app's deployment
//! readiness, and objects vds-proxy made that the inventory no longer has (left behind).

use std::collections::{BTreeMap, BTreeSet};

use super::model::K3s;
use crate::contract::Check;
use crate::shell::quote;

/// The status lines when `node` is the k3s node.
pub fn script(k: Option<&K3s>, node: &str) -> String {
    let Some(k) = k.filter(|k| k.node == node) else {
        return String::new();
    };
    let ns = quote(&k.namespace);
    let ready = if k.apps.is_empty() {
        String::new()
    } else {
        format!("k8s_ready {ns}\n")
    };
    format!("{}{ready}k8s_objects {ns}\n", include_str!("status.sh"))
}

/// The names (label `app.kubernetes.io/name`) objects of `k` may carry.
fn expected(k: &K3s) -> BTreeSet<&str> {
    let apps = k.apps.iter().map(|a| a.name.as_str());
    let jobs = k.jobs.iter().map(|j| j.name.as_str());
    let egress = k.egress.iter().map(|_| "wg-egress");
    apps.chain(jobs).chain(egress).chain([""]).collect()
}

/// One check per app (its deployment has as many ready replicas as it wants), and one per
/// object left behind.
pub fn checks(k: Option<&K3s>, node: &str, stdout: &str) -> Vec<Check> {
    let Some(k) = k.filter(|k| k.node == node) else {
        return Vec::new();
    };
    let tagged = |tag: &'static str| {
        stdout
            .lines()
            .filter_map(move |l| l.strip_prefix(tag))
            .collect::<Vec<&str>>()
    };
    let mut ready: BTreeMap<String, u32> = BTreeMap::new();
    for l in tagged("@k8s ") {
        let mut f = l.split_whitespace();
        if let Some(name) = f.next() {
            ready.insert(
                name.to_string(),
                f.next().and_then(|r| r.parse().ok()).unwrap_or(0),
            );
        }
    }
    let errors = tagged("@k8s-err ");
    let no_kubectl = stdout.lines().any(|l| l == "@k8s-nokubectl");
    let ns = &k.namespace;
    let mut out: Vec<Check> = k
        .apps
        .iter()
        .map(|a| {
            let (name, wanted) = (&a.name, a.replicas);
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
        .collect();
    let wanted = expected(k);
    for l in tagged("@k8s-obj ") {
        let (object, app) = l.split_once(' ').unwrap_or((l, ""));
        if !wanted.contains(app) {
            let (kind, name) = object.split_once('/').unwrap_or((object, ""));
            out.push(Check::new(
                node,
                format!("k3s object {ns}/{object}"),
                false,
                format!(
                    "left behind: \"{app}\" is no longer in the inventory; delete it with `k3s kubectl -n {ns} delete {} {name}`",
                    kind.to_lowercase()
                ),
            ));
        }
    }
    out
}
