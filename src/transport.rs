//! How vds-proxy reaches a host: a small trait with SSH implementations (the system OpenSSH
//! client: one `ssh HOST sh -s` process per host running every script in turn, or, for
//! connections kept between invocations, a multiplexed master through the `openssh` crate)
//! and a local one.
//!
//! The engine only ever runs POSIX `sh` scripts fed on standard input, so a transport needs
//! one primitive: run a script, return its exit status and output.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, SessionBuilder};
use tokio::io::AsyncWriteExt;

use crate::inventory::{Connection, Node};
use crate::settings::Settings;

/// A boxed future, so that transports can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a remote script printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Why a host could not be reached or a script not run; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{host}: connection timed out after {secs} s; check the address and that sshd runs")]
    ConnectTimeout { host: String, secs: u64 },
    #[error(
        "{host}: host key verification failed: {detail}; if the host was reinstalled, remove its old key with \
        `ssh-keygen -R`, or use --accept-new-host-keys for a host never seen before"
    )]
    HostKey { host: String, detail: String },
    #[error("{host}: cannot connect: {detail}")]
    Connect { host: String, detail: String },
    #[error("{host}: remote command timed out after {secs} s (command_timeout in vds-proxy.toml)")]
    CommandTimeout { host: String, secs: u64 },
    #[error("{host}: {detail}")]
    Run { host: String, detail: String },
}

/// A connection to one host.
pub trait Transport: Send + Sync {
    /// How the host is named in messages, e.g. `h2 (10.0.0.2:22)`.
    fn label(&self) -> &str;
    /// Runs `script` with `sh -s` (as root: through sudo where configured).
    fn run<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Output, TransportError>>;
    /// A new connection to the same host, independent of this one (for SSH a new TCP
    /// connection and login, not a channel of the open one), opened within `timeout`.
    fn reopen(
        &self,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Box<dyn Transport>, TransportError>>;
}

/// How connections are opened.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub accept_new_host_keys: bool,
    pub ssh_config: Option<std::path::PathBuf>,
    pub ssh_key: Option<std::path::PathBuf>,
    pub known_hosts: Option<std::path::PathBuf>,
    /// Keep each SSH master running this many seconds after its last use, for the next
    /// invocation to reuse (`--keep-connections`); `None`: close them at exit.
    pub keep_for: Option<u64>,
    /// Connections a step before kept open for the next one (see [`Pool`]).
    pub pool: std::sync::Arc<Pool>,
}

/// Open connections handed from one step of a verb to the next (the WireGuard key step
/// to the deploy), so a host is connected to once.
#[derive(Default)]
pub struct Pool(std::sync::Mutex<std::collections::HashMap<String, Box<dyn Transport>>>);

impl Pool {
    /// Keeps `t`, the connection to `node`, for the next [`connect`] to it.
    pub fn put(&self, node: &str, t: Box<dyn Transport>) {
        self.0
            .lock()
            .expect("pool lock")
            .insert(node.to_string(), t);
    }

    fn take(&self, node: &str) -> Option<Box<dyn Transport>> {
        self.0.lock().expect("pool lock").remove(node)
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "Pool({n} open)")
    }
}

impl ConnectOptions {
    /// Options from the settings; the flag can only loosen host-key checking to accept-new.
    pub fn new(settings: &Settings, accept_new_host_keys: bool) -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(settings.connect_timeout),
            command_timeout: Duration::from_secs(settings.command_timeout),
            accept_new_host_keys: accept_new_host_keys || settings.accept_new_host_keys,
            ssh_config: settings.ssh_config.clone(),
            ssh_key: settings.ssh_key.clone(),
            known_hosts: settings.known_hosts.clone(),
            keep_for: settings.keep_connections.filter(|s| *s > 0),
            pool: Default::default(),
        }
    }
}

