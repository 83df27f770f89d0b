//! The web edge: nginx in front of a node's HTTP services — TLS with certificates from an
//! ACME CA (certbot, HTTP-01 through nginx itself) or from files, HTTP → HTTPS redirects,
//! security headers, request rate limits, body size limits, WebSocket upgrades.
//!
//! Inventory keys `sites` and `acme` (`model.rs`, `parse.rs`); plan in `plan.rs`: one
//! nginx.conf per node (adopted from the nginx package, validated with `nginx -t`, reloaded
//! never restarted), one certificate request per ACME site, done by the tool `certs.sh`
//! after nginx reloaded. The prepare step (`prepare.sh`) gives each ACME site a placeholder
//! certificate until the real one is issued, so one deploy goes from nothing to HTTPS.
//! Status (`status.sh`): each site answers, certificate days left, nginx serves the
//! certificate on file.

pub mod acme;
mod model;
pub mod nginx;
mod parse;
mod plan;

use std::collections::BTreeMap;

pub use model::{Acme, Location, RateLimit, Site, Tls};
pub use plan::tool_text;

use crate::contract::Check;
use crate::contract::{
    self, Ctx, Output, Prepare, PrepareMode, Prepared, Status, StatusInput, Systems, Table,
};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, Sections};
use crate::shell::call;
use crate::templates::TemplateError;

/// Where nginx finds each ACME site's certificate: `SITE/fullchain.pem`, `SITE/privkey.pem`
/// (links to certbot's, or a placeholder until it is issued).
pub const CERT_DIR: &str = "/var/lib/vds-proxy/certs";
/// The directory nginx serves `/.well-known/acme-challenge/` from.
pub const WEBROOT: &str = "/var/lib/vds-proxy/acme";

#[derive(Debug, Default)]
struct Section {
    sites: Vec<Site>,
    acme: Acme,
}

/// Every site of the inventory.
pub fn of(inv: &Inventory) -> &[Site] {
    &inv.section::<Section>().sites
}

/// Where ACME certificates come from.
pub fn acme_of(inv: &Inventory) -> &Acme {
    &inv.section::<Section>().acme
}

/// The sites served on `node`.
pub fn sites_on<'a>(inv: &'a Inventory, node: &'a str) -> impl Iterator<Item = &'a Site> {
    of(inv).iter().filter(move |s| s.node == node)
}

/// The web edge role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "web"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["sites", "acme"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let acme = parse::acme(c, top);
        let sites = top.objects(c, "sites", parse::site);
        into.insert(Section { sites, acme });
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        parse::validate(inv, of(inv), c, claims);
    }

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        let n = of(inv).len();
        (n > 0).then(|| format!("{n} site(s)"))
    }
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        plan::TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan::plan(ctx, out)
    }
}

impl Table for System {
    fn table(&self, inv: &Inventory) -> Option<(&'static str, String)> {
        let mut t = String::from("SITE\tNODE\tDOMAINS\tTLS\tLOCATIONS\n");
        for s in of(inv) {
            let locations: Vec<String> = s
                .locations
                .iter()
                .map(|l| format!("{} → {}", l.path, l.upstream))
                .collect();
            t += &format!(
                "{}\t{}\t{}\t{}\t{}\n",
                s.name,
                s.node,
                s.domains.join(","),
                s.tls.name(),
                locations.join(", ")
            );
        }
        Some(("sites", t))
    }
}

impl Prepare for System {
    fn prepare_script(&self, inv: &Inventory, node: &str, mode: PrepareMode) -> Option<String> {
        let sites: Vec<&Site> = sites_on(inv, node).collect();
        if sites.is_empty() {
            return None;
        }
        let mode = if mode == PrepareMode::Read {
            "read"
        } else {
            "create"
        };
        let args = [mode, CERT_DIR, WEBROOT].into_iter().chain(
            sites
                .iter()
                .filter(|s| s.tls == Tls::Acme)
                .map(|s| s.name.as_str()),
        );
        Some(format!(
            "{}{}",
            include_str!("prepare.sh"),
            call("web_prepare", args)
        ))
    }

    fn prepare_read(
        &self,
        _inv: &Inventory,
        outputs: &BTreeMap<String, Prepared>,
        _into: &mut Sections,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for (node, out) in outputs.iter().filter(|(_, o)| o.mode != PrepareMode::Read) {
            for line in out.stdout.lines() {
                if let Some(program) = line.strip_prefix("@missing ") {
                    problems.push(format!(
                        "node \"{node}\" has no {program}; install the Debian package \"{program}\" there (apt-get install {program})"
                    ));
                } else if let Some(site) = line.strip_prefix("@certfail ") {
                    problems.push(format!(
                        "node \"{node}\": could not make a placeholder certificate for site \"{site}\" in {CERT_DIR}"
                    ));
                }
            }
        }
        problems
    }
}

