//! Reading and checking `k3s`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{K3s, K3sApp, K3sEgress, K3sJob};
use crate::inventory::{
    ABSOLUTE_PATH, Claims, Collector, Fields, Inventory, SAFE_NAME, is_safe_name, kind,
};
use crate::roles::replicas::image;

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
const JOB_KEYS: &[&str] = &["name", "image", "parallelism", "completions", "ttl_seconds"];
const EGRESS_KEYS: &[&str] = &["image", "secret"];

/// Reads the `k3s` object.
pub fn k3s(c: &mut Collector, path: &str, v: &Value) -> Option<K3s> {
    let f = Fields::new(c, path, v, KEYS)?;
    let node = f.req_str(c, "node").unwrap_or_default();
    let namespace = f
        .checked_str(c, "namespace", &SAFE_NAME)
        .unwrap_or_else(|| "vds-proxy".into());
    let manifests_dir = f
        .checked_str(c, "manifests_dir", &ABSOLUTE_PATH)
        .unwrap_or_else(|| "/var/lib/rancher/k3s/server/manifests".into());
    let apps = f
        .opt_array(c, "apps")
        .into_iter()
        .filter_map(|(p, a)| k3s_app(c, &p, a))
        .collect();
    let jobs = f
        .opt_array(c, "jobs")
        .into_iter()
        .filter_map(|(p, j)| {
            let f = Fields::new(c, &p, j, JOB_KEYS)?;
            Some(K3sJob {
                name: f.req_checked_str(c, "name", &SAFE_NAME).unwrap_or_default(),
                image: image(c, &f),
                parallelism: f.opt_uint(c, "parallelism", 1, 10_000).unwrap_or(1) as u32,
                completions: f.opt_uint(c, "completions", 1, 1_000_000).unwrap_or(1) as u32,
                ttl_seconds: f.opt_uint(c, "ttl_seconds", 0, 604_800).unwrap_or(600) as u32,
            })
        })
        .collect();
    let egress = f.get("egress").and_then(|e| {
        let f = Fields::new(c, &f.path_of("egress"), e, EGRESS_KEYS)?;
        Some(K3sEgress {
            image: image(c, &f),
            secret: f
                .checked_str(c, "secret", &SAFE_NAME)
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
    let env = env_map(c, &f, "env");
    let secret_env = env_map(c, &f, "secret_env");
    Some(K3sApp {
        name: f.req_checked_str(c, "name", &SAFE_NAME).unwrap_or_default(),
        image: image(c, &f),
        replicas: f.opt_uint(c, "replicas", 0, 1000).unwrap_or(1) as u32,
        port: f.req_port(c, "port").unwrap_or(1),
        host_port,
        node_port,
        tls_dir: f.checked_str(c, "tls_dir", &ABSOLUTE_PATH),
        role: f.checked_str(c, "role", &SAFE_NAME),
        allow_from,
        env,
        secret_env,
    })
}

/// An object of environment variables: NAME (letters, digits, '_') to string.
fn env_map(c: &mut Collector, f: &Fields, key: &str) -> BTreeMap<String, String> {
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
                match v.as_str() {
                    Some(val) if name_ok => {
                        env.insert(k.clone(), val.to_string());
                    }
                    _ => c.push(
                        format!("{}.{k}", f.path_of(key)),
                        "expected NAME (letters, digits, '_') with a string value",
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
