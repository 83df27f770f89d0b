//! The systems vds-proxy can build, one folder each (forwarded routes, replicated
//! services, HAProxy, TPROXY, WireGuard, k3s workloads, the web edge, the node registry,
//! compose applications, PostgreSQL backups, the Tailscale policy, the firewall). A system
//! owns everything about itself — its inventory section (model, parsing, validation, the
//! ports it claims, its secrets), its plan (resources and units), the templates it
//! renders, its status checks and anything it must read from the nodes before planning —
//! and implements the traits of [`crate::contract`]; each folder's `register` says which.
//! The one list of them is [`crate::systems`], at the top.
//!
//! Adding a system: see "Adding a system" in docs/development.md.

pub mod backups;
pub mod balancer;
pub mod compose;
pub mod firewall;
pub mod k3s;
pub mod registry;
pub mod replicas;
pub mod routes;
pub mod tailscale;
pub mod tproxy;
pub mod vault;
pub mod web;
pub mod wireguard;
