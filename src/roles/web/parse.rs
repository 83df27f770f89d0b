//! Reading and checking `sites` and `acme`: every value that reaches nginx.conf or a
//! command line is checked here, so a site cannot inject directives or arguments.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::{Acme, DEFAULT_HEADERS, HSTS, Location, RateLimit, Site, Tls};
use crate::inventory::DomainName;
use crate::inventory::{
    Check, Claims, Collector, Fields, Inventory, SAFE_NAME, is_host_port, is_hostname, kind,
};

const SITE_KEYS: &[&str] = &[
    "name",
    "node",
    "domains",
    "tls",
    "certificate",
    "certificate_key",
    "redirect_http",
    "headers",
    "max_body",
    "http_port",
    "https_port",
    "locations",
];
const LOCATION_KEYS: &[&str] = &["path", "upstream", "websocket", "rate_limit"];
const RATE_KEYS: &[&str] = &["rate", "burst"];
/// The path nginx answers ACME HTTP-01 challenges on, for every site.
const ACME_CHALLENGE: &str = "/.well-known/acme-challenge";
const ACME_KEYS: &[&str] = &["directory", "email", "ca_file", "min_days_left"];

const URL: Check = Check {
    ok: is_https_url,
    hint: "is not an https:// URL; expected e.g. \"https://acme-v02.api.letsencrypt.org/directory\"",
};
const EMAIL: Check = Check {
    ok: is_email,
    hint: "is not an email address; expected e.g. \"ops@example.com\"",
};
const UPSTREAM: Check = Check {
    ok: is_host_port,
    hint: "is not host:port; expected e.g. \"127.0.0.1:3000\"",
};
const URL_PATH: Check = Check {
    ok: is_url_path,
    hint: "is not a URL path prefix; expected e.g. \"/\" or \"/api/\" (letters, digits and / . _ ~ - only)",
};
const SIZE: Check = Check {
    ok: is_size,
    hint: "is not a size; expected a number with an optional k, m or g, e.g. \"10m\"",
};
const RATE: Check = Check {
    ok: is_rate,
    hint: "is not a rate; expected requests per second or minute, e.g. \"10r/s\" or \"300r/m\"",
};

fn is_https_url(s: &str) -> bool {
    s.strip_prefix("https://").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._~:/?#@%+=&".contains(&c))
    })
}

fn is_email(s: &str) -> bool {
    s.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty()
            && user.len() <= 64
            && user
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".!#%&*+=?^_`{|}~-".contains(&c))
            && !user.starts_with('-')
            && domain.contains('.')
            && is_hostname(domain)
    })
}

fn is_url_path(s: &str) -> bool {
    s.starts_with('/')
        && s.len() <= 200
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._~-".contains(&c))
}

fn is_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G']);
    !digits.is_empty()
        && digits.len() <= 9
        && s.len() - digits.len() <= 1
        && digits.bytes().all(|c| c.is_ascii_digit())
}

fn is_rate(s: &str) -> bool {
    let Some(n) = s.strip_suffix("r/s").or_else(|| s.strip_suffix("r/m")) else {
        return false;
    };
    !n.is_empty() && n.len() <= 9 && n.bytes().all(|c| c.is_ascii_digit()) && n != "0"
}

/// A header name nginx accepts: letters, digits and dashes.
fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// A header value that fits between double quotes on one config line without being
/// read as a variable or an escape.
fn is_header_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 1000
        && s.chars()
            .all(|c| !c.is_control() && !matches!(c, '"' | '\\' | '$'))
}

/// Reads `acme` (absent: Let's Encrypt).
pub fn acme(c: &mut Collector, top: &Fields) -> Acme {
    let Some(v) = top.get("acme") else {
        return Acme::default();
    };
    let Some(f) = Fields::new(c, &top.path_of("acme"), v, ACME_KEYS) else {
        return Acme::default();
    };
    let d = Acme::default();
    Acme {
        directory: f.checked_str(c, "directory", &URL).unwrap_or(d.directory),
        email: f.checked_str(c, "email", &EMAIL),
        ca_file: f.node_path(c, "ca_file"),
        min_days_left: f
            .opt_uint(c, "min_days_left", 0, 365)
            .map_or(d.min_days_left, |n| n as u32),
    }
}

