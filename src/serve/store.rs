//! The farms, kept in SQLite on the node (WAL, one connection, schema migrations by
//! `user_version`), so registrations survive restarts and reloads.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Schema migrations, in order; `PRAGMA user_version` is how many have run.
const MIGRATIONS: &[&str] = &["CREATE TABLE farms (
        ip TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}',
        heartbeat_interval INTEGER NOT NULL,
        registered_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        heartbeats INTEGER NOT NULL DEFAULT 0
    )"];

/// A farm's liveness, from the age of its last sign of life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Heard from within its heartbeat interval.
    Online,
    /// Missed its interval, but heard from within three.
    Stale,
    /// Not heard from for three intervals.
    Offline,
}

impl State {
    /// Every state, in order.
    pub const ALL: [State; 3] = [State::Online, State::Stale, State::Offline];

    /// Its name in JSON and queries.
    pub fn name(self) -> &'static str {
        match self {
            State::Online => "online",
            State::Stale => "stale",
            State::Offline => "offline",
        }
    }

    /// The state of a farm last seen `age_ms` ago that beats every `interval` seconds.
    pub fn of(age_ms: i64, interval: u64) -> State {
        let interval_ms = (interval as i64).saturating_mul(1000);
        if age_ms <= interval_ms {
            State::Online
        } else if age_ms <= interval_ms.saturating_mul(3) {
            State::Stale
        } else {
            State::Offline
        }
    }
}

/// A farm as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Farm {
    pub ip: String,
    pub name: String,
    pub metadata: serde_json::Value,
    pub heartbeat_interval: u64,
    pub registered_ms: i64,
    pub updated_ms: i64,
    pub last_seen_ms: i64,
    pub heartbeats: u64,
}

/// What a registration sets; absent fields keep their stored values.
#[derive(Debug, Default)]
pub struct Registration {
    pub name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub heartbeat_interval: Option<u64>,
}

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
    /// Its file, named in every error.
    path: std::path::PathBuf,
}

impl Store {
    /// Opens (creating) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn).with_context(|| format!("database {}", path.display()))?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// `r` with the database file named in its error.
    fn named<T, E>(&self, r: std::result::Result<T, E>) -> Result<T>
    where
        std::result::Result<T, E>: Context<T, E>,
    {
        r.with_context(|| format!("database {}", self.path.display()))
    }

    /// Runs `f`, its error naming the database file.
    fn in_db<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.named(f())
    }

    /// Whether the database takes writes now: a write that is rolled back (a file made
    /// read-only, a full disk or a broken file fail it), the file named when it fails.
    pub fn writable(&self) -> Result<()> {
        let conn = self.conn();
        let probe = conn
            .execute_batch("BEGIN IMMEDIATE; DELETE FROM farms WHERE ip = ''; ROLLBACK;")
            .with_context(|| format!("database {} does not take writes", self.path.display()));
        if probe.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        probe
    }

    /// How many farms are in each state at `now_ms`, counted by the database (no row is
    /// copied out).
    pub fn state_counts(&self, now_ms: i64) -> Result<[u64; 3]> {
        let conn = self.conn();
        let r = conn.query_row(
            "SELECT
               count(*) FILTER (WHERE ?1 - last_seen_ms <= heartbeat_interval * 1000),
               count(*) FILTER (WHERE ?1 - last_seen_ms > heartbeat_interval * 1000
                                  AND ?1 - last_seen_ms <= heartbeat_interval * 3000),
               count(*) FILTER (WHERE ?1 - last_seen_ms > heartbeat_interval * 3000)
             FROM farms",
            [now_ms],
            |r| {
                Ok([
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ])
            },
        );
        self.named(r)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates or updates the farm at `ip`; true when it was created.
    pub fn register(
        &self,
        ip: &str,
        reg: Registration,
        default_interval: u64,
        now_ms: i64,
    ) -> Result<(Farm, bool)> {
        self.in_db(|| {
            let conn = self.conn();
            let old = get(&conn, ip)?;
            let created = old.is_none();
            let mut farm = old.unwrap_or(Farm {
                ip: ip.to_string(),
                name: String::new(),
                metadata: serde_json::json!({}),
                heartbeat_interval: default_interval,
                registered_ms: now_ms,
                updated_ms: now_ms,
                last_seen_ms: now_ms,
                heartbeats: 0,
            });
            if let Some(name) = reg.name {
                farm.name = name;
            }
            if let Some(metadata) = reg.metadata {
                farm.metadata = metadata;
            }
            if let Some(interval) = reg.heartbeat_interval {
                farm.heartbeat_interval = interval;
            }
            farm.updated_ms = now_ms;
            farm.last_seen_ms = now_ms;
            conn.execute(
                "INSERT INTO farms (ip, name, metadata, heartbeat_interval, registered_ms,
                                    updated_ms, last_seen_ms, heartbeats)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(ip) DO UPDATE SET name = ?2, metadata = ?3, heartbeat_interval = ?4,
                     updated_ms = ?6, last_seen_ms = ?7",
                params![
                    farm.ip,
                    farm.name,
                    farm.metadata.to_string(),
                    farm.heartbeat_interval as i64,
                    farm.registered_ms,
                    farm.updated_ms,
                    farm.last_seen_ms,
                    farm.heartbeats as i64,
                ],
            )?;
            Ok((farm, created))
        })
    }

    /// Records a heartbeat of the farm at `ip`; `None` when it is not registered.
    pub fn heartbeat(&self, ip: &str, now_ms: i64) -> Result<Option<Farm>> {
        self.in_db(|| {
            let conn = self.conn();
            let n = conn.execute(
                "UPDATE farms SET last_seen_ms = ?2, heartbeats = heartbeats + 1 WHERE ip = ?1",
                params![ip, now_ms],
            )?;
            if n == 0 {
                return Ok(None);
            }
            get(&conn, ip)
        })
    }

    /// The farm at `ip`.
    pub fn get(&self, ip: &str) -> Result<Option<Farm>> {
        self.in_db(|| get(&self.conn(), ip))
    }

    /// Every farm, by address.
    pub fn list(&self) -> Result<Vec<Farm>> {
        let conn = self.conn();
        let r = conn
            .prepare_cached(&format!("{SELECT} ORDER BY ip"))
            .and_then(|mut stmt| stmt.query_map([], row)?.collect::<rusqlite::Result<_>>());
        self.named(r)
    }

    /// Forgets the farm at `ip`; false when there was none.
    pub fn delete(&self, ip: &str) -> Result<bool> {
        self.in_db(|| {
            Ok(self
                .conn()
                .execute("DELETE FROM farms WHERE ip = ?1", [ip])?
                > 0)
        })
    }
}

