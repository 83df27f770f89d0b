//! Replicated services: one systemd template unit `{service}@.service` and one instance
//! per replica, replica n listening on `base_port + n - 1` — run as a command, or as a
//! container image. A service's `balancer` (HAProxy in front of it) is read here and
//! planned by the balancer role.
//!
//! Inventory key `services`; plan in `plan.rs`.

pub mod balancer;
mod plan;

use serde::Serialize;
use serde_json::Value;

use crate::contract::{self, Ctx, Output, Systems};
use crate::inventory::SectionReader;
use crate::inventory::{Claims, Collector, Fields, Inventory, SAFE_NAME, Sections, is_one_line};
use crate::templates::TemplateError;
use balancer::Balancer;

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
    /// Port of replica `n` (1-based); validation keeps every replica's port within range.
    pub fn replica_port(&self, n: u32) -> u16 {
        (u32::from(self.base_port) + n - 1).min(65535) as u16
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

/// Unit names systemd, Debian's packages and vds-proxy itself use: a service of that name
/// would write `/etc/systemd/system/NAME@.service` over theirs (a service `user` or
/// `getty` breaks logins). Names starting `systemd-` are refused too.
pub const RESERVED: &[&str] = &[
    "autovt",
    "console-getty",
    "container-getty",
    "containerd",
    "cron",
    "dbus",
    "docker",
    "emergency",
    "getty",
    "haproxy",
    "ifdown",
    "ifup",
    "init",
    "k3s",
    "kexec",
    "modprobe",
    "networking",
    "nginx",
    "postgresql",
    "rescue",
    "redis",
    "rsyslog",
    "serial-getty",
    "socat-proxy",
    "ssh",
    "sshd",
    "tailscaled",
    "user",
    "user-runtime-dir",
    "vds-relay",
    "vds-tproxy",
    "wg-quick",
];

fn parse_service(c: &mut Collector, path: &str, v: &Value) -> Option<Service> {
    let f = Fields::new(c, path, v, KEYS)?;
    let image = f.get("image").is_some().then(|| f.req_image(c, "image"));
    let exec = match f.get("exec") {
        Some(Value::Array(items)) if !items.is_empty() => {
            // In ExecStart=, a leading + - @ ! or : would be a systemd prefix (+ runs the
            // command as root outside the sandbox): the command is an absolute path.
            if image.is_none() && items[0].as_str().is_some_and(|w| !w.starts_with('/')) {
                c.push(
                    format!("{}[0]", f.path_of("exec")),
                    "the command must be an absolute path, e.g. \"/usr/bin/socat\"",
                );
            }
            f.list(
                c,
                "exec",
                "strings",
                "expected a one-line string argument",
                |s| is_one_line(s).then(|| s.to_string()),
            )
        }
        None if image.is_some() => Vec::new(),
        _ => {
            c.push(
                f.path_of("exec"),
                "required (unless \"image\" runs the replicas as containers): the replica's command line as an array \
                of strings, e.g. [\"/usr/local/bin/mtproto-proxy\", \"-H\", \"{port}\"]",
            );
            Vec::new()
        }
    };
    let secret = f.opt_secret(c, "secret", |s| {
        (!(s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))).then(|| {
            "is not 32 hexadecimal characters (generate one with `openssl rand -hex 16`)".into()
        })
    });
    let balancer = f
        .get("balancer")
        .and_then(|b| balancer::parse(c, &f.path_of("balancer"), b));
    Some(Service {
        name: f.req_checked_str(c, "name", &SAFE_NAME).unwrap_or_default(),
        node: f.req_ref(c, "node").unwrap_or_default(),
        replicas: f.opt_uint(c, "replicas", 0, 64).unwrap_or(1) as u32,
        base_port: f.opt_port(c, "base_port").unwrap_or(10000),
        exec,
        secret,
        description: f.description(c, "description"),
        balancer,
        image,
        container_port: f.opt_port(c, "container_port").unwrap_or(443),
    })
}

/// The replicated services role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "replicas"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["services"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let services = top.objects(c, "services", parse_service);
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
            if RESERVED.contains(&s.name.as_str()) || s.name.starts_with("systemd-") {
                c.push(
                    format!("{base}.name"),
                    format!(
                        "\"{}\" is the name of a system unit (its units would replace {}@.service); pick another name",
                        s.name, s.name
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
}

impl contract::System for System {
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        plan::TEMPLATES
    }

    fn plan(&self, ctx: &Ctx, out: &mut Output) -> Result<(), TemplateError> {
        plan::plan(ctx, out)
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.all.push(&System);
}

#[cfg(test)]
mod tests {
    use crate::inventory::is_image_reference;

    #[test]
    fn image_references_are_what_docker_takes() {
        for ok in [
            "nginx",
            "telegrammessenger/proxy:latest",
            "ghcr.io/example/tgweb:1.4",
            "localhost:5000/app",
            "registry.example:443/a/b_c.d-e:v1.2_3",
            "alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_image_reference(ok), "{ok}");
        }
        for bad in [
            "",
            "--privileged",
            "Nginx",
            "nginx latest",
            "nginx:",
            "a/-b",
            "x\\",
            "nginx@sha256:00",
            "ghcr.io:0/a",
        ] {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }
}
