//! An app's own compose file (`apps[].compose_file`): read once, when the inventory is,
//! for what vds-proxy needs of it — its services with their images, published ports (port
//! claims and the firewall), binds and named volumes, healthchecks and `depends_on` — and
//! refused where it would break vds-proxy's guarantees (a privileged container, the node's
//! network or processes without `host_network`, a bind of a system directory, an image to
//! build). The file is then shipped as it is, with the env files it names.
//!
//! Every problem is reported at the inventory's `compose_file` path, naming the place in
//! the compose file (`services.web.ports[0]`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::{Health, PortMap, Service, Volume, is_volume_name};
use crate::inventory::{Collector, NodePath, is_image_reference, shown};

/// The user's compose file and what ships with it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserFile {
    /// As written in the inventory, relative to it.
    pub path: String,
    /// The file's text, shipped unchanged.
    #[serde(skip)]
    pub text: String,
    /// The env files its services name (`env_file`), relative to it, with their text:
    /// shipped next to it, 0600, never printed.
    #[serde(skip)]
    pub env_files: Vec<(String, String)>,
    /// The `.env` next to it (variables for the file's `${VAR}`), if there is one.
    #[serde(skip)]
    pub dotenv: Option<String>,
}

/// Top-level keys of a compose file vds-proxy knows (besides `x-` extensions).
const TOP: &[&str] = &["version", "name", "services", "volumes", "networks"];
/// Service keys that would take the node away from vds-proxy, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "build",
        "vds-proxy does not build images; build and push it (or ship it with \"images\") and name it in \"image\"",
    ),
    (
        "extends",
        "is not supported: write the service out (vds-proxy reads one file)",
    ),
    (
        "secrets",
        "is not supported yet: put the value in the app's \"secret_env\" and use ${NAME}",
    ),
    (
        "configs",
        "is not supported yet: put the value in the app's \"secret_env\" or an env file",
    ),
];

/// What reading the file gave.
pub struct Read {
    pub file: UserFile,
    pub services: Vec<Service>,
}

/// Reads the compose file at `rel` (relative to the inventory), reporting at `at`.
/// `vars` are the variables the file's `${VAR}` may use in the values vds-proxy reads
/// (the `.env` beside it); `host_network` allows `network_mode: host`.
pub fn read(c: &mut Collector, at: &str, rel: &str, host_network: bool) -> Option<Read> {
    if let Err(why) = relative_name(rel) {
        c.push(at, format!("{} {why}", shown(rel)));
        return None;
    }
    let base = c.base_dir().to_path_buf();
    let text = match std::fs::read_to_string(base.join(rel)) {
        Ok(t) => t,
        Err(e) => {
            c.push(
                at,
                format!(
                    "cannot read {rel} ({e}); the path is relative to the inventory's directory"
                ),
            );
            return None;
        }
    };
    let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
    let dotenv = std::fs::read_to_string(base.join(dir).join(".env")).ok();
    let vars = dotenv.as_deref().map(parse_dotenv).unwrap_or_default();
    let doc = match parse_yaml(&text) {
        Ok(d) => d,
        Err(e) => {
            c.push(at, format!("{rel} is not a compose file: {e}"));
            return None;
        }
    };
    let mut r = Reader {
        c,
        at,
        rel,
        vars: &vars,
    };
    let (services, env_names) = r.document(&doc, host_network)?;
    let mut env_files = Vec::new();
    for name in env_names {
        match std::fs::read_to_string(base.join(dir).join(&name)) {
            Ok(t) => env_files.push((name, t)),
            Err(e) => r.push(
                "env_file",
                format!("cannot read {name} ({e}), which a service names as its env_file; it is read from beside the compose file"),
            ),
        }
    }
    Some(Read {
        file: UserFile {
            path: rel.to_string(),
            text,
            env_files,
            dotenv,
        },
        services,
    })
}

