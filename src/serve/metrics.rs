//! The registry's counters, served as Prometheus text at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde_json::{Map, Value};

/// Requests by route and status code, and the server-wide counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    rate_limited: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
}

impl Metrics {
    /// Counts one request answered with `code`.
    pub fn count(&self, route: &'static str, code: u16) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route, code))
            .or_default() += 1;
    }

    /// Counts one request refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Relaxed);
    }

    /// The text exposition, with the farm counts by state and whether the store takes
    /// writes.
    pub fn render(&self, farms: &Map<String, Value>, writable: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP vds_registry_store_writable Whether the database takes writes (1) or not (0).\n# TYPE \
            vds_registry_store_writable gauge\nvds_registry_store_writable {}",
            u8::from(writable)
        );
        out.push_str("# HELP vds_registry_requests_total Requests answered, by route and status code.\n# TYPE vds_registry_requests_total counter\n");
        for ((route, code), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "vds_registry_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP vds_registry_farms Farms by state.\n# TYPE vds_registry_farms gauge\n",
        );
        for (state, n) in farms {
            let _ = writeln!(out, "vds_registry_farms{{state=\"{state}\"}} {n}");
        }
        let counters = [
            (
                "vds_registry_rate_limited_total",
                "Requests refused by a token's rate limit.",
                self.rate_limited.load(Relaxed),
            ),
            (
                "vds_registry_reloads_total",
                "Configs reloaded (SIGHUP).",
                self.reloads.load(Relaxed),
            ),
            (
                "vds_registry_reload_failures_total",
                "Reloads rejected; the previous config kept serving.",
                self.reload_failures.load(Relaxed),
            ),
            (
                "vds_registry_log_dropped_total",
                "Access-log lines dropped because the log writer was behind.",
                crate::relay::log::dropped(),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        out
    }
}
