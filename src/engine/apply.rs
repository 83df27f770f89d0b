//! Apply: one script per host that stages, validates, commits, activates and checks the
//! changes, and restores the previous files if anything fails. The shell is the fixed
//! library `scripts/apply.sh`; this module writes only data and calls of its functions.
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
//! 7. what pruned files leave behind for good (a certificate) is deleted, the new manifest
//!    is written.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use base64::Engine as _;

use super::diff::{Changes, Why};
use super::gather::{Facts, base_name, call};
use super::state::{
    BIG_FILE, DIGESTS_FILE, LEFTOVER_FILE, ORIG_DIR, STATE_DIR, STATE_FILE, orig_name,
};
use crate::resources::{Action, Content, Kind, Resource, UnitFileToVerify, UnitSpec, unit};
use crate::shell::quote;

/// Exit code of the script when validation failed and nothing was changed.
pub const EXIT_INVALID: i32 = 65;
/// Exit code when the host lock could not be taken in time.
pub const EXIT_LOCKED: i32 = 75;
/// Exit code when the manifest changed since gather (another deploy ran meanwhile).
pub const EXIT_STALE: i32 = 76;
/// Exit code when the host lock was free but an apply cut off before had left its
/// transaction: it was resolved (rolled back or forward), and the host must be gathered again.
pub const EXIT_RECOVERED: i32 = 77;

/// The last apply's log on a host (what it reported, to the end, even when the connection
/// was lost): root's only, gone at the next boot.
pub const LOG_FILE: &str = "/run/vds-proxy-apply.log";

/// Where the lock file lives on a host.
pub const LOCK_FILE: &str = "/run/vds-proxy.lock";

/// Seconds between a reload and stopping the late-stop units it no longer uses.
pub const LATE_STOP_GRACE_SECS: u64 = 2;

/// Seconds a deploy waits for another one on the same host.
pub const LOCK_WAIT_SECS: u64 = 90;

/// The transaction directory (only one apply runs at a time: the lock is held).
pub const TXN_DIR: &str = "/var/lib/vds-proxy/txn";

/// While an apply runs: the unit that resolves its transaction after a reboot cut it off
/// (see `guard_boot` in the library), its boot link, and the script it runs.
pub const BOOT_UNIT: &str = "/etc/systemd/system/vds-proxy-recover.service";
const BOOT_LINK: &str = "/etc/systemd/system/multi-user.target.wants/vds-proxy-recover.service";
const BOOT_SCRIPT: &str = "/var/lib/vds-proxy/recover.sh";

/// The library every apply script starts with.
pub const LIBRARY: &str = include_str!("scripts/apply.sh");

const HEREDOC: &str = "VDS_PROXY_EOF_7f3a";
const BOOT_EOF: &str = "VDS_PROXY_BOOT_EOF_7f3a";

/// `bytes` as a here-document fed to `command` (base64, 76 columns).
fn heredoc(command: &str, bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = format!("{command} <<'{HEREDOC}'\n");
    for chunk in text.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
        out.push('\n');
    }
    out.push_str(HEREDOC);
    out.push('\n');
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

/// A change to stage: its index, resource and staged path.
struct Staged<'a> {
    n: usize,
    r: &'a Resource,
    path: String,
}

impl Staged<'_> {
    fn put(&self) -> String {
        let r = self.r;
        call(
            "put",
            [
                self.n.to_string(),
                r.path.clone(),
                format!("{:o}", r.mode),
                r.owner.clone(),
                r.group.clone(),
            ],
        )
    }

    fn validate(&self) -> Option<String> {
        let cmd = self.r.kind.ops().validate(self.r, &self.path)?;
        Some(call("validate", [self.r.path.as_str(), &cmd]))
    }
}

