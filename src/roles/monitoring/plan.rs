//! The files of monitoring: on every monitored node node_exporter's arguments and the facts
//! tool with its timer; on the monitoring node Prometheus (config, rules, arguments),
//! Alertmanager and the blackbox exporter. Every target is derived from the inventory.

use std::net::{IpAddr, SocketAddr};

use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::kinds::{ALERTMANAGER, BLACKBOX, PROMETHEUS, RULES};
use super::{
    ALERTMANAGER_PORT, BLACKBOX_PORT, Monitoring, NODE_EXPORTER_PORT, PROMETHEUS_PORT, monitored,
    rules,
};
use crate::contract::{Ctx, Output};
use crate::inventory::Inventory;
use crate::resources::{Action, Kind, Resource, unit};
use crate::roles::web::Tls;
use crate::roles::{backups, balancer, registry, routes, web, wireguard};
use crate::shell::quote;
use crate::templates::TemplateError;

/// The templates this system renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "monitoring-default-args.j2",
        include_str!("templates/default-args.j2"),
    ),
    (
        "prometheus.yml.j2",
        include_str!("templates/prometheus.yml.j2"),
    ),
    (
        "prometheus-rules.yml.j2",
        include_str!("templates/rules.yml.j2"),
    ),
    (
        "alertmanager.yml.j2",
        include_str!("templates/alertmanager.yml.j2"),
    ),
    ("blackbox.yml.j2", include_str!("templates/blackbox.yml.j2")),
    (
        "monitoring-facts.service.j2",
        include_str!("templates/facts.service.j2"),
    ),
    (
        "monitoring-facts.timer.j2",
        include_str!("templates/facts.timer.j2"),
    ),
];

/// Debian's units and the files vds-proxy writes for them.
pub const NODE_EXPORTER: &str = "prometheus-node-exporter.service";
pub const PROMETHEUS_UNIT: &str = "prometheus.service";
pub const ALERTMANAGER_UNIT: &str = "prometheus-alertmanager.service";
pub const BLACKBOX_UNIT: &str = "prometheus-blackbox-exporter.service";
pub const PROMETHEUS_CONFIG: &str = "/etc/prometheus/prometheus.yml";
pub const RULES_FILE: &str = "/etc/prometheus/vds-proxy.rules.yml";
pub const ALERTMANAGER_CONFIG: &str = "/etc/prometheus/alertmanager.yml";
pub const BLACKBOX_CONFIG: &str = "/etc/prometheus/blackbox.yml";
/// node_exporter's textfile directory (Debian's), where the facts tool writes.
pub const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
/// Where Prometheus and Alertmanager keep their data (Debian's directories).
pub const DATA: [&str; 2] = [
    "/var/lib/prometheus/metrics2",
    "/var/lib/prometheus/alertmanager",
];
/// The facts tool, its unit and timer.
pub const FACTS_TOOL: &str = "/usr/local/lib/vds-proxy/monitoring-facts";
pub const FACTS_SERVICE: &str = "vds-monitoring-facts.service";
pub const FACTS_TIMER: &str = "vds-monitoring-facts.timer";
/// Seconds between two runs of the facts tool.
const FACTS_EVERY: u32 = 30;

/// `/etc/default/UNIT`, Debian's place for a unit's arguments.
fn default_file(unit: &str) -> String {
    format!("/etc/default/{}", unit.trim_end_matches(".service"))
}

/// Adds what `ctx.node` runs for monitoring.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let Some(m) = super::of(ctx.inv) else {
        return Ok(());
    };
    let me = &ctx.node.name;
    if let Some((_, addr)) = monitored(ctx.inv).into_iter().find(|(n, _)| n == me) {
        exporter(ctx, addr, out)?;
    }
    if &m.node == me {
        server(ctx, m, out)?;
    }
    Ok(())
}

fn args_file(ctx: &Ctx, unit: &str, args: Vec<String>) -> Result<Resource, TemplateError> {
    let text = ctx.templates.render(
        "monitoring-default-args.j2",
        context! { unit => unit, args => args },
    )?;
    Ok(Resource::text(Kind::FILE, default_file(unit), text, 0o644)
        .on_change(Action::Restart(unit.into())))
}

/// node_exporter on the node's mesh address, and the facts tool.
fn exporter(ctx: &Ctx, addr: IpAddr, out: &mut Output) -> Result<(), TemplateError> {
    let listen = SocketAddr::new(addr, NODE_EXPORTER_PORT);
    out.resources.push(args_file(
        ctx,
        NODE_EXPORTER,
        vec![
            format!("--web.listen-address={listen}"),
            format!("--collector.textfile.directory={TEXTFILE_DIR}"),
        ],
    )?);
    out.units
        .push(unit::running(NODE_EXPORTER, vec![NODE_EXPORTER_PORT]));
    out.resources.push(Resource::text(
        Kind::FILE,
        FACTS_TOOL,
        facts_tool(ctx.inv, &ctx.node.name),
        0o755,
    ));
    let service = ctx.templates.render(
        "monitoring-facts.service.j2",
        context! { tool => FACTS_TOOL },
    )?;
    let timer = ctx.templates.render(
        "monitoring-facts.timer.j2",
        context! { every => FACTS_EVERY },
    )?;
    out.resources
        .push(unit::unit_file(FACTS_SERVICE, service, &[]));
    out.resources.push(unit::unit_file(
        FACTS_TIMER,
        timer,
        &[FACTS_TIMER.to_string()],
    ));
    out.units.push(unit::running(FACTS_TIMER, Vec::new()));
    Ok(())
}

