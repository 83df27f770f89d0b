//! The `vds-proxy` command.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use vds_proxy::app::{self, Loaded};
use vds_proxy::cli::{Cli, Command, Connect, Format, Tag, Targets};
use vds_proxy::engine::keys::{self, KeyMode};
use vds_proxy::engine::{self, Mode, status};
use vds_proxy::plan::HostPlan;
use vds_proxy::resources::Part;
use vds_proxy::transport::ConnectOptions;
use vds_proxy::{relay, show};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            for line in format!("{e:#}").lines() {
                eprintln!("error: {line}");
            }
            app::exit_code(&e)
        }
    };
    ExitCode::from(code as u8)
}

fn run(cli: Cli) -> Result<i32> {
    if let Command::Relay { config } = &cli.command {
        relay::run(config)?;
        return Ok(0);
    }
    let mut loaded = app::load(&cli.global)?;
    match cli.command {
        Command::Validate => {
            println!(
                "{}: {} node(s), {} route(s), {} service(s): ok",
                loaded.inventory.source.display(),
                loaded.inventory.nodes.len(),
                loaded.inventory.routes.len(),
                loaded.inventory.services.len()
            );
            Ok(0)
        }
        Command::Show {
            targets,
            service,
            routes,
            diff,
            connect,
            format,
        } => {
            select(&mut loaded, &targets)?;
            if let Some(s) = &service {
                for h in &mut loaded.plan.hosts {
                    h.retain_service(s);
                }
            }
            if diff {
                with_keys(&mut loaded, &connect, KeyMode::Read)?;
                return deploy(
                    &loaded,
                    &connect,
                    Mode::Deploy {
                        dry_run: true,
                        only: None,
                    },
                    &cli.global,
                );
            }
            let out = match (routes, format) {
                (true, _) => show::routes_table(&loaded.inventory),
                (false, Format::Json) => show::plan_json(&loaded.plan, &loaded.redactor),
                (false, Format::Text) => {
                    show::plan_text(&loaded.inventory, &loaded.plan, &loaded.redactor)
                }
            };
            print!("{out}");
            Ok(0)
        }
        Command::Deploy {
            targets,
            dry_run,
            only,
            rotate_keys,
            connect,
        } => {
            select(&mut loaded, &targets)?;
            let mode = match (dry_run, rotate_keys) {
                (true, _) => KeyMode::Read,
                (false, true) => KeyMode::Rotate,
                (false, false) => KeyMode::Create,
            };
            with_keys(&mut loaded, &connect, mode)?;
            let verify = only.contains(&Tag::Verify);
            let parts = parts_of(&only);
            let mut code = 0;
            if only.is_empty() || !parts.is_empty() {
                let only = (!only.is_empty()).then_some(parts.as_slice());
                code = deploy(
                    &loaded,
                    &connect,
                    Mode::Deploy { dry_run, only },
                    &cli.global,
                )?;
            }
            if verify && code == 0 && !dry_run {
                code = status_verb(&loaded, &connect, None, Format::Text)?;
            }
            Ok(code)
        }
        Command::Remove {
            targets,
            service,
            connect,
        } => {
            select(&mut loaded, &targets)?;
            deploy(
                &loaded,
                &connect,
                Mode::Remove {
                    service: service.as_deref(),
                },
                &cli.global,
            )
        }
        Command::Status {
            targets,
            probe_from,
            connect,
            format,
        } => {
            if let Some(p) = &probe_from
                && loaded.inventory.node(p).is_none()
            {
                return Err(app::InputError::Other(format!(
                    "--probe-from {p}: no such node in the inventory"
                ))
                .into());
            }
            select(&mut loaded, &targets)?;
            with_keys(&mut loaded, &connect, KeyMode::Read)?;
            status_verb(&loaded, &connect, probe_from.as_deref(), format)
        }
        Command::Relay { .. } => unreachable!("handled above"),
    }
}

