//! PostgreSQL backups: a daily dump of each database (custom format, checked, written
//! atomically, checksummed), weekly and monthly copies, retention by count, as a oneshot
//! service and a persistent timer per database. Inventory key `backups` (here); the
//! tool, units and timers in `plan.rs`; the tool itself is `backup.sh`; status: the age
//! of the last good dump and what is kept; `vds-proxy backup list|restore` in `verb.rs`.

pub mod copy;
mod plan;
pub mod ssh_client;
mod verb;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::contract::Check;
use crate::contract::{
    self, Ctx, Output, Prepare, PrepareMode, Prepared, Purge, Status, StatusInput, Systems, Verb,
};
use crate::inventory::SectionReader;
use crate::inventory::decimal;
use crate::inventory::{
    Check as StrCheck, Claims, Collector, Fields, Inventory, SAFE_NAME, Sections,
};
use crate::shell::quote;
use crate::templates::TemplateError;

pub use plan::{TOOL, service_name, tool_text};

/// The backups of one database.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// Its JSON path, e.g. `$.backups[0]`.
    pub path: String,
    pub node: String,
    pub database: String,
    /// The operating-system user `pg_dump` runs as (peer authentication).
    pub os_user: String,
    pub directory: String,
    /// `HH:MM`, UTC on most servers (the timer follows the node's time zone).
    pub time: String,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// `status` fails when the last good dump is older than this.
    pub max_age_hours: u32,
    /// PostgreSQL runs in a compose app: the app and its service.
    pub app: Option<(String, String)>,
    /// The PostgreSQL role the clients connect as, when not `os_user`'s.
    pub db_user: Option<String>,
    /// Another node that keeps a copy of each new dump.
    pub copy_to: Option<CopyTo>,
}

/// Where copies of the dumps go (see [`copy`]).
#[derive(Debug, Clone, Serialize)]
pub struct CopyTo {
    pub path: String,
    pub node: String,
    pub directory: String,
    /// How many daily copies of the database the node keeps.
    pub keep: u32,
}

#[derive(Debug, Default)]
struct Section {
    backups: Vec<Backup>,
}

/// Every backup of the inventory.
pub fn of(inv: &Inventory) -> &[Backup] {
    &inv.section::<Section>().backups
}

fn on<'a>(inv: &'a Inventory, node: &'a str) -> impl Iterator<Item = &'a Backup> {
    of(inv).iter().filter(move |b| b.node == node)
}

const KEYS: &[&str] = &[
    "node",
    "database",
    "app",
    "service",
    "db_user",
    "copy_to",
    "os_user",
    "directory",
    "time",
    "keep",
    "max_age_hours",
];
const KEEP_KEYS: &[&str] = &["daily", "weekly", "monthly"];
const COPY_KEYS: &[&str] = &["node", "directory", "keep"];
/// Where dumps go unless `directory` says.
pub const DIRECTORY: &str = "/var/backups/vds-proxy/postgresql";

const DATABASE: StrCheck = StrCheck {
    ok: |s| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    },
    hint: "is not a database name vds-proxy can back up; expected letters, digits and _ (at most 63, not starting with a digit)",
};

const OS_USER: StrCheck = StrCheck {
    ok: |s| {
        !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
            && !s.starts_with('-')
    },
    hint: "is not a user name; expected e.g. \"postgres\"",
};

const TIME: StrCheck = StrCheck {
    ok: |s| {
        s.split_once(':').is_some_and(|(h, m)| {
            h.len() == 2
                && m.len() == 2
                && decimal::<u8>(h).is_some_and(|h| h < 24)
                && decimal::<u8>(m).is_some_and(|m| m < 60)
        })
    },
    hint: "is not a time of day; expected \"HH:MM\", e.g. \"03:15\"",
};

