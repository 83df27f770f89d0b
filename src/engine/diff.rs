//! Diff: compares a host's plan with its gathered facts and yields only the needed changes.

use std::collections::BTreeSet;

use super::gather::{Facts, needed_dirs};
use super::state::{DirEntry, FileEntry, Manifest, UnitEntry};
use crate::plan::HostPlan;
use crate::resources::{Action, Kind, KindOps, Part, Resource, UnitSpec, action, unit};

/// Why a planned file must be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It does not exist.
    New,
    /// Its content differs from the plan.
    Content,
    /// Only its mode or owner differ.
    Metadata,
}

/// Everything one apply must do on a host.
#[derive(Debug, Clone)]
pub struct Changes<'p> {
    /// Planned resources to write, in plan order.
    pub write: Vec<(&'p Resource, Why)>,
    /// Managed files the plan no longer has.
    pub prune_files: Vec<FileEntry>,
    /// Managed units the plan no longer has: stopped and disabled before activation.
    pub prune_units: Vec<String>,
    /// Managed units the plan no longer has that stop only after activation (late-stop
    /// units: what sends them traffic is reloaded without them first).
    pub prune_units_late: Vec<UnitEntry>,
    /// Planned files that exist but were never vds-proxy's: their originals are kept.
    pub adopt: Vec<String>,
    /// Adopted units the plan no longer has: reloaded (their files were restored), not stopped.
    pub release_units: Vec<String>,
    /// Directories to create (recorded in the manifest).
    pub create_dirs: Vec<String>,
    /// Directories vds-proxy created that nothing needs any more (removed if empty).
    pub prune_dirs: Vec<String>,
    /// Units to enable.
    pub enable: Vec<String>,
    /// Units to start because they are not running (and not restarted anyway).
    pub start: Vec<String>,
    /// Actions the changed files trigger.
    pub actions: Vec<Action>,
    /// Managed files changed on the host since the last deploy (they are rewritten).
    pub drifted: Vec<String>,
    /// Unchanged files whose configuration is not live (their `on_change` runs again).
    pub not_live: Vec<String>,
    /// The manifest after the apply.
    pub manifest: Manifest,
    /// The manifest must be (re)written.
    pub write_manifest: bool,
    /// The resource kinds the manifest may name.
    pub kinds: &'p [Kind],
}

impl Changes<'_> {
    /// The behaviour of a pruned file's kind (`None` for a kind no longer known).
    pub fn ops(&self, f: &FileEntry) -> Option<&'static dyn KindOps> {
        f.ops(self.kinds)
    }

    /// True when the host already matches the plan.
    pub fn is_empty(&self) -> bool {
        self.write.is_empty()
            && self.prune_files.is_empty()
            && self.prune_units.is_empty()
            && self.prune_units_late.is_empty()
            && self.release_units.is_empty()
            && self.create_dirs.is_empty()
            && self.prune_dirs.is_empty()
            && self.enable.is_empty()
            && self.start.is_empty()
            && self.not_live.is_empty()
            && !self.write_manifest
    }

    /// How many resources are written or removed.
    pub fn count(&self) -> usize {
        self.write.len() + self.prune_files.len()
    }

    /// Units whose state this apply changes: they must be active afterwards.
    pub fn touched_units(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.start.iter().cloned().collect();
        out.extend(
            self.actions
                .iter()
                .filter_map(|a| a.unit().map(str::to_string)),
        );
        out
    }
}

