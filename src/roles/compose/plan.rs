//! Per node: the app tool, and per app its compose file, a 0600 env file per service with
//! secret environment, and the oneshot unit that brings the project up (and waits until it
//! is healthy) and takes it down.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::App;
use crate::contract::{Ctx, Output};
use crate::resources::{Kind, Resource, unit};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("compose.yaml.j2", include_str!("templates/compose.yaml.j2")),
    ("app.service.j2", include_str!("templates/app.service.j2")),
];

/// The tool that brings apps up and down and reports on them.
pub const TOOL: &str = "/usr/local/lib/vds-proxy/app";
/// Where each app's files live, one directory per app.
pub const DIR: &str = "/etc/vds-proxy/apps";

/// The tool as installed.
pub fn tool_text() -> String {
    format!(
        "#!/bin/sh\n# Installed by vds-proxy.\n{}",
        include_str!("app.sh")
    )
}

/// The unit that runs app `a`, e.g. `vds-app-shop.service`.
pub fn unit_name(a: &App) -> String {
    unit_of(&a.name)
}

/// The unit that runs the app named `app`.
pub fn unit_of(app: &str) -> String {
    format!("vds-app-{app}.service")
}

/// The container of `service` in app `app` (podman-compose's name for it).
pub fn container_name(app: &str, service: &str) -> String {
    format!("{app}_{service}_1")
}

/// The env file holding a service's secret environment.
fn env_file(a: &App, service: &str) -> String {
    format!("{DIR}/{}/{service}.env", a.name)
}

/// Adds the apps of `ctx.node`.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let mine: Vec<&App> = super::on(ctx.inv, &ctx.node.name).collect();
    if mine.is_empty() {
        return Ok(());
    }
    out.resources
        .push(Resource::text(Kind::FILE, TOOL, tool_text(), 0o755));
    for a in mine {
        let unit = unit_name(a);
        let restart = std::slice::from_ref(&unit);
        let env_files: Vec<(String, String)> = a
            .services
            .iter()
            .filter(|s| !s.secret_env.is_empty())
            .map(|s| (s.name.clone(), env_file(a, &s.name)))
            .collect();
        let volumes: std::collections::BTreeSet<&str> = a
            .services
            .iter()
            .flat_map(|s| s.volumes.iter().filter(|v| v.named))
            .map(|v| v.source.as_str())
            .collect();
        let values = context! {
            volumes => Value::from(Serde(&volumes)),
            node => Value::from(Serde(ctx.node)),
            app => Value::from(Serde(a)),
            env_files => Value::from(Serde(&env_files)),
            tool => TOOL,
        };
        let compose = ctx.templates.render("compose.yaml.j2", values.clone())?;
        out.resources.push(
            Resource::text(
                super::compose_file::COMPOSE,
                format!("{DIR}/{}/compose.yaml", a.name),
                compose,
                0o644,
            )
            .on_change(crate::resources::Action::Restart(unit.clone()))
            .for_service(&a.name),
        );
        for s in a.services.iter().filter(|s| !s.secret_env.is_empty()) {
            let text: String = s
                .secret_env
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            out.resources.push(
                Resource::text(Kind::FILE, env_file(a, &s.name), text, 0o600)
                    .secret()
                    .on_change(crate::resources::Action::Restart(unit.clone()))
                    .for_service(&a.name),
            );
        }
        let unit_text = ctx.templates.render("app.service.j2", values)?;
        out.resources
            .push(unit::unit_file(&unit, unit_text, restart).for_service(&a.name));
        let ports = a
            .services
            .iter()
            .flat_map(|s| s.ports.iter().map(|p| p.host))
            .collect();
        out.units.push(unit::running(&unit, ports));
    }
    Ok(())
}
