//! iptables rule sets loaded with `iptables-restore --noflush`, tested with `--test` before
//! they go live. Only chains vds-proxy declares are replaced; other rules are left alone.

use crate::resources::{Action, Kind, KindOps, Resource};
use crate::shell::quote;

/// An iptables rule set (`iptables-restore` input); its manifest name is `firewall`.
pub const IPTABLES: Kind = Kind::new("firewall", &FirewallOps);

/// Behaviour of [`IPTABLES`].
pub struct FirewallOps;

impl KindOps for FirewallOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!(
            "iptables-restore --test --noflush {}",
            quote(staged)
        ))
    }
}

/// A rules file at `path` that unit `owner` loads; a change reloads that unit, which loads
/// the file again without taking the rules down first.
pub fn rules(path: &str, text: String, owner: &str) -> Resource {
    Resource::text(IPTABLES, path, text, 0o644).on_change(Action::Reload(owner.into()))
}
