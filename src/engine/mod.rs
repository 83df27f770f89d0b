//! The deploy engine: gather → diff → apply on every host, in parallel, one progress line
//! per host, a summary table at the end.

pub mod apply;
pub mod backends;
pub mod diff;
pub mod gather;
pub mod keys;
pub mod probe;
pub mod state;
pub mod status;
pub mod tunnels;
pub mod workloads;

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

use crate::inventory::Inventory;
use crate::plan::HostPlan;
use crate::redact::Redactor;
use crate::resources::{Content, Kind, Part};
use crate::show::table;
use crate::transport::{self, ConnectOptions, Transport};
use diff::{Changes, Why};
use gather::Facts;

/// How one host ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Changes were applied.
    Changed,
    /// The host already matched.
    Unchanged,
    /// Nothing was changed on purpose (dry run).
    Planned,
    /// The host failed; it was left as it was (or restored).
    Failed,
}

/// The result of one host, for the summary table.
#[derive(Debug, Clone)]
pub struct HostResult {
    pub node: String,
    pub outcome: Outcome,
    /// How many resources were (or would be) written or removed.
    pub changed: usize,
    /// Lines to print below the table.
    pub details: Vec<String>,
}

impl HostResult {
    fn failed(node: &str, message: String) -> Self {
        HostResult {
            node: node.to_string(),
            outcome: Outcome::Failed,
            changed: 0,
            details: vec![message],
        }
    }
}

/// Reports progress: an indicatif line per host on a terminal, plain lines otherwise.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    node: String,
    verbose: bool,
}

impl Progress {
    /// Shows the host's current step.
    pub fn step(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None if self.verbose => eprintln!("{}: {msg}", self.node),
            None => {}
        }
    }
}

/// Runs `work` on every host plan with at most `parallel` at once; results in plan order.
pub async fn for_each_host<'a, F, Fut>(
    hosts: &'a [HostPlan],
    parallel: usize,
    verbose: bool,
    work: F,
) -> Vec<HostResult>
where
    F: Fn(&'a HostPlan, Progress) -> Fut,
    Fut: Future<Output = HostResult> + 'a,
{
    let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
    let style =
        ProgressStyle::with_template("{spinner} {prefix:<16} {msg}").expect("valid template");
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let futures = hosts.iter().map(|h| {
        let bar = multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new_spinner());
            b.set_style(style.clone());
            b.set_prefix(h.node.clone());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b.set_message("waiting");
            b
        });
        let progress = Progress {
            bar: bar.clone(),
            node: h.node.clone(),
            verbose,
        };
        let sem = sem.clone();
        let fut = work(h, progress);
        async move {
            let _permit = sem.acquire().await.expect("semaphore open");
            let r = fut.await;
            if let Some(b) = bar {
                b.finish_with_message(format!("{:?}", r.outcome).to_lowercase());
            }
            r
        }
    });
    futures_join(futures).await
}

