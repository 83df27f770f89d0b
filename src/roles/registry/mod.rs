//! The node registry and farm discovery API: `vds-proxy serve` on a node, serving the
//! inventory's nodes and the farms that register with it, behind bearer tokens with roles.
//! Inventory key `registries` (here); config, unit and the shared binary in `plan.rs`;
//! status: `/healthz` answers, and the farms by state (`status.sh`).

mod plan;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::contract::Check;
use crate::contract::{self, Ctx, Output, Purge, Status, StatusInput};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, SAFE_NAME, Sections};
use crate::serve::config::Access;
use crate::shell::quote;
use crate::templates::TemplateError;

pub use plan::{CONFIG, UNIT};

/// The registry on one node.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Its JSON path, e.g. `$.registries[0]`.
    pub path: String,
    pub node: String,
    pub listen: IpAddr,
    pub port: u16,
    pub heartbeat_interval: u64,
    pub rate_limit: u32,
    pub access_log: bool,
    pub tokens: Vec<Token>,
}

/// One bearer token of `tokens`.
#[derive(Debug, Clone)]
pub struct Token {
    /// Its JSON path.
    pub path: String,
    pub name: String,
    pub role: Access,
    /// The token itself: a secret, only its SHA-256 reaches the node.
    pub token: String,
    pub farm: Option<IpAddr>,
    pub rate_limit: Option<u32>,
}

#[derive(Debug, Default)]
struct Section {
    registries: Vec<Registry>,
}

/// Every registry of the inventory.
pub fn of(inv: &Inventory) -> &[Registry] {
    &inv.section::<Section>().registries
}

/// The registry on `node`, if it has one.
pub fn on<'a>(inv: &'a Inventory, node: &str) -> Option<&'a Registry> {
    of(inv).iter().find(|r| r.node == node)
}

const KEYS: &[&str] = &[
    "node",
    "listen",
    "port",
    "heartbeat_interval",
    "rate_limit",
    "access_log",
    "tokens",
];
const TOKEN_KEYS: &[&str] = &["name", "role", "token", "farm", "rate_limit"];
/// The shortest token accepted: 24 characters, e.g. `openssl rand -hex 16` gives 32.
const TOKEN_MIN: usize = 24;

/// What is wrong with a token, if anything: 24 to 256 printable characters without spaces,
/// and not a few characters repeated (at least 8 different ones).
fn token_problem(s: &str) -> Option<String> {
    let distinct: std::collections::BTreeSet<u8> = s.bytes().collect();
    if s.len() < TOKEN_MIN || s.len() > 256 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        Some("is not a usable token; expected 24 to 256 printable characters without spaces, e.g. from `openssl rand -hex 16`".into())
    } else if distinct.len() < 8 {
        Some("has fewer than 8 different characters, which a guess finds at once; use e.g. `openssl rand -hex 16`".into())
    } else {
        None
    }
}

fn registry(c: &mut Collector, path: &str, v: &Value) -> Option<Registry> {
    let f = Fields::new(c, path, v, KEYS)?;
    let node = f.req_ref(c, "node").unwrap_or_default();
    let listen = f.opt_ip(c, "listen").unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let port = f.opt_port(c, "port").unwrap_or(8080);
    let heartbeat_interval = f.opt_uint(c, "heartbeat_interval", 1, 86_400).unwrap_or(30);
    let rate_limit = f.opt_uint(c, "rate_limit", 0, 1_000_000).unwrap_or(50) as u32;
    let access_log = f.bool_or(c, "access_log", true);
    let tokens = f.objects(c, "tokens", token);
    if tokens.is_empty() && f.get("tokens").is_none() {
        c.push(
            f.path_of("tokens"),
            "required tokens are missing; without one nobody can use the API. Add {\"name\": \"web\", \"role\": \"reader\", \"token\": \"…\"}",
        );
    }
    Some(Registry {
        path: path.to_string(),
        node,
        listen,
        port,
        heartbeat_interval,
        rate_limit,
        access_log,
        tokens,
    })
}

fn token(c: &mut Collector, path: &str, v: &Value) -> Option<Token> {
    let f = Fields::new(c, path, v, TOKEN_KEYS)?;
    let name = f.req_checked_str(c, "name", &SAFE_NAME);
    let role = f.choice(
        c,
        "role",
        &[
            ("reader", Access::Reader),
            ("farm", Access::Farm),
            ("admin", Access::Admin),
        ],
        Access::Reader,
    );
    if f.get("role").is_none() {
        c.push(
            f.path_of("role"),
            "required role is missing; expected \"reader\", \"farm\" or \"admin\"",
        );
    }
    let token = f.req_secret(c, "token", token_problem);
    let farm = f.opt_ip(c, "farm");
    match (role, farm) {
        (Access::Farm, None) if f.get("farm").is_none() => c.push(
            f.path_of("farm"),
            "a farm token needs \"farm\": the Tailscale address it may register, e.g. \"100.64.0.7\"",
        ),
        (Access::Reader | Access::Admin, Some(_)) => c.push(
            f.path_of("farm"),
            "only tokens with role \"farm\" are tied to a farm; remove it or set role to \"farm\"",
        ),
        _ => {}
    }
    let rate_limit = f.opt_uint(c, "rate_limit", 0, 1_000_000).map(|n| n as u32);
    Some(Token {
        path: path.to_string(),
        name: name?,
        role,
        token: token?,
        farm,
        rate_limit,
    })
}