/// A path relative to the inventory, without `..`: the rule it broke, if any.
fn relative_name(rel: &str) -> Result<(), &'static str> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel.split('/').all(|s| {
            !s.is_empty()
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-+@".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(
            "is not a plain relative path (letters, digits, . _ - + @ and /, no \"..\"); it is read relative to the inventory",
        )
    }
}

/// YAML (anchors and `<<` merges applied) as a JSON value.
fn parse_yaml(text: &str) -> Result<Value, String> {
    let mut y: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    y.apply_merge().map_err(|e| e.to_string())?;
    serde_json::to_value(&y).map_err(|e| e.to_string())
}

/// `NAME=value` lines of a `.env` file (comments and blank lines skipped, one layer of
/// quotes removed), as Compose reads them for `${NAME}`.
pub(super) fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("export ").unwrap_or(l);
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// `s` with `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `$NAME` and `$$` replaced
/// as Compose does, from `vars`; or the rule it broke.
pub fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (expr, after) = if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("{} has a ${{ without its }}", shown(s)))?;
            (&r[..end], &r[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        let (name, default) = match expr.find([':', '-']) {
            Some(j) => {
                let d = &expr[j..];
                let d = d
                    .strip_prefix(":-")
                    .or_else(|| d.strip_prefix('-'))
                    .ok_or_else(|| {
                        format!(
                            "{} uses {}, which vds-proxy cannot work out; write the value, or ${{NAME:-default}}",
                            shown(s),
                            shown(expr)
                        )
                    })?;
                (&expr[..j], Some(d))
            }
            None => (expr, None),
        };
        match (vars.get(name), default) {
            (Some(v), Some(d)) if v.is_empty() && expr[name.len()..].starts_with(':') => {
                out.push_str(d)
            }
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "{} uses ${{{name}}}, which the .env beside the compose file does not set; vds-proxy needs this value, so set it there or write it out",
                    shown(s)
                ));
            }
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

struct Reader<'a, 'c> {
    c: &'c mut Collector,
    at: &'a str,
    rel: &'a str,
    vars: &'a BTreeMap<String, String>,
}

impl Reader<'_, '_> {
    /// Records a problem at `place` in the compose file.
    fn push(&mut self, place: &str, why: impl AsRef<str>) {
        let msg = format!("{} at {place}: {}", self.rel, why.as_ref());
        self.c.push(self.at, msg);
    }