/// The apply script for `changes`, checked against the manifest hash `facts` saw.
pub fn script(changes: &Changes, facts: &Facts, plan_units: &[UnitSpec]) -> Result<String> {
    let staged: Vec<Staged> = changes
        .write
        .iter()
        .enumerate()
        .filter(|(_, (_, why))| *why != Why::Metadata)
        .map(|(n, (r, _))| Staged {
            n,
            r,
            path: format!("{TXN_DIR}/new/{n}/{}", base_name(&r.path)),
        })
        .collect();
    let mut s = settings() + &call("begin", [&facts.state_hash]);
    // Until it ends, a reboot that cuts it off is resolved when the host has booted again.
    // (As text: the delimiter is no line of the library.)
    s += &format!("guard_boot <<'{BOOT_EOF}'\n{}{BOOT_EOF}\n", boot_script());
    // The apply proper goes on by itself when the connection is lost (see `work`).
    s += "(\nwork\n";
    s += &stage(&staged)?;
    s += &commit(changes, facts, &staged);
    s += &prune(changes);
    s += &activate(changes, facts);
    s += &verify(changes, plan_units);
    s += &drain(changes);
    s += &finish(changes);
    s += ") 2>&1 | tee -p -a \"$LOG\" 9>&-\n";
    Ok(s)
}

/// The script that resolves what an apply cut off before left on a host (see `recover` in
/// the library), under the host lock; reports as an apply does. A deploy runs it: the
/// transaction goes even if its files cannot all be put back (the deploy applies afresh).
pub fn recovery_script() -> String {
    settings() + "take_lock\nrecover || true\n"
}

/// The script the boot unit runs (see `guard_boot`): resolves the transaction as
/// `recovery_script` does, but keeps trying while its files cannot all be put back.
fn boot_script() -> String {
    settings() + "take_lock\nrecover_or_keep_trying 9\n"
}

/// The script that waits until no apply runs on a host (it takes the lock) and prints the
/// last one's log: how an apply whose connection was lost ended. Without a log (it lives in
/// /run) the host rebooted: `@rebooted` when its boot resolved the transaction, else
/// `@cutoff`.
pub fn log_script() -> String {
    settings()
        + "take_lock\nif [ -e \"$LOG\" ]; then cat \"$LOG\"; elif [ -d \"$T\" ]; then echo @cutoff; else echo @rebooted; fi\n"
}

/// What the log script said of a host without a log: it rebooted, and its boot resolved
/// the apply.
pub fn rebooted(log: &str) -> bool {
    log.lines().any(|l| l == "@rebooted")
}

/// The library and the variables it reads.
fn settings() -> String {
    let vars = [
        ("STATE_DIR", STATE_DIR.to_string()),
        ("STATE_FILE", STATE_FILE.to_string()),
        ("ORIG_DIR", ORIG_DIR.to_string()),
        ("LOCK_FILE", LOCK_FILE.to_string()),
        ("LOCK_WAIT", LOCK_WAIT_SECS.to_string()),
        ("T", TXN_DIR.to_string()),
        ("EXIT_INVALID", EXIT_INVALID.to_string()),
        ("EXIT_LOCKED", EXIT_LOCKED.to_string()),
        ("EXIT_STALE", EXIT_STALE.to_string()),
        ("EXIT_RECOVERED", EXIT_RECOVERED.to_string()),
        ("LOG", LOG_FILE.to_string()),
        ("LEFTOVER", LEFTOVER_FILE.to_string()),
        ("DIGESTS", DIGESTS_FILE.to_string()),
        ("BOOT_UNIT", BOOT_UNIT.to_string()),
        ("BOOT_LINK", BOOT_LINK.to_string()),
        ("BOOT_SCRIPT", BOOT_SCRIPT.to_string()),
    ];
    // The library first: its first line holds shellcheck's directives for the whole file.
    let mut s = LIBRARY.to_string();
    for (k, v) in vars {
        s += &format!("{k}={}\n", quote(&v));
    }
    s
}

