//! Activation as data: what runs on a host after resources changed. Each action knows its
//! command, the unit it leaves running, its place in the order and which action makes it
//! redundant, so a new kind of activation is one variant here (and, if it needs new shell,
//! one function in the apply script).

use serde::Serialize;

/// What must run on a host after resources changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "action", content = "unit", rename_all = "kebab-case")]
pub enum Action {
    /// `systemctl daemon-reload`: a unit file changed.
    DaemonReload,
    /// `systemctl reload UNIT`: a config it re-reads changed.
    Reload(String),
    /// `systemctl restart UNIT`: its unit file, binary or a config it only reads at start changed.
    Restart(String),
    /// A named command (a shell line) that activates a change, e.g. reloading a firewall;
    /// it must succeed or the apply is rolled back.
    Run { name: String, command: String },
}

impl Action {
    /// The order actions run in: systemd learns about unit files first, then units restart
    /// (new or changed backends come up), then units reload (a balancer finds its backends
    /// up), then commands.
    pub fn phase(&self) -> u8 {
        match self {
            Action::DaemonReload => 0,
            Action::Restart(_) => 1,
            Action::Reload(_) => 2,
            Action::Run { .. } => 3,
        }
    }

    /// The unit this action (re)starts: it must be active afterwards.
    pub fn unit(&self) -> Option<&str> {
        match self {
            Action::Restart(u) | Action::Reload(u) => Some(u),
            Action::DaemonReload | Action::Run { .. } => None,
        }
    }

    /// The `systemctl` verb of a unit action.
    pub fn verb(&self) -> Option<&'static str> {
        match self {
            Action::Restart(_) => Some("restart"),
            Action::Reload(_) => Some("reload"),
            Action::DaemonReload | Action::Run { .. } => None,
        }
    }

    /// The command as a person would type it (dry runs, messages).
    pub fn text(&self) -> String {
        match self {
            Action::DaemonReload => "systemctl daemon-reload".into(),
            Action::Restart(u) => format!("systemctl restart {u}"),
            Action::Reload(u) => format!("systemctl reload {u}"),
            Action::Run { command, .. } => command.clone(),
        }
    }

    /// True when `other`, also due, already does what this action does (a restart of a
    /// unit covers its reload).
    pub fn covered_by(&self, other: &Action) -> bool {
        matches!((self, other), (Action::Reload(a), Action::Restart(b)) if a == b)
    }
}

/// The actions to run when resources with these `on_change` lists changed: deduplicated,
/// without those another covers, in the order they run.
pub fn due<'a>(on_change: impl IntoIterator<Item = &'a Action>) -> Vec<Action> {
    let set: std::collections::BTreeSet<&Action> = on_change.into_iter().collect();
    let mut out: Vec<Action> = set
        .iter()
        .filter(|a| !set.iter().any(|b| a.covered_by(b)))
        .map(|a| (*a).clone())
        .collect();
    out.sort_by_key(Action::phase);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_covers_a_reload_of_the_same_unit_and_order_is_by_phase() {
        let a = [
            Action::Reload("b.service".into()),
            Action::Run {
                name: "fw".into(),
                command: "true".into(),
            },
            Action::Reload("a.service".into()),
            Action::Restart("a.service".into()),
            Action::DaemonReload,
            Action::DaemonReload,
        ];
        let due = due(&a);
        assert_eq!(
            due,
            vec![
                Action::DaemonReload,
                Action::Restart("a.service".into()),
                Action::Reload("b.service".into()),
                Action::Run {
                    name: "fw".into(),
                    command: "true".into()
                },
            ]
        );
    }
}
