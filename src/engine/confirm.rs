//! Confirmation of changes that could cut vds-proxy off from a host (packet filter rules): the
//! change goes live with a revert armed on the host; a *new* SSH connection must then
//! succeed and cancel it. If it cannot, the host puts the previous version back by itself
//! and the deploy reports the host failed — the "magic rollback" of deploy-rs.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::apply::Report;
use super::diff::{Changes, Why};
use super::fanout::Progress;
use crate::plan::HostPlan;
use crate::resources::{Action, Confirm, Resource};
use crate::transport::Transport;

/// Seconds given to the host beyond `revert_after` before looking whether it reverted.
const REVERT_MARGIN_SECS: u64 = 5;

/// The changes of this apply that must be confirmed: guarded files written, or whose
/// configuration was not in effect and is activated again.
pub fn pending<'p>(plan: &'p HostPlan, changes: &Changes<'p>) -> Vec<&'p Resource> {
    plan.resources
        .iter()
        .filter(|r| r.confirm.is_some())
        .filter(|r| {
            changes
                .write
                .iter()
                .any(|(w, why)| w.path == r.path && *why != Why::Metadata)
                || changes.not_live.contains(&r.path)
        })
        .collect()
}

/// What a failed apply leaves armed: for each pending change whose activation ran, when
/// the host puts its previous version back.
pub fn armed_notes(pending: &[&Resource], report: &Report) -> Vec<String> {
    pending
        .iter()
        .filter(|r| {
            r.on_change.iter().any(|a| match a {
                Action::Run { name, .. } => report.ran.contains(name),
                _ => false,
            })
        })
        .filter_map(|r| {
            let c = r.confirm.as_ref()?;
            Some(format!(
                "{} went live unconfirmed: the host puts its last confirmed version back within {} s",
                r.path, c.revert_after
            ))
        })
        .collect()
}

/// Confirms each pending change over a new connection to the host of `t`; the lines to
/// report on success.
pub async fn confirm(
    t: &dyn Transport,
    pending: &[&Resource],
    progress: &Progress,
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for r in pending {
        let Some(c) = &r.confirm else { continue };
        progress.step(&format!("confirming {} over a new connection", r.path));
        let started = Instant::now();
        // The connection attempt must end well before the host reverts by itself.
        let timeout = Duration::from_secs(u64::from(c.revert_after / 2).max(1));
        match t.reopen(timeout).await {
            Ok(fresh) => {
                let out = fresh.run(&c.command).await?;
                if out.status != 0 {
                    bail!(
                        "{} went live, but confirming it failed: {}; the host puts its last confirmed version back (or already did)",
                        r.path,
                        one_line(&out.stdout, &out.stderr)
                    );
                }
                lines.push(format!(
                    "confirmed {} over a new connection ({:.1} s)",
                    r.path,
                    started.elapsed().as_secs_f64()
                ));
            }
            Err(e) => bail!(locked_out(t, r, c, &e.to_string(), started, progress).await),
        }
    }
    Ok(lines)
}

/// Waits until the host must have reverted, looks whether it answers again, and says so.
async fn locked_out(
    t: &dyn Transport,
    r: &Resource,
    c: &Confirm,
    error: &str,
    started: Instant,
    progress: &Progress,
) -> String {
    let until = Duration::from_secs(u64::from(c.revert_after) + REVERT_MARGIN_SECS);
    progress.step(&format!(
        "locked out by {}: waiting for the host to revert it",
        r.path
    ));
    tokio::time::sleep(until.saturating_sub(started.elapsed())).await;
    let after = match t.reopen(Duration::from_secs(10)).await {
        Ok(_) => format!(
            "the host reverted it by itself after {} s and accepts new connections again",
            c.revert_after
        ),
        Err(e) => format!(
            "the host still refuses new connections {} s later ({e}); use its console",
            until.as_secs()
        ),
    };
    format!(
        "{} went live, then a new connection to the host failed ({error}): the change locks vds-proxy out; {after}. Fix what it blocks and deploy again",
        r.path
    )
}

fn one_line(stdout: &str, stderr: &str) -> String {
    let text = format!("{} {}", stdout.trim(), stderr.trim());
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
