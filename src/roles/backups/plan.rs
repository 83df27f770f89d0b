//! Per node: the backup tool, and per database a oneshot service and its daily timer.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::Backup;
use crate::contract::{Ctx, Output};
use crate::resources::{Kind, Resource, unit};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "backup.service.j2",
        include_str!("templates/backup.service.j2"),
    ),
    ("backup.timer.j2", include_str!("templates/backup.timer.j2")),
];

/// The tool that dumps, prunes and reports.
pub const TOOL: &str = "/usr/local/lib/vds-proxy/backup";

/// The tool as installed.
pub fn tool_text() -> String {
    format!(
        "#!/bin/sh\n# Installed by vds-proxy.\n{}",
        include_str!("backup.sh")
    )
}

/// The oneshot service that backs `b` up, e.g. `vds-backup-app.service`.
pub fn service_name(b: &Backup) -> String {
    format!("vds-backup-{}.service", b.database)
}

/// The timer that starts it.
pub fn timer_name(b: &Backup) -> String {
    format!("vds-backup-{}.timer", b.database)
}

/// Adds the backups of `ctx.node`.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let mine: Vec<&Backup> = super::on(ctx.inv, &ctx.node.name).collect();
    let copies = super::copy::resources(
        ctx.inv,
        &ctx.node.name,
        ctx.prepared.get::<super::copy::CopyKeys>(),
    );
    if mine.is_empty() && copies.is_empty() {
        return Ok(());
    }
    out.resources
        .push(Resource::text(Kind::FILE, TOOL, tool_text(), 0o755));
    out.resources.extend(copies);
    for b in mine {
        let (service, timer) = (service_name(b), timer_name(b));
        let values = context! {
            node => Value::from(Serde(ctx.node)),
            backup => Value::from(Serde(b)),
            after => b.after(),
            container => b.container(),
            env => Value::from(Serde([b.pg_env(), super::copy::unit_env(ctx.inv, b)].concat())),
            tool => TOOL,
            service => service.clone(),
        };
        let service_text = ctx.templates.render("backup.service.j2", values.clone())?;
        let timer_text = ctx.templates.render("backup.timer.j2", values)?;
        // A changed service takes effect at its next run: never restarted by a deploy (that
        // would run a backup).
        out.resources
            .push(unit::unit_file(&service, service_text, &[]).for_service(&b.database));
        out.resources.push(
            unit::unit_file(&timer, timer_text, std::slice::from_ref(&timer))
                .for_service(&b.database),
        );
        out.units.push(unit::running(&timer, Vec::new()));
    }
    Ok(())
}
