//! Encrypted secrets on a real test host (included in `tests/testbed.rs`, whose harness it
//! uses): encrypt → deploy → the node's 0600 file holds the value, which no process's
//! command line or environment ever held.

use super::*;

use std::process::Command;

/// The vds-proxy, ssh and age processes whose command line or environment holds
/// `secret`: pid, which, and the command line. (The replica that uses the secret has it in
/// its environment by design; it runs in a test host, whose processes this machine sees.)
fn holding(secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !matches!(comm.trim(), "vds-proxy" | "ssh" | "age") {
            continue;
        }
        for f in ["cmdline", "environ"] {
            if let Ok(b) = std::fs::read(p.join(f))
                && String::from_utf8_lossy(&b).contains(secret)
            {
                let cmd = std::fs::read(p.join("cmdline")).unwrap_or_default();
                out.push(format!(
                    "{} {f}: {}",
                    p.display(),
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
            }
        }
    }
    out
}

/// How many vds-proxy and ssh processes run now (the sampling looks at them).
fn processes_seen() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            matches!(comm.trim(), "vds-proxy" | "ssh")
        })
        .count()
}

#[test]
fn an_encrypted_secret_is_deployed_and_never_on_a_command_line() {
    let env = Env::new("vault");
    // Made at run time: no source file or build artifact holds it, so a file that does
    // was written by the deploy.
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut bytes,
    )
    .unwrap();
    let secret = vds_proxy::resources::hex(&bytes);
    let secret = secret.as_str();
    let key = env.dir.join("age.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen");
    assert!(out.status.success());
    let recipient = stdout(
        &Command::new("age-keygen")
            .arg("-y")
            .arg(&key)
            .output()
            .unwrap(),
    );
    env.inventory("[]");
    env.add_sections(&format!(
        r#""services": [{{"name": "enc", "node": "h1", "replicas": 1, "base_port": 10500, "secret": "{secret}",
            "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "EXEC:cat"]}}],
           "secrets": {{"recipients": ["{}"]}}"#,
        recipient.trim()
    ));
    let vds = |args: &[&str]| {
        env.command(args)
            .env("VDS_PROXY_AGE_KEY_FILE", &key)
            .output()
            .unwrap()
    };
    assert_ok(&vds(&["secrets", "encrypt"]));
    let inv = std::fs::read_to_string(env.dir.join("nodes.json")).unwrap();
    assert!(!inv.contains(secret) && inv.contains("ENC[age:"));

    // Deploy, sampling every process's command line and environment while it runs.
    let mut child = env
        .command(&["deploy"])
        .env("VDS_PROXY_AGE_KEY_FILE", &key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut samples = 0;
    let mut seen_ours = 0;
    while child.try_wait().unwrap().is_none() {
        let held = holding(secret);
        seen_ours += usize::from(processes_seen() > 0);
        assert!(held.is_empty(), "processes held the secret: {held:?}");
        samples += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    assert!(samples > 5, "only {samples} samples");
    assert!(seen_ours > 0, "no vds-proxy or ssh process was seen");
    assert!(!text(&out).contains(secret));
    let file = "/etc/vds-proxy/enc/1.env";
    assert_eq!(
        stdout(&ssh(
            1,
            &format!("stat -c '%a %U' {file}; grep -c '^SECRET={secret}$' {file}")
        )),
        "600 root\n1\n"
    );
    // Nothing of it left in a temporary or transaction directory on either side.
    let left = stdout(&ssh(
        1,
        &format!(
            "grep -rl {secret} /tmp /var/tmp /var/lib/vds-proxy /run 2>/dev/null | grep -v '^{file}$' || true"
        ),
    ));
    assert_eq!(left, "");
    // (The test hosts' own files, seen from here under the testbed directory, are theirs.)
    let here = Command::new("grep")
        .args([
            "-rl",
            "--exclude-dir=vds-proxy-testbed",
            secret,
            "/tmp",
            "/var/tmp",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&here), "", "a local file holds the secret");
    assert!(text(&vds(&["deploy"])).contains("no changes"));

    // No digest of it is recorded (the manifest goes back to this machine with every
    // gather); the file is compared by a digest keyed for each gather instead: a change by
    // hand is seen, and a deploy rewrites that file only.
    let plain = stdout(&ssh(1, &format!("sha256sum < {file} | cut -c1-64")));
    let manifest = stdout(&ssh(1, "cat /var/lib/vds-proxy/state.json"));
    assert!(!manifest.contains(plain.trim()), "{manifest}");
    assert!(manifest.contains(&format!("{{\"path\":\"{file}\",\"sha256\":\"\",")), "{manifest}");
    assert_ok(&vds(&["status"]));
    assert_ok(&ssh(1, &format!("echo EXTRA=1 >> {file}")));
    let status = vds(&["status"]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    assert!(text(&status).contains("differs from the inventory"), "{}", text(&status));
    let out = vds(&["deploy", "--format", "json"]);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let files = &doc["hosts"][0]["files"];
    assert_eq!(files, &serde_json::json!([{"change": "updated", "path": file}]), "{doc:#}");
    assert_eq!(stdout(&ssh(1, &format!("grep -c EXTRA {file} || true"))), "0\n");
    assert!(text(&vds(&["deploy"])).contains("no changes"));

    // A new value in the inventory (encrypted again) redeploys that file only.
    let new_secret = secret.chars().rev().collect::<String>();
    let inv = std::fs::read_to_string(env.dir.join("nodes.json")).unwrap();
    let start = inv.find("\"ENC[age:").unwrap();
    let end = start + 1 + inv[start + 1..].find('"').unwrap();
    let inv = format!("{}\"{new_secret}\"{}", &inv[..start], &inv[end + 1..]);
    std::fs::write(env.dir.join("nodes.json"), inv).unwrap();
    assert_ok(&vds(&["secrets", "encrypt"]));
    let out = vds(&["deploy", "--format", "json"]);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        &doc["hosts"][0]["files"],
        &serde_json::json!([{"change": "updated", "path": file}]),
        "{doc:#}"
    );
    assert!(!text(&out).contains(&new_secret));
    assert_eq!(
        stdout(&ssh(1, &format!("grep -c '^SECRET={new_secret}$' {file}"))),
        "1\n"
    );
    assert_ok(&vds(&["remove"]));
}

/// A command for some nodes reads only the secrets their files hold: `deploy --dry-run
/// --node h1` runs the command of h1's secret, not h2's; once h1 holds a file made from a
/// secret (a registry's token digests), which secrets it needs cannot be told and all are
/// read.
#[test]
fn a_command_for_one_node_reads_only_that_nodes_secrets() {
    let env = Env::new("vault-per-node");
    let mark = |n: u32| env.dir.join(format!("read-{n}"));
    // Each value is in a file the command reads (in the inventory it would be a secret in
    // plain text, which is refused).
    let value = |name: &str, v: &str| {
        let f = env.dir.join(name);
        std::fs::write(&f, v).unwrap();
        f.display().to_string()
    };
    let service = |n: u32| {
        let file = value(&format!("value-{n}"), &format!("0123456789abcdef0123456789abcde{n}"));
        format!(
            r#"{{"name": "s{n}", "node": "h{n}", "replicas": 1, "base_port": 1060{n},
                "secret": {{"command": ["sh", "-c", "touch {}; cat {file}"]}},
                "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "EXEC:cat"]}}"#,
            mark(n).display()
        )
    };
    env.inventory("[]");
    env.add_sections(&format!(r#""services": [{}, {}]"#, service(1), service(2)));
    let reads = || (mark(1).exists(), mark(2).exists());
    let forget = || {
        let _ = std::fs::remove_file(mark(1));
        let _ = std::fs::remove_file(mark(2));
    };
    forget();
    let out = env.vds(&["deploy", "--dry-run", "--node", "h1"]);
    assert_ok(&out);
    assert_eq!(reads(), (true, false), "{}", text(&out));
    forget();
    assert_ok(&env.vds(&["deploy", "--node", "h2"]));
    assert_eq!(reads(), (false, true));
    forget();
    let out = env.vds(&["deploy", "--dry-run"]);
    assert_ok(&out);
    assert_eq!(reads(), (true, true), "all nodes: every secret");
    // h1 now also holds a file made from a secret: every secret is read.
    let token = value("value-token", "reader-token-0123456789abcdef");
    env.add_sections(&format!(
        r#""registries": [{{"node": "h1", "port": 8090, "tokens": [{{"name": "r", "role": "reader",
            "token": {{"command": ["sh", "-c", "touch {}; cat {token}"]}}}}]}}]"#,
        env.dir.join("read-token").display()
    ));
    forget();
    let out = env.vds(&["deploy", "--dry-run", "--node", "h1"]);
    assert_ok(&out);
    assert_eq!(reads(), (true, true), "{}", text(&out));
    assert!(env.dir.join("read-token").exists());
    assert_ok(&env.vds(&["remove"]));
}
