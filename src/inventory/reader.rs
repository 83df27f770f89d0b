//! Typed reading of a JSON object that records every problem with its JSON path.
//!
//! serde stops at the first error; operators want all of them at once, with paths,
//! so the inventory is read from a `serde_json::Value` through this small helper. Roles
//! read their own sections with it.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::error::{Collector, suggest};
use super::values::{NodePath, is_image_reference};

/// One JSON object being read; `known` lists the keys that are allowed in it.
pub struct Fields<'v> {
    path: String,
    map: &'v Map<String, Value>,
    known: &'v [&'static str],
}

impl<'v> Fields<'v> {
    /// Starts reading `value` at `path`; records an error and returns `None` if it is not an object.
    pub fn new(
        c: &mut Collector,
        path: &str,
        value: &'v Value,
        known: &'v [&'static str],
    ) -> Option<Self> {
        match value {
            Value::Object(map) => {
                let f = Fields {
                    path: path.to_string(),
                    map,
                    known,
                };
                f.check_unknown(c);
                Some(f)
            }
            other => {
                c.push(path, format!("expected an object, found {}", kind(other)));
                None
            }
        }
    }

    /// JSON path of a key of this object.
    pub fn path_of(&self, key: &str) -> String {
        format!("{}.{}", self.path, key)
    }

    fn check_unknown(&self, c: &mut Collector) {
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                let hint = match suggest(key, self.known) {
                    Some(s) => format!("; did you mean \"{s}\"?"),
                    None => format!("; allowed keys: {}", self.known.join(", ")),
                };
                c.push(self.path_of(key), format!("unknown key \"{key}\"{hint}"));
            }
        }
    }

    /// The raw value of `key`, if present and not null.
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A required string.
    pub fn req_str(&self, c: &mut Collector, key: &str) -> Option<String> {
        match self.get(key) {
            None => {
                c.push(self.path_of(key), "required string is missing");
                None
            }
            Some(_) => self.opt_str(c, key),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, c: &mut Collector, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                c.push(
                    self.path_of(key),
                    format!("expected a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// An optional boolean, `default` when absent.
    pub fn bool_or(&self, c: &mut Collector, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                c.push(
                    self.path_of(key),
                    format!("expected true or false, found {}", kind(other)),
                );
                default
            }
        }
    }

    /// An optional number.
    pub fn opt_f64(&self, c: &mut Collector, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => n.as_f64(),
            other => {
                c.push(
                    self.path_of(key),
                    format!("expected a number, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// A required TCP port (1-65535).
    pub fn req_port(&self, c: &mut Collector, key: &str) -> Option<u16> {
        match self.get(key) {
            None => {
                c.push(self.path_of(key), "required port is missing (1-65535)");
                None
            }
            Some(v) => port_value(c, &self.path_of(key), v),
        }
    }

    /// An optional TCP port.
    pub fn opt_port(&self, c: &mut Collector, key: &str) -> Option<u16> {
        self.get(key)
            .and_then(|v| port_value(c, &self.path_of(key), v))
    }

    /// An optional whole number within `min..=max`.
    pub fn opt_uint(&self, c: &mut Collector, key: &str, min: u64, max: u64) -> Option<u64> {
        let v = self.get(key)?;
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                c.push(
                    self.path_of(key),
                    format!("expected a whole number from {min} to {max}, found {v}"),
                );
                None
            }
        }
    }

    /// An optional IP address (v4 or v6).
    pub fn opt_ip(&self, c: &mut Collector, key: &str) -> Option<IpAddr> {
        let s = self.opt_str(c, key)?;
        match s.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                c.push(
                    self.path_of(key),
                    format!(
                        "\"{s}\" is not an IP address; expected e.g. \"203.0.113.10\" or \"fd7a:115c::1\""
                    ),
                );
                None
            }
        }
    }

    /// An optional string that must pass `check`.
    pub fn checked_str(&self, c: &mut Collector, key: &str, check: &Check) -> Option<String> {
        let s = self.opt_str(c, key)?;
        if (check.ok)(&s) {
            Some(s)
        } else {
            c.push(self.path_of(key), format!("\"{s}\" {}", check.hint));
            None
        }
    }

    /// A required string that must pass `check`.
    pub fn req_checked_str(&self, c: &mut Collector, key: &str, check: &Check) -> Option<String> {
        self.req_str(c, key)?;
        self.checked_str(c, key, check)
    }

    /// An optional string parsed by `parse` into its type; a value it refuses is recorded
    /// with the rule it broke.
    pub fn parsed<T>(
        &self,
        c: &mut Collector,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let s = self.opt_str(c, key)?;
        match parse(&s) {
            Ok(v) => Some(v),
            Err(rule) => {
                c.push(self.path_of(key), format!("{} {rule}", shown(&s)));
                None
            }
        }
    }

    /// A required secret that must pass `rule` (which says what is wrong, or `None`). The
    /// value is never echoed: a message names the JSON path and the rule only.
    pub fn req_secret(
        &self,
        c: &mut Collector,
        key: &str,
        rule: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        if self.get(key).is_none() {
            c.push(self.path_of(key), "required secret is missing");
            return None;
        }
        self.opt_secret(c, key, rule)
    }

    /// An optional secret: a string, or a reference to where it is kept (see
    /// [`super::secret`]), read now; it must pass `rule`. Its value is never echoed.
    pub fn opt_secret(
        &self,
        c: &mut Collector,
        key: &str,
        rule: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let s = super::secret::value(c, &self.path_of(key), self.get(key)?)?;
        if c.skips_secret(&self.path_of(key)) && s.starts_with(super::secret::OFFLINE) {
            return Some(s);
        }
        match rule(&s) {
            None => Some(s),
            Some(why) => {
                c.push(self.path_of(key), format!("the secret (not shown) {why}"));
                None
            }
        }
    }

    /// An optional path on a node ([`NodePath`]).
    pub fn node_path(&self, c: &mut Collector, key: &str) -> Option<NodePath> {
        self.parsed(c, key, NodePath::parse)
    }

    /// An optional directory for data of vds-proxy's own: a [`NodePath`] that is not a
    /// system directory.
    pub fn data_dir(&self, c: &mut Collector, key: &str) -> Option<NodePath> {
        self.parsed(c, key, NodePath::data_dir)
    }

    /// A required container image reference, as Docker and Podman take it.
    pub fn req_image(&self, c: &mut Collector, key: &str) -> String {
        let image = self.req_str(c, key).unwrap_or_default();
        if self.get(key).is_some() && !is_image_reference(&image) {
            c.push(
                self.path_of(key),
                format!(
                    "{} is not an image reference; expected e.g. \"ghcr.io/example/tgweb:1.4\" or \"telegrammessenger/proxy:latest\"",
                    shown(&image)
                ),
            );
        }
        image
    }

    /// An optional array of strings, each parsed by `parse` into its type; each one it
    /// refuses is recorded with its index and the rule it broke.
    pub fn parsed_list<T>(
        &self,
        c: &mut Collector,
        key: &str,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let at = format!("{}[{i}]", self.path_of(key));
                    let Some(s) = v.as_str() else {
                        c.push(at, format!("expected a string, found {}", kind(v)));
                        return None;
                    };
                    parse(s)
                        .map_err(|rule| c.push(at, format!("{} {rule}", shown(s))))
                        .ok()
                })
                .collect(),
            Some(other) => {
                c.push(
                    self.path_of(key),
                    format!("expected an array of {what}, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    /// A required reference to a node by name (checked against the nodes in `validate`).
    pub fn req_ref(&self, c: &mut Collector, key: &str) -> Option<String> {
        let s = self.req_str(c, key)?;
        if s.is_empty() {
            c.push(self.path_of(key), "is empty; name a node of \"nodes\"");
            return None;
        }
        Some(s)
    }

    /// An optional description for a unit or config comment: one printable line without
    /// backslashes, at most [`DESCRIPTION_MAX`] characters.
    pub fn description(&self, c: &mut Collector, key: &str) -> Option<String> {
        let s = self.opt_str(c, key)?;
        if is_one_line(&s) && !s.contains('\\') && s.chars().count() <= DESCRIPTION_MAX {
            Some(s)
        } else {
            c.push(
                self.path_of(key),
                format!("expected one line of at most {DESCRIPTION_MAX} characters, without control characters or backslashes"),
            );
            None
        }
    }

    /// An optional one-line string (no control characters).
    pub fn one_line(&self, c: &mut Collector, key: &str) -> Option<String> {
        let s = self.opt_str(c, key)?;
        if is_one_line(&s) {
            Some(s)
        } else {
            c.push(
                self.path_of(key),
                "must be a single line without control characters",
            );
            None
        }
    }

    /// One of the named `options`; `default` when absent (or after an error).
    pub fn choice<T: Copy + PartialEq>(
        &self,
        c: &mut Collector,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        let default_name = options.iter().find(|(_, v)| *v == default).map(|(n, _)| *n);
        match self.opt_str(c, key) {
            None => default,
            Some(s) => match options.iter().find(|(name, _)| *name == s) {
                Some((_, v)) => *v,
                None => {
                    c.push(
                        self.path_of(key),
                        format!(
                            "unknown {key} \"{s}\"; expected {}",
                            choices(options, default_name)
                        ),
                    );
                    default
                }
            },
        }
    }

    /// An optional array of strings, each turned into a `T` by `item` (or reported with
    /// `hint`, "expected ..."); `what` names the items when the value is not an array.
    pub fn list<T>(
        &self,
        c: &mut Collector,
        key: &str,
        what: &str,
        hint: &str,
        item: impl Fn(&str) -> Option<T>,
    ) -> Vec<T> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v.as_str().and_then(&item) {
                    Some(t) => Some(t),
                    None => {
                        c.push(format!("{}[{i}]", self.path_of(key)), hint);
                        None
                    }
                })
                .collect(),
            Some(other) => {
                c.push(
                    self.path_of(key),
                    format!("expected an array of {what}, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    /// An optional array of objects, each read by `item` (with its JSON path); the ones it
    /// could not read are left out (their problems are recorded).
    pub fn objects<T>(
        &self,
        c: &mut Collector,
        key: &str,
        item: impl Fn(&mut Collector, &str, &'v Value) -> Option<T>,
    ) -> Vec<T> {
        self.opt_array(c, key)
            .into_iter()
            .filter_map(|(path, v)| item(c, &path, v))
            .collect()
    }

    /// An optional array; each element is handed to `each` with its path.
    pub fn opt_array(&self, c: &mut Collector, key: &str) -> Vec<(String, &'v Value)> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{}[{}]", self.path_of(key), i), v))
                .collect(),
            Some(other) => {
                c.push(
                    self.path_of(key),
                    format!("expected an array, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }
}

/// The longest description accepted (it goes into a unit's `Description=` line).
pub const DESCRIPTION_MAX: usize = 200;

/// Checked strings: a predicate and, for a value that fails it, what would be valid.
pub struct Check {
    pub ok: fn(&str) -> bool,
    /// Completes "\"VALUE\" ..." in the message, e.g. "is not a valid host name; ...".
    pub hint: &'static str,
}

/// `[a-z0-9][a-z0-9-]*`, at most 63: names that end up in unit and file names.
pub const SAFE_NAME: Check = Check {
    ok: is_safe_name,
    hint: "is not a safe name; use lowercase letters, digits and '-', starting with a letter or digit (at most 63 characters), e.g. \"vds-1\"",
};
/// A DNS name.
pub const HOSTNAME: Check = Check {
    ok: is_hostname,
    hint: "is not a valid host name; expected e.g. \"tg.example.com\"",
};

/// A name that ends up in unit file names and remote commands: `[a-z0-9][a-z0-9-]*`.
pub fn is_safe_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A DNS name or address usable as an SSH destination or a domain.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

/// `host:port` where host is a DNS name or an IPv4 address, or `[IPv6]:port` (a WireGuard
/// endpoint, an upstream).
pub fn is_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = decimal::<u16>(port).is_some_and(|p| p > 0);
    let host_ok = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.contains([':', '[', ']']) && is_hostname(host),
    };
    port_ok && host_ok
}

/// A whole number written in decimal digits only (Rust's `parse` also takes `+80`).
pub fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Free text that goes into a config line: one line, printable.
pub fn is_one_line(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// `ADDRESS/PREFIX` with a prefix that fits the address family.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let prefix: u8 = decimal(p)?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix))
}

/// The name `value` has among `options` (the table [`Fields::choice`] reads it with).
pub fn name_of<T: PartialEq>(options: &[(&'static str, T)], value: T) -> &'static str {
    options
        .iter()
        .find(|(_, v)| *v == value)
        .map(|(n, _)| *n)
        .expect("every value has a name in its table")
}

/// "\"a\", \"b\" or \"c\"", the default marked, for "expected ..." messages.
fn choices<T>(options: &[(&str, T)], default: Option<&str>) -> String {
    let words: Vec<String> = options
        .iter()
        .map(|(name, _)| match default {
            Some(d) if d == *name => format!("\"{name}\" (default)"),
            _ => format!("\"{name}\""),
        })
        .collect();
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => words.join(""),
    }
}

/// Reads a port number from a JSON value, recording an error if it is not within 1-65535.
pub fn port_value(c: &mut Collector, path: &str, v: &Value) -> Option<u16> {
    match v.as_u64() {
        Some(n) if (1..=65535).contains(&n) => Some(n as u16),
        _ => {
            c.push(
                path,
                format!("port {v} is out of range; expected a whole number from 1 to 65535"),
            );
            None
        }
    }
}

/// A value as a message shows it: quoted as JSON (so a newline or a quote shows as an
/// escape, not as a broken line), cut at 80 characters.
pub fn shown(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{}{more}", serde_json::Value::String(cut))
}

/// A short description of a JSON value's type, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