    /// A string value vds-proxy reads, interpolated; or `None` after recording why not.
    fn string(&mut self, place: &str, v: &Value) -> Option<String> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.push(
                    place,
                    format!("expected a string, found {}", crate::inventory::kind(other)),
                );
                return None;
            }
        };
        match interpolate(&s, self.vars) {
            Ok(s) => Some(s),
            Err(e) => {
                self.push(place, e);
                None
            }
        }
    }

    /// The services of the document, and the env files they name.
    fn document(
        &mut self,
        doc: &Value,
        host_network: bool,
    ) -> Option<(Vec<Service>, BTreeSet<String>)> {
        let Value::Object(top) = doc else {
            self.push("the top", "expected a mapping with \"services\"");
            return None;
        };
        for k in top.keys() {
            if !TOP.contains(&k.as_str()) && !k.starts_with("x-") {
                self.push(
                    k,
                    format!(
                        "is not a top-level key vds-proxy knows; expected {} or x-…",
                        TOP.join(", ")
                    ),
                );
            }
        }
        let declared: BTreeSet<String> = match top.get("volumes") {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            Some(Value::Null) | None => BTreeSet::new(),
            Some(_) => {
                self.push("volumes", "expected a mapping of volume names");
                BTreeSet::new()
            }
        };
        for v in &declared {
            if !is_volume_name(v) {
                self.push(
                    &format!("volumes.{v}"),
                    "is not a volume name vds-proxy accepts (lowercase letters, digits, _ . -, starting with a letter or digit)",
                );
            }
        }
        let Some(Value::Object(services)) = top.get("services") else {
            self.push(
                "services",
                "missing: a compose file needs at least one service",
            );
            return None;
        };
        if services.is_empty() {
            self.push(
                "services",
                "is empty: a compose file needs at least one service",
            );
            return None;
        }
        let mut env_files = BTreeSet::new();
        let mut out = Vec::new();
        for (name, v) in services {
            let place = format!("services.{name}");
            if !is_service_name(name) {
                self.push(
                    &place,
                    "is not a service name vds-proxy accepts (lowercase letters, digits, _ and -, starting with a letter or digit, at most 63)",
                );
                continue;
            }
            if let Some(s) = self.service(&place, name, v, &declared, host_network, &mut env_files)
            {
                out.push(s);
            }
        }
        for s in &out {
            for (i, d) in s.depends_on.iter().enumerate() {
                if d == &s.name || !services.contains_key(d) {
                    let others: Vec<&str> = services
                        .keys()
                        .map(String::as_str)
                        .filter(|n| *n != s.name)
                        .collect();
                    self.push(
                        &format!("services.{}.depends_on[{i}]", s.name),
                        format!(
                            "\"{d}\" is not another service of this file; expected one of: {}",
                            others.join(", ")
                        ),
                    );
                }
            }
        }
        Some((out, env_files))
    }

    fn service(
        &mut self,
        place: &str,
        name: &str,
        v: &Value,
        declared: &BTreeSet<String>,
        host_network: bool,
        env_files: &mut BTreeSet<String>,
    ) -> Option<Service> {
        let Value::Object(m) = v else {
            self.push(place, "expected a mapping");
            return None;
        };
        for (key, why) in REFUSED {
            if m.contains_key(*key) {
                self.push(&format!("{place}.{key}"), why);
            }
        }
        if m.get("privileged")
            .is_some_and(|p| p != &Value::Bool(false))
        {
            self.push(
                &format!("{place}.privileged"),
                "a privileged container can do anything on the node; vds-proxy does not run one",
            );
        }
        for key in ["pid", "ipc", "userns_mode", "uts"] {
            if m.get(key).and_then(Value::as_str) == Some("host") {
                self.push(
                    &format!("{place}.{key}"),
                    "shares the node's own namespace with the container; vds-proxy does not run one that does",
                );
            }
        }
        let host_net = m.get("network_mode").and_then(Value::as_str) == Some("host");
        if host_net && !host_network {
            self.push(
                &format!("{place}.network_mode"),
                concat!(
                    "\"host\" puts the container on the node's own network, where no port claim or ",
                    "firewall rule covers its ports; publish ports instead, or set ",
                    "\"host_network\": true on the app to allow it"
                ),
            );
        }
        if let Some(Value::Array(caps)) = m.get("cap_add")
            && let Some(cap) = caps.iter().filter_map(Value::as_str).find(|c| {
                matches!(
                    c.trim_start_matches("CAP_"),
                    "ALL" | "SYS_ADMIN" | "SYS_MODULE" | "SYS_PTRACE" | "SYS_RAWIO"
                )
            })
        {
            self.push(
                &format!("{place}.cap_add"),
                format!("{cap} lets the container take over the node; vds-proxy does not grant it"),
            );
        }
        match m.get("env_file") {
            None => {}
            Some(Value::String(f)) => self.env_file(&format!("{place}.env_file"), f, env_files),
            Some(Value::Array(list)) => {
                for (i, f) in list.iter().enumerate() {
                    let at = format!("{place}.env_file[{i}]");
                    match f.as_str().or_else(|| f.get("path").and_then(Value::as_str)) {
                        Some(f) => self.env_file(&at, f, env_files),
                        None => self.push(&at, "expected the name of an env file"),
                    }
                }
            }
            Some(_) => self.push(
                &format!("{place}.env_file"),
                "expected the name of an env file, or a list of them",
            ),
        }
        // A service whose image is refused is still read to the end (all problems at once);
        // the error keeps it from being planned.
        let image = match m.get("image") {
            Some(v) => {
                let at = format!("{place}.image");
                let s = self.string(&at, v).unwrap_or_default();
                if !s.is_empty() && !is_image_reference(&s) {
                    self.push(
                        &at,
                        format!(
                            "{} is not an image reference; expected e.g. \"docker.io/library/postgres:16\"",
                            shown(&s)
                        ),
                    );
                }
                s
            }
            None if m.contains_key("build") => String::new(),
            None => {
                self.push(
                    place,
                    "names no image; vds-proxy runs images, it does not build them",
                );
                String::new()
            }
        };
        let ports = self.ports(place, m.get("ports"));
        let volumes = self.volumes(place, m.get("volumes"), declared);
        let (depends_on, wait_for) = self.depends_on(place, m.get("depends_on"));
        let healthcheck = self.healthcheck(place, m.get("healthcheck"));
        Some(Service {
            path: format!("{}: {} at {place}", self.at, self.rel),
            name: name.to_string(),
            image,
            command: Vec::new(),
            env: Vec::new(),
            secret_env: Vec::new(),
            ports: if host_net { Vec::new() } else { ports },
            volumes,
            healthcheck,
            depends_on,
            wait_for,
            restart: "",
        })
    }

    fn env_file(&mut self, place: &str, f: &str, env_files: &mut BTreeSet<String>) {
        let f = f.strip_prefix("./").unwrap_or(f);
        if f == "compose.yaml" || f == super::plan::CONF {
            self.push(
                place,
                format!("{f} is the name of a file vds-proxy writes beside the compose file; rename the env file"),
            );
            return;
        }
        match relative_name(f) {
            Ok(()) => {
                env_files.insert(f.to_string());
            }
            Err(why) => self.push(
                place,
                format!(
                    "{} {}",
                    shown(f),
                    why.replace("the inventory", "the compose file")
                ),
            ),
        }
    }

    /// The items of the list at `at` (none when it is missing, or after recording that it
    /// is not a list).
    fn items<'v>(&mut self, at: &str, v: Option<&'v Value>) -> &'v [Value] {
        match v {
            None => &[],
            Some(Value::Array(list)) => list,
            Some(_) => {
                self.push(at, "expected a list");
                &[]
            }
        }
    }

    /// `ports`: `"8080:80"`, `"127.0.0.1:8080:80"`, `"8080:80/tcp"` or the long form.
    fn ports(&mut self, place: &str, v: Option<&Value>) -> Vec<PortMap> {
        let list = self.items(&format!("{place}.ports"), v);
        let mut out = Vec::new();
        for (i, p) in list.iter().enumerate() {
            let at = format!("{place}.ports[{i}]");
            let parsed = match p {
                Value::Object(m) => {
                    let get = |k: &str| {
                        m.get(k)
                            .map(|v| v.to_string().trim_matches('"').to_string())
                    };
                    let spec = format!(
                        "{}{}:{}/{}",
                        get("host_ip").map(|h| format!("{h}:")).unwrap_or_default(),
                        get("published").unwrap_or_default(),
                        get("target").unwrap_or_default(),
                        get("protocol").unwrap_or_else(|| "tcp".into())
                    );
                    self.string(&at, &Value::String(spec))
                        .map(|s| port_spec(&s))
                }
                other => self.string(&at, other).map(|s| port_spec(&s)),
            };
            match parsed {
                Some(Ok(p)) => out.push(p),
                Some(Err(e)) => self.push(&at, e),
                None => {}
            }
        }
        out
    }

    fn volumes(
        &mut self,
        place: &str,
        v: Option<&Value>,
        declared: &BTreeSet<String>,
    ) -> Vec<Volume> {
        let list = self.items(&format!("{place}.volumes"), v);
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let at = format!("{place}.volumes[{i}]");
            let (source, target, read_only) = match item {
                Value::Object(m) => {
                    let s = m
                        .get("source")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let t = m
                        .get("target")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let ro = m.get("read_only") == Some(&Value::Bool(true));
                    if m.get("type").and_then(Value::as_str) == Some("tmpfs") {
                        continue;
                    }
                    (s, t, ro)
                }
                other => {
                    let Some(s) = self.string(&at, other) else {
                        continue;
                    };
                    let parts: Vec<&str> = s.split(':').collect();
                    match parts[..] {
                        [t] => (String::new(), t.to_string(), false),
                        [s, t] => (s.to_string(), t.to_string(), false),
                        [s, t, mode] => (
                            s.to_string(),
                            t.to_string(),
                            mode.split(',').any(|m| m == "ro"),
                        ),
                        _ => {
                            self.push(&at, format!("{} is not SOURCE:TARGET[:MODE]", shown(&s)));
                            continue;
                        }
                    }
                }
            };
            if let Err(e) = NodePath::parse(&target) {
                self.push(&at, format!("the container path {} {e}", shown(&target)));
                continue;
            }
            if source.is_empty() {
                continue; // an anonymous volume: the engine's, removed with its container
            }
            let named = !source.starts_with(['/', '.', '~']);
            if named {
                if !declared.contains(&source) {
                    self.push(
                        &at,
                        format!("names the volume {}, which the file's top-level \"volumes\" does not declare", shown(&source)),
                    );
                    continue;
                }
            } else if source.starts_with('/') {
                if let Err(e) = NodePath::container_bind(&source, read_only) {
                    self.push(
                        &at,
                        format!("binds {} of the node, which {e}", shown(&source)),
                    );
                    continue;
                }
            } else {
                self.push(
                    &at,
                    format!(
                        "binds {}, a path relative to the compose file, which vds-proxy does not ship yet; {}",
                        shown(&source),
                        "use a named volume or a directory of the node, e.g. \"/srv/app/data:/data\""
                    ),
                );
                continue;
            }
            out.push(Volume {
                source,
                target,
                read_only,
                named,
            });
        }
        out
    }

    /// `depends_on` as a list or a mapping; the second list holds the services that must
    /// be healthy first (`condition: service_healthy`).
    fn depends_on(&mut self, place: &str, v: Option<&Value>) -> (Vec<String>, Vec<String>) {
        let at = format!("{place}.depends_on");
        match v {
            None => (Vec::new(), Vec::new()),
            Some(Value::Array(list)) => {
                let names = list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect();
                (names, Vec::new())
            }
            Some(Value::Object(m)) => {
                let mut wait = Vec::new();
                for (d, spec) in m {
                    match spec.get("condition").and_then(Value::as_str) {
                        Some("service_healthy") => wait.push(d.clone()),
                        None | Some("service_started" | "service_completed_successfully") => {}
                        Some(other) => self.push(
                            &format!("{at}.{d}.condition"),
                            format!("{} is not a condition Compose knows (service_started, service_healthy, service_completed_successfully)", shown(other)),
                        ),
                    }
                }
                (m.keys().cloned().collect(), wait)
            }
            Some(_) => {
                self.push(&at, "expected a list of services, or a mapping of them");
                (Vec::new(), Vec::new())
            }
        }
    }

    fn healthcheck(&mut self, place: &str, v: Option<&Value>) -> Option<Health> {
        let Value::Object(m) = v? else {
            self.push(&format!("{place}.healthcheck"), "expected a mapping");
            return None;
        };
        if m.get("disable") == Some(&Value::Bool(true)) {
            return None;
        }
        let test = match m.get("test") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(words)) => {
                let words: Vec<&str> = words.iter().filter_map(Value::as_str).collect();
                match words.split_first() {
                    Some((&"NONE", _)) => return None,
                    Some((&"CMD-SHELL", rest)) | Some((&"CMD", rest)) => rest.join(" "),
                    _ => words.join(" "),
                }
            }
            _ => {
                self.push(
                    &format!("{place}.healthcheck.test"),
                    "expected the check, as a string or a list",
                );
                return None;
            }
        };
        Some(Health {
            test,
            interval: 0,
            timeout: 0,
            retries: 0,
            start_period: 0,
        })
    }
}

