//! Compose applications: a Podman Compose project per app (services with image, command,
//! environment, secret environment, ports, volumes, healthcheck, dependencies), run by a
//! oneshot unit whose start waits until every service is healthy — so a deploy whose new
//! version does not come up healthy is rolled back to the previous one by the engine.
//! Inventory key `apps` (here); the compose file, env files, tool and unit in `plan.rs`;
//! the tool itself is `app.sh`; status: each service running/healthy, restarts, ports.

pub mod compose_file;
pub mod images;
mod plan;
pub mod user_file;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::contract::Check;
use crate::contract::{self, Ctx, Output, Purge, Status, StatusInput, Systems};
use crate::inventory::SectionReader;
use crate::inventory::decimal;
use crate::inventory::{
    Check as StrCheck, Claims, Collector, Fields, Inventory, NodePath, SAFE_NAME, Sections, shown,
};
use crate::shell::quote;
use crate::templates::TemplateError;

pub use plan::{TOOL, container_name, tool_text, unit_name, unit_of};

/// One compose application on a node.
#[derive(Debug, Clone, Serialize)]
pub struct App {
    /// Its JSON path, e.g. `$.apps[0]`.
    pub path: String,
    /// The project name: containers are `NAME_SERVICE_1`, the unit `vds-app-NAME.service`.
    pub name: String,
    pub node: String,
    /// Seconds a deploy waits for every service to be healthy before it rolls back.
    pub health_timeout: u32,
    /// The container engine the app runs on.
    pub engine: Engine,
    /// The services: from the inventory, or read from the user's own compose file.
    pub services: Vec<Service>,
    /// The user's own compose file, shipped as is (instead of one rendered from `services`).
    pub file: Option<user_file::UserFile>,
    /// Variables for the user's compose file (`${NAME}`), kept in the project's 0600
    /// `.env`; never printed.
    #[serde(skip)]
    pub secret_env: Vec<(String, String)>,
    /// Services may use the node's own network (`network_mode: host`).
    pub host_network: bool,
    /// Image archives shipped to the node and loaded when its engine lacks the image.
    pub images: Vec<images::Archive>,
}

/// The container engine of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Podman with podman-compose.
    Podman,
    /// Docker with the `docker compose` plugin, or docker-compose.
    Docker,
}

impl Engine {
    /// The engine's command, as the app tool and the backup tool call it.
    pub fn command(self) -> &'static str {
        match self {
            Engine::Podman => "podman",
            Engine::Docker => "docker",
        }
    }
}

/// One service of an app.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub path: String,
    pub name: String,
    pub image: String,
    /// The command, word by word (the image's own when empty).
    pub command: Vec<String>,
    /// Plain environment, in the compose file.
    pub env: Vec<(String, String)>,
    /// Secret environment, in a 0600 env file of its own; never printed.
    pub secret_env: Vec<(String, String)>,
    pub ports: Vec<PortMap>,
    pub volumes: Vec<Volume>,
    pub healthcheck: Option<Health>,
    pub depends_on: Vec<String>,
    /// The services of `depends_on` that must be healthy before this one starts
    /// (`condition: service_healthy` in a user's compose file).
    pub wait_for: Vec<String>,
    /// `no`, `always`, `unless-stopped` or `on-failure` (empty: the user's file says).
    pub restart: &'static str,
}

/// A port of the node forwarded to a port of the container.
#[derive(Debug, Clone, Serialize)]
pub struct PortMap {
    pub host: u16,
    pub container: u16,
    /// Bound to every address (and opened by the firewall) instead of 127.0.0.1.
    pub public: bool,
}

/// A named volume (data kept across deploys and removes) or a directory of the node.
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// `source` is a named volume, not a path.
    pub named: bool,
}

/// A service's healthcheck: a shell command run inside the container.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub test: String,
    pub interval: u32,
    pub timeout: u32,
    pub retries: u32,
    pub start_period: u32,
}

#[derive(Debug, Default)]
struct Section {
    apps: Vec<App>,
}

