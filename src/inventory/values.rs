//! The checked value types every system reads through: a string from the inventory is
//! parsed once, here, into its type, or refused with the rule it broke (never silently
//! rewritten). A template then escapes it for the format of the file it lands in
//! (`crate::templates`), so a value a check missed still cannot add a directive.

use std::fmt;

use serde::Serialize;

/// An absolute path on a node, already in normal form: it starts with `/`, has no `.` or
/// `..` segment, no empty segment (`//`), no trailing `/`, and only letters, digits and
/// `. _ - + @ /`. What it is refused for is said by [`NodePath::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NodePath(String);

/// The longest node path accepted.
pub const NODE_PATH_MAX: usize = 1024;

impl NodePath {
    /// Parses `s`, or says which rule it broke (completing "\"VALUE\" ...").
    pub fn parse(s: &str) -> Result<NodePath, String> {
        if s.is_empty() {
            return Err("is empty; expected an absolute path, e.g. \"/etc/ssl/app.pem\"".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "contains {}; a path on a node has no spaces or control characters",
                describe(c)
            ));
        }
        if !s.starts_with('/') {
            return Err("is not absolute; a path on a node starts with /".into());
        }
        if s.len() > NODE_PATH_MAX {
            return Err(format!("is longer than {NODE_PATH_MAX} bytes"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-+@/".contains(*c)))
        {
            return Err(format!(
                "contains {}; a path on a node has only letters, digits and . _ - + @ /",
                describe(c)
            ));
        }
        if s.contains("//") {
            return Err("has an empty segment (//); write each / once".into());
        }
        if s != "/" && s.ends_with('/') {
            return Err("ends with /; write it without the trailing /".into());
        }
        if s.split('/').any(|seg| seg == "." || seg == "..") {
            return Err("has a \".\" or \"..\" segment; write the directory it stands for".into());
        }
        Ok(NodePath(s.to_string()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a system directory (`/`, `/etc`, `/var/lib`, `/usr/local` …) that
    /// vds-proxy must never take for data of its own: a volume, a dump or copy directory,
    /// a hostPath.
    pub fn is_system_dir(&self) -> bool {
        SYSTEM_DIRS.contains(&self.0.as_str())
    }

    /// Parses `s` as a directory for data of vds-proxy's own (dumps, copies, volumes),
    /// refusing system directories.
    pub fn data_dir(s: &str) -> Result<NodePath, String> {
        let p = NodePath::parse(s)?;
        if p.is_system_dir() {
            return Err(
                "is a system directory; vds-proxy keeps data only in a directory of its own, e.g. \"/var/backups/postgresql\" or \"/srv/app/data\"".into(),
            );
        }
        Ok(p)
    }
}

/// Places a container may never see, even read-only: they give it control of the node
/// (the container engine's socket under `/run`, devices, the kernel's interfaces, vds-proxy's
/// own files and keys).
const NEVER_BOUND: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/run",
    "/var/run",
    "/root",
    "/etc/ssh",
    "/etc/systemd",
    "/etc/sudoers.d",
    "/etc/vds-proxy",
    "/var/lib/docker",
    "/var/lib/containers",
    "/var/lib/vds-proxy",
];
/// Places a container may see only read-only (`/etc/localtime`, CA certificates).
const READ_ONLY_BOUND: &[&str] = &[
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

fn is_under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

impl NodePath {
    /// Parses `s` as a directory or file of the node bound into a container: never a
    /// system directory itself, nothing under `/run`, `/proc`, `/dev`, the engines' own
    /// data or vds-proxy's files, and only read-only below `/etc` or `/usr`.
    pub fn container_bind(s: &str, read_only: bool) -> Result<NodePath, String> {
        let p = NodePath::data_dir(s)?;
        if let Some(d) = NEVER_BOUND.iter().find(|d| is_under(p.as_str(), d)) {
            return Err(format!(
                "is in {d}, which would give the container control of the node; bind a directory of the app's own, e.g. \"/srv/shop/data\""
            ));
        }
        if !read_only && let Some(d) = READ_ONLY_BOUND.iter().find(|d| is_under(p.as_str(), d)) {
            return Err(format!(
                "is in {d}, which a container may only read; add \":ro\" or bind a directory of the app's own"
            ));
        }
        Ok(p)
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str(&self.0)
    }
}

impl AsRef<str> for NodePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Directories of the system: never a place for data, never created, chowned or chmodded
/// by vds-proxy.
pub const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/etc",
    "/usr/local/lib",
    "/usr/local/sbin",
    "/usr/local/share",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/spool",
    "/var/tmp",
    "/var/www",
    "/etc/default",
    "/etc/nginx",
    "/etc/ssh",
    "/etc/ssl",
    "/etc/systemd",
    "/etc/systemd/system",
    "/lib/systemd",
    "/lib/systemd/system",
    "/usr/lib/systemd",
    "/usr/lib/systemd/system",
    "/run/systemd",
    "/var/lib/docker",
    "/var/lib/containers",
    "/var/lib/postgresql",
    "/var/lib/vds-proxy",
    "/etc/vds-proxy",
];

/// A domain name: RFC 1123 labels (letters, digits, `-` inside), at least two of them, at
/// most 253 characters, and a top-level label that is not all digits (so never an
/// address). Stored in lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    /// Parses `s`, or says which rule it broke.
    pub fn parse(s: &str) -> Result<DomainName, String> {
        if s.is_empty() {
            return Err("is empty; expected a domain name, e.g. \"app.example.com\"".into());
        }
        if s.len() > 253 {
            return Err("is longer than 253 characters".into());
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
        {
            return Err(format!(
                "contains {}; a domain name has only letters, digits, - and .",
                describe(c)
            ));
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return Err("has one label; expected a full name, e.g. \"app.example.com\"".into());
        }
        for l in &labels {
            if l.is_empty() {
                return Err("has an empty label (.. or a leading or trailing .)".into());
            }
            if l.len() > 63 {
                return Err(format!("has a label of more than 63 characters (\"{l}\")"));
            }
            if l.starts_with('-') || l.ends_with('-') {
                return Err(format!("has a label that starts or ends with - (\"{l}\")"));
            }
        }
        if labels
            .last()
            .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("ends in a numeric label; an address is not a domain name".into());
        }
        Ok(DomainName(s.to_ascii_lowercase()))
    }

    /// The name, in lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str(&self.0)
    }
}

/// An e-mail address: `local@domain`, the local part of letters, digits and `. _ % + -`
/// (no leading, trailing or double dot), the domain a [`DomainName`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses `s`, or says which rule it broke.
    pub fn parse(s: &str) -> Result<Email, String> {
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("has no @; expected an address, e.g. \"ops@example.com\"".into());
        };
        if local.is_empty() || local.len() > 64 {
            return Err("has an empty or over-long part before the @ (1-64 characters)".into());
        }
        if let Some(c) = local
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._%+-".contains(*c)))
        {
            return Err(format!(
                "contains {} before the @; only letters, digits and . _ % + - may stand there",
                describe(c)
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err("has a leading, trailing or double . before the @".into());
        }
        let domain = DomainName::parse(domain).map_err(|e| format!("after the @ {e}"))?;
        Ok(Email(format!("{local}@{domain}")))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        out.write_str(&self.0)
    }
}

/// An image reference as Docker and Podman take it:
/// `[registry[:port]/]name[/name...][:tag][@sha256:hex]`.
pub fn is_image_reference(s: &str) -> bool {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    let digest_ok = digest.is_none_or(|d| {
        d.strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    });
    let mut parts: Vec<&str> = path.split('/').collect();
    let registry_ok = match parts.first() {
        Some(first) if parts.len() > 1 && (first.contains(['.', ':']) || *first == "localhost") => {
            let host = parts.remove(0);
            let (h, port) = host.split_once(':').unwrap_or((host, "1"));
            super::is_hostname(h) && super::decimal::<u16>(port).is_some_and(|p| p > 0)
        }
        _ => true,
    };
    let component = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
    };
    s.len() <= 255
        && digest_ok
        && tag_ok
        && registry_ok
        && !parts.is_empty()
        && parts.iter().all(|p| component(p))
}

/// A character as a message names it: printable ones quoted, others by code point.
fn describe(c: char) -> String {
    if c == ' ' {
        "a space".into()
    } else if c.is_control() || c.is_whitespace() {
        format!("the control character U+{:04X}", c as u32)
    } else {
        format!("the character '{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_binds_only_directories_of_its_own_and_reads_the_system() {
        for (ok, ro) in [
            ("/srv/shop/data", false),
            ("/var/lib/shop", false),
            ("/etc/localtime", true),
            ("/etc/ssl/certs", true),
            ("/opt/shop", false),
        ] {
            assert!(NodePath::container_bind(ok, ro).is_ok(), "{ok}");
        }
        for (bad, ro, why) in [
            ("/var/run/docker.sock", true, "control of the node"),
            ("/run/podman/podman.sock", true, "control of the node"),
            ("/proc/1", true, "control of the node"),
            ("/dev/sda", false, "control of the node"),
            ("/root", true, "system directory"),
            ("/root/.ssh", true, "control of the node"),
            ("/var/lib/docker/volumes", true, "control of the node"),
            ("/etc/vds-proxy/apps", true, "control of the node"),
            ("/etc/passwd", false, "may only read"),
            ("/usr/local/bin/x", false, "may only read"),
            ("/etc", true, "system directory"),
            ("/var/lib", false, "system directory"),
            ("/", true, "system directory"),
        ] {
            let e = NodePath::container_bind(bad, ro).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn node_paths_are_absolute_normal_and_plain() {
        for ok in [
            "/",
            "/etc/ssl/app.pem",
            "/var/backups/postgresql",
            "/srv/a+b@c_d-e.f",
        ] {
            assert_eq!(NodePath::parse(ok).unwrap().as_str(), ok);
        }
        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            ("etc/x", "is not absolute"),
            (
                "/etc/ssl/a.key; location /leak/ { alias /; }",
                "contains a space",
            ),
            ("/etc/ssl/a.key;", "contains the character ';'"),
            ("/x\ny", "contains the control character U+000A"),
            ("/x\0y", "contains the control character U+0000"),
            ("/var/..", "has a \".\" or \"..\" segment"),
            ("/.", "has a \".\" or \"..\" segment"),
            ("/var/./lib", "has a \".\" or \"..\" segment"),
            ("//etc", "has an empty segment (//)"),
            ("/var/lib/", "ends with /"),
            ("/a\"b", "contains the character '\"'"),
            ("/a%b", "contains the character '%'"),
            ("/a$b", "contains the character '$'"),
        ];
        for (bad, rule) in cases {
            let e = NodePath::parse(bad).unwrap_err();
            assert!(e.starts_with(rule), "{bad:?}: {e}");
        }
    }

    #[test]
    fn system_directories_are_never_data_directories() {
        for sys in [
            "/", "/etc", "/var", "/var/lib", "/usr", "/home", "/root", "/boot", "/run",
        ] {
            let e = NodePath::data_dir(sys).unwrap_err();
            assert!(e.starts_with("is a system directory"), "{sys}: {e}");
        }
        // Other spellings of them are not normal paths at all.
        for other in ["/var/..", "//etc", "/.", "/var/lib/", "/usr/./"] {
            assert!(NodePath::data_dir(other).is_err(), "{other}");
        }
        assert!(NodePath::data_dir("/var/backups/postgresql").is_ok());
        assert!(NodePath::data_dir("/srv/shop/data").is_ok());
    }

    #[test]
    fn domain_names_follow_rfc_1123() {
        assert_eq!(
            DomainName::parse("App.Example.COM").unwrap().as_str(),
            "app.example.com"
        );
        assert!(DomainName::parse("xn--80ak6aa92e.com").is_ok());
        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            ("localhost", "has one label"),
            ("a-.example.com", "has a label that starts or ends with -"),
            ("example.com-", "has a label that starts or ends with -"),
            ("-a.example.com", "has a label that starts or ends with -"),
            ("a..com", "has an empty label"),
            ("example.com.", "has an empty label"),
            ("10.0.0.1", "ends in a numeric label"),
            ("a_b.example.com", "contains the character '_'"),
            ("*.example.com", "contains the character '*'"),
            ("a b.com", "contains a space"),
        ];
        for (bad, rule) in cases {
            let e = DomainName::parse(bad).unwrap_err();
            assert!(e.starts_with(rule), "{bad:?}: {e}");
        }
    }

    #[test]
    fn email_addresses_have_a_plain_local_part_and_a_domain() {
        assert!(Email::parse("ops+tls@example.com").is_ok());
        let cases: &[(&str, &str)] = &[
            ("ops.example.com", "has no @"),
            ("a@b:*", "after the @ contains the character ':'"),
            ("x@y,tag:farm", "after the @ contains the character ','"),
            ("a b@example.com", "contains a space before the @"),
            (
                "a\"b@example.com",
                "contains the character '\"' before the @",
            ),
            (".a@example.com", "has a leading, trailing or double ."),
            ("@example.com", "has an empty or over-long part"),
            ("a@localhost", "after the @ has one label"),
        ];
        for (bad, rule) in cases {
            let e = Email::parse(bad).unwrap_err();
            assert!(e.starts_with(rule), "{bad:?}: {e}");
        }
    }
}