/// A compose service name vds-proxy accepts (it names status rows and containers).
fn is_service_name(s: &str) -> bool {
    super::is_lower_name(s, b"_-")
}

/// One published port in Compose's short syntax, after interpolation; or the rule it
/// broke.
fn port_spec(s: &str) -> Result<PortMap, String> {
    let (spec, proto) = s.rsplit_once('/').unwrap_or((s, "tcp"));
    if proto != "tcp" {
        return Err(format!(
            "{} is a {proto} port; vds-proxy publishes TCP ports only for now",
            shown(s)
        ));
    }
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| format!("{} is not [ADDRESS]:NODE_PORT:CONTAINER_PORT", shown(s)))?;
        (Some(ip), r)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts[..] {
            [_] | [_, _] => (None, spec),
            [ip, _, _] => (Some(ip), &spec[ip.len() + 1..]),
            _ => {
                return Err(format!(
                    "{} is not [ADDRESS:]NODE_PORT:CONTAINER_PORT",
                    shown(s)
                ));
            }
        }
    };
    let public = match ip {
        None | Some("" | "0.0.0.0" | "::") => true,
        Some("127.0.0.1" | "::1") => false,
        Some(other) => {
            return Err(format!(
                "binds the address {other}; vds-proxy publishes on 127.0.0.1 (for a proxy in front) or on every address (opened by the firewall)"
            ));
        }
    };
    let Some((h, c)) = rest.split_once(':') else {
        return Err(format!(
            "{} publishes the container's port on a port the engine picks at random, which nothing in front can find; name the node port, e.g. \"8080:{rest}\"",
            shown(s)
        ));
    };
    if h.contains('-') || c.contains('-') {
        return Err(format!("{} is a port range; list each port", shown(s)));
    }
    let port = |p: &str| crate::inventory::decimal::<u32>(p).filter(|n| (1..=65535).contains(n));
    match (port(h), port(c)) {
        (Some(host), Some(container)) => Ok(PortMap {
            host: host as u16,
            container: container as u16,
            public,
        }),
        _ => Err(format!(
            "{} is not NODE_PORT:CONTAINER_PORT, each 1 to 65535",
            shown(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_as_compose_writes_them() {
        let p = port_spec("127.0.0.1:8000:80").unwrap();
        assert_eq!((p.host, p.container, p.public), (8000, 80, false));
        let p = port_spec("443:8443/tcp").unwrap();
        assert_eq!((p.host, p.container, p.public), (443, 8443, true));
        let p = port_spec("[::1]:9000:9000").unwrap();
        assert!(!p.public);
        for (bad, why) in [
            ("80", "at random"),
            ("53:53/udp", "TCP ports only"),
            ("8000-8010:8000-8010", "range"),
            ("10.0.0.5:80:80", "binds the address"),
            ("0:80", "1 to 65535"),
            ("a:b:c:d", "is not"),
        ] {
            let e = port_spec(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn interpolation_follows_compose() {
        let vars: BTreeMap<String, String> = [
            ("TAG".to_string(), "1.4".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]
        .into();
        let i = |s: &str| interpolate(s, &vars);
        assert_eq!(i("shop/api:${TAG}").unwrap(), "shop/api:1.4");
        assert_eq!(i("shop/api:$TAG").unwrap(), "shop/api:1.4");
        assert_eq!(i("${PORT:-8080}:80").unwrap(), "8080:80");
        assert_eq!(i("${EMPTY:-x}|${EMPTY-y}").unwrap(), "x|");
        assert_eq!(i("costs $$5").unwrap(), "costs $5");
        assert!(i("${MISSING}").unwrap_err().contains("does not set"));
        assert!(
            i("${TAG:?need it}")
                .unwrap_err()
                .contains("cannot work out")
        );
        assert!(i("${TAG").unwrap_err().contains("without its }"));
    }
}
