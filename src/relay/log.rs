//! The relay's log: records go through a bounded queue to one writer thread, so forwarding
//! never waits for stderr (journald, a pipe). When the queue is full — the reader is slow or
//! stalled — a record is dropped and counted (`vds_relay_log_dropped_total`), never waited
//! for; once the log can be written again, a line in it says how many were dropped. The
//! writer drains the queue every 10 ms and writes what it drained at most 100 ms later,
//! together; after 200 ms without a record it sleeps until the next one.
//!
//! Under systemd, when stderr is the journal, the records written together go to
//! journald's native socket as **one** entry (one line per record): journald's cost is per
//! entry, so at thousands of connections a second the journal no longer takes CPU from
//! forwarding. Elsewhere (a pipe, a terminal) the lines are written to stderr.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
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
/// Empty drains in a row after which the writer waits for the next record instead.
const QUIET_DRAINS: u32 = 20;
/// How long drained records may wait to be written with later ones: journald's cost is
/// per entry (at 10 ms it spent ~9 µs of CPU per relayed connection, at 100 ms ~1.5 µs).
const EMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// journald's socket for structured entries (`sd_journal_send`'s protocol).
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// The most text one journal entry carries; a longer batch is split. One datagram, well
/// under the default socket send buffer.
const ENTRY_MAX: usize = 160 * 1024;

fn write_all(rx: Receiver<String>) {
    let stderr = std::io::stderr();
    let journal_stream = std::env::var_os("JOURNAL_STREAM");
    let mut journal =
        is_journal_stream(journal_stream.as_deref(), stderr.as_fd()).then(Journal::default);
    let mut out = |lines: &str, records: u64| {
        emit(&mut journal, lines);
        if let Some(l) = LOG.get() {
            l.written.fetch_add(records, Relaxed);
        }
    };
    let mut batch = Batch::default();
    let mut reported = 0;
    let mut quiet = 0u32;
    loop {
        // A relay with nothing to log lets the writer sleep until a record comes (one
        // wake-up then) instead of draining an empty queue 100 times a second: at 100 idle
        // hosts those wake-ups took a tenth of a 2-core machine.
        if quiet >= QUIET_DRAINS && batch.text.is_empty() {
            match rx.recv() {
                Ok(line) => batch.push(&line, std::time::Instant::now(), &mut out),
                Err(_) => return,
            }
            quiet = 0;
        }
        std::thread::sleep(DRAIN_EVERY);
        let now = std::time::Instant::now();
        let mut drained = 0;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    batch.push(&line, now, &mut out);
                    drained += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return batch.write(&mut out),
            }
        }
        quiet = if drained == 0 { quiet + 1 } else { 0 };
        // The log itself says where records are missing, once it can be written again.
        if let Some(note) = dropped_note(&mut reported, dropped()) {
            batch.push(&note, now, &mut out);
        }
        if batch.due(now) {
            batch.write(&mut out);
        }
    }
}

/// A line saying how many records were dropped since the last such line, if any were.
fn dropped_note(reported: &mut u64, dropped: u64) -> Option<String> {
    let n = dropped.checked_sub(*reported).filter(|&n| n > 0)?;
    *reported = dropped;
    Some(format!(
        "relay: {n} log record(s) dropped: what reads the relay's log (journald) was too slow; forwarding went on\n"
    ))
}

/// Records waiting to be written together: written when the next would not fit in one
/// entry, or once the oldest has waited `EMIT_EVERY`.
#[derive(Default)]
struct Batch {
    text: String,
    records: u64,
    since: Option<std::time::Instant>,
}

impl Batch {
    fn push(&mut self, line: &str, now: std::time::Instant, out: &mut impl FnMut(&str, u64)) {
        if !self.text.is_empty() && self.text.len() + line.len() > ENTRY_MAX {
            self.write(out);
        }
        self.since.get_or_insert(now);
        self.text.push_str(line);
        self.records += 1;
    }

    fn due(&self, now: std::time::Instant) -> bool {
        self.since
            .is_some_and(|s| now.duration_since(s) >= EMIT_EVERY)
    }

    fn write(&mut self, out: &mut impl FnMut(&str, u64)) {
        if self.records > 0 {
            out(&self.text, self.records);
        }
        self.text.clear();
        self.records = 0;
        self.since = None;
    }
}

