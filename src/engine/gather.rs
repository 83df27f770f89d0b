//! Gather: one script, one round trip per host, reporting what is there now: the manifest
//! vds-proxy left, the hash/mode/owner of every managed or planned file, which of their
//! directories exist, and the state of every managed or planned unit.
//!
//! A file that holds a secret is never hashed plainly where the hash would leave the host
//! (a plain digest of a weak secret falls to a dictionary): the node hashes it with a key
//! of this gather only ([`new_key`], sent with the script on its standard input, never
//! printed), and the plan's content is hashed with the same key here. The manifest records
//! no digest for such a file.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use super::state::{Manifest, PATH_PREFIX, STATE_FILE, UNIT_PREFIX};
use crate::plan::HostPlan;
use crate::resources::{Content, Kind, Resource};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFacts {
    /// `active`, `inactive`, `failed`, `activating`...
    pub active: String,
    /// `enabled`, or empty when it is not.
    pub enabled: String,
    /// systemd's load state (`loaded`, `not-found`, `masked`...), empty when not known.
    pub load: String,
}

impl Default for UnitFacts {
    /// A unit systemd has not loaded: inactive, not enabled.
    fn default() -> Self {
        UnitFacts {
            active: "inactive".into(),
            enabled: String::new(),
            load: String::new(),
        }
    }
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
    /// Planned files that are missing and not needed: their present check passed.
    pub present: BTreeSet<String>,
    /// Planned unit files that systemd or a package already installed: name → its path.
    pub vendor_units: BTreeMap<String, String>,
    /// The key secret files were hashed with (see the module's doc).
    pub key: String,
    /// An apply cut off before (its host rebooted, its processes killed) left its
    /// transaction: it must be resolved (rolled back or forward) before anything else.
    pub interrupted: bool,
    /// An apply holds the host lock right now.
    pub applying: bool,
    /// Files a failed apply's rollback could not put back; the host keeps trying (its
    /// transaction stays until it has, or a deploy resolves it).
    pub stuck: Vec<String>,
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

pub use crate::shell::call;

/// A new key for hashing secret files: 32 random bytes, hex.
pub fn new_key() -> String {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom is readable");
    crate::resources::hex(&b)
}

/// The digest the gather reports for `r`'s content when hashed with `key`: keyed for a
/// secret file, its plain SHA-256 otherwise.
pub fn digest(r: &Resource, key: &str) -> String {
    match (&r.content, r.secret) {
        (Content::Text(t), true) => crate::resources::sha256_hex(format!("{key}{t}").as_bytes()),
        _ => r.sha256.clone(),
    }
}

/// The library, then the variables its functions read: the planned files that hold
/// secrets (hashed with `KEY` only) among them.
fn prelude(plan: &HostPlan, key: &str) -> String {
    let secrets: String = plan
        .resources
        .iter()
        .filter(|r| r.secret)
        .map(|r| format!("{}\n", r.path))
        .collect();
    format!(
        "{LIBRARY}STATE_FILE={}\nLEFTOVER={}\nDIGESTS={}\nBIG={}\nPATH_PREFIX={}\nUNIT_PREFIX={}\nKEY={}\nSECRET_PATHS={}\n",
        quote(STATE_FILE),
        quote(super::state::LEFTOVER_FILE),
        quote(super::state::DIGESTS_FILE),
        super::state::BIG_FILE,
        quote(PATH_PREFIX),
        quote(UNIT_PREFIX),
        quote(key),
        quote(&secrets)
    )
}

/// The calls that gather the facts of `plan` (without the library).
fn calls(plan: &HostPlan) -> String {
    // The architecture only matters to a plan that ships a binary built for one.
    let arch = plan
        .resources
        .iter()
        .any(|r| matches!(r.content, Content::Local { .. }));
    let mut s = String::from(if arch {
        "host_facts arch\n"
    } else {
        "host_facts\n"
    });
    s += &call("file_facts", plan.resources.iter().map(|r| &r.path));
    s += &call(
        "txn_facts",
        [super::apply::TXN_DIR, super::apply::LOCK_FILE],
    );
    s += &call("dir_facts", needed_dirs(&plan.resources));
    s += &call("unit_facts", plan.units.iter().map(|u| &u.name));
    let unit_files: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| r.kind == Kind::UNIT)
        .map(|r| base_name(&r.path))
        .collect();
    if !unit_files.is_empty() {
        s += &call("vendor_units", unit_files);
    }
    for r in &plan.resources {
        if let Some(check) = &r.live_check {
            s += &call("live_check", [&r.path, check]);
        }
        if let Some(check) = &r.present_check {
            s += &call("present_check", [&r.path, check]);
        }
    }
    s
}

