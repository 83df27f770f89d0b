//! The relay's log: records go through a bounded queue to one writer thread, so forwarding
//! never waits for stderr (journald, a pipe). When the queue is full — the reader is slow or
//! stalled — a record is dropped and counted (`vds_relay_log_dropped_total`), never waited
//! for. The writer wakes every 10 ms and writes every queued record at once.
//!
//! Under systemd, when stderr is the journal, the records of one wake-up go to journald's
//! native socket as **one** entry (one line per record): journald's cost is per entry, so
//! at thousands of connections a second the journal no longer takes CPU from forwarding.
//! At low rates that is one entry per record, as before. Elsewhere (a pipe, a terminal)
//! the lines are written to stderr.

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

/// journald's socket for structured entries (`sd_journal_send`'s protocol).
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// The most text one journal entry carries; a longer batch is split.
const ENTRY_MAX: usize = 48 * 1024;

fn write_all(rx: Receiver<String>) {
    let stderr = std::io::stderr();
    let journal_stream = std::env::var_os("JOURNAL_STREAM");
    let mut journal =
        is_journal_stream(journal_stream.as_deref(), stderr.as_fd()).then(Journal::default);
    let mut batch = String::with_capacity(ENTRY_MAX);
    loop {
        std::thread::sleep(DRAIN_EVERY);
        let mut n = 0;
        loop {
            match rx.try_recv() {
                Ok(line) => {
                    if batch.len() + line.len() > ENTRY_MAX && !batch.is_empty() {
                        emit(&mut journal, &batch);
                        batch.clear();
                    }
                    batch.push_str(&line);
                    n += 1;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if !batch.is_empty() {
            emit(&mut journal, &batch);
            batch.clear();
        }
        if n > 0
            && let Some(l) = LOG.get()
        {
            l.written.fetch_add(n, Relaxed);
        }
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
