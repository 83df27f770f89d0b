//! Running one piece of work on every host at once (bounded), with a progress line per host
//! on a terminal, and the summary table at the end.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

use crate::plan::HostPlan;
use crate::redact::Redactor;
use crate::show::table;

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
    /// A host that failed with `message`.
    pub fn failed(node: &str, message: String) -> Self {
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
    join_all(futures).await
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
