//! nginx's main configuration, validated with `nginx -t` before it goes live and reloaded
//! gracefully (never restarted) when it changed.

use crate::resources::{Action, Kind, KindOps, Resource};
use crate::shell::quote;

/// Where Debian's nginx reads its configuration.
pub const CONFIG: &str = "/etc/nginx/nginx.conf";
/// The unit of Debian's nginx package.
pub const UNIT: &str = "nginx.service";

/// An nginx configuration.
pub const NGINX: Kind = Kind::new("nginx", &NginxOps);

/// Behaviour of [`NGINX`].
pub struct NginxOps;

impl KindOps for NginxOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("nginx -t -q -c {}", quote(staged)))
    }
}

/// Prints when systemd last started or reloaded nginx (Unix seconds, from the journal;
/// nothing when the journal no longer says).
pub const LAST_LOAD: &str = "journalctl -u nginx.service -n 200 -o short-unix --no-pager -q 2>/dev/null | grep -E \
'systemd\\[1\\]: (Reloaded|Started) ' | tail -n 1 | cut -d. -f1";

/// Fails when nginx.conf changed after nginx last loaded it (a deploy cut short between
/// writing it and reloading): what the file says is not in effect.
fn loaded_check() -> String {
    format!(
        "m=$(stat -c %Y {CONFIG}) && l=$({LAST_LOAD}) && {{ [ -z \"$l\" ] || [ \"$m\" -le \"$l\" ]; }}"
    )
}

/// The nginx.conf resource; a change reloads nginx.
pub fn config(text: String) -> Resource {
    Resource::text(NGINX, CONFIG, text, 0o644)
        .on_change(Action::Reload(UNIT.into()))
        .live_check(loaded_check())
}
