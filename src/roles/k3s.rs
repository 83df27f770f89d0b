//! k3s workloads (seeds 000 and 001): Kubernetes manifests rendered from templates and
//! written to the auto-deploy directory of the k3s server node; pruning removes them.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::{Ctx, Output};
use crate::inventory::K3s;
use crate::resources::k8s;
use crate::templates::TemplateError;

/// Adds the manifests when `ctx.node` is the k3s server node.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let Some(k) = ctx.inv.k3s.as_ref().filter(|k| k.node == ctx.node.name) else {
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

/// The deployments `status` checks on the k3s node: (namespace, name, wanted replicas).
pub fn deployments(k: &K3s) -> Vec<(String, String, u32)> {
    k.apps
        .iter()
        .map(|a| (k.namespace.clone(), a.name.clone(), a.replicas))
        .collect()
}
