//! ACME certificate requests: one small file per certificate naming its domains and CA.
//! What the file asks for is done by a command (certbot) after nginx reloaded; removing
//! the file takes the certificate back (certbot's lineage and the installed links) once the
//! host converged.

use crate::resources::{Kind, KindOps, Resource};
use crate::shell::quote;

/// The tool that issues, checks and forgets certificates on the node.
pub const TOOL: &str = "/usr/local/lib/vds-proxy/web-certs";
/// Where the request files live: `NAME.conf`.
pub const DIR: &str = "/etc/vds-proxy/web/acme";

/// An ACME certificate request (certbot).
pub const ACME: Kind = Kind::new("acme", &AcmeOps);

/// Behaviour of [`ACME`].
pub struct AcmeOps;

impl KindOps for AcmeOps {
    fn validate(&self, _res: &Resource, _staged: &str) -> Option<String> {
        None
    }

    /// The certificate goes only once the host converged: a unit failing later in the
    /// same apply rolls back to an nginx config that still names it.
    fn after_remove(&self, path: &str) -> Option<String> {
        let name = path.rsplit('/').next()?.strip_suffix(".conf")?;
        Some(format!("{TOOL} forget {}", quote(name)))
    }
}

/// The request file of certificate `name`.
pub fn request(name: &str, text: String) -> Resource {
    Resource::text(ACME, format!("{DIR}/{name}.conf"), text, 0o644)
}
