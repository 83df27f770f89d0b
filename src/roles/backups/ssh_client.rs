//! The known_hosts of an SSH client identity vds-proxy made on a node (its key pair,
//! generated on the node in the prepare step, sits beside it): checked with `ssh-keygen`
//! before it goes live, and the key pair goes away with it.

use crate::resources::{Kind, KindOps, Resource};
use crate::shell::quote;

/// The known_hosts of an SSH client key pair vds-proxy made on the node.
pub const SSH_CLIENT: Kind = Kind::new("sshclient", &SshClientOps);

/// Behaviour of [`SSH_CLIENT`].
pub struct SshClientOps;

/// The key pair's file name, beside the known_hosts file.
pub const KEY: &str = "id_ed25519";

impl KindOps for SshClientOps {
    fn validate(&self, _res: &Resource, staged: &str) -> Option<String> {
        Some(format!("ssh-keygen -l -f {} >/dev/null", quote(staged)))
    }

    fn also_remove(&self, path: &str) -> Vec<String> {
        match path.rsplit_once('/') {
            Some((dir, _)) => vec![format!("{dir}/{KEY}"), format!("{dir}/{KEY}.pub")],
            None => Vec::new(),
        }
    }
}
