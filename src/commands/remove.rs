//! `remove`: take back everything vds-proxy installed on the selected hosts, or what one
//! named service installed; with `--purge-data`, then the data its services made.

use anyhow::Result;

use crate::app::Loaded;
use crate::cli::{Format, RemoveArgs};
use crate::engine::{Mode, Summary};

/// Runs `remove`.
pub fn run(loaded: &mut Loaded, args: RemoveArgs, verbose: bool) -> Result<i32> {
    super::select(loaded, &args.targets)?;
    let mode = Mode::Remove {
        service: args.service.as_deref(),
    };
    let how = Summary::new(args.format == Format::Json);
    let code = super::converge(loaded, &args.connect, mode, verbose, how)?;
    if !args.purge_data {
        return Ok(code);
    }
    if code != 0 {
        eprintln!("data kept: not everything could be removed (see above); run remove again");
        return Ok(code);
    }
    purge(loaded, &args.connect)
}

/// Runs every system's purge lines on each selected host; reports what was deleted.
fn purge(loaded: &Loaded, connect: &crate::cli::Connect) -> Result<i32> {
    let remote = super::Remote::new(loaded, connect)?;
    let mut code = 0;
    for host in &loaded.plan.hosts {
        let script: String = loaded
            .systems
            .purge
            .iter()
            .map(|s| s.purge_script(&loaded.inventory, &host.node))
            .collect();
        if script.is_empty() {
            continue;
        }
        let node = loaded
            .inventory
            .node(&host.node)
            .expect("plan nodes are in the inventory");
        match remote.run(node, &script) {
            Ok(o) if o.status == 0 => {
                let purged: Vec<&str> = o
                    .stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix("@purged "))
                    .collect();
                for p in &purged {
                    eprintln!("{}: deleted {p}", host.node);
                }
                if purged.is_empty() {
                    eprintln!("{}: no data to delete", host.node);
                }
            }
            Ok(o) => {
                eprintln!("{}: purging data failed: {}", host.node, o.stderr.trim());
                code = 1;
            }
            Err(e) => {
                eprintln!("{}: purging data failed: {e:#}", host.node);
                code = 1;
            }
        }
    }
    Ok(code)
}