/// Runs every future concurrently on the current task; results in input order.
pub async fn futures_join<I, F>(futs: I) -> Vec<F::Output>
where
    I: IntoIterator<Item = F>,
    F: Future,
{
    // Poll all host futures concurrently on this task; the semaphore bounds the work.
    let futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut slots: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    let mut futs: Vec<Option<_>> = futs.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        slots[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    slots
        .into_iter()
        .map(|s| s.expect("every future finished"))
        .collect()
}

/// Prints the summary table and details; returns the exit code (0 all ok, 1 some failed).
pub fn summarize(results: &[HostResult], redactor: &Redactor) -> i32 {
    let mut rows = vec![["HOST".to_string(), "CHANGED".into(), "RESULT".into()]];
    for r in results {
        let outcome = match r.outcome {
            Outcome::Changed => "changed",
            Outcome::Unchanged => "ok (no changes)",
            Outcome::Planned => "planned (dry run)",
            Outcome::Failed => "FAILED",
        };
        rows.push([r.node.clone(), r.changed.to_string(), outcome.to_string()]);
    }
    let mut out = table(&rows);
    for r in results.iter().filter(|r| !r.details.is_empty()) {
        out.push_str(&format!("\n{}:\n", r.node));
        for d in &r.details {
            for line in d.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    print!("{}", redactor.apply(&out));
    if results.iter().any(|r| r.outcome == Outcome::Failed) {
        1
    } else {
        0
    }
}

/// What a deploy or remove does on each host.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'s> {
    /// Converge to the plan; with `only`, just the resources of those parts.
    Deploy {
        dry_run: bool,
        only: Option<&'s [Part]>,
    },
    /// Take back everything, or one route/service's resources.
    Remove { service: Option<&'s str> },
}

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
    match converge(t.as_ref(), plan, mode, redactor, &progress).await {
        Ok(r) => r,
        Err(e) => HostResult::failed(&plan.node, format!("{e:#}")),
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
    // (exit 76) and the host is gathered again.
    for _attempt in 0..5 {
        progress.step("gathering");
        let facts = gather::gather(t, plan).await?;
        check_arch(t, plan, &facts)?;
        let changes = match mode {
            Mode::Deploy { only, .. } => diff::diff(plan, &facts, only),
            Mode::Remove { service } => diff::removal(&facts, service),
        };
        let mut details = Vec::new();
        if !changes.not_live.is_empty() {
            details.push(format!(
                "put back what these configure (it was not in effect): {}",
                changes.not_live.join(", ")
            ));
        }
        if !changes.drifted.is_empty() && matches!(mode, Mode::Deploy { .. }) {
            details.push(format!(
                "repaired drift (changed by hand): {}",
                changes.drifted.join(", ")
            ));
        }
        if changes.is_empty() {
            return Ok(HostResult {
                node: plan.node.clone(),
                outcome: Outcome::Unchanged,
                changed: 0,
                details: Vec::new(),
            });
        }
        if let Mode::Deploy { dry_run: true, .. } = mode {
            let text = describe(t, &changes, redactor).await?;
            return Ok(HostResult {
                node: plan.node.clone(),
                outcome: Outcome::Planned,
                changed: changes.count(),
                details: vec![text],
            });
        }
        progress.step(&format!("applying {} change(s)", changes.count()));
        let script = apply::script(&changes, &facts, &plan.units)?;
        let out = t.run(&script).await?;
        let report = apply::parse_report(&out.stdout);
        match out.status {
            0 if report.done => {
                details.extend(summary_lines(&changes, &report));
                return Ok(HostResult {
                    node: plan.node.clone(),
                    outcome: Outcome::Changed,
                    changed: changes.count(),
                    details,
                });
            }
            apply::EXIT_STALE => continue,
            apply::EXIT_LOCKED => bail!(
                "another deploy has held {} for {} s; try again when it is done",
                apply::LOCK_FILE,
                apply::LOCK_WAIT_SECS
            ),
            apply::EXIT_INVALID => {
                let mut msg = String::from("validation failed; nothing was changed on the host:");
                for (path, log) in &report.invalid {
                    msg.push_str(&format!("\n  {path}:"));
                    for l in log {
                        msg.push_str(&format!("\n    {l}"));
                    }
                }
                bail!(msg)
            }
            code => {
                let mut msg = format!("apply failed (exit {code})");
                if report.rolled_back {
                    msg.push_str("; the previous files were restored and re-activated");
                }
                for e in &report.errors {
                    msg.push_str(&format!("\n  {e}"));
                }
                for u in &report.failed_units {
                    msg.push_str(&format!(
                        "\n  unit {u} did not come up; its last journal lines:"
                    ));
                }
                for j in &report.journal {
                    msg.push_str(&format!("\n    {j}"));
                }
                if !out.stderr.trim().is_empty() {
                    msg.push_str(&format!("\n  stderr: {}", out.stderr.trim()));
                }
                bail!(msg)
            }
        }
    }
    bail!("the host kept changing under this deploy (other deploys?); try again")
}

fn check_arch(t: &dyn Transport, plan: &HostPlan, facts: &Facts) -> Result<()> {
    for r in &plan.resources {
        if let Content::Local { arch, .. } = &r.content
            && arch != &facts.arch
        {
            bail!(
                "{} is {} but the relay build at hand is for {}; build one with `cargo build --release --target {}-unknown-linux-gnu` and set relay_binary in vds-proxy.toml",
                t.label(),
                facts.arch,
                arch,
                facts.arch
            );
        }
    }
    Ok(())
}

fn summary_lines(changes: &Changes, report: &apply::Report) -> Vec<String> {
    let mut out = Vec::new();
    for (r, why) in &changes.write {
        let w = match why {
            Why::New => "created",
            Why::Content => "updated",
            Why::Metadata => "mode/owner fixed",
        };
        out.push(format!("{w} {}", r.path));
    }
    for f in &changes.prune_files {
        out.push(format!("removed {}", f.path));
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
    for (verb, units) in [
        ("restarted", &report.restarted),
        ("reloaded", &report.reloaded),
        ("started", &report.started),
    ] {
        if !units.is_empty() {
            out.push(format!("{verb} {}", units.join(", ")));
        }
    }
    out
}

/// The dry-run text of `changes`: unified diffs of text files (secrets redacted), the
/// binaries and removals, and the actions.
async fn describe(t: &dyn Transport, changes: &Changes<'_>, redactor: &Redactor) -> Result<String> {
    let wanted: Vec<&str> = changes
        .write
        .iter()
        .filter(|(r, why)| *why == Why::Content && r.kind != Kind::Binary && !r.secret)
        .map(|(r, _)| r.path.as_str())
        .collect();
    let old = status::read_files(t, &wanted).await?;
    let mut out = String::new();
    for (r, why) in &changes.write {
        match (why, &r.content) {
            (Why::Metadata, _) => out.push_str(&format!(
                "~ {} mode/owner -> {:04o} {}:{}\n",
                r.path, r.mode, r.owner, r.group
            )),
            (_, Content::Local { size, .. }) => out.push_str(&format!(
                "~ {} binary -> sha256 {} ({} bytes)\n",
                r.path, r.sha256, size
            )),
            (_, Content::Text(_)) if r.secret => out.push_str(&format!(
                "~ {} (holds a secret; content not shown)\n",
                r.path
            )),
            (_, Content::Text(new)) => {
                let before = old.get(&r.path).cloned().unwrap_or_default();
                let d = similar::TextDiff::from_lines(before.as_str(), new.as_str());
                out.push_str(
                    &d.unified_diff()
                        .context_radius(3)
                        .header(
                            if *why == Why::New {
                                "/dev/null"
                            } else {
                                &r.path
                            },
                            &r.path,
                        )
                        .to_string(),
                );
            }
        }
    }
    for f in &changes.prune_files {
        out.push_str(&format!("- {} (no longer in the inventory)\n", f.path));
    }
    for u in &changes.prune_units {
        out.push_str(&format!("would stop and disable {u}\n"));
    }
    for u in &changes.prune_units_late {
        out.push_str(&format!(
            "would stop and disable {} (after the reload, once its connections closed)\n",
            u.unit
        ));
    }
    for p in &changes.not_live {
        out.push_str(&format!("! {p}: what it configures is not in effect\n"));
    }
    for a in &changes.actions {
        out.push_str(&format!("would run: {}\n", action_text(a)));
    }
    for u in &changes.enable {
        out.push_str(&format!("would run: systemctl enable {u}\n"));
    }
    for u in &changes.start {
        out.push_str(&format!("would run: systemctl start {u}\n"));
    }
    Ok(redactor.apply(&out))
}

fn action_text(a: &crate::resources::Action) -> String {
    use crate::resources::Action;
    match a {
        Action::DaemonReload => "systemctl daemon-reload".into(),
        Action::Restart(u) => format!("systemctl restart {u}"),
        Action::Reload(u) => format!("systemctl reload {u}"),
    }
}
