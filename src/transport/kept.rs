//! SSH masters kept between invocations (`--keep-connections`): each master's control
//! socket is recorded under a name derived from everything the connection was opened with
//! (user, address, port, key, known_hosts, ssh config, host-key policy), in a directory only
//! this user can enter; the next invocation with the same options resumes it after an
//! alive check, and OpenSSH closes it once it has been idle for the kept duration.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConnectOptions;
use crate::inventory::Node;

/// Where one connection's master is recorded.
pub struct Record {
    dir: PathBuf,
    file: PathBuf,
}

/// The directory for kept masters: `$XDG_RUNTIME_DIR/vds-proxy`, else
/// `/tmp/vds-proxy-UID`; it must be this user's and closed to everyone else.
fn directory() -> Result<PathBuf, String> {
    let uid = std::fs::metadata("/proc/self")
        .map_err(|e| format!("cannot read /proc/self: {e}"))?
        .uid();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("vds-proxy"),
        _ => std::env::temp_dir().join(format!("vds-proxy-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "refusing to keep SSH connections in {}: it must be a directory of this user that no one else can enter (mode 0700)",
            dir.display()
        ));
    }
    Ok(dir)
}

impl Record {
    /// The record for `node` as `opts` connect to it.
    pub fn of(node: &Node, opts: &ConnectOptions) -> Result<Self, String> {
        let dir = directory()?;
        let key = format!(
            "{}\0{}\0{}\0{:?}\0{:?}\0{:?}\0{}",
            node.ssh_user,
            node.ssh_destination(),
            node.ssh_port,
            opts.ssh_key,
            opts.known_hosts,
            opts.ssh_config,
            opts.accept_new_host_keys
        );
        let name = crate::resources::sha256_hex(key.as_bytes())[..24].to_string();
        Ok(Record {
            file: dir.join(format!("{name}.master")),
            dir,
        })
    }

    /// The directory masters are started in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The master recorded here, if it still answers; a dead record is removed.
    pub async fn resume(&self) -> Option<openssh::Session> {
        let ctl = std::fs::read_to_string(&self.file).ok()?;
        let ctl = PathBuf::from(ctl.trim());
        let Some(master_dir) = ctl.parent().filter(|p| p.parent() == Some(&self.dir)) else {
            let _ = std::fs::remove_file(&self.file);
            return None;
        };
        let master_dir = master_dir.to_path_buf();
        let session = openssh::Session::resume(ctl.into_boxed_path(), None);
        match tokio::time::timeout(Duration::from_secs(3), session.check()).await {
            Ok(Ok(())) => Some(session),
            _ => {
                // The master went idle and exited: its record and directory go.
                let _ = std::fs::remove_file(&self.file);
                let _ = std::fs::remove_dir_all(master_dir);
                None
            }
        }
    }

    /// Records the control socket of a master just started.
    pub fn save(&self, ctl: &Path) {
        let tmp = self.file.with_extension("tmp");
        if std::fs::write(&tmp, ctl.as_os_str().as_encoded_bytes()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.file);
        }
    }
}
