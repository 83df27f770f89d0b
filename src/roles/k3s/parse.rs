//! Reading and checking `k3s`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{K3s, K3sApp, K3sEgress, K3sJob};
use crate::inventory::{
    Check, Claims, Collector, Fields, Inventory, is_one_line, is_safe_name, kind,
};

const KEYS: &[&str] = &[
    "node",
    "namespace",
    "manifests_dir",
    "apps",
    "jobs",
    "egress",
];
const APP_KEYS: &[&str] = &[
    "name",
    "image",
    "replicas",
    "port",
    "host_port",
    "node_port",
    "tls_dir",
    "role",
    "allow_from",
    "env",
    "secret_env",
];
/// A Kubernetes name that must be an RFC 1123 label (namespaces, jobs, label values).
const DNS_LABEL: Check = Check {
    ok: is_dns_label,
    hint: "is not a Kubernetes name; use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. \"tg\"",
};
/// A Kubernetes Service name: an RFC 1035 label (it starts with a letter).
const DNS_1035: Check = Check {
    ok: is_dns_1035,
    hint: "is not a Kubernetes Service name; use at most 63 lowercase letters, digits and '-', starting with a letter \
    and ending with a letter or digit, e.g. \"web\"",
};

fn is_dns_label(s: &str) -> bool {
    is_safe_name(s) && !s.ends_with('-')
}

fn is_dns_1035(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The shortest `secret_env` value accepted: anything shorter is no secret, and could not
/// be told apart from other text in output.
pub const SECRET_MIN: usize = 8;

const JOB_KEYS: &[&str] = &["name", "image", "parallelism", "completions", "ttl_seconds"];
const EGRESS_KEYS: &[&str] = &["image", "secret"];

/// Reads the `k3s` object.
pub fn k3s(c: &mut Collector, path: &str, v: &Value) -> Option<K3s> {
    let f = Fields::new(c, path, v, KEYS)?;
    let node = f.req_ref(c, "node").unwrap_or_default();
    let namespace = f
        .checked_str(c, "namespace", &DNS_LABEL)
        .unwrap_or_else(|| "vds-proxy".into());
    let manifests_dir = f
        .node_path(c, "manifests_dir")
        .map(|d| d.to_string())
        .unwrap_or_else(|| "/var/lib/rancher/k3s/server/manifests".into());
    let apps = f.objects(c, "apps", k3s_app);
    let jobs = f
        .opt_array(c, "jobs")
        .into_iter()
        .filter_map(|(p, j)| {
            let f = Fields::new(c, &p, j, JOB_KEYS)?;
            Some(K3sJob {
                name: f.req_checked_str(c, "name", &DNS_LABEL).unwrap_or_default(),
                image: f.req_image(c, "image"),
                parallelism: f.opt_uint(c, "parallelism", 1, 10_000).unwrap_or(1) as u32,
                completions: f.opt_uint(c, "completions", 1, 1_000_000).unwrap_or(1) as u32,
                ttl_seconds: f.opt_uint(c, "ttl_seconds", 0, 604_800).unwrap_or(600) as u32,
            })
        })
        .collect();
    let egress = f.get("egress").and_then(|e| {
        let f = Fields::new(c, &f.path_of("egress"), e, EGRESS_KEYS)?;
        Some(K3sEgress {
            image: f.req_image(c, "image"),
            secret: f
                .checked_str(c, "secret", &DNS_LABEL)
                .unwrap_or_else(|| "wg-egress".into()),
        })
    });
    Some(K3s {
        node,
        namespace,
        manifests_dir,
        apps,
        jobs,
        egress,
    })
}

fn k3s_app(c: &mut Collector, path: &str, v: &Value) -> Option<K3sApp> {
    let f = Fields::new(c, path, v, APP_KEYS)?;
    let node_port = f.opt_port(c, "node_port");
    if let Some(p) = node_port
        && !(30000..=32767).contains(&p)
    {
        c.push(
            f.path_of("node_port"),
            format!("node port {p} is outside the NodePort range; expected 30000-32767"),
        );
    }
    let host_port = f.opt_port(c, "host_port");
    if host_port.is_some() && node_port.is_some() {
        c.push(
            f.path_of("node_port"),
            "an app is published either on a hostPort or on a NodePort, not both; remove one",
        );
    }
    let allow_from = f.list(
        c,
        "allow_from",
        "role names",
        "expected a role name, e.g. \"control\"",
        |s| is_safe_name(s).then(|| s.to_string()),
    );
    let env = env_map(c, &f, "env", false);
    let secret_env = env_map(c, &f, "secret_env", true);
    for (k, v) in &secret_env {
        if v.chars().count() < SECRET_MIN {
            c.push(
                format!("{}.{k}", f.path_of("secret_env")),
                format!("a secret shorter than {SECRET_MIN} characters is no secret (and could not be told apart in \
                output); use a longer one, or put the value in \"env\""),
            );
        }
    }
    Some(K3sApp {
        name: f.req_checked_str(c, "name", &DNS_1035).unwrap_or_default(),
        image: f.req_image(c, "image"),
        replicas: f.opt_uint(c, "replicas", 0, 1000).unwrap_or(1) as u32,
        port: f.req_port(c, "port").unwrap_or(1),
        host_port,
        node_port,
        // A hostPath mounted into the pod: never a system directory.
        tls_dir: f.data_dir(c, "tls_dir").map(|d| d.to_string()),
        role: f.checked_str(c, "role", &DNS_LABEL),
        allow_from,
        env,
        secret_env,
    })
}

/// An object of environment variables: NAME (letters, digits, '_') to string.
/// An object of NAME: value; with `secret`, a value may be a reference to where it is kept
/// (`inventory::secret`), and is never echoed.
fn env_map(c: &mut Collector, f: &Fields, key: &str, secret: bool) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match f.get(key) {
        None => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let name_ok = k
                    .chars()
                    .next()
                    .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
                    && k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
                let at = format!("{}.{k}", f.path_of(key));
                let val = match v {
                    _ if !name_ok => None,
                    Value::Object(_) | Value::String(_) if secret => {
                        match crate::inventory::secret::value(c, &at, v) {
                            Some(s) => Some(s),
                            None => continue,
                        }
                    }
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                };
                match val {
                    Some(val) if is_one_line(&val) => {
                        env.insert(k.clone(), val);
                    }
                    Some(_) if secret => c.push(
                        at,
                        "the secret (not shown) is not one line: it has a control character",
                    ),
                    _ => c.push(
                        format!("{}.{k}", f.path_of(key)),
                        "expected NAME (letters, digits, '_') with a one-line string value (no control characters)",
                    ),
                }
            }
        }
        Some(other) => c.push(
            f.path_of(key),
            format!(
                "expected an object of NAME: \"value\", found {}",
                kind(other)
            ),
        ),
    }
    env
}

