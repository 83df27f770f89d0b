//! Routes: a public port on a proxy node forwarded to a port on a target node, by the
//! bundled relay (one process for all of a node's routes) or by socat units exactly as
//! `vds_proxy.sh` wrote them.
//!
//! Inventory key `routes`; plan in `plan.rs`; status: each route's port listens on its
//! proxy node and is probed end to end.

mod plan;

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use serde_json::Value;

use crate::contract::Check;
use crate::contract::{self, Ctx, Output, Probe, Probes, Status, StatusInput, Systems, Table};
use crate::inventory::SectionReader;
use crate::inventory::{
    Claims, Collector, Fields, HOSTNAME, Inventory, SAFE_NAME, Sections, name_of,
};
use crate::templates::TemplateError;

pub use plan::{RELAY_CONFIG, RELAY_METRICS_PORT, RELAY_UNIT, socat_unit_name};

/// Which program forwards a route's port on its proxy node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarder {
    /// The relay bundled in vds-proxy (`vds-proxy relay`), one process per node.
    Relay,
    /// `socat TCP-LISTEN:...,fork`, exactly as `vds_proxy.sh` deployed it.
    Socat,
}

const FORWARDERS: &[(&str, Forwarder)] =
    &[("relay", Forwarder::Relay), ("socat", Forwarder::Socat)];

impl Forwarder {
    /// The name used in the inventory and in tables.
    pub fn as_str(self) -> &'static str {
        name_of(FORWARDERS, self)
    }
}

/// A public port on a proxy node forwarded to a port on a target node.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub domain: Option<String>,
    pub port: u16,
    /// Address the proxy node listens on (default `0.0.0.0`).
    pub listen: IpAddr,
    pub proxy_node: String,
    pub target_node: String,
    pub target_port: u16,
    pub service: String,
    pub ssl: bool,
    pub description: Option<String>,
    pub forwarder: Forwarder,
    /// What the relay logs for this route.
    pub log: RouteLog,
}

/// What the relay logs for a route: a line per connection, only failures, or nothing (for
/// high-rate routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteLog {
    All,
    Errors,
    Off,
}

const LOG_LEVELS: &[(&str, RouteLog)] = &[
    ("all", RouteLog::All),
    ("errors", RouteLog::Errors),
    ("off", RouteLog::Off),
];

impl RouteLog {
    /// The name in the inventory and the relay's config.
    pub fn as_str(self) -> &'static str {
        name_of(LOG_LEVELS, self)
    }
}

/// The routes of the inventory.
#[derive(Debug, Default)]
struct Section(Vec<Route>);

/// The routes of `inv`.
pub fn of(inv: &Inventory) -> &[Route] {
    &inv.section::<Section>().0
}

const KEYS: &[&str] = &[
    "domain",
    "port",
    "listen",
    "proxy_node",
    "target_node",
    "target_port",
    "service",
    "ssl",
    "description",
    "forwarder",
    "log",
];

fn parse_route(c: &mut Collector, path: &str, v: &Value) -> Option<Route> {
    let f = Fields::new(c, path, v, KEYS)?;
    let forwarder = f.choice(c, "forwarder", FORWARDERS, Forwarder::Relay);
    Some(Route {
        domain: f.checked_str(c, "domain", &HOSTNAME),
        port: f.req_port(c, "port").unwrap_or(0),
        listen: f
            .opt_ip(c, "listen")
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        proxy_node: f.req_ref(c, "proxy_node").unwrap_or_default(),
        target_node: f.req_ref(c, "target_node").unwrap_or_default(),
        target_port: f.req_port(c, "target_port").unwrap_or(0),
        service: f
            .req_checked_str(c, "service", &SAFE_NAME)
            .unwrap_or_default(),
        ssl: f.bool_or(c, "ssl", false),
        description: f.description(c, "description"),
        forwarder,
        log: f.choice(c, "log", LOG_LEVELS, RouteLog::All),
    })
}