const SELECT: &str = "SELECT ip, name, metadata, heartbeat_interval, registered_ms, updated_ms,
                             last_seen_ms, heartbeats FROM farms";

fn get(conn: &Connection, ip: &str) -> Result<Option<Farm>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE ip = ?1"))?;
    Ok(stmt.query_row([ip], row).optional()?)
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Farm> {
    let metadata: String = r.get(2)?;
    Ok(Farm {
        ip: r.get(0)?,
        name: r.get(1)?,
        metadata: serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null),
        heartbeat_interval: r.get::<_, i64>(3)? as u64,
        registered_ms: r.get(4)?,
        updated_ms: r.get(5)?,
        last_seen_ms: r.get(6)?,
        heartbeats: r.get::<_, i64>(7)? as u64,
    })
}

/// Runs the migrations the database has not seen, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = version.max(0) as usize;
    if version > MIGRATIONS.len() {
        bail!(
            "its schema version {version} is newer than this vds-proxy knows ({}); deploy the newer vds-proxy again",
            MIGRATIONS.len()
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farms_survive_reopening_and_heartbeats_keep_the_registration() {
        let tmp = tempfile::Builder::new()
            .prefix("vds-store-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let db = dir.join("farms.db");
        {
            let s = Store::open(&db).unwrap();
            let reg = Registration {
                name: Some("farm-a".into()),
                metadata: Some(serde_json::json!({"gpus": 2})),
                heartbeat_interval: None,
            };
            let (farm, created) = s.register("100.64.0.9", reg, 30, 1_000).unwrap();
            assert!(created);
            assert_eq!(farm.heartbeat_interval, 30);
            assert!(s.heartbeat("100.64.0.10", 2_000).unwrap().is_none());
            let beat = s.heartbeat("100.64.0.9", 2_000).unwrap().unwrap();
            assert_eq!((beat.heartbeats, beat.last_seen_ms), (1, 2_000));
        }
        let s = Store::open(&db).unwrap();
        let farms = s.list().unwrap();
        assert_eq!(farms.len(), 1);
        assert_eq!(farms[0].name, "farm-a");
        assert_eq!(farms[0].metadata["gpus"], 2);
        let (again, created) = s
            .register("100.64.0.9", Registration::default(), 30, 3_000)
            .unwrap();
        assert!(!created);
        assert_eq!((again.name.as_str(), again.heartbeats), ("farm-a", 1));
        assert!(s.delete("100.64.0.9").unwrap());
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn the_database_counts_states_as_state_of_does_and_names_its_file_when_it_takes_no_writes() {
        let tmp = tempfile::Builder::new()
            .prefix("vds-store-w-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let db = dir.join("farms.db");
        let s = Store::open(&db).unwrap();
        // Last seen 0 ms ago, at and past each boundary of a 10 s interval.
        let now = 100_000;
        for (i, age) in [0, 10_000, 10_001, 30_000, 30_001, 90_000]
            .iter()
            .enumerate()
        {
            let ip = format!("100.64.0.{i}");
            let reg = Registration {
                heartbeat_interval: Some(10),
                ..Default::default()
            };
            s.register(&ip, reg, 10, now - age).unwrap();
        }
        let mut want = [0u64; 3];
        for f in s.list().unwrap() {
            let st = State::of(now - f.last_seen_ms, f.heartbeat_interval);
            want[State::ALL.iter().position(|x| *x == st).unwrap()] += 1;
        }
        assert_eq!(s.state_counts(now).unwrap(), want);
        assert_eq!(want, [2, 2, 2]);
        s.writable().unwrap();
        // The same file opened read-only (as a database its user cannot write).
        let ro = Store {
            conn: Mutex::new(
                Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .unwrap(),
            ),
            path: db.clone(),
        };
        let e = format!("{:#}", ro.writable().unwrap_err());
        assert!(
            e.contains(&format!("database {} does not take writes", db.display())),
            "{e}"
        );
        let e = format!("{:#}", ro.delete("100.64.0.1").unwrap_err());
        assert!(
            e.starts_with(&format!("database {}: ", db.display())),
            "{e}"
        );
        assert_eq!(ro.state_counts(now).unwrap(), want, "reading still works");
    }

    #[test]
    fn a_farm_goes_stale_after_its_interval_and_offline_after_three() {
        assert_eq!(State::of(10_000, 10), State::Online);
        assert_eq!(State::of(10_001, 10), State::Stale);
        assert_eq!(State::of(30_000, 10), State::Stale);
        assert_eq!(State::of(30_001, 10), State::Offline);
    }
}
