//! `status`: reachability, units, drift, what each role checks, and end-to-end probes —
//! read-only. One round trip per host: the gather script with every system's status lines.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::gather::{self, LIBRARY, call};
use super::probe::{self, ProbeResult};
pub use crate::contract::Check;
use crate::contract::{StatusInput, Systems};
use crate::inventory::Inventory;
use crate::plan::{HostPlan, Plan};
use crate::transport::{self, ConnectOptions, Transport};

/// Reads text files from a host (base64 on the wire); missing files are left out.
pub async fn read_files(
    t: &dyn Transport,
    paths: &[&str],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if paths.is_empty() {
        return Ok(out);
    }
    let res = t
        .run(&format!("{LIBRARY}{}", call("read_files", paths)))
        .await?;
    let mut lines = res.stdout.lines();
    while let Some(line) = lines.next() {
        if let Some(path) = line.strip_prefix("@content ") {
            let data = lines.next().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .unwrap_or_default();
            out.insert(
                path.to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            );
        }
    }
    Ok(out)
}

/// The status script of `plan` (secret files hashed with `key`): the facts, the listening
/// ports, then every system's lines.
pub fn script(inv: &Inventory, plan: &HostPlan, systems: &Systems, key: &str) -> String {
    let mut extra = String::from("listening\n");
    for s in &systems.status {
        extra += &s.status_script(inv, &plan.node);
    }
    gather::script_with(plan, &extra, key)
}

/// Every check of one host.
pub async fn host_checks(
    inv: &Inventory,
    plan: &HostPlan,
    opts: &ConnectOptions,
    systems: &Systems,
) -> Vec<Check> {
    let node = plan.node.as_str();
    let n = inv.node(node).expect("plan nodes are in the inventory");
    let t = match transport::connect(n, opts).await {
        Ok(t) => t,
        Err(e) => return vec![Check::new(node, "ssh", false, e.to_string())],
    };
    let mut out = vec![Check::new(node, "ssh", true, "reachable")];
    let key = gather::new_key();
    let stdout = match t.run(&script(inv, plan, systems, &key)).await {
        Ok(o) if o.status == 0 => o.stdout,
        Ok(o) => {
            out.push(Check::new(node, "state", false, o.stderr.trim()));
            return out;
        }
        Err(e) => {
            out.push(Check::new(node, "state", false, e.to_string()));
            return out;
        }
    };
    let facts = match gather::parse(&stdout, &key) {
        Ok(f) => f,
        Err(e) => {
            out.push(Check::new(node, "state", false, format!("{e:#}")));
            return out;
        }
    };
    let deploy = match (facts.interrupted, facts.applying) {
        _ if !facts.stuck.is_empty() => Some(format!(
            "a failed deploy's rollback could not put back {}: the host is neither the old nor the new version. \
             It tries again by itself (every 5 s for 30 minutes after the deploy, and at its next boot); \
             the next deploy resolves it",
            facts.stuck.join(", ")
        )),
        (true, _) => Some(
            "left by an interrupted deploy (the host was rebooted or the apply killed): what is on disk may not be what runs; \
             the next deploy rolls it back first"
                .to_string(),
        ),
        (false, true) => Some("a deploy is applying changes right now".to_string()),
        (false, false) => None,
    };
    if let Some(detail) = deploy {
        out.push(Check::new(node, "deploy", false, detail));
    }
    out.extend(unit_checks(plan, &facts));
    out.extend(file_checks(plan, &facts));
    let listening: Vec<u16> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@listen "))
        .filter_map(|a| a.rsplit(':').next()?.parse().ok())
        .collect();
    let units: BTreeMap<String, String> = facts
        .units
        .iter()
        .map(|(u, f)| (u.clone(), f.active.clone()))
        .collect();
    let seen = StatusInput {
        stdout: &stdout,
        units: &units,
        listening: &listening,
    };
    for s in &systems.status {
        out.extend(s.status_checks(inv, node, &seen));
    }
    out
}

