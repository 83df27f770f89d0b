//! The alert rules, generated from the inventory: one list of alerts (name, default `for:`,
//! what it means and what to do), and the Prometheus expressions for what this inventory
//! deploys.

use serde::Serialize;

use super::{Duration, Monitoring};
use crate::inventory::Inventory;
use crate::roles::{backups, routes, wireguard};

/// One alert vds-proxy generates.
pub struct Alert {
    pub name: &'static str,
    /// How long its condition must hold before it fires, unless the inventory says.
    pub for_: Duration,
    pub severity: &'static str,
    /// One line, with Prometheus' `{{ $labels.… }}`.
    pub summary: &'static str,
    /// What to do.
    pub runbook: &'static str,
}

/// Every alert, in the order the rules file lists them.
pub const ALERTS: &[Alert] = &[
    Alert {
        name: "NodeDown",
        for_: Duration::mins(1),
        severity: "critical",
        summary: "node {{ $labels.node }} does not answer the monitoring node",
        runbook: "Is the node up, and reachable over the mesh from the monitoring node? On the node: \
                  systemctl status prometheus-node-exporter; then vds-proxy status --node NODE.",
    },
    Alert {
        name: "MonitoringFactsStale",
        for_: Duration::mins(5),
        severity: "warning",
        summary: "node {{ $labels.node }} stopped writing its vds-proxy facts",
        runbook: "On the node: systemctl status vds-monitoring-facts.timer vds-monitoring-facts.service; a deploy puts them back.",
    },
    Alert {
        name: "TunnelDown",
        for_: Duration::secs(0),
        severity: "critical",
        summary: "WireGuard {{ $labels.interface }} on {{ $labels.node }}: no handshake with {{ $labels.peer }} for {{ $value | humanizeDuration }}",
        runbook: "Is the peer up, and its endpoint's UDP port open? On both nodes: wg show; systemctl status wg-quick@INTERFACE; vds-proxy status.",
    },
    Alert {
        name: "BackendDown",
        for_: Duration::secs(30),
        severity: "critical",
        summary: "HAProxy on {{ $labels.node }} took {{ $labels.server }} of {{ $labels.service }} out (its check fails)",
        runbook: "On the node: systemctl status SERVICE@N (the replica's unit) and its journal; the other replicas carry the traffic meanwhile.",
    },
    Alert {
        name: "RouteUnreachable",
        for_: Duration::mins(1),
        severity: "critical",
        summary: "route {{ $labels.route }} ({{ $labels.instance }}) does not accept connections",
        runbook: "Is the relay or forwarder on the proxy node running, and the target reachable over the mesh? vds-proxy status --node PROXY_NODE.",
    },
    Alert {
        name: "RelayDown",
        for_: Duration::mins(1),
        severity: "critical",
        summary: "the relay on {{ $labels.node }} reports nothing: it is down (every route through it is)",
        runbook: "On the node: systemctl status vds-relay.service and its journal; vds-proxy deploy starts it again.",
    },
    Alert {
        name: "SiteDown",
        for_: Duration::mins(2),
        severity: "critical",
        summary: "site {{ $labels.site }} on {{ $labels.node }} does not answer with 2xx",
        runbook: "On the node: systemctl status nginx; nginx -t; and the app behind the site.",
    },
    Alert {
        name: "CertificateExpiresSoon",
        for_: Duration::mins(60),
        severity: "warning",
        summary: "the certificate of {{ $labels.site }} expires in {{ $value | humanizeDuration }}",
        runbook: "Renewal is failing: on the node, journalctl -u certbot.timer and /usr/local/lib/vds-proxy/web-certs check; then deploy.",
    },
    Alert {
        name: "RegistryDown",
        for_: Duration::mins(1),
        severity: "critical",
        summary: "the registry on {{ $labels.node }} is down or cannot write its store (/healthz fails)",
        runbook: "On the node: systemctl status vds-registry; curl -s localhost:PORT/healthz names the file it cannot write.",
    },
    Alert {
        name: "BackupTooOld",
        for_: Duration::secs(0),
        severity: "critical",
        summary: "the last good dump of {{ $labels.database }} on {{ $labels.node }} is {{ $value | humanizeDuration }} old",
        runbook: "vds-proxy backup list NODE; on the node: journalctl -u vds-backup-DATABASE.service.",
    },
    Alert {
        name: "BackupFailed",
        for_: Duration::secs(0),
        severity: "critical",
        summary: "the last backup run of {{ $labels.database }} on {{ $labels.node }} failed",
        runbook: "On the node: journalctl -u vds-backup-DATABASE.service; fix, then systemctl start vds-backup-DATABASE.service.",
    },
    Alert {
        name: "FirewallReverted",
        for_: Duration::secs(0),
        severity: "critical",
        summary: "the firewall of {{ $labels.node }} put its previous rules back (a change was never confirmed)",
        runbook: "The last deploy lost its connection before confirming the new rules. Check the rules let SSH in, then deploy again.",
    },
    Alert {
        name: "ManagedFilesDrifted",
        for_: Duration::mins(10),
        severity: "warning",
        summary: "{{ $value }} file(s) vds-proxy manages on {{ $labels.node }} were changed since the last deploy",
        runbook: "vds-proxy status --node NODE names them; vds-proxy deploy puts them back (or put the change into the inventory).",
    },
    Alert {
        name: "DiskAlmostFull",
        for_: Duration::mins(10),
        severity: "warning",
        summary: "{{ $labels.mountpoint }} on {{ $labels.node }} is {{ $value | humanizePercentage }} full",
        runbook: "On the node: du -xh --max-depth=2 MOUNTPOINT | sort -h | tail; old backups and container images are the usual suspects.",
    },
];

