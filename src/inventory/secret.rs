//! Secret fields: a literal value, or a reference to where the value is kept, so
//! `nodes.json` (the file people commit) need not hold it:
//!
//! - `{"env": "NAME"}`: the environment variable `NAME` of the vds-proxy process;
//! - `{"file": "secrets/db-password"}`: a file's content (relative to the inventory), one
//!   trailing newline removed;
//! - `{"command": ["pass", "show", "shop/db"]}`: what a program prints (argv, no shell;
//!   its standard output with the trailing newline removed);
//! - `"ENC[age:…]"`: the value encrypted in place with age (the reference implementation,
//!   `age`, decrypts it through pipes with the identity in `VDS_PROXY_AGE_KEY_FILE`, else
//!   `~/.config/vds-proxy/age.txt`; an SSH ed25519 key works too).
//!
//! A whole inventory encrypted with SOPS (a top-level `sops` key) is decrypted with `sops -d`
//! when it is read, in memory.
//!
//! A value read lives only in memory: it is never written to a temporary file, never put on
//! a command line or into an environment, and a problem names the JSON path and the
//! reference, never the value or what a command printed.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::error::Collector;
use super::reader::kind;

/// How long a `command` reference may take (a password manager asking to unlock).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The secret at `path` whose JSON value is `v`: a string (the value itself), or a
/// reference read now. `None` after recording why it could not be read.
pub fn value(c: &mut Collector, path: &str, v: &Value) -> Option<String> {
    c.note_secret(path, v.as_str().is_some_and(|s| !is_encrypted(s)));
    let read = read(c, path, v)?;
    c.note_secret_value(path, source(v), &read);
    Some(read)
}

/// Where the secret whose JSON value is `v` comes from, as `show` names it: `env:NAME`,
/// `file:PATH`, `command:PROGRAM`, `encrypted` or `literal` (never the value).
pub fn source(v: &Value) -> String {
    match v {
        Value::String(s) if is_encrypted(s) => "encrypted".into(),
        Value::String(_) => "literal".into(),
        Value::Object(map) => match map.iter().next() {
            Some((how, Value::String(arg))) => format!("{how}:{arg}"),
            Some((how, Value::Array(argv))) => {
                format!(
                    "{how}:{}",
                    argv.first().and_then(Value::as_str).unwrap_or("?")
                )
            }
            _ => "reference".into(),
        },
        _ => "reference".into(),
    }
}

