//! The shell that runs on hosts, as generated for representative plans: every script is
//! snapshotted, parsed by `sh -n` and checked by shellcheck (a missing shellcheck fails
//! the test: `apt-get install shellcheck`).

use std::path::{Path, PathBuf};
use std::process::Command;

use vds_proxy::contract::PrepareMode;
use vds_proxy::engine::diff::{self, Changes};
use vds_proxy::engine::gather::{Facts, FileFacts, UnitFacts};
use vds_proxy::engine::{apply, gather, status};
use vds_proxy::inventory::{self, Inventory, Sections};
use vds_proxy::plan::{self, HostPlan};
use vds_proxy::resources::binary::Artifact;
use vds_proxy::roles;
use vds_proxy::templates::Templates;

/// The key the snapshotted gather and status scripts hash secret files with.
const TEST_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const NODES: &str = r#""nodes": [
  {"name": "h1", "public_ip": "10.213.1.2", "tailscale_ip": "10.213.1.2"},
  {"name": "h2", "public_ip": "10.213.2.2", "tailscale_ip": "10.213.2.2"}]"#;

fn inventory(sections: &str) -> Inventory {
    let text = format!("{{{NODES}, {sections}}}");
    inventory::from_str(Path::new("scripts.json"), &text, &roles::all().sections())
        .expect("valid inventory")
}

/// A small stand-in for the vds-proxy build, with fixed bytes so snapshots are stable.
fn bundle() -> Artifact {
    // Tests run in parallel processes: written aside and renamed, so none reads it half
    // written (a snapshot once saw another digest).
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fake-vds-proxy");
    let tmp = p.with_extension(std::process::id().to_string());
    std::fs::write(&tmp, b"#!/bin/sh\necho fake vds-proxy\n").unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    Artifact::from_file(p, std::env::consts::ARCH).unwrap()
}

/// The plan of node `node` (h1 unless said).
fn host_plan(inv: &Inventory, node: &str) -> HostPlan {
    let systems = roles::all();
    let t = Templates::new(None, systems.templates()).unwrap();
    let plan = plan::build(inv, &t, &bundle(), &Sections::default(), &systems).unwrap();
    plan.hosts.into_iter().find(|h| h.node == node).unwrap()
}

/// A host as a full deploy of `plan` leaves it: every file, directory and unit in place.
fn deployed(plan: &HostPlan) -> Facts {
    let changes = diff::diff(plan, &Facts::default(), None);
    let mut f = Facts {
        arch: std::env::consts::ARCH.into(),
        state_hash: "1".repeat(64),
        manifest: changes.manifest.clone(),
        ..Facts::default()
    };
    for r in &plan.resources {
        let facts = FileFacts {
            sha256: r.sha256.clone(),
            mode: r.mode,
            owner: r.owner.clone(),
            group: r.group.clone(),
        };
        f.files.insert(r.path.clone(), Some(facts));
    }
    for d in gather::needed_dirs(&plan.resources) {
        f.dirs.insert(d, true);
    }
    for u in &plan.units {
        let unit = UnitFacts {
            active: "active".into(),
            enabled: "enabled".into(),
            load: "loaded".into(),
        };
        f.units.insert(u.name.clone(), unit);
    }
    f
}

/// A host nothing was deployed to, its directories missing, the planned units unknown to
/// systemd (as gather finds them: "not-found").
fn empty_host(plan: &HostPlan) -> Facts {
    let mut f = Facts {
        arch: std::env::consts::ARCH.into(),
        state_hash: "none".into(),
        ..Facts::default()
    };
    for d in gather::needed_dirs(&plan.resources) {
        f.dirs.insert(d, false);
    }
    for u in &plan.units {
        let unit = UnitFacts {
            load: "not-found".into(),
            ..UnitFacts::default()
        };
        f.units.insert(u.name.clone(), unit);
    }
    f
}