/// Node references, duplicate apps, roles allowed from, and the ports apps publish.
pub fn validate(inv: &Inventory, k: &K3s, c: &mut Collector, claims: &mut Claims) {
    inv.check_node_ref(c, "$.k3s.node", &k.node);
    let roles: Vec<&str> = k
        .apps
        .iter()
        .filter_map(|a| a.role.as_deref())
        .chain(["job"])
        .collect();
    let mut apps: BTreeMap<&str, usize> = BTreeMap::new();
    // Every object gets its own manifest file (see plan.rs): no two may share one.
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut file = |c: &mut Collector, stem: String, path: String| {
        if let Some(first) = files.get(&stem) {
            c.push(
                &path,
                format!("its manifest would be vds-proxy-{}-{stem}.yaml, the file of {first}; rename it", k.namespace),
            );
        } else {
            files.insert(stem, path);
        }
    };
    file(c, "namespace".into(), "the namespace".into());
    if k.egress.is_some() {
        file(c, "wg-egress".into(), "$.k3s.egress".into());
    }
    for (i, j) in k.jobs.iter().enumerate() {
        file(
            c,
            format!("job-{}", j.name),
            format!("$.k3s.jobs[{i}].name"),
        );
    }
    for (i, a) in k.apps.iter().enumerate() {
        // (two apps of one name are reported as such below)
        if !k.apps[..i].iter().any(|b| b.name == a.name) {
            file(c, a.name.clone(), format!("$.k3s.apps[{i}].name"));
        }
    }
    for (i, a) in k.apps.iter().enumerate() {
        let base = format!("$.k3s.apps[{i}]");
        if let Some(first) = apps.insert(&a.name, i) {
            c.push(
                format!("{base}.name"),
                format!(
                    "duplicate app name \"{}\" (first used at $.k3s.apps[{first}])",
                    a.name
                ),
            );
        }
        for p in a.host_port.iter().chain(a.node_port.iter()) {
            claims.port(inv, c, &k.node, *p, format!("{base} (k3s app {})", a.name));
        }
        for (j, r) in a.allow_from.iter().enumerate() {
            if !roles.contains(&r.as_str()) {
                c.push(
                    format!("{base}.allow_from[{j}]"),
                    format!("no app has role \"{r}\"; known roles: {}", roles.join(", ")),
                );
            }
        }
    }
}