/// Opens the connection a node's inventory entry asks for (or takes the one an earlier
/// step left in the pool).
pub async fn connect(
    node: &Node,
    opts: &ConnectOptions,
) -> Result<Box<dyn Transport>, TransportError> {
    if let Some(t) = opts.pool.take(&node.name) {
        return Ok(t);
    }
    match node.connection {
        Connection::Local => Ok(Box::new(Local {
            label: format!("{} (local)", node.name),
            timeout: opts.command_timeout,
            sudo: node.sudo,
        })),
        Connection::Ssh if opts.keep_for.is_some() => Ok(Box::new(Ssh::connect(node, opts).await?)),
        Connection::Ssh => Ok(Box::new(Shell::connect(node, opts).await?)),
    }
}

/// The machine vds-proxy runs on.
#[derive(Clone)]
pub struct Local {
    label: String,
    timeout: Duration,
    sudo: bool,
}

impl Transport for Local {
    fn label(&self) -> &str {
        &self.label
    }

    fn reopen(
        &self,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<Box<dyn Transport>, TransportError>> {
        Box::pin(async move { Ok(Box::new(self.clone()) as Box<dyn Transport>) })
    }

    fn run<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(async move {
            let mut cmd = if self.sudo {
                let mut c = tokio::process::Command::new("sudo");
                c.args(["-n", "sh", "-s"]);
                c
            } else {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-s");
                c
            };
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let err = |e: std::io::Error| TransportError::Run {
                host: self.label.clone(),
                detail: format!("cannot run sh: {e}"),
            };
            let mut child = cmd.spawn().map_err(err)?;
            feed_and_wait(
                &self.label,
                self.timeout,
                child.stdin.take(),
                script,
                async move { child.wait_with_output().await.map_err(err) },
            )
            .await
        })
    }
}

