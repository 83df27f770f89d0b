//! systemd unit files, validated with `systemd-analyze verify` before they go live.

use super::{Action, Kind, KindOps, Part, Resource, UnitFileToVerify, UnitSpec};
use crate::shell::quote;

/// Directory unit files are installed to.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// Behaviour of [`super::Kind::UNIT`].
pub struct UnitOps;

impl KindOps for UnitOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        // The staged copy keeps the unit's file name, so verify sees the right unit type.
        Some(format!("verify_unit {}", quote(staged)))
    }

    fn systemd(&self) -> bool {
        true
    }

    fn unit_file_to_verify(&self, _res: &Resource, staged: &str) -> Option<UnitFileToVerify> {
        Some(UnitFileToVerify {
            prepare: None,
            file: staged.to_string(),
        })
    }
}

/// A unit file resource named `name` (e.g. `vds-relay.service`) with its rendered text.
/// Changing it reloads systemd and restarts `restart` (the unit itself, or for a template
/// unit, each of its instances).
pub fn unit_file(name: &str, text: String, restart: &[String]) -> Resource {
    let mut r = Resource::text(Kind::UNIT, format!("{UNIT_DIR}/{name}"), text, 0o644)
        .on_change(Action::DaemonReload);
    for u in restart {
        r = r.on_change(Action::Restart(u.clone()));
    }
    r
}

/// A unit that must be enabled and started, listening on `ports`.
pub fn running(name: &str, ports: Vec<u16>) -> UnitSpec {
    UnitSpec {
        name: name.to_string(),
        enable: true,
        start: true,
        late_stop: false,
        drain_secs: 0,
        part: Part::default(),
        ports,
        settle: None,
    }
}

/// The file name of a unit file that lies directly in [`UNIT_DIR`] (not a drop-in below it).
pub fn file_name(path: &str) -> Option<&str> {
    path.strip_prefix(UNIT_DIR)?
        .strip_prefix('/')
        .filter(|name| !name.contains('/'))
}

/// Whether the unit file at `path` defines `unit` (itself, or the template of an instance).
pub fn serves(path: &str, unit: &str) -> bool {
    if let Some(extended) = super::dropin::unit_of(path) {
        return extended == unit;
    }
    let file = path.rsplit('/').next().unwrap_or_default();
    file == unit
        || unit.split_once('@').is_some_and(|(prefix, rest)| {
            let suffix = rest.rsplit_once('.').map(|(_, s)| s).unwrap_or("service");
            file == format!("{prefix}@.{suffix}")
        })
}

#[cfg(test)]
mod tests {
    use super::serves;

    #[test]
    fn a_unit_file_serves_itself_and_its_template_instances() {
        assert!(serves(
            "/etc/systemd/system/vds-relay.service",
            "vds-relay.service"
        ));
        assert!(serves(
            "/etc/systemd/system/mtproxy@.service",
            "mtproxy@2.service"
        ));
        assert!(!serves(
            "/etc/systemd/system/mtproxy@.service",
            "mtproxy.service"
        ));
        assert!(!serves(
            "/etc/systemd/system/other@.service",
            "mtproxy@1.service"
        ));
    }
}
