//! Secrets encrypted in place in `nodes.json`: the recipients they are encrypted to (the
//! `secrets` section), and `vds-proxy secrets encrypt|decrypt|rotate|edit`. Reading a
//! secret field — literal, `{"env"}`, `{"file"}`, `{"command"}` or `"ENC[age:…]"` — is
//! the shared reader's (`inventory::secret`), so every system's secret fields take every
//! form. The cryptography is age's reference implementation, run through pipes.

mod spans;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::contract::{self, BadInput, Ctx, Output, Systems, Verb, VerbCtx};
use crate::inventory::secret::{self, is_encrypted};
use crate::inventory::{Claims, Collector, Fields, Inventory, SectionReader, Sections};
use crate::templates::TemplateError;

/// The `secrets` section: who values are encrypted to.
#[derive(Debug, Default)]
struct Section {
    recipients: Vec<String>,
}

fn of(inv: &Inventory) -> &Section {
    inv.section::<Section>()
}

/// An age recipient (`age1…`) or an SSH public key age takes (`ssh-ed25519 …`, `ssh-rsa …`).
fn recipient(s: &str) -> Result<String, String> {
    let age = s.starts_with("age1")
        && s.len() > 10
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ssh = (s.starts_with("ssh-ed25519 ") || s.starts_with("ssh-rsa "))
        && s.split(' ').nth(1).is_some_and(|k| {
            k.len() > 20
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        })
        && !s.chars().any(char::is_control);
    if age || ssh {
        Ok(s.to_string())
    } else {
        Err("is not an age recipient (age1…, from age-keygen -y) or an SSH public key (ssh-ed25519 …)".into())
    }
}

/// The vault: secrets encrypted in place (the `secrets` key and verb).
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "vault"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["secrets"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let mut section = Section::default();
        if let Some(v) = top.get("secrets")
            && let Some(f) = Fields::new(c, &top.path_of("secrets"), v, &["recipients"])
        {
            section.recipients = f.parsed_list(c, "recipients", "recipients", recipient);
        }
        into.insert(section);
    }

    fn validate(&self, _inv: &Inventory, _c: &mut Collector, _claims: &mut Claims) {}

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        let fields = inv.secret_fields();
        (!fields.is_empty()).then(|| {
            let plain = fields.iter().filter(|(_, literal)| *literal).count();
            format!("{} secret field(s), {plain} in plain text", fields.len())
        })
    }
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Nothing on the nodes: the secrets reach them through the systems that use them.
    fn plan(&self, _ctx: &Ctx, _out: &mut Output) -> Result<(), TemplateError> {
        Ok(())
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.all.push(&System);
    r.verbs.push(Verb { command, run });
}

fn command() -> Command {
    Command::new("secrets")
        .about("Secrets encrypted in place in the inventory (age): encrypt, decrypt, rotate, edit")
        .subcommand_required(true)
        .subcommand(
            Command::new("encrypt")
                .about("Encrypt every secret field written in plain text, in place, to the recipients in \"secrets\""),
        )
        .subcommand(
            Command::new("decrypt").about("Print the inventory with its secrets decrypted").arg(
                Arg::new("stdout")
                    .long("stdout")
                    .action(ArgAction::SetTrue)
                    .required(true)
                    .help("To standard output (the only place a decrypted inventory goes)"),
            ),
        )
        .subcommand(
            Command::new("rotate")
                .about("Encrypt every encrypted secret again, to the recipients in \"secrets\" now"),
        )
        .subcommand(Command::new("edit").about(
            "Edit the inventory decrypted in $EDITOR (a copy in a private directory, removed afterwards); secrets are encrypted again on save",
        ))
}

fn run(ctx: &VerbCtx, args: &ArgMatches) -> Result<i32> {
    let file = &ctx.inv.source;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if secret::is_sops(&text) {
        return Err(BadInput(format!(
            "{} is encrypted with SOPS as a whole: use sops to edit it",
            file.display()
        ))
        .into());
    }
    match args.subcommand() {
        Some(("encrypt", _)) => {
            let recipients = recipients(ctx)?;
            let (new, n) = rewrite(&text, ctx.inv, |plain, literal| {
                literal
                    .then(|| secret::encrypt(plain, &recipients))
                    .transpose()
            })?;
            write_in_place(file, &new)?;
            println!("{}: {n} secret field(s) encrypted", file.display());
        }
        Some(("decrypt", _)) => {
            let (plain, _) = rewrite(&text, ctx.inv, |plain, literal| {
                Ok((!literal).then(|| plain.to_string()))
            })?;
            std::io::stdout().write_all(plain.as_bytes())?;
        }
        Some(("rotate", _)) => {
            let recipients = recipients(ctx)?;
            let (new, n) = rewrite(&text, ctx.inv, |plain, literal| {
                (!literal)
                    .then(|| secret::encrypt(plain, &recipients))
                    .transpose()
            })?;
            write_in_place(file, &new)?;
            println!("{}: {n} secret field(s) encrypted again", file.display());
        }
        Some(("edit", _)) => return edit(ctx, &text),
        _ => unreachable!("a subcommand is required"),
    }
    Ok(0)
}