fn read(c: &mut Collector, path: &str, v: &Value) -> Option<String> {
    if c.skips_secret(path) {
        return offline(c, path, v);
    }
    match v {
        Value::String(s) if is_encrypted(s) => match decrypt(s) {
            Ok(plain) => Some(plain),
            Err(why) => {
                c.push(path, why);
                None
            }
        },
        Value::String(s) => Some(s.clone()),
        Value::Object(map) if map.len() == 1 => {
            let (how, arg) = map.iter().next().expect("one entry");
            let read = match (how.as_str(), arg) {
                ("env", Value::String(name)) => from_env(name),
                ("file", Value::String(file)) => from_file(c.base_dir(), file),
                ("command", Value::Array(words)) => {
                    let argv: Option<Vec<&str>> = words.iter().map(Value::as_str).collect();
                    match argv {
                        Some(argv) if !argv.is_empty() => from_command(&argv),
                        _ => Err("a command is an array of strings, the program first, e.g. [\"pass\", \"show\", \"shop/db\"]".into()),
                    }
                }
                ("env" | "file", other) => Err(format!("expected a string, found {}", kind(other))),
                ("command", other) => Err(format!(
                    "expected an array of strings, found {}",
                    kind(other)
                )),
                (other, _) => Err(format!(
                    "unknown reference \"{other}\"; a secret is a string, or one of {{\"env\": NAME}}, {{\"file\": PATH}}, {{\"command\": [PROGRAM, ARG...]}}"
                )),
            };
            match read {
                Ok(s) => Some(s),
                Err(why) => {
                    c.push(path, why);
                    None
                }
            }
        }
        other => {
            c.push(
                path,
                format!(
                    "expected a secret: a string, or one of {{\"env\": NAME}}, {{\"file\": PATH}}, {{\"command\": [PROGRAM, ARG...]}}; found {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// The prefix and suffix of a value encrypted in place.
pub const ENC_PREFIX: &str = "ENC[age:";
const ENC_SUFFIX: &str = "]";

/// Whether `s` is a value encrypted in place (`ENC[age:BASE64]`).
pub fn is_encrypted(s: &str) -> bool {
    s.starts_with(ENC_PREFIX) && s.ends_with(ENC_SUFFIX)
}

/// The identity file that decrypts: `VDS_PROXY_AGE_KEY_FILE`, else
/// `~/.config/vds-proxy/age.txt`.
pub fn identity_file() -> std::path::PathBuf {
    match std::env::var_os("VDS_PROXY_AGE_KEY_FILE") {
        Some(p) if !p.is_empty() => p.into(),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".config/vds-proxy/age.txt")
        }
    }
}

/// Runs `age` with `args`, `input` on its standard input; its standard output. Nothing of
/// the secret is on its command line or in its environment.
fn age(args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut child = Command::new("age")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run age ({e}); install it: apt-get install age"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|e| format!("age: {e}"))?;
    let _ = writer.join();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        // age's own words say what is wrong (no identity matched, a bad file); they hold
        // nothing of the plaintext.
        let why = String::from_utf8_lossy(&out.stderr);
        let why: String = why.split_whitespace().collect::<Vec<_>>().join(" ");
        Err(why.trim_start_matches("age: error:").trim().to_string())
    }
}

/// The plaintext of an `ENC[age:…]` value, decrypted with [`identity_file`].
pub fn decrypt(s: &str) -> Result<String, String> {
    use base64::Engine as _;
    let body = &s[ENC_PREFIX.len()..s.len() - ENC_SUFFIX.len()];
    let cipher = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "an encrypted value that is not base64 (damaged?)".to_string())?;
    let id = identity_file();
    if !id.is_file() {
        return Err(format!(
            "an encrypted value, and no identity to decrypt it at {}; set VDS_PROXY_AGE_KEY_FILE to your age identity (age-keygen) or SSH ed25519 key",
            id.display()
        ));
    }
    let id_arg = id.display().to_string();
    let plain = age(&["--decrypt", "--identity", &id_arg], &cipher)
        .map_err(|e| format!("cannot decrypt with the identity {id_arg}: {e}"))?;
    String::from_utf8(plain)
        .map_err(|_| "an encrypted value whose plaintext is not UTF-8 text".into())
}

/// `plain` encrypted to `recipients` (age public keys or SSH public keys), as an
/// `ENC[age:…]` value.
pub fn encrypt(plain: &str, recipients: &[String]) -> Result<String, String> {
    use base64::Engine as _;
    let mut args = vec!["--encrypt"];
    for r in recipients {
        args.push("--recipient");
        args.push(r);
    }
    let cipher = age(&args, plain.as_bytes())?;
    Ok(format!(
        "{ENC_PREFIX}{}{ENC_SUFFIX}",
        base64::engine::general_purpose::STANDARD.encode(cipher)
    ))
}

/// Whether `text` is a SOPS-encrypted JSON document (a top-level `"sops"` object).
pub fn is_sops(text: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, Value>>(text)
        .is_ok_and(|m| m.get("sops").is_some_and(Value::is_object))
}

/// The plaintext of the SOPS-encrypted inventory at `path`: `sops -d` (its keys from its
/// own configuration: age, PGP, cloud KMS), read from its standard output into memory.
pub fn sops_decrypt(path: &Path) -> Result<String, String> {
    let out = Command::new("sops")
        .args(["--decrypt", "--input-type", "json", "--output-type", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("the inventory is encrypted with SOPS, and sops cannot run ({e}); install sops")
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why: String = why.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(format!("sops could not decrypt the inventory: {why}"));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| "sops printed something that is not UTF-8".to_string())?;
    if is_sops(&text) {
        return Err("sops printed an inventory that is still encrypted".into());
    }
    Ok(text)
}

/// What an unread secret stands for (`validate --offline-secrets`), followed by its JSON
/// path so no two are alike: passes the rules a value is checked with later (length, one
/// line, no two tokens the same).
pub const OFFLINE: &str = "offline-secret-not-read:";

/// A secret checked for its shape only: a reference names what it reads, an encrypted
/// value is base64; a literal is itself.
fn offline(c: &mut Collector, path: &str, v: &Value) -> Option<String> {
    use base64::Engine as _;
    let problem = match v {
        Value::String(s) if is_encrypted(s) => base64::engine::general_purpose::STANDARD
            .decode(&s[ENC_PREFIX.len()..s.len() - ENC_SUFFIX.len()])
            .err()
            .map(|_| "an encrypted value that is not base64 (damaged?)".to_string()),
        Value::String(s) => return Some(s.clone()),
        Value::Object(map) if map.len() == 1 => match map
            .iter()
            .next()
            .map(|(k, v)| (k.as_str(), v))
            .expect("one entry")
        {
            ("env", Value::String(name)) => from_env_name(name).err(),
            ("file", Value::String(f)) if !f.is_empty() => None,
            ("command", Value::Array(w)) if !w.is_empty() && w.iter().all(Value::is_string) => None,
            _ => Some(
                "expected {\"env\": NAME}, {\"file\": PATH} or {\"command\": [PROGRAM, ARG...]}"
                    .into(),
            ),
        },
        other => Some(format!("expected a secret, found {}", kind(other))),
    };
    match problem {
        Some(p) => {
            c.push(path, p);
            None
        }
        None => Some(format!("{OFFLINE}{path}")),
    }
}

/// Checks an environment variable's name.
fn from_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an environment variable name (letters, digits and _)"
        ))
    }
}

