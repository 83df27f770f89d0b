//! The `balancer` object of a service (HAProxy in front of its replicas): read with the
//! service, into its section; the HAProxy system plans from it.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use super::Service;
use crate::inventory::{Collector, Fields, Inventory};

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
                format!("\"{text}\" is not a health check; expected settings from inter, fastinter, downinter \
                (milliseconds), fall and rise (counts), e.g. \"{DEFAULT_CHECK}\""),
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