/// Fails unless `sh -n` and shellcheck accept `script`.
fn check_shell(name: &str, script: &str) {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.sh"));
    std::fs::write(&p, script).unwrap();
    let sh = Command::new("sh").arg("-n").arg(&p).output().unwrap();
    assert!(
        sh.status.success(),
        "{name}: sh -n: {}",
        String::from_utf8_lossy(&sh.stderr)
    );
    let sc = Command::new("shellcheck")
        .args(["-s", "sh", "-f", "gcc"])
        .arg(&p)
        .output()
        .unwrap_or_else(|e| panic!("shellcheck: {e}; install it: apt-get install shellcheck"));
    assert!(
        sc.status.success(),
        "{name}: shellcheck:\n{}",
        String::from_utf8_lossy(&sc.stdout)
    );
}

/// Snapshots `script` (without the fixed library, which is checked on its own) and checks it.
fn snapshot(name: &str, script: &str, library: &str) {
    check_shell(name, script);
    assert!(script.contains(library), "{name}: the library is missing");
    // (An apply script holds the library twice: the recovery script it keeps for a reboot
    // has it too.)
    insta::assert_snapshot!(name, script.replace(library, "<library>\n"));
}

fn apply_script(changes: &Changes, facts: &Facts, plan: &HostPlan) -> String {
    apply::script(changes, facts, &plan.units).unwrap()
}

const RELAY_ROUTE: &str = r#""routes": [{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}]"#;

fn balanced(replicas: u32) -> String {
    format!(
        r#""services": [{{"name": "echo", "node": "h1", "replicas": {replicas}, "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "EXEC:cat"], "balancer": {{"port": 8500, "transparent": true}}}}]"#
    )
}

#[test]
fn a_new_host_gets_the_relay_binary_and_its_unit() {
    let inv = inventory(RELAY_ROUTE);
    let plan = host_plan(&inv, "h1");
    let facts = empty_host(&plan);
    let changes = diff::diff(&plan, &facts, None);
    let script = apply_script(&changes, &facts, &plan);
    // Only a new unit file, for a unit systemd never loaded: systemd is asked to load it
    // instead of reloading everything.
    assert!(
        script.contains("\ndaemon_reload_unless_loaded vds-relay.service\n"),
        "{script}"
    );
    snapshot("apply_new_host_relay", &script, apply::LIBRARY);
}

#[test]
fn a_new_host_with_a_package_config_adopts_it_and_can_roll_back_its_units() {
    let inv = inventory(&balanced(2));
    let plan = host_plan(&inv, "h1");
    let mut facts = empty_host(&plan);
    // Debian's haproxy package: its config exists and its unit runs.
    let package = FileFacts {
        sha256: "2".repeat(64),
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
    };
    facts
        .files
        .insert("/etc/haproxy/haproxy.cfg".into(), Some(package));
    facts.dirs.insert("/etc/haproxy".into(), true);
    let running = UnitFacts {
        active: "active".into(),
        enabled: "enabled".into(),
        load: "loaded".into(),
    };
    facts.units.insert("haproxy.service".into(), running);
    let changes = diff::diff(&plan, &facts, None);
    assert_eq!(changes.adopt, ["/etc/haproxy/haproxy.cfg"]);
    let script = apply_script(&changes, &facts, &plan);
    assert!(
        script.contains("was haproxy.service active enabled 0"),
        "{script}"
    );
    // A drop-in changes a unit systemd has loaded: it must reload.
    assert!(script.contains("\ndaemon_reload\n"), "{script}");
    snapshot("apply_new_host_balancer_adopts", &script, apply::LIBRARY);
}

#[test]
fn a_scale_down_drains_the_removed_replica_before_stopping_it() {
    let three = host_plan(&inventory(&balanced(3)), "h1");
    let facts = deployed(&three);
    let two = host_plan(&inventory(&balanced(2)), "h1");
    let changes = diff::diff(&two, &facts, None);
    let script = apply_script(&changes, &facts, &two);
    assert!(script.contains("drain echo@3.service 30 10002"), "{script}");
    snapshot("apply_scale_down_drain", &script, apply::LIBRARY);
}

