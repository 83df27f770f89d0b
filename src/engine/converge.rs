//! Converging one host: gather → diff → apply (or describe, for a dry run), again if the
//! host changed under us.

use anyhow::{Result, bail};

use super::apply::{self, Report};
use super::confirm;
use super::diff::{self, Changes, Why};
use super::fanout::{FileChange, HostResult, Outcome, Progress};
use super::gather::{self, Facts};
use super::{Mode, describe};
use crate::inventory::Inventory;
use crate::plan::HostPlan;
use crate::redact::Redactor;
use crate::resources::Content;
use crate::transport::{self, ConnectOptions, Transport};

/// Converges (or cleans) one host. Never panics on host errors: they become a failed result.
pub async fn converge_host(
    inv: &Inventory,
    plan: &HostPlan,
    opts: &ConnectOptions,
    mode: Mode<'_>,
    redactor: &Redactor,
    progress: Progress,
) -> HostResult {
    let node = inv
        .node(&plan.node)
        .expect("plan nodes are in the inventory");
    progress.step("connecting");
    let t = match transport::connect(node, opts).await {
        Ok(t) => t,
        Err(e) => return HostResult::failed(&plan.node, e.to_string()),
    };
    let retries = match mode {
        Mode::Deploy { retries, .. } => retries,
        Mode::Remove { .. } => 0,
    };
    let mut earlier = Vec::new();
    loop {
        let res = converge(t.as_ref(), plan, mode, redactor, &progress).await;
        let mut r = match res {
            Err(e) if e.is::<ActivationFailed>() && (earlier.len() as u32) < retries => {
                let pause = retry_pause(earlier.len() as u32 + 1);
                earlier.push(e.to_string());
                progress.step(&format!(
                    "activation failed; deploying again in {} s ({}/{retries})",
                    pause.as_secs(),
                    earlier.len()
                ));
                tokio::time::sleep(pause).await;
                continue;
            }
            Ok(r) => r,
            Err(e) => HostResult::failed(&plan.node, format!("{e:#}")),
        };
        r.retries = earlier.len() as u32;
        for (i, e) in earlier.iter().enumerate() {
            let first = e.lines().next().unwrap_or_default();
            r.notes.insert(
                i,
                format!("attempt {} failed and was retried: {first}", i + 1),
            );
        }
        return r;
    }
}

/// The pause before the `n`th retry: 2 s, 4 s, 8 s … at most 30 s.
fn retry_pause(n: u32) -> std::time::Duration {
    std::time::Duration::from_secs((2u64 << n.saturating_sub(1).min(4)).min(30))
}

/// An apply that ran but left a unit that did not come up; the host rolled back. Worth
/// another try: the cause may have passed (a port still held, a dependency still starting).
#[derive(Debug)]
struct ActivationFailed(String);

impl std::fmt::Display for ActivationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ActivationFailed {}

fn result(
    plan: &HostPlan,
    outcome: Outcome,
    files: Vec<FileChange>,
    notes: Vec<String>,
) -> HostResult {
    HostResult {
        node: plan.node.clone(),
        outcome,
        files,
        actions: Vec::new(),
        notes,
        error: None,
        retries: 0,
    }
}

