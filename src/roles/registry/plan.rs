//! The registry's config (tokens as SHA-256 digests, the inventory's nodes), its unit, and
//! the shared vds-proxy binary.

use std::net::SocketAddr;

use minijinja::value::Serde;
use minijinja::{Value, context};

use crate::contract::{Ctx, Output};
use crate::resources::{Action, Kind, Resource, binary, unit};
use crate::serve::auth::digest;
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "registry.service.j2",
        include_str!("templates/registry.service.j2"),
    ),
    (
        "registry.toml.j2",
        include_str!("templates/registry.toml.j2"),
    ),
];

/// Name of the registry's unit.
pub const UNIT: &str = "vds-registry.service";
/// Path of the registry's config file.
pub const CONFIG: &str = "/etc/vds-proxy/registry.toml";
/// Its database, in the unit's `StateDirectory`.
pub const DATABASE: &str = "/var/lib/vds-registry/registry.db";
/// Where systemd keeps that state directory for a `DynamicUser` unit, and the link to it.
pub const STATE_PRIVATE: &str = "/var/lib/private/vds-registry";
pub const STATE_LINK: &str = "/var/lib/vds-registry";

/// Adds the registry of `ctx.node`, if it has one.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let Some(r) = super::on(ctx.inv, &ctx.node.name) else {
        return Ok(());
    };
    let tokens: Vec<_> = r
        .tokens
        .iter()
        .map(|t| {
            context! {
                name => t.name.clone(),
                role => t.role.name(),
                sha256 => digest(&t.token),
                farm => t.farm.map(|ip| ip.to_string()),
                rate_limit => t.rate_limit,
            }
        })
        .collect();
    let nodes: Vec<_> = ctx
        .inv
        .nodes
        .iter()
        .map(|n| {
            context! {
                name => n.name.clone(),
                domain => n.domain.clone(),
                tailscale_ip => n.tailscale_ip.map(|ip| ip.to_string()),
                ports => Value::from(Serde(&n.ports)),
                active => n.active,
            }
        })
        .collect();
    let config = ctx.templates.render(
        "registry.toml.j2",
        context! {
            node => Value::from(Serde(ctx.node)),
            listen => SocketAddr::new(r.listen, r.port).to_string(),
            database => DATABASE,
            heartbeat_interval => r.heartbeat_interval,
            rate_limit => r.rate_limit,
            access_log => r.access_log,
            tokens => tokens,
            nodes => nodes,
        },
    )?;
    let unit_text = ctx.templates.render(
        "registry.service.j2",
        context! {
            node => Value::from(Serde(ctx.node)),
            binary => binary::BUNDLE_PATH,
            config => CONFIG,
            low_port => r.port < 1024,
        },
    )?;
    out.bundle_users.push(Action::Restart(UNIT.into()));
    out.resources.push(
        // It holds the tokens' digests: a file derived from secrets is a secret (a digest of a
        // weak token falls to a dictionary), never shown or diffed.
        Resource::text(Kind::FILE, CONFIG, config, 0o644)
            .secret()
            .on_change(Action::Reload(UNIT.into())),
    );
    out.resources
        .push(unit::unit_file(UNIT, unit_text, &[UNIT.to_string()]));
    out.units.push(unit::running(UNIT, vec![r.port]));
    Ok(())
}