/// Stage and validate everything; binaries go live before units are verified against them.
fn stage(staged: &[Staged]) -> Result<String> {
    let mut s = call("step", ["stage"]);
    for st in staged {
        let name = base_name(&st.r.path);
        s += &heredoc(
            call("stage", [&st.n.to_string(), name]).trim_end(),
            &bytes_of(st.r)?,
        );
    }
    let systemd = |st: &&Staged| st.r.kind.ops().systemd();
    s.extend(
        staged
            .iter()
            .filter(|st| !systemd(st))
            .filter_map(Staged::validate),
    );
    s += "end_validation\n";
    s.extend(
        staged
            .iter()
            .filter(|st| st.r.kind == Kind::BINARY)
            .map(Staged::put),
    );
    // Units and drop-ins are verified against the binaries that just went live: all in one
    // run of systemd-analyze, each alone only when that fails (to name it).
    let read_by_systemd: Vec<&Staged> = staged.iter().filter(systemd).collect();
    let singly: String = read_by_systemd
        .iter()
        .filter_map(|st| st.validate())
        .collect();
    let files: Vec<UnitFileToVerify> = read_by_systemd
        .iter()
        .filter_map(|st| st.r.kind.ops().unit_file_to_verify(st.r, &st.path))
        .collect();
    let mut units = String::new();
    if files.len() > 1 {
        for prepare in files.iter().filter_map(|f| f.prepare.as_ref()) {
            units += prepare;
            units += "\n";
        }
        units += &format!(
            "if ! {}then\n{singly}fi\n",
            call("verify_units", files.iter().map(|f| f.file.as_str())).replace('\n', "; ")
        );
    } else {
        units += &singly;
    }
    if !units.is_empty() {
        s += &(units + "end_validation\n");
    }
    Ok(s)
}

/// How every unit this apply touches was before it (for rollback), then the new files.
fn commit(changes: &Changes, facts: &Facts, staged: &[Staged]) -> String {
    let mut s = String::from("arm\n");
    let mut units: BTreeSet<String> = changes.touched_units();
    units.extend(changes.prune_units.iter().cloned());
    units.extend(changes.enable.iter().cloned());
    // Released units are reloaded with their restored originals: bring them back too.
    units.extend(changes.release_units.iter().cloned());
    for u in &units {
        let before = state_before(facts, u);
        let newly = if changes.enable.contains(u) { "1" } else { "0" };
        s += &call("was", [u.as_str(), &before.0, &before.1, newly]);
    }
    s += &call("step", ["commit"]);
    for path in &changes.adopt {
        s += &call("adopt", [path.clone(), orig_name(path)]);
    }
    for d in &changes.create_dirs {
        s += &call("make_dir", [d]);
    }
    s.extend(
        staged
            .iter()
            .filter(|st| st.r.kind != Kind::BINARY)
            .map(Staged::put),
    );
    for (r, why) in &changes.write {
        if *why == Why::Metadata {
            s += &call(
                "set_meta",
                [
                    r.path.clone(),
                    format!("{:o}", r.mode),
                    r.owner.clone(),
                    r.group.clone(),
                ],
            );
        }
    }
    s
}

/// (active, enabled) of `unit` before the apply, `-` for unknown.
fn state_before(facts: &Facts, unit: &str) -> (String, String) {
    let f = facts.unit(unit);
    let word = |w: String| if w.is_empty() { "-".to_string() } else { w };
    (word(f.active), word(f.enabled))
}

/// Units and files vds-proxy lets go of.
fn prune(changes: &Changes) -> String {
    let mut s = String::new();
    if !changes.prune_units.is_empty() || !changes.prune_files.is_empty() {
        s += &call("step", ["prune"]);
    }
    for u in &changes.prune_units {
        s += &call("stop_unit", [u]);
    }
    // A unit file that goes without a unit to stop (a service its timer starts) must not
    // leave that service running or failed behind: a unit deployed later under the same
    // name would inherit the failure.
    for u in changes.prune_files.iter().filter_map(|f| pruned_unit(f)) {
        if !changes.prune_units.iter().any(|p| p == u) {
            s += &call("stop_unit", [u]);
        }
    }
    for f in &changes.prune_files {
        let unload = changes.ops(f).and_then(|o| o.before_remove(&f.path));
        if let Some(cmd) = unload {
            s += &call("unload", [f.path.as_str(), &cmd]);
        }
    }
    for (j, f) in changes.prune_files.iter().enumerate() {
        // An adopted file gets its original back; anything else is deleted.
        let mut args = vec![j.to_string(), f.path.clone()];
        if f.adopted {
            args.push(orig_name(&f.path));
        }
        s += &call("prune", args);
    }
    s
}