fn backup(c: &mut Collector, path: &str, v: &Value) -> Option<Backup> {
    let f = Fields::new(c, path, v, KEYS)?;
    let node = f.req_ref(c, "node").unwrap_or_default();
    let database = f.req_checked_str(c, "database", &DATABASE);
    let os_user = f
        .checked_str(c, "os_user", &OS_USER)
        .unwrap_or_else(|| "postgres".into());
    let directory = f
        .data_dir(c, "directory")
        .map_or_else(|| DIRECTORY.to_string(), |d| d.to_string());
    let time = f
        .checked_str(c, "time", &TIME)
        .unwrap_or_else(|| "03:00".into());
    let (mut daily, mut weekly, mut monthly) = (7, 4, 6);
    if let Some(k) = f.get("keep")
        && let Some(kf) = Fields::new(c, &f.path_of("keep"), k, KEEP_KEYS)
    {
        daily = kf.opt_uint(c, "daily", 1, 1000).map_or(daily, |n| n as u32);
        weekly = kf
            .opt_uint(c, "weekly", 0, 1000)
            .map_or(weekly, |n| n as u32);
        monthly = kf
            .opt_uint(c, "monthly", 0, 1000)
            .map_or(monthly, |n| n as u32);
    }
    let max_age_hours = f.opt_uint(c, "max_age_hours", 1, 24 * 366).unwrap_or(26) as u32;
    let app = f.checked_str(c, "app", &SAFE_NAME);
    let service = f.checked_str(c, "service", &SAFE_NAME);
    if app.is_some() != service.is_some() {
        c.push(
            f.path_of(if app.is_some() { "service" } else { "app" }),
            "a database in a compose app needs both \"app\" and \"service\" (the service PostgreSQL runs in)",
        );
    }
    let db_user = f.checked_str(c, "db_user", &OS_USER);
    let app = app.zip(service);
    let copy_to = f.get("copy_to").and_then(|v| {
        let at = f.path_of("copy_to");
        let cf = Fields::new(c, &at, v, COPY_KEYS)?;
        let node = cf.req_ref(c, "node")?;
        let directory = cf
            .data_dir(c, "directory")
            .map(|d| d.to_string())
            .unwrap_or_else(|| {
                copy::directory_for(f.get("node").and_then(Value::as_str).unwrap_or_default())
            });
        let keep = cf.opt_uint(c, "keep", 1, 1000).map_or(daily, |n| n as u32);
        Some(CopyTo {
            path: at,
            node,
            directory,
            keep,
        })
    });
    Some(Backup {
        path: path.to_string(),
        node,
        database: database?,
        os_user,
        directory,
        time,
        keep_daily: daily,
        keep_weekly: weekly,
        keep_monthly: monthly,
        max_age_hours,
        app,
        db_user,
        copy_to,
    })
}

/// Shell that deletes the dumps of `db` (and their checksums) in `dir` (a shell word),
/// printing `@purged PATH` for each.
fn delete_dumps(dir: &str, db: &str) -> String {
    format!(
        "for f in {dir}/{db}-*.dump {dir}/{db}-*.dump.sha256; do if [ -f \"$f\" ]; then rm -f \"$f\" && echo \"@purged $f\"; fi; done"
    )
}

impl Backup {
    /// Where the PostgreSQL clients run, for an app's database: "service db of app shop"
    /// (its container is found on the node by its Compose labels, on the app's engine).
    pub fn container(&self) -> Option<String> {
        self.app
            .as_ref()
            .map(|(a, s)| format!("service {s} of app {a}"))
    }

    /// The unit that runs the database (the backup is ordered after it).
    pub fn after(&self) -> String {
        match &self.app {
            Some((a, _)) => crate::roles::compose::unit_of(a),
            None => "postgresql.service".to_string(),
        }
    }

    /// The environment the tool runs with to reach the database: its container and role.
    pub fn pg_env(&self) -> Vec<(String, String)> {
        let app = self.app.iter().flat_map(|(a, s)| {
            [
                ("PG_APP".to_string(), a.clone()),
                ("PG_SERVICE".to_string(), s.clone()),
            ]
        });
        let role = self.db_user.clone().map(|r| ("PG_ROLE".to_string(), r));
        app.chain(role).collect()
    }
}

/// [`Backup::pg_env`] as a shell prefix of the tool's command line: empty for a database
/// on the node.
pub fn tool_env(b: &Backup) -> String {
    b.pg_env()
        .iter()
        .map(|(k, v)| format!("{k}={} ", quote(v)))
        .collect()
}

