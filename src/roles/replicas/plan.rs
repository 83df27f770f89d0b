//! The template unit and per-replica environment files of the services on a node.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::Service;
use super::balancer::backend_address;
use crate::contract::{Ctx, Output};
use crate::resources::{Action, Kind, Part, Resource, unit};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "replica@.service.j2",
        include_str!("templates/replica@.service.j2"),
    ),
    ("replica.env.j2", include_str!("templates/replica.env.j2")),
];

/// Name of instance `n` of a service's template unit.
pub fn instance(s: &Service, n: u32) -> String {
    format!("{}@{}.service", s.name, n)
}

/// Adds every replicated service placed on `ctx.node`.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    for s in super::of(ctx.inv)
        .iter()
        .filter(|s| s.node == ctx.node.name)
    {
        service(ctx, s, out)?;
    }
    Ok(())
}

fn service(ctx: &Ctx, s: &Service, out: &mut Output) -> Result<(), TemplateError> {
    let instances: Vec<String> = (1..=s.replicas).map(|n| instance(s, n)).collect();
    // `{port}` and `{secret}` become systemd environment references, so the template unit
    // serves every replica and the secret stays in the 0600 environment file.
    let exec = s
        .exec
        .iter()
        .map(|a| exec_word(a))
        .collect::<Vec<_>>()
        .join(" ");
    let text = ctx.templates.render(
        "replica@.service.j2",
        context! {
            service => Value::from(Serde(s)),
            exec => exec,
            publish => backend_address(ctx.inv, s).map_or("127.0.0.1".to_string(), |a| a.to_string()),
        },
    )?;
    out.resources.push(
        unit::unit_file(&format!("{}@.service", s.name), text, &instances)
            .for_service(&s.name)
            .in_part(Part::Backends),
    );
    for n in 1..=s.replicas {
        let env = ctx.templates.render(
            "replica.env.j2",
            context! { service => Value::from(Serde(s)), n => n, port => s.replica_port(n), secret => s.secret.clone() },
        )?;
        let mut r = Resource::text(
            Kind::FILE,
            format!("/etc/vds-proxy/{}/{}.env", s.name, n),
            env,
            0o600,
        )
        .for_service(&s.name)
        .in_part(Part::Backends)
        .on_change(Action::Restart(instance(s, n)));
        if s.secret.is_some() {
            r = r.secret();
        }
        out.resources.push(r);
        let mut u = unit::running(&instance(s, n), vec![s.replica_port(n)]).in_part(Part::Backends);
        // Behind a balancer, a replica is stopped only after the balancer dropped it.
        u.late_stop = s.balancer.is_some();
        u.drain_secs = s.balancer.as_ref().map_or(0, |b| b.drain_timeout);
        out.units.push(u);
    }
    Ok(())
}

/// One ExecStart word: `%` and `$` escaped for systemd, `{port}`/`{secret}` turned into
/// environment references, double-quoted when it holds blanks or quotes.
fn exec_word(arg: &str) -> String {
    let w = arg
        .replace('%', "%%")
        .replace('$', "$$")
        .replace("{port}", "${PORT}")
        .replace("{secret}", "${SECRET}");
    if w.is_empty() || w.contains([' ', '\t', '"', '\'', '\\', ';']) {
        format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        w
    }
}