/// Reads one entry of `sites`.
pub fn site(c: &mut Collector, path: &str, v: &Value) -> Option<Site> {
    let f = Fields::new(c, path, v, SITE_KEYS)?;
    let name = f.req_checked_str(c, "name", &SAFE_NAME).unwrap_or_default();
    let node = f.req_ref(c, "node").unwrap_or_default();
    let domains: Vec<String> = f
        .parsed_list(c, "domains", "domain names", DomainName::parse)
        .into_iter()
        .map(|d| d.as_str().to_string())
        .collect();
    if f.get("domains").is_none() {
        c.push(
            f.path_of("domains"),
            "required list of domain names is missing, e.g. [\"app.example.com\"]",
        );
    }
    let mode = f.choice(
        c,
        "tls",
        &[("acme", "acme"), ("files", "files"), ("off", "off")],
        "acme",
    );
    let certificate = f.node_path(c, "certificate");
    let key = f.node_path(c, "certificate_key");
    let tls = match mode {
        "files" => match (certificate, key) {
            (Some(certificate), Some(key)) => Tls::Files { certificate, key },
            _ => {
                c.push(
                    f.path_of("tls"),
                    "\"files\" needs \"certificate\" and \"certificate_key\": the paths of the certificate chain and its key on the node",
                );
                Tls::Off
            }
        },
        other => {
            for k in ["certificate", "certificate_key"] {
                if f.get(k).is_some() {
                    c.push(
                        f.path_of(k),
                        format!("only read with \"tls\": \"files\" (this site has \"{other}\")"),
                    );
                }
            }
            if other == "acme" { Tls::Acme } else { Tls::Off }
        }
    };
    let mut headers: BTreeMap<String, Option<String>> = DEFAULT_HEADERS
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect();
    if tls != Tls::Off {
        headers.insert(HSTS.0.into(), Some(HSTS.1.into()));
    }
    match f.get("headers") {
        None => {}
        Some(Value::Object(map)) => {
            let mut given: BTreeMap<String, &str> = BTreeMap::new();
            for (k, v) in map {
                let p = format!("{}[\"{k}\"]", f.path_of("headers"));
                if !is_header_name(k) {
                    c.push(p, "is not a header name; use letters, digits and dashes");
                    continue;
                }
                if let Some(first) = given.insert(k.to_ascii_lowercase(), k) {
                    c.push(
                        p,
                        format!("is the header \"{first}\" again (header names are the same in any case); give it once"),
                    );
                    continue;
                }
                // One header, however the inventory spells it.
                let existing = headers.keys().find(|h| h.eq_ignore_ascii_case(k)).cloned();
                if let Some(e) = existing {
                    headers.remove(&e);
                }
                match v {
                    Value::Null => {
                        headers.insert(k.clone(), None);
                    }
                    Value::String(s) if is_header_value(s) => {
                        headers.insert(k.clone(), Some(s.clone()));
                    }
                    Value::String(v) if v.is_empty() => c.push(
                        p,
                        "is empty; give the header a value, or null to leave a default header out",
                    ),
                    Value::String(_) => c.push(
                        p,
                        "header values are one line of at most 1000 characters without '\"', '\\' or '$'",
                    ),
                    other => c.push(
                        p,
                        format!("expected a string (or null to leave a default header out), found {}", kind(other)),
                    ),
                }
            }
        }
        Some(other) => c.push(
            f.path_of("headers"),
            format!(
                "expected an object of header names to values, found {}",
                kind(other)
            ),
        ),
    }
    let zone_base = format!("vds_{}", name.replace('-', "_"));
    let locations: Vec<Location> = f
        .objects(c, "locations", location)
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            if l.rate_limit.is_some() {
                l.zone = Some(format!("{zone_base}_{i}"));
            }
            l
        })
        .collect();
    if f.get("locations").is_none() {
        c.push(
            f.path_of("locations"),
            "required list of locations is missing, e.g. [{\"path\": \"/\", \"upstream\": \"127.0.0.1:3000\"}]",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, l) in locations.iter().enumerate() {
        if l.path.starts_with(ACME_CHALLENGE) {
            c.push(
                format!("{}[{i}].path", f.path_of("locations")),
                format!("\"{}\" is under {ACME_CHALLENGE}, where certbot proves the domain is yours; pick another path", l.path),
            );
        }
        if !seen.insert(l.path.clone()) {
            c.push(
                format!("{}[{i}].path", f.path_of("locations")),
                format!("location \"{}\" appears twice in this site", l.path),
            );
        }
    }
    Some(Site {
        name,
        node,
        domains,
        redirect_http: f.bool_or(c, "redirect_http", tls != Tls::Off),
        tls,
        headers: headers
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
        max_body: f
            .checked_str(c, "max_body", &SIZE)
            .unwrap_or_else(|| "1m".into()),
        http_port: f.opt_port(c, "http_port").unwrap_or(80),
        https_port: f.opt_port(c, "https_port").unwrap_or(443),
        locations,
    })
}

