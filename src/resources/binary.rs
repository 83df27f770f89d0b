//! Executables shipped by vds-proxy (the relay): uploaded only when the checksum differs,
//! verified on the host before the rename into place.

use std::path::PathBuf;

use super::{Content, Kind, KindOps, Resource};
use crate::shell::quote;

/// Where vds-proxy installs its own executables on a host.
pub const BIN_DIR: &str = "/usr/local/lib/vds-proxy";

/// Behaviour of [`super::Kind::Binary`].
pub struct BinaryOps;

impl KindOps for BinaryOps {
    fn validate(&self, res: &Resource, staged: &str) -> Option<String> {
        Some(format!(
            "test \"$(sha256sum < {} | cut -c1-64)\" = {}",
            quote(staged),
            quote(&res.sha256)
        ))
    }
}

/// The name of the vds-proxy binary on a host, in [`BIN_DIR`].
pub const BUNDLE_NAME: &str = "vds-proxy";
/// Where the bundled servers (relay, registry) run from.
pub const BUNDLE_PATH: &str = "/usr/local/lib/vds-proxy/vds-proxy";

/// A local build of a program, identified by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub source: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// `uname -m` of the machine it runs on, e.g. `x86_64`.
    pub arch: String,
}

impl Artifact {
    /// Reads and hashes the file at `source`, built for `arch`.
    pub fn from_file(source: PathBuf, arch: &str) -> std::io::Result<Self> {
        let bytes = std::fs::read(&source)?;
        Ok(Artifact {
            sha256: super::sha256_hex(&bytes),
            size: bytes.len() as u64,
            source,
            arch: arch.to_string(),
        })
    }
}

/// The resource installing `artifact` as `{BIN_DIR}/{name}`.
pub fn binary(name: &str, artifact: &Artifact) -> Resource {
    Resource {
        kind: Kind::Binary,
        path: format!("{BIN_DIR}/{name}"),
        content: Content::Local {
            source: artifact.source.clone(),
            size: artifact.size,
            arch: artifact.arch.clone(),
        },
        sha256: artifact.sha256.clone(),
        mode: 0o755,
        owner: "root".into(),
        group: "root".into(),
        secret: false,
        part: super::Part::default(),
        live_check: None,
        confirm: None,
        service: None,
        on_change: Vec::new(),
    }
}