/// A haproxy.cfg changed since the last deploy is offered to the running HAProxy first
/// (live.sh takes added servers, and declines anything else: a reload follows); one changed
/// by hand since is reloaded outright.
#[test]
fn a_changed_haproxy_cfg_goes_live_through_the_runtime_api_unless_changed_by_hand() {
    let two = host_plan(&inventory(&balanced(2)), "h1");
    let three = host_plan(&inventory(&balanced(3)), "h1");
    let live = "live_or_reload haproxy.service /etc/haproxy/haproxy.cfg ";
    let reload = "unit reload reload haproxy.service";
    let script = |plan: &HostPlan, facts: &Facts| {
        apply_script(&diff::diff(plan, facts, None), facts, plan).replace(apply::LIBRARY, "")
    };
    for (from, to) in [(&two, &three), (&three, &two)] {
        let s = script(to, &deployed(from));
        assert!(s.contains(live), "{s}");
        assert!(
            s.contains("haproxy_add_servers \"$old\" /etc/haproxy/haproxy.cfg'"),
            "{s}"
        );
        assert!(!s.contains(reload), "{s}");
    }
    let mut drifted = deployed(&two);
    if let Some(Some(f)) = drifted.files.get_mut("/etc/haproxy/haproxy.cfg") {
        f.sha256 = "0".repeat(64);
    }
    let repaired = script(&three, &drifted);
    assert!(
        repaired.contains(reload) && !repaired.contains(live),
        "{repaired}"
    );
}

#[test]
fn remove_takes_back_files_units_and_directories() {
    let plan = host_plan(&inventory(&format!("{RELAY_ROUTE}, {}", balanced(2))), "h1");
    let facts = deployed(&plan);
    let changes = diff::removal(&facts, None, &plan.kinds);
    let script = apply_script(&changes, &facts, &plan);
    snapshot("apply_remove", &script, apply::LIBRARY);
}

/// A dropped ACME site's certificate is deleted only at the end, once every unit was
/// checked: a unit failing in the same apply rolls back to an nginx config that still names
/// it, and finds it. The certificate tool goes with the last ACME site: the copy the
/// transaction kept of it runs.
#[test]
fn a_dropped_sites_certificate_goes_only_once_the_host_converged() {
    let facts = deployed(&host_plan(
        &inventory(&format!("{RELAY_ROUTE}, {WEB}")),
        "h1",
    ));
    let only_plain = WEB.replace(
        r#"{"name": "app", "node": "h1", "domains": ["app.example.com"], "locations": [{"path": "/", "upstream": "127.0.0.1:3000"}]},"#,
        "",
    );
    assert_ne!(only_plain, WEB);
    for (sections, checked) in [
        (format!("{RELAY_ROUTE}, {only_plain}"), true),
        (RELAY_ROUTE.to_string(), false),
    ] {
        let plan = host_plan(&inventory(&sections), "h1");
        let script = apply_script(&diff::diff(&plan, &facts, None), &facts, &plan)
            .replace(apply::LIBRARY, "");
        let tool = script
            .lines()
            .find_map(|l| {
                l.strip_suffix(" /usr/local/lib/vds-proxy/web-certs")?
                    .strip_prefix("prune ")
            })
            .expect("the tool goes with the last ACME site");
        let forget = script
            .find(&format!(
                "\nunload /etc/vds-proxy/web/acme/app.conf 'sh \"$T/old/p{tool}\" forget app'\n"
            ))
            .unwrap_or_else(|| panic!("the certificate is not forgotten:\n{script}"));
        let manifest = script
            .find("\nwrite_manifest")
            .expect("the manifest is written");
        assert!(forget < manifest, "{script}");
        if checked {
            let end = script
                .find("\nend_checks")
                .expect("the reloaded nginx is checked");
            assert!(end < forget, "{script}");
        }
        assert_eq!(script.matches(" forget ").count(), 1, "{script}");
    }
}

#[test]
fn a_no_op_is_one_gather_script() {
    let plan = host_plan(&inventory(&format!("{RELAY_ROUTE}, {}", balanced(2))), "h1");
    let facts = deployed(&plan);
    assert!(diff::diff(&plan, &facts, None).is_empty());
    snapshot("gather", &gather::script(&plan, TEST_KEY), gather::LIBRARY);
}