/// Compares `plan` with `facts`; with `only`, just the resources and units of those parts
/// (what the host has of other parts is left exactly as it is).
pub fn diff<'p>(plan: &'p HostPlan, facts: &Facts, only: Option<&[Part]>) -> Changes<'p> {
    let kinds = &plan.kinds[..];
    let selected = |p: Part| only.is_none_or(|o| o.contains(&p));
    // A missing file whose purpose is on the host already (its present check passed) is
    // not planned for this host at all: neither written nor recorded.
    let resources: Vec<&'p Resource> = plan
        .resources
        .iter()
        .filter(|r| selected(r.part))
        .filter(|r| {
            !(facts.present.contains(&r.path)
                && facts.files.get(&r.path).cloned().flatten().is_none())
        })
        .collect();
    let units: Vec<&'p UnitSpec> = plan.units.iter().filter(|u| selected(u.part)).collect();
    let mut old = facts.manifest.clone();
    old.files.retain(|f| selected(f.part));
    old.units.retain(|u| selected(u.part));
    let planned: BTreeSet<&str> = resources.iter().map(|r| r.path.as_str()).collect();
    let planned_units: BTreeSet<&str> = units.iter().map(|u| u.name.as_str()).collect();

    let mut write = Vec::new();
    for &r in &resources {
        let why = match facts.files.get(&r.path).cloned().flatten() {
            None => Some(Why::New),
            Some(f) if f.sha256 != super::gather::digest(r, &facts.key) => Some(Why::Content),
            Some(f) if f.mode != r.mode || f.owner != r.owner || f.group != r.group => {
                Some(Why::Metadata)
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            write.push((r, why));
        }
    }
    let drifted = old
        .files
        .iter()
        .filter(|e| match facts.files.get(&e.path) {
            // A secret file has no digest recorded: it is compared with the plan only.
            Some(Some(f)) => !e.sha256.is_empty() && f.sha256 != e.sha256,
            _ => true,
        })
        .map(|e| e.path.clone())
        .collect();

    let prune_files: Vec<FileEntry> = old
        .files
        .iter()
        .filter(|e| !planned.contains(e.path.as_str()))
        .cloned()
        .collect();
    let (prune_units, prune_units_late, release_units) = split_late(
        old.units
            .iter()
            .filter(|u| !planned_units.contains(u.unit.as_str())),
    );
    let adopted_units: BTreeSet<String> = units
        .iter()
        .filter(|u| match old.units.iter().find(|m| m.unit == u.name) {
            Some(m) => m.adopted,
            None => {
                let f = facts.unit(&u.name);
                f.enabled == "enabled" || f.active == "active"
            }
        })
        .map(|u| u.name.clone())
        .collect();
    let adopt: Vec<String> = resources
        .iter()
        .filter(|r| {
            matches!(facts.files.get(&r.path), Some(Some(_)))
                && facts.manifest.file(&r.path).is_none()
        })
        .map(|r| r.path.clone())
        .collect();
    let adopted: BTreeSet<String> = old
        .files
        .iter()
        .filter(|f| f.adopted)
        .map(|f| f.path.clone())
        .chain(adopt.iter().cloned())
        .collect();

    let needed = needed_dirs(resources.iter().copied());
    let create_dirs: Vec<String> = needed
        .iter()
        .filter(|d| facts.dirs.get(*d) == Some(&false))
        .cloned()
        .collect();
    let mut kept_dirs: Vec<DirEntry> = old
        .dirs
        .iter()
        .filter(|d| only.is_some() || needed.contains(&d.dir))
        .cloned()
        .collect();
    // A partial deploy does not know what the other parts need: it prunes no directory.
    let prune_dirs: Vec<String> = old
        .dirs
        .iter()
        .filter(|d| only.is_none() && !needed.contains(&d.dir))
        .map(|d| d.dir.clone())
        .collect();
    kept_dirs.extend(create_dirs.iter().map(|d| DirEntry { dir: d.clone() }));
    kept_dirs.sort_by(|a, b| a.dir.cmp(&b.dir));
    kept_dirs.dedup();

    // What an unchanged file configures can still be gone (rules flushed by hand): its
    // actions run again to put it back.
    let rewritten: BTreeSet<&str> = write.iter().map(|(r, _)| r.path.as_str()).collect();
    let not_live: Vec<&Resource> = resources
        .iter()
        .copied()
        .filter(|r| facts.not_live.contains(&r.path) && !rewritten.contains(r.path.as_str()))
        .collect();
    let mut actions = action::due(
        write
            .iter()
            .filter(|(_, why)| *why != Why::Metadata)
            .map(|(r, _)| *r)
            .chain(not_live.iter().copied())
            .flat_map(|r| &r.on_change),
    );
    if prune_files.iter().any(|f| f.read_by_systemd(kinds))
        && !actions.contains(&Action::DaemonReload)
    {
        actions.insert(0, Action::DaemonReload);
    }
    let restarted: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Restart(u) => Some(u.as_str()),
            _ => None,
        })
        .collect();
    let enable = units
        .iter()
        .filter(|u| u.enable && facts.unit(&u.name).enabled != "enabled")
        .map(|u| u.name.clone())
        .collect();
    let start = units
        .iter()
        .filter(|u| {
            u.start
                && facts.unit(&u.name).active != "active"
                && !restarted.contains(u.name.as_str())
        })
        .map(|u| u.name.clone())
        .collect();
    // A reload of a unit that is not running yet becomes a start.
    let actions = actions
        .into_iter()
        .filter(|a| match a {
            Action::Reload(u) => facts.unit(u).active == "active",
            _ => true,
        })
        .collect();

    let mut manifest = manifest_for(&resources, &units, kept_dirs, &adopted, &adopted_units);
    // Entries of parts this deploy leaves alone stay as they were.
    manifest.files.extend(
        facts
            .manifest
            .files
            .iter()
            .filter(|f| !selected(f.part))
            .cloned(),
    );
    manifest.units.extend(
        facts
            .manifest
            .units
            .iter()
            .filter(|u| !selected(u.part))
            .cloned(),
    );
    manifest.sort();
    let write_manifest = manifest != facts.manifest;
    Changes {
        write,
        prune_files,
        prune_units,
        prune_units_late,
        adopt,
        release_units,
        create_dirs,
        prune_dirs,
        enable,
        start,
        actions,
        drifted,
        not_live: not_live.iter().map(|r| r.path.clone()).collect(),
        manifest,
        write_manifest,
        kinds,
    }
}

