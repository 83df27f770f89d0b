//! Apply: one script per host that stages, validates, commits, activates and checks the
//! changes, and restores the previous files if anything fails.
//!
//! Order inside the script (all under the host lock):
//! 1. the manifest must be the one gathered (else another deploy ran: exit 76, re-gather);
//! 2. every changed file is staged in a transaction directory and validated by its kind;
//!    binaries go live first (units are verified against them) and are restored if a unit
//!    fails verification: exit 65, the host is as it was;
//! 3. files are installed atomically (temp file in the target directory, mode and owner
//!    set, rename), the previous version kept in the transaction directory;
//! 4. pruned units are stopped and disabled, pruned files deleted;
//! 5. daemon-reload, enable, restart/reload/start; every touched unit must be active;
//! 6. on failure everything is restored and re-activated: exit 1 with the journal lines;
//! 7. the new manifest is written.

use std::collections::BTreeSet;
use std::fmt::Write;

use anyhow::{Context, Result};
use base64::Engine as _;

use super::diff::{Changes, Why};
use super::gather::Facts;
use super::state::{ORIG_DIR, STATE_DIR, STATE_FILE, orig_name};
use crate::resources::{Action, Content, Kind, Resource, UnitSpec, unit};
use crate::shell::quote;

/// Exit code of the script when validation failed and nothing was changed.
pub const EXIT_INVALID: i32 = 65;
/// Exit code when the host lock could not be taken in time.
pub const EXIT_LOCKED: i32 = 75;
/// Exit code when the manifest changed since gather (another deploy ran meanwhile).
pub const EXIT_STALE: i32 = 76;

/// Where the lock file lives on a host.
pub const LOCK_FILE: &str = "/run/vds-proxy.lock";

/// Seconds between a balancer reload and stopping the backends it no longer uses.
pub const LATE_STOP_GRACE_SECS: u64 = 2;

/// Seconds a deploy waits for another one on the same host.
pub const LOCK_WAIT_SECS: u64 = 90;

/// The transaction directory (only one apply runs at a time: the lock is held).
const TXN_DIR: &str = "/var/lib/vds-proxy/txn";

const HEREDOC: &str = "VDS_PROXY_EOF_7f3a";

fn b64(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / 76 + 1);
    for chunk in text.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        out.push('\n');
    }
    out
}

