//! The firewall on a real test host (included in `tests/testbed.rs`, whose harness it
//! uses): only what is asked is open, a change that locks SSH out reverts itself, and a
//! confirmation confirms only the rules of the deploy that applied them.

use super::*;

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

/// Whether a line sent from host `from` to h1:`port` comes back (a blocked port drops the
/// connection attempt: it times out).
fn h1_answers(from: u32, port: u16) -> bool {
    let out = ssh(
        from,
        &format!(
            "echo through | timeout 4 socat - TCP:{}:{port},connect-timeout=2",
            ip(1)
        ),
    );
    stdout(&out) == "through\n"
}

/// Issue 13's firewall on h1: default deny with the route's port and an allow-listed port
/// (from h2 only) open, as seen from the other hosts; a no-op re-apply; deleted rules
/// noticed by status and put back by deploy; a rule set that shuts SSH out reverted by
/// the host itself and reported; remove takes back only its own table.
#[test]
fn a_firewall_opens_only_what_is_asked_and_reverts_a_change_that_locks_ssh_out() {
    let env = Env::new("firewall");
    assert_ok(&ssh(
        1,
        "for p in 7001 7002; do systemctl stop test-l$p 2>/dev/null; systemctl reset-failed test-l$p 2>/dev/null; \
         systemd-run -q --unit=test-l$p socat TCP-LISTEN:$p,fork,reuseaddr EXEC:cat; done; \
         nft add table inet admin && nft add chain inet admin keep",
    ));
    let route = r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}]"#;
    env.inventory(route);
    env.add_sections(&format!(
        r#""firewalls": [{{"node": "h1", "allow": [{{"port": 7001, "from": ["{}"]}}], "revert_after": 15}}]"#,
        ip(2)
    ));
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(
        &out,
        "confirmed /etc/vds-proxy/firewall.nft over a new connection",
    );
    assert!(h1_answers(2, 7001), "allowed from h2");
    assert!(!h1_answers(3, 7001), "allowed from h2 only");
    assert!(!h1_answers(2, 7002), "not allowed");
    assert!(h1_answers(3, 8443), "the route's port is open to all");

    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_row(&out, "h1 0 ok (no changes)");
    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(
        &out,
        &format!(
            "h1 firewall ok in effect: inbound dropped except SSH and 8443/tcp, 7001/tcp from {}",
            ip(2)
        ),
    );

    // Rules deleted by hand: status notices, deploy puts them back.
    assert_ok(&ssh(1, "nft delete table inet vds_proxy"));
    assert!(
        h1_answers(2, 7002),
        "with the table gone nothing is filtered"
    );
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(
        &out,
        "h1 firewall FAIL the rules in effect are not the deployed ones",
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "put back what these configure");
    assert!(!h1_answers(2, 7002));

    // A rule set without the SSH rule (a bad template override): the new connection after
    // the change fails, the host reverts by itself, the deploy says so.
    let confirmed = stdout(&ssh(1, "nft list table inet vds_proxy"));
    let tpl = env.dir.join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/roles/firewall/templates/firewall.nft.j2"),
    )
    .unwrap();
    let broken: String = original
        .lines()
        .filter(|l| !l.contains("SSH: vds-proxy connects here"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(tpl.join("firewall.nft.j2"), broken).unwrap();
    let out = env.vds(&["deploy", "--templates", tpl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("the change locks vds-proxy out"), "{said}");
    assert!(
        said.contains(
            "the host reverted it by itself after 15 s and accepts new connections again"
        ),
        "{said}"
    );
    assert_eq!(stdout(&ssh(1, "nft list table inet vds_proxy")), confirmed);
    let out = env.vds(&["status"]);
    assert_row(&out, "h1 firewall FAIL the last change was reverted at");
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(
        &out,
        "confirmed /etc/vds-proxy/firewall.nft over a new connection",
    );

    // Remove takes back its table only.
    assert_ok(&env.vds(&["remove"]));
    assert_eq!(stdout(&ssh(1, "nft list tables")), "table inet admin\n");
    assert!(h1_answers(3, 7002));
    assert_ok(&ssh(
        1,
        "systemctl stop test-l7001 test-l7002; nft delete table inet admin; \
         ! ls /var/lib/vds-proxy /run/vds-proxy 2>/dev/null | grep -q .",
    ));
}