/// Every planned unit must be active; a managed unit the plan no longer has is reported.
fn unit_checks(plan: &HostPlan, facts: &gather::Facts) -> Vec<Check> {
    let mut units: Vec<String> = plan.units.iter().map(|u| u.name.clone()).collect();
    for u in &facts.manifest.units {
        if !units.contains(&u.unit) {
            units.push(u.unit.clone());
        }
    }
    units
        .into_iter()
        .map(|u| {
            let f = facts.unit(&u);
            let planned = plan.units.iter().any(|p| p.name == u);
            let (ok, detail) = match (planned, f.active.as_str()) {
                (true, "active") => (true, "active".to_string()),
                (true, other) => (
                    false,
                    format!(
                        "{} (expected active)",
                        if other.is_empty() { "unknown" } else { other }
                    ),
                ),
                (false, _) => (
                    false,
                    "no longer in the inventory; run deploy to remove it".to_string(),
                ),
            };
            Check::new(&plan.node, format!("unit {u}"), ok, detail)
        })
        .collect()
}

/// Files changed by hand since the last deploy (drift), not yet deployed, or whose
/// configuration is not in effect; one summary row when all are as deployed.
fn file_checks(plan: &HostPlan, facts: &gather::Facts) -> Vec<Check> {
    let mut out = Vec::new();
    for r in &plan.resources {
        let live = facts.files.get(&r.path).cloned().flatten();
        let recorded = facts.manifest.file(&r.path);
        let problem = match (&live, recorded) {
            (None, _) if facts.present.contains(&r.path) => None,
            (None, _) => Some("missing; run deploy"),
            (Some(l), Some(m)) if !m.sha256.is_empty() && l.sha256 != m.sha256 => {
                Some("drifted: changed on the host since the last deploy")
            }
            // A secret file is compared with the plan only (by a digest keyed for this run).
            (Some(l), _) if l.sha256 != gather::digest(r, &facts.key) => Some(if r.secret {
                "differs from the inventory (changed on the host, or the secret changed); run deploy"
            } else {
                "out of date: the inventory changed; run deploy"
            }),
            _ if facts.not_live.contains(&r.path) => {
                Some("what it configures is not in effect (changed by hand?); run deploy")
            }
            _ => None,
        };
        if let Some(p) = problem {
            out.push(Check::new(&plan.node, format!("file {}", r.path), false, p));
        }
    }
    if out.is_empty() {
        out.push(Check::new(
            &plan.node,
            "files",
            true,
            format!("{} managed file(s) as deployed", plan.resources.len()),
        ));
    }
    out
}

/// End-to-end probes of what the planned nodes serve, from here or from `probe_from`.
pub async fn probe_checks(
    inv: &Inventory,
    plan: &Plan,
    opts: &ConnectOptions,
    probe_from: Option<&str>,
    systems: &Systems,
) -> Vec<Check> {
    let from = match probe_from.and_then(|n| inv.node(n)) {
        Some(n) => match transport::connect(n, opts).await {
            Ok(t) => Some(t),
            Err(e) => return vec![Check::new(&n.name, "probe-from", false, e.to_string())],
        },
        None => None,
    };
    // All at once: a probe that reaches its target waits out the close window (0.7 s),
    // which one after the other would cost 70 s for 100 probes.
    let probes = plan.hosts.iter().flat_map(|h| {
        systems
            .probes
            .iter()
            .flat_map(|s| s.probes(inv, &h.node))
            .collect::<Vec<_>>()
    });
    let from = from.as_deref();
    super::join_all(probes.map(|p| async move {
        let res = match from {
            Some(t) => probe::from_host(t, &p.host, p.port).await,
            None => probe::from_here(&p.host, p.port).await,
        };
        let (ok, detail) = match res {
            ProbeResult::Reached => (true, p.reached),
            ProbeResult::Failed(e) => (false, e),
        };
        Check::new(&p.node, p.check, ok, detail)
    }))
    .await
}