/// The entries describing `resources` and `units` once applied (in plan order; `diff`
/// sorts the whole manifest once it holds the entries of unselected parts too).
fn manifest_for(
    resources: &[&Resource],
    units: &[&UnitSpec],
    dirs: Vec<DirEntry>,
    adopted: &BTreeSet<String>,
    adopted_units: &BTreeSet<String>,
) -> Manifest {
    Manifest {
        files: resources
            .iter()
            .map(|r| FileEntry {
                path: r.path.clone(),
                // A secret file's digest is never recorded (it would leave the host).
                sha256: if r.secret {
                    String::new()
                } else {
                    r.sha256.clone()
                },
                kind: r.kind.name().to_string(),
                service: r.service.clone(),
                adopted: adopted.contains(&r.path),
                part: r.part,
            })
            .collect(),
        units: units
            .iter()
            .map(|u| UnitEntry {
                unit: u.name.clone(),
                late_stop: u.late_stop,
                drain_secs: if u.late_stop { u.drain_secs } else { 0 },
                ports: if u.late_stop {
                    u.ports.clone()
                } else {
                    Vec::new()
                },
                adopted: adopted_units.contains(&u.name),
                part: u.part,
                service: resources
                    .iter()
                    .find(|r| r.kind == Kind::UNIT && unit::serves(&r.path, &u.name))
                    .and_then(|r| r.service.clone()),
            })
            .collect(),
        dirs,
    }
}

/// Splits units vds-proxy lets go of: stopped before activation, stopped after it, and
/// adopted ones (reloaded, left running).
fn split_late<'a>(
    units: impl Iterator<Item = &'a UnitEntry>,
) -> (Vec<String>, Vec<UnitEntry>, Vec<String>) {
    let (mut early, mut late, mut released) = (Vec::new(), Vec::new(), Vec::new());
    for u in units {
        match (u.adopted, u.late_stop) {
            (true, _) => released.push(u.unit.clone()),
            (false, true) => late.push(u.clone()),
            (false, false) => early.push(u.unit.clone()),
        }
    }
    (early, late, released)
}

