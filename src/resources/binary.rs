//! Executables shipped by vds-proxy (the relay): uploaded only when the checksum differs,
//! verified on the host before the rename into place.

use std::path::PathBuf;

use super::{Content, Kind, KindOps, Resource};
use crate::shell::quote;

/// Where vds-proxy installs its own executables on a host.
pub const BIN_DIR: &str = "/usr/local/lib/vds-proxy";

/// Behaviour of [`super::BINARY`].
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
        Ok(Self::of(source, &bytes, arch))
    }

    /// Reads and hashes the executable at `source`; its architecture is the one its ELF
    /// header names (`None`: not an ELF executable vds-proxy knows).
    pub fn from_executable(source: PathBuf) -> std::io::Result<(Self, Option<&'static str>)> {
        let bytes = std::fs::read(&source)?;
        let arch = elf_arch(&bytes);
        Ok((Self::of(source, &bytes, arch.unwrap_or("unknown")), arch))
    }

    fn of(source: PathBuf, bytes: &[u8], arch: &str) -> Self {
        Artifact {
            sha256: super::sha256_hex(bytes),
            size: bytes.len() as u64,
            source,
            arch: arch.to_string(),
        }
    }
}

/// Architectures a bundled build can be for, as `uname -m` names them.
pub const KNOWN_ARCHES: &[&str] = &["x86_64", "aarch64", "armv7l", "riscv64"];

/// The machine an ELF executable is built for, as `uname -m` names it.
pub fn elf_arch(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    let field = [bytes[18], bytes[19]];
    let machine = match bytes[5] {
        1 => u16::from_le_bytes(field),
        2 => u16::from_be_bytes(field),
        _ => return None,
    };
    match machine {
        62 => Some("x86_64"),
        183 => Some("aarch64"),
        40 => Some("armv7l"),
        243 => Some("riscv64"),
        _ => None,
    }
}

/// The vds-proxy builds at hand for the nodes, at most one per architecture. The plan
/// ships the default one; a node of another architecture gets the build for its own.
#[derive(Debug, Clone)]
pub struct Bundle {
    builds: Vec<Artifact>,
}

impl Bundle {
    /// `default` first, then builds for other architectures (a second build for the
    /// default's architecture replaces it).
    pub fn new(default: Artifact, others: Vec<Artifact>) -> Self {
        let mut builds = vec![default];
        for b in others {
            match builds.iter_mut().find(|d| d.arch == b.arch) {
                Some(d) => *d = b,
                None => builds.push(b),
            }
        }
        Bundle { builds }
    }

    /// The build the plan ships unless a node needs another.
    pub fn default_build(&self) -> &Artifact {
        &self.builds[0]
    }

    /// The build for machines of `arch`.
    pub fn for_arch(&self, arch: &str) -> Option<&Artifact> {
        self.builds.iter().find(|b| b.arch == arch)
    }

    /// Every architecture there is a build for.
    pub fn arches(&self) -> Vec<&str> {
        self.builds.iter().map(|b| b.arch.as_str()).collect()
    }
}

/// Makes `res`, the bundled binary as planned, ship `build` instead.
pub fn retarget(res: &mut Resource, build: &Artifact) {
    if let Content::Local { .. } = res.content {
        res.content = Content::Local {
            source: build.source.clone(),
            size: build.size,
            arch: build.arch.clone(),
        };
        res.sha256 = build.sha256.clone();
    }
}

/// The resource installing `artifact` as `{BIN_DIR}/{name}`.
pub fn binary(name: &str, artifact: &Artifact) -> Resource {
    Resource {
        kind: Kind::BINARY,
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
        present_check: None,
        confirm: None,
        service: None,
        on_change: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(class_data: u8, machine: [u8; 2]) -> Vec<u8> {
        let mut h = b"\x7fELF\x02".to_vec();
        h.push(class_data);
        h.resize(18, 0);
        h.extend_from_slice(&machine);
        h.resize(64, 0);
        h
    }

    /// The architecture comes from the ELF header (either byte order), not the file name.
    #[test]
    fn an_executables_architecture_is_read_from_its_elf_header() {
        assert_eq!(elf_arch(&elf(1, [62, 0])), Some("x86_64"));
        assert_eq!(elf_arch(&elf(1, [183, 0])), Some("aarch64"));
        assert_eq!(elf_arch(&elf(2, [0, 40])), Some("armv7l"));
        assert_eq!(elf_arch(&elf(1, [2, 0])), None, "SPARC: not a known build");
        assert_eq!(elf_arch(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(elf_arch(b"\x7fELF"), None, "too short");
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(elf_arch(&this), Some(std::env::consts::ARCH));
    }

    fn build(arch: &str, sha: &str) -> Artifact {
        Artifact {
            source: PathBuf::from(format!("/b/{arch}")),
            sha256: sha.into(),
            size: 1,
            arch: arch.into(),
        }
    }

    /// One build per architecture; a second for the default's architecture replaces it, and
    /// retargeting the planned binary changes what is shipped and its digest.
    #[test]
    fn a_bundle_holds_one_build_per_architecture() {
        let b = Bundle::new(
            build("x86_64", "a"),
            vec![build("aarch64", "b"), build("x86_64", "c")],
        );
        assert_eq!(b.default_build().sha256, "c");
        assert_eq!(b.arches(), ["x86_64", "aarch64"]);
        assert_eq!(b.for_arch("aarch64").unwrap().sha256, "b");
        assert!(b.for_arch("riscv64").is_none());
        let mut r = binary(BUNDLE_NAME, b.default_build());
        retarget(&mut r, b.for_arch("aarch64").unwrap());
        assert_eq!(r.sha256, "b");
        assert!(matches!(&r.content, Content::Local { arch, .. } if arch == "aarch64"));
    }
}
