//! The balancer system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// The haproxy drop-in verifies together with Debian's haproxy.service, as the deploy
/// checks it on the host.
#[test]
fn rendered_haproxy_drop_in_passes_systemd_analyze_verify() {
    let (_, plan) = plan_of("examples/mesh.json");
    let dropin = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.kind == Kind::DROPIN)
        .expect("a balancer node gets the haproxy drop-in");
    assert_eq!(
        dropin.path,
        "/etc/systemd/system/haproxy.service.d/vds-proxy.conf"
    );
    let text = dropin.text_content().unwrap();
    assert!(text.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW\n"));
    assert!(text.contains("User=haproxy\n"));
    let unit = std::fs::read_to_string("/lib/systemd/system/haproxy.service")
        .expect("haproxy must be installed (apt-get install haproxy)");
    let tmp = tempfile::Builder::new().prefix("vds-dropin-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let file = dir.join("haproxy.service");
    std::fs::write(&file, unit + text).unwrap();
    must_pass(VERIFY, &file);
}

/// The rendered haproxy.cfg passes `haproxy -c`, with one server line per replica.
#[test]
fn rendered_haproxy_config_passes_haproxy_check() {
    let (_, plan) = plan_of("examples/mesh.json");
    let cfg = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.kind == vds_proxy::roles::balancer::haproxy::HAPROXY)
        .expect("the balanced service renders haproxy.cfg");
    let text = cfg.text_content().unwrap();
    assert_eq!(text.matches("\n    server mtproxy-").count(), 2);
    // Transparent: the replicas are reached on the node's mesh address, not 127.0.0.1.
    assert!(
        text.contains("    server mtproxy-2 100.64.0.10:10001 check inter 2000 fall 3 rise 2\n")
    );
    assert!(text.contains("source 0.0.0.0 usesrc clientip"));
    let tmp = tempfile::Builder::new().prefix("vds-haproxy-").tempdir().unwrap();
    let file = tmp.path().join("vds-haproxy.cfg");
    std::fs::write(&file, text).unwrap();
    must_pass(&["haproxy", "-c", "-f", "apt-get install haproxy"], &file);
}