/// Reads the WireGuard public keys (creating or rotating them on the selected nodes as
/// `mode` says) and renders the plan with them. Peers outside `--node` are only read.
fn with_keys(loaded: &mut Loaded, connect: &Connect, mode: KeyMode) -> Result<()> {
    if loaded.inventory.wireguard.is_empty() {
        return Ok(());
    }
    let (opts, _) = options(loaded, connect);
    let selected: Vec<String> = loaded.plan.hosts.iter().map(|h| h.node.clone()).collect();
    let mode_of = |node: &str| {
        if selected.iter().any(|s| s == node) {
            mode
        } else {
            KeyMode::Read
        }
    };
    let keys = runtime()?.block_on(keys::gather(&loaded.inventory, &opts, mode_of))?;
    if mode != KeyMode::Read {
        let missing: Vec<String> = loaded
            .inventory
            .wireguard
            .iter()
            .flat_map(|w| {
                w.members
                    .iter()
                    .filter(|m| !keys.0.contains_key(&(m.node.clone(), w.interface.clone())))
                    .map(|m| format!("{}/{}", m.node, w.interface))
            })
            .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "no WireGuard key yet on {}; deploy those nodes first (or deploy without --node)",
                missing.join(", ")
            );
        }
    }
    loaded.replan(&keys)
}

/// The parts `--only` tags select (`verify` selects none: it runs the status checks).
fn parts_of(tags: &[Tag]) -> Vec<Part> {
    let mut parts: Vec<Part> = tags.iter().flat_map(|t| t.parts()).copied().collect();
    parts.sort();
    parts.dedup();
    parts
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Connection options; every step of one verb shares the same connection pool.
fn options(loaded: &Loaded, connect: &Connect) -> (ConnectOptions, usize) {
    let mut opts = ConnectOptions::new(&loaded.settings, connect.accept_new_host_keys);
    opts.pool = loaded.pool.clone();
    (opts, connect.parallel.unwrap_or(loaded.settings.parallel))
}

fn deploy(
    loaded: &Loaded,
    connect: &Connect,
    mode: Mode,
    global: &vds_proxy::cli::Global,
) -> Result<i32> {
    let (opts, parallel) = options(loaded, connect);
    let results = runtime()?.block_on(engine::for_each_host(
        &loaded.plan.hosts,
        parallel,
        global.verbose,
        |host: &HostPlan, progress| {
            engine::converge_host(
                &loaded.inventory,
                host,
                &opts,
                mode,
                &loaded.redactor,
                progress,
            )
        },
    ));
    Ok(engine::summarize(&results, &loaded.redactor))
}

fn status_verb(
    loaded: &Loaded,
    connect: &Connect,
    probe_from: Option<&str>,
    format: Format,
) -> Result<i32> {
    let (opts, _) = options(loaded, connect);
    let rt = runtime()?;
    let mut checks = Vec::new();
    rt.block_on(async {
        let per_host = loaded
            .plan
            .hosts
            .iter()
            .map(|h| status::host_checks(&loaded.inventory, h, &opts));
        for c in engine::futures_join(per_host).await {
            checks.extend(c);
        }
        checks
            .extend(status::route_checks(&loaded.inventory, &loaded.plan, &opts, probe_from).await);
    });
    let healthy = checks.iter().all(|c| c.ok);
    let text = match format {
        Format::Json => {
            serde_json::to_string_pretty(
                &serde_json::json!({ "healthy": healthy, "checks": checks }),
            )? + "\n"
        }
        Format::Text => {
            let mut rows = vec![[
                "NODE".to_string(),
                "CHECK".into(),
                "STATE".into(),
                "DETAIL".into(),
            ]];
            for c in &checks {
                rows.push([
                    c.node.clone(),
                    c.check.clone(),
                    if c.ok { "ok" } else { "FAIL" }.to_string(),
                    c.detail.clone(),
                ]);
            }
            show::table(&rows) + if healthy { "healthy\n" } else { "UNHEALTHY\n" }
        }
    };
    print!("{}", loaded.redactor.apply(&text));
    Ok(if healthy { 0 } else { 1 })
}
