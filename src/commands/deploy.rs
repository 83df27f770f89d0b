//! `deploy` (`apply`): the prepare step (keys made on the nodes), then converge every
//! selected host; `--only` limits it to some parts, `verify` runs the status checks after.

use anyhow::Result;

use crate::app::Loaded;
use crate::cli::{DeployArgs, Format, Tag};
use crate::contract::PrepareMode;
use crate::engine::Mode;
use crate::resources::Part;

/// Runs `deploy`.
pub fn run(loaded: &mut Loaded, args: DeployArgs, verbose: bool) -> Result<i32> {
    super::select(loaded, &args.targets)?;
    let mut outside_changes = false;
    for s in &loaded.systems.outside {
        let done = s.converge_outside(&loaded.inventory, args.dry_run)?;
        for line in &done.lines {
            eprintln!("{}", loaded.redactor.apply(line));
        }
        outside_changes |= done.changes;
    }
    let mode = match (args.dry_run, args.rotate_keys) {
        (true, _) => PrepareMode::Read,
        (false, true) => PrepareMode::Rotate,
        (false, false) => PrepareMode::Create,
    };
    super::prepare(loaded, &args.connect, mode)?;
    let verify = args.only.contains(&Tag::Verify);
    let parts = parts_of(&args.only);
    let mut code = 0;
    if args.only.is_empty() || !parts.is_empty() {
        let only = (!args.only.is_empty()).then_some(parts.as_slice());
        let mode = Mode::Deploy {
            dry_run: args.dry_run,
            only,
            retries: args.retries.unwrap_or(loaded.settings.retries),
        };
        let how = crate::engine::Summary {
            detailed_exitcode: args.detailed_exitcode,
            ..crate::engine::Summary::new(args.format == Format::Json)
        };
        code = super::converge(loaded, &args.connect, mode, verbose, how)?;
    }
    if code == 0 && args.dry_run && args.detailed_exitcode && outside_changes {
        code = crate::engine::fanout::EXIT_CHANGES_PENDING;
    }
    if verify && code == 0 && !args.dry_run {
        code = super::status::report(loaded, &args.connect, None, args.format)?;
    }
    Ok(code)
}

/// The parts `--only` tags select (`verify` selects none: it runs the status checks).
fn parts_of(tags: &[Tag]) -> Vec<Part> {
    let mut parts: Vec<Part> = tags.iter().flat_map(|t| t.parts()).copied().collect();
    parts.sort();
    parts.dedup();
    parts
}
