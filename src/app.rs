//! Loading everything a verb needs from the command line, and the exit codes.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::Global;
use crate::inventory::{self, InputErrors, Inventory, PathSource, Sections};
use crate::plan::{self, Plan, PlanError};
use crate::redact::Redactor;
use crate::resources::binary::Artifact;
use crate::settings::{self, Settings};
use crate::templates::Templates;

/// Exit code: everything succeeded / is healthy.
pub const EXIT_OK: i32 = 0;
/// Exit code: some host failed, or status found a problem.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad input (inventory, settings, templates, flags); no host was touched.
pub const EXIT_INPUT: i32 = 2;

/// An error caused by the user's input: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Inventory(#[from] InputErrors),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Other(String),
}

/// The inventory, settings and rendered plan a verb works from.
pub struct Loaded {
    pub inventory: Inventory,
    pub settings: Settings,
    pub plan: Plan,
    pub redactor: Redactor,
    /// Connections kept open between the steps of one verb.
    pub pool: std::sync::Arc<crate::transport::Pool>,
    templates: Templates,
    bundle: Artifact,
}

impl Loaded {
    /// Renders the plan again with what the prepare step read from the nodes, keeping the
    /// `--node` selection.
    pub fn replan(&mut self, prepared: &Sections) -> Result<()> {
        let selected: Vec<String> = self.plan.hosts.iter().map(|h| h.node.clone()).collect();
        let mut plan = plan::build(&self.inventory, &self.templates, &self.bundle, prepared)
            .map_err(InputError::from)?;
        plan.hosts.retain(|h| selected.contains(&h.node));
        self.plan = plan;
        Ok(())
    }
}

/// Reads inventory and settings, renders the plan. Input problems come back as [`InputError`].
pub fn load(global: &Global) -> Result<Loaded> {
    let env = std::env::var("NODES_CONFIG").ok();
    let (path, source) = inventory::resolve_path(global.inventory.as_deref(), env.as_deref());
    if global.verbose {
        let why = match source {
            PathSource::Flag => "from --inventory",
            PathSource::Env => "from NODES_CONFIG",
            PathSource::Default => "the default",
        };
        eprintln!("inventory: {} ({why})", path.display());
    }
    let settings_path = global
        .settings
        .clone()
        .unwrap_or_else(|| settings::path_beside(&path));
    // Both files are checked before either error is reported, so all problems show at once.
    let inv = inventory::load(&path);
    let settings = settings::load(&settings_path);
    let (inventory, settings) = match (inv, settings) {
        (Ok(i), Ok(s)) => (i, s),
        (i, s) => {
            let mut all = Vec::new();
            if let Err(e) = i {
                all.extend(e.0);
            }
            if let Err(e) = s {
                all.extend(e.0);
            }
            return Err(InputError::Inventory(InputErrors(all)).into());
        }
    };
    if global.verbose && settings_path.exists() {
        eprintln!("settings: {}", settings_path.display());
    }
    let template_dir = global.templates.clone().or(settings.templates.clone());
    let templates =
        Templates::new(template_dir.as_deref()).map_err(|e| InputError::Other(format!("{e:#}")))?;
    let bundle = bundle_artifact(&settings)?;
    let plan = plan::build(&inventory, &templates, &bundle, &Sections::default())
        .map_err(InputError::from)?;
    let redactor = Redactor::new(inventory.secrets());
    Ok(Loaded {
        inventory,
        settings,
        plan,
        redactor,
        pool: Default::default(),
        templates,
        bundle,
    })
}

/// The vds-proxy build to ship to nodes that run its bundled servers: `relay_binary` from
/// the settings, else this executable.
fn bundle_artifact(settings: &Settings) -> Result<Artifact> {
    let path: PathBuf = match &settings.relay_binary {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating the vds-proxy executable")?,
    };
    Artifact::from_file(path.clone(), std::env::consts::ARCH)
        .with_context(|| format!("reading the relay binary {}", path.display()))
}

/// The exit code for an error that ended a verb.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<InputError>().is_some() {
        EXIT_INPUT
    } else {
        EXIT_FAILED
    }
}