fn from_env(name: &str) -> Result<String, String> {
    from_env_name(name)?;
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(format!("the environment variable {name} is empty")),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "the environment variable {name} is not set; export it before running vds-proxy"
        )),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("the environment variable {name} is not UTF-8 text"))
        }
    }
}

fn from_file(base: &Path, file: &str) -> Result<String, String> {
    let p = base.join(file);
    let shown = p.display();
    let bytes =
        std::fs::read(&p).map_err(|e| format!("cannot read the secret file {shown}: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("the secret file {shown} is not UTF-8 text"))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(format!("the secret file {shown} is empty"));
    }
    Ok(text.to_string())
}

fn from_command(argv: &[&str]) -> Result<String, String> {
    let shown = argv.join(" ");
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    // Read on a thread, so a program that never ends is stopped after the timeout.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("`{shown}`: {e}"))? {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`{shown}` did not finish in {} s; it was stopped",
                COMMAND_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = reader
        .join()
        .map_err(|_| format!("`{shown}`: reading its output failed"))?
        .map_err(|e| format!("`{shown}`: reading its output failed: {e}"))?;
    if !status.success() {
        // What it printed may be part of a secret: never shown.
        return Err(format!(
            "`{shown}` failed ({status}); what it printed is not shown"
        ));
    }
    let text = String::from_utf8(out)
        .map_err(|_| format!("`{shown}` printed something that is not UTF-8 text"))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Err(format!("`{shown}` printed nothing"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> (Option<String>, Vec<String>) {
        let tmp = tempfile::Builder::new()
            .prefix("vds-secret-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("db"), "from-a-file\n").unwrap();
        let mut c = Collector::new(dir.join("nodes.json").display().to_string());
        let got = value(&mut c, "$.x", &v);
        let msgs = c.messages();
        (got, msgs)
    }

    #[test]
    fn literals_and_references_are_read_and_failures_name_the_reference_only() {
        assert_eq!(read(json!("literal")).0.as_deref(), Some("literal"));
        assert_eq!(
            read(json!({"file": "db"})).0.as_deref(),
            Some("from-a-file")
        );
        // SAFETY: tests of this module are the only ones reading this variable.
        unsafe { std::env::set_var("VDS_TEST_SECRET_REF", "from-the-env") };
        assert_eq!(
            read(json!({"env": "VDS_TEST_SECRET_REF"})).0.as_deref(),
            Some("from-the-env")
        );
        assert_eq!(
            read(json!({"command": ["sh", "-c", "printf 'from-a-command\\n'"]}))
                .0
                .as_deref(),
            Some("from-a-command")
        );
        let (got, msgs) =
            read(json!({"command": ["sh", "-c", "printf '%s-%s' hunter2 printed; exit 3"]}));
        assert!(got.is_none());
        assert!(
            msgs[0].contains("failed (exit status: 3); what it printed is not shown"),
            "{msgs:?}"
        );
        assert!(!msgs[0].contains("hunter2-printed"));
        let (_, msgs) = read(json!({"env": "VDS_TEST_SECRET_NOT_SET"}));
        assert!(msgs[0].ends_with("$.x: the environment variable VDS_TEST_SECRET_NOT_SET is not set; export it before running vds-proxy"), "{msgs:?}");
        let (_, msgs) = read(json!({"vault": "x"}));
        assert!(msgs[0].contains("unknown reference \"vault\""), "{msgs:?}");
        let (_, msgs) = read(json!({"file": "missing"}));
        assert!(msgs[0].contains("cannot read the secret file"), "{msgs:?}");
        let (_, msgs) = read(json!(42));
        assert!(msgs[0].contains("expected a secret"), "{msgs:?}");
    }
}
