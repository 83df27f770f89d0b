//! The registry's config file (TOML), rendered by vds-proxy from `src/roles/registry/templates/registry.toml.j2`:
//! where to listen, the database, limits, the tokens (as SHA-256 digests, never in plain
//! text) and the inventory's nodes it serves.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The whole config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    /// The SQLite database of the farms.
    pub database: PathBuf,
    /// Seconds between a farm's heartbeats unless it registered with its own interval.
    #[serde(default = "defaults::heartbeat_interval")]
    pub heartbeat_interval: u64,
    /// Requests per second per token (the bucket holds one second's worth); 0 = no limit.
    #[serde(default = "defaults::rate_limit")]
    pub rate_limit: u32,
    /// Largest request body accepted.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// A request (headers and body) must arrive within this.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// One log line per request.
    #[serde(default = "defaults::access_log")]
    pub access_log: bool,
    /// How long SIGTERM waits for requests in progress.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenConfig>,
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeEntry>,
}

mod defaults {
    pub fn heartbeat_interval() -> u64 {
        30
    }
    pub fn rate_limit() -> u32 {
        50
    }
    pub fn max_body_bytes() -> usize {
        64 * 1024
    }
    pub fn request_timeout_ms() -> u64 {
        10_000
    }
    pub fn access_log() -> bool {
        true
    }
    pub fn drain_timeout_ms() -> u64 {
        10_000
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// List nodes and farms.
    Reader,
    /// Register and heartbeat its own farm (`farm` address) and read it.
    Farm,
    /// Everything, including other farms' records.
    Admin,
}

impl Access {
    /// Its name in the inventory and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Access::Reader => "reader",
            Access::Farm => "farm",
            Access::Admin => "admin",
        }
    }
}

/// One bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it: shown in the access log instead of the token.
    pub name: String,
    pub role: Access,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// The farm address a `farm` token may register and heartbeat.
    #[serde(default)]
    pub farm: Option<IpAddr>,
    /// This token's requests per second, instead of the global `rate_limit`.
    #[serde(default)]
    pub rate_limit: Option<u32>,
}

/// A node of the inventory, as `GET /v1/web/nodes` serves it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub name: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub tailscale_ip: Option<IpAddr>,
    #[serde(default)]
    pub ports: BTreeMap<String, Vec<u16>>,
    pub active: bool,
}

impl Config {
    /// A request's time limit.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    /// The tokens by digest.
    pub fn tokens_by_digest(&self) -> HashMap<String, TokenConfig> {
        self.tokens
            .iter()
            .map(|t| (t.sha256.to_ascii_lowercase(), t.clone()))
            .collect()
    }
}

/// Reads and checks the config at `path`.
pub fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read registry config {}", path.display()))?;
    parse(&text).with_context(|| format!("registry config {}", path.display()))
}

/// Parses and checks a config text.
pub fn parse(text: &str) -> Result<Config> {
    let cfg: Config = toml::from_str(text)?;
    let mut names = BTreeSet::new();
    let mut digests = BTreeSet::new();
    for t in &cfg.tokens {
        if !names.insert(t.name.as_str()) {
            bail!("token {:?} is listed twice", t.name);
        }
        let hex = t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            bail!(
                "token {:?}: sha256 must be 64 hex digits (the SHA-256 of the token)",
                t.name
            );
        }
        if !digests.insert(t.sha256.to_ascii_lowercase()) {
            bail!("token {:?} has the same digest as another token", t.name);
        }
        match (t.role, t.farm) {
            (Access::Farm, None) => bail!("token {:?}: a farm token needs `farm`", t.name),
            (Access::Reader | Access::Admin, Some(_)) => {
                bail!("token {:?}: only farm tokens have `farm`", t.name)
            }
            _ => {}
        }
    }
    if cfg.heartbeat_interval == 0 {
        bail!("heartbeat_interval must be at least 1 second");
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_farm_token_needs_its_address_and_digests_must_be_hex() {
        let base = "listen = \"127.0.0.1:8080\"\ndatabase = \"/tmp/x.db\"\n";
        let farm =
            format!("{base}[[token]]\nname = \"f\"\nrole = \"farm\"\nsha256 = \"{DIGEST}\"\n");
        assert!(format!("{:#}", parse(&farm).unwrap_err()).contains("needs `farm`"));
        let short = format!("{base}[[token]]\nname = \"r\"\nrole = \"reader\"\nsha256 = \"abc\"\n");
        assert!(format!("{:#}", parse(&short).unwrap_err()).contains("64 hex digits"));
        let good = format!(
            "{base}[[token]]\nname = \"f\"\nrole = \"farm\"\nfarm = \"100.64.0.9\"\nsha256 = \"{DIGEST}\"\n"
        );
        let cfg = parse(&good).unwrap();
        assert_eq!(cfg.tokens_by_digest()[DIGEST].name, "f");
        assert_eq!(cfg.heartbeat_interval, 30);
    }
}
