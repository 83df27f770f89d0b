//! One login per host, one process: the system `ssh` runs a remote `sh -s` that reads the
//! scripts one after the other from standard input, each in its own subshell, and marks
//! where each one's output ends and how it exited. No control master, no process per
//! script: at 100 hosts every process started (here or on the host) shows in a deploy's
//! time.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use super::{BoxFuture, ConnectOptions, Output, Transport, TransportError};
use crate::inventory::Node;

/// A host reached through one `ssh HOST sh -s` process.
pub struct Shell {
    label: String,
    node: Node,
    opts: ConnectOptions,
    /// Marks this connection's end-of-script lines (random, so no output can fake one).
    token: String,
    io: Mutex<Io>,
}

struct Io {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: ChildStderr,
    /// Scripts run so far (each marker carries its number).
    runs: u64,
    /// Set once the connection can no longer run scripts, with why.
    broken: Option<String>,
}

/// How one script's run ended on the connection.
enum Ended {
    /// The end marker came: the script's exit status.
    Marked(i32),
    /// The connection closed first: ssh's exit status.
    Closed(i32),
}

impl Shell {
    /// Logs in to `node` and waits until its shell answers; host keys are checked strictly
    /// unless `accept_new_host_keys` (OpenSSH's accept-new: a changed key is still refused).
    pub async fn connect(node: &Node, opts: &ConnectOptions) -> Result<Self, TransportError> {
        let dest = node.ssh_destination();
        let label = format!("{} ({}:{})", node.name, dest, node.ssh_port);
        let mut cmd = Command::new("ssh");
        cmd.args(ssh_args(node, opts))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false)
            // Its own process group: a Ctrl-C at the terminal reaches vds-proxy only, which
            // decides what it stops (an apply under way is never cut by it).
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| TransportError::Connect {
            host: label.clone(),
            detail: format!("cannot run ssh: {e}"),
        })?;
        let io = Io {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().expect("piped"),
            stderr: child.stderr.take().expect("piped"),
            child,
            runs: 0,
            broken: None,
        };
        let shell = Shell {
            label,
            node: node.clone(),
            opts: opts.clone(),
            token: token(),
            io: Mutex::new(io),
        };
        // ssh's ConnectTimeout bounds reaching the host; starting the session after the
        // login (PAM, the user's systemd) is a command like any other.
        let secs = opts.connect_timeout.as_secs();
        let limit = opts.connect_timeout + opts.command_timeout;
        match shell.exchange("", limit).await {
            Ok((Ended::Marked(_), _, _)) => Ok(shell),
            Ok((Ended::Closed(_), _, stderr)) => {
                let said = String::from_utf8_lossy(&stderr);
                Err(super::classify_words(shell.label.clone(), secs, &said))
            }
            Err(_) => Err(TransportError::ConnectTimeout {
                host: shell.label.clone(),
                secs,
            }),
        }
    }

    /// Sends `script` and reads its output up to its end marker, within `limit`; on a
    /// timeout the connection is closed (`Err` carries nothing more to say).
    async fn exchange(
        &self,
        script: &str,
        limit: Duration,
    ) -> Result<(Ended, Vec<u8>, Vec<u8>), ()> {
        let mut io = self.io.lock().await;
        if let Some(why) = &io.broken {
            return Ok((Ended::Closed(255), Vec::new(), why.clone().into_bytes()));
        }
        io.runs += 1;
        let end = format!("@@vds-proxy-end {} {}", self.token, io.runs);
        // The subshell keeps `exit`, `exec`, `cd` and traps to this script, and its standard
        // input is not the stream the next scripts come on.
        // (The empty script that waits for the login needs no subshell.)
        let body = if script.is_empty() {
            String::from(":\n")
        } else {
            format!("(\n:\n{script}\n) </dev/null\n")
        };
        let wrapped = format!("{body}printf '\\n{end} %s\\n' \"$?\"\nprintf '\\n{end}\\n' >&2\n");
        let io = &mut *io;
        let work = async {
            let write = async {
                if let Some(stdin) = io.stdin.as_mut() {
                    // A closed pipe shows up as the connection's end on the reading side.
                    let _ = stdin.write_all(wrapped.as_bytes()).await;
                    let _ = stdin.flush().await;
                }
            };
            let out_marker = format!("\n{end} ");
            let err_marker = format!("\n{end}\n");
            let (_, out, err) = tokio::join!(
                write,
                read_to_marker(&mut io.stdout, out_marker.as_bytes(), true),
                read_to_marker(&mut io.stderr, err_marker.as_bytes(), false),
            );
            (out, err)
        };
        match tokio::time::timeout(limit, work).await {
            Err(_) => {
                let _ = io.child.start_kill();
                io.broken = Some("the connection was closed after a command timed out".into());
                Err(())
            }
            Ok(((Some(status), out), (_, err))) => Ok((Ended::Marked(status), out, err)),
            Ok(((None, out), (_, err))) => {
                // Its output ended: ssh is exiting (or, if not within a few seconds, is made to).
                let code = match tokio::time::timeout(Duration::from_secs(5), io.child.wait()).await
                {
                    Ok(Ok(s)) => s.code().unwrap_or(255),
                    _ => {
                        let _ = io.child.start_kill();
                        255
                    }
                };
                io.broken = Some(format!(
                    "the connection closed (ssh exit {code}); {}",
                    String::from_utf8_lossy(&err).trim()
                ));
                Ok((Ended::Closed(code), out, err))
            }
        }
    }
}

