//! The one list of systems, owned by the top: the commands hand it down to everything
//! below as a [`Systems`]; nothing below names a system.

use crate::contract::Systems;
use crate::roles::{
    backups, balancer, compose, firewall, k3s, registry, replicas, routes, tailscale, tproxy,
    vault, web, wireguard,
};

/// Every system, in the order their resources are laid out in a plan (and their sections
/// are read and checked).
pub fn all() -> Systems {
    Systems::of(&[
        // First: it reads nothing of the others, and its verbs read every system's secrets.
        vault::register,
        routes::register,
        replicas::register,
        tproxy::register,
        balancer::register,
        wireguard::register,
        k3s::register,
        web::register,
        registry::register,
        compose::register,
        backups::register,
        tailscale::register,
        // Last: it reads the ports every other system claims.
        firewall::register,
    ])
}