/// Every app of the inventory.
pub fn of(inv: &Inventory) -> &[App] {
    &inv.section::<Section>().apps
}

fn on<'a>(inv: &'a Inventory, node: &'a str) -> impl Iterator<Item = &'a App> {
    of(inv).iter().filter(move |a| a.node == node)
}

const KEYS: &[&str] = &[
    "name",
    "node",
    "engine",
    "health_timeout",
    "services",
    "compose_file",
    "secret_env",
    "host_network",
    "images",
];
const SERVICE_KEYS: &[&str] = &[
    "name",
    "image",
    "command",
    "env",
    "secret_env",
    "ports",
    "publish",
    "volumes",
    "healthcheck",
    "depends_on",
    "restart",
];
const HEALTH_KEYS: &[&str] = &["test", "interval", "timeout", "retries", "start_period"];
const RESTART: &[(&str, &str)] = &[
    ("unless-stopped", "unless-stopped"),
    ("always", "always"),
    ("on-failure", "on-failure"),
    ("no", "no"),
];
/// The container engines apps run on.
const ENGINES: &[(&str, Engine)] = &[("podman", Engine::Podman), ("docker", Engine::Docker)];

const IMAGE: StrCheck = StrCheck {
    ok: crate::inventory::is_image_reference,
    hint: "is not an image reference; expected e.g. \"docker.io/library/postgres:16\" or \"localhost/shop-api:1.4\"",
};

fn is_env_key(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The circle of `depends_on` that leads from `s` back to itself, if there is one and `s`
/// is its first member by name (so a circle is reported once). A service that names
/// itself is reported on its own.
fn dependency_cycle<'a>(app: &'a App, s: &'a Service) -> Option<Vec<&'a str>> {
    fn walk<'a>(
        app: &'a App,
        start: &'a str,
        at: &'a str,
        path: &mut Vec<&'a str>,
        dead: &mut BTreeSet<&'a str>,
    ) -> bool {
        let Some(svc) = app.services.iter().find(|x| x.name == at) else {
            return false;
        };
        for d in &svc.depends_on {
            let d = d.as_str();
            if d == start && !(path.len() == 1 && at == start) {
                path.push(d);
                return true;
            }
            if d == at || path.contains(&d) || dead.contains(d) {
                continue;
            }
            path.push(d);
            if walk(app, start, d, path, dead) {
                return true;
            }
            path.pop();
            dead.insert(d);
        }
        false
    }
    let mut path = vec![s.name.as_str()];
    let found = walk(app, &s.name, &s.name, &mut path, &mut BTreeSet::new());
    let first = path.iter().min().copied();
    (found && first == Some(s.name.as_str())).then_some(path)
}

/// A named volume: lowercase letters, digits and `_ . -`, starting with a letter or digit.
pub(crate) fn is_volume_name(s: &str) -> bool {
    is_lower_name(s, b"_.-")
}

/// Lowercase letters, digits and the bytes of `also`, starting with a letter or digit, at
/// most 63 bytes.
fn is_lower_name(s: &str, also: &[u8]) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || also.contains(c))
}

/// `"8080:80"` (node port : container port) or `"8080"` (the same on both); or the rule it
/// broke.
fn port_map(s: &str, public: bool) -> Result<PortMap, String> {
    let bound = if public { "every address" } else { "127.0.0.1" };
    let (h, c) = s.split_once(':').unwrap_or((s, s));
    let port = |p: &str, which: &str| match decimal::<u32>(p) {
        Some(n @ 1..=65535) => Ok(n as u16),
        Some(n) => Err(format!("has {which} port {n}; a port is 1 to 65535")),
        None => Err(format!(
            "is not NODE_PORT:CONTAINER_PORT in digits (bound to {bound}), e.g. \"8000:8000\""
        )),
    };
    Ok(PortMap {
        host: port(h, "node")?,
        container: port(c, "container")?,
        public,
    })
}

