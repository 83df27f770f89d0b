//! HAProxy in front of replicated services (seed 003): one `haproxy.cfg` per node with a
//! TCP frontend and a health-checked backend per balanced service, reloaded gracefully.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::{Ctx, Output};
use crate::inventory::{Balancer, Service};
use crate::resources::{Part, dropin, haproxy, unit};
use crate::templates::TemplateError;

/// Adds haproxy.cfg and the haproxy unit when services on `ctx.node` have a balancer.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let balanced: Vec<(&Service, &Balancer)> = ctx.inv.balanced_on(&ctx.node.name).collect();
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
                server_address => ctx.inv.backend_address(s).map(|a| a.to_string()),
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