/// Reads `r` until `marker` (what came before it is the script's output); on stdout the
/// marker is followed by the exit status and a newline. `None` when the stream ended first.
async fn read_to_marker<R: AsyncRead + Unpin>(
    r: &mut R,
    marker: &[u8],
    with_status: bool,
) -> (Option<i32>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut searched = 0;
    loop {
        if let Some(at) = find(&buf[searched..], marker).map(|i| i + searched) {
            let rest = &buf[at + marker.len()..];
            if !with_status {
                buf.truncate(at);
                return (Some(0), buf);
            }
            if let Some(nl) = rest.iter().position(|b| *b == b'\n') {
                let status = std::str::from_utf8(&rest[..nl])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(-1);
                buf.truncate(at);
                return (Some(status), buf);
            }
        } else {
            searched = buf.len().saturating_sub(marker.len());
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return (None, buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// 32 hex digits no script output can guess.
fn token() -> String {
    let mut seed = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed));
    if read.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        seed = (t.as_nanos() ^ u128::from(std::process::id())).to_le_bytes();
    }
    crate::resources::sha256_hex(&seed)[..32].to_string()
}

/// The `ssh` command line: the user's ssh config is read as usual, but never a control
/// master (each connection is its own login), and no terminal.
fn ssh_args(node: &Node, opts: &ConnectOptions) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut opt = |o: String| {
        a.push("-o".into());
        a.push(o);
    };
    opt("BatchMode=yes".into());
    opt(format!(
        "StrictHostKeyChecking={}",
        if opts.accept_new_host_keys {
            "accept-new"
        } else {
            "yes"
        }
    ));
    opt(format!("ConnectTimeout={}", opts.connect_timeout.as_secs()));
    // A host gone silent (rebooted, cut off) is noticed within 15 s: the apply goes on by
    // itself there, and the deploy logs in again to read how it ended.
    opt("ServerAliveInterval=5".into());
    opt("ServerAliveCountMax=3".into());
    opt("ControlMaster=no".into());
    opt("ControlPath=none".into());
    if let Some(p) = &opts.ssh_key {
        opt("IdentitiesOnly=yes".into());
        a.push("-i".into());
        a.push(p.display().to_string());
    }
    if let Some(p) = &opts.known_hosts {
        a.push("-o".into());
        a.push(format!("UserKnownHostsFile={}", p.display()));
    }
    if let Some(p) = &opts.ssh_config {
        a.push("-F".into());
        a.push(p.display().to_string());
    }
    for x in [
        "-T",
        "-e",
        "none",
        "-p",
        &node.ssh_port.to_string(),
        "-l",
        &node.ssh_user,
        "--",
        &node.ssh_destination(),
    ] {
        a.push(x.to_string());
    }
    if node.sudo {
        a.extend(["sudo", "-n", "sh", "-s"].map(String::from));
    } else {
        a.extend(["sh", "-s"].map(String::from));
    }
    a
}

/// A new login to `node` (never a kept master: a firewall change is confirmed through it),
/// opened within `timeout` at most: what [`Transport::reopen`] gives for every SSH transport.
pub(super) async fn new_login(
    node: &Node,
    opts: &ConnectOptions,
    timeout: Duration,
) -> Result<Box<dyn Transport>, TransportError> {
    let mut opts = opts.clone();
    opts.connect_timeout = timeout.min(opts.connect_timeout);
    opts.keep_for = None;
    Ok(Box::new(Shell::connect(node, &opts).await?))
}

impl Drop for Shell {
    /// Closing the script stream ends the remote shell and, with it, the login.
    fn drop(&mut self) {
        if let Ok(mut io) = self.io.try_lock() {
            io.stdin.take();
        }
    }
}

impl Transport for Shell {
    fn label(&self) -> &str {
        &self.label
    }

    fn reopen(
        &self,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Box<dyn Transport>, TransportError>> {
        Box::pin(new_login(&self.node, &self.opts, timeout))
    }

    fn run<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(async move {
            let limit = self.opts.command_timeout;
            match self.exchange(script, limit).await {
                Err(()) => Err(TransportError::CommandTimeout {
                    host: self.label.clone(),
                    secs: limit.as_secs(),
                }),
                Ok((ended, stdout, stderr)) => Ok(Output {
                    status: match ended {
                        Ended::Marked(s) | Ended::Closed(s) => s,
                    },
                    stdout: String::from_utf8_lossy(&stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&stderr).into_owned(),
                }),
            }
        })
    }
}