fn validate(inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
    let mut nodes: BTreeMap<&str, &str> = BTreeMap::new();
    // A token on more than one registry must grant the same there as here.
    let mut everywhere: BTreeMap<&str, (&Token, &str)> = BTreeMap::new();
    for r in of(inv) {
        for t in &r.tokens {
            match everywhere.get(t.token.as_str()) {
                Some((first, at)) if first.role != t.role && *at != r.path => c.push(
                    format!("{}.role", t.path),
                    format!(
                        "its token (not shown) is also {}'s on another registry, with another role; give each role its own token",
                        first.path
                    ),
                ),
                Some(_) => {}
                None => {
                    everywhere.insert(&t.token, (t, &r.path));
                }
            }
        }
    }
    for r in of(inv) {
        if !inv.check_node_ref(c, &format!("{}.node", r.path), &r.node) {
            continue;
        }
        if let Some(first) = nodes.insert(&r.node, &r.path) {
            c.push(
                format!("{}.node", r.path),
                format!(
                    "node {} already has a registry ({first}); one per node",
                    r.node
                ),
            );
        }
        claims.port(inv, c, &r.node, r.port, format!("{}.port", r.path));
        let mut names: BTreeMap<&str, &str> = BTreeMap::new();
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        for t in &r.tokens {
            if let Some(first) = names.insert(&t.name, &t.path) {
                c.push(
                    format!("{}.name", t.path),
                    format!(
                        "{:?} is also the name of {first}; names must differ (the log shows them)",
                        t.name
                    ),
                );
            }
            if let Some(first) = values.insert(&t.token, &t.path) {
                c.push(
                    format!("{}.token", t.path),
                    format!("is the same token as {first}; give each holder its own"),
                );
            }
        }
    }
}

/// The registry role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["registries"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let registries = top.objects(c, "registries", registry);
        into.insert(Section { registries });
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        validate(inv, c, claims);
    }

    fn secrets(&self, inv: &Inventory) -> Vec<String> {
        of(inv)
            .iter()
            .flat_map(|r| r.tokens.iter().map(|t| t.token.clone()))
            .collect()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        let n = of(inv).len();
        (n > 0).then(|| format!("{n} registr{}", if n == 1 { "y" } else { "ies" }))
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
        match on(inv, node) {
            Some(r) => {
                let host = match r.listen {
                    IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
                    IpAddr::V6(ip) if ip.is_unspecified() => "::1".to_string(),
                    ip => ip.to_string(),
                };
                format!(
                    "{}\nregistry_health {} {}\n",
                    include_str!("status.sh"),
                    quote(&host),
                    r.port
                )
            }
            None => String::new(),
        }
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        let Some(r) = on(inv, node) else {
            return Vec::new();
        };
        let line = seen
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("@registry "))
            .unwrap_or("fail no answer from the status script");
        let (state, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (ok, detail) = if state == "ok" {
            match serde_json::from_str::<Value>(rest) {
                Ok(v) if v["status"] == "ok" => {
                    let n = |s: &str| v["farms"][s].as_u64().unwrap_or(0);
                    (
                        true,
                        format!(
                            "answers on :{}; farms: {} online, {} stale, {} offline",
                            r.port,
                            n("online"),
                            n("stale"),
                            n("offline")
                        ),
                    )
                }
                _ => (false, format!("/healthz on :{} answered {rest:?}", r.port)),
            }
        } else {
            (false, format!("/healthz on :{}: {rest}", r.port))
        };
        vec![Check::new(node, "registry", ok, detail)]
    }
}

impl Purge for System {
    fn purge_script(&self, inv: &Inventory, node: &str) -> String {
        if on(inv, node).is_none() {
            return String::new();
        }
        format!(
            "for d in {} {}; do if [ -e \"$d\" ] || [ -L \"$d\" ]; then rm -rf \"$d\" && echo \"@purged $d\"; fi; done\n",
            plan::STATE_PRIVATE,
            plan::STATE_LINK
        )
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut contract::Systems) {
    r.all.push(&System);
    r.status.push(&System);
    r.purge.push(&System);
}
