//! haproxy.cfg, the haproxy drop-in and unit of a node with balanced services.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::haproxy;
use super::{Balancer, backend_address, balanced_on};
use crate::contract::{Ctx, Output};
use crate::resources::{Part, dropin, unit};
use crate::roles::replicas::Service;
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("haproxy.cfg.j2", include_str!("templates/haproxy.cfg.j2")),
    (
        "haproxy-dropin.conf.j2",
        include_str!("templates/haproxy-dropin.conf.j2"),
    ),
];

/// Adds haproxy.cfg and the haproxy unit when services on `ctx.node` have a balancer.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let balanced: Vec<(&Service, &Balancer)> = balanced_on(ctx.inv, &ctx.node.name).collect();
    let Some(&(_, first)) = balanced.first() else {
        return Ok(());
    };
    let balancers: Vec<Value> = balanced
        .iter()
        .map(|(s, b)| {
            let servers: Vec<Value> = (1..=s.replicas)
                .map(|n| context! { name => format!("{}-{n}", s.name), port => s.replica_port(n) })
                .collect();
            context! {
                name => s.name.clone(),
                server_address => backend_address(ctx.inv, s).map(|a| a.to_string()),
                bind => "0.0.0.0",
                port => b.port,
                algorithm => b.algorithm.clone(),
                check => b.check.clone(),
                transparent => b.transparent,
                servers => servers,
            }
        })
        .collect();
    // HAProxy needs about two descriptors per connection and refuses to load a config whose
    // maxconn the descriptor limit cannot hold.
    let maxconn: u32 = 8_000;
    let text = ctx.templates.render(
        "haproxy.cfg.j2",
        context! {
            node => Value::from(Serde(ctx.node)),
            balancers => balancers,
            stats_socket => first.stats_socket.clone(),
            stats_address => first.stats_address.clone(),
            maxconn => maxconn,
        },
    )?;
    out.resources
        .push(haproxy::config(text).in_part(Part::Balancer));
    // haproxy runs as its own user with only the capabilities it needs; transparent
    // sockets need CAP_NET_ADMIN (and CAP_NET_RAW), ports below 1024 CAP_NET_BIND_SERVICE.
    let transparent = balanced.iter().any(|(_, b)| b.transparent);
    let mut caps = vec!["CAP_NET_BIND_SERVICE"];
    if transparent {
        caps.extend(["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    }
    let dropin = ctx.templates.render(
        "haproxy-dropin.conf.j2",
        context! { caps => caps, transparent => transparent, stats_socket => first.stats_socket.clone() },
    )?;
    out.resources
        .push(dropin::drop_in(haproxy::UNIT, "vds-proxy.conf", dropin).in_part(Part::Setup));
    let ports = balanced.iter().map(|(_, b)| b.port).collect();
    out.units
        .push(unit::running(haproxy::UNIT, ports).in_part(Part::Balancer));
    Ok(())
}
