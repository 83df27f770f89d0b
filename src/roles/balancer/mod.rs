//! HAProxy in front of replicated services: one `haproxy.cfg` per node with a TCP frontend
//! and a health-checked backend per balanced service, reloaded gracefully, running as its
//! own user through a drop-in. Plans from the `balancer` object of a service, which the
//! replicas' section reads (`replicas::balancer`).
//!
//! Plan in `plan.rs`; status: each replica's state in HAProxy (`status.sh`).

pub mod haproxy;
mod plan;

use std::collections::BTreeMap;

pub use super::replicas::balancer::{Balancer, DEFAULT_CHECK, backend_address, health_check};
use super::replicas::{self, Service};
use crate::contract::Check;
use crate::contract::{self, Ctx, Output, Status, StatusInput, Systems};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, Sections};
use crate::shell::quote;
use crate::templates::TemplateError;

/// The services on `node` that have a balancer, each with its balancer.
pub fn balanced_on<'a>(
    inv: &'a Inventory,
    node: &'a str,
) -> impl Iterator<Item = (&'a Service, &'a Balancer)> + 'a {
    replicas::of(inv)
        .iter()
        .filter(move |s| s.node == node)
        .filter_map(|s| Some((s, s.balancer.as_ref()?)))
}

/// The HAProxy role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "balancer"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[]
    }

    fn parse(&self, _top: &Fields, _c: &mut Collector, _into: &mut Sections) {}

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        // One haproxy per node: the first balancer on a node sets its stats socket and page.
        let mut first_on: BTreeMap<&str, (usize, &Balancer)> = BTreeMap::new();
        for (i, s) in replicas::of(inv).iter().enumerate() {
            let Some(b) = &s.balancer else { continue };
            let base = format!("$.services[{i}]");
            claims.port(inv, c, &s.node, b.port, format!("{base}.balancer.port"));
            match first_on.get(s.node.as_str()) {
                None => {
                    first_on.insert(&s.node, (i, b));
                    if let Ok(a) = b.stats_address.parse::<std::net::SocketAddr>() {
                        let what = format!("{base}.balancer.stats_address (HAProxy's stats page)");
                        claims.port(inv, c, &s.node, a.port(), what);
                    }
                }
                Some((j, first)) => {
                    for (key, mine, theirs) in [
                        ("stats_socket", &b.stats_socket, &first.stats_socket),
                        ("stats_address", &b.stats_address, &first.stats_address),
                    ] {
                        if mine != theirs {
                            c.push(
                                format!("{base}.balancer.{key}"),
                                format!(
                                    "\"{mine}\" differs from $.services[{j}].balancer.{key} (\"{theirs}\"), but the \
                                     balancers of one node are one HAProxy with one {key}; give every balancer of \
                                     this node the same value"
                                ),
                            );
                        }
                    }
                }
            }
            let usable = backend_address(inv, s).is_some_and(|a| !a.is_loopback());
            if b.transparent && !usable {
                c.push(
                    format!("{base}.balancer.backend_address"),
                    "a transparent balancer needs a non-loopback address of the node to reach its replicas on \
                     (replies from 127.0.0.1 cannot be routed back to a client address); set backend_address, \
                     or tailscale_ip or public_ip on the node",
                );
            }
        }
    }

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, _inv: &Inventory) -> Option<String> {
        None
    }
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        plan::TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan::plan(ctx, out)
    }
}

impl Status for System {
    fn status_script(&self, inv: &Inventory, node: &str) -> String {
        let mut sockets: Vec<String> = balanced_on(inv, node)
            .map(|(_, b)| quote(&b.stats_socket))
            .collect();
        if sockets.is_empty() {
            return String::new();
        }
        sockets.sort();
        sockets.dedup();
        format!(
            "{}haproxy_stats {}\n",
            include_str!("status.sh"),
            sockets.join(" ")
        )
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        let mut state: BTreeMap<(String, String), String> = BTreeMap::new();
        for line in seen.stdout.lines().filter_map(|l| l.strip_prefix("@stat ")) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() > 17 && !line.starts_with('#') {
                state.insert((f[0].to_string(), f[1].to_string()), f[17].to_string());
            }
        }
        let no_socat = seen.stdout.lines().any(|l| l == "@stat-nosocat");
        let mut out = Vec::new();
        for (s, _) in balanced_on(inv, node) {
            for n in 1..=s.replicas {
                let server = format!("{}-{n}", s.name);
                let unit = replicas::instance(s, n);
                let unit_state = seen.unit_active(&unit).to_string();
                let (ok, detail) = match state.get(&(s.name.clone(), server.clone())) {
                    _ if no_socat => (
                        false,
                        "cannot read the stats socket: socat is not installed on the host"
                            .to_string(),
                    ),
                    None => (
                        false,
                        format!("not in haproxy's stats (unit {unit} {unit_state}); run deploy"),
                    ),
                    Some(st) => (
                        st == "UP" || st == "DRAIN",
                        format!("{st} (unit {unit} {unit_state})"),
                    ),
                };
                out.push(Check::new(
                    node,
                    format!("backend {}/{server}", s.name),
                    ok,
                    detail,
                ));
            }
        }
        out
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.push(haproxy::HAPROXY);
    r.all.push(&System);
    r.status.push(&System);
}

#[cfg(test)]
mod tests {
    use super::health_check;

    #[test]
    fn a_health_check_is_only_timing_settings() {
        assert_eq!(
            health_check("inter  2000 fall 3   rise 2").as_deref(),
            Some("inter 2000 fall 3 rise 2")
        );
        assert!(health_check("fastinter 500 downinter 1000").is_some());
        for bad in [
            "",
            "inter 2000 disabled addr 10.9.9.9 port 22 # x",
            "inter",
            "inter 2000 inter 3000",
            "fall 0",
            "rise two",
        ] {
            assert_eq!(health_check(bad), None, "{bad}");
        }
    }
}
