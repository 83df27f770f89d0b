//! systemd drop-ins (`UNIT.d/NAME.conf`) for units vds-proxy does not own, verified together
//! with the unit they extend before they go live.

use super::{Action, Kind, KindOps, Resource, UnitFileToVerify};
use crate::shell::quote;

/// Behaviour of [`super::DROPIN`].
pub struct DropInOps;

impl KindOps for DropInOps {
    fn validate(&self, res: &Resource, staged: &str) -> Option<String> {
        let unit = unit_of(&res.path)?;
        // Verify the unit as it will be: its own file followed by the drop-in.
        Some(format!("verify_dropin {} {}", quote(unit), quote(staged)))
    }

    fn systemd(&self) -> bool {
        true
    }

    fn unit_file_to_verify(&self, res: &Resource, staged: &str) -> Option<UnitFileToVerify> {
        let unit = unit_of(&res.path)?;
        let file = format!("{}/{unit}", staged.rsplit_once('/')?.0);
        Some(UnitFileToVerify {
            prepare: Some(format!("dropin_unit {} {}", quote(unit), quote(staged))),
            file,
        })
    }
}

/// The unit a drop-in at `path` extends (`/etc/systemd/system/haproxy.service.d/x.conf` →
/// `haproxy.service`).
pub fn unit_of(path: &str) -> Option<&str> {
    let dir = path.rsplit_once('/')?.0;
    dir.rsplit('/').next()?.strip_suffix(".d")
}

/// Drop-in `name` for `unit`; a change reloads systemd and restarts the unit (what a drop-in
/// sets only takes effect when the unit starts).
pub fn drop_in(unit: &str, name: &str, text: String) -> Resource {
    Resource::text(
        Kind::DROPIN,
        format!("{}/{unit}.d/{name}", super::unit::UNIT_DIR),
        text,
        0o644,
    )
    .on_change(Action::DaemonReload)
    .on_change(Action::Restart(unit.into()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_drop_in_names_the_unit_it_extends() {
        assert_eq!(
            super::unit_of("/etc/systemd/system/haproxy.service.d/vds-proxy.conf"),
            Some("haproxy.service")
        );
        assert_eq!(super::unit_of("/etc/haproxy/haproxy.cfg"), None);
    }
}
