//! The manifest vds-proxy leaves on each host: every path, unit and directory it manages.
//!
//! One entry per line, so that the gather script can list managed paths with `sed`
//! without any JSON tool on the host.

use serde::{Deserialize, Serialize};

use crate::resources::{Kind, KindOps, Part};

/// Where the manifest lives on a host.
pub const STATE_DIR: &str = "/var/lib/vds-proxy";
/// The manifest file (its place and line format are part of the contract).
pub const STATE_FILE: &str = crate::contract::MANIFEST;

/// A file vds-proxy installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub kind: String,
    #[serde(default)]
    pub service: Option<String>,
    /// The file existed before vds-proxy took it over (e.g. a package's own config); its
    /// original is kept under [`ORIG_DIR`] and put back when vds-proxy lets go of it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopted: bool,
    #[serde(default, skip_serializing_if = "Part::is_default")]
    pub part: Part,
}

impl FileEntry {
    /// systemd reads this file (a unit or drop-in): removing it needs a daemon-reload.
    pub fn read_by_systemd(&self, kinds: &[Kind]) -> bool {
        self.ops(kinds).is_some_and(|o| o.systemd())
    }

    /// The behaviour of its kind, when `kinds` knows it (a kind no command knows any more
    /// is only deleted).
    pub fn ops(&self, kinds: &[Kind]) -> Option<&'static dyn KindOps> {
        Kind::find(kinds, &self.kind).map(Kind::ops)
    }
}

fn is_false(b: &bool) -> bool {
    !b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where the originals of adopted files are kept.
pub const ORIG_DIR: &str = "/var/lib/vds-proxy/orig";

/// Files an apply created and a rollback could not delete again (a read-only /etc), one
/// path per line: the next run manages them as if the manifest had them (overwritten when
/// planned, else pruned), so none is left behind for good.
pub const LEFTOVER_FILE: &str = "/var/lib/vds-proxy/leftover";

/// Gather's cache of the hashes of big files ("SIZE INODE MTIME CTIME HASH PATH" lines),
/// written by gather and by the apply that installed them.
pub const DIGESTS_FILE: &str = "/var/lib/vds-proxy/digests";

/// Files this big (bytes) have their hash kept in [`DIGESTS_FILE`].
pub const BIG_FILE: u64 = 1 << 20;

/// The file name under [`ORIG_DIR`] of the original of `path`.
pub fn orig_name(path: &str) -> String {
    crate::resources::sha256_hex(path.as_bytes())[..32].to_string()
}

/// A unit vds-proxy enabled and started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitEntry {
    pub unit: String,
    #[serde(default)]
    pub service: Option<String>,
    /// Stopped only after the rest of an apply is active (a backend behind a proxy that is reloaded first).
    #[serde(default, skip_serializing_if = "is_false")]
    pub late_stop: bool,
    /// Seconds to wait for its connections to close before it is stopped (late stop).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drain_secs: u32,
    /// TCP ports it listens on (whose connections a drain waits for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// It was enabled or running before vds-proxy managed it (e.g. a package's
    /// unit): letting go of it reloads it instead of stopping it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopted: bool,
    #[serde(default, skip_serializing_if = "Part::is_default")]
    pub part: Part,
}

/// A directory vds-proxy created (removed again when empty and no longer needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub dir: String,
}

/// Everything vds-proxy manages on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: Vec<FileEntry>,
    pub units: Vec<UnitEntry>,
    pub dirs: Vec<DirEntry>,
}

impl Manifest {
    /// True when nothing is managed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.units.is_empty() && self.dirs.is_empty()
    }

    /// The manifest text: a JSON object with one entry per line.
    pub fn to_text(&self) -> String {
        fn lines<T: Serialize>(items: &[T]) -> String {
            items
                .iter()
                .map(|i| serde_json::to_string(i).expect("entries serialize"))
                .collect::<Vec<_>>()
                .join(",\n")
        }
        format!(
            "{{\"version\": 1,\n\"files\": [\n{}\n],\n\"units\": [\n{}\n],\n\"dirs\": [\n{}\n]}}\n",
            lines(&self.files),
            lines(&self.units),
            lines(&self.dirs)
        )
    }

    /// Parses a manifest read from a host.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Puts entries in a canonical order (by path, unit, directory), so that the same
    /// content always has the same text.
    pub fn sort(&mut self) {
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        self.units.sort_by(|a, b| a.unit.cmp(&b.unit));
        self.dirs.sort_by(|a, b| a.dir.cmp(&b.dir));
    }

    /// The entry for `path`.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// How a manifest line of a file starts (its path follows, up to the next `"`).
pub const PATH_PREFIX: &str = r#"{"path":""#;
/// How a manifest line of a unit starts (its name follows, up to the next `"`).
pub const UNIT_PREFIX: &str = r#"{"unit":""#;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            files: vec![FileEntry {
                path: "/etc/systemd/system/a.service".into(),
                sha256: "ab".into(),
                kind: "unit".into(),
                service: Some("front".into()),
                adopted: true,
                part: Part::Setup,
            }],
            units: vec![UnitEntry {
                unit: "a.service".into(),
                service: None,
                late_stop: true,
                drain_secs: 30,
                ports: vec![10000],
                adopted: false,
                part: Part::Backends,
            }],
            dirs: vec![DirEntry {
                dir: "/etc/vds-proxy".into(),
            }],
        }
    }

    #[test]
    fn text_round_trips() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_text()).unwrap(), m);
    }
}