/// The changes that take back what vds-proxy installed on a host: everything, or only the
/// files and units of the service named `service`. Nothing is written.
pub fn removal<'p>(facts: &Facts, service: Option<&str>, kinds: &'p [Kind]) -> Changes<'p> {
    let selected = |s: &Option<String>| service.is_none() || s.as_deref() == service;
    let prune_files: Vec<FileEntry> = facts
        .manifest
        .files
        .iter()
        .filter(|f| selected(&f.service))
        .cloned()
        .collect();
    let (prune_units, prune_units_late, release_units) =
        split_late(facts.manifest.units.iter().filter(|u| selected(&u.service)));
    let mut manifest = facts.manifest.clone();
    manifest.files.retain(|f| !selected(&f.service));
    manifest.units.retain(|u| !selected(&u.service));
    let kept: BTreeSet<String> = manifest
        .files
        .iter()
        .flat_map(|f| {
            std::path::Path::new(&f.path)
                .ancestors()
                .skip(1)
                .map(|a| a.display().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let (kept_dirs, prune_dirs): (Vec<DirEntry>, Vec<DirEntry>) = manifest
        .dirs
        .iter()
        .cloned()
        .partition(|d| kept.contains(&d.dir));
    manifest.dirs = kept_dirs;
    let actions = if prune_files.iter().any(|f| f.read_by_systemd(kinds)) {
        vec![Action::DaemonReload]
    } else {
        Vec::new()
    };
    let write_manifest = manifest != facts.manifest;
    Changes {
        write: Vec::new(),
        prune_files,
        prune_units,
        prune_units_late,
        adopt: Vec::new(),
        release_units,
        create_dirs: Vec::new(),
        prune_dirs: prune_dirs.into_iter().map(|d| d.dir).collect(),
        enable: Vec::new(),
        start: Vec::new(),
        actions,
        drifted: Vec::new(),
        not_live: Vec::new(),
        manifest,
        write_manifest,
        kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Connection;
    use crate::resources::Kind;

    /// A plan with a setup file and one late-stop instance unit; a host whose manifest also
    /// has a second instance (the inventory scaled 2 -> 1) with its env file.
    fn scaled_down() -> (HostPlan, Facts) {
        let setup =
            Resource::text(Kind::FILE, "/etc/a.conf", "a\n".into(), 0o644).in_part(Part::Setup);
        let mut instance = unit::running("echo@1.service", vec![10000]);
        instance.part = Part::Backends;
        let plan = HostPlan {
            node: "h1".into(),
            connection: Connection::Ssh,
            resources: vec![setup],
            units: vec![instance],
            kinds: crate::resources::SHARED.to_vec(),
        };
        let mut facts = Facts::default();
        facts.manifest.files.push(FileEntry {
            path: "/etc/vds-proxy/echo/2.env".into(),
            sha256: "00".into(),
            kind: "file".into(),
            service: Some("echo".into()),
            adopted: false,
            part: Part::Backends,
        });
        for (n, port) in [(1, 10000), (2, 10001)] {
            facts.manifest.units.push(UnitEntry {
                unit: format!("echo@{n}.service"),
                service: Some("echo".into()),
                late_stop: true,
                drain_secs: 30,
                ports: vec![port],
                adopted: false,
                part: Part::Backends,
            });
        }
        (plan, facts)
    }

    #[test]
    fn a_pruned_file_takes_its_behaviour_from_the_kinds_the_plan_registered() {
        let (mut plan, mut facts) = scaled_down();
        facts.manifest.files[0].kind = "unit".into();
        facts.manifest.files[0].path = "/etc/systemd/system/echo@.service".into();
        let c = diff(&plan, &facts, None);
        assert!(c.ops(&c.prune_files[0]).is_some_and(|o| o.systemd()));
        assert!(c.actions.contains(&Action::DaemonReload));
        // A kind no registered system knows is only deleted: no command of its runs.
        plan.kinds.retain(|k| *k != Kind::UNIT);
        let c = diff(&plan, &facts, None);
        assert!(c.ops(&c.prune_files[0]).is_none());
        assert!(!c.actions.contains(&Action::DaemonReload));
    }

    #[test]
    fn a_full_deploy_drains_and_prunes_what_the_inventory_dropped() {
        let (plan, facts) = scaled_down();
        let c = diff(&plan, &facts, None);
        assert_eq!(c.prune_units_late.len(), 1);
        assert_eq!(c.prune_units_late[0].unit, "echo@2.service");
        assert_eq!(c.prune_units_late[0].ports, vec![10001]);
        assert_eq!(c.prune_units_late[0].drain_secs, 30);
        assert_eq!(c.prune_files[0].path, "/etc/vds-proxy/echo/2.env");
        assert!(!c.manifest.units.iter().any(|u| u.unit == "echo@2.service"));
    }

    #[test]
    fn a_partial_deploy_leaves_other_parts_and_their_manifest_entries_alone() {
        let (plan, facts) = scaled_down();
        let c = diff(&plan, &facts, Some(&[Part::Setup]));
        assert_eq!(c.write.len(), 1, "the setup file is written");
        assert!(c.prune_units.is_empty() && c.prune_units_late.is_empty());
        assert!(c.prune_files.is_empty());
        assert!(
            c.start.is_empty(),
            "backend units are not started by --only setup"
        );
        assert!(c.manifest.units.iter().any(|u| u.unit == "echo@2.service"));
        assert!(c.manifest.file("/etc/vds-proxy/echo/2.env").is_some());
        assert!(c.manifest.file("/etc/a.conf").is_some());
    }
}

#[cfg(test)]
mod present_tests {
    use super::*;
    use crate::inventory::Connection;
    use crate::resources::Kind;

    /// A missing file whose present check passed is neither written nor recorded (an
    /// image archive whose image the node has); once it exists, or the check fails, it is
    /// an ordinary file again.
    #[test]
    fn a_missing_file_whose_purpose_is_present_is_neither_written_nor_recorded() {
        let archive = Resource::text(Kind::FILE, "/var/lib/x/img.tar", "tar".into(), 0o600)
            .present_check("true");
        let plan = HostPlan {
            node: "h1".into(),
            connection: Connection::Ssh,
            resources: vec![archive],
            units: Vec::new(),
            kinds: crate::resources::SHARED.to_vec(),
        };
        let mut facts = Facts::default();
        facts.files.insert("/var/lib/x/img.tar".into(), None);
        let c = diff(&plan, &facts, None);
        assert_eq!(c.write.len(), 1, "the check did not pass: it is uploaded");
        assert_eq!(c.manifest.files.len(), 1);
        facts.present.insert("/var/lib/x/img.tar".into());
        let c = diff(&plan, &facts, None);
        assert!(c.write.is_empty(), "{:?}", c.write);
        assert!(c.manifest.files.is_empty() && c.create_dirs.is_empty());
    }
}