fn validate(inv: &Inventory, c: &mut Collector) {
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for b in of(inv) {
        if !inv.check_node_ref(c, &format!("{}.node", b.path), &b.node) {
            continue;
        }
        if let Some((app, service)) = &b.app {
            let apps = crate::roles::compose::of(inv);
            match apps.iter().find(|a| &a.name == app && a.node == b.node) {
                None => c.push(
                    format!("{}.app", b.path),
                    format!("no app {app} on node {}; the database must run on the node that keeps its dumps", b.node),
                ),
                Some(a) if !a.services.iter().any(|s| &s.name == service) => c.push(
                    format!("{}.service", b.path),
                    format!(
                        "app {app} has no service {service}; expected one of: {}",
                        a.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(_) => {}
            }
        }
        if let Some(to) = &b.copy_to {
            copy::validate(inv, c, b, to);
        }
        if let Some(first) = seen.insert((&b.node, &b.database), &b.path) {
            c.push(
                format!("{}.database", b.path),
                format!(
                    "database {} on node {} is already backed up by {first}; one entry per database",
                    b.database, b.node
                ),
            );
        }
    }
}

/// The backups role.
pub struct System;

impl SectionReader for System {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["backups"]
    }

    fn parse(&self, top: &Fields, c: &mut Collector, into: &mut Sections) {
        let backups = top.objects(c, "backups", backup);
        into.insert(Section { backups });
    }

    fn validate(&self, inv: &Inventory, c: &mut Collector, _claims: &mut Claims) {
        validate(inv, c);
    }

    fn secrets(&self, _inv: &Inventory) -> Vec<String> {
        Vec::new()
    }

    fn summary(&self, inv: &Inventory) -> Option<String> {
        let n = of(inv).len();
        (n > 0).then(|| format!("{n} backup(s)"))
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

impl Prepare for System {
    fn prepare_script(&self, inv: &Inventory, node: &str, mode: PrepareMode) -> Option<String> {
        copy::script(inv, node, mode)
    }

    fn prepare_read(
        &self,
        inv: &Inventory,
        outputs: &BTreeMap<String, Prepared>,
        into: &mut Sections,
    ) -> Vec<String> {
        let (keys, problems) = copy::read(inv, outputs);
        into.insert(keys);
        problems
    }
}

impl Status for System {
    fn status_script(&self, inv: &Inventory, node: &str) -> String {
        on(inv, node)
            .map(|b| {
                format!(
                    "if [ -x {TOOL} ]; then {}{TOOL} status {} {} {} {}; else echo '@backup {} absent'; fi\n",
                    tool_env(b),
                    quote(&b.database),
                    quote(&b.directory),
                    u64::from(b.max_age_hours) * 3600,
                    quote(&service_name(b)),
                    b.database
                )
            })
            .collect()
    }

    fn status_checks(&self, inv: &Inventory, node: &str, seen: &StatusInput) -> Vec<Check> {
        on(inv, node)
            .map(|b| {
                let line = seen.stdout.lines().find_map(|l| {
                    let rest = l.strip_prefix("@backup ")?;
                    let (db, rest) = rest.split_once(' ')?;
                    (db == b.database).then_some(rest)
                });
                let (ok, detail) = match line {
                    Some(rest) => status_detail(b, rest),
                    None => (false, "no answer from the backup tool".to_string()),
                };
                Check::new(node, format!("backup {}", b.database), ok, detail)
            })
            .collect()
    }
}

impl Purge for System {
    fn purge_script(&self, inv: &Inventory, node: &str) -> String {
        on(inv, node)
            .map(|b| {
                let (dir, db) = (quote(&b.directory), &b.database);
                format!(
                    "for k in daily weekly monthly; do {}; rmdir {dir}/$k 2>/dev/null; done; \
                     rm -f {dir}/.last-ok-{db}; rmdir {dir} 2>/dev/null; true\n",
                    delete_dumps(&format!("{dir}/$k"), db)
                )
            })
            .chain(copy::purge_script(inv, node))
            .collect()
    }
}

impl System {
    fn verbs() -> Vec<Verb> {
        vec![verb::verb()]
    }
}

/// Registers this system and the capabilities it opts into.
pub fn register(r: &mut Systems) {
    r.kinds.push(ssh_client::SSH_CLIENT);
    r.all.push(&System);
    r.prepare.push(&System);
    r.status.push(&System);
    r.purge.push(&System);
    r.verbs.extend(System::verbs());
}

/// Reads `STATE AGE FILE SIZE DAILY WEEKLY MONTHLY` from the tool's status line.
fn status_detail(b: &Backup, rest: &str) -> (bool, String) {
    let w: Vec<&str> = rest.split_whitespace().collect();
    if w.first() == Some(&"absent") {
        return (false, "not deployed yet".into());
    }
    let [state, age, file, size, daily, weekly, monthly] = w[..] else {
        return (false, format!("unreadable status {rest:?}"));
    };
    let kept = format!("kept {daily} daily, {weekly} weekly, {monthly} monthly");
    let last = match (age.parse::<u64>(), size.parse::<u64>()) {
        (Ok(age), Ok(size)) => format!(
            "last good dump {file} ({:.1} MB) {} ago",
            size as f64 / 1e6,
            ago(age)
        ),
        _ => "no good dump yet".to_string(),
    };
    let unit = service_name(b);
    match state {
        "ok" => (true, format!("{last}; {kept}")),
        "old" => (
            false,
            format!(
                "{last}, more than {} h: check `systemctl list-timers {}` and `journalctl -u {unit}`; {kept}",
                b.max_age_hours,
                plan::timer_name(b)
            ),
        ),
        "waiting" => (
            true,
            format!(
                "no dump yet; the first runs at {} (or `systemctl start {unit}` now)",
                b.time
            ),
        ),
        "never" => (
            false,
            format!(
                "no good dump yet (the timer runs daily at {}); run `systemctl start {unit}` to make one now",
                b.time
            ),
        ),
        _ => (
            false,
            format!("the last run failed: see `journalctl -u {unit}`; {last}; {kept}"),
        ),
    }
}

fn ago(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}
