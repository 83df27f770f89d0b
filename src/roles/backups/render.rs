//! The backups system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// The backup units of the web example pass `systemd-analyze verify`; the service is a
/// oneshot that no deploy restarts, the timer is persistent.
#[test]
fn rendered_backup_units_pass_systemd_analyze_verify() {
    let (_, plan) = plan_of("examples/web.json");
    let tmp = tempfile::Builder::new().prefix("vds-backup-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut checked = Vec::new();
    for r in plan.hosts[0]
        .resources
        .iter()
        .filter(|r| r.path.contains("/vds-backup-"))
    {
        let name = r.path.rsplit('/').next().unwrap();
        let text = r.text_content().unwrap();
        if name.ends_with(".service") {
            assert!(text.contains("Type=oneshot"), "{text}");
            let restarts = r
                .on_change
                .iter()
                .filter(|a| format!("{a:?}").starts_with("Restart"))
                .count();
            assert_eq!(restarts, 0, "a deploy must not run a backup");
        } else {
            assert!(text.contains("Persistent=true"), "{text}");
        }
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        must_pass(VERIFY, &file);
        checked.push(name.to_string());
    }
    assert_eq!(
        checked,
        [
            "vds-backup-app.service",
            "vds-backup-app.timer",
            "vds-backup-bot_state.service",
            "vds-backup-bot_state.timer"
        ]
    );
}

/// Backup copies: the sender's unit sends each dump to the target's mesh address and port
/// with the sender's own key, its known_hosts holds the target's host key; the target's
/// authorized_keys lets that key only `receive` into the directory (and creates the user).
#[test]
fn backup_copies_plan() {
    use vds_proxy::roles::backups::copy::CopyKeys;
    let text = r#"{"nodes": [{"name": "db-1", "public_ip": "203.0.113.5"},
                             {"name": "store", "tailscale_ip": "100.64.0.9", "ssh_port": 2222}],
        "backups": [{"node": "db-1", "database": "app", "copy_to": {"node": "store", "keep": 14}}]}"#;
    let inv = inventory::from_str(Path::new("nodes.json"), text, &roles::all().sections()).unwrap();
    let mut keys = CopyKeys::default();
    keys.client.insert(
        "db-1".into(),
        format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{}", "C".repeat(44)),
    );
    keys.host.insert(
        "store".into(),
        format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{}", "H".repeat(44)),
    );
    let mut prepared = Sections::default();
    prepared.insert(keys);
    let t = Templates::new(None, roles::all().templates()).unwrap();
    let plan = plan::build(&inv, &t, &fake_relay(), &prepared, &roles::all()).unwrap();
    let mut plan_without_tool = plan.clone();
    for h in &mut plan_without_tool.hosts {
        h.resources
            .retain(|r| r.path != vds_proxy::roles::backups::TOOL);
    }
    insta::assert_snapshot!(
        "backup_copies_text",
        show::plan_text(&inv, &plan_without_tool)
    );
    let tmp = tempfile::Builder::new().prefix("vds-copy-units-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    for r in plan.hosts.iter().flat_map(|h| &h.resources) {
        if r.path.ends_with(".service") {
            let unit = dir.join(r.path.rsplit('/').next().unwrap());
            std::fs::write(&unit, r.text_content().unwrap()).unwrap();
            must_pass(VERIFY, &unit);
        }
    }
}
