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