fn location(c: &mut Collector, path: &str, v: &Value) -> Option<Location> {
    let f = Fields::new(c, path, v, LOCATION_KEYS)?;
    let rate_limit = f.get("rate_limit").and_then(|v| {
        let r = Fields::new(c, &f.path_of("rate_limit"), v, RATE_KEYS)?;
        Some(RateLimit {
            rate: r.req_checked_str(c, "rate", &RATE)?,
            burst: r.opt_uint(c, "burst", 0, 100_000).unwrap_or(0) as u32,
        })
    });
    let path = f.req_checked_str(c, "path", &URL_PATH);
    let upstream = f.req_checked_str(c, "upstream", &UPSTREAM);
    Some(Location {
        path: path?,
        upstream: upstream?,
        websocket: f.bool_or(c, "websocket", false),
        rate_limit,
        zone: None,
    })
}

/// Checks across the inventory: unique names, nodes exist, one server name per port on a
/// node, and the ports nginx listens on claimed once per node.
pub fn validate(inv: &Inventory, sites: &[Site], c: &mut Collector, claims: &mut Claims) {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ports: BTreeSet<(&str, u16)> = BTreeSet::new();
    let mut server_names: BTreeMap<(&str, u16, &str), usize> = BTreeMap::new();
    for (i, s) in sites.iter().enumerate() {
        let base = format!("$.sites[{i}]");
        if !s.name.is_empty()
            && let Some(first) = names.insert(&s.name, i)
        {
            c.push(
                format!("{base}.name"),
                format!("site \"{}\" is already defined at $.sites[{first}]; give each site its own name", s.name),
            );
        }
        if !inv.check_node_ref(c, &format!("{base}.node"), &s.node) {
            continue;
        }
        if s.tls() && s.http_port == s.https_port {
            c.push(
                format!("{base}.https_port"),
                "HTTP and HTTPS need different ports",
            );
        }
        for (key, port) in s.ports() {
            if ports.insert((&s.node, port)) {
                claims.port(inv, c, &s.node, port, format!("{base}.{key}"));
            }
            for (j, d) in s.domains.iter().enumerate() {
                if let Some(first) = server_names.insert((&s.node, port, d), i)
                    && first != i
                {
                    c.push(
                        format!("{base}.domains[{j}]"),
                        format!("\"{d}\" is already served on port {port} of node \"{}\" by $.sites[{first}]", s.node),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_reject_what_could_break_out_of_a_config_line() {
        assert!(is_url_path("/api/v1/"));
        assert!(!is_url_path("/api; return 200"));
        assert!(!is_url_path("api/"));
        assert!(is_header_value("default-src 'self'"));
        assert!(!is_header_value("x\"; add_header y"));
        assert!(!is_header_value("$host"));
        assert!(is_size("10m") && is_size("512") && !is_size("10mb") && !is_size("m"));
        assert!(is_rate("10r/s") && is_rate("300r/m") && !is_rate("0r/s") && !is_rate("10/s"));
        assert!(is_email("ops@example.com") && !is_email("ops@localhost") && !is_email("-x@a.b"));
        assert!(is_https_url("https://10.213.1.1:14000/dir") && !is_https_url("http://x/"));
        assert!(!is_https_url("https://x/ --foo"));
    }
}