/// The gather script for `plan` with `key` for secret files; `extra` runs after the facts,
/// before the end marker.
pub fn script_with(plan: &HostPlan, extra: &str, key: &str) -> String {
    format!(
        "{}{}{extra}echo \"@end\"\n",
        prelude(plan, key),
        calls(plan)
    )
}

/// The gather script for `plan`, secret files hashed with `key`.
pub fn script(plan: &HostPlan, key: &str) -> String {
    script_with(plan, "", key)
}

/// Runs the gather script on a host.
pub async fn gather(t: &dyn Transport, plan: &HostPlan) -> Result<Facts> {
    let key = new_key();
    let out = t.run(&script(plan, &key)).await?;
    if out.status != 0 || !out.stdout.contains("@end") {
        bail!(
            "{}: gathering facts failed (exit {}): {}",
            t.label(),
            out.status,
            out.stderr.trim()
        );
    }
    parse(&out.stdout, &key).with_context(|| format!("{}: reading gathered facts", t.label()))
}

/// Parses the output of the gather script that hashed secret files with `key`.
pub fn parse(stdout: &str, key: &str) -> Result<Facts> {
    let mut f = Facts {
        key: key.to_string(),
        ..Facts::default()
    };
    let mut manifest_text = String::new();
    let mut sums: BTreeMap<&str, &str> = BTreeMap::new();
    let mut stats: Vec<(&str, &str)> = Vec::new();
    let (mut users, mut groups): (BTreeMap<&str, &str>, BTreeMap<&str, &str>) = Default::default();
    let mut in_units = false;
    let mut dbus: Option<Vec<&str>> = None;
    let mut state_file = None;
    let mut leftovers: Vec<String> = Vec::new();
    for line in stdout.lines() {
        if in_units {
            if line == "@units-end" {
                in_units = false;
            } else if line == "@dbus" {
                dbus = Some(Vec::new());
            } else if let Some(fields) = dbus.as_mut() {
                // dbus-send's print of ListUnitsByNames: per unit a struct whose first
                // strings are name, description, load state, active state.
                let line = line.trim();
                if line == "struct {" {
                    fields.clear();
                } else if let Some(v) = line.strip_prefix("string \"") {
                    fields.push(v.strip_suffix('"').unwrap_or(v));
                    if let [name, _, load, active] = fields[..] {
                        let u = f.units.entry(name.to_string()).or_default();
                        u.active = active.to_string();
                        u.load = load.to_string();
                    }
                }
            } else {
                // systemctl list-units: UNIT LOAD ACTIVE SUB DESCRIPTION.
                let mut w = line.split_whitespace();
                if let (Some(name), Some(load), Some(active)) = (w.next(), w.next(), w.next()) {
                    let u = f.units.entry(name.to_string()).or_default();
                    u.active = active.to_string();
                    u.load = load.to_string();
                }
            }
            continue;
        }
        // `sha256sum --tag`: "SHA256 (PATH) = HASH".
        if let Some(rest) = line.strip_prefix("SHA256 (")
            && let Some((path, hash)) = rest.rsplit_once(") = ")
        {
            sums.insert(path, hash);
            continue;
        }
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            // A secret file's digest, keyed: "@keyed HASH PATH".
            "@keyed" => {
                if let Some((hash, path)) = rest.split_once(' ') {
                    sums.insert(path, hash);
                }
            }
            "@arch" => f.arch = rest.to_string(),
            "@statefile" => state_file = Some(rest),
            "@units" => in_units = true,
            "@m" => {
                manifest_text.push_str(rest);
                manifest_text.push('\n');
            }
            "@file" => {
                let path = rest.splitn(5, ' ').nth(4).unwrap_or_default();
                f.files.insert(path.to_string(), None);
            }
            "@stat" => {
                let (attrs, path) = rest
                    .match_indices(' ')
                    .nth(2)
                    .map_or((rest, ""), |(i, _)| (&rest[..i], &rest[i + 1..]));
                stats.push((path, attrs));
            }
            "@uid" | "@gid" => {
                if let Some((id, name)) = rest.split_once(' ') {
                    let names = if tag == "@uid" {
                        &mut users
                    } else {
                        &mut groups
                    };
                    names.entry(id).or_insert(name);
                }
            }
            "@enabled" => {
                let u = f.units.entry(rest.to_string()).or_default();
                u.enabled = "enabled".to_string();
            }
            "@vendor" => {
                if let Some((name, path)) = rest.split_once(' ') {
                    f.vendor_units.insert(name.to_string(), path.to_string());
                }
            }
            "@leftover" => leftovers.push(rest.to_string()),
            "@interrupted" => f.interrupted = true,
            "@applying" => f.applying = true,
            "@stuck" => f.stuck.push(rest.to_string()),
            "@notlive" => {
                f.not_live.insert(rest.to_string());
            }
            "@present" => {
                f.present.insert(rest.to_string());
            }
            "@dir" => {
                if let Some((exists, d)) = rest.split_once(' ') {
                    f.dirs.insert(d.to_string(), exists == "1");
                }
            }
            _ => {}
        }
    }
    f.state_hash = state_file
        .and_then(|p| sums.remove(p))
        .unwrap_or("none")
        .to_string();
    for (path, attrs) in stats {
        let mut a = attrs.split(' ');
        // Ids are named by the @uid/@gid lines, 0 is root; an id without a name stays a
        // number (and so differs from any owner a plan names).
        let name = |names: &BTreeMap<&str, &str>, id: &str| match (id, names.get(id)) {
            ("0", _) => "root".to_string(),
            (_, Some(name)) => name.to_string(),
            (id, None) => id.to_string(),
        };
        let (mode, uid, gid) = (a.next(), a.next(), a.next());
        let owner = uid.map(|id| name(&users, id));
        let group = gid.map(|id| name(&groups, id));
        // A file removed between the two reads counts as missing.
        let facts = match (sums.get(path), mode, owner, group) {
            (Some(sha), Some(mode), Some(owner), Some(group)) => Some(FileFacts {
                sha256: sha.to_string(),
                mode: u32::from_str_radix(mode, 8).unwrap_or(0),
                owner,
                group,
            }),
            _ => None,
        };
        f.files.insert(path.to_string(), facts);
    }
    if !manifest_text.trim().is_empty() {
        f.manifest = Manifest::parse(&manifest_text).with_context(|| {
            format!("{STATE_FILE} is not a vds-proxy manifest; move it away to start afresh")
        })?;
    }
    // What a rollback could not delete is vds-proxy's: managed as if recorded, its digest
    // unknown (so a planned one is written again, an unplanned one pruned).
    let recorded = f.manifest.files.len();
    for path in leftovers {
        if f.manifest.file(&path).is_none() {
            let is_unit = crate::resources::unit::file_name(&path).is_some_and(|n| n.contains('.'));
            f.manifest.files.push(super::state::FileEntry {
                path,
                sha256: String::new(),
                kind: if is_unit { Kind::UNIT } else { Kind::FILE }
                    .name()
                    .to_string(),
                service: None,
                adopted: false,
                part: Default::default(),
            });
        }
    }
    if f.manifest.files.len() > recorded {
        f.manifest.sort();
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file a rollback could not delete is managed as if the manifest had it: a unit file
    /// as a unit (so pruning it stops the unit), anything else as a file; one the manifest
    /// has already is not doubled.
    #[test]
    fn leftovers_join_the_manifest() {
        let out = concat!(
            "@leftover /etc/systemd/system/echo-8454.service\n",
            "@leftover /etc/vds-proxy/relay.toml\n",
            "@end\n",
        );
        let f = parse(out, "k").unwrap();
        let kinds: Vec<(&str, &str)> = f
            .manifest
            .files
            .iter()
            .map(|e| (e.path.as_str(), e.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("/etc/systemd/system/echo-8454.service", "unit"),
                ("/etc/vds-proxy/relay.toml", "file")
            ]
        );
    }

    #[test]
    fn parses_every_fact() {
        let out = concat!(
            "@arch x86_64\n",
            "@file - - - - /etc/gone\n",
            "SHA256 (/etc/a b.conf) = ab12\n",
            "@stat 644 0 0 /etc/a b.conf\n",
            "@stat 640 108 4 /etc/h.cfg\n",
            "@uid 108 proxyd\n",
            "@gid 4 adm\n",
            "@gid 4 second\n",
            "SHA256 (/etc/h.cfg) = cd34\n",
            "@stat 600 1234 1234 /etc/orphan\n",
            "SHA256 (/etc/orphan) = ef56\n",
            "@dir 0 /etc/vds-proxy\n",
            "@units\n",
            "a.service loaded active running A thing\n",
            "b.service loaded failed failed  B thing\n",
            "@units-end\n",
            "@enabled a.service\n",
            "@end\n",
        );
        let f = parse(out, "k").unwrap();
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
        let owners = |p: &str| {
            let a = f.files[p].clone().unwrap();
            (a.owner, a.group)
        };
        assert_eq!(owners("/etc/h.cfg"), ("proxyd".into(), "adm".into()));
        assert_eq!(owners("/etc/orphan"), ("1234".into(), "1234".into()));
        assert_eq!(f.files["/etc/gone"], None);
        assert!(!f.dirs["/etc/vds-proxy"]);
        assert_eq!(f.unit("a.service").active, "active");
        assert_eq!(f.unit("a.service").enabled, "enabled");
        assert_eq!(f.unit("b.service").active, "failed");
        assert_eq!(f.unit("b.service").enabled, "");
        assert_eq!(f.unit("c.service").active, "inactive");
        assert!(f.manifest.is_empty());
    }

    #[test]
    fn reads_unit_states_from_dbus_send() {
        let out = concat!(
            "@units\n",
            "@dbus\n",
            "method return time=1.2 sender=:1.1 -> destination=:1.3 serial=6 reply_serial=2\n",
            "   array [\n",
            "      struct {\n",
            "         string \"a.service\"\n",
            "         string \"A \\\"quoted\\\" thing\"\n",
            "         string \"loaded\"\n",
            "         string \"active\"\n",
            "         string \"running\"\n",
            "         string \"\"\n",
            "         object path \"/org/freedesktop/systemd1/unit/a_2eservice\"\n",
            "         uint32 0\n",
            "         string \"\"\n",
            "         object path \"/\"\n",
            "      }\n",
            "      struct {\n",
            "         string \"gone.service\"\n",
            "         string \"gone.service\"\n",
            "         string \"not-found\"\n",
            "         string \"inactive\"\n",
            "         string \"dead\"\n",
            "      }\n",
            "   ]\n",
            "@units-end\n",
            "@enabled a.service\n",
        );
        let f = parse(out, "k").unwrap();
        assert_eq!(f.unit("a.service").active, "active");
        assert_eq!(f.unit("a.service").enabled, "enabled");
        assert_eq!(f.unit("gone.service").active, "inactive");
        assert_eq!(f.unit("a.service").load, "loaded");
        assert_eq!(f.unit("gone.service").load, "not-found");
        assert_eq!(f.units.len(), 2);
    }

    /// A big file's hash (the bundled binary) comes from the cache beside the manifest while
    /// the file is the one hashed, and is computed again once the file is written.
    #[test]
    fn a_big_files_hash_is_cached_until_the_file_changes() {
        let tmp = tempfile::Builder::new()
            .prefix("vds-digests-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let big = dir.join("big file.bin");
        let small = dir.join("small.conf");
        let mut bytes = vec![7u8; crate::engine::state::BIG_FILE as usize];
        std::fs::write(&big, &bytes).unwrap();
        std::fs::write(&small, "small\n").unwrap();
        let plan = HostPlan {
            node: "h".into(),
            connection: crate::inventory::Connection::Local,
            resources: vec![],
            units: vec![],
            kinds: vec![],
        };
        let (big_path, small_path) = (big.display().to_string(), small.display().to_string());
        let run = || {
            let script = format!(
                "{}STATE_FILE={}\nDIGESTS={}\nhost_facts\n{}echo @end\n",
                prelude(&plan, "k"),
                quote(&format!("{}/state.json", dir.display())),
                quote(&format!("{}/digests", dir.display())),
                call("file_facts", [&big_path, &small_path]),
            );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            let f = parse(&String::from_utf8(out.stdout).unwrap(), "k").unwrap();
            let hash = |p: &str| f.files[p].clone().expect("the file exists").sha256;
            (hash(&big_path), hash(&small_path))
        };
        let digests = dir.join("digests");
        let real = crate::resources::sha256_hex(&bytes);
        assert_eq!(run().0, real);
        // Only the big file is cached.
        let cache = std::fs::read_to_string(&digests).unwrap();
        assert!(cache.ends_with(&format!(" {real} {big_path}\n")), "{cache}");
        assert_eq!(cache.lines().count(), 1, "{cache}");
        // Read from the cache: a planted hash is what gather reports (the file is unchanged).
        let planted = "f".repeat(64);
        std::fs::write(&digests, cache.replace(&real, &planted)).unwrap();
        assert_eq!(run(), (planted, crate::resources::sha256_hex(b"small\n")));
        // Written (same size, same inode): hashed again, and the cache follows.
        bytes[0] = 8;
        std::fs::write(&big, &bytes).unwrap();
        let changed = crate::resources::sha256_hex(&bytes);
        assert_eq!(run().0, changed);
        assert!(
            std::fs::read_to_string(&digests)
                .unwrap()
                .contains(&changed)
        );
    }

    /// The shell functions and the parser together, on a real directory: the manifest's
    /// files and units are gathered with the planned ones (each once), a path with a space
    /// survives with its owner and group named, a missing file is missing, the manifest's
    /// hash is the state hash, and secret files (planned, or recorded without a digest)
    /// are reported only by their keyed digest.
    #[test]
    fn the_shell_functions_report_what_the_parser_reads() {
        use crate::engine::state::{FileEntry, UnitEntry};
        let tmp = tempfile::Builder::new()
            .prefix("vds-gather-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let d = dir.display();
        let (spaced, managed) = (format!("{d}/a b.conf"), format!("{d}/old.conf"));
        let (secret, old_secret) = (format!("{d}/app.env"), format!("{d}/old.env"));
        std::fs::write(&spaced, "hello\n").unwrap();
        std::fs::write(&managed, "old\n").unwrap();
        std::fs::write(&secret, "TOKEN=s3cret\n").unwrap();
        std::fs::write(&old_secret, "TOKEN=older\n").unwrap();
        let secret_resource =
            Resource::text(Kind::FILE, &secret, "TOKEN=s3cret\n".into(), 0o600).secret();
        let plan = HostPlan {
            node: "h".into(),
            connection: crate::inventory::Connection::Local,
            resources: vec![secret_resource.clone()],
            units: vec![],
            kinds: vec![],
        };
        std::process::Command::new("chmod")
            .args(["640", &spaced])
            .status()
            .unwrap();
        // Owner and group by name: a user other than root when this runs as root (as in
        // CI), else whoever runs it.
        let id = |arg: &str| {
            let out = std::process::Command::new("id").arg(arg).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let owner = if id("-u") == "0" {
            std::process::Command::new("chown")
                .args(["nobody:nogroup", &spaced])
                .status()
                .unwrap();
            ("nobody".to_string(), "nogroup".to_string())
        } else {
            (id("-un"), id("-gn"))
        };
        let manifest = Manifest {
            files: vec![
                FileEntry {
                    path: managed.clone(),
                    sha256: "x".into(),
                    kind: "file".into(),
                    service: None,
                    adopted: false,
                    part: Default::default(),
                },
                FileEntry {
                    path: old_secret.clone(),
                    sha256: String::new(),
                    kind: "file".into(),
                    service: None,
                    adopted: false,
                    part: Default::default(),
                },
            ],
            units: vec![UnitEntry {
                unit: "old.service".into(),
                service: None,
                late_stop: false,
                drain_secs: 0,
                ports: vec![],
                adopted: false,
                part: Default::default(),
            }],
            dirs: vec![],
        };
        let state = format!("{d}/state.json");
        std::fs::write(&state, manifest.to_text()).unwrap();
        // What systemd says about every unit it is asked about, whatever this machine runs:
        // through dbus-send (every unit failed), or systemctl when dbus-send fails (every
        // unit active).
        let fake = |name: &str, body: &str| crate::engine::stand_in(&dir.join(name), body);
        let systemctl =
            r#"shift 6; for u in "$@"; do printf '%s loaded active running A unit\n' "$u"; done"#;
        fake("bus/systemctl", systemctl);
        fake("nobus/systemctl", systemctl);
        fake(
            "bus/dbus-send",
            r#"for a; do l=$a; done; IFS=,; echo 'method return'
for u in ${l#array:string:}; do printf '  struct {\n    string "%s"\n    string "A unit"\n    string "loaded"\n    string "failed"\n  }\n' "$u"; done"#,
        );
        fake("nobus/dbus-send", "exit 1");
        let run = |bin: &str| {
            let script = format!(
                "{}STATE_FILE={}\nPATH={d}/{bin}:$PATH\nhost_facts arch\n{}{}echo @end\n",
                prelude(&plan, "k"),
                quote(&state),
                call(
                    "file_facts",
                    [spaced.as_str(), &format!("{d}/missing"), &managed, &secret]
                ),
                call("unit_facts", ["new.service", "old.service"]),
            );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            for plain in ["TOKEN=s3cret\n", "TOKEN=older\n"] {
                let sha = crate::resources::sha256_hex(plain.as_bytes());
                assert!(
                    !stdout.contains(&sha),
                    "a plain digest of a secret file: {stdout}"
                );
            }
            parse(&stdout, "k").unwrap()
        };
        let (f, no_bus) = (run("bus"), run("nobus"));
        let uname = std::process::Command::new("uname")
            .arg("-m")
            .output()
            .unwrap();
        assert_eq!(f.arch, String::from_utf8(uname.stdout).unwrap().trim());
        let text = manifest.to_text();
        assert_eq!(f.state_hash, crate::resources::sha256_hex(text.as_bytes()));
        assert_eq!(f.manifest, manifest);
        let a = f.files[&spaced].clone().expect("the spaced file exists");
        assert_eq!(a.sha256, crate::resources::sha256_hex(b"hello\n"));
        assert_eq!(a.mode, 0o640);
        assert_eq!((a.owner, a.group), owner);
        assert!(f.files[&managed].is_some());
        assert_eq!(f.files[&format!("{d}/missing")], None);
        let keyed = |t: &str| crate::resources::sha256_hex(format!("k{t}").as_bytes());
        let s = f.files[&secret].clone().expect("the secret file exists");
        assert_eq!(s.sha256, digest(&secret_resource, "k"));
        assert_eq!(s.sha256, keyed("TOKEN=s3cret\n"));
        let o = f.files[&old_secret]
            .clone()
            .expect("the recorded secret file exists");
        assert_eq!(o.sha256, keyed("TOKEN=older\n"));
        assert_eq!(f.files.len(), 5);
        for g in [&f, &no_bus] {
            let units: Vec<&String> = g.units.keys().collect();
            assert_eq!(units, ["new.service", "old.service"]);
        }
        assert_eq!(f.unit("old.service").active, "failed");
        assert_eq!(no_bus.unit("old.service").active, "active");
    }
}
