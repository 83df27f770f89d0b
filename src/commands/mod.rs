//! The verbs, one module each. They load the inventory and plan ([`crate::app`]), select
//! hosts, and hand the work to the engine.

mod deploy;
mod help;
mod logs;
mod remove;
mod show;
mod status;
mod validate;

use anyhow::Result;

use crate::app::{self, Loaded};
use crate::cli::{Cli, Command, Connect, Targets};
use crate::contract::{PrepareMode, Systems, VerbCtx};
use crate::engine::{self, Mode};
use crate::inventory::Secrets;
use crate::plan::HostPlan;
use crate::transport::ConnectOptions;

/// Runs a parsed command line of `systems`: a system's verb, or one of [`Command`];
/// returns the exit code.
pub fn run_matches(matches: clap::ArgMatches, systems: &Systems) -> Result<i32> {
    use clap::FromArgMatches;
    if let Some((name, args)) = matches.subcommand()
        && let Some(verb) = systems
            .verbs
            .iter()
            .find(|v| (v.command)().get_name() == name)
    {
        let global = crate::cli::Global::from_arg_matches(&matches)?;
        let loaded = app::load(&global, systems)?;
        let remote = Remote::new(
            &loaded,
            &Connect {
                accept_new_host_keys: false,
                parallel: None,
                keep_connections: None,
            },
        )?;
        let run_on = |node: &str, script: &str| -> Result<crate::transport::Output> {
            let n = loaded.inventory.node(node).ok_or_else(|| {
                app::InputError::Other(format!("no node {node} in the inventory"))
            })?;
            remote.run(n, script)
        };
        let readers = systems.sections();
        let read =
            |text: &str| crate::inventory::from_str(&loaded.inventory.source, text, &readers);
        let ctx = VerbCtx {
            inv: &loaded.inventory,
            settings: &loaded.settings,
            read: &read,
            run_on: &run_on,
        };
        return (verb.run)(&ctx, args);
    }
    run(Cli::from_arg_matches(&matches)?, systems)
}

/// Runs one script on one node at a time, outside the engine's parallel steps (a
/// system's verb, `remove --purge-data`).
struct Remote {
    rt: &'static tokio::runtime::Runtime,
    opts: ConnectOptions,
}

impl Remote {
    fn new(loaded: &Loaded, connect: &Connect) -> Result<Remote> {
        Ok(Remote {
            rt: runtime()?,
            opts: options(loaded, connect).0,
        })
    }

    fn run(&self, node: &crate::inventory::Node, script: &str) -> Result<crate::transport::Output> {
        self.rt.block_on(async {
            let t = crate::transport::connect(node, &self.opts).await?;
            Ok(t.run(script).await?)
        })
    }
}

/// Runs the command line with `systems`; returns the exit code.
pub fn run(cli: Cli, systems: &Systems) -> Result<i32> {
    if let Command::Relay { config } = &cli.command {
        // A config that does not load is bad input (exit 2), like every other.
        crate::relay::config::load(config).map_err(|e| app::InputError::Other(format!("{e:#}")))?;
        crate::relay::run(config)?;
        return Ok(0);
    }
    if let Command::Serve { config } = &cli.command {
        crate::serve::config::load(config).map_err(|e| app::InputError::Other(format!("{e:#}")))?;
        crate::serve::run(config)?;
        return Ok(0);
    }
    match &cli.command {
        Command::Completions { shell } => return help::completions(*shell, &systems.verbs),
        Command::Man => return help::man(&systems.verbs),
        _ => {}
    }
    // Secrets are read only where a value is needed: `show` without `--diff` prints none
    // (secret files are masked), so it reads no variable, file or command and decrypts
    // nothing.
    let mut secrets = match &cli.command {
        Command::Validate {
            offline_secrets: true,
        } => Secrets::Shape,
        Command::Show(args) if !args.diff => Secrets::Structure,
        _ => Secrets::Read,
    };
    // A command for some nodes reads only the secrets their files hold (see
    // `secrets_of`): the inventory is planned once without any first.
    let nodes = match &cli.command {
        Command::Deploy(a) => &a.targets.nodes,
        Command::Status(a) => &a.targets.nodes,
        Command::Show(a) => &a.targets.nodes,
        _ => &Vec::new(),
    };
    if secrets == Secrets::Read && !nodes.is_empty() {
        let quiet = crate::cli::Global {
            verbose: false,
            ..cli.global.clone()
        };
        let unread = app::load_with(&quiet, systems, Secrets::Structure)?;
        if let Some(paths) = secrets_of(&unread, nodes) {
            secrets = Secrets::Only(paths);
        }
    }
    let mut loaded = app::load_with(&cli.global, systems, secrets)?;
    let verbose = cli.global.verbose;
    match cli.command {
        Command::Validate { .. } => validate::run(&loaded),
        Command::Show(args) => show::run(&mut loaded, args, verbose),
        Command::Deploy(args) => deploy::run(&mut loaded, args, verbose),
        Command::Remove(args) => remove::run(&mut loaded, args, verbose),
        Command::Status(args) => status::run(&mut loaded, args),
        Command::Logs(args) => logs::run(&mut loaded, args),
        Command::Relay { .. }
        | Command::Serve { .. }
        | Command::Completions { .. }
        | Command::Man => {
            unreachable!("handled above")
        }
    }
}