/// The facts tool of `node`: its settings (shell-quoted) above `facts.sh`.
pub fn facts_tool(inv: &Inventory, node: &str) -> String {
    let mut tunnels = String::new();
    for w in wireguard::of(inv)
        .iter()
        .filter(|w| w.member(node).is_some())
    {
        for p in w.peers_of(node) {
            tunnels += &format!("{} {} {}\n", w.interface, p.node, p.address);
        }
    }
    let balancers: String = balancer::balanced_on(inv, node)
        .map(|(_, b)| b.stats_address.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|a| a + "\n")
        .collect();
    let backups: String = backups::of(inv)
        .iter()
        .filter(|b| b.node == node)
        .map(|b| {
            let timer = backups::service_name(b).replace(".service", ".timer");
            format!(
                "{} {} {} {}/{timer}\n",
                b.database,
                b.directory,
                backups::service_name(b),
                unit::UNIT_DIR
            )
        })
        .collect();
    let firewall = if crate::roles::firewall::on(inv, node).is_some() {
        crate::roles::firewall::nftables::TOOL
    } else {
        ""
    };
    let relay = if routes::of(inv)
        .iter()
        .any(|r| r.proxy_node == node && r.forwarder == routes::Forwarder::Relay)
    {
        format!("127.0.0.1:{}", routes::RELAY_METRICS_PORT)
    } else {
        String::new()
    };
    format!(
        "#!/bin/sh\n# Installed by vds-proxy.\nOUT={}\nTUNNELS={}\nBALANCERS={}\nBACKUPS={}\nFIREWALL={}\nRELAY={}\nMANIFEST={}\n{}",
        quote(&format!("{TEXTFILE_DIR}/vds_proxy.prom")),
        quote(&tunnels),
        quote(&balancers),
        quote(&backups),
        quote(firewall),
        quote(&relay),
        quote(crate::contract::MANIFEST),
        include_str!("facts.sh")
    )
}

