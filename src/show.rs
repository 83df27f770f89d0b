//! What vds-proxy prints for people (text) or programs (JSON), secrets redacted: the plan
//! (`show`) and the status table (`status`).

use std::fmt::Write;

use crate::contract::Check;
pub use crate::contract::table::table;
use crate::inventory::{Connection, Inventory};
use crate::plan::{HostPlan, Plan};
use crate::redact::{MASK, Redactor};
use crate::resources::{Content, Resource};

/// The plan as text: per node, each resource with its content, then the activation steps.
/// Secrets are left out by structure: a resource that holds one shows neither its content
/// nor its digest.
pub fn plan_text(inv: &Inventory, plan: &Plan) -> String {
    let mut out = String::new();
    for host in &plan.hosts {
        let node = inv
            .node(&host.node)
            .expect("plan nodes come from the inventory");
        let via = match node.connection {
            Connection::Local => "local".to_string(),
            Connection::Ssh => format!(
                "ssh {}@{}:{}{}",
                node.ssh_user,
                node.ssh_destination(),
                node.ssh_port,
                if node.sudo { " with sudo" } else { "" }
            ),
        };
        let _ = writeln!(out, "node {} ({via})", host.node);
        if host.resources.is_empty() {
            let _ = writeln!(out, "  nothing to deploy");
        }
        for r in &host.resources {
            resource_text(&mut out, inv, r);
        }
        let actions = host.first_deploy_actions();
        if !actions.is_empty() {
            let _ = writeln!(out, "  activate:");
            for a in actions {
                let _ = writeln!(out, "    {a}");
            }
        }
        out.push('\n');
    }
    out
}

fn resource_text(out: &mut String, inv: &Inventory, r: &Resource) {
    let kind = serde_json::to_value(r.kind).expect("kind serializes");
    let _ = writeln!(
        out,
        "  {:<6} {}  {:04o} {}:{}",
        kind.as_str().unwrap_or("?"),
        r.path,
        r.mode,
        r.owner,
        r.group
    );
    match &r.content {
        Content::Local { source, size, arch } => {
            let _ = writeln!(
                out,
                "    sha256 {}, {} bytes for {}, from {}",
                r.sha256,
                size,
                arch,
                source.display()
            );
        }
        Content::Text(t) if r.secret => {
            let named = inv.secrets_named_in(t);
            if named.is_empty() {
                let _ = writeln!(out, "    {MASK} (derived from a secret)");
            } else {
                let _ = writeln!(out, "    {MASK} (holds {})", named.join(", "));
            }
        }
        Content::Text(t) => {
            for line in t.lines() {
                let _ = writeln!(out, "    | {line}");
            }
        }
    }
}

/// The plan as JSON; secret resources have their content and digest replaced by the mask
/// (a digest of a weak secret can be reversed with a dictionary).
pub fn plan_json(plan: &Plan) -> String {
    let hosts: Vec<HostPlan> = plan
        .hosts
        .iter()
        .map(|h| {
            let mut h = h.clone();
            for r in h.resources.iter_mut().filter(|r| r.secret) {
                r.content = Content::Text(MASK.to_string());
                r.sha256 = MASK.to_string();
            }
            h
        })
        .collect();
    let value = serde_json::json!({
        "hosts": hosts.iter().map(|h| serde_json::json!({
            "node": h.node,
            "connection": h.connection,
            "resources": h.resources,
            "units": h.units,
            "activate": h.first_deploy_actions(),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&value).expect("plan serializes") + "\n"
}

/// The status table, ending with `healthy` or `UNHEALTHY`.
pub fn status_text(checks: &[Check], redactor: &Redactor) -> String {
    let mut rows = vec![[
        "NODE".to_string(),
        "CHECK".into(),
        "STATE".into(),
        "DETAIL".into(),
    ]];
    for c in checks {
        rows.push([
            c.node.clone(),
            c.check.clone(),
            if c.ok { "ok" } else { "FAIL" }.to_string(),
            c.detail.clone(),
        ]);
    }
    let verdict = if checks.iter().all(|c| c.ok) {
        "healthy\n"
    } else {
        "UNHEALTHY\n"
    };
    redactor.apply(&(table(&rows) + verdict))
}

/// The status checks as JSON.
pub fn status_json(checks: &[Check], redactor: &Redactor) -> String {
    let healthy = checks.iter().all(|c| c.ok);
    let value = serde_json::json!({ "healthy": healthy, "checks": checks });
    redactor.apply(&serde_json::to_string_pretty(&value).expect("checks serialize")) + "\n"
}