fn bytes_of(r: &Resource) -> Result<Vec<u8>> {
    match &r.content {
        Content::Text(t) => Ok(t.as_bytes().to_vec()),
        Content::Local { source, .. } => {
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))
        }
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The apply script for `changes`, checked against the manifest hash `facts` saw.
pub fn script(changes: &Changes, facts: &Facts, plan_units: &[UnitSpec]) -> Result<String> {
    let mut s = String::new();
    let q = quote;
    let state = q(STATE_FILE);
    let _ = write!(
        s,
        r#"export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
mkdir -p {dir} || exit 1
exec 9>{lock}
if ! flock -w {wait} 9; then echo "@locked"; exit {locked}; fi
cur=none; [ -r {state} ] && cur=$(sha256sum < {state} | cut -c1-64)
[ "$cur" = {expected} ] || {{ echo "@stale"; exit {stale}; }}
T={txn}
rm -rf "$T"
trap 'rm -rf "$T"; [ -e {state} ] || {{ rmdir {orig} {dir}; }} 2>/dev/null' EXIT
mkdir -p "$T/old" "$T/new" || exit 1
bad=0
validate() {{ if ! sh -c "$2" >"$T/v.log" 2>&1; then echo "@invalid $1"; sed 's/^/@log /' "$T/v.log"; bad=1; fi; }}
install_file() {{ # staged path mode owner:group backup marker
  if [ -e "$2" ]; then cp -p "$2" "$5" || return 1; fi
  cp "$1" "$2.vds-tmp" && chmod "$3" "$2.vds-tmp" && chown "$4" "$2.vds-tmp" && mv -f "$2.vds-tmp" "$2" && touch "$6"
}}
restore_file() {{ # path backup marker
  [ -e "$3" ] || return 0
  if [ -e "$2" ]; then cp -p "$2" "$1.vds-tmp" && mv -f "$1.vds-tmp" "$1"; else rm -f "$1"; fi
}}
echo "@step stage"
"#,
        dir = q(STATE_DIR),
        lock = q(LOCK_FILE),
        wait = LOCK_WAIT_SECS,
        locked = EXIT_LOCKED,
        stale = EXIT_STALE,
        expected = q(&facts.state_hash),
        txn = TXN_DIR,
        orig = q(ORIG_DIR),
    );

    // Stage and validate everything except units.
    let staged: Vec<(usize, &Resource, String)> = changes
        .write
        .iter()
        .enumerate()
        .filter(|(_, (_, why))| *why != Why::Metadata)
        .map(|(i, (r, _))| (i, *r, format!("{TXN_DIR}/new/{i}/{}", base_name(&r.path))))
        .collect();
    for (i, r, path) in &staged {
        let _ = writeln!(s, "mkdir \"$T/new/{i}\"");
        let _ = writeln!(s, "base64 -d > \"{path}\" <<'{HEREDOC}' || bad=1");
        s.push_str(&b64(&bytes_of(r)?));
        let _ = writeln!(s, "{HEREDOC}");
    }
    let validation = |s: &mut String, units: bool| {
        for (_, r, path) in &staged {
            if r.kind.ops().systemd() != units {
                continue;
            }
            if let Some(cmd) = r.kind.ops().validate(r, path) {
                let _ = writeln!(s, "validate {} {}", q(&r.path), q(&cmd));
            }
        }
    };
    validation(&mut s, false);
    let _ = writeln!(s, "[ $bad = 0 ] || exit {EXIT_INVALID}");

    // Binaries go live before units are verified against them.
    let install = |s: &mut String, i: usize, r: &Resource, staged: &str| {
        let _ = writeln!(
            s,
            "mkdir -p {dir} && install_file \"{staged}\" {path} {mode:o} {owner}:{group} \"$T/old/{i}\" \"$T/done.{i}\" || fail {path}",
            dir = q(parent(&r.path)),
            path = q(&r.path),
            mode = r.mode,
            owner = q(&r.owner),
            group = q(&r.group),
        );
    };
    let restore_lines = |s: &mut String, kinds: &dyn Fn(Kind) -> bool| {
        for (i, r, _) in staged.iter().rev() {
            if kinds(r.kind) {
                let _ = writeln!(
                    s,
                    "  restore_file {} \"$T/old/{i}\" \"$T/done.{i}\"",
                    q(&r.path)
                );
            }
        }
    };
    s.push_str("fail() { echo \"@error cannot install $1\"; rollback; exit 1; }\n");
    s.push_str("restore_binaries() {\n  :\n");
    restore_lines(&mut s, &|k| k == Kind::Binary);
    s.push_str("}\n");
    // Until units are verified, a failure only has binaries to restore.
    s.push_str("rollback() { restore_binaries; }\n");
    for (i, r, path) in staged.iter().filter(|(_, r, _)| r.kind == Kind::Binary) {
        install(&mut s, *i, r, path);
    }
    validation(&mut s, true);
    let _ = writeln!(
        s,
        "if [ $bad != 0 ]; then restore_binaries; exit {EXIT_INVALID}; fi"
    );

    // Full rollback from here on.
    s.push_str(&rollback_function(changes, facts, &staged));

    s.push_str("echo \"@step commit\"\n");
    for path in &changes.adopt {
        let _ = writeln!(
            s,
            "mkdir -p {o} && {{ [ -e {o}/{k} ] || cp -p {p} {o}/{k}; }} || fail {p}",
            o = ORIG_DIR,
            k = orig_name(path),
            p = q(path)
        );
    }
    for d in &changes.create_dirs {
        let _ = writeln!(s, "mkdir -p {} || fail {}", q(d), q(d));
    }
    for (i, r, path) in staged.iter().filter(|(_, r, _)| r.kind != Kind::Binary) {
        install(&mut s, *i, r, path);
    }
    for (r, why) in &changes.write {
        if *why == Why::Metadata {
            let _ = writeln!(
                s,
                "chmod {:o} {p} && chown {}:{} {p} || fail {p}",
                r.mode,
                q(&r.owner),
                q(&r.group),
                p = q(&r.path)
            );
        }
    }

    if !changes.prune_units.is_empty() || !changes.prune_files.is_empty() {
        s.push_str("echo \"@step prune\"\n");
    }
    stop_units(&mut s, &changes.prune_units);
    for (j, f) in changes.prune_files.iter().enumerate() {
        // An adopted file gets its original back; anything else is deleted.
        let remove = if f.adopted {
            format!(
                "{{ if [ -e {o}/{k} ]; then cp -p {o}/{k} {p}.vds-tmp && mv -f {p}.vds-tmp {p}; else rm -f {p}; fi; }}",
                o = ORIG_DIR,
                k = orig_name(&f.path),
                p = q(&f.path)
            )
        } else {
            format!("rm -f {}", q(&f.path))
        };
        let _ = writeln!(
            s,
            "if [ -e {p} ]; then cp -p {p} \"$T/old/p{j}\" && touch \"$T/done.p{j}\" && {remove} || fail {p}; fi",
            p = q(&f.path)
        );
    }

    // Activation order: systemd learns about unit files, new units start (so a balancer
    // reloaded next finds its new backends up), then restarts and reloads.
    s.push_str("echo \"@step activate\"\n");
    let mut activate_failed_check = String::new();
    if changes.actions.contains(&Action::DaemonReload) {
        s.push_str("systemctl daemon-reload || { rollback; exit 1; }\n");
    }
    for u in &changes.enable {
        let _ = writeln!(s, "systemctl enable {} 2>&1 | sed 's/^/@log /'", q(u));
    }
    for u in &changes.start {
        systemctl(&mut s, "start", "start", u);
    }
    for u in &changes.release_units {
        // A unit whose drop-in went away must restart to lose what the drop-in set.
        let dropin_gone = changes
            .prune_files
            .iter()
            .any(|f| f.read_by_systemd() && unit::serves(&f.path, u));
        if dropin_gone {
            systemctl(&mut s, "restart", "restart", u);
        } else {
            systemctl(&mut s, "reload", "try-reload-or-restart", u);
        }
    }
    // Restarts before reloads: new or changed backends are up before a balancer reloads.
    let restarts = changes
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Restart(_)));
    let reloads = changes
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Reload(_)));
    for a in restarts.chain(reloads) {
        let (verb, u) = match a {
            Action::DaemonReload => continue,
            Action::Restart(u) => ("restart", u),
            Action::Reload(u) => ("reload", u),
        };
        // A restart of a unit that was not running is reported as what it is: a start.
        let tag = match verb {
            "restart" if facts.unit(u).active != "active" => "start",
            v => v,
        };
        systemctl(&mut s, tag, verb, u);
    }
    let touched = changes.touched_units();
    if !touched.is_empty() {
        s.push_str("echo \"@step verify\"\nsleep 1\nfailed=0\n");
        for u in &touched {
            let _ = writeln!(
                activate_failed_check,
                "if ! systemctl is-active --quiet {qu}; then echo \"@unitfail {u}\"; journalctl -u {qu} -n 15 --no-pager -o cat 2>/dev/null | sed 's/^/@journal /'; failed=1; fi",
                qu = q(u)
            );
        }
        // A unit can be active and still not serve (HAProxy keeps its old worker when a
        // reload fails to load): every port of a touched unit must be listening.
        for u in plan_units.iter().filter(|u| touched.contains(&u.name)) {
            for p in &u.ports {
                let _ = writeln!(
                    activate_failed_check,
                    "i=0; until ss -Htln | awk '{{print $4}}' | grep -q ':{p}$'; do i=$((i+1)); if [ $i -ge 50 ]; then echo \"@unitfail {u} (not listening on port {p})\"; journalctl -u {qu} -n 15 --no-pager -o cat 2>/dev/null | sed 's/^/@journal /'; failed=1; break; fi; sleep 0.1; done",
                    u = u.name,
                    qu = q(&u.name)
                );
            }
        }
        s.push_str(&activate_failed_check);
        s.push_str("if [ $failed != 0 ]; then rollback; exit 1; fi\n");
    }

    if !changes.prune_units_late.is_empty() {
        // The balancer was reloaded without these backends; its old worker still serves
        // the connections it had on them. Wait until they closed (up to the unit's drain
        // time), then stop them.
        let _ = writeln!(s, "echo \"@step drain\"\nsleep {LATE_STOP_GRACE_SECS}");
        for u in &changes.prune_units_late {
            if u.drain_secs == 0 || u.ports.is_empty() {
                continue;
            }
            let filter: Vec<String> = u.ports.iter().map(|p| format!("sport = :{p}")).collect();
            let _ = writeln!(
                s,
                "i=0; while n=$(ss -Htn state established '( {f} )' | wc -l); [ \"$n\" -gt 0 ] && [ $i -lt {max} ]; do sleep 0.2; i=$((i+1)); done; if [ \"$n\" -gt 0 ]; then echo \"@drain-timeout {unit} $n\"; else echo \"@drained {unit} $((i/5))\"; fi",
                f = filter.join(" or "),
                max = u.drain_secs * 5,
                unit = u.unit,
            );
        }
        let names: Vec<String> = changes
            .prune_units_late
            .iter()
            .map(|u| u.unit.clone())
            .collect();
        stop_units(&mut s, &names);
    }
    for f in changes.prune_files.iter().filter(|f| f.adopted) {
        let _ = writeln!(s, "rm -f {}/{}", ORIG_DIR, orig_name(&f.path));
    }
    for f in &changes.prune_files {
        for extra in Kind::from_name(&f.kind)
            .map(|k| k.ops().also_remove(&f.path))
            .unwrap_or_default()
        {
            let _ = writeln!(s, "rm -f {}", q(&extra));
        }
    }
    if changes.write_manifest {
        if changes.manifest.is_empty() {
            let _ = writeln!(s, "rm -f {state}");
        } else {
            let _ = writeln!(s, "base64 -d > {state}.tmp <<'{HEREDOC}' || exit 1");
            s.push_str(&b64(changes.manifest.to_text().as_bytes()));
            let _ = writeln!(s, "{HEREDOC}\nmv -f {state}.tmp {state}");
        }
    }
    for d in changes.prune_dirs.iter().rev() {
        let _ = writeln!(s, "rmdir {} 2>/dev/null", q(d));
    }
    s.push_str("echo \"@done\"\n");
    Ok(s)
}

