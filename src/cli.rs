//! Command-line flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::resources::Part;

/// Declarative deploys for small proxy infrastructures: a VDS forwarding traffic over a mesh,
/// HAProxy (with TPROXY) in front of replicated services, WireGuard tunnels, k3s workloads,
/// nginx sites with ACME certificates, and firewalls that cannot lock you out.
#[derive(Debug, Parser)]
#[command(name = "vds-proxy", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The whole command line: the verbs below and the systems' own `verbs`.
pub fn command(verbs: &[crate::contract::Verb]) -> clap::Command {
    use clap::CommandFactory;
    verbs
        .iter()
        .fold(Cli::command(), |cmd, v| cmd.subcommand((v.command)()))
}

/// Flags every verb takes.
#[derive(Debug, Clone, Args)]
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

/// A part of a deploy (`--only` tags, as Ansible playbooks tag their roles).
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
    /// Keep the SSH connections open DURATION after their last use (default 10m), so the
    /// next command (e.g. status after deploy) skips the logins; 0 closes them as usual
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "10m",
          require_equals = true, value_parser = crate::settings::parse_duration)]
    pub keep_connections: Option<u64>,
}

/// Flags of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Only the resources of this route/service name
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Print the routes table (as `vds_proxy.sh show` did); same as --table routes
    #[arg(long, visible_alias = "route")]
    pub routes: bool,
    /// Print a table instead of the plan (routes, firewalls, tailscale-policy)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["routes", "tailscale_policy"])]
    pub table: Option<String>,
    /// Print the tailnet's ACL policy file (HuJSON) generated from the inventory; same as
    /// --table tailscale-policy
    #[arg(long, conflicts_with = "routes")]
    pub tailscale_policy: bool,
    /// Contact the hosts and print what would change (same as `deploy --dry-run`)
    #[arg(long)]
    pub diff: bool,
    #[command(flatten)]
    pub connect: Connect,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

impl ShowArgs {
    /// The table asked for, if any.
    pub fn table(&self) -> Option<&str> {
        self.table
            .as_deref()
            .or(self.routes.then_some("routes"))
            .or(self.tailscale_policy.then_some("tailscale-policy"))
    }
}

/// Flags of `deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Print the diff and the actions; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy a host again, up to N more times with a growing pause (2 s, 4 s, …), when a
    /// unit did not come up and the host rolled back [default: from settings, 1]
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Only these parts: setup (kernel settings, TPROXY rules, HAProxy drop-in, WireGuard
    /// tunnels), scale (replicas and haproxy.cfg), config (haproxy.cfg), verify (run the
    /// status checks afterwards); comma-separated or repeated
    #[arg(long, value_enum, value_delimiter = ',', value_name = "TAG")]
    pub only: Vec<Tag>,
    /// Generate new WireGuard keys on the nodes (the old ones are replaced)
    #[arg(long)]
    pub rotate_keys: bool,
    /// With --dry-run: exit 3 when there are changes to apply (0 none, 1 failure, 2 bad
    /// input), as Terraform's -detailed-exitcode
    #[arg(long, requires = "dry_run")]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub connect: Connect,
    /// Result per host as text (a table) or one JSON document
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Probe routes end to end from this node instead of from here
    #[arg(long, value_name = "NODE")]
    pub probe_from: Option<String>,
    #[command(flatten)]
    pub connect: Connect,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Flags of `remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Only what belongs to this route/service name
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Also delete the data the services made (the registry's database, backup dumps);
    /// kept by default
    #[arg(long, conflicts_with = "service")]
    pub purge_data: bool,
    #[command(flatten)]
    pub connect: Connect,
    /// Result per host as text (a table) or one JSON document
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Flags of `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Only the units of this route/service name
    #[arg(long, value_name = "NAME", conflicts_with = "units")]
    pub service: Option<String>,
    /// Only this unit (repeatable); it must be one vds-proxy manages
    #[arg(long = "unit", value_name = "UNIT")]
    pub units: Vec<String>,
    /// Keep printing new lines until Ctrl-C
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// From this time on, as journalctl reads it ("1 hour ago", "2026-12-04 10:00")
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// How many lines of each node to start with
    #[arg(short = 'n', long, value_name = "N", default_value_t = 50)]
    pub lines: u32,
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the inventory and settings; contact no host
    Validate {
        /// Check only the shape of secret references and encrypted values: read no
        /// environment variable, file or command, decrypt nothing (for CI without secrets)
        #[arg(long)]
        offline_secrets: bool,
    },
    /// Print what would be deployed where (offline unless --diff)
    Show(ShowArgs),
    /// Converge the hosts to the inventory, removing what it no longer has
    #[command(visible_alias = "apply")]
    Deploy(DeployArgs),
    /// Health and drift of every node and route; exit 1 when anything is wrong
    Status(StatusArgs),
    /// The journal of the units vds-proxy manages, from every node at once, each line
    /// prefixed with its node (secrets masked)
    Logs(LogsArgs),
    /// Stop, disable and delete everything vds-proxy installed
    Remove(RemoveArgs),
    /// Print a shell completion script (e.g. `vds-proxy completions bash > /etc/bash_completion.d/vds-proxy`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `vds-proxy man | man -l -`)
    Man,
    /// Run the bundled TCP relay (what the relay unit on a node starts)
    Relay {
        /// Relay config file (TOML)
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the bundled node registry and farm discovery API (what the registry unit on a
    /// node starts)
    Serve {
        /// Systems config file (TOML)
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}
