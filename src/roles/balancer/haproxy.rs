//! HAProxy configuration files, validated with `haproxy -c` before they go live.

use crate::resources::{Action, Kind, KindOps, Resource};
use crate::shell::quote;

/// Where Debian's haproxy reads its configuration.
pub const CONFIG: &str = "/etc/haproxy/haproxy.cfg";
/// The unit of Debian's haproxy package; reloads are graceful (master-worker, USR2).
pub const UNIT: &str = "haproxy.service";

/// An HAProxy configuration.
pub const HAPROXY: Kind = Kind::new("haproxy", &HaproxyOps);

/// Behaviour of [`HAPROXY`].
pub struct HaproxyOps;

impl KindOps for HaproxyOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("haproxy -c -q -f {}", quote(staged)))
    }
}

/// The haproxy.cfg resource; a change reloads haproxy, never restarts it.
pub fn config(text: String) -> Resource {
    Resource::text(HAPROXY, CONFIG, text, 0o644).on_change(Action::Reload(UNIT.into()))
}
