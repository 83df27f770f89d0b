//! The relay's log: records go through a bounded queue to one writer thread, so forwarding
//! never waits for stderr (journald, a pipe). When the queue is full — the reader is slow or
//! stalled — a record is dropped and counted (`vds_relay_log_dropped_total`), never waited
//! for. The writer wakes every 10 ms, writes every queued record, then flushes once.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};

/// How many records may wait for the writer.
pub const QUEUE: usize = 8192;

struct Log {
    tx: SyncSender<String>,
    dropped: AtomicU64,
    queued: AtomicU64,
    written: AtomicU64,
}

static LOG: OnceLock<Log> = OnceLock::new();

fn log() -> &'static Log {
    LOG.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("relay-log".into())
            .spawn(move || write_all(rx))
            .expect("spawn the log writer");
        Log {
            tx,
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    })
}

/// How often the writer drains the queue. It never blocks waiting for a record, so a
/// connection that logs never has to wake it (no futex, no context switch per record).
const DRAIN_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

fn write_all(rx: Receiver<String>) {
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stderr.lock());
    loop {
        std::thread::sleep(DRAIN_EVERY);
        let mut n = 0;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    let _ = out.write_all(line.as_bytes());
                    n += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if n > 0 {
            let _ = out.flush();
            if let Some(l) = LOG.get() {
                l.written.fetch_add(n, Relaxed);
            }
        }
    }
}

/// Queues one line (a newline is added); drops it when the queue is full.
pub fn record(mut line: String) {
    line.push('\n');
    let l = log();
    match l.tx.try_send(line) {
        Ok(()) => {
            l.queued.fetch_add(1, Relaxed);
        }
        Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(_)) => {
            l.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Waits (at most `limit`) until every queued record is written: before the relay exits.
pub fn flush(limit: std::time::Duration) {
    let Some(l) = LOG.get() else { return };
    let deadline = std::time::Instant::now() + limit;
    while l.written.load(Relaxed) < l.queued.load(Relaxed) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Records dropped because the queue was full.
pub fn dropped() -> u64 {
    LOG.get().map_or(0, |l| l.dropped.load(Relaxed))
}

/// Formats and queues a log line.
#[macro_export]
macro_rules! relay_log {
    ($($arg:tt)*) => {
        $crate::relay::log::record(format!($($arg)*))
    };
}