/// Runs `systemctl VERB UNIT`, reported to [`parse_report`] as `@TAG UNIT`, its output
/// as log lines.
fn systemctl(s: &mut String, tag: &str, verb: &str, unit: &str) {
    let _ = writeln!(
        s,
        "echo \"@{tag} {unit}\"; systemctl {verb} {} 2>&1 | sed 's/^/@log /'",
        quote(unit)
    );
}

/// Stops and disables units vds-proxy lets go of; a unit killed by the stop is not left
/// "failed" behind.
fn stop_units(s: &mut String, units: &[String]) {
    for u in units {
        let _ = writeln!(
            s,
            "systemctl disable --now {u} >/dev/null 2>&1; systemctl reset-failed {u} >/dev/null 2>&1",
            u = quote(u)
        );
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The `rollback` shell function: restore every file, then bring units back to how they were.
fn rollback_function(
    changes: &Changes,
    facts: &Facts,
    staged: &[(usize, &Resource, String)],
) -> String {
    let q = quote;
    let mut s = String::from("rollback() {\n  echo \"@rollback\"\n");
    for (i, r, _) in staged.iter().rev() {
        let _ = writeln!(
            s,
            "  restore_file {} \"$T/old/{i}\" \"$T/done.{i}\"",
            q(&r.path)
        );
    }
    for (j, f) in changes.prune_files.iter().enumerate() {
        let _ = writeln!(
            s,
            "  [ -e \"$T/done.p{j}\" ] && cp -p \"$T/old/p{j}\" {p}",
            p = q(&f.path)
        );
    }
    for d in changes.create_dirs.iter().rev() {
        let _ = writeln!(s, "  rmdir {} 2>/dev/null", q(d));
    }
    s.push_str("  systemctl daemon-reload\n");
    let mut units: BTreeSet<String> = changes.touched_units();
    units.extend(changes.prune_units.iter().cloned());
    units.extend(changes.enable.iter().cloned());
    // Released units were reloaded with their restored originals: bring them back too.
    units.extend(changes.release_units.iter().cloned());
    for u in &units {
        let before = facts.unit(u);
        if before.enabled == "enabled" {
            let _ = writeln!(s, "  systemctl enable {} >/dev/null 2>&1", q(u));
        } else if changes.enable.contains(u) {
            let _ = writeln!(s, "  systemctl disable {} >/dev/null 2>&1", q(u));
        }
        if before.active == "active" {
            let _ = writeln!(s, "  systemctl restart {} >/dev/null 2>&1", q(u));
        } else {
            let _ = writeln!(s, "  systemctl stop {} >/dev/null 2>&1", q(u));
        }
    }
    s.push_str("}\n");
    s
}

/// What an apply reported.
#[derive(Debug, Default)]
pub struct Report {
    pub invalid: Vec<(String, Vec<String>)>,
    pub failed_units: Vec<String>,
    pub journal: Vec<String>,
    pub log: Vec<String>,
    pub errors: Vec<String>,
    pub rolled_back: bool,
    pub restarted: Vec<String>,
    pub reloaded: Vec<String>,
    pub started: Vec<String>,
    /// Backends stopped once their connections had closed: (unit, seconds waited).
    pub drained: Vec<(String, String)>,
    /// Backends stopped with connections still open when the drain time ran out:
    /// (unit, connections cut).
    pub drain_timeouts: Vec<(String, String)>,
    pub done: bool,
}

/// Reads the `@` lines an apply script printed.
pub fn parse_report(stdout: &str) -> Report {
    let mut r = Report::default();
    for line in stdout.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.to_string();
        match tag {
            "@invalid" => r.invalid.push((rest, Vec::new())),
            "@log" => match r.invalid.last_mut() {
                Some((_, log)) if !r.done => log.push(rest),
                _ => r.log.push(rest),
            },
            "@unitfail" => r.failed_units.push(rest),
            "@journal" => r.journal.push(rest),
            "@error" => r.errors.push(rest),
            "@rollback" => r.rolled_back = true,
            "@restart" => r.restarted.push(rest),
            "@reload" => r.reloaded.push(rest),
            "@start" => r.started.push(rest),
            "@drained" | "@drain-timeout" => {
                let (unit, n) = rest.split_once(' ').unwrap_or((&rest, "?"));
                let list = match tag {
                    "@drained" => &mut r.drained,
                    _ => &mut r.drain_timeouts,
                };
                list.push((unit.to_string(), n.to_string()));
            }
            "@done" => r.done = true,
            _ => {}
        }
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_report_reads_restarts_and_drains() {
        let r = super::parse_report(
            "@restart a.service\n@start b.service\n@drained echo@2.service 3\n@drain-timeout echo@3.service 1\n@done\n",
        );
        assert_eq!(r.restarted, ["a.service"]);
        assert_eq!(r.started, ["b.service"]);
        assert_eq!(r.drained, [("echo@2.service".to_string(), "3".to_string())]);
        assert_eq!(
            r.drain_timeouts,
            [("echo@3.service".to_string(), "1".to_string())]
        );
        assert!(r.done);
    }
}