/// The unit a pruned file defines, when it is a unit file of one concrete unit (not a
/// template or a drop-in).
fn pruned_unit(f: &crate::engine::state::FileEntry) -> Option<&str> {
    if f.kind != Kind::UNIT.name() {
        return None;
    }
    let name = unit::file_name(&f.path)?;
    (!name.contains("@.")).then_some(name)
}

/// systemd learns about unit files, new units start (so a unit reloaded next finds what it
/// depends on up), released units reload, then the actions in their order.
fn activate(changes: &Changes, facts: &Facts) -> String {
    let mut s = call("step", ["activate"]);
    let (systemd, rest): (Vec<_>, Vec<_>) = changes
        .actions
        .iter()
        .partition(|a| **a == crate::resources::Action::DaemonReload);
    if !systemd.is_empty() {
        s += &match units_new_to_systemd(changes, facts) {
            Some(units) => call("daemon_reload_unless_loaded", units),
            None => "daemon_reload\n".to_string(),
        };
    }
    // One `systemctl enable` for all: each run reloads systemd (0.1 s of its CPU per host).
    if !changes.enable.is_empty() {
        s += &call("enable_units", changes.enable.iter());
    }
    for u in &changes.start {
        s += &call("unit", ["start", "start", u]);
    }
    for u in &changes.release_units {
        // A unit whose drop-in went away must restart to lose what the drop-in set.
        let dropin_gone = changes
            .prune_files
            .iter()
            .any(|f| f.read_by_systemd(changes.kinds) && unit::serves(&f.path, u));
        s += &if dropin_gone {
            call("unit", ["restart", "restart", u])
        } else {
            call("unit", ["reload", "try-reload-or-restart", u])
        };
    }
    for a in rest {
        if let Some((path, command)) = live_update(changes, a) {
            s += &call(
                "live_or_reload",
                [a.unit().unwrap_or_default(), path, &command],
            );
            continue;
        }
        s += &match (a.verb(), a.unit(), a) {
            (Some(verb), Some(u), _) => {
                // A restart of a unit that was not running is reported as what it is: a start.
                let tag = match verb {
                    "restart" if facts.unit(u).active != "active" => "start",
                    v => v,
                };
                call("unit", [tag, verb, u])
            }
            (_, _, crate::resources::Action::Run { name, command }) => call("run", [name, command]),
            _ => String::new(),
        };
    }
    // A unit that failed to start, restart or reload rolls the apply back here.
    s + "end_checks\n"
}

/// A reload that a file's kind can do without one (see `KindOps::live_update`): the file and
/// the command, when that one file is all that triggers the reload and it only changed in
/// content since the last deploy (not new, not changed by hand, nothing re-applied).
fn live_update<'a>(changes: &'a Changes, action: &Action) -> Option<(&'a str, String)> {
    if !matches!(action, Action::Reload(_)) || !changes.not_live.is_empty() {
        return None;
    }
    let mut triggers = changes
        .write
        .iter()
        .filter(|(r, why)| *why != Why::Metadata && r.on_change.contains(action));
    let (r, why) = triggers.next()?;
    if triggers.next().is_some() || *why != Why::Content || changes.drifted.contains(&r.path) {
        return None;
    }
    let command = r.kind.ops().live_update(&r.path)?;
    Some((r.path.as_str(), command))
}

