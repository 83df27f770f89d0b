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
        // After every system that claims a port: it reads them all.
        firewall::register,
        // It plans nothing; its summary counts every system's secret fields.
        vault::register,
    ])
}
