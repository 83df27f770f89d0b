//! The routes system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

#[test]
fn socat_forwarder_renders_exactly_the_seed_command() {
    let (_, plan) = plan_of("examples/mesh.json");
    let unit = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path == "/etc/systemd/system/socat-proxy-tgapi-30081.service")
        .expect("vds_proxy.sh's unit name");
    assert!(unit.text_content().unwrap().contains(
        "\nExecStart=/usr/bin/socat TCP-LISTEN:30081,fork,reuseaddr TCP:100.64.0.1:30081\n"
    ));
}

#[test]
fn bind_capability_only_below_1024() {
    let (_, plan) = plan_of("examples/mesh.json");
    let relay = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path.ends_with("/vds-relay.service"))
        .unwrap();
    assert!(
        relay
            .text_content()
            .unwrap()
            .contains("AmbientCapabilities=CAP_NET_BIND_SERVICE")
    );
    let (_, seed) = plan_of("inventory/nodes.example.json");
    let relay = seed.hosts[0]
        .resources
        .iter()
        .find(|r| r.path.ends_with("/vds-relay.service"))
        .unwrap();
    let text = relay.text_content().unwrap();
    assert!(!text.contains("CAP_NET_BIND_SERVICE"));
    assert!(text.contains("\nCapabilityBoundingSet=\n"));
}
