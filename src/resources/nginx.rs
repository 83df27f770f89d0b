//! nginx's main configuration, validated with `nginx -t` before it goes live and reloaded
//! gracefully (never restarted) when it changed.

use super::{Action, Kind, KindOps, Resource};
use crate::shell::quote;

/// Where Debian's nginx reads its configuration.
pub const CONFIG: &str = "/etc/nginx/nginx.conf";
/// The unit of Debian's nginx package.
pub const UNIT: &str = "nginx.service";

/// Behaviour of [`super::Kind::Nginx`].
pub struct NginxOps;

impl KindOps for NginxOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("nginx -t -q -c {}", quote(staged)))
    }
}

/// Fails when nginx.conf changed after systemd last started or reloaded nginx (a deploy
/// cut short between writing it and reloading): what the file says is not in effect.
const LOADED_CHECK: &str = "m=$(stat -c %Y /etc/nginx/nginx.conf) && l=$(journalctl -u nginx.service -n 200 -o short-unix --no-pager -q 2>/dev/null | grep -E 'systemd\\[1\\]: (Reloaded|Started) ' | tail -n 1 | cut -d. -f1) && { [ -z \"$l\" ] || [ \"$m\" -le \"$l\" ]; }";

/// The nginx.conf resource; a change reloads nginx.
pub fn config(text: String) -> Resource {
    Resource::text(Kind::Nginx, CONFIG, text, 0o644)
        .on_change(Action::Reload(UNIT.into()))
        .live_check(LOADED_CHECK)
}