/// When the only unit files this apply writes are new ones, defining units systemd has
/// never loaded (a first apply, a new service), those units: systemd loads a new unit file
/// when a unit of it is first asked for, so no daemon-reload (0.1 s of systemd's CPU per
/// host) is needed. `None` when anything else systemd reads changes or goes, or a unit's
/// load state is not known.
fn units_new_to_systemd(changes: &Changes, facts: &Facts) -> Option<Vec<String>> {
    if !changes.not_live.is_empty()
        || changes
            .prune_files
            .iter()
            .any(|f| f.read_by_systemd(changes.kinds))
    {
        return None;
    }
    let touched = changes.touched_units();
    let mut units = Vec::new();
    for (r, why) in &changes.write {
        if !r.kind.ops().systemd() || *why == Why::Metadata {
            continue;
        }
        // A new file right in the unit directory (not a drop-in, which changes a unit).
        if *why != Why::New || unit::file_name(&r.path).is_none() {
            return None;
        }
        let served: Vec<&String> = touched
            .iter()
            .filter(|u| unit::serves(&r.path, u))
            .collect();
        if served.is_empty()
            || served
                .iter()
                .any(|u| facts.units.get(*u).is_none_or(|f| f.load != "not-found"))
        {
            return None;
        }
        units.extend(served.into_iter().cloned());
    }
    units.sort();
    units.dedup();
    (!units.is_empty()).then_some(units)
}

/// Every touched unit must be active, and listen on its ports.
fn verify(changes: &Changes, plan_units: &[UnitSpec]) -> String {
    let touched = changes.touched_units();
    if touched.is_empty() {
        return String::new();
    }
    let mut s = call("step", ["verify"]) + "settle\n";
    s += &call("check_active", &touched);
    let specs: Vec<&UnitSpec> = plan_units
        .iter()
        .filter(|u| touched.contains(&u.name))
        .collect();
    let listening: Vec<String> = specs
        .iter()
        .flat_map(|u| u.ports.iter().flat_map(|p| [u.name.clone(), p.to_string()]))
        .collect();
    if !listening.is_empty() {
        s += &call("check_listening", &listening);
    }
    s += "end_checks\n";
    for u in specs {
        if let Some(script) = &u.settle {
            s += &call("settle_unit", [u.name.as_str(), script]);
        }
    }
    s
}

/// Late-stop units: what was reloaded without them still serves the connections it had on
/// them. Wait until those closed (up to the unit's drain time), then stop them.
fn drain(changes: &Changes) -> String {
    if changes.prune_units_late.is_empty() {
        return String::new();
    }
    let mut s = call("step", ["drain"]) + &format!("sleep {LATE_STOP_GRACE_SECS}\n");
    for u in &changes.prune_units_late {
        if u.drain_secs == 0 || u.ports.is_empty() {
            continue;
        }
        let args = [u.unit.clone(), u.drain_secs.to_string()]
            .into_iter()
            .chain(u.ports.iter().map(u16::to_string));
        s += &call("drain", args);
    }
    for u in &changes.prune_units_late {
        s += &call("stop_unit", [&u.unit]);
    }
    s
}

/// What pruned files leave behind for good (now that the host converged), originals
/// handed back, files that went with pruned ones, the manifest, empty directories.
fn finish(changes: &Changes) -> String {
    let mut s = String::new();
    for f in &changes.prune_files {
        let Some(cmd) = changes.ops(f).and_then(|o| o.after_remove(&f.path)) else {
            continue;
        };
        // A command that runs a program pruned in this same apply (the last site's
        // certificate tool) runs the copy the transaction kept of it.
        let kept = changes.prune_files.iter().enumerate().find_map(|(j, p)| {
            let rest = cmd.strip_prefix(&p.path)?.strip_prefix(' ')?;
            Some(format!("sh \"$T/old/p{j}\" {rest}"))
        });
        s += &call("unload", [f.path.as_str(), &kept.unwrap_or(cmd)]);
    }
    for f in changes.prune_files.iter().filter(|f| f.adopted) {
        s += &call("forget_orig", [orig_name(&f.path)]);
    }
    for f in &changes.prune_files {
        for extra in changes
            .ops(f)
            .map(|o| o.also_remove(&f.path))
            .unwrap_or_default()
        {
            s += &call("remove_extra", [extra]);
        }
    }
    if changes.write_manifest {
        if changes.manifest.is_empty() {
            s += "remove_manifest\n";
        } else {
            s += &heredoc("write_manifest", changes.manifest.to_text().as_bytes());
        }
    }
    // The next gather need not hash a big file this apply installed (the bundled binary).
    for (r, why) in &changes.write {
        if let Content::Local { size, .. } = r.content
            && size >= BIG_FILE
            && *why != Why::Metadata
            && !r.secret
        {
            s += &call("remember_digest", [r.path.as_str(), &r.sha256]);
        }
    }
    for d in changes.prune_dirs.iter().rev() {
        s += &call("prune_dir", [d]);
    }
    s + "finish\n"
}