/// Writes the script to stdin, then waits for the process within the command timeout.
async fn feed_and_wait<W, F>(
    label: &str,
    timeout: Duration,
    stdin: Option<W>,
    script: &str,
    wait: F,
) -> Result<Output, TransportError>
where
    W: tokio::io::AsyncWrite + Unpin,
    F: Future<Output = Result<std::process::Output, TransportError>>,
{
    let work = async {
        if let Some(mut stdin) = stdin {
            // A script that exits early closes its stdin; the exit status tells what happened.
            let _ = stdin.write_all(script.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
        wait.await
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(TransportError::CommandTimeout {
            host: label.to_string(),
            secs: timeout.as_secs(),
        }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(out)) => Ok(Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

mod kept;
mod shell;

pub use shell::Shell;

/// A host reached through the system OpenSSH client with one multiplexed master connection
/// that outlives the invocation (`--keep-connections`).
pub struct Ssh {
    label: String,
    /// Always `Some` until dropped (a kept master is detached then, not closed).
    session: Option<openssh::Session>,
    /// What it was opened with (sudo, the command timeout, and for [`Transport::reopen`]).
    node: Node,
    opts: ConnectOptions,
}

impl Ssh {
    /// Opens the master connection to `node`; host keys are checked strictly unless
    /// `accept_new_host_keys` (then OpenSSH's accept-new: a changed key is still refused).
    pub async fn connect(node: &Node, opts: &ConnectOptions) -> Result<Self, TransportError> {
        let dest = node.ssh_destination();
        let label = format!("{} ({}:{})", node.name, dest, node.ssh_port);
        let kept =
            match opts.keep_for {
                Some(_) => Some(kept::Record::of(node, opts).map_err(|detail| {
                    TransportError::Connect {
                        host: label.clone(),
                        detail,
                    }
                })?),
                None => None,
            };
        if let Some(session) = match &kept {
            Some(r) => r.resume().await,
            None => None,
        } {
            return Ok(Ssh {
                label,
                session: Some(session),
                node: node.clone(),
                opts: opts.clone(),
            });
        }
        let mut b = SessionBuilder::default();
        b.user(node.ssh_user.clone())
            .port(node.ssh_port)
            .connect_timeout(opts.connect_timeout)
            .server_alive_interval(Duration::from_secs(15))
            .known_hosts_check(if opts.accept_new_host_keys {
                KnownHosts::Add
            } else {
                KnownHosts::Strict
            });
        match (
            &kept,
            opts.keep_for
                .and_then(|s| std::num::NonZeroUsize::new(s as usize)),
        ) {
            (Some(r), Some(secs)) => {
                b.control_directory(r.dir())
                    .control_persist(ControlPersist::IdleFor(secs));
            }
            _ => {
                b.control_directory(std::env::temp_dir());
            }
        }
        if let Some(p) = &opts.ssh_config {
            b.config_file(p);
        }
        if let Some(p) = &opts.ssh_key {
            b.keyfile(p);
        }
        if let Some(p) = &opts.known_hosts {
            b.user_known_hosts_file(p);
        }
        let secs = opts.connect_timeout.as_secs();
        let session = match tokio::time::timeout(
            opts.connect_timeout + Duration::from_secs(5),
            b.connect(&dest),
        )
        .await
        {
            Err(_) => return Err(TransportError::ConnectTimeout { host: label, secs }),
            Ok(Err(e)) => return Err(classify(label, secs, &e)),
            Ok(Ok(s)) => s,
        };
        if let Some(r) = &kept {
            r.save(session.control_socket());
        }
        Ok(Ssh {
            label,
            session: Some(session),
            node: node.clone(),
            opts: opts.clone(),
        })
    }
}

impl Drop for Ssh {
    /// A kept master is left running for the next invocation; any other is closed.
    fn drop(&mut self) {
        if let Some(s) = self.session.take()
            && self.opts.keep_for.is_some()
        {
            let _ = s.detach();
        }
    }
}

/// Turns an OpenSSH failure into a message that says what happened.
fn classify(host: String, secs: u64, e: &openssh::Error) -> TransportError {
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail = format!("{detail}: {s}");
        src = s.source();
    }
    classify_words(host, secs, &detail)
}

/// What ssh said when it could not log in, as the error that says what happened.
fn classify_words(host: String, secs: u64, said: &str) -> TransportError {
    let detail = said.trim().replace('\r', "").replace('\n', " ");
    let lower = detail.to_lowercase();
    if lower.contains("host key") || lower.contains("identification has changed") {
        TransportError::HostKey { host, detail }
    } else if lower.contains("timed out") {
        TransportError::ConnectTimeout { host, secs }
    } else if detail.is_empty() {
        let detail = "ssh ended without a word".to_string();
        TransportError::Connect { host, detail }
    } else {
        TransportError::Connect { host, detail }
    }
}

impl Transport for Ssh {
    fn label(&self) -> &str {
        &self.label
    }

    fn reopen(
        &self,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Box<dyn Transport>, TransportError>> {
        Box::pin(shell::new_login(&self.node, &self.opts, timeout))
    }

    fn run<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(async move {
            let session = self.session.as_ref().expect("open until dropped");
            let mut cmd = if self.node.sudo {
                let mut c = session.command("sudo");
                c.args(["-n", "sh", "-s"]);
                c
            } else {
                let mut c = session.command("sh");
                c.arg("-s");
                c
            };
            cmd.stdin(openssh::Stdio::piped())
                .stdout(openssh::Stdio::piped())
                .stderr(openssh::Stdio::piped());
            let err = |e: openssh::Error| TransportError::Run {
                host: self.label.clone(),
                detail: format!("ssh failed: {e}"),
            };
            let mut child = cmd.spawn().await.map_err(err)?;
            let stdin = child.stdin().take();
            feed_and_wait(
                &self.label,
                self.opts.command_timeout,
                stdin,
                script,
                async move { child.wait_with_output().await.map_err(err) },
            )
            .await
        })
    }
}
