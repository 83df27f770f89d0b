//! Loading everything a verb needs from the command line, and the exit codes.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::cli::Global;
use crate::contract::{BadInput, Systems};
use crate::inventory::{self, InputErrors, Inventory, PathSource, Sections};
use crate::plan::{self, Plan, PlanError};
use crate::redact::Redactor;
use crate::resources::Content;
use crate::resources::binary::{self, Artifact, Bundle, KNOWN_ARCHES};
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
    /// The systems, as the top handed them down.
    pub systems: Systems,
    templates: Templates,
    bundle: Bundle,
}

impl Loaded {
    /// Renders the plan again with what the prepare step read from the nodes, keeping the
    /// `--node` selection.
    pub fn replan(&mut self, prepared: &Sections) -> Result<()> {
        let selected: Vec<String> = self.plan.hosts.iter().map(|h| h.node.clone()).collect();
        let default = self.bundle.default_build();
        let mut plan = plan::build(
            &self.inventory,
            &self.templates,
            default,
            prepared,
            &self.systems,
        )
        .map_err(InputError::from)?;
        plan.hosts.retain(|h| selected.contains(&h.node));
        self.plan = plan;
        Ok(())
    }

    /// Whether `node`'s architecture must be read before planning: the settings name
    /// builds for more than one architecture and the plan ships one to `node`. (With one
    /// build, a node of another architecture fails alone, before it changes, and the
    /// common deploy saves a round trip.)
    pub fn needs_arch(&self, node: &str) -> bool {
        self.bundle.arches().len() > 1
            && self
                .plan
                .hosts
                .iter()
                .filter(|h| h.node == node)
                .flat_map(|h| &h.resources)
                .any(|r| matches!(r.content, Content::Local { .. }))
    }

    /// Gives every node whose architecture (`uname -m`, by node) differs from the default
    /// build's the build for its own. A node with none is bad input, reported for all
    /// nodes at once before any host changes.
    pub fn select_builds(&mut self, arch_of: &BTreeMap<String, String>) -> Result<()> {
        let mut problems = Vec::new();
        for host in &mut self.plan.hosts {
            let Some(arch) = arch_of.get(&host.node) else {
                continue;
            };
            // Only vds-proxy's own binary has builds to choose from (an image archive is
            // what it is; a mismatch is reported before the host changes).
            for r in host
                .resources
                .iter_mut()
                .filter(|r| r.kind == crate::resources::Kind::BINARY)
            {
                let Content::Local { arch: planned, .. } = &r.content else {
                    continue;
                };
                if planned == arch {
                    continue;
                }
                match self.bundle.for_arch(arch) {
                    Some(build) => binary::retarget(r, build),
                    None => problems.push(format!(
                        "{} is {arch}, and there is no {arch} build of vds-proxy to install there (builds at \
                         hand: {}); build one (`just dist`) and name it in vds-proxy.toml: \
                         relay_binaries.{arch} = \"dist/vds-proxy-{arch}\"",
                        host.node,
                        self.bundle.arches().join(", ")
                    )),
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            problems.push("no host was changed".into());
            Err(InputError::Other(problems.join("\n")).into())
        }
    }
}

/// Reads inventory and settings, renders the plan of `systems`. Input problems come back as
/// [`InputError`].
pub fn load(global: &Global, systems: &Systems) -> Result<Loaded> {
    load_with(global, systems, inventory::Secrets::Read)
}

/// [`load`], reading as much of the secrets as `secrets` says (`validate
/// --offline-secrets` none, `show` none but a SOPS inventory's structure).
pub fn load_with(
    global: &Global,
    systems: &Systems,
    secrets: inventory::Secrets,
) -> Result<Loaded> {
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
    let inv = inventory::load_with(&path, &systems.sections(), secrets);
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
    let templates = Templates::new(template_dir.as_deref(), systems.templates())
        .map_err(|e| InputError::Other(format!("{e:#}")))?;
    let bundle = bundle(&settings, &settings_path)?;
    let plan = plan::build(
        &inventory,
        &templates,
        bundle.default_build(),
        &Sections::default(),
        systems,
    )
    .map_err(InputError::from)?;
    let redactor = Redactor::new(inventory.secrets().to_vec());
    Ok(Loaded {
        inventory,
        settings,
        plan,
        redactor,
        pool: Default::default(),
        systems: systems.clone(),
        templates,
        bundle,
    })
}

/// The vds-proxy builds to ship to nodes that run its bundled servers: `relay_binary` from
/// the settings (else this executable) and `relay_binaries` for other architectures, each
/// checked to be an executable for the architecture it is given for.
fn bundle(settings: &Settings, settings_path: &std::path::Path) -> Result<Bundle> {
    let file = settings_path.display();
    // A build named in the settings, with the architecture its ELF header names.
    let read = |key: &str, path: &std::path::Path| {
        Artifact::from_executable(path.to_path_buf())
            .map_err(|e| format!("{file}: {key}: cannot read {}: {e}", path.display()))
    };
    let default = match &settings.relay_binary {
        Some(p) => match read("relay_binary", p).map_err(InputError::Other)? {
            (a, Some(_)) => a,
            (_, None) => {
                return Err(InputError::Other(format!(
                    "{file}: relay_binary: {} is not an executable for one of {}",
                    p.display(),
                    KNOWN_ARCHES.join(", ")
                ))
                .into());
            }
        },
        None => {
            let exe = std::env::current_exe().context("locating the vds-proxy executable")?;
            Artifact::from_file(exe.clone(), std::env::consts::ARCH)
                .with_context(|| format!("reading {}", exe.display()))?
        }
    };
    let mut others = Vec::new();
    let mut problems = Vec::new();
    for (arch, path) in &settings.relay_binaries {
        match read(&format!("relay_binaries.{arch}"), path) {
            Ok((a, Some(found))) if found == arch => others.push(a),
            Ok((_, found)) => problems.push(format!(
                "{file}: relay_binaries.{arch}: {} is not an {arch} executable (its ELF header says {}); `just dist` builds one for each architecture",
                path.display(),
                found.unwrap_or("neither")
            )),
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(InputError::Other(problems.join("\n")).into());
    }
    Ok(Bundle::new(default, others))
}

/// The exit code for an error that ended a verb.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<InputError>().is_some() || err.downcast_ref::<BadInput>().is_some() {
        EXIT_INPUT
    } else {
        EXIT_FAILED
    }
}
