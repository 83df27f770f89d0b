//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::resources::Part;

/// Declarative deploys for small proxy infrastructures: a VDS forwarding traffic over a mesh,
/// HAProxy in front of replicated services, WireGuard tunnels, k3s workloads.
#[derive(Debug, Parser)]
#[command(name = "vds-proxy", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every verb takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Inventory file [default: $NODES_CONFIG, else inventory/nodes.json]
    #[arg(long, short = 'i', global = true, value_name = "PATH")]
    pub inventory: Option<PathBuf>,
    /// Directory whose files override the embedded templates
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Tool settings file [default: vds-proxy.toml beside the inventory]
    #[arg(long, global = true, value_name = "PATH")]
    pub settings: Option<PathBuf>,
    /// Say more about what is done (which files were read, each remote step)
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

/// Output format of `show` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Which hosts a verb acts on.
#[derive(Debug, Clone, Args)]
pub struct Targets {
    /// Only this node (repeatable)
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
}

/// A part of a deploy, named after seed 003's Ansible tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tag {
    Setup,
    Scale,
    Config,
    Verify,
}

impl Tag {
    /// The parts of a deploy this tag selects (`verify` selects none: it runs the checks).
    pub fn parts(self) -> &'static [Part] {
        match self {
            Tag::Setup => &[Part::Setup],
            Tag::Scale => &[Part::Backends, Part::Balancer],
            Tag::Config => &[Part::Balancer],
            Tag::Verify => &[],
        }
    }
}

/// How hosts are reached.
#[derive(Debug, Clone, Args)]
pub struct Connect {
    /// Accept the host key of a host seen for the first time (OpenSSH accept-new);
    /// a changed key is always refused
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How many hosts at once [default: from settings, 8]
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the inventory and settings; contact no host
    Validate,
    /// Print what would be deployed where (offline unless --diff)
    Show {
        #[command(flatten)]
        targets: Targets,
        /// Only the resources of this route/service name
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Print the routes table (as `vds_proxy.sh show` did)
        #[arg(long, visible_alias = "route")]
        routes: bool,
        /// Contact the hosts and print what would change (same as `deploy --dry-run`)
        #[arg(long)]
        diff: bool,
        #[command(flatten)]
        connect: Connect,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Converge the hosts to the inventory, removing what it no longer has
    #[command(visible_alias = "apply")]
    Deploy {
        #[command(flatten)]
        targets: Targets,
        /// Print the diff and the actions; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Only these parts, as seed 003's Ansible tags: setup (kernel settings, TPROXY
        /// rules, haproxy drop-in), scale (replicas and haproxy.cfg), config (haproxy.cfg),
        /// verify (run the status checks afterwards); comma-separated or repeated
        #[arg(long, value_enum, value_delimiter = ',', value_name = "TAG")]
        only: Vec<Tag>,
        /// Generate new WireGuard keys on the nodes (the old ones are replaced)
        #[arg(long)]
        rotate_keys: bool,
        #[command(flatten)]
        connect: Connect,
    },
    /// Health and drift of every node and route; exit 1 when anything is wrong
    Status {
        #[command(flatten)]
        targets: Targets,
        /// Probe routes end to end from this node instead of from here
        #[arg(long, value_name = "NODE")]
        probe_from: Option<String>,
        #[command(flatten)]
        connect: Connect,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Stop, disable and delete everything vds-proxy installed
    Remove {
        #[command(flatten)]
        targets: Targets,
        /// Only what belongs to this route/service name
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Run the bundled TCP relay (what the relay unit on a node starts)
    Relay {
        /// Relay config file (TOML)
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}