/// Writes newline-terminated lines as one journal entry, or to stderr when the journal is
/// not ours or refuses them.
fn emit(journal: &mut Option<Journal>, lines: &str) {
    if let Some(j) = journal
        && j.send(lines).is_ok()
    {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(lines.as_bytes());
    let _ = err.flush();
}

/// Whether `fd` is the journal stream systemd connected: `JOURNAL_STREAM` names the device
/// and inode of that socket, so a redirected stderr is not mistaken for it.
fn is_journal_stream(journal_stream: Option<&std::ffi::OsStr>, fd: BorrowedFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(want) = journal_stream else {
        return false;
    };
    let Ok(fd) = fd.try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    want.to_str() == Some(&format!("{}:{}", meta.dev(), meta.ino()))
}

/// A datagram socket to journald, connected on first use and again after journald
/// restarted.
#[derive(Default)]
struct Journal {
    sock: Option<std::os::unix::net::UnixDatagram>,
}

impl Journal {
    fn send(&mut self, lines: &str) -> std::io::Result<()> {
        let entry = entry(lines);
        for _ in 0..2 {
            let sock = match &self.sock {
                Some(s) => s,
                None => {
                    let s = std::os::unix::net::UnixDatagram::unbound()?;
                    s.connect(JOURNAL_SOCKET)?;
                    self.sock.insert(s)
                }
            };
            match sock.send(&entry) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => self.sock = None,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::ErrorKind::ConnectionRefused.into())
    }
}

/// One journal entry in journald's native protocol: the lines (without their final
/// newline) as a length-prefixed MESSAGE, so a record may hold any byte.
fn entry(lines: &str) -> Vec<u8> {
    let msg = lines.strip_suffix('\n').unwrap_or(lines).as_bytes();
    let mut out = Vec::with_capacity(msg.len() + 64);
    out.extend_from_slice(b"PRIORITY=6\nSYSLOG_IDENTIFIER=vds-proxy\nMESSAGE\n");
    out.extend_from_slice(&(msg.len() as u64).to_le_bytes());
    out.extend_from_slice(msg);
    out.push(b'\n');
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Drops are reported once each, as the count since the previous report.
    #[test]
    fn dropped_records_are_reported_once() {
        let mut reported = 0;
        assert_eq!(dropped_note(&mut reported, 0), None);
        let note = dropped_note(&mut reported, 2300).expect("a note");
        assert!(
            note.starts_with("relay: 2300 log record(s) dropped:"),
            "{note}"
        );
        assert!(note.ends_with('\n'));
        assert_eq!(dropped_note(&mut reported, 2300), None);
        let note = dropped_note(&mut reported, 2305).expect("a note");
        assert!(
            note.starts_with("relay: 5 log record(s) dropped:"),
            "{note}"
        );
    }

    /// Drained records wait for later ones up to `EMIT_EVERY`, and a batch never grows
    /// past one entry: the record that would not fit sends the ones before it.
    #[test]
    fn records_are_written_together_once_the_oldest_has_waited() {
        let t0 = std::time::Instant::now();
        let mut written: Vec<(usize, u64)> = Vec::new();
        let mut out = |text: &str, n: u64| written.push((text.len(), n));
        let mut b = Batch::default();
        b.push("a\n", t0, &mut out);
        b.push("b\n", t0 + DRAIN_EVERY, &mut out);
        assert!(!b.due(t0 + EMIT_EVERY - DRAIN_EVERY));
        assert!(b.due(t0 + EMIT_EVERY));
        b.write(&mut out);
        assert!(!b.due(t0 + EMIT_EVERY * 5));
        let big = "x".repeat(ENTRY_MAX - 1) + "\n";
        b.push("c\n", t0, &mut out);
        b.push(&big, t0, &mut out);
        b.write(&mut out);
        b.write(&mut out);
        assert_eq!(written, [(4, 2), (2, 1), (ENTRY_MAX, 1)]);
    }

    /// A batch is one entry whose MESSAGE holds every line, length-prefixed as journald's
    /// native protocol reads it.
    #[test]
    fn a_batch_is_one_journal_entry_with_a_line_per_record() {
        let e = entry("route=a client=1\nroute=a client=2\n");
        let head = b"PRIORITY=6\nSYSLOG_IDENTIFIER=vds-proxy\nMESSAGE\n";
        assert_eq!(&e[..head.len()], head);
        let len = u64::from_le_bytes(e[head.len()..head.len() + 8].try_into().unwrap());
        let msg = &e[head.len() + 8..];
        assert_eq!(len as usize, msg.len() - 1);
        assert_eq!(msg, b"route=a client=1\nroute=a client=2\n");
    }

    /// Only the socket `JOURNAL_STREAM` names counts as the journal: not another socket
    /// (stderr redirected to a pipe or a file), not anything without the variable.
    #[test]
    fn only_the_stream_systemd_names_is_the_journal() {
        use std::os::unix::fs::MetadataExt;
        let (ours, other) = std::os::unix::net::UnixStream::pair().unwrap();
        let m = ours
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .unwrap();
        let m = m.metadata().unwrap();
        let named = std::ffi::OsString::from(format!("{}:{}", m.dev(), m.ino()));
        assert!(is_journal_stream(Some(&named), ours.as_fd()));
        assert!(!is_journal_stream(Some(&named), other.as_fd()));
        assert!(!is_journal_stream(None, ours.as_fd()));
        assert!(!is_journal_stream(Some("0:0".as_ref()), ours.as_fd()));
    }
}
