//! The systems vds-proxy can build, one folder each (forwarded routes, replicated
//! services, HAProxy, TPROXY, WireGuard, k3s workloads, the web edge, the node registry,
//! compose applications, PostgreSQL backups, the Tailscale policy, the firewall). A system
//! owns everything about itself — its inventory section (model, parsing, validation, the
//! ports it claims, its secrets), its plan (resources and units), the templates it
//! renders, its status checks and anything it must read from the nodes before planning —
//! and implements the traits of [`crate::contract`]; each folder's `register` says which.
//!
//! This file is the one list of them: each folder's module, and [`all`], which the top
//! (`main`) calls and hands down as a [`Systems`]; nothing below names a system. Adding a
//! system touches its folder, two lines here and a row of the README's index (see
//! "Adding a system" in docs/development.md).

pub mod backups;
pub mod balancer;
pub mod compose;
pub mod firewall;
pub mod k3s;
pub mod monitoring;
pub mod registry;
pub mod replicas;
pub mod routes;
pub mod tailscale;
pub mod tproxy;
pub mod vault;
pub mod web;
pub mod wireguard;

use crate::contract::Systems;

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
        monitoring::register,
        // After every system that claims a port: it reads them all.
        firewall::register,
        // It plans nothing; its summary counts every system's secret fields.
        vault::register,
    ])
}
