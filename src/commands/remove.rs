//! `remove`: take back everything vds-proxy installed on the selected hosts, or what one
//! named service installed.

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
    super::converge(loaded, &args.connect, mode, verbose, how)
}