/// A rule as the rules template reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub alert: &'static str,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub severity: &'static str,
    pub summary: &'static str,
    pub runbook: &'static str,
}

/// A PromQL string literal (double quotes; `\` and `"` escaped).
fn lit(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The expressions of alert `name` for this inventory (none: nothing to watch).
pub fn exprs(inv: &Inventory, name: &str) -> Vec<String> {
    match name {
        "NodeDown" => vec!["up{job=\"node\"} == 0".into()],
        "MonitoringFactsStale" => vec!["time() - vds_facts_timestamp_seconds > 300".into()],
        "TunnelDown" => wireguard::of(inv)
            .iter()
            .map(|w| {
                format!(
                    "time() - vds_wireguard_last_handshake_seconds{{interface={}}} > {}",
                    lit(&w.interface),
                    w.handshake_timeout
                )
            })
            .collect(),
        "BackendDown" => vec!["vds_backend_up == 0".into()],
        "RouteUnreachable" => vec!["probe_success{job=\"routes\"} == 0".into()],
        // Per node that runs the relay: its node answers, but its counters are gone.
        "RelayDown" => routes::of(inv)
            .iter()
            .filter(|r| r.forwarder == routes::Forwarder::Relay)
            .map(|r| r.proxy_node.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|n| {
                format!(
                    "up{{job=\"node\", node={0}}} == 1 unless on(node) vds_relay_reloads_total{{node={0}}}",
                    lit(n)
                )
            })
            .collect(),
        "SiteDown" => vec!["probe_success{job=\"sites\"} == 0".into()],
        "CertificateExpiresSoon" => {
            vec!["probe_ssl_earliest_cert_expiry{job=\"sites\"} - time() < 14 * 86400".into()]
        }
        "RegistryDown" => vec!["probe_success{job=\"registries\"} == 0".into()],
        "BackupTooOld" => backups::of(inv)
            .iter()
            .map(|b| {
                format!(
                    "time() - vds_backup_last_success_seconds{{node={}, database={}}} > {}",
                    lit(&b.node),
                    lit(&b.database),
                    u64::from(b.max_age_hours) * 3600
                )
            })
            .collect(),
        "BackupFailed" => vec!["vds_backup_failed == 1".into()],
        "FirewallReverted" => vec!["vds_firewall_state{state=\"reverted\"} == 1".into()],
        "ManagedFilesDrifted" => vec!["vds_managed_files_drifted > 0".into()],
        "DiskAlmostFull" => {
            let real = "{fstype!~\"tmpfs|ramfs|squashfs|overlay\"}";
            vec![format!(
                "1 - node_filesystem_avail_bytes{real} / node_filesystem_size_bytes{real} > 0.9"
            )]
        }
        _ => Vec::new(),
    }
}

/// Every rule of `m`'s inventory: each alert not turned off, with its `for:`.
pub fn rules(inv: &Inventory, m: &Monitoring) -> Vec<Rule> {
    let mut out = Vec::new();
    for a in ALERTS {
        let setting = m.alerts.get(a.name).cloned().unwrap_or_default();
        if setting.off {
            continue;
        }
        let for_ = setting.for_.unwrap_or(a.for_).to_string();
        for expr in exprs(inv, a.name) {
            out.push(Rule {
                alert: a.name,
                expr,
                for_: for_.clone(),
                severity: a.severity,
                summary: a.summary,
                runbook: a.runbook,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_literals_cannot_end_early() {
        assert_eq!(lit("wg0"), "\"wg0\"");
        assert_eq!(lit("a\"} or vector(1) #"), "\"a\\\"} or vector(1) #\"");
        assert_eq!(lit("a\\"), "\"a\\\\\"");
    }
}
