//! The firewall on a real test host (included in `tests/testbed.rs`, whose harness it
//! uses): a confirmation confirms only the rules of the deploy that applied them.

use super::{Env, assert_ok, ip, ssh, stdout};

/// Two deploys racing on one host: deploy B applies other rules while deploy A's wait for
/// confirmation. A's confirmation (naming its rules' SHA-256) is refused and says why; B's
/// goes through; a revert would put back only what was confirmed.
#[test]
fn a_deploy_never_confirms_the_firewall_rules_of_another() {
    let env = Env::new("firewall-race");
    env.inventory("[]");
    env.add_sections(&format!(
        r#""firewalls": [{{"node": "h1", "allow": [{{"port": 7001, "from": ["{}"]}}], "revert_after": 60}}]"#,
        ip(2)
    ));
    assert_ok(&env.vds(&["deploy"]));
    let tool = "/usr/local/lib/vds-proxy/firewall";
    let rules = "/etc/vds-proxy/firewall.nft";
    let sha = |f: &str| {
        stdout(&ssh(1, &format!("sha256sum < {f} | cut -c1-64")))
            .trim()
            .to_string()
    };
    // Deploy A applies its rules (the deployed ones) and waits; deploy B then applies
    // rules of its own (one more comment line) before A confirms.
    let a = sha(rules);
    assert_ok(&ssh(1, &format!("{tool} apply 60")));
    assert_ok(&ssh(
        1,
        &format!("cp {rules} /tmp/a.nft && echo '# deploy B' >> {rules} && {tool} apply 60"),
    ));
    let b = sha(rules);
    assert_ne!(a, b);
    let out = ssh(1, &format!("{tool} confirm {a}"));
    assert_eq!(out.status.code(), Some(4), "A confirmed B's rules");
    assert!(
        stdout(&out).contains("another deploy changed the firewall rules"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        stdout(&ssh(1, &format!("{tool} status"))),
        "@firewall pending\n"
    );
    assert_ok(&ssh(1, &format!("{tool} confirm {b}")));
    assert_eq!(stdout(&ssh(1, &format!("{tool} status"))), "@firewall ok\n");
    // The deployed rules again, then taken back.
    assert_ok(&ssh(
        1,
        &format!("cp /tmp/a.nft {rules} && rm -f /tmp/a.nft"),
    ));
    assert_ok(&env.vds(&["deploy"]));
    assert_ok(&env.vds(&["remove"]));
}