/// The routes table, as `vds_proxy.sh show` printed it.
pub fn table(inv: &Inventory) -> String {
    let mut rows = vec![[
        "DOMAIN".to_string(),
        "PORT".into(),
        "PROXY".into(),
        "TARGET".into(),
        "SERVICE".into(),
        "FORWARDER".into(),
    ]];
    for r in of(inv) {
        let target_ip = inv
            .node(&r.target_node)
            .and_then(|n| n.mesh_address())
            .map(|ip| format!(" ({ip})"))
            .unwrap_or_default();
        rows.push([
            r.domain.clone().unwrap_or_else(|| "-".into()),
            r.port.to_string(),
            r.proxy_node.clone(),
            format!("{}:{}{}", r.target_node, r.target_port, target_ip),
            r.service.clone(),
            r.forwarder.as_str().to_string(),
        ]);
    }
    crate::contract::table::table(&rows)
}

/// The routes role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "routes"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["routes"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let routes = top.objects(c, "routes", parse_route);
        into.insert(Section(routes));
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        // The relay's counters, on the loopback of each node that runs it.
        let relays: std::collections::BTreeSet<&str> = of(inv)
            .iter()
            .filter(|r| r.forwarder == Forwarder::Relay)
            .map(|r| r.proxy_node.as_str())
            .collect();
        for node in relays {
            claims.local_port(
                inv,
                c,
                node,
                plan::RELAY_METRICS_PORT,
                "$.routes (the relay's metrics, on 127.0.0.1)".into(),
            );
        }
        for (i, r) in of(inv).iter().enumerate() {
            let base = format!("$.routes[{i}]");
            inv.check_node_ref(c, &format!("{base}.proxy_node"), &r.proxy_node);
            if inv.check_node_ref(c, &format!("{base}.target_node"), &r.target_node)
                && inv
                    .node(&r.target_node)
                    .is_some_and(|t| t.mesh_address().is_none())
            {
                c.push(
                    format!("{base}.target_node"),
                    format!(
                        "target node \"{}\" has no address to forward to; give it a tailscale_ip or public_ip",
                        r.target_node
                    ),
                );
            }
            claims.port(inv, c, &r.proxy_node, r.port, format!("{base}.port"));
            if r.proxy_node == r.target_node && r.port == r.target_port && r.port != 0 {
                c.push(
                    format!("{base}.target_port"),
                    format!(
                        "the route would forward port {} of \"{}\" to itself; point it at the port the service listens on",
                        r.port, r.proxy_node
                    ),
                );
            }
            if r.forwarder == Forwarder::Socat && r.log != RouteLog::All {
                c.push(
                    format!("{base}.log"),
                    "socat routes log nothing of their own; \"log\" is for the relay (the default forwarder)",
                );
            }
            if r.forwarder == Forwarder::Socat && r.listen.is_ipv6() {
                c.push(
                    format!("{base}.listen"),
                    "a socat route listens on an IPv4 address; use the relay (the default forwarder) to listen on IPv6",
                );
            }
        }
    }

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        Some(format!("{} route(s)", of(inv).len()))
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

impl Table for System {
    fn table(&self, inv: &Inventory) -> Option<(&'static str, String)> {
        Some(("routes", table(inv)))
    }
}

impl Status for System {
    fn status_script(&self, _inv: &Inventory, _node: &str) -> String {
        String::new()
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        of(inv)
            .iter()
            .filter(|r| r.proxy_node == node)
            .map(|r| {
                let ok = seen.listening.contains(&r.port);
                Check::new(
                    node,
                    format!("port {}", r.port),
                    ok,
                    if ok { "listening" } else { "nothing listens" },
                )
            })
            .collect()
    }
}

impl Probes for System {
    fn probes(&self, inv: &Inventory, node: &str) -> Vec<Probe> {
        of(inv)
            .iter()
            .filter(|r| r.proxy_node == node)
            .filter_map(|r| {
                let proxy = inv.node(&r.proxy_node)?;
                let host = proxy
                    .public_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| proxy.ssh_destination());
                Some(Probe {
                    node: r.proxy_node.clone(),
                    check: format!("route {}:{}", r.service, r.port),
                    reached: format!(
                        "{host}:{} reaches {}:{}",
                        r.port, r.target_node, r.target_port
                    ),
                    host,
                    port: r.port,
                })
            })
            .collect()
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.all.push(&System);
    r.tables.push(&System);
    r.status.push(&System);
    r.probes.push(&System);
}
