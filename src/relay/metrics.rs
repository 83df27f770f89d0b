//! Counters per route and the Prometheus text endpoint.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Counters of one route; they survive reloads (keyed by route name).
#[derive(Debug, Default)]
pub struct RouteStats {
    pub open: AtomicU64,
    pub total: AtomicU64,
    pub refused: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub upstream_failures: AtomicU64,
    pub no_upstream: AtomicU64,
    pub bad_proxy_header: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub errors: AtomicU64,
}

/// A metric family: name, type, help text, and how to read it from a route (or a worker).
type Family<T = RouteStats> = (&'static str, &'static str, &'static str, fn(&T) -> u64);

/// One family in the text exposition: its HELP and TYPE lines, then a line per item,
/// labelled `label="KEY"`.
fn write_family<'a, T: 'a>(
    out: &mut String,
    (name, kind, help, get): Family<T>,
    label: &str,
    items: impl Iterator<Item = (String, &'a T)>,
) {
    let _ = writeln!(
        out,
        "# HELP vds_relay_{name} {help}\n# TYPE vds_relay_{name} {kind}"
    );
    for (key, item) in items {
        let _ = writeln!(out, "vds_relay_{name}{{{label}=\"{key}\"}} {}", get(item));
    }
}

/// Counters of one worker thread: how the connections spread over them.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Connections this worker carries now.
    pub open: AtomicU64,
    /// Connections it has carried.
    pub total: AtomicU64,
    /// Connections it accepted and handed to a less busy worker.
    pub handed_over: AtomicU64,
}

/// Every route's counters plus the relay-wide ones.
#[derive(Debug, Default)]
pub struct Stats {
    routes: Mutex<BTreeMap<String, Arc<RouteStats>>>,
    pub accept_errors: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    /// One per worker thread.
    pub workers: Vec<WorkerStats>,
}

impl Stats {
    /// Counters for a relay with `workers` worker threads.
    pub fn new(workers: usize) -> Self {
        Stats {
            workers: (0..workers.max(1))
                .map(|_| WorkerStats::default())
                .collect(),
            ..Stats::default()
        }
    }

    /// The worker carrying the fewest connections now, and how many.
    pub fn least_busy(&self) -> (usize, u64) {
        self.workers
            .iter()
            .enumerate()
            .map(|(i, w)| (i, w.open.load(Relaxed)))
            .min_by_key(|(_, open)| *open)
            .unwrap_or((0, 0))
    }

    /// The counters of `route`, created on first use.
    pub fn route(&self, route: &str) -> Arc<RouteStats> {
        self.routes
            .lock()
            .expect("stats lock")
            .entry(route.to_string())
            .or_default()
            .clone()
    }

    /// Connections open across all routes.
    pub fn open(&self) -> u64 {
        self.routes
            .lock()
            .expect("stats lock")
            .values()
            .map(|r| r.open.load(Relaxed))
            .sum()
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let routes = self.routes.lock().expect("stats lock").clone();
        let mut out = String::new();
        let families: [Family; 10] = [
            ("connections_open", "gauge", "Connections open now.", |r| {
                r.open.load(Relaxed)
            }),
            (
                "connections_total",
                "counter",
                "Connections accepted and relayed or attempted.",
                |r| r.total.load(Relaxed),
            ),
            (
                "connections_refused_total",
                "counter",
                "Connections closed at once because max_connections was reached.",
                |r| r.refused.load(Relaxed),
            ),
            (
                "bytes_in_total",
                "counter",
                "Bytes from clients to upstreams.",
                |r| r.bytes_in.load(Relaxed),
            ),
            (
                "bytes_out_total",
                "counter",
                "Bytes from upstreams to clients.",
                |r| r.bytes_out.load(Relaxed),
            ),
            (
                "upstream_failures_total",
                "counter",
                "Upstream connects that failed or timed out.",
                |r| r.upstream_failures.load(Relaxed),
            ),
            (
                "no_upstream_total",
                "counter",
                "Connections closed because no upstream could be reached.",
                |r| r.no_upstream.load(Relaxed),
            ),
            (
                "bad_proxy_header_total",
                "counter",
                "Connections with a missing or malformed PROXY header.",
                |r| r.bad_proxy_header.load(Relaxed),
            ),
            (
                "idle_timeouts_total",
                "counter",
                "Connections closed by the idle timeout.",
                |r| r.idle_timeouts.load(Relaxed),
            ),
            (
                "errors_total",
                "counter",
                "Connections ended by an I/O error.",
                |r| r.errors.load(Relaxed),
            ),
        ];
        for family in families {
            let items = routes.iter().map(|(route, r)| (route.clone(), &**r));
            write_family(&mut out, family, "route", items);
        }
        let workers: [Family<WorkerStats>; 3] = [
            (
                "worker_connections_open",
                "gauge",
                "Connections each worker thread carries now.",
                |w| w.open.load(Relaxed),
            ),
            (
                "worker_connections_total",
                "counter",
                "Connections each worker thread has carried.",
                |w| w.total.load(Relaxed),
            ),
            (
                "worker_handed_over_total",
                "counter",
                "Connections a worker accepted and handed to a less busy one.",
                |w| w.handed_over.load(Relaxed),
            ),
        ];
        for family in workers {
            let items = self
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| (i.to_string(), w));
            write_family(&mut out, family, "worker", items);
        }
        for (name, v) in [
            ("accept_errors_total", self.accept_errors.load(Relaxed)),
            ("reloads_total", self.reloads.load(Relaxed)),
            ("reload_failures_total", self.reload_failures.load(Relaxed)),
            ("log_dropped_total", super::log::dropped()),
        ] {
            let _ = writeln!(out, "# TYPE vds_relay_{name} counter\nvds_relay_{name} {v}");
        }
        out
    }
}

/// Serves `GET /metrics` (any path, really) on `l` until the task is dropped.
pub async fn serve(l: TcpListener, stats: Arc<Stats>) {
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut req = [0u8; 1024];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut req)).await;
            let body = stats.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}
