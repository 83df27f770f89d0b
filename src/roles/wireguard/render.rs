//! The wireguard system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// Every rendered WireGuard config passes `wg-quick strip`, holds no private key, and its
/// drop-in verifies together with wireguard-tools' `wg-quick@.service`.
#[test]
fn rendered_wireguard_configs_pass_wg_quick_strip() {
    let (_, plan) = plan_of("examples/mesh.json");
    let tmp = tempfile::Builder::new().prefix("vds-wg-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut checked = 0;
    for host in &plan.hosts {
        for r in host
            .resources
            .iter()
            .filter(|r| r.kind == vds_proxy::roles::wireguard::wg_quick::WG_QUICK)
        {
            let text = r.text_content().unwrap();
            assert!(!text.contains("PrivateKey"), "{}", r.path);
            assert_eq!(r.mode, 0o600);
            let file = dir.join("wg0.conf");
            std::fs::write(&file, text).unwrap();
            let stripped = must_pass(
                &["wg-quick", "strip", "apt-get install wireguard-tools"],
                &file,
            );
            assert!(stripped.contains("[Peer]\nPublicKey = "), "{stripped}");
            checked += 1;
        }
        for r in host
            .resources
            .iter()
            .filter(|r| r.kind == Kind::DROPIN && r.path.contains("wg-quick@"))
        {
            let unit = std::fs::read_to_string("/lib/systemd/system/wg-quick@.service")
                .expect("wireguard-tools must be installed (apt-get install wireguard-tools)");
            let file = dir.join("wg-quick@wg0.service");
            std::fs::write(&file, unit + r.text_content().unwrap()).unwrap();
            must_pass(VERIFY, &file);
        }
    }
    assert_eq!(checked, 2, "the hub and its spoke");
}
