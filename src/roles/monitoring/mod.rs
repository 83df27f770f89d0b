//! Monitoring derived from the inventory: Prometheus, Alertmanager and the blackbox
//! exporter on one node, node_exporter on every active node, and alert rules for what the
//! inventory deploys (nodes, tunnels, HAProxy backends, routes, sites, registries,
//! backups, the firewall, disks). Inventory key `monitoring` (here); the files in
//! `plan.rs`, the rules in `rules.rs`, the facts each node writes for node_exporter in
//! `facts.sh`; status and the `alerts` verb read Alertmanager (`alerts.rs`).

pub mod alerts;
pub mod kinds;
mod plan;
pub mod rules;
mod values;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::contract::{self, Ctx, Output, Purge, Status, StatusInput, Systems};
use crate::inventory::{Claims, Collector, Email, Fields, Inventory, SectionReader, Sections};
use crate::templates::TemplateError;

pub use values::{Duration, HttpUrl};

/// Where node_exporter listens on every monitored node (on its mesh address).
pub const NODE_EXPORTER_PORT: u16 = 9100;
/// Prometheus, Alertmanager and the blackbox exporter on the monitoring node (loopback).
pub const PROMETHEUS_PORT: u16 = 9090;
pub const ALERTMANAGER_PORT: u16 = 9093;
pub const BLACKBOX_PORT: u16 = 9115;

/// The `monitoring` section.
#[derive(Debug, Clone)]
pub struct Monitoring {
    /// Its JSON path, `$.monitoring`.
    pub path: String,
    /// The node that runs Prometheus, Alertmanager and the blackbox exporter.
    pub node: String,
    /// Seconds between scrapes (and rule evaluations).
    pub scrape_interval: u32,
    /// Days Prometheus keeps samples.
    pub retention_days: u32,
    /// Webhook receivers (a URL may hold a token: read as a secret).
    pub webhooks: Vec<HttpUrl>,
    pub telegram: Option<Telegram>,
    pub email: Option<EmailReceiver>,
    /// Alert settings the inventory overrides, by alert name.
    pub alerts: BTreeMap<String, AlertSetting>,
}

/// Alerts sent to a Telegram chat by a bot.
#[derive(Debug, Clone)]
pub struct Telegram {
    /// The bot's token: a secret.
    pub bot_token: String,
    pub chat_id: i64,
}

/// Alerts sent by e-mail through an SMTP server.
#[derive(Debug, Clone)]
pub struct EmailReceiver {
    pub to: Email,
    pub from: Email,
    /// `host:port` of the SMTP server.
    pub smarthost: String,
    pub username: Option<String>,
    /// A secret.
    pub password: Option<String>,
}

/// What the inventory says about one alert.
#[derive(Debug, Clone, Default)]
pub struct AlertSetting {
    /// How long its condition must hold before it fires.
    pub for_: Option<Duration>,
    /// Not generated at all.
    pub off: bool,
}

#[derive(Debug, Default)]
struct Section {
    monitoring: Option<Monitoring>,
}

/// The monitoring of the inventory, if it has one.
pub fn of(inv: &Inventory) -> Option<&Monitoring> {
    inv.section::<Section>().monitoring.as_ref()
}

/// The nodes node_exporter runs on and is scraped at: every active node with an address
/// the monitoring node can reach (its mesh address).
pub fn monitored(inv: &Inventory) -> Vec<(&str, IpAddr)> {
    inv.nodes
        .iter()
        .filter(|n| n.active)
        .filter_map(|n| Some((n.name.as_str(), n.mesh_address()?)))
        .collect()
}

const KEYS: &[&str] = &[
    "node",
    "scrape_interval",
    "retention_days",
    "receivers",
    "alerts",
];
const RECEIVER_KEYS: &[&str] = &["webhook", "telegram", "email"];
const TELEGRAM_KEYS: &[&str] = &["bot_token", "chat_id"];
const EMAIL_KEYS: &[&str] = &["to", "from", "smarthost", "username", "password"];
const ALERT_KEYS: &[&str] = &["for", "off"];

