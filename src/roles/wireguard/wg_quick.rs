//! WireGuard interface configs for `wg-quick`, checked with `wg-quick strip` before they go
//! live. The private key lives next to the config on the node and is never read by
//! vds-proxy; it goes away with the config.

use crate::resources::{Action, Kind, KindOps, Resource};
use crate::shell::quote;

/// Where wg-quick looks for interface configs (and vds-proxy keeps the node's key).
pub const DIR: &str = "/etc/wireguard";

/// A WireGuard interface config (`wg-quick`).
pub const WG_QUICK: Kind = Kind::new("wireguard", &WireguardOps);

/// Behaviour of [`WG_QUICK`].
pub struct WireguardOps;

impl KindOps for WireguardOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("wg-quick strip {} >/dev/null", quote(staged)))
    }

    fn also_remove(&self, path: &str) -> Vec<String> {
        path.strip_suffix(".conf")
            .map(|stem| vec![format!("{stem}.key")])
            .unwrap_or_default()
    }
}

/// The unit that brings interface `iface` up.
pub fn unit(iface: &str) -> String {
    format!("wg-quick@{iface}.service")
}

/// The private key file of interface `iface`.
pub fn key_file(iface: &str) -> String {
    format!("{DIR}/{iface}.key")
}

/// The config of interface `iface`; a change is applied with `wg syncconf` (the unit's
/// reload), so the tunnel stays up.
pub fn config(iface: &str, text: String) -> Resource {
    Resource::text(WG_QUICK, format!("{DIR}/{iface}.conf"), text, 0o600)
        .on_change(Action::Reload(unit(iface)))
}