/// What an apply reported.
#[derive(Debug, Default)]
pub struct Report {
    pub invalid: Vec<(String, Vec<String>)>,
    pub failed_units: Vec<String>,
    /// Failed units whose failure is a verdict on what was deployed (see `unit_failed` in
    /// the script): another try would fail the same way.
    pub verdicts: Vec<String>,
    pub journal: Vec<String>,
    pub log: Vec<String>,
    pub errors: Vec<String>,
    pub rolled_back: bool,
    pub restarted: Vec<String>,
    pub reloaded: Vec<String>,
    /// Units that took their changed configuration without a reload.
    pub live: Vec<String>,
    pub started: Vec<String>,
    /// Activation commands that ran.
    pub ran: Vec<String>,
    /// What settle scripts and unload commands said.
    pub notes: Vec<String>,
    /// Pruned files whose configuration was taken back first.
    pub unloaded: Vec<String>,
    /// Late-stop units stopped once their connections had closed: (unit, seconds waited).
    pub drained: Vec<(String, String)>,
    /// Late-stop units stopped with connections still open when the drain time ran out:
    /// (unit, connections cut).
    pub drain_timeouts: Vec<(String, String)>,
    pub done: bool,
    /// How the apply proper ended on the host (`None`: it never started, or its end was not
    /// seen — the connection was lost).
    pub exit: Option<i32>,
    /// The apply proper began on the host (it then ends by itself).
    pub began: bool,
    /// What an apply cut off before had left, resolved first: `back` or `forward`.
    pub recovered: Option<String>,
    /// What a rollback could not bring back.
    pub unrestored: Vec<String>,
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
            "@verdict" => r.verdicts.push(rest),
            "@journal" => r.journal.push(rest),
            "@error" => r.errors.push(rest),
            "@rollback" => r.rolled_back = true,
            "@restart" => r.restarted.push(rest),
            "@reload" => r.reloaded.push(rest),
            "@live" => r.live.push(rest),
            "@start" => r.started.push(rest),
            "@ran" => r.ran.push(rest),
            "@note" => r.notes.push(rest),
            "@unloaded" => r.unloaded.push(rest),
            "@drained" | "@drain-timeout" => {
                let (unit, n) = rest.split_once(' ').unwrap_or((&rest, "?"));
                let list = match tag {
                    "@drained" => &mut r.drained,
                    _ => &mut r.drain_timeouts,
                };
                list.push((unit.to_string(), n.to_string()));
            }
            "@done" => r.done = true,
            "@exit" => r.exit = rest.trim().parse().ok(),
            "@step" => r.began = true,
            "@recovered" => r.recovered = Some(rest),
            "@unrestored" => r.unrestored.push(rest),
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

    /// A unit that a stop leaves running or enabled (its links could not be removed) fails
    /// the apply, with why, and is rolled back; one that stopped is not reported.
    #[test]
    fn a_stop_that_did_not_stop_fails_the_apply() {
        let tmp = tempfile::Builder::new()
            .prefix("vds-proxy-stop-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("t")).unwrap();
        let d = dir.display();
        // systemctl: `stuck.service` cannot be disabled (a read-only /etc) and runs on.
        crate::engine::stand_in(
            &dir.join("systemctl"),
            r#"case "$1 $2 $3" in
  "disable --now stuck.service") echo "Failed to disable unit: Read-only file system" >&2; exit 1 ;;
  "is-active stuck.service"*) echo active; exit 0 ;;
  "is-enabled stuck.service"*) echo enabled; exit 0 ;;
  is-active*) echo inactive; exit 3 ;;
  is-enabled*) echo disabled; exit 1 ;;
