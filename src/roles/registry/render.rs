//! The registry system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// The relay and the registry share one copy of the binary, which restarts both.
#[test]
fn the_relay_and_the_registry_share_the_binary() {
    let (_, plan) = plan_of("examples/farms.json");
    let vds = &plan.hosts[0];
    let binaries: Vec<_> = vds
        .resources
        .iter()
        .filter(|r| r.kind == Kind::BINARY)
        .collect();
    assert_eq!(binaries.len(), 1);
    let restarts: Vec<String> = binaries[0]
        .on_change
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    assert_eq!(
        restarts,
        [
            "Restart(\"vds-relay.service\")",
            "Restart(\"vds-registry.service\")"
        ]
    );
}

/// The rendered registry config loads in the server, holds only digests of the tokens,
/// and its unit passes `systemd-analyze verify`.
#[test]
fn the_rendered_registry_config_loads_and_holds_no_token() {
    let (inv, plan) = plan_of("examples/farms.json");
    let res = |path: &str| {
        plan.hosts[0]
            .resources
            .iter()
            .find(|r| r.path == path)
            .and_then(|r| r.text_content())
            .unwrap()
            .to_string()
    };
    let text = res(vds_proxy::roles::registry::CONFIG);
    let cfg = vds_proxy::serve::config::parse(&text).expect("the server loads it");
    assert_eq!(cfg.tokens.len(), 4);
    assert_eq!(
        cfg.nodes.len(),
        4,
        "every node of the inventory, active or not"
    );
    assert_eq!(cfg.listen.to_string(), "100.64.0.10:8080");
    for secret in inv.secrets() {
        assert!(
            !text.contains(secret.as_str()),
            "a token reached the config"
        );
        let digest = vds_proxy::serve::auth::digest(secret);
        assert!(text.contains(&digest));
    }
    let tmp = tempfile::Builder::new().prefix("vds-registry-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let file = dir.join("vds-registry.service");
    let unit = res("/etc/systemd/system/vds-registry.service").replace(
        "/usr/local/lib/vds-proxy/vds-proxy",
        env!("CARGO_BIN_EXE_vds-proxy"),
    );
    std::fs::write(&file, unit).unwrap();
    must_pass(VERIFY, &file);
}