async fn converge(
    t: &dyn Transport,
    plan: &HostPlan,
    mode: Mode<'_>,
    redactor: &Redactor,
    progress: &Progress,
) -> Result<HostResult> {
    // Another deploy may change the host between gather and apply; the apply script notices
    // (exit 76) and the host is gathered again. So is a host where an apply cut off before
    // had left its transaction, once that is resolved (exit 77).
    let mut resolved: Vec<String> = Vec::new();
    for _attempt in 0..5 {
        progress.step("gathering");
        let facts = gather::gather(t, plan).await?;
        if facts.interrupted {
            if let Mode::Deploy { dry_run: true, .. } = mode {
                resolved.push(
                    "left by an interrupted deploy: a transaction this deploy rolls back before it applies"
                        .to_string(),
                );
            } else {
                progress.step("resolving what an interrupted deploy left");
                let out = t.run(&apply::recovery_script()).await?;
                let report = apply::parse_report(&out.stdout);
                resolved.push(recovered_note(&report, &mode)?);
                continue;
            }
        }
        if let Mode::Deploy { .. } = mode {
            check_arch(t, plan, &facts)?;
            check_vendor_units(t, &facts)?;
        }
        let changes = match mode {
            Mode::Deploy { only, .. } => diff::diff(plan, &facts, only),
            Mode::Remove { service } => diff::removal(&facts, service, &plan.kinds),
        };
        let mut notes = resolved.clone();
        if !changes.not_live.is_empty() {
            notes.push(format!(
                "put back what these configure (it was not in effect): {}",
                changes.not_live.join(", ")
            ));
        }
        if !changes.drifted.is_empty() && matches!(mode, Mode::Deploy { .. }) {
            notes.push(format!(
                "repaired drift (changed by hand): {}",
                changes.drifted.join(", ")
            ));
        }
        if changes.is_empty() {
            return Ok(result(plan, Outcome::Unchanged, Vec::new(), resolved));
        }
        if let Mode::Deploy { dry_run: true, .. } = mode {
            let text = describe::describe(t, &changes, redactor).await?;
            let files = file_changes(&changes);
            return Ok(result(plan, Outcome::Planned, files, vec![text]));
        }
        progress.step(&format!("applying {} change(s)", changes.count()));
        let script = apply::script(&changes, &facts, &plan.units)?;
        let guarded = confirm::pending(plan, &changes);
        let (report, status, stderr) = match t.run(&script).await {
            Ok(out) => {
                let report = apply::parse_report(&out.stdout);
                if report.recovered.is_some() {
                    resolved.push(recovered_note(&report, &mode)?);
                    continue;
                }
                if report.began && report.exit.is_none() {
                    // The host goes on by itself: wait for it to end and read its log.
                    let (report, status) = lost(t, progress, &out.stderr).await?;
                    (report, status, String::new())
                } else {
                    let status = report.exit.unwrap_or(out.status);
                    (report, status, out.stderr)
                }
            }
            Err(e @ crate::transport::TransportError::CommandTimeout { .. }) => {
                let (report, status) = lost(t, progress, &e.to_string()).await?;
                (report, status, String::new())
            }
            Err(e) => return Err(e.into()),
        };
        match status {
            0 if report.done => {
                let mut r = result(plan, Outcome::Changed, file_changes(&changes), notes);
                r.actions = actions(&report);
                r.notes.extend(report.notes.iter().cloned());
                // Applied, but a change that could lock the deploy out is not confirmed:
                // the host reverts it; what was applied is still reported.
                match confirm::confirm(t, &guarded, progress).await {
                    Ok(lines) => r.notes.extend(lines),
                    Err(e) => {
                        r.outcome = Outcome::Failed;
                        r.error = Some(format!("{e:#}"));
                    }
                }
                return Ok(r);
            }
            apply::EXIT_STALE => continue,
            apply::EXIT_LOCKED => bail!(
                "another deploy has held {} for {} s; try again when it is done",
                apply::LOCK_FILE,
                apply::LOCK_WAIT_SECS
            ),
            apply::EXIT_INVALID => bail!(invalid_message(&report)),
            code => {
                let mut msg = failure_message(code, &report, &stderr);
                for note in confirm::armed_notes(&guarded, &report) {
                    msg.push_str(&format!("\n  {note}"));
                }
                if !report.failed_units.is_empty() && report.rolled_back {
                    if !report.verdicts.is_empty() {
                        // The version itself is bad: starting it again would only fail again.
                        msg.push_str(&format!(
                            "\n  not retried: {} failed its own health check; fix the version, then deploy",
                            report.verdicts.join(", ")
                        ));
                        bail!(msg)
                    }
                    return Err(ActivationFailed(msg).into());
                }
                bail!(msg)
            }
        }
    }
    bail!("the host kept changing under this deploy (other deploys?); try again")
}