fn monitoring(c: &mut Collector, path: &str, v: &Value) -> Option<Monitoring> {
    let f = Fields::new(c, path, v, KEYS)?;
    let node = f.req_ref(c, "node").unwrap_or_default();
    let scrape_interval = f.opt_uint(c, "scrape_interval", 1, 3600).unwrap_or(15) as u32;
    let retention_days = f.opt_uint(c, "retention_days", 1, 3650).unwrap_or(15) as u32;
    let mut m = Monitoring {
        path: path.to_string(),
        node,
        scrape_interval,
        retention_days,
        webhooks: Vec::new(),
        telegram: None,
        email: None,
        alerts: BTreeMap::new(),
    };
    if let Some(r) = f.get("receivers") {
        receivers(c, &f.path_of("receivers"), r, &mut m);
    }
    if let Some(a) = f.get("alerts") {
        m.alerts = alerts_settings(c, &f.path_of("alerts"), a);
    }
    Some(m)
}

fn receivers(c: &mut Collector, path: &str, v: &Value, m: &mut Monitoring) {
    let Some(f) = Fields::new(c, path, v, RECEIVER_KEYS) else {
        return;
    };
    for (at, url) in f.opt_array(c, "webhook") {
        let Some(s) = crate::inventory::secret::value(c, &at, url) else {
            continue;
        };
        // A secret not read now (`show`, another node's deploy) stands in as is.
        if s.starts_with(crate::inventory::secret::OFFLINE) {
            m.webhooks.push(HttpUrl::unread(s));
            continue;
        }
        match HttpUrl::parse(&s) {
            Ok(u) => m.webhooks.push(u),
            // The URL may hold a token: the rule only, never the value.
            Err(rule) => c.push(at, format!("the webhook URL (not shown) {rule}")),
        }
    }
    if let Some(t) = f.get("telegram") {
        m.telegram = telegram(c, &f.path_of("telegram"), t);
    }
    if let Some(e) = f.get("email") {
        m.email = email(c, &f.path_of("email"), e);
    }
}

fn telegram(c: &mut Collector, path: &str, v: &Value) -> Option<Telegram> {
    let f = Fields::new(c, path, v, TELEGRAM_KEYS)?;
    let bot_token = f.req_secret(c, "bot_token", values::bot_token_problem);
    let chat_id = match f.get("chat_id") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i != 0) => n.as_i64(),
        Some(_) => {
            c.push(
                f.path_of("chat_id"),
                "is not a chat id; expected the chat's number, e.g. -1001234567890",
            );
            None
        }
        None => {
            c.push(
                f.path_of("chat_id"),
                "required chat_id is missing; the bot sends alerts to this chat",
            );
            None
        }
    };
    Some(Telegram {
        bot_token: bot_token?,
        chat_id: chat_id?,
    })
}

fn email(c: &mut Collector, path: &str, v: &Value) -> Option<EmailReceiver> {
    let f = Fields::new(c, path, v, EMAIL_KEYS)?;
    let required = |c: &mut Collector, key: &str| {
        if f.get(key).is_none() {
            c.push(f.path_of(key), format!("required {key} is missing"));
        }
        f.parsed(c, key, Email::parse)
    };
    let to = required(c, "to");
    let from = required(c, "from");
    if f.get("smarthost").is_none() {
        c.push(
            f.path_of("smarthost"),
            "required smarthost is missing; expected the SMTP server as host:port, e.g. \"smtp.example.com:587\"",
        );
    }
    let smarthost = f.parsed(c, "smarthost", values::smarthost);
    let username = f.one_line(c, "username");
    let password = f.opt_secret(c, "password", |_| None);
    Some(EmailReceiver {
        to: to?,
        from: from?,
        smarthost: smarthost?,
        username,
        password,
    })
}

