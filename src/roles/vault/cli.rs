//! The secrets verbs through the real binary (included in `tests/cli.rs`, whose helpers it
//! uses), with real age keys (`age-keygen`; the `age` package).

use std::path::Path;
use std::process::Command;

use super::{bin, tmp_inventory};

/// A new age identity in `dir/NAME.txt`; its recipient.
fn keygen(dir: &Path, name: &str) -> String {
    let file = dir.join(format!("{name}.txt"));
    let _ = std::fs::remove_file(&file);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .output()
        .expect("age-keygen (apt-get install age)");
    assert!(out.status.success());
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn run(inv: &Path, key: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = bin();
    cmd.arg("-i")
        .arg(inv)
        .args(args)
        .env_remove("VDS_PROXY_AGE_KEY_FILE");
    if let Some(k) = key {
        cmd.env("VDS_PROXY_AGE_KEY_FILE", k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// encrypt → every plain secret field is ENC[age:…] in place (the rest of the file byte
/// for byte), the inventory loads with the identity and is bad input without it;
/// decrypt --stdout gives the original back; rotate to a new recipient leaves the old
/// identity out; edit re-encrypts what $EDITOR changed and leaves no plain copy.
#[test]
fn secrets_are_encrypted_in_place_decrypted_rotated_and_edited() {
    let token = "plain-reader-token-0123456789abcdef";
    let secret = "0123456789abcdef0123456789abcdef";
    let text = format!(
        r#"{{"nodes": [{{"name": "a", "public_ip": "203.0.113.1", "tailscale_ip": "100.64.0.1"}}],
  "services": [{{"name": "mtp", "node": "a", "replicas": 1, "secret": "{secret}",
                "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{{port}}"]}}],
  "registries": [{{"node": "a", "tokens": [{{"name": "web", "role": "reader", "token": "{token}"}}]}}],
  "secrets": {{"recipients": ["RECIPIENT"]}}}}
"#
    );
    let inv = tmp_inventory("secrets-verbs", "{}");
    let dir = inv.parent().unwrap().to_path_buf();
    let me = keygen(&dir, "me");
    let key = dir.join("me.txt");
    let original = text.replace("RECIPIENT", &me);
    std::fs::write(&inv, &original).unwrap();

    let (code, out, err) = run(&inv, Some(&key), &["secrets", "encrypt"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("{}: 2 secret field(s) encrypted\n", inv.display())
    );
    let encrypted = std::fs::read_to_string(&inv).unwrap();
    assert!(!encrypted.contains(token) && !encrypted.contains(secret));
    assert_eq!(encrypted.matches("\"ENC[age:").count(), 2);
    // Only the two values changed: the lines around them are as they were.
    let kept = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains("secret\":") && !l.contains("token\":"))
            .map(String::from)
            .collect()
    };
    assert_eq!(kept(&encrypted), kept(&original));
    assert_eq!(run(&inv, Some(&key), &["validate"]).0, 0);
    let (code, out, err) = run(&inv, Some(&key), &["show"]);
    assert_eq!(code, 0);
    assert!(!out.contains(secret) && !out.contains(token) && !err.contains(token));

    let (code, _, err) = run(&inv, Some(Path::new("/nonexistent/key.txt")), &["validate"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("$.services[0].secret: an encrypted value, and no identity to decrypt it at /nonexistent/key.txt"),
        "{err}"
    );

    let (code, plain, _) = run(&inv, Some(&key), &["secrets", "decrypt", "--stdout"]);
    assert_eq!(code, 0);
    assert_eq!(plain, original);

    // Rotate to another recipient only: the first identity no longer decrypts.
    let other = keygen(&dir, "other");
    std::fs::write(&inv, encrypted.replace(&me, &other)).unwrap();
    let (code, out, err) = run(&inv, Some(&key), &["secrets", "rotate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.ends_with("2 secret field(s) encrypted again\n"),
        "{out}"
    );
    let (code, _, err) = run(&inv, Some(&key), &["validate"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("$.services[0].secret: cannot decrypt with the identity"),
        "{err}"
    );
    assert!(!err.contains(secret));
    assert_eq!(run(&inv, Some(&dir.join("other.txt")), &["validate"]).0, 0);

    // Edit: a scripted editor changes the token; it is stored encrypted, the copy is gone.
    let editor = dir.join("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nls -ld \"$(dirname \"$1\")\" | cut -c1-10 > {0}/mode\n\
             sed -i 's/{token}/edited-token-0123456789abcdef-xyz/' \"$1\"\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let runtime = dir.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let out = bin()
        .arg("-i")
        .arg(&inv)
        .args(["secrets", "edit"])
        .env("VDS_PROXY_AGE_KEY_FILE", dir.join("other.txt"))
        .env("EDITOR", &editor)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("mode")).unwrap(),
        "drwx------\n"
    );
    assert_eq!(
        std::fs::read_dir(&runtime).unwrap().count(),
        0,
        "the plain copy is left"
    );
    let edited = std::fs::read_to_string(&inv).unwrap();
    assert!(!edited.contains("edited-token") && edited.matches("\"ENC[age:").count() == 2);
    let (_, plain, _) = run(
        &inv,
        Some(&dir.join("other.txt")),
        &["secrets", "decrypt", "--stdout"],
    );
    assert!(
        plain.contains("\"token\": \"edited-token-0123456789abcdef-xyz\""),
        "{plain}"
    );
}

/// `show` names where each secret of a file comes from (`<secret: env:NAME>`,
/// `<secret: encrypted>`) and its JSON path, never the value.
#[test]
fn show_names_where_each_secret_comes_from() {
    let secret = "0123456789abcdef0123456789abcdef";
    let text = r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1"}],
  "services": [{"name": "mtp", "node": "a", "replicas": 1, "secret": {"env": "VDS_TEST_MTP_SECRET"},
                "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{port}", "-S", "{secret}"]}]}"#;
    let inv = tmp_inventory("show-sources", text);
    let out = bin()
        .arg("-i")
        .arg(&inv)
        .arg("show")
        .env("VDS_TEST_MTP_SECRET", secret)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("<redacted> (holds <secret: env:VDS_TEST_MTP_SECRET> ($.services[0].secret))"),
        "{shown}"
    );
    assert!(!shown.contains(secret));
}

