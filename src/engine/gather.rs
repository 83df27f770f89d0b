//! Gather: one script, one round trip per host, reporting what is there now: the manifest
//! vds-proxy left, the hash/mode/owner of every managed or planned file, which of their
//! directories exist, and the state of every managed or planned unit.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use super::state::{Manifest, SED_PATHS, SED_UNITS, STATE_FILE};
use crate::plan::HostPlan;
use crate::resources::{Kind, Resource};
use crate::shell::quote;
use crate::transport::Transport;

/// A file as it is on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub sha256: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
}

/// A unit as it is on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFacts {
    /// `active`, `inactive`, `failed`, `activating`...
    pub active: String,
    /// `enabled`, `disabled`, or empty when the unit file does not exist.
    pub enabled: String,
    /// Changes every time the unit starts.
    pub invocation: String,
}

/// What a host looks like now.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `uname -m`.
    pub arch: String,
    /// SHA-256 of the manifest file as read, or `none`: apply checks it did not change since.
    pub state_hash: String,
    pub manifest: Manifest,
    /// Every managed or planned path; `None` when the file does not exist.
    pub files: BTreeMap<String, Option<FileFacts>>,
    /// Whether each directory a planned file needs exists.
    pub dirs: BTreeMap<String, bool>,
    pub units: BTreeMap<String, UnitFacts>,
    /// Planned files whose live check failed: what they configure is not in effect.
    pub not_live: BTreeSet<String>,
    /// Planned unit files that systemd or a package already installed: name → its path.
    pub vendor_units: BTreeMap<String, String>,
}

impl Facts {
    /// The state of `unit` (inactive and unknown when it was not gathered).
    pub fn unit(&self, unit: &str) -> UnitFacts {
        self.units.get(unit).cloned().unwrap_or_default()
    }
}

/// Every directory above the planned files, deepest last (`/` excluded).
pub fn needed_dirs<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for r in resources {
        let mut p = std::path::Path::new(&r.path).parent();
        while let Some(d) = p {
            if d.as_os_str() != "/" {
                dirs.insert(d.display().to_string());
            }
            p = d.parent();
        }
    }
    dirs
}

/// The file name of `path` (after its last `/`).
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The read-only functions (facts, probes, file contents) every host-reading script uses.
pub const LIBRARY: &str = include_str!("scripts/gather.sh");

/// `NAME ARG...` with every argument quoted: one call of a script function.
pub fn call<S: AsRef<str>>(name: &str, args: impl IntoIterator<Item = S>) -> String {
    let mut line = name.to_string();
    for a in args {
        line.push(' ');
        line.push_str(&quote(a.as_ref()));
    }
    line.push('\n');
    line
}

/// The library, then the variables its functions read.
fn prelude() -> String {
    format!(
        "{LIBRARY}STATE_FILE={}\nSED_PATHS={}\nSED_UNITS={}\n",
        quote(STATE_FILE),
        quote(SED_PATHS),
        quote(SED_UNITS)
    )
}

/// The calls that gather the facts of `plan` (without the library).
fn calls(plan: &HostPlan) -> String {
    let mut s = String::from("host_facts\n");
    s += &call("file_facts", plan.resources.iter().map(|r| &r.path));
    s += &call("dir_facts", needed_dirs(&plan.resources));
    s += &call("unit_facts", plan.units.iter().map(|u| &u.name));
    let unit_files: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| r.kind == Kind::Unit)
        .map(|r| base_name(&r.path))
        .collect();
    if !unit_files.is_empty() {
        s += &call("vendor_units", unit_files);
    }
    for r in &plan.resources {
        if let Some(check) = &r.live_check {
            s += &call("live_check", [&r.path, check]);
        }
    }
    s
}

/// The gather script for `plan`; `extra` runs after the facts, before the end marker.
pub fn script_with(plan: &HostPlan, extra: &str) -> String {
    format!("{}{}{extra}echo \"@end\"\n", prelude(), calls(plan))
}

/// The gather script for `plan`.
pub fn script(plan: &HostPlan) -> String {
    script_with(plan, "")
}

