//! The forwarders of the routes whose proxy node is being planned.

use std::net::IpAddr;

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::{Forwarder, Route};
use crate::contract::{Ctx, Output};
use crate::resources::{Action, Kind, Resource, binary, unit};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "relay.service.j2",
        include_str!("templates/relay.service.j2"),
    ),
    ("relay.toml.j2", include_str!("templates/relay.toml.j2")),
    (
        "socat-proxy.service.j2",
        include_str!("templates/socat-proxy.service.j2"),
    ),
];

/// Name of the relay's unit.
pub const RELAY_UNIT: &str = "vds-relay.service";
/// Path of the relay's config file.
pub const RELAY_CONFIG: &str = "/etc/vds-proxy/relay.toml";
/// Where the relay serves its counters (Prometheus' text format): the node's loopback.
pub const RELAY_METRICS_PORT: u16 = 9901;

/// Adds the forwarders of every route whose proxy node is `ctx.node`.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let routes: Vec<&Route> = super::of(ctx.inv)
        .iter()
        .filter(|r| r.proxy_node == ctx.node.name)
        .collect();
    let relayed: Vec<&Route> = routes
        .iter()
        .copied()
        .filter(|r| r.forwarder == Forwarder::Relay)
        .collect();
    if !relayed.is_empty() {
        relay(ctx, &relayed, out)?;
    }
    for r in routes.iter().filter(|r| r.forwarder == Forwarder::Socat) {
        socat(ctx, r, out)?;
    }
    Ok(())
}

/// Address of a route's target, for socket addresses (`[v6]` bracketed).
fn target_host(ctx: &Ctx, r: &Route) -> String {
    match ctx.inv.node(&r.target_node).and_then(|n| n.mesh_address()) {
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
        None => String::new(),
    }
}

fn socket(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        IpAddr::V4(ip) => format!("{ip}:{port}"),
    }
}

/// The unit name `vds_proxy.sh` used: `socat-proxy-{service}-{port}.service`.
pub fn socat_unit_name(r: &Route) -> String {
    format!("socat-proxy-{}-{}.service", r.service, r.port)
}

fn socat(ctx: &Ctx, r: &Route, out: &mut Output) -> Result<(), TemplateError> {
    let name = socat_unit_name(r);
    let host = target_host(ctx, r);
    let text = ctx.templates.render(
        "socat-proxy.service.j2",
        context! {
            route => Value::from(Serde(r)),
            node => Value::from(Serde(ctx.node)),
            target_address => host.trim_matches(['[', ']']),
            target_host => host,
        },
    )?;
    out.resources
        .push(unit::unit_file(&name, text, std::slice::from_ref(&name)).for_service(&r.service));
    out.units.push(unit::running(&name, vec![r.port]));
    Ok(())
}

fn relay(ctx: &Ctx, routes: &[&Route], out: &mut Output) -> Result<(), TemplateError> {
    out.bundle_users.push(Action::Restart(RELAY_UNIT.into()));
    let entries: Vec<_> = routes
        .iter()
        .map(|r| {
            context! {
                service => r.service.clone(),
                port => r.port,
                listen_socket => socket(r.listen, r.port),
                log => r.log.as_str(),
                upstream => format!("{}:{}", target_host(ctx, r), r.target_port),
            }
        })
        .collect();
    let config = ctx.templates.render(
        "relay.toml.j2",
        context! {
            node => Value::from(Serde(ctx.node)),
            routes => entries.clone(),
            metrics => format!("127.0.0.1:{RELAY_METRICS_PORT}"),
        },
    )?;
    let unit_text = ctx.templates.render(
        "relay.service.j2",
        context! {
            node => Value::from(Serde(ctx.node)),
            routes => entries,
            binary => binary::BUNDLE_PATH,
            config => RELAY_CONFIG,
            low_port => routes.iter().any(|r| r.port < 1024),
        },
    )?;
    out.resources.push(
        Resource::text(Kind::FILE, RELAY_CONFIG, config, 0o644)
            .on_change(Action::Reload(RELAY_UNIT.into())),
    );
    out.resources.push(unit::unit_file(
        RELAY_UNIT,
        unit_text,
        &[RELAY_UNIT.to_string()],
    ));
    out.units.push(unit::running(
        RELAY_UNIT,
        routes.iter().map(|r| r.port).collect(),
    ));
    Ok(())
}