/// An SSH ed25519 key serves as the age identity, its public key as the recipient (age
/// supports both): encrypt in place, then the inventory loads with the SSH key alone.
#[test]
fn an_ssh_ed25519_key_is_an_identity() {
    let secret = "fedcba9876543210fedcba9876543210";
    let inv = tmp_inventory("ssh-identity", "{}");
    let dir = inv.parent().unwrap();
    let key = dir.join("id_ed25519");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(dir.join("id_ed25519.pub"));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client)");
    assert!(out.status.success());
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
    let recipient: Vec<&str> = public.split_whitespace().take(2).collect();
    std::fs::write(
        &inv,
        format!(
            r#"{{"nodes": [{{"name": "a", "public_ip": "203.0.113.1"}}],
  "services": [{{"name": "mtp", "node": "a", "replicas": 1, "secret": "{secret}",
                "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{{port}}", "-S", "{{secret}}"]}}],
  "secrets": {{"recipients": ["{}"]}}}}"#,
            recipient.join(" ")
        ),
    )
    .unwrap();
    let (code, out, err) = run(&inv, Some(&key), &["secrets", "encrypt"]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&inv).unwrap();
    assert!(text.contains("\"secret\": \"ENC[age:") && !text.contains(secret), "{text}");
    let (code, out, err) = run(&inv, Some(&key), &["validate"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&inv, Some(&key), &["secrets", "decrypt", "--stdout"]);
    assert_eq!(code, 0);
    assert!(out.contains(secret), "{out}");
    // Without the key: bad input naming the field, not the value.
    let (code, _, err) = run(&inv, None, &["validate"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("$.services[0].secret") && !err.contains(secret), "{err}");
}

/// `show` (without `--diff`) reads no secret: a command reference is not run and an unset
/// variable is no error; what needs the values (`validate`, a dry run) reads them.
#[test]
fn show_reads_no_secret() {
    let inv = tmp_inventory("show-reads-none", "{}");
    let marker = inv.parent().unwrap().join("command-ran");
    let _ = std::fs::remove_file(&marker);
    std::fs::write(
        &inv,
        format!(
            r#"{{"nodes": [{{"name": "a", "public_ip": "203.0.113.1"}}],
  "services": [{{"name": "mtp", "node": "a", "replicas": 1,
    "secret": {{"command": ["sh", "-c", "touch {}; echo 0123456789abcdef0123456789abcdef"]}},
    "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{{port}}", "-S", "{{secret}}"]}},
   {{"name": "other", "node": "a", "replicas": 1, "base_port": 11000, "secret": {{"env": "VDS_TEST_UNSET_SECRET"}},
    "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{{port}}", "-S", "{{secret}}"]}}]}}"#,
            marker.display()
        ),
    )
    .unwrap();
    let (code, out, err) = run(&inv, None, &["show"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("<secret: command:sh> ($.services[0].secret)"), "{out}");
    assert!(!marker.exists(), "show ran the secret's command");
    let (code, _, err) = run(&inv, None, &["validate"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("$.services[1].secret") && err.contains("VDS_TEST_UNSET_SECRET"), "{err}");
    assert!(marker.exists(), "validate reads every secret");
}

/// The recipients may live in `vds-proxy.toml` (`age_recipients`) instead of the
/// inventory; one that is not a public key is bad input naming the file.
#[test]
fn recipients_can_live_in_the_settings_file() {
    let secret = "00112233445566778899aabbccddeeff";
    let inv = tmp_inventory(
        "toml-recipients",
        &format!(
            r#"{{"nodes": [{{"name": "a", "public_ip": "203.0.113.1"}}],
  "services": [{{"name": "mtp", "node": "a", "replicas": 1, "secret": "{secret}",
                "exec": ["/usr/local/bin/mtproto-proxy", "-H", "{{port}}", "-S", "{{secret}}"]}}]}}"#
        ),
    );
    let dir = inv.parent().unwrap();
    let recipient = keygen(dir, "toml");
    let toml = dir.join("vds-proxy.toml");
    std::fs::write(&toml, "age_recipients = [\"not-a-key\"]\n").unwrap();
    let (code, _, err) = run(&inv, Some(&dir.join("toml.txt")), &["secrets", "encrypt"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("vds-proxy.toml: age_recipients: \"not-a-key\""), "{err}");
    std::fs::write(&toml, format!("age_recipients = [\"{recipient}\"]\n")).unwrap();
    let (code, out, err) = run(&inv, Some(&dir.join("toml.txt")), &["secrets", "encrypt"]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&inv).unwrap();
    assert!(text.contains("ENC[age:") && !text.contains(secret), "{text}");
    let (code, out, _) = run(&inv, Some(&dir.join("toml.txt")), &["secrets", "decrypt", "--stdout"]);
    assert_eq!(code, 0);
    assert!(out.contains(secret));
}