/// Runs the gather script on a host.
pub async fn gather(t: &dyn Transport, plan: &HostPlan) -> Result<Facts> {
    let out = t.run(&script(plan)).await?;
    if out.status != 0 || !out.stdout.contains("@end") {
        bail!(
            "{}: gathering facts failed (exit {}): {}",
            t.label(),
            out.status,
            out.stderr.trim()
        );
    }
    parse(&out.stdout).with_context(|| format!("{}: reading gathered facts", t.label()))
}

/// Parses the gather script's output.
pub fn parse(stdout: &str) -> Result<Facts> {
    let mut f = Facts::default();
    let mut manifest_text = String::new();
    let mut unit = UnitFacts::default();
    let mut unit_id = String::new();
    let flush = |id: &mut String, u: &mut UnitFacts, f: &mut Facts| {
        if !id.is_empty() {
            f.units.insert(std::mem::take(id), std::mem::take(u));
        }
    };
    for line in stdout.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "@arch" => f.arch = rest.to_string(),
            "@state" => f.state_hash = rest.to_string(),
            "@m" => {
                manifest_text.push_str(rest);
                manifest_text.push('\n');
            }
            "@file" => {
                let mut parts = rest.splitn(5, ' ');
                let (sha, mode, owner, group, path) = (
                    parts.next().unwrap_or("-"),
                    parts.next().unwrap_or("-"),
                    parts.next().unwrap_or("-"),
                    parts.next().unwrap_or("-"),
                    parts.next().unwrap_or_default(),
                );
                let facts = (sha != "-").then(|| FileFacts {
                    sha256: sha.to_string(),
                    mode: u32::from_str_radix(mode, 8).unwrap_or(0),
                    owner: owner.to_string(),
                    group: group.to_string(),
                });
                f.files.insert(path.to_string(), facts);
            }
            "@vendor" => {
                if let Some((name, path)) = rest.split_once(' ') {
                    f.vendor_units.insert(name.to_string(), path.to_string());
                }
            }
            "@notlive" => {
                f.not_live.insert(rest.to_string());
            }
            "@dir" => {
                if let Some((exists, d)) = rest.split_once(' ') {
                    f.dirs.insert(d.to_string(), exists == "1");
                }
            }
            "@u" => match rest.split_once('=') {
                Some(("Id", v)) => {
                    flush(&mut unit_id, &mut unit, &mut f);
                    unit_id = v.to_string();
                }
                Some(("ActiveState", v)) => unit.active = v.to_string(),
                Some(("UnitFileState", v)) => unit.enabled = v.to_string(),
                Some(("InvocationID", v)) => unit.invocation = v.to_string(),
                _ => {}
            },
            _ => {}
        }
    }
    flush(&mut unit_id, &mut unit, &mut f);
    if !manifest_text.trim().is_empty() {
        f.manifest = Manifest::parse(&manifest_text).with_context(|| {
            format!("{STATE_FILE} is not a vds-proxy manifest; move it away to start afresh")
        })?;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fact() {
        let out = "@arch x86_64\n@state none\n@file ab12 644 root root /etc/a b.conf\n@file - - - - /etc/gone\n@dir 0 /etc/vds-proxy\n@u Id=a.service\n@u ActiveState=active\n@u UnitFileState=enabled\n@u InvocationID=42\n@u \n@u Id=b.service\n@u ActiveState=inactive\n@u UnitFileState=\n@u InvocationID=\n@end\n";
        let f = parse(out).unwrap();
        assert_eq!(f.arch, "x86_64");
        assert_eq!(f.state_hash, "none");
        assert_eq!(
            f.files["/etc/a b.conf"],
            Some(FileFacts {
                sha256: "ab12".into(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into()
            })
        );
        assert_eq!(f.files["/etc/gone"], None);
        assert!(!f.dirs["/etc/vds-proxy"]);
        assert_eq!(f.unit("a.service").invocation, "42");
        assert_eq!(f.unit("a.service").enabled, "enabled");
        assert_eq!(f.unit("b.service").active, "inactive");
        assert!(f.manifest.is_empty());
    }
}
