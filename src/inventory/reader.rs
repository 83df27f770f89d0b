//! Typed reading of a JSON object that records every problem with its JSON path.
//!
//! serde stops at the first error; operators want all of them at once, with paths,
//! so the inventory is read from a `serde_json::Value` through this small helper.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::error::{Collector, suggest};

/// One JSON object being read; `known` lists the keys that are allowed in it.
pub struct Fields<'v> {
    path: String,
    map: &'v Map<String, Value>,
    known: &'static [&'static str],
}

impl<'v> Fields<'v> {
    /// Starts reading `value` at `path`; records an error and returns `None` if it is not an object.
    pub fn new(
        c: &mut Collector,
        path: &str,
        value: &'v Value,
        known: &'static [&'static str],
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