/// What resolving an interrupted deploy's transaction did, for the host's notes; an error
/// when a rollback could not bring everything back.
fn recovered_note(report: &Report, mode: &Mode) -> Result<String> {
    if !report.unrestored.is_empty() {
        bail!(
            "an earlier deploy had left its transaction; rolling it back could not bring back: {}. \
             The host is neither the old nor the new version: fix that, then deploy again",
            report.unrestored.join(", ")
        );
    }
    let then = match mode {
        Mode::Deploy { .. } => "then deployed afresh",
        Mode::Remove { .. } => "then removed",
    };
    Ok(match report.recovered.as_deref() {
        Some("forward") => "left by an interrupted deploy: it had applied everything; its transaction was cleaned up".to_string(),
        Some("retried") => format!(
            "a failed deploy's rollback had not put every file back at the time; now it has (the units it touched brought back), {then}"
        ),
        _ => format!("left by an interrupted deploy: rolled back (its files put back, the units it touched brought back), {then}"),
    })
}

/// The connection was lost while the host applied (or the apply outlived the command
/// timeout): the host finishes by itself. Waits on a new login until it has (it holds the
/// host lock until then), and reads what it reported from its log.
async fn lost(t: &dyn Transport, progress: &Progress, why: &str) -> Result<(Report, i32)> {
    progress.step("connection lost during the apply; waiting for the host to finish it");
    let started = std::time::Instant::now();
    let deadline = std::time::Duration::from_secs(apply::LOCK_WAIT_SECS + 60);
    let last_error = loop {
        let err = match t.reopen(std::time::Duration::from_secs(10)).await {
            Ok(t2) => match t2.run(&apply::log_script()).await {
                Ok(out) if out.status == 0 && apply::rebooted(&out.stdout) => bail!(
                    "{}: the connection was lost during the apply ({}): the host rebooted, and resolved the cut-off \
                     apply by itself when it came back (rolled back, or forward if it had committed); `vds-proxy status` \
                     shows what runs, and deploying again applies this version",
                    t.label(),
                    why.trim()
                ),
                Ok(out) if out.status == 0 => {
                    let report = apply::parse_report(&out.stdout);
                    let Some(status) = report.exit else {
                        bail!(
                            "{}: the connection was lost during the apply ({}), and the apply on the host did not end \
                             either (the host was rebooted or its processes killed); the next deploy rolls back what it left",
                            t.label(),
                            why.trim()
                        );
                    };
                    let mut report = report;
                    report.notes.insert(
                        0,
                        format!(
                            "connection lost during the apply ({}); the host {} by itself",
                            why.trim(),
                            if status == 0 {
                                "applied everything"
                            } else {
                                "ended the apply"
                            }
                        ),
                    );
                    return Ok((report, status));
                }
                Ok(out) => format!("exit {}: {}", out.status, out.stderr.trim()),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if started.elapsed() > deadline {
            break err;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    bail!(
        "{}: the connection was lost during the apply ({}) and could not be opened again ({last_error}); \
         the host finishes the apply by itself: `vds-proxy status` shows how it ended",
        t.label(),
        why.trim()
    )
}

fn invalid_message(report: &Report) -> String {
    let mut msg = String::from("validation failed; nothing was changed on the host:");
    for (path, log) in &report.invalid {
        msg.push_str(&format!("\n  {path}:"));
        for l in log {
            msg.push_str(&format!("\n    {l}"));
        }
    }
    msg
}

fn failure_message(code: i32, report: &Report, stderr: &str) -> String {
    let mut msg = format!("apply failed (exit {code})");
    if report.rolled_back && report.unrestored.is_empty() {
        msg.push_str("; the previous files were restored and re-activated");
    } else if report.rolled_back {
        msg.push_str(&format!(
            "; the rollback could not bring back {}: the host is neither the old nor the new version (fix that, then deploy again)",
            report.unrestored.join(", ")
        ));
        if report.unrestored.iter().any(|u| u.starts_with('/')) {
            msg.push_str(
                "\n  the host tries again by itself to put the files back (every 5 s for 30 minutes, and at its next boot); \
                 `vds-proxy status` shows when it has",
            );
        }
    }
    for e in &report.errors {
        msg.push_str(&format!("\n  {e}"));
    }
    // What the failed command printed (its last lines).
    for l in &report.log[report.log.len().saturating_sub(15)..] {
        msg.push_str(&format!("\n    {l}"));
    }
    for u in &report.failed_units {
        msg.push_str(&format!(
            "\n  unit {u} did not come up; its last journal lines:"
        ));
    }
    for j in &report.journal {
        msg.push_str(&format!("\n    {j}"));
    }
    if !stderr.trim().is_empty() {
        msg.push_str(&format!("\n  stderr: {}", stderr.trim()));
    }
    msg
}

fn check_arch(t: &dyn Transport, plan: &HostPlan, facts: &Facts) -> Result<()> {
    for r in &plan.resources {
        if let Content::Local { arch, source, .. } = &r.content
            && arch != &facts.arch
        {
            if r.kind != crate::resources::Kind::BINARY {
                bail!(
                    "{} is {} but {} (for {}) is built for {arch}; ship one built for {}",
                    t.label(),
                    facts.arch,
                    source.display(),
                    r.path,
                    facts.arch
                );
            }
            bail!(
                "{} is {} but the vds-proxy build planned for it is for {}; build one (`just dist`) and name it in \
                vds-proxy.toml: relay_binaries.{} = \"dist/vds-proxy-{}\"",
                t.label(),
                facts.arch,
                arch,
                facts.arch,
                facts.arch
            );
        }
    }
    Ok(())
}

/// A unit file of vds-proxy's in /etc/systemd/system would silently replace one of systemd
/// or a package of the same name (a service named `getty` would break logins): refuse.
fn check_vendor_units(t: &dyn Transport, facts: &Facts) -> Result<()> {
    if facts.vendor_units.is_empty() {
        return Ok(());
    }
    let found: Vec<String> = facts
        .vendor_units
        .iter()
        .map(|(name, path)| format!("{name} (the host has {path})"))
        .collect();
    bail!(
        "{}: would replace the host's own unit(s) {}; nothing was changed. Rename what the inventory calls by that name",
        t.label(),
        found.join(", ")
    )
}

/// The files an apply writes and removes.
fn file_changes(changes: &Changes) -> Vec<FileChange> {
    let written = changes.write.iter().map(|(r, why)| FileChange {
        change: match why {
            Why::New => "created",
            Why::Content => "updated",
            Why::Metadata => "mode/owner fixed",
        },
        path: r.path.clone(),
    });
    // A file vds-proxy took over gets the host's original back: that is not a removal.
    let removed = changes.prune_files.iter().map(|f| FileChange {
        change: if f.adopted { "put back" } else { "removed" },
        path: f.path.clone(),
    });
    written.chain(removed).collect()
}

/// What the apply ran, as its report says.
fn actions(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for p in &report.unloaded {
        out.push(format!("took back what {p} configured before removing it"));
    }
    for (u, secs) in &report.drained {
        out.push(format!(
            "stopped {u} after its connections closed ({secs} s)"
        ));
    }
    for (u, n) in &report.drain_timeouts {
        out.push(format!(
            "stopped {u} with {n} connection(s) still open: drain_timeout ran out"
        ));
    }
    if !report.live.is_empty() {
        out.push(format!(
            "updated {} in place, without a reload",
            report.live.join(", ")
        ));
    }
    for (verb, units) in [
        ("restarted", &report.restarted),
        ("reloaded", &report.reloaded),
        ("started", &report.started),
        ("ran", &report.ran),
    ] {
        if !units.is_empty() {
            out.push(format!("{verb} {}", units.join(", ")));
        }
    }
    out
}
