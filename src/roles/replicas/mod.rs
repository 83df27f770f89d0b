//! Replicated services: one systemd template unit `{service}@.service` and one instance
//! per replica, replica n listening on `base_port + n - 1` — run as a command, or as a
//! container image. A service's `balancer` (HAProxy in front of it) is read here and
//! planned by the balancer role.
//!
//! Inventory key `services`; plan in `plan.rs`.

mod plan;

use serde::Serialize;
use serde_json::Value;

use super::balancer::{self, Balancer};
use super::{Ctx, Output, Role};
use crate::inventory::{Claims, Collector, Fields, Inventory, SAFE_NAME, Sections, is_one_line};
use crate::templates::TemplateError;

pub use plan::instance;

/// A service run as N identical replicas on one node.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub node: String,
    /// How many instances run.
    pub replicas: u32,
    /// Port of replica 1; replica n listens on `base_port + n - 1`.
    pub base_port: u16,
    /// Command line of one replica; `{port}` and `{secret}` are substituted per instance.
    pub exec: Vec<String>,
    /// A secret handed to the replicas (e.g. the MTProxy 32-hex secret); never printed.
    #[serde(skip)]
    pub secret: Option<String>,
    pub description: Option<String>,
    pub balancer: Option<Balancer>,
    /// Run each replica as this container image (`docker run`); `exec` then holds extra
    /// arguments for the container.
    pub image: Option<String>,
    /// The port the container listens on inside (the MTProxy image: 443).
    pub container_port: u16,
}

impl Service {
    /// Port of replica `n` (1-based).
    pub fn replica_port(&self, n: u32) -> u16 {
        self.base_port + (n as u16) - 1
    }
}

#[derive(Debug, Default)]
struct Section(Vec<Service>);

/// The replicated services of `inv`.
pub fn of(inv: &Inventory) -> &[Service] {
    &inv.section::<Section>().0
}

const KEYS: &[&str] = &[
    "name",
    "node",
    "replicas",
    "base_port",
    "exec",
    "secret",
    "description",
    "balancer",
    "image",
    "container_port",
];

/// A container image reference: one word of printable characters.
pub fn image(c: &mut Collector, f: &Fields) -> String {
    let image = f.req_str(c, "image").unwrap_or_default();
    if !image.is_empty()
        && (image
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control())
            || image.len() > 255)
    {
        c.push(
            f.path_of("image"),
            format!(
                "\"{image}\" is not an image reference; expected e.g. \"ghcr.io/example/tgweb:1.4\""
            ),
        );
    }
    image
}

fn parse_service(c: &mut Collector, path: &str, v: &Value) -> Option<Service> {
    let f = Fields::new(c, path, v, KEYS)?;
    let image = f.get("image").is_some().then(|| image(c, &f));
    let exec = match f.get("exec") {
        Some(Value::Array(items)) if !items.is_empty() => f.list(
            c,
            "exec",
            "strings",
            "expected a one-line string argument",
            |s| is_one_line(s).then(|| s.to_string()),
        ),
        None if image.is_some() => Vec::new(),
        _ => {
            c.push(
                f.path_of("exec"),
                "required (unless \"image\" runs the replicas as containers): the replica's command line as an array of strings, e.g. [\"/usr/local/bin/mtproto-proxy\", \"-H\", \"{port}\"]",
            );
            Vec::new()
        }
    };
    let secret = f.opt_str(c, "secret");
    if let Some(s) = &secret
        && !(s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        c.push(
            f.path_of("secret"),
            "the secret must be 32 hexadecimal characters (generate one with `openssl rand -hex 16`)",
        );
    }
    let balancer = f
        .get("balancer")
        .and_then(|b| balancer::parse(c, &f.path_of("balancer"), b));
    Some(Service {
        name: f.req_checked_str(c, "name", &SAFE_NAME).unwrap_or_default(),
        node: f.req_str(c, "node").unwrap_or_default(),
        replicas: f.opt_uint(c, "replicas", 0, 64).unwrap_or(1) as u32,
        base_port: f.opt_port(c, "base_port").unwrap_or(10000),
        exec,
        secret,
        description: f.one_line(c, "description"),
        balancer,
        image,
        container_port: f.opt_port(c, "container_port").unwrap_or(443),
    })
}

/// The replicated services role.
pub struct System;

impl Role for System {
    fn name(&self) -> &'static str {
        "replicas"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["services"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let services = top
            .opt_array(c, "services")
            .into_iter()
            .filter_map(|(path, v)| parse_service(c, &path, v))
            .collect();
        into.insert(Section(services));
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        let mut names: std::collections::BTreeMap<&str, usize> = Default::default();
        for (i, s) in of(inv).iter().enumerate() {
            let base = format!("$.services[{i}]");
            if !s.name.is_empty()
                && let Some(first) = names.insert(&s.name, i)
            {
                c.push(
                    format!("{base}.name"),
                    format!(
                        "duplicate service name \"{}\" (first used at $.services[{first}])",
                        s.name
                    ),
                );
            }
            inv.check_node_ref(c, &format!("{base}.node"), &s.node);
            let last = u32::from(s.base_port) + s.replicas.saturating_sub(1);
            if last > 65535 {
                c.push(
                    format!("{base}.replicas"),
                    format!(
                        "{} replicas from base_port {} would need port {last}; lower base_port or replicas",
                        s.replicas, s.base_port
                    ),
                );
                continue;
            }
            for n in 1..=s.replicas {
                claims.port(
                    inv,
                    c,
                    &s.node,
                    s.replica_port(n),
                    format!("{base} replica {n}"),
                );
            }
        }
    }

    fn secrets(&self, inv: &Inventory) -> Vec<String> {
        of(inv).iter().filter_map(|s| s.secret.clone()).collect()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        Some(format!("{} service(s)", of(inv).len()))
    }

    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        plan::TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan::plan(ctx, out)
    }
}