/// The recipients to encrypt to: those of `vds-proxy.toml` (`age_recipients`) and of the
/// inventory's `secrets` section, or why there are none.
fn recipients(ctx: &VerbCtx) -> Result<Vec<String>> {
    let mut all = Vec::new();
    for r in &ctx.settings.age_recipients {
        let r = recipient(r)
            .map_err(|why| BadInput(format!("vds-proxy.toml: age_recipients: {r:?} {why}")))?;
        all.push(r);
    }
    for r in &of(ctx.inv).recipients {
        if !all.contains(r) {
            all.push(r.clone());
        }
    }
    if all.is_empty() {
        return Err(BadInput(format!(
            "{}: no recipients to encrypt to; add age_recipients = [\"age1…\"] to vds-proxy.toml, \
             or \"secrets\": {{\"recipients\": [\"age1…\"]}} to the inventory (age-keygen -y YOUR_KEY prints yours)",
            ctx.inv.source.display()
        ))
        .into());
    }
    Ok(all)
}

/// `text` with the value of each secret field replaced by what `with` returns for it
/// (given its plaintext and whether it was written in plain text), when it returns one;
/// the count replaced. Everything else of the text stays as it is.
fn rewrite(
    text: &str,
    inv: &Inventory,
    with: impl Fn(&str, bool) -> std::result::Result<Option<String>, String>,
) -> Result<(String, usize)> {
    let fields = inv.secret_fields();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut n = 0;
    for span in spans::strings(text) {
        let Some((_, literal)) = fields.iter().find(|(p, _)| *p == span.path) else {
            continue;
        };
        let raw: String = serde_json::from_str(&text[span.start..span.end])?;
        let plain = if is_encrypted(&raw) {
            secret::decrypt(&raw).map_err(|e| BadInput(format!("{}: {e}", span.path)))?
        } else {
            raw
        };
        let Some(new) =
            with(&plain, *literal).map_err(|e| BadInput(format!("{}: {e}", span.path)))?
        else {
            continue;
        };
        out.push_str(&text[last..span.start]);
        out.push_str(&serde_json::Value::String(new).to_string());
        last = span.end;
        n += 1;
    }
    out.push_str(&text[last..]);
    Ok((out, n))
}

/// Replaces `file` with `text` atomically (a temporary file beside it, its mode kept).
fn write_in_place(file: &Path, text: &str) -> Result<()> {
    let tmp = file.with_extension(format!("vds-tmp.{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(file) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, file).with_context(|| format!("replacing {}", file.display()))?;
    Ok(())
}

/// A private directory removed when dropped, whatever happened.
struct PrivateDir(std::path::PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `secrets edit`: the decrypted inventory in a 0700 directory, `$EDITOR` on it, then the
/// secret fields that were encrypted (and any new ones written in plain text) encrypted
/// again into the inventory. The plain copy is removed even on error.
fn edit(ctx: &VerbCtx, text: &str) -> Result<i32> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let recipients = recipients(ctx)?;
    let (plain, _) = rewrite(text, ctx.inv, |plain, literal| {
        Ok((!literal).then(|| plain.to_string()))
    })?;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("vds-proxy-edit-{}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let guard = PrivateDir(dir);
    let copy = guard.0.join("nodes.json");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy)?
        .write_all(plain.as_bytes())?;
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    // The editor's command line names the copy only; $EDITOR may hold arguments.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec $EDITOR \"$1\"")
        .arg("sh")
        .arg(&copy)
        .env("EDITOR", &editor)
        .status()
        .context("running $EDITOR")?;
    if !status.success() {
        return Err(BadInput(format!(
            "$EDITOR ({editor}) failed ({status}); the inventory is unchanged"
        ))
        .into());
    }
    let edited = std::fs::read_to_string(&copy)?;
    if edited == plain {
        println!("{}: unchanged", ctx.inv.source.display());
        return Ok(0);
    }
    // Read the edited inventory as vds-proxy would, to know its secret fields.
    let inv = (ctx.read)(&edited).map_err(|e| {
        BadInput(format!(
            "the edited inventory is not valid; the inventory is unchanged:\n{e}"
        ))
    })?;
    let (new, n) = rewrite(&edited, &inv, |plain, literal| {
        literal
            .then(|| secret::encrypt(plain, &recipients))
            .transpose()
    })?;
    write_in_place(&ctx.inv.source, &new)?;
    println!(
        "{}: saved, {n} secret field(s) encrypted",
        ctx.inv.source.display()
    );
    Ok(0)
}
