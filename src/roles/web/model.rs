//! The `sites` and `acme` sections: what nginx serves on a node, and where certificates
//! come from.

use serde::Serialize;

use crate::inventory::NodePath;

/// How a site gets its TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Tls {
    /// HTTP only.
    Off,
    /// Issued and renewed by certbot from the ACME CA in `acme` (HTTP-01 through nginx).
    Acme,
    /// Certificate and key files that already exist on the node.
    Files {
        certificate: NodePath,
        key: NodePath,
    },
}

/// A request rate limit on a location (`limit_req`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// nginx rate, e.g. `10r/s` or `600r/m`.
    pub rate: String,
    /// Requests above the rate that are still accepted at once.
    pub burst: u32,
}

/// One `location` of a site, proxied to an upstream.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    /// URL prefix, e.g. `/` or `/api/`.
    pub path: String,
    /// `host:port` the requests go to.
    pub upstream: String,
    /// Pass WebSocket upgrades through (HTTP/1.1, long read timeout).
    pub websocket: bool,
    pub rate_limit: Option<RateLimit>,
    /// The `limit_req_zone` name (set when there is a rate limit).
    pub zone: Option<String>,
}

/// A site nginx serves on a node.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub name: String,
    pub node: String,
    /// Server names; the first is the certificate's subject.
    pub domains: Vec<String>,
    pub tls: Tls,
    /// Send plain HTTP to HTTPS (TLS sites; the ACME challenge path stays on HTTP).
    pub redirect_http: bool,
    /// Response headers added to every answer (name, value), defaults merged with the
    /// site's overrides.
    pub headers: Vec<(String, String)>,
    /// `client_max_body_size`, e.g. `10m`.
    pub max_body: String,
    pub http_port: u16,
    pub https_port: u16,
    pub locations: Vec<Location>,
}

impl Tls {
    /// The mode's name in the inventory.
    pub fn name(&self) -> &'static str {
        match self {
            Tls::Off => "off",
            Tls::Acme => "acme",
            Tls::Files { .. } => "files",
        }
    }
}

impl Site {
    /// True when the site answers over HTTPS.
    pub fn tls(&self) -> bool {
        self.tls != Tls::Off
    }

    /// The ports nginx listens on for this site, each with its inventory key.
    pub fn ports(&self) -> Vec<(&'static str, u16)> {
        let mut p = vec![("http_port", self.http_port)];
        if self.tls() {
            p.push(("https_port", self.https_port));
        }
        p
    }

    /// The certificate chain and key nginx loads for this site (none for HTTP only).
    pub fn certificate(&self) -> Option<(String, String)> {
        match &self.tls {
            Tls::Off => None,
            Tls::Acme => Some((
                format!("{}/{}/fullchain.pem", super::CERT_DIR, self.name),
                format!("{}/{}/privkey.pem", super::CERT_DIR, self.name),
            )),
            Tls::Files { certificate, key } => Some((certificate.to_string(), key.to_string())),
        }
    }
}

/// Where ACME certificates come from.
#[derive(Debug, Clone, Serialize)]
pub struct Acme {
    /// The CA's directory URL.
    pub directory: String,
    /// Account email (expiry notices); none registers without one.
    pub email: Option<String>,
    /// A CA bundle on the nodes that signs the ACME server's own HTTPS certificate (a
    /// private CA); certbot is told to trust it, also when its timer renews.
    pub ca_file: Option<NodePath>,
    /// `status` fails when a certificate has fewer days left.
    pub min_days_left: u32,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for Acme {
    fn default() -> Self {
        Acme {
            directory: LETS_ENCRYPT.into(),
            email: None,
            ca_file: None,
            min_days_left: 14,
        }
    }
}

/// Headers every site sends unless it overrides or removes them (`null`).
pub const DEFAULT_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
];

/// The header HTTPS sites add (HSTS), unless overridden or removed.
pub const HSTS: (&str, &str) = ("Strict-Transport-Security", "max-age=31536000");
