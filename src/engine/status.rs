//! `status`: reachability, units, listening ports, drift and end-to-end probes, read-only.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;

use super::probe::{self, ProbeResult};
use super::{backends, gather, tunnels, workloads};
use crate::inventory::Inventory;
use crate::plan::{HostPlan, Plan};
use crate::shell::quote;
use crate::transport::{self, ConnectOptions, Transport};

/// One line of the status table.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub node: String,
    /// What was checked: `ssh`, `unit NAME`, `port N`, `file PATH`, `route SERVICE:PORT`.
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

fn check(node: &str, what: String, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        node: node.to_string(),
        check: what,
        ok,
        detail: detail.into(),
    }
}

/// Reads text files from a host (base64 on the wire); missing files are left out.
pub async fn read_files(
    t: &dyn Transport,
    paths: &[&str],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if paths.is_empty() {
        return Ok(out);
    }
    let list: Vec<String> = paths.iter().map(|p| quote(p)).collect();
    let script = format!(
        "for p in {}; do if [ -f \"$p\" ]; then echo \"@content $p\"; base64 -w0 \"$p\"; echo; fi; done\n",
        list.join(" ")
    );
    let res = t.run(&script).await?;
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

/// Every check of one host.
pub async fn host_checks(inv: &Inventory, plan: &HostPlan, opts: &ConnectOptions) -> Vec<Check> {
    let node = &plan.node;
    let n = inv.node(node).expect("plan nodes are in the inventory");
    let t = match transport::connect(n, opts).await {
        Ok(t) => t,
        Err(e) => return vec![check(node, "ssh".into(), false, e.to_string())],
    };
    let mut out = vec![check(node, "ssh".into(), true, "reachable")];
    let script = format!(
        "{}echo \"@listen-begin\"; ss -Htln 2>/dev/null | awk '{{print \"@listen \" $4}}'\n{}",
        gather::script(plan),
        backends::script(inv, node) + &tunnels::script(inv, node) + &workloads::script(inv, node)
    );
    let facts = match t.run(&script).await {
        Ok(o) if o.status == 0 => match gather::parse(&o.stdout) {
            Ok(f) => (f, o.stdout),
            Err(e) => {
                out.push(check(node, "state".into(), false, format!("{e:#}")));
                return out;
            }
        },
        Ok(o) => {
            out.push(check(
                node,
                "state".into(),
                false,
                o.stderr.trim().to_string(),
            ));
            return out;
        }
        Err(e) => {
            out.push(check(node, "state".into(), false, e.to_string()));
            return out;
        }
    };
    let (facts, stdout) = facts;

    let mut units: Vec<String> = plan.units.iter().map(|u| u.name.clone()).collect();
    for u in &facts.manifest.units {
        if !units.contains(&u.unit) {
            units.push(u.unit.clone());
        }
    }
    for u in units {
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
        out.push(check(node, format!("unit {u}"), ok, detail));
    }

    // Files: changed by hand since the last deploy (drift), or not yet deployed.
    for r in &plan.resources {
        let live = facts.files.get(&r.path).cloned().flatten();
        let recorded = facts.manifest.file(&r.path);
        let (ok, detail) = match (&live, recorded) {
            (None, _) => (false, "missing; run deploy".to_string()),
            (Some(l), Some(m)) if l.sha256 != m.sha256 => (
                false,
                "drifted: changed on the host since the last deploy".to_string(),
            ),
            (Some(l), _) if l.sha256 != r.sha256 => (
                false,
                "out of date: the inventory changed; run deploy".to_string(),
            ),
            _ => (true, "as deployed".to_string()),
        };
        if !ok {
            out.push(check(node, format!("file {}", r.path), ok, detail));
        } else if facts.not_live.contains(&r.path) {
            out.push(check(
                node,
                format!("file {}", r.path),
                false,
                "what it configures is not in effect (changed by hand?); run deploy",
            ));
        }
    }
    let drift_free = out.iter().filter(|c| c.check.starts_with("file ")).count() == 0;
    if drift_free {
        out.push(check(
            node,
            "files".into(),
            true,
            format!("{} managed file(s) as deployed", plan.resources.len()),
        ));
    }

    out.extend(backends::checks(inv, node, &stdout, &facts));
    out.extend(tunnels::checks(inv, node, &stdout));
    out.extend(workloads::checks(inv, node, &stdout));

    let listening: Vec<u16> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("@listen "))
        .filter_map(|a| a.rsplit(':').next()?.parse().ok())
        .collect();
    for r in inv.routes.iter().filter(|r| &r.proxy_node == node) {
        let ok = listening.contains(&r.port);
        out.push(check(
            node,
            format!("port {}", r.port),
            ok,
            if ok { "listening" } else { "nothing listens" },
        ));
    }
    out
}

/// End-to-end probes of every route whose proxy node is in the plan.
pub async fn route_checks(
    inv: &Inventory,
    plan: &Plan,
    opts: &ConnectOptions,
    probe_from: Option<&str>,
) -> Vec<Check> {
    let from = match probe_from.and_then(|n| inv.node(n)) {
        Some(n) => match transport::connect(n, opts).await {
            Ok(t) => Some(t),
            Err(e) => {
                return vec![check(&n.name, "probe-from".into(), false, e.to_string())];
            }
        },
        None => None,
    };
    let mut out = Vec::new();
    for r in &inv.routes {
        if !plan.hosts.iter().any(|h| h.node == r.proxy_node) {
            continue;
        }
        let proxy = inv.node(&r.proxy_node).expect("validated");
        let host = proxy
            .public_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| proxy.ssh_destination());
        let res = match &from {
            Some(t) => probe::from_host(t.as_ref(), &host, r.port).await,
            None => probe::from_here(&host, r.port).await,
        };
        let (ok, detail) = match res {
            ProbeResult::Reached => (
                true,
                format!(
                    "{host}:{} reaches {}:{}",
                    r.port, r.target_node, r.target_port
                ),
            ),
            ProbeResult::Failed(e) => (false, e),
        };
        out.push(check(
            &r.proxy_node,
            format!("route {}:{}", r.service, r.port),
            ok,
            detail,
        ));
    }
    out
}
