//! Running one piece of work on every host at once (bounded), with a progress line per host
//! on a terminal, and the summary table at the end.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

use crate::contract::table::table;
use crate::plan::HostPlan;
use crate::redact::Redactor;

/// How one host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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

/// One file written or removed (or that would be, in a dry run).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    /// `created`, `updated`, `mode/owner fixed`, `removed`, or `put back` (the host's own
    /// version of a file vds-proxy had taken over, restored).
    pub change: &'static str,
    pub path: String,
}

/// The result of one host, for the summary table (or `--format json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostResult {
    pub node: String,
    #[serde(rename = "result")]
    pub outcome: Outcome,
    /// Files written or removed (or that would be).
    pub files: Vec<FileChange>,
    /// What ran: units restarted, reloaded, started, stopped; activation commands.
    pub actions: Vec<String>,
    /// Everything else worth saying (drift repaired, confirmations, a dry run's diff).
    pub notes: Vec<String>,
    /// Why the host failed.
    pub error: Option<String>,
    /// How many times the host was deployed again after its activation failed.
    pub retries: u32,
}

impl HostResult {
    /// A host that failed with `message`.
    pub fn failed(node: &str, message: String) -> Self {
        HostResult {
            node: node.to_string(),
            outcome: Outcome::Failed,
            files: Vec::new(),
            actions: Vec::new(),
            notes: Vec::new(),
            error: Some(message),
            retries: 0,
        }
    }

    /// The lines printed below the summary table.
    fn lines(&self) -> Vec<String> {
        // A dry run's notes hold the diff, which names the files already.
        let shown = if self.outcome == Outcome::Planned {
            &[][..]
        } else {
            &self.files[..]
        };
        let files = shown.iter().map(|f| format!("{} {}", f.change, f.path));
        files
            .chain(self.actions.iter().cloned())
            .chain(self.notes.iter().cloned())
            .chain(self.error.iter().cloned())
            .collect()
    }
}

/// Reports one host's progress: its own line on a terminal (a handful of hosts), else only
/// with `-v`, as plain lines (or above the fleet's bar).
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    fleet: Option<ProgressBar>,
    node: String,
    verbose: bool,
}

impl Progress {
    /// Shows the host's current step.
    pub fn step(&self, msg: &str) {
        match (&self.bar, &self.fleet) {
            (Some(b), _) => b.set_message(msg.to_string()),
            (None, Some(f)) if self.verbose => f.println(format!("{}: {msg}", self.node)),
            (None, _) if self.verbose => eprintln!("{}: {msg}", self.node),
            _ => {}
        }
    }
}

/// Up to this many hosts, a terminal shows a line per host; more get one overall bar.
const LINES_UP_TO: usize = 10;

/// How progress shows on stderr.
enum Display {
    /// A terminal, a handful of hosts: a spinner line per host with its current step.
    Lines(MultiProgress),
    /// A terminal, a fleet: one bar with the counts and the hosts still running; failures
    /// printed above it as they happen.
    Fleet(ProgressBar, std::sync::Mutex<Tally>),
    /// Not a terminal (CI logs): a line per failure as it happens.
    Plain,
}

/// What the fleet's bar counts.
#[derive(Default)]
struct Tally {
    changed: usize,
    unchanged: usize,
    planned: usize,
    failed: usize,
    running: Vec<String>,
}

impl Tally {
    fn message(&self) -> String {
        let mut counts = vec![format!("{} changed", self.changed)];
        if self.unchanged > 0 {
            counts.push(format!("{} unchanged", self.unchanged));
        }
        if self.planned > 0 {
            counts.push(format!("{} planned", self.planned));
        }
        counts.push(format!("{} failed", self.failed));
        let mut running: Vec<&str> = self.running.iter().take(6).map(String::as_str).collect();
        let more = self.running.len().saturating_sub(running.len());
        let more = (more > 0).then(|| format!("+{more}"));
        running.extend(more.as_deref());
        match running.is_empty() {
            true => counts.join(" · "),
            false => format!("{} · running: {}", counts.join(" · "), running.join(" ")),
        }
    }
}