/// `"NAME:/path"`, `"/node/path:/path"`, either with `:ro`; or the rule it broke.
fn volume(s: &str) -> Result<Volume, String> {
    let (rest, read_only) = match s.strip_suffix(":ro") {
        Some(r) => (r, true),
        None => (s, false),
    };
    let Some((source, target)) = rest.split_once(':') else {
        return Err("is not SOURCE:/container/path; expected \"VOLUME:/container/path\" (a named volume) or \
        \"/node/path:/container/path\", either with \":ro\"".into());
    };
    let target_ok =
        NodePath::parse(target).map_err(|e| format!("has a container path that {e}"))?;
    if target_ok.as_str() == "/" {
        return Err("mounts over the container's / ; name a directory inside it".into());
    }
    let named = !source.starts_with('/');
    if named {
        if !is_volume_name(source) {
            return Err(format!(
                "names the volume {}, which is not a volume name (lowercase letters, digits, _ . -, starting with a letter or digit)",
                shown(source)
            ));
        }
    } else {
        NodePath::container_bind(source, read_only)
            .map_err(|e| format!("has a node path that {e}"))?;
    }
    Ok(Volume {
        source: source.to_string(),
        target: target.to_string(),
        read_only,
        named,
    })
}

/// An object of environment variables: names checked, values one line (numbers and
/// booleans taken as their text).
/// With `secret`, a value may be a reference to where it is kept (`inventory::secret`), and
/// is never echoed.
fn env(c: &mut Collector, f: &Fields, key: &str, secret: bool) -> Vec<(String, String)> {
    let Some(v) = f.get(key) else {
        return Vec::new();
    };
    let path = f.path_of(key);
    let Value::Object(map) = v else {
        c.push(
            path,
            format!(
                "expected an object of NAME: value, found {}",
                crate::inventory::kind(v)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let at = format!("{path}.{k}");
        if !is_env_key(k) {
            c.push(
                &at,
                format!("\"{k}\" is not an environment variable name; expected letters, digits and _, not starting with a digit"),
            );
            continue;
        }
        let text = match v {
            Value::Object(_) | Value::String(_) if secret => {
                match crate::inventory::secret::value(c, &at, v) {
                    Some(s) => s,
                    None => continue,
                }
            }
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                c.push(
                    &at,
                    format!("expected a string, found {}", crate::inventory::kind(other)),
                );
                continue;
            }
        };
        if text.chars().any(char::is_control) {
            let what = if secret {
                "the secret (not shown) "
            } else {
                ""
            };
            c.push(
                &at,
                format!("{what}must be a single line without control characters"),
            );
            continue;
        }
        out.push((k.clone(), text));
    }
    out
}

fn health(c: &mut Collector, path: &str, v: &Value) -> Option<Health> {
    let f = Fields::new(c, path, v, HEALTH_KEYS)?;
    let test = f.req_str(c, "test");
    if let Some(t) = &test
        && (t.trim().is_empty() || t.chars().any(char::is_control))
    {
        c.push(
            f.path_of("test"),
            "expected one line of shell run inside the container, e.g. \"pg_isready -U postgres\"",
        );
        return None;
    }
    Some(Health {
        test: test?,
        interval: f.opt_uint(c, "interval", 1, 3600).unwrap_or(5) as u32,
        timeout: f.opt_uint(c, "timeout", 1, 3600).unwrap_or(5) as u32,
        retries: f.opt_uint(c, "retries", 1, 100).unwrap_or(3) as u32,
        start_period: f.opt_uint(c, "start_period", 0, 3600).unwrap_or(0) as u32,
    })
}

fn service(c: &mut Collector, path: &str, v: &Value) -> Option<Service> {
    let f = Fields::new(c, path, v, SERVICE_KEYS)?;
    let name = f.req_checked_str(c, "name", &SAFE_NAME);
    let image = f.req_checked_str(c, "image", &IMAGE);
    let command = f.list(
        c,
        "command",
        "words",
        "expected one word of the command (a single line)",
        |s| (!s.chars().any(char::is_control)).then(|| s.to_string()),
    );
    let env_vars = env(c, &f, "env", false);
    let secret_env = env(c, &f, "secret_env", true);
    for (k, v) in &secret_env {
        let at = format!("{}.{k}", f.path_of("secret_env"));
        if v.chars().count() < 8 {
            c.push(
                &at,
                "the secret (not shown) is shorter than 8 characters, which a guess finds at once",
            );
        }
        if env_vars.iter().any(|(e, _)| e == k) {
            c.push(
                &at,
                format!("{k} is also in \"env\"; a variable is either plain or secret, not both"),
            );
        } else if let Some((e, _)) = env_vars.iter().find(|(_, plain)| plain == v) {
            c.push(
                &at,
                format!("the secret (not shown) is also the plain value of env.{e}, which is printed; a secret must not be reused as a plain value"),
            );
        }
    }
    let mut ports = f.parsed_list(c, "ports", "ports", |s| port_map(s, false));
    ports.extend(f.parsed_list(c, "publish", "ports", |s| port_map(s, true)));
    let volumes = f.parsed_list(c, "volumes", "volumes", volume);
    let healthcheck = f
        .get("healthcheck")
        .map(|h| health(c, &f.path_of("healthcheck"), h));
    let depends_on = f.list(
        c,
        "depends_on",
        "service names",
        "expected the name of another service of this app",
        |s| Some(s.to_string()),
    );
    let restart = f.choice(c, "restart", RESTART, "unless-stopped");
    let healthcheck = match healthcheck {
        Some(None) => return None,
        Some(Some(h)) => Some(h),
        None => None,
    };
    Some(Service {
        path: path.to_string(),
        name: name?,
        image: image?,
        command,
        env: env_vars,
        secret_env,
        ports,
        volumes,
        healthcheck,
        depends_on,
        wait_for: Vec::new(),
        restart,
    })
}

fn app(c: &mut Collector, path: &str, v: &Value) -> Option<App> {
    let f = Fields::new(c, path, v, KEYS)?;
    let name = f.req_checked_str(c, "name", &SAFE_NAME);
    let node = f.req_ref(c, "node").unwrap_or_default();
    let engine = f.choice(c, "engine", ENGINES, Engine::Podman);
    let health_timeout = f.opt_uint(c, "health_timeout", 5, 3600).unwrap_or(120) as u32;
    let host_network = f.bool_or(c, "host_network", false);
    let example = "e.g. [{\"name\": \"web\", \"image\": \"localhost/web:1\"}], or \"compose_file\": \"shop/docker-compose.yml\"";
    let (services, file) = match (f.get("services"), f.opt_str(c, "compose_file")) {
        (Some(_), Some(_)) => {
            c.push(
                f.path_of("compose_file"),
                "an app has either \"services\" or \"compose_file\", not both",
            );
            (Vec::new(), None)
        }
        (None, Some(rel)) => {
            match user_file::read(c, &f.path_of("compose_file"), &rel, host_network) {
                Some(r) => (r.services, Some(r.file)),
                None => (Vec::new(), None),
            }
        }
        (Some(list), None) => {
            if list.as_array().is_some_and(Vec::is_empty) {
                c.push(
                    f.path_of("services"),
                    format!("is empty: an app needs at least one service, {example}"),
                );
            }
            if host_network {
                c.push(
                    f.path_of("host_network"),
                    "is for a compose_file whose services use network_mode: host; services written here always publish their ports",
                );
            }
            (f.objects(c, "services", service), None)
        }
        (None, None) => {
            c.push(
                f.path_of("services"),
                format!("missing: an app needs at least one service, {example}"),
            );
            (Vec::new(), None)
        }
    };
    let secret_env = env(c, &f, "secret_env", true);
    if !secret_env.is_empty() && file.is_none() {
        c.push(
            f.path_of("secret_env"),
            "is for an app's own compose_file (its ${NAME} variables); with \"services\", each service has its own secret_env",
        );
    }
    for (k, v) in &secret_env {
        let at = format!("{}.{k}", f.path_of("secret_env"));
        if v.contains(['\'', '\\']) {
            c.push(
                &at,
                "the secret (not shown) contains ' or \\, which the .env file Compose reads cannot hold as written",
            );
        }
        if file
            .as_ref()
            .and_then(|u| u.dotenv.as_deref())
            .is_some_and(|d| user_file::parse_dotenv(d).contains_key(k))
        {
            c.push(
                &at,
                format!("{k} is also set by the .env beside the compose file; set it in one place"),
            );
        }
    }
    let images = f.list(
        c,
        "images",
        "image archives",
        "expected the path of an image archive (docker save or podman save), relative to the inventory",
        |s| Some(s.to_string()),
    );
    let images = images
        .iter()
        .enumerate()
        .filter_map(|(i, rel)| images::read(c, &format!("{}[{i}]", f.path_of("images")), rel))
        .collect();
    Some(App {
        path: path.to_string(),
        name: name?,
        node,
        health_timeout,
        engine,
        images,
        services,
        file,
        secret_env,
        host_network,
    })
}

fn validate(inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for a in of(inv) {
        if !inv.check_node_ref(c, &format!("{}.node", a.path), &a.node) {
            continue;
        }
        if let Some(first) = seen.insert((&a.node, &a.name), &a.path) {
            c.push(
                format!("{}.name", a.path),
                format!(
                    "app {} on node {} is already defined by {first}; rename one",
                    a.name, a.node
                ),
            );
        }
        let names: BTreeSet<&str> = a.services.iter().map(|s| s.name.as_str()).collect();
        let mut service_seen = BTreeSet::new();
        for s in &a.services {
            if !service_seen.insert(s.name.as_str()) {
                c.push(
                    format!("{}.name", s.path),
                    format!("service {} is defined twice in app {}", s.name, a.name),
                );
            }
            // (A compose file's own `depends_on` is checked where it is read.)
            for (i, d) in s.depends_on.iter().enumerate() {
                if a.file.is_none() && (d == &s.name || !names.contains(d.as_str())) {
                    let others: Vec<&str> =
                        names.iter().copied().filter(|n| *n != s.name).collect();
                    c.push(
                        format!("{}.depends_on[{i}]", s.path),
                        format!(
                            "\"{d}\" is not another service of app {}; expected one of: {}",
                            a.name,
                            if others.is_empty() {
                                "(none)".to_string()
                            } else {
                                others.join(", ")
                            }
                        ),
                    );
                }
            }
            if let Some(cycle) = dependency_cycle(a, s) {
                c.push(
                    format!("{}.depends_on", s.path),
                    format!("the services wait for each other in a circle ({}); no order can start them", cycle.join(" -> ")),
                );
            }
            let mut targets = BTreeSet::new();
            for v in &s.volumes {
                if !targets.insert(v.target.as_str()) {
                    c.push(
                        format!("{}.volumes", s.path),
                        format!("{} is mounted twice in service {}", v.target, s.name),
                    );
                }
            }
            // `ports` come first in the list, then `publish` (a compose file has one list).
            let n_local = s.ports.iter().filter(|p| !p.public).count();
            for (i, p) in s.ports.iter().enumerate() {
                let at = if a.file.is_some() {
                    format!("{}.ports[{i}]", s.path)
                } else if p.public {
                    format!("{}.publish[{}]", s.path, i - n_local)
                } else {
                    format!("{}.ports[{i}]", s.path)
                };
                if p.public {
                    claims.port(inv, c, &a.node, p.host, at);
                } else {
                    claims.local_port(inv, c, &a.node, p.host, at);
                }
            }
        }
    }
}

/// The compose role: apps run as Podman Compose projects.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "compose"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["apps"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let apps = top.objects(c, "apps", app);
        into.insert(Section { apps });
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        validate(inv, c, claims);
    }

    fn secrets(&self, inv: &Inventory) -> Vec<String> {
        of(inv)
            .iter()
            .flat_map(|a| &a.services)
            .flat_map(|s| s.secret_env.iter().map(|(_, v)| v.clone()))
            .collect()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        let n = of(inv).len();
        (n > 0).then(|| format!("{n} app(s)"))
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
        on(inv, node)
            .map(|a| {
                format!(
                    "if [ -x {TOOL} ]; then {TOOL} status {}; fi\n",
                    quote(&a.name)
                )
            })
            .collect()
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        on(inv, node)
            .flat_map(|a| {
                a.services.iter().map(move |s| {
                    let (ok, detail) = service_status(a, s, seen);
                    Check::new(node, format!("app {}/{}", a.name, s.name), ok, detail)
                })
            })
            .collect()
    }
}

