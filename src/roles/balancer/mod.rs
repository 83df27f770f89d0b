//! HAProxy in front of replicated services: one `haproxy.cfg` per node with a TCP frontend
//! and a health-checked backend per balanced service, reloaded gracefully, running as its
//! own user through a drop-in. Reads the `balancer` object of a service (parsed here,
//! stored with the service).
//!
//! Plan in `plan.rs`; status: each replica's state in HAProxy (`status.sh`).

mod plan;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::replicas::{self, Service};
use super::{Ctx, Output, Role, StatusInput};
use crate::engine::status::Check;
use crate::inventory::{Claims, Collector, Fields, Inventory};
use crate::shell::quote;
use crate::templates::TemplateError;

/// The HAProxy frontend in front of a replicated service.
#[derive(Debug, Clone, Serialize)]
pub struct Balancer {
    pub port: u16,
    pub algorithm: String,
    pub check: String,
    pub transparent: bool,
    pub stats_socket: String,
    pub stats_address: String,
    /// Seconds a scale-down waits for a removed replica's connections to close.
    pub drain_timeout: u32,
    /// Where haproxy reaches the replicas; see [`backend_address`].
    pub backend_address: Option<IpAddr>,
}

const KEYS: &[&str] = &[
    "port",
    "algorithm",
    "check",
    "transparent",
    "stats_socket",
    "stats_address",
    "backend_address",
    "drain_timeout",
];

const ALGORITHMS: &[(&str, &str)] = &[
    ("leastconn", "leastconn"),
    ("roundrobin", "roundrobin"),
    ("source", "source"),
    ("first", "first"),
    ("static-rr", "static-rr"),
];

/// HAProxy's health check timing when the inventory says nothing.
pub const DEFAULT_CHECK: &str = "inter 2000 fall 3 rise 2";

/// A health check's timing, `inter 2000 fall 3 rise 2`: only these settings, each once, with
/// whole numbers; anything else (`disabled`, `addr`, `port`, a comment) is refused, since
/// it would go into haproxy.cfg as it is.
pub fn health_check(text: &str) -> Option<String> {
    const SETTINGS: &[(&str, u32, u32)] = &[
        ("inter", 100, 3_600_000),
        ("fastinter", 100, 3_600_000),
        ("downinter", 100, 3_600_000),
        ("fall", 1, 100),
        ("rise", 1, 100),
    ];
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return None;
    }
    let mut seen = Vec::new();
    for pair in words.chunks(2) {
        let (min, max) = SETTINGS
            .iter()
            .find(|(k, _, _)| *k == pair[0])
            .map(|(_, lo, hi)| (*lo, *hi))?;
        let n: u32 = pair[1].parse().ok()?;
        if !(min..=max).contains(&n) || seen.contains(&pair[0]) {
            return None;
        }
        seen.push(pair[0]);
    }
    Some(words.join(" "))
}

/// Reads a service's `balancer` object at `path`.
pub fn parse(c: &mut Collector, path: &str, v: &Value) -> Option<Balancer> {
    let f = Fields::new(c, path, v, KEYS)?;
    let algorithm = f
        .choice(c, "algorithm", ALGORITHMS, "leastconn")
        .to_string();
    let check = match f.opt_str(c, "check") {
        None => DEFAULT_CHECK.to_string(),
        Some(text) => health_check(&text).unwrap_or_else(|| {
            c.push(
                f.path_of("check"),
                format!("\"{text}\" is not a health check; expected settings from inter, fastinter, downinter (milliseconds), fall and rise (counts), e.g. \"{DEFAULT_CHECK}\""),
            );
            DEFAULT_CHECK.to_string()
        }),
    };
    let stats_socket = f
        .opt_str(c, "stats_socket")
        .unwrap_or_else(|| "/run/haproxy/admin.sock".into());
    let name_ok = stats_socket.strip_prefix("/run/haproxy/").is_some_and(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    if !name_ok {
        c.push(
            f.path_of("stats_socket"),
            "expected a socket in /run/haproxy/ (haproxy runs as user haproxy and can only create it there), e.g. \"/run/haproxy/admin.sock\"",
        );
    }
    let stats_address = f
        .opt_str(c, "stats_address")
        .unwrap_or_else(|| "127.0.0.1:8404".into());
    if stats_address.parse::<std::net::SocketAddr>().is_err() {
        c.push(
            f.path_of("stats_address"),
            format!("\"{stats_address}\" is not an address:port; expected e.g. \"127.0.0.1:8404\""),
        );
    }
    Some(Balancer {
        port: f.opt_port(c, "port").unwrap_or(443),
        algorithm,
        check,
        transparent: f.bool_or(c, "transparent", false),
        stats_socket,
        stats_address,
        backend_address: f.opt_ip(c, "backend_address"),
        drain_timeout: f.opt_uint(c, "drain_timeout", 0, 86_400).unwrap_or(30) as u32,
    })
}

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

/// The address haproxy connects to the replicas of `s` on: the balancer's
/// `backend_address`, else for a transparent balancer the node's mesh or public address
/// (a reply from 127.0.0.1 cannot be routed back to a client address), else 127.0.0.1.
pub fn backend_address(inv: &Inventory, s: &Service) -> Option<IpAddr> {
    let b = s.balancer.as_ref()?;
    if let Some(a) = b.backend_address {
        return Some(a);
    }
    if !b.transparent {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    let node = inv.node(&s.node)?;
    node.tailscale_ip.or(node.public_ip)
}

/// The HAProxy role.
pub struct System;

impl Role for System {
    fn name(&self) -> &'static str {
        "balancer"
    }

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
                                format!("\"{mine}\" differs from $.services[{j}].balancer.{key} (\"{theirs}\"), but the balancers of one node are one HAProxy with one {key}; give every balancer of this node the same value"),
                            );
                        }
                    }
                }
            }
            let usable = backend_address(inv, s).is_some_and(|a| !a.is_loopback());
            if b.transparent && !usable {
                c.push(
                    format!("{base}.balancer.backend_address"),
                    "a transparent balancer needs a non-loopback address of the node to reach its replicas on (replies from 127.0.0.1 cannot be routed back to a client address); set backend_address, or tailscale_ip or public_ip on the node",
                );
            }
        }
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        plan::TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan::plan(ctx, out)
    }

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
                let unit_state = match seen.facts.unit(&unit).active.as_str() {
                    "" => "unknown".to_string(),
                    a => a.to_string(),
                };
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