#[test]
fn status_runs_every_role_probe_in_the_same_round_trip() {
    let inv = inventory(&format!(
        r#"{RELAY_ROUTE}, {}, "wireguard": [{{"members": [{{"node": "h1", "address": "10.99.0.1/24"}}, {{"node": "h2", "address": "10.99.0.2/24"}}]}}], "k3s": {{"node": "h1", "apps": [{{"name": "web", "image": "nginx:1", "port": 80}}]}}"#,
        balanced(2)
    ));
    let plan = host_plan(&inv, "h1");
    let script = status::script(&inv, &plan, &roles::all(), TEST_KEY);
    for f in ["haproxy_stats", "wg_peers", "k8s_ready", "listening"] {
        assert!(
            script.contains(&format!("\n{f}")),
            "{f} is not called:\n{script}"
        );
    }
    snapshot("status", &script, gather::LIBRARY);
}

/// Every system's prepare script for h1 in `mode`.
fn prepare_script(inv: &Inventory, mode: PrepareMode) -> String {
    roles::all()
        .prepare
        .iter()
        .filter_map(|r| r.prepare_script(inv, "h1", mode))
        .collect()
}

#[test]
fn the_prepare_step_makes_keys_on_the_node() {
    let inv = inventory(
        r#""wireguard": [{"members": [{"node": "h1", "address": "10.99.0.1/24"}, {"node": "h2", "address": "10.99.0.2/24"}]}]"#,
    );
    for (mode, name) in [
        (PrepareMode::Read, "prepare_read"),
        (PrepareMode::Create, "prepare_create"),
        (PrepareMode::Rotate, "prepare_rotate"),
    ] {
        let script = prepare_script(&inv, mode);
        check_shell(name, &script);
        insta::assert_snapshot!(name, script);
    }
}

#[test]
fn the_shell_libraries_pass_shellcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = 0;
    for dir in ["src/engine/scripts", "src/roles"] {
        for entry in walk(&root.join(dir)) {
            if entry.extension().is_some_and(|e| e == "sh") {
                found += 1;
                check_shell(
                    &entry.file_stem().unwrap().to_string_lossy(),
                    &std::fs::read_to_string(&entry).unwrap(),
                );
            }
        }
    }
    assert!(found >= 5, "only {found} shell files found");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

const WEB: &str = r#""sites": [
  {"name": "app", "node": "h1", "domains": ["app.example.com"], "locations": [{"path": "/", "upstream": "127.0.0.1:3000"}]},
  {"name": "plain", "node": "h1", "domains": ["plain.example.com"], "tls": "off", "http_port": 8080, "locations": [{"path": "/", "upstream": "127.0.0.1:3001"}]}]"#;

#[test]
fn the_web_edge_prepares_placeholders_and_checks_each_site() {
    let inv = inventory(WEB);
    for (mode, name) in [
        (PrepareMode::Read, "web_prepare_read"),
        (PrepareMode::Create, "web_prepare_create"),
    ] {
        let script = prepare_script(&inv, mode);
        check_shell(name, &script);
        insta::assert_snapshot!(name, script);
    }
    let plan = host_plan(&inv, "h1");
    let script = status::script(&inv, &plan, &roles::all(), TEST_KEY);
    assert!(
        script.contains(
            "\nweb_site app https 443 app.example.com /var/lib/vds-proxy/certs/app/fullchain.pem\n"
        ),
        "{script}"
    );
    assert!(
        script.contains("\nweb_site plain http 8080 plain.example.com -\n"),
        "{script}"
    );
    snapshot("web_status", &script, gather::LIBRARY);
    // The certificate tool as installed on the node.
    check_shell("web-certs", &vds_proxy::roles::web::tool_text());
}

/// The firewall tool as installed on a node (its settings, then `firewall.sh`) passes
/// `sh -n` and shellcheck.
#[test]
fn the_installed_firewall_tool_passes_shellcheck() {
    check_shell("firewall-tool", &vds_proxy::roles::firewall::tool_text());
}

#[test]
fn the_installed_backup_tool_passes_shellcheck() {
    check_shell("backup-tool", &vds_proxy::roles::backups::tool_text());
}

#[test]
fn the_installed_app_tool_passes_shellcheck() {
    check_shell("app-tool", &vds_proxy::roles::compose::tool_text());
}