fn alerts_settings(c: &mut Collector, path: &str, v: &Value) -> BTreeMap<String, AlertSetting> {
    let names: Vec<&'static str> = rules::ALERTS.iter().map(|a| a.name).collect();
    let mut out = BTreeMap::new();
    let Some(f) = Fields::new(c, path, v, &names) else {
        return out;
    };
    for name in &names {
        let Some(v) = f.get(name) else { continue };
        let Some(a) = Fields::new(c, &f.path_of(name), v, ALERT_KEYS) else {
            continue;
        };
        let setting = AlertSetting {
            for_: a.parsed(c, "for", Duration::parse),
            off: a.bool_or(c, "off", false),
        };
        out.insert(name.to_string(), setting);
    }
    out
}

fn validate(inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
    let Some(m) = of(inv) else { return };
    if !inv.check_node_ref(c, &format!("{}.node", m.path), &m.node) {
        return;
    }
    let Some(home) = inv.node(&m.node) else {
        return;
    };
    let Some(from) = home.mesh_address() else {
        c.push(
            format!("{}.node", m.path),
            format!(
                "node {} has no address the other nodes see it at; give it a tailscale_ip or public_ip",
                m.node
            ),
        );
        return;
    };
    // node_exporter answers the monitoring node only; the firewall opens its port to it.
    for (node, _) in monitored(inv) {
        claims.port_from(
            inv,
            c,
            node,
            NODE_EXPORTER_PORT,
            format!("{}.node (node_exporter, scraped from {})", m.path, m.node),
            vec![from.to_string()],
        );
    }
    for (port, what) in [
        (PROMETHEUS_PORT, "Prometheus"),
        (ALERTMANAGER_PORT, "Alertmanager"),
        (BLACKBOX_PORT, "the blackbox exporter"),
    ] {
        claims.local_port(
            inv,
            c,
            &m.node,
            port,
            format!("{}.node ({what}, on 127.0.0.1)", m.path),
        );
    }
}

/// The monitoring system.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "monitoring"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["monitoring"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let monitoring = top
            .get("monitoring")
            .and_then(|v| monitoring(c, &top.path_of("monitoring"), v));
        into.insert(Section { monitoring });
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, claims: &mut Claims) {
        validate(inv, c, claims);
    }

    fn secrets(&self, inv: &Inventory) -> Vec<String> {
        let Some(m) = of(inv) else { return Vec::new() };
        let mut out: Vec<String> = m.webhooks.iter().map(|u| u.to_string()).collect();
        out.extend(m.telegram.iter().map(|t| t.bot_token.clone()));
        out.extend(m.email.iter().filter_map(|e| e.password.clone()));
        out
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        of(inv).map(|m| {
            format!(
                "monitoring on {} ({} node(s) scraped)",
                m.node,
                monitored(inv).len()
            )
        })
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
        match of(inv) {
            Some(m) if m.node == node => alerts::script(),
            _ => String::new(),
        }
    }

    fn status_checks(
        &self,
        inv: &Inventory,
        node: &str,
        seen: &StatusInput,
    ) -> Vec<contract::Check> {
        match of(inv) {
            Some(m) if m.node == node => alerts::status_checks(node, seen.stdout),
            _ => Vec::new(),
        }
    }
}

impl Purge for System {
    /// What Prometheus and Alertmanager keep (samples, silences, what was notified), and
    /// the facts file: the directories themselves belong to Debian's packages and stay.
    fn purge_script(&self, inv: &Inventory, node: &str) -> String {
        let mut dirs = Vec::new();
        if monitored(inv).iter().any(|(n, _)| *n == node) {
            dirs.push(format!("{}/vds_proxy.prom", plan::TEXTFILE_DIR));
        }
        if of(inv).is_some_and(|m| m.node == node) {
            dirs.extend(plan::DATA.iter().map(|d| format!("{d}/*")));
        }
        dirs.iter()
            .map(|d| {
                format!(
                    "for f in {d}; do if [ -e \"$f\" ]; then rm -rf \"$f\" && echo \"@purged $f\"; fi; done\n"
                )
            })
            .collect()
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.extend(kinds::ALL);
    r.all.push(&System);
    r.status.push(&System);
    r.purge.push(&System);
    r.verbs.push(alerts::verb());
}
