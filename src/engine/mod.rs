//! The deploy engine, one module per step:
//! [`gather`] (one round trip per host: what is there now) → [`diff`] (only the needed
//! changes) → [`apply`] (stage, validate, install, activate, check, roll back on failure),
//! driven per host by [`converge`] and fanned out over the hosts by [`fanout`];
//! [`confirm`] checks over a new connection that a change did not lock vds-proxy out. [`prepare`]
//! runs before planning, [`status`] reads health and drift, [`describe`] prints a dry run.
//!
//! The engine knows the systems it deploys only through [`crate::contract`]; the shell
//! it runs on hosts is in `scripts/`.

pub mod apply;
pub mod confirm;
pub mod converge;
pub mod describe;
pub mod diff;
pub mod fanout;
pub mod gather;
pub mod logs;
pub mod prepare;
pub mod probe;
pub mod state;
pub mod status;

pub use converge::converge_host;
pub use fanout::{HostResult, Outcome, Progress, Summary, for_each_host, join_all, summarize};

use crate::resources::Part;

/// Writes an executable shell script with `body` at `path` (its directory made): a stand-in
/// for a program the host scripts call, for tests that run those scripts here.
#[cfg(test)]
pub(crate) fn stand_in(path: &std::path::Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// What a deploy or remove does on each host.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'s> {
    /// Converge to the plan; with `only`, just the resources of those parts.
    Deploy {
        dry_run: bool,
        only: Option<&'s [Part]>,
        /// How many more times a host whose activation failed is deployed again.
        retries: u32,
    },
    /// Take back everything, or what one named service installed.
    Remove { service: Option<&'s str> },
}
