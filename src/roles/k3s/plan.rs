//! The manifests of the k3s server node.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::manifest as k8s;
use crate::contract::{Ctx, Output};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "k8s-namespace.yaml.j2",
        include_str!("templates/k8s-namespace.yaml.j2"),
    ),
    ("k8s-app.yaml.j2", include_str!("templates/k8s-app.yaml.j2")),
    ("k8s-job.yaml.j2", include_str!("templates/k8s-job.yaml.j2")),
    (
        "k8s-wg-egress.yaml.j2",
        include_str!("templates/k8s-wg-egress.yaml.j2"),
    ),
];

/// Adds the manifests when `ctx.node` is the k3s server node.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let Some(k) = super::of(ctx.inv).filter(|k| k.node == ctx.node.name) else {
        return Ok(());
    };
    let ns = &k.namespace;
    let base = |what: &str| format!("vds-proxy-{ns}-{what}.yaml");
    let common = |extra: Value| {
        context! { ..extra, ..context! { namespace => ns.clone(), node => k.node.clone() } }
    };
    let t = ctx.templates;
    out.resources.push(k8s::manifest(
        &k.manifests_dir,
        &base("namespace"),
        t.render(
            "k8s-namespace.yaml.j2",
            common(context! { jobs => !k.jobs.is_empty() }),
        )?,
    ));
    for a in &k.apps {
        let secret_env: Vec<(String, String)> = a.secret_env.clone().into_iter().collect();
        let mut r = k8s::manifest(
            &k.manifests_dir,
            &base(&a.name),
            t.render(
                "k8s-app.yaml.j2",
                common(context! { app => Value::from(Serde(a)), secret_env => secret_env }),
            )?,
        );
        if !a.secret_env.is_empty() {
            r = r.secret();
        }
        out.resources.push(r);
    }
    for j in &k.jobs {
        out.resources.push(k8s::manifest(
            &k.manifests_dir,
            &base(&format!("job-{}", j.name)),
            t.render(
                "k8s-job.yaml.j2",
                common(context! { job => Value::from(Serde(j)) }),
            )?,
        ));
    }
    if let Some(e) = &k.egress {
        out.resources.push(k8s::manifest(
            &k.manifests_dir,
            &base("wg-egress"),
            t.render(
                "k8s-wg-egress.yaml.j2",
                common(context! { egress => Value::from(Serde(e)) }),
            )?,
        ));
    }
    Ok(())
}
