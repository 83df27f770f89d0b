//! The monitoring example, planned offline (included in `tests/render.rs`, whose helpers
//! it uses): its snapshot, every target derived from what the example deploys, the
//! exporter port open to the monitoring node alone, and no secret in what is shown.

use super::{firewall_rules, plan_of, secret_files_of};
use vds_proxy::plan::Plan;
use vds_proxy::roles::monitoring::rules::{ALERTS, exprs};
use vds_proxy::show;

const EXAMPLE: &str = "src/roles/monitoring/example.json";

fn file<'p>(plan: &'p Plan, node: &str, path: &str) -> &'p str {
    plan.hosts
        .iter()
        .find(|h| h.node == node)
        .and_then(|h| h.resources.iter().find(|r| r.path == path))
        .and_then(|r| r.text_content())
        .unwrap_or_else(|| panic!("{node} has {path}"))
}

#[test]
fn monitoring_example_plan() {
    let (inv, plan) = plan_of(EXAMPLE);
    insta::assert_snapshot!("monitoring_text", show::plan_text(&inv, &plan));
}

/// Prometheus scrapes node_exporter on every active node at its mesh address (not the
/// inactive one), and probes the route, the site and the registry the example deploys.
#[test]
fn every_target_comes_from_the_inventory() {
    let (_, plan) = plan_of(EXAMPLE);
    let prom = file(&plan, "edge", "/etc/prometheus/prometheus.yml");
    for target in [
        "\"100.64.0.30:9100\"",
        "\"100.64.0.31:9100\"",
        "\"100.64.0.30:8443\"",
        "\"https://100.64.0.30:443/\"",
        "\"http://100.64.0.30:8080/healthz\"",
        "- job_name: registry\n    static_configs:\n      - targets: [\"100.64.0.30:8080\"]",
    ] {
        assert!(prom.contains(target), "{target} in\n{prom}");
    }
    assert!(!prom.contains("100.64.0.32"), "the inactive node is not scraped");
    assert!(
        plan.hosts.iter().all(|h| h.node == "edge"
            || !h.resources.iter().any(|r| r.path.starts_with("/etc/prometheus/"))),
        "only the monitoring node runs Prometheus"
    );
    // The home node's facts name its tunnel peer, its HAProxy and its backup.
    let facts = file(&plan, "home", "/usr/local/lib/vds-proxy/monitoring-facts");
    assert!(facts.contains("TUNNELS='wg0 edge 10.8.0.1\n'"), "{facts}");
    assert!(facts.contains("BALANCERS='127.0.0.1:8404\n'"), "{facts}");
    assert!(facts.contains("BACKUPS='app /var/backups/vds-proxy/postgresql vds-backup-app.service"));
}

/// Each alert the example does not turn off has a rule (per tunnel and per backup where
/// they differ), with the `for:` the inventory set.
#[test]
fn the_rules_cover_every_alert_not_turned_off() {
    let (inv, plan) = plan_of(EXAMPLE);
    let rules = file(&plan, "edge", "/etc/prometheus/vds-proxy.rules.yml");
    for a in ALERTS {
        let named = rules.contains(&format!("- alert: \"{}\"", a.name));
        assert_eq!(named, a.name != "CertificateExpiresSoon", "{}", a.name);
        assert!(!exprs(&inv, a.name).is_empty(), "{} watches something", a.name);
    }
    assert!(rules.contains("interface=\\\"wg0\\\"} > 180"), "{rules}");
    assert!(rules.contains("unless on(node) vds_relay_reloads_total{node=\\\"edge\\\"}"), "{rules}");
    assert!(rules.contains("database=\\\"app\\\"} > 93600"), "{rules}");
    let disk = rules.split("- alert: ").find(|r| r.starts_with("\"DiskAlmostFull\"")).unwrap();
    assert!(disk.contains("for: \"30m\""), "{disk}");
}

/// The firewall of the monitoring node opens node_exporter's port to the monitoring node's
/// own address only, and keeps Prometheus, Alertmanager and the blackbox exporter closed.
#[test]
fn node_exporter_is_open_to_the_monitoring_node_alone() {
    let (_, plan) = plan_of(EXAMPLE);
    let rules = firewall_rules(&plan);
    let lines: Vec<&str> = rules.lines().filter(|l| l.contains("dport 9100")).collect();
    assert_eq!(lines.len(), 1, "{rules}");
    assert!(lines[0].contains("ip saddr { 100.64.0.30 }"), "{}", lines[0]);
    for port in ["9090", "9093", "9115"] {
        assert!(!rules.contains(&format!("dport {port} ")), "{port} stays closed");
    }
}

/// The bot token, the SMTP password and the webhook URL are in Alertmanager's config, which
/// is marked secret: shown nowhere, not even as a digest.
#[test]
fn receiver_secrets_are_shown_nowhere() {
    secret_files_of(EXAMPLE);
    let (_, plan) = plan_of(EXAMPLE);
    let edge = plan.hosts.iter().find(|h| h.node == "edge").unwrap();
    let am = edge
        .resources
        .iter()
        .find(|r| r.path == "/etc/prometheus/alertmanager.yml")
        .unwrap();
    assert!(am.secret && am.mode == 0o640 && am.group == "prometheus");
    let text = am.text_content().unwrap();
    assert!(text.contains("chat_id: -1001234567890"), "{text}");
    assert!(text.contains("auth_password: \"smtp-password-example\""), "{text}");
}
