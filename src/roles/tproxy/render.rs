//! The tproxy system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// The TPROXY rule sets load with `iptables-restore --test` (nothing is committed).
#[test]
fn rendered_tproxy_rules_pass_iptables_restore_test() {
    let (_, plan) = plan_of("examples/mesh.json");
    let rules: Vec<_> = plan.hosts[0]
        .resources
        .iter()
        .filter(|r| r.kind == vds_proxy::roles::tproxy::iptables::IPTABLES)
        .collect();
    assert_eq!(rules.len(), 2, "frontend rules and backend replies");
    let all: String = rules.iter().map(|r| r.text_content().unwrap()).collect();
    assert!(all.contains(
        "-A VDS_TPROXY -p tcp --dport 443 -j TPROXY --on-port 443 --tproxy-mark 0x1/0x1\n"
    ));
    assert!(all.contains("-A VDS_TPROXY -p tcp -m socket --transparent -j MARK"));
    assert!(all.contains("-A VDS_TPROXY_OUT -p tcp --sport 10001 -j MARK"));
    let tmp = tempfile::Builder::new()
        .prefix("vds-rules-")
        .tempdir()
        .unwrap();
    for r in rules {
        let file = tmp.path().join(r.path.rsplit('/').next().unwrap());
        std::fs::write(&file, r.text_content().unwrap()).unwrap();
        must_pass(
            &[
                "iptables-restore",
                "--test",
                "--noflush",
                "apt-get install iptables",
            ],
            &file,
        );
    }
}
