//! Tool settings from the optional `vds-proxy.toml` beside the inventory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::inventory::{Collector, InputErrors};
use crate::resources::binary::KNOWN_ARCHES;

/// Settings of the tool itself (not of the infrastructure). Every field is optional.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Directory whose files override the embedded templates, file by file.
    pub templates: Option<PathBuf>,
    /// How many hosts are deployed at once.
    pub parallel: usize,
    /// Seconds to wait for an SSH connection.
    pub connect_timeout: u64,
    /// Seconds a remote command may run.
    pub command_timeout: u64,
    /// Accept the key of a host seen for the first time (OpenSSH `accept-new`).
    pub accept_new_host_keys: bool,
    /// Extra `ssh_config` file handed to OpenSSH (`ssh -F`).
    pub ssh_config: Option<PathBuf>,
    /// Private key file handed to OpenSSH (`ssh -i`).
    pub ssh_key: Option<PathBuf>,
    /// `known_hosts` file to check host keys against (default: OpenSSH's own).
    pub known_hosts: Option<PathBuf>,
    /// Relay binary to install on nodes; default: this vds-proxy executable.
    pub relay_binary: Option<PathBuf>,
    /// Builds for nodes of other architectures, by `uname -m` (`aarch64 = "dist/…"`).
    pub relay_binaries: BTreeMap<String, PathBuf>,
    /// How many more times a host whose activation failed (a unit did not come up, the
    /// host rolled back) is deployed again, after a pause of 2 s, 4 s, 8 s …
    pub retries: u32,
    /// Keep SSH connections open this many seconds after their last use, for the next
    /// invocation (`keep_connections = "10m"`; see `--keep-connections`).
    #[serde(deserialize_with = "duration_secs")]
    pub keep_connections: Option<u64>,
    /// The age recipients (`age1…` or `ssh-ed25519 …` public keys) `vds-proxy secrets`
    /// encrypts to, besides those of the inventory's `secrets` section.
    pub age_recipients: Vec<String>,
}

/// Seconds from `"30s"`, `"10m"`, `"1h"` or a plain number of seconds; 0 means off.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = n.parse().map_err(|_| {
        format!("{s:?} is not a duration; expected e.g. \"30s\", \"10m\" or \"1h\"")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(format!(
                "{s:?} is not a duration; expected e.g. \"30s\", \"10m\" or \"1h\""
            ));
        }
    };
    if secs > 7 * 24 * 3600 {
        return Err(format!("{s:?} is longer than a week"));
    }
    Ok(secs)
}

fn duration_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match <Raw as serde::Deserialize>::deserialize(d)? {
        Raw::Secs(n) => Ok(Some(n)),
        Raw::Text(t) => parse_duration(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            templates: None,
            parallel: 8,
            connect_timeout: 10,
            command_timeout: 120,
            accept_new_host_keys: false,
            ssh_config: None,
            ssh_key: None,
            known_hosts: None,
            relay_binary: None,
            relay_binaries: BTreeMap::new(),
            retries: 1,
            keep_connections: None,
            age_recipients: Vec::new(),
        }
    }
}

/// Path of the settings file that belongs to an inventory file.
pub fn path_beside(inventory: &Path) -> PathBuf {
    inventory
        .parent()
        .unwrap_or(Path::new("."))
        .join("vds-proxy.toml")
}

/// Loads settings from `path`; a missing file gives the defaults. Relative paths in the
/// file are taken relative to the file's directory.
pub fn load(path: &Path) -> Result<Settings, InputErrors> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => {
            let mut c = Collector::new(path.display().to_string());
            c.push("$", format!("cannot read the settings file: {e}"));
            return c.finish(Settings::default());
        }
    };
    parse(path, &text)
}

/// Parses settings text; `path` names the file in messages and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Settings, InputErrors> {
    let mut c = Collector::new(path.display().to_string());
    let mut s = match toml::from_str::<Settings>(text) {
        Ok(s) => s,
        Err(e) => {
            let (line, col) = e
                .span()
                .map(|sp| line_col(text, sp.start))
                .unwrap_or((1, 1));
            c.push_at(line, col, e.message().to_string());
            return c.finish(Settings::default());
        }
    };
    if s.parallel == 0 {
        c.push("parallel", "must be at least 1");
    }
    if s.connect_timeout == 0 || s.command_timeout == 0 {
        c.push("connect_timeout", "timeouts must be at least 1 second");
    }
    for arch in s.relay_binaries.keys() {
        if !KNOWN_ARCHES.contains(&arch.as_str()) {
            c.push(
                format!("relay_binaries.{arch}"),
                format!(
                    "not an architecture vds-proxy builds for; one of {} (as `uname -m` prints them)",
                    KNOWN_ARCHES.join(", ")
                ),
            );
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    for p in [
        &mut s.templates,
        &mut s.ssh_config,
        &mut s.ssh_key,
        &mut s.known_hosts,
        &mut s.relay_binary,
    ]
    .into_iter()
    .flatten()
    .chain(s.relay_binaries.values_mut())
    {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
    c.finish(s)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_setting_names_line_and_allowed_keys() {
        let err = parse(Path::new("x/vds-proxy.toml"), "parallel = 4\nparalel = 3\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("x/vds-proxy.toml:2:1: unknown field `paralel`"),
            "{msg}"
        );
        assert!(msg.contains("`parallel`"), "{msg}");
    }

    #[test]
    fn relative_paths_are_anchored_at_the_file() {
        let s = parse(Path::new("inv/vds-proxy.toml"), "templates = \"tpl\"\n").unwrap();
        assert_eq!(s.templates, Some(PathBuf::from("inv/tpl")));
        assert_eq!(s.parallel, 8);
    }
}