/// One blackbox probe target.
#[derive(Serialize)]
struct Target {
    target: String,
    module: String,
    labels: Vec<(&'static str, String)>,
}

/// A blackbox job: a name and its targets.
#[derive(Serialize)]
struct Job {
    name: &'static str,
    targets: Vec<Target>,
}

/// A site's own probe module: its name on the Host header and in TLS.
#[derive(Serialize)]
struct SiteModule {
    module: String,
    host: String,
    tls: bool,
}

/// Where the monitoring node reaches something that listens on `listen` on `node`: the
/// node's mesh address for a wildcard, else the address itself (none: loopback only).
fn reach(inv: &Inventory, node: &str, listen: IpAddr) -> Option<IpAddr> {
    if listen.is_loopback() {
        None
    } else if listen.is_unspecified() {
        inv.node(node)?.mesh_address()
    } else {
        Some(listen)
    }
}

/// Each registry the monitoring node can reach, with the address it reaches it at (its
/// `/healthz` is probed, its `/metrics` scraped).
fn registries(inv: &Inventory) -> Vec<(&registry::Registry, SocketAddr)> {
    registry::of(inv)
        .iter()
        .filter_map(|r| Some((r, SocketAddr::new(reach(inv, &r.node, r.listen)?, r.port))))
        .collect()
}

fn probes(inv: &Inventory) -> (Vec<Job>, Vec<SiteModule>) {
    let route_targets = routes::of(inv)
        .iter()
        .filter_map(|r| {
            let addr = reach(inv, &r.proxy_node, r.listen)?;
            Some(Target {
                target: SocketAddr::new(addr, r.port).to_string(),
                module: "tcp_connect".into(),
                labels: vec![("route", r.service.clone()), ("node", r.proxy_node.clone())],
            })
        })
        .collect();
    let mut modules = Vec::new();
    let mut site_targets = Vec::new();
    for (i, s) in web::of(inv).iter().enumerate() {
        let Some(addr) = inv.node(&s.node).and_then(|n| n.mesh_address()) else {
            continue;
        };
        let tls = s.tls != Tls::Off;
        let module = format!("site_{i}");
        let (scheme, port) = if tls {
            ("https", s.https_port)
        } else {
            ("http", s.http_port)
        };
        modules.push(SiteModule {
            module: module.clone(),
            host: s.domains[0].clone(),
            tls,
        });
        site_targets.push(Target {
            target: format!("{scheme}://{}/", SocketAddr::new(addr, port)),
            module,
            labels: vec![("site", s.name.clone()), ("node", s.node.clone())],
        });
    }
    let registry_targets = registries(inv)
        .into_iter()
        .map(|(r, addr)| Target {
            target: format!("http://{addr}/healthz"),
            module: "http_2xx".into(),
            labels: vec![("registry", r.node.clone()), ("node", r.node.clone())],
        })
        .collect();
    let jobs = [
        ("routes", route_targets),
        ("sites", site_targets),
        ("registries", registry_targets),
    ]
    .into_iter()
    .filter(|(_, t): &(_, Vec<Target>)| !t.is_empty())
    .map(|(name, targets)| Job { name, targets })
    .collect();
    (jobs, modules)
}

/// Prometheus, its rules, Alertmanager and the blackbox exporter.
fn server(ctx: &Ctx, m: &Monitoring, out: &mut Output) -> Result<(), TemplateError> {
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port)).to_string();
    let nodes: Vec<_> = monitored(ctx.inv)
        .into_iter()
        .map(|(node, addr)| {
            context! {
                node => node,
                address => SocketAddr::new(addr, NODE_EXPORTER_PORT).to_string(),
            }
        })
        .collect();
    let (jobs, modules) = probes(ctx.inv);
    let registries: Vec<_> = registries(ctx.inv)
        .into_iter()
        .map(|(r, addr)| context! { node => r.node.clone(), address => addr.to_string() })
        .collect();
    let prometheus = ctx.templates.render(
        "prometheus.yml.j2",
        context! {
            interval => m.scrape_interval,
            rules_file => RULES_FILE,
            alertmanager => local(ALERTMANAGER_PORT),
            blackbox => local(BLACKBOX_PORT),
            nodes => nodes,
            registries => registries,
            probes => Value::from(Serde(jobs)),
        },
    )?;
    let rules = ctx.templates.render(
        "prometheus-rules.yml.j2",
        context! { rules => Value::from(Serde(rules::rules(ctx.inv, m))) },
    )?;
    let alertmanager = ctx.templates.render(
        "alertmanager.yml.j2",
        context! {
            webhooks => m.webhooks.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            telegram => m.telegram.as_ref().map(|t| context! { bot_token => t.bot_token.clone(), chat_id => t.chat_id }),
            email => m.email.as_ref().map(|e| context! {
                to => e.to.to_string(),
                from => e.from.to_string(),
                smarthost => e.smarthost.clone(),
                username => e.username.clone(),
                password => e.password.clone(),
            }),
        },
    )?;
    let blackbox = ctx.templates.render(
        "blackbox.yml.j2",
        context! { sites => Value::from(Serde(modules)) },
    )?;
    let reload = |u: &str| Action::Reload(u.to_string());
    out.resources.push(args_file(
        ctx,
        PROMETHEUS_UNIT,
        vec![
            format!("--web.listen-address={}", local(PROMETHEUS_PORT)),
            format!("--storage.tsdb.retention.time={}d", m.retention_days),
        ],
    )?);
    out.resources.push(
        Resource::text(PROMETHEUS, PROMETHEUS_CONFIG, prometheus, 0o644)
            .on_change(reload(PROMETHEUS_UNIT)),
    );
    out.resources
        .push(Resource::text(RULES, RULES_FILE, rules, 0o644).on_change(reload(PROMETHEUS_UNIT)));
    out.resources.push(args_file(
        ctx,
        ALERTMANAGER_UNIT,
        vec![
            format!("--web.listen-address={}", local(ALERTMANAGER_PORT)),
            "--cluster.listen-address=".to_string(),
        ],
    )?);
    // It may hold a bot token, a password or a webhook's token: readable by
    // Alertmanager's user only, never shown or diffed.
    let mut am = Resource::text(ALERTMANAGER, ALERTMANAGER_CONFIG, alertmanager, 0o640)
        .secret()
        .on_change(reload(ALERTMANAGER_UNIT));
    am.group = "prometheus".into();
    out.resources.push(am);
    out.resources.push(args_file(
        ctx,
        BLACKBOX_UNIT,
        vec![
            format!("--config.file={BLACKBOX_CONFIG}"),
            format!("--web.listen-address={}", local(BLACKBOX_PORT)),
        ],
    )?);
    out.resources.push(
        Resource::text(BLACKBOX, BLACKBOX_CONFIG, blackbox, 0o644).on_change(reload(BLACKBOX_UNIT)),
    );
    for (u, port) in [
        (BLACKBOX_UNIT, BLACKBOX_PORT),
        (ALERTMANAGER_UNIT, ALERTMANAGER_PORT),
        (PROMETHEUS_UNIT, PROMETHEUS_PORT),
    ] {
        out.units.push(unit::running(u, vec![port]));
    }
    Ok(())
}