impl Purge for System {
    fn purge_script(&self, inv: &Inventory, node: &str) -> String {
        on(inv, node)
            .map(|a| {
                // podman-compose labels its volumes with its own project label.
                let (e, label) = match a.engine {
                    Engine::Podman => ("podman", "io.podman.compose.project"),
                    Engine::Docker => ("docker", "com.docker.compose.project"),
                };
                format!(
                    "if command -v {e} >/dev/null; then {e} volume ls -q --filter label={label}={} | \
                     while read -r v; do {e} volume rm -f \"$v\" >/dev/null && echo \"@purged volume $v\"; done; fi\n",
                    quote(&a.name)
                )
            })
            .collect()
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.push(compose_file::COMPOSE);
    r.kinds.push(images::ARCHIVE);
    r.all.push(&System);
    r.status.push(&System);
    r.purge.push(&System);
}

/// One service's row from the tool's `@app NAME SERVICE|STATE|HEALTH|RESTARTS` lines.
fn service_status(a: &App, s: &Service, seen: &StatusInput) -> (bool, String) {
    let prefix = format!("@app {} {}|", a.name, s.name);
    let Some(line) = seen.stdout.lines().find_map(|l| l.strip_prefix(&prefix)) else {
        return (
            false,
            format!(
                "no container: see `systemctl status {}` and `journalctl -u {}`",
                unit_name(a),
                unit_name(a)
            ),
        );
    };
    let w: Vec<&str> = line.split('|').collect();
    let [state, health, restarts] = w[..] else {
        return (false, format!("unreadable status {line:?}"));
    };
    let mut ok = state == "running";
    let mut parts = vec![state.to_string()];
    if s.healthcheck.is_some() {
        ok &= health == "healthy";
        parts.push(if health.is_empty() {
            "health unknown".to_string()
        } else {
            health.to_string()
        });
    }
    parts.push(format!("{restarts} restart(s)"));
    for p in &s.ports {
        let bind = if p.public { "*" } else { "127.0.0.1" };
        if seen.listening.contains(&p.host) {
            parts.push(format!("listening on {bind}:{}", p.host));
        } else {
            ok = false;
            parts.push(format!("nothing listens on {bind}:{}", p.host));
        }
    }
    (ok, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_volumes_read_as_compose_writes_them() {
        let p = port_map("8080:80", false).unwrap();
        assert_eq!((p.host, p.container, p.public), (8080, 80, false));
        let p = port_map("443", true).unwrap();
        assert_eq!((p.host, p.container, p.public), (443, 443, true));
        for bad in ["", "0:80", "80:", "x:80", "80:70000", "1:2:3"] {
            assert!(port_map(bad, false).is_err(), "{bad}");
        }
        let v = volume("pgdata:/var/lib/postgresql/data").unwrap();
        assert!(v.named && !v.read_only && v.source == "pgdata");
        let v = volume("/srv/static:/www:ro").unwrap();
        assert!(!v.named && v.read_only && v.target == "/www");
        for bad in [
            "data",
            "data:relative",
            "/:/x",
            "Data:/x",
            "/srv/../etc:/x",
            "x:/a b",
            "x;id:/x",
            // The host's root by other spellings, system directories, the container's root.
            "/.:/host",
            "//:/host",
            "/var/lib:/x",
            "/etc/:/x",
            "x:/",
            "x:/./",
        ] {
            assert!(volume(bad).is_err(), "{bad}");
        }
    }
}
