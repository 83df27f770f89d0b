//! Replicated services on a real test host (included in `tests/testbed.rs`, whose harness
//! it uses): a secret kept out of the inventory reaches only its replica's 0600 file.

use super::{Env, assert_ok, ssh, stdout, text};

/// A service's secret read from the environment of the deploy: the replica's env file on
/// the node holds it, mode 0600, owned by root; no output of deploy, show or status has
/// it; a changed value redeploys that file only, an unchanged one is a no-op.
#[test]
fn a_secret_from_the_environment_reaches_only_its_replicas_file() {
    let env = Env::new("secret-env");
    let first = "5ec2e70000000000000000000000beef";
    let second = "5ec2e70000000000000000000000cafe";
    env.inventory("[]");
    env.add_sections(
        r#""services": [{"name": "sec", "node": "h1", "replicas": 1, "base_port": 10400,
            "secret": {"env": "VDS_TEST_REPLICA_SECRET"},
            "exec": ["/usr/bin/socat", "TCP-LISTEN:{port},fork,reuseaddr", "EXEC:cat"]}]"#,
    );
    let vds = |args: &[&str], value: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vds-proxy"))
            .arg("-i")
            .arg(env.dir.join("nodes.json"))
            .args(args)
            .env("VDS_TEST_REPLICA_SECRET", value)
            .output()
            .unwrap()
    };
    let out = vds(&["deploy"], first);
    assert_ok(&out);
    let file = "/etc/vds-proxy/sec/1.env";
    assert_eq!(
        stdout(&ssh(
            1,
            &format!("stat -c '%a %U' {file}; grep -c '^SECRET={first}$' {file}")
        )),
        "600 root\n1\n"
    );
    for args in [&["show"][..], &["show", "--diff"], &["status"], &["deploy"]] {
        let out = vds(args, first);
        assert!(!text(&out).contains(first), "{args:?} printed the secret");
    }
    assert!(text(&vds(&["deploy"], first)).contains("no changes"));
    let out = vds(&["deploy", "--format", "json"], second);
    assert_ok(&out);
    let changed = text(&out);
    assert!(
        !changed.contains(second) && !changed.contains(first),
        "{changed}"
    );
    // That file, and only that file, was deployed again.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = report["hosts"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, [file], "{changed}");
    assert_eq!(
        stdout(&ssh(1, &format!("grep -c '^SECRET={second}$' {file}"))),
        "1\n"
    );
    // Without the variable: bad input, the host untouched.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vds-proxy"))
        .arg("-i")
        .arg(env.dir.join("nodes.json"))
        .arg("deploy")
        .env_remove("VDS_TEST_REPLICA_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(
        "$.services[0].secret: the environment variable VDS_TEST_REPLICA_SECRET is not set"
    ));
    assert_eq!(
        stdout(&ssh(1, &format!("grep -c '^SECRET={second}$' {file}"))),
        "1\n"
    );
    assert_ok(&vds(&["remove"], second));
}

/// A scale-down whose stop fails (the unit's links cannot be removed: /etc read-only
/// there) fails the deploy with why, and the host is as it was: the replica still
/// configured, running and in the manifest. Once /etc is writable again, the next deploy
/// stops it for real.
#[test]
fn a_stop_that_fails_is_reported_and_rolled_back_never_done() {
    let env = Env::new("stop-fails");
    let section = |n: u32| {
        format!(
            r#""services": [{{"name": "stopme", "node": "h1", "replicas": {n}, "base_port": 10600,
                "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "EXEC:cat"]}}]"#
        )
    };
    env.inventory("[]");
    env.add_sections(&section(3));
    assert_ok(&env.vds(&["deploy"]));
    let wants = "/etc/systemd/system/multi-user.target.wants";
    assert_ok(&ssh(1, &format!("mount --bind -o ro {wants} {wants}")));
    env.inventory("[]");
    env.add_sections(&section(2));
    let out = env.vds(&["deploy"]);
    let said = text(&out);
    let _ = ssh(1, &format!("umount {wants}"));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot stop stopme@3.service: it is still active and enabled"),
        "{said}"
    );
    assert!(!said.contains("stopped stopme@3.service"), "{said}");
    assert_eq!(
        stdout(&ssh(
            1,
            "systemctl is-active stopme@3.service; systemctl is-enabled stopme@3.service; \
             test -e /etc/vds-proxy/stopme/3.env && grep -c 'stopme/3.env' /var/lib/vds-proxy/state.json"
        )),
        "active\nenabled\n1\n"
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(
        stdout(&ssh(
            1,
            "systemctl is-active stopme@3.service; systemctl is-enabled stopme@3.service"
        )),
        "inactive\ndisabled\n"
    );
    assert_ok(&env.vds(&["remove"]));
}
