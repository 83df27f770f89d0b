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

/// What the app tool reads of an app (`CONF` in `app.sh`), e.g. `DIR/shop/app.conf`.
pub fn conf_file(a: &App) -> String {
    format!("{DIR}/{}/{CONF}", a.name)
}

/// The name of the app tool's file in an app's directory.
pub const CONF: &str = "app.conf";

/// The app tool's view of an app: its engine, its images, and its services in the order
/// they start — each with whether it has a healthcheck and which services must be healthy
/// before it starts.
fn conf(a: &App) -> String {
    let mut out = format!(
        "# Read by {TOOL} (vds-proxy): the engine, the images, the services in start order.\nengine {}\n",
        a.engine.command()
    );
    let images: std::collections::BTreeSet<&str> =
        a.services.iter().map(|s| s.image.as_str()).collect();
    for i in images {
        out.push_str(&format!("image {i}\n"));
    }
    for i in &a.images {
        out.push_str(&format!("load {} {}\n", i.id, i.node_path()));
    }
    for s in start_order(a) {
        let health = if s.healthcheck.is_some() {
            "health"
        } else {
            "-"
        };
        out.push_str(&format!("service {} {health}", s.name));
        for w in &s.wait_for {
            out.push(' ');
            out.push_str(w);
        }
        out.push('\n');
    }
    out
}

/// The services of `a`, each after those it depends on (in the order written otherwise).
/// The inventory has no circles (checked), so every service is placed.
pub fn start_order(a: &App) -> Vec<&super::Service> {
    let mut placed: Vec<&super::Service> = Vec::new();
    while placed.len() < a.services.len() {
        let before = placed.len();
        for s in &a.services {
            let ready = s
                .depends_on
                .iter()
                .all(|d| placed.iter().any(|p| &p.name == d));
            if ready && !placed.iter().any(|p| p.name == s.name) {
                placed.push(s);
            }
        }
        if placed.len() == before {
            break;
        }
    }
    placed
}

/// Adds the apps of `ctx.node`.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let mine: Vec<&App> = super::on(ctx.inv, &ctx.node.name).collect();
    if mine.is_empty() {
        return Ok(());
    }
    out.resources
        .push(Resource::text(Kind::FILE, TOOL, tool_text(), 0o755));
    // Each image archive once per node, needed where no engine of the apps using it has
    // the image; a new archive restarts them.
    let mut archives: std::collections::BTreeMap<&str, Vec<&App>> = Default::default();
    for a in &mine {
        for i in &a.images {
            archives.entry(i.id.as_str()).or_default().push(a);
        }
    }
    for (id, users) in &archives {
        let archive = users[0]
            .images
            .iter()
            .find(|i| i.id == *id)
            .expect("the app lists the archive it was found under");
        let mut engines: Vec<&str> = users.iter().map(|a| a.engine.command()).collect();
        engines.sort_unstable();
        engines.dedup();
        let mut r = archive.resource(&engines).for_service(&users[0].name);
        for a in users {
            r = r.on_change(crate::resources::Action::Restart(unit_name(a)));
        }
        out.resources.push(r);
    }
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
        let restart_on_change = crate::resources::Action::Restart(unit.clone());
        let compose = match &a.file {
            None => ctx.templates.render("compose.yaml.j2", values.clone())?,
            Some(f) => f.text.clone(),
        };
        out.resources.push(
            Resource::text(
                super::compose_file::COMPOSE,
                format!("{DIR}/{}/compose.yaml", a.name),
                compose,
                0o644,
            )
            .on_change(restart_on_change.clone())
            .for_service(&a.name),
        );
        let mut secret_files: Vec<(String, String)> = a
            .services
            .iter()
            .filter(|s| !s.secret_env.is_empty())
            .map(|s| {
                let text = s
                    .secret_env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect();
                (env_file(a, &s.name), text)
            })
            .collect();
        if let Some(f) = &a.file {
            for (rel, text) in f.env_files.iter().filter(|(rel, _)| rel != ".env") {
                secret_files.push((format!("{DIR}/{}/{rel}", a.name), text.clone()));
            }
            let mut dotenv = f.dotenv.clone().unwrap_or_default();
            if !a.secret_env.is_empty() {
                if !dotenv.is_empty() && !dotenv.ends_with('\n') {
                    dotenv.push('\n');
                }
                dotenv.push_str("# The app's secret_env, written by vds-proxy:\n");
                for (k, v) in &a.secret_env {
                    dotenv.push_str(&format!("{k}='{v}'\n"));
                }
            }
            if f.dotenv.is_some() || !a.secret_env.is_empty() {
                secret_files.push((format!("{DIR}/{}/.env", a.name), dotenv));
            }
        }
        for (path, text) in secret_files {
            out.resources.push(
                Resource::text(Kind::FILE, path, text, 0o600)
                    .secret()
                    .on_change(restart_on_change.clone())
                    .for_service(&a.name),
            );
        }
        out.resources.push(
            Resource::text(Kind::FILE, conf_file(a), conf(a), 0o644)
                .on_change(restart_on_change)
                .for_service(&a.name),
        );
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