/// The secret fields the files of `nodes` hold, read from a plan made without any secret
/// (each stands in as a placeholder naming its JSON path); `None` when that cannot be told
/// and every secret must be read: a file marked secret without a placeholder in it is made
/// from a secret (a token's digest), and which one does not show.
fn secrets_of(unread: &Loaded, nodes: &[String]) -> Option<std::collections::BTreeSet<String>> {
    use crate::inventory::secret::OFFLINE;
    let known: std::collections::BTreeSet<&str> = unread
        .inventory
        .secret_fields()
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    let mut needed = std::collections::BTreeSet::new();
    for h in unread.plan.hosts.iter().filter(|h| nodes.contains(&h.node)) {
        for r in &h.resources {
            let Some(text) = r.text_content() else {
                continue;
            };
            let mut found = false;
            for (i, _) in text.match_indices(OFFLINE) {
                let rest = &text[i + OFFLINE.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "$._[]-".contains(c)))
                    .unwrap_or(rest.len());
                // The longest known field the placeholder starts with.
                let path = (1..=end)
                    .rev()
                    .map(|n| &rest[..n])
                    .find(|p| known.contains(p))?;
                needed.insert(path.to_string());
                found = true;
            }
            if r.secret && !found {
                return None;
            }
        }
    }
    Some(needed)
}

/// Keeps only the `--node` hosts; an unknown name is an input error.
fn select(loaded: &mut Loaded, targets: &Targets) -> Result<()> {
    if targets.nodes.is_empty() {
        return Ok(());
    }
    for n in &targets.nodes {
        if !loaded.plan.hosts.iter().any(|h| &h.node == n) {
            return Err(app::InputError::Other(format!(
                "--node {n}: no such active node in the inventory"
            ))
            .into());
        }
    }
    loaded
        .plan
        .hosts
        .retain(|h| targets.nodes.contains(&h.node));
    Ok(())
}

/// The one runtime of the process: every step of a verb runs on it, so a connection opened
/// in one step (its ssh process's pipes) can be used by the next.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Connection options; every step of one verb shares the same connection pool.
fn options(loaded: &Loaded, connect: &Connect) -> (ConnectOptions, usize) {
    let mut opts = ConnectOptions::new(&loaded.settings, connect.accept_new_host_keys);
    if let Some(secs) = connect.keep_connections {
        opts.keep_for = (secs > 0).then_some(secs);
    }
    opts.pool = loaded.pool.clone();
    (opts, connect.parallel.unwrap_or(loaded.settings.parallel))
}

/// Runs the prepare step (the selected hosts in `mode`, the others only read) and plans
/// again with what it read.
fn prepare(loaded: &mut Loaded, connect: &Connect, mode: PrepareMode) -> Result<()> {
    let (opts, _) = options(loaded, connect);
    let selected: Vec<String> = loaded.plan.hosts.iter().map(|h| h.node.clone()).collect();
    let mode_of = |node: &str| {
        if selected.iter().any(|s| s == node) {
            mode
        } else {
            PrepareMode::Read
        }
    };
    let needs_arch = |node: &str| loaded.needs_arch(node);
    let read = runtime()?.block_on(engine::prepare::run(
        &loaded.inventory,
        &opts,
        mode_of,
        needs_arch,
        &loaded.systems,
    ))?;
    loaded.replan(&read.sections)?;
    loaded.select_builds(&read.arch)
}

/// Converges (or cleans) every selected host in `mode`; prints the summary as `how` says,
/// returns the exit code.
fn converge(
    loaded: &Loaded,
    connect: &Connect,
    mode: Mode,
    verbose: bool,
    how: engine::Summary,
) -> Result<i32> {
    let (opts, parallel) = options(loaded, connect);
    let ctrl_c = Interrupt::default();
    let work = engine::for_each_host(
        &loaded.plan.hosts,
        parallel,
        verbose,
        |host: &HostPlan, progress| {
            let ctrl_c = &ctrl_c;
            let (opts, redactor, inv) = (&opts, &loaded.redactor, &loaded.inventory);
            async move {
                if ctrl_c.stopping() {
                    return engine::HostResult::failed(
                        &host.node,
                        "not started: the deploy was interrupted (Ctrl-C)".to_string(),
                    );
                }
                ctrl_c.running(&host.node, true);
                let r = engine::converge_host(inv, host, opts, mode, redactor, progress).await;
                ctrl_c.running(&host.node, false);
                r
            }
        },
    );
    let results = runtime()?.block_on(ctrl_c.guard(work))?;
    Ok(engine::summarize(&results, &loaded.redactor, how))
}

/// Ctrl-C during a deploy or remove: the first stops starting hosts and waits for the ones
/// under way (their applies are never cut); the second leaves those to finish on their own
/// — each host completes or rolls back its apply by itself — says which, and exits 130.
#[derive(Default)]
struct Interrupt {
    stopping: std::sync::atomic::AtomicBool,
    running: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Interrupt {
    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn running(&self, node: &str, yes: bool) {
        let mut set = self.running.lock().expect("running hosts");
        if yes {
            set.insert(node.to_string());
        } else {
            set.remove(node);
        }
    }

    /// Runs `work` to its end unless Ctrl-C is pressed twice.
    async fn guard<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T> {
        let mut work = std::pin::pin!(work);
        // One stream for every press: a press between two listeners is not lost.
        let mut ctrl_c = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut presses = 0;
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = ctrl_c.recv() => {
                    presses += 1;
                    let running: Vec<String> =
                        self.running.lock().expect("running hosts").iter().cloned().collect();
                    let running = if running.is_empty() { "none".to_string() } else { running.join(", ") };
                    if presses == 1 {
                        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                        eprintln!(
                            "interrupted: no more hosts are started; waiting for {running} (Ctrl-C again leaves them to finish on their own)"
                        );
                    } else {
                        eprintln!(
                            "interrupted again: left to finish on their own: {running}. Each host completes or rolls back its apply by itself; \
                             `vds-proxy status` shows how they ended"
                        );
                        std::process::exit(130);
                    }
                }
            }
        }
    }
}
