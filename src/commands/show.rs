//! `show`: what would be deployed where (offline), a role's table, or with `--diff` what
//! would change on the live hosts.

use anyhow::Result;

use crate::app::{InputError, Loaded};
use crate::cli::{Format, ShowArgs};
use crate::contract::PrepareMode;
use crate::engine::Mode;
use crate::show;

/// Runs `show`.
pub fn run(loaded: &mut Loaded, args: ShowArgs, verbose: bool) -> Result<i32> {
    super::select(loaded, &args.targets)?;
    if let Some(s) = &args.service {
        for h in &mut loaded.plan.hosts {
            h.retain_service(s);
        }
    }
    if args.diff {
        super::prepare(loaded, &args.connect, PrepareMode::Read)?;
        let mode = Mode::Deploy {
            dry_run: true,
            only: None,
            retries: 0,
        };
        let how = crate::engine::Summary::new(args.format == Format::Json);
        return super::converge(loaded, &args.connect, mode, verbose, how);
    }
    let out = match (args.table(), args.format) {
        (Some(name), _) => table(loaded, name)?,
        (None, Format::Json) => show::plan_json(&loaded.plan),
        (None, Format::Text) => show::plan_text(&loaded.inventory, &loaded.plan),
    };
    print!("{out}");
    Ok(0)
}

/// The table a system prints under `name`.
fn table(loaded: &Loaded, name: &str) -> Result<String> {
    let tables: Vec<(&str, String)> = loaded
        .systems
        .tables
        .iter()
        .filter_map(|s| s.table(&loaded.inventory))
        .collect();
    match tables.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => Ok(text.clone()),
        None => {
            let names: Vec<&str> = tables.iter().map(|(n, _)| *n).collect();
            Err(InputError::Other(format!(
                "--table {name}: no such table; tables: {}",
                names.join(", ")
            ))
            .into())
        }
    }
}
