//! nginx.conf, the certificate requests and the certificate tool of a node with sites.

use minijinja::value::Serde;
use minijinja::{Value, context};

use super::model::{Acme, Site, Tls};
use super::{CERT_DIR, WEBROOT, acme_of, sites_on};
use super::{acme, nginx};
use crate::contract::{Ctx, Output};
use crate::resources::{Action, Kind, Resource, unit};
use crate::templates::TemplateError;

/// The templates this role renders.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("nginx.conf.j2", include_str!("templates/nginx.conf.j2")),
    (
        "certbot-dropin.conf.j2",
        include_str!("templates/certbot-dropin.conf.j2"),
    ),
];

/// certbot's unit, run by its timer to renew.
const CERTBOT_UNIT: &str = "certbot.service";

/// The certificate tool as installed: its settings, then the script.
pub fn tool_text() -> String {
    format!(
        "#!/bin/sh\n# Installed by vds-proxy.\nCERT_DIR={CERT_DIR}\nREQ_DIR={}\nWEBROOT={WEBROOT}\nSELF={}\n{}",
        acme::DIR,
        acme::TOOL,
        include_str!("certs.sh")
    )
}

/// What the request file of an ACME site says (read by the tool, one `key value` a line).
fn request_text(site: &Site, acme: &Acme) -> String {
    let mut s = format!(
        "# Managed by vds-proxy: the certificate of site {}.\ndomains {}\nserver {}\n",
        site.name,
        site.domains.join(" "),
        acme.directory
    );
    if let Some(e) = &acme.email {
        s += &format!("email {e}\n");
    }
    if let Some(ca) = &acme.ca_file {
        s += &format!("ca_file {ca}\n");
    }
    s
}

/// Adds nginx and the certificates of the sites on `ctx.node`.
pub fn plan(ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
    let sites: Vec<&Site> = sites_on(ctx.inv, &ctx.node.name).collect();
    if sites.is_empty() {
        return Ok(());
    }
    let acme = acme_of(ctx.inv);
    let mut zones = Vec::new();
    let views: Vec<Value> = sites
        .iter()
        .map(|s| {
            for l in &s.locations {
                if let (Some(zone), Some(limit)) = (&l.zone, &l.rate_limit) {
                    zones.push(context! { name => zone, rate => limit.rate.clone() });
                }
            }
            let (certificate, certificate_key) = s.certificate().unzip();
            context! {
                name => s.name.clone(),
                domains => s.domains.clone(),
                tls => s.tls(),
                certificate => certificate,
                certificate_key => certificate_key,
                redirect_http => s.redirect_http,
                headers => s.headers.clone(),
                max_body => s.max_body.clone(),
                http_port => s.http_port,
                https_port => s.https_port,
                locations => Value::from(Serde(&s.locations)),
            }
        })
        .collect();
    let text = ctx.templates.render(
        "nginx.conf.j2",
        context! {
            node => Value::from(Serde(ctx.node)),
            sites => views,
            zones => zones,
            webroot => WEBROOT,
        },
    )?;
    out.resources.push(nginx::config(text));
    let acme_sites: Vec<&&Site> = sites.iter().filter(|s| s.tls == Tls::Acme).collect();
    if !acme_sites.is_empty() {
        out.resources
            .push(Resource::text(Kind::FILE, acme::TOOL, tool_text(), 0o755));
        for s in &acme_sites {
            let issue = format!("{} issue {}", acme::TOOL, s.name);
            out.resources.push(
                acme::request(&s.name, request_text(s, acme))
                    .for_service(&s.name)
                    .on_change(Action::Run {
                        name: format!("certificate of site {}", s.name),
                        command: issue,
                    })
                    .live_check(format!("{} check {}", acme::TOOL, s.name)),
            );
        }
        if let Some(ca_file) = &acme.ca_file {
            let text = ctx.templates.render(
                "certbot-dropin.conf.j2",
                context! { ca_file => ca_file.as_str() },
            )?;
            // Read when the timer next starts certbot: nothing to restart now.
            out.resources.push(
                Resource::text(
                    Kind::DROPIN,
                    format!("{}/{CERTBOT_UNIT}.d/vds-proxy.conf", unit::UNIT_DIR),
                    text,
                    0o644,
                )
                .on_change(Action::DaemonReload),
            );
        }
    }
    let mut ports: Vec<u16> = sites
        .iter()
        .flat_map(|s| s.ports())
        .map(|(_, port)| port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    out.units.push(unit::running(nginx::UNIT, ports));
    Ok(())
}