esac"#,
        );
        let run = |unit: &str| {
            let script = format!(
                "{}PATH={d}:$PATH
T={d}/t
armed=0
: > $T/journal
{}echo after
",
                super::LIBRARY,
                super::call("stop_unit", [unit])
            );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            (out.status.code(), String::from_utf8(out.stdout).unwrap())
        };
        assert_eq!(run("gone.service"), (Some(0), "after\n".to_string()));
        let (code, out) = run("stuck.service");
        assert_eq!(code, Some(1));
        assert_eq!(
            out,
            "@error cannot stop stuck.service: it is still active and enabled\n\
             @log Failed to disable unit: Read-only file system\n@rollback\n"
        );
    }

    /// The post-activation checks against stand-ins for ss, systemctl, journalctl and
    /// sleep: one systemctl for every unit's state, one `ss` per look for every port (and
    /// one systemctl for the units still waited for), a port that is a prefix of a
    /// listening one is not listening, a failed unit is not waited for, one still
    /// activating is given 100 looks, a unit systemctl printed no state for has failed,
    /// and one whose main process exited 65 is a verdict.
    #[test]
    fn the_checks_ask_once_per_look_for_every_unit_and_port() {
        let tmp = tempfile::Builder::new()
            .prefix("vds-proxy-checks-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let d = dir.display();
        let fake = |name: &str, body: &str| crate::engine::stand_in(&dir.join(name), body);
        fake(
            "ss",
            &format!(
                "echo ss >> {d}/calls\necho 'LISTEN 0 4096 0.0.0.0:8500 0.0.0.0:*'\necho 'LISTEN 0 4096 [::]:10000 [::]:*'"
            ),
        );
        fake(
            "systemctl",
            &format!(
                r#"echo "systemctl $*" >> {d}/calls
if [ "$1" = show ]; then [ "$5" = dead.service ] && echo 65 || echo 1; exit 0; fi
shift 2
for u; do case $u in dead.service) echo failed ;; slow.service) echo activating ;; ghost.service) ;; *) echo active ;; esac; done"#
            ),
        );
        fake("journalctl", "");
        fake("sleep", "");
        let run = |calls: &str| {
            let _ = std::fs::remove_file(dir.join("calls"));
            let script = format!("{}PATH={d}:$PATH\nfailed=0\n{calls}", super::LIBRARY);
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
            (String::from_utf8(out.stdout).unwrap(), calls)
        };

        let (out, calls) = run(&super::call(
            "check_active",
            ["a.service", "dead.service", "b.service", "ghost.service"],
        ));
        // dead.service's main process exited 65: a verdict on what was deployed.
        assert_eq!(
            out,
            "@unitfail dead.service\n@verdict dead.service\n@unitfail ghost.service\n"
        );
        let asked = calls.lines().filter(|l| l.contains("is-active")).count();
        assert_eq!(asked, 1, "{calls}");

        let (out, calls) = run(&super::call(
            "check_listening",
            [
                "front.service",
                "8500",
                "echo@1.service",
                "10000",
                "dead.service",
                "9000",
                "slow.service",
                "9001",
                "page.service",
                "850",
            ],
        ));
        assert_eq!(
            out,
            "@unitfail dead.service (not listening on port 9000)\n\
             @verdict dead.service\n\
             @unitfail slow.service (not listening on port 9001)\n\
             @unitfail page.service (not listening on port 850)\n"
        );
        let looks = calls.lines().filter(|l| *l == "ss").count();
        assert_eq!(looks, 100, "{calls}");
        assert_eq!(
            calls.lines().next().unwrap_or_default(),
            "ss",
            "looks first, asks systemd only about what is not listening"
        );
        assert_eq!(
            calls.lines().nth(1).unwrap_or_default(),
            "systemctl is-active -- dead.service slow.service page.service"
        );
        assert_eq!(
            calls
                .lines()
                .filter(|l| l.starts_with("systemctl is-active"))
                .count(),
            100
        );

        let (out, calls) = run(&super::call("check_listening", ["front.service", "8500"]));
        assert_eq!((out.as_str(), calls.as_str()), ("", "ss\n"));
    }
}
