//! `status`: health and drift of every selected host and end-to-end probes; exit 1 when
//! anything is wrong (a CI check).

use anyhow::Result;

use crate::app::{InputError, Loaded};
use crate::cli::{Connect, Format, StatusArgs};
use crate::contract::PrepareMode;
use crate::engine::{join_all, status};
use crate::show;

/// Runs `status`.
pub fn run(loaded: &mut Loaded, args: StatusArgs) -> Result<i32> {
    if let Some(p) = &args.probe_from
        && loaded.inventory.node(p).is_none()
    {
        return Err(
            InputError::Other(format!("--probe-from {p}: no such node in the inventory")).into(),
        );
    }
    super::select(loaded, &args.targets)?;
    super::prepare(loaded, &args.connect, PrepareMode::Read)?;
    report(
        loaded,
        &args.connect,
        args.probe_from.as_deref(),
        args.format,
    )
}

/// Runs every check, prints the table (or JSON); 0 when all are ok.
pub fn report(
    loaded: &Loaded,
    connect: &Connect,
    probe_from: Option<&str>,
    format: Format,
) -> Result<i32> {
    let (opts, _) = super::options(loaded, connect);
    let inv = &loaded.inventory;
    let checks = super::runtime()?.block_on(async {
        let per_host = loaded
            .plan
            .hosts
            .iter()
            .map(|h| status::host_checks(inv, h, &opts, &loaded.systems));
        let (hosts, probes) = tokio::join!(
            join_all(per_host),
            status::probe_checks(inv, &loaded.plan, &opts, probe_from, &loaded.systems)
        );
        let mut checks: Vec<status::Check> = hosts.concat();
        checks.extend(probes);
        checks
    });
    let text = match format {
        Format::Json => show::status_json(&checks, &loaded.redactor),
        Format::Text => show::status_text(&checks, &loaded.redactor),
    };
    print!("{text}");
    Ok(if checks.iter().all(|c| c.ok) { 0 } else { 1 })
}