impl Status for System {
    fn status_script(&self, inv: &Inventory, node: &str) -> String {
        let mut s = String::new();
        for site in sites_on(inv, node) {
            let Some(domain) = site.domains.first() else {
                continue;
            };
            let (scheme, port, cert) = match site.certificate() {
                None => ("http", site.http_port, "-".to_string()),
                Some((chain, _)) => ("https", site.https_port, chain),
            };
            if s.is_empty() {
                s += include_str!("status.sh");
            }
            s += &call(
                "web_site",
                [&site.name, scheme, &port.to_string(), domain, &cert],
            );
        }
        if !s.is_empty() {
            s += &call("web_nginx", [nginx::CONFIG, nginx::LAST_LOAD]);
        }
        s
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        let min_days = i64::from(acme_of(inv).min_days_left);
        let mut rows: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for line in seen.stdout.lines().filter_map(|l| l.strip_prefix("@web ")) {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 6 {
                rows.insert(f[0], f[1..].to_vec());
            }
        }
        let mut out: Vec<Check> = seen
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("@nginx "))
            .map(|l| nginx_check(node, l))
            .collect();
        for site in sites_on(inv, node) {
            let Some(r) = rows.get(site.name.as_str()) else {
                continue;
            };
            let (code, days, placeholder, file, served) = (r[0], r[1], r[2], r[3], r[4]);
            let answered = code != "000";
            let scheme = if site.tls() { "HTTPS" } else { "HTTP" };
            let (ok, detail) = match () {
                _ if !answered => (false, format!("no {scheme} answer from nginx on this node")),
                _ if site.tls() && file == "-" => (
                    false,
                    format!("{scheme} {code}, but the certificate file cannot be read"),
                ),
                _ if site.tls() && served != file => (
                    false,
                    format!(
                        "{scheme} {code}, but nginx serves another certificate than the one on file (reload nginx, or deploy)"
                    ),
                ),
                _ if site.tls() => (
                    true,
                    format!("{scheme} {code}, serves the certificate on file"),
                ),
                _ => (true, format!("{scheme} {code}")),
            };
            out.push(Check::new(node, format!("site {}", site.name), ok, detail));
            if site.tls() {
                let left: Option<i64> = days.parse().ok();
                let (ok, detail) = match left {
                    _ if placeholder == "yes" => (
                        false,
                        "a placeholder: the CA has not issued the certificate yet; run deploy (certbot's error is in its output)".to_string(),
                    ),
                    None => (false, "cannot read the certificate's expiry".to_string()),
                    Some(d) if d < min_days => (
                        false,
                        format!("{d} days left (fewer than {min_days}): renewal is failing; run `certbot renew` on the node to see why"),
                    ),
                    Some(d) => (true, format!("{d} days left")),
                };
                out.push(Check::new(
                    node,
                    format!("certificate {}", site.name),
                    ok,
                    detail,
                ));
            }
        }
        out
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.push(acme::ACME);
    r.kinds.push(nginx::NGINX);
    r.all.push(&System);
    r.tables.push(&System);
    r.prepare.push(&System);
    r.status.push(&System);
}

/// The `nginx` row from "ACTIVE FILE_MTIME LAST_LOAD": running, and not older than its
/// config file (a deploy cut short between writing nginx.conf and reloading leaves that).
fn nginx_check(node: &str, line: &str) -> Check {
    let f: Vec<&str> = line.split(' ').collect();
    let (active, mtime, last) = match f[..] {
        [a, m, l] => (a, m.parse::<i64>().ok(), l.parse::<i64>().ok()),
        _ => ("-", None, None),
    };
    let config = nginx::CONFIG;
    let (ok, detail) = match (active, mtime, last) {
        ("active", Some(m), Some(l)) if m > l => (
            false,
            format!(
                "runs an older configuration: {config} changed after nginx last loaded it; deploy (or reload nginx)"
            ),
        ),
        ("active", Some(_), Some(_)) => {
            (true, format!("active, running {config} as it is on disk"))
        }
        ("active", _, _) => (
            true,
            "active (when it last loaded its configuration is not in the journal)".to_string(),
        ),
        (state, _, _) => (false, format!("nginx is {state}; deploy starts it")),
    };
    Check::new(node, "nginx", ok, detail)
}