impl Display {
    fn new(hosts: usize) -> Self {
        if !std::io::stderr().is_terminal() {
            Display::Plain
        } else if hosts <= LINES_UP_TO {
            Display::Lines(MultiProgress::new())
        } else {
            let bar = ProgressBar::new(hosts as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} hosts · {wide_msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            Display::Fleet(bar, Default::default())
        }
    }

    /// The line of one host, where there is one per host.
    fn host_line(&self, node: &str) -> Option<ProgressBar> {
        let Display::Lines(multi) = self else {
            return None;
        };
        let b = multi.add(ProgressBar::new_spinner());
        b.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<16} {msg}").expect("valid template"),
        );
        b.set_prefix(node.to_string());
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b.set_message("waiting");
        Some(b)
    }

    fn started(&self, node: &str) {
        if let Display::Fleet(bar, tally) = self {
            let mut t = tally.lock().expect("tally lock");
            t.running.push(node.to_string());
            bar.set_message(t.message());
        }
    }

    fn finished(&self, r: &HostResult, line: Option<ProgressBar>) {
        let failure = (r.outcome == Outcome::Failed).then(|| {
            let first = r.error.as_deref().and_then(|e| e.lines().next());
            match first {
                // Connection errors name the host already.
                Some(e) if e.starts_with(&format!("{} ", r.node)) => format!("FAILED: {e}"),
                Some(e) => format!("{}: FAILED: {e}", r.node),
                None => format!("{}: FAILED (see the summary)", r.node),
            }
        });
        match self {
            Display::Lines(_) => {
                if let Some(b) = line {
                    b.finish_with_message(format!("{:?}", r.outcome).to_lowercase());
                }
            }
            Display::Fleet(bar, tally) => {
                let mut t = tally.lock().expect("tally lock");
                t.running.retain(|n| n != &r.node);
                match r.outcome {
                    Outcome::Changed => t.changed += 1,
                    Outcome::Unchanged => t.unchanged += 1,
                    Outcome::Planned => t.planned += 1,
                    Outcome::Failed => t.failed += 1,
                }
                if let Some(f) = failure {
                    bar.println(f);
                }
                bar.set_message(t.message());
                bar.inc(1);
            }
            Display::Plain => {
                if let Some(f) = failure {
                    eprintln!("{f}");
                }
            }
        }
    }

    fn done(&self) {
        if let Display::Fleet(bar, tally) = self {
            bar.finish_with_message(tally.lock().expect("tally lock").message());
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
    let display = Display::new(hosts.len());
    let fleet = match &display {
        Display::Fleet(bar, _) => Some(bar.clone()),
        _ => None,
    };
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let display = &display;
    let futures = hosts.iter().map(|h| {
        let line = display.host_line(&h.node);
        let progress = Progress {
            bar: line.clone(),
            fleet: fleet.clone(),
            node: h.node.clone(),
            verbose,
        };
        let sem = sem.clone();
        let fut = work(h, progress);
        async move {
            let _permit = sem.acquire().await.expect("semaphore open");
            display.started(&h.node);
            let r = fut.await;
            display.finished(&r, line);
            r
        }
    });
    let results = join_all(futures).await;
    display.done();
    results
}

/// Runs every future concurrently on the current task; results in input order.
pub async fn join_all<I, F>(futs: I) -> Vec<F::Output>
where
    I: IntoIterator<Item = F>,
    F: Future,
{
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

/// How the summary is printed and what the exit code says.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// One JSON document instead of the table.
    pub json: bool,
    /// Exit 3 when a dry run found changes (Terraform's `-detailed-exitcode`).
    pub detailed_exitcode: bool,
}

impl Summary {
    /// A table, or JSON when `json`; the plain exit codes.
    pub fn new(json: bool) -> Self {
        Summary {
            json,
            detailed_exitcode: false,
        }
    }
}

/// Exit code of a dry run with `--detailed-exitcode` that found changes.
pub const EXIT_CHANGES_PENDING: i32 = 3;

/// Prints the summary (table and details, or JSON); returns the exit code: 1 when a host
/// failed, else 3 for pending changes when asked, else 0.
pub fn summarize(results: &[HostResult], redactor: &Redactor, how: Summary) -> i32 {
    let results: Vec<HostResult> = results.iter().map(|r| redacted(r, redactor)).collect();
    if how.json {
        let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
        let doc = serde_json::json!({
            "hosts": results,
            "changed": count(Outcome::Changed),
            "unchanged": count(Outcome::Unchanged),
            "planned": count(Outcome::Planned),
            "failed": count(Outcome::Failed),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("results serialize")
        );
    } else {
        print!("{}", text(&results));
    }
    if results.iter().any(|r| r.outcome == Outcome::Failed) {
        1
    } else if how.detailed_exitcode && results.iter().any(|r| r.outcome == Outcome::Planned) {
        EXIT_CHANGES_PENDING
    } else {
        0
    }
}

/// Every string of `r` with secrets replaced.
fn redacted(r: &HostResult, redactor: &Redactor) -> HostResult {
    let all = |v: &[String]| v.iter().map(|s| redactor.apply(s)).collect();
    HostResult {
        node: redactor.apply(&r.node),
        outcome: r.outcome,
        files: r
            .files
            .iter()
            .map(|f| FileChange {
                change: f.change,
                path: redactor.apply(&f.path),
            })
            .collect(),
        actions: all(&r.actions),
        notes: all(&r.notes),
        error: r.error.as_ref().map(|e| redactor.apply(e)),
        retries: r.retries,
    }
}

fn text(results: &[HostResult]) -> String {
    let mut rows = vec![["HOST".to_string(), "CHANGED".into(), "RESULT".into()]];
    for r in results {
        let outcome = match r.outcome {
            Outcome::Changed => "changed",
            Outcome::Unchanged => "ok (no changes)",
            Outcome::Planned => "planned (dry run)",
            Outcome::Failed => "FAILED",
        };
        let outcome = match r.retries {
            0 => outcome.to_string(),
            1 => format!("{outcome}, retried once"),
            n => format!("{outcome}, retried {n} times"),
        };
        rows.push([r.node.clone(), r.files.len().to_string(), outcome]);
    }
    let mut out = table(&rows);
    for r in results {
        let lines = r.lines();
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{}:\n", r.node));
        for d in &lines {
            for line in d.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}
