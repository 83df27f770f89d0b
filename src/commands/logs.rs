//! `logs`: the journal of the units vds-proxy manages on every selected node, read in
//! parallel, each line prefixed with its node and every secret of the inventory masked;
//! `-f` reads again every second after where the last read ended, until Ctrl-C.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use crate::app::{InputError, Loaded};
use crate::cli::LogsArgs;
use crate::engine::{join_all, logs};
use crate::transport::{self, Transport};

/// Runs `logs`; 0, or 1 when a node could not be read.
pub fn run(loaded: &mut Loaded, args: LogsArgs) -> Result<i32> {
    super::select(loaded, &args.targets)?;
    if let Some(s) = &args.since
        && !logs::since_ok(s)
    {
        return Err(InputError::Other(format!(
            "--since {s:?}: not a time journalctl reads; use e.g. \"1 hour ago\" or \"2026-12-04 10:00\""
        ))
        .into());
    }
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &loaded.plan.hosts {
        let mut units = logs::units(h, args.service.as_deref());
        if !args.units.is_empty() {
            units.retain(|u| args.units.contains(u));
        }
        if !units.is_empty() {
            wanted.insert(h.node.clone(), units);
        }
    }
    for u in &args.units {
        if !wanted.values().flatten().any(|w| w == u) {
            return Err(InputError::Other(format!(
                "--unit {u}: not a unit vds-proxy manages on the selected nodes; `vds-proxy show` lists them"
            ))
            .into());
        }
    }
    if wanted.is_empty() {
        return Err(InputError::Other(match &args.service {
            Some(s) => {
                format!("--service {s}: no unit on the selected nodes belongs to it; `vds-proxy show --service {s}` lists what does")
            }
            None => "the selected nodes run no unit vds-proxy manages".into(),
        })
        .into());
    }
    let width = wanted.keys().map(String::len).max().unwrap_or(0);
    let (opts, _) = super::options(loaded, &args.connect);
    let inv = &loaded.inventory;
    let redactor = &loaded.redactor;
    let rt = super::runtime()?;
    rt.block_on(async {
        let connected = join_all(wanted.keys().map(|n| async {
            let node = inv.node(n).expect("plan nodes are in the inventory");
            (n.clone(), transport::connect(node, &opts).await)
        }))
        .await;
        let mut failed = false;
        let mut readers: Vec<(String, Box<dyn Transport>, String)> = Vec::new();
        for (n, t) in connected {
            match t {
                Ok(t) => readers.push((n, t, String::new())),
                Err(e) => {
                    eprintln!("{n:width$} | cannot read: {e}");
                    failed = true;
                }
            }
        }
        let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            let reads = join_all(readers.iter().map(|(n, t, cursor)| {
                let script =
                    logs::read_script(cursor, args.since.as_deref(), args.lines, &wanted[n]);
                async move { t.run(&script).await }
            }))
            .await;
            let mut out = std::io::stdout().lock();
            for ((n, _, cursor), read) in readers.iter_mut().zip(reads) {
                match read {
                    Ok(o) => {
                        let (lines, next) = logs::parse(&o.stdout, cursor);
                        for l in lines {
                            let _ = writeln!(out, "{n:width$} | {}", redactor.apply(&l));
                        }
                        *cursor = next;
                    }
                    Err(e) => {
                        let _ = writeln!(out, "{n:width$} | cannot read: {e}");
                        failed = true;
                    }
                }
            }
            let _ = out.flush();
            drop(out);
            if !args.follow {
                break;
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        Ok(i32::from(failed))
    })
}
