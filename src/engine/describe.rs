//! The dry-run text of a host's changes: unified diffs of text files (secrets redacted),
//! the binaries and removals, and the actions.

use anyhow::Result;

use super::diff::{Changes, Why};
use super::status::read_files;
use crate::redact::Redactor;
use crate::resources::{Content, Kind};
use crate::transport::Transport;

/// What `changes` would do, for people.
pub async fn describe(
    t: &dyn Transport,
    changes: &Changes<'_>,
    redactor: &Redactor,
) -> Result<String> {
    let wanted: Vec<&str> = changes
        .write
        .iter()
        .filter(|(r, why)| *why == Why::Content && r.kind != Kind::BINARY && !r.secret)
        .map(|(r, _)| r.path.as_str())
        .collect();
    let old = read_files(t, &wanted).await?;
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
                let from = if *why == Why::New {
                    "/dev/null"
                } else {
                    &r.path
                };
                let d = similar::TextDiff::from_lines(before.as_str(), new.as_str());
                out.push_str(
                    &d.unified_diff()
                        .context_radius(3)
                        .header(from, &r.path)
                        .to_string(),
                );
            }
        }
    }
    for f in &changes.prune_files {
        out.push_str(&format!("- {} (no longer in the inventory)\n", f.path));
        let ops = changes.ops(f);
        if let Some(cmd) = ops.and_then(|o| o.before_remove(&f.path)) {
            out.push_str(&format!("would run first: {cmd}\n"));
        }
        if let Some(cmd) = ops.and_then(|o| o.after_remove(&f.path)) {
            out.push_str(&format!("would run once the host converged: {cmd}\n"));
        }
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
        out.push_str(&format!("would run: {}\n", a.text()));
    }
    for u in &changes.enable {
        out.push_str(&format!("would run: systemctl enable {u}\n"));
    }
    for u in &changes.start {
        out.push_str(&format!("would run: systemctl start {u}\n"));
    }
    Ok(redactor.apply(&out))
}
