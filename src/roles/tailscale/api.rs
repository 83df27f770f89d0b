//! Tailscale's API (v2), for the tailnet policy: read it with its ETag, validate a new one,
//! push it with `If-Match` so a change made in the admin console meanwhile is not
//! overwritten. Requests go through `curl` (no TLS stack in vds-proxy); the API key reaches
//! curl on its standard input, never on a command line, and is never printed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// Where the API is, unless `TS_API_URL` says otherwise (a stand-in, a proxy).
pub const DEFAULT_URL: &str = "https://api.tailscale.com";

/// A client for one tailnet.
pub struct Api {
    base: String,
    key: String,
    tailnet: String,
}

/// An answer: status, ETag, body.
struct Reply {
    status: u16,
    etag: Option<String>,
    body: String,
}

/// A request body and its content type.
struct Body<'a> {
    content_type: &'a str,
    text: &'a str,
}

impl Api {
    /// The client for `tailnet` when `TS_API_KEY` is set; `TS_API_URL` overrides the
    /// address. A key that could break curl's config syntax is refused.
    pub fn from_env(tailnet: &str) -> Result<Option<Api>> {
        let Ok(key) = std::env::var("TS_API_KEY") else {
            return Ok(None);
        };
        if key.is_empty() {
            return Ok(None);
        }
        if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!(
                "TS_API_KEY is not an API access token (expected letters, digits, - and _, like tskey-api-…)"
            );
        }
        let base = std::env::var("TS_API_URL").unwrap_or_else(|_| DEFAULT_URL.into());
        if !(base.starts_with("https://") || base.starts_with("http://"))
            || base.contains(char::is_whitespace)
            || base.contains('"')
        {
            bail!("TS_API_URL {base:?} is not an http(s) URL");
        }
        Ok(Some(Api {
            base: base.trim_end_matches('/').to_string(),
            key,
            tailnet: tailnet.to_string(),
        }))
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/api/v2/tailnet/{}/{tail}", self.base, self.tailnet)
    }

    /// The live policy file (HuJSON, as last saved) and its ETag.
    pub fn policy(&self) -> Result<(String, String)> {
        let r = self.call("GET", &self.url("acl"), "application/hujson", None, None)?;
        if r.status != 200 {
            return Err(failure("reading the tailnet policy", &self.tailnet, &r));
        }
        let etag = r.etag.ok_or_else(|| {
            anyhow!("Tailscale's API sent the policy without an ETag; cannot push safely")
        })?;
        Ok((r.body, etag))
    }

    /// Asks Tailscale to check `policy` (syntax, tags, tests) without saving it.
    pub fn validate(&self, policy: &str) -> Result<()> {
        let body = Body {
            content_type: "application/hujson",
            text: policy,
        };
        let r = self.call(
            "POST",
            &self.url("acl/validate"),
            "application/json",
            Some(body),
            None,
        )?;
        // A 200 carries a message when the policy is invalid.
        let message = message_of(&r.body);
        if !message.is_empty() {
            bail!("Tailscale rejected the tailnet policy: {message}; nothing was pushed");
        }
        if r.status != 200 {
            return Err(failure("validating the policy", &self.tailnet, &r));
        }
        Ok(())
    }

    /// Saves `policy` if the live one still has `etag`.
    pub fn push(&self, policy: &str, etag: &str) -> Result<()> {
        let body = Body {
            content_type: "application/hujson",
            text: policy,
        };
        let r = self.call(
            "POST",
            &self.url("acl"),
            "application/hujson",
            Some(body),
            Some(etag),
        )?;
        if r.status != 200 {
            return Err(failure("pushing the policy", &self.tailnet, &r));
        }
        Ok(())
    }

    /// A single-use, pre-authorized auth key that logs a device in with `tags`, valid for
    /// an hour.
    pub fn auth_key(&self, tags: &[String], node: &str) -> Result<String> {
        let description: String = format!("vds-proxy {node}").chars().take(50).collect();
        let request = serde_json::json!({
            "capabilities": {"devices": {"create": {
                "reusable": false, "ephemeral": false, "preauthorized": true, "tags": tags
            }}},
            "expirySeconds": 3600,
            "description": description,
        })
        .to_string();
        let body = Body {
            content_type: "application/json",
            text: &request,
        };
        let r = self.call(
            "POST",
            &self.url("keys"),
            "application/json",
            Some(body),
            None,
        )?;
        if r.status != 200 {
            return Err(failure("making an auth key", &self.tailnet, &r));
        }
        let v: serde_json::Value = serde_json::from_str(&r.body)
            .context("Tailscale's API answered the key request with something that is not JSON")?;
        match v["key"].as_str() {
            Some(k) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok(k.to_string()),
            _ => bail!("Tailscale's API answered the key request without a key"),
        }
    }

    fn call(
        &self,
        method: &str,
        url: &str,
        accept: &str,
        body: Option<Body>,
        if_match: Option<&str>,
    ) -> Result<Reply> {
        let dir = Scratch::new()?;
        let mut config = format!(
            "header = \"Authorization: Bearer {}\"\nheader = \"Accept: {accept}\"\nheader = \"Expect:\"\n",
            self.key
        );
        if let Some(etag) = if_match {
            // An ETag is a quoted string; curl's config escapes quotes with a backslash.
            let escaped = etag.replace('\\', "\\\\").replace('"', "\\\"");
            if escaped.contains(['\n', '\r']) {
                bail!("Tailscale's API sent an ETag over several lines");
            }
            config += &format!("header = \"If-Match: {escaped}\"\n");
        }
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-X", method, "-K", "-", "-D"])
            .arg(dir.path.join("headers"))
            .arg("-o")
            .arg(dir.path.join("body"))
            .args(["-w", "%{http_code}"]);
        if let Some(b) = &body {
            std::fs::write(dir.path.join("request"), b.text)?;
            config += &format!("header = \"Content-Type: {}\"\n", b.content_type);
            cmd.arg("--data-binary")
                .arg(format!("@{}", dir.path.join("request").display()));
        }
        cmd.arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .context("cannot run curl, which talks to Tailscale's API: apt-get install curl")?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(config.as_bytes())?;
        let out = child.wait_with_output()?;
        let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            bail!(
                "cannot reach Tailscale's API at {}: {}",
                self.base,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let headers = std::fs::read_to_string(dir.path.join("headers")).unwrap_or_default();
        Ok(Reply {
            status: code.parse().unwrap_or(0),
            etag: etag_of(&headers),
            body: std::fs::read_to_string(dir.path.join("body")).unwrap_or_default(),
        })
    }
}

/// The ETag of the last response in a header dump.
fn etag_of(headers: &str) -> Option<String> {
    let last = headers
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()?;
    last.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("etag")
            .then(|| value.trim().to_string())
    })
}

/// The `message` of a JSON error body, with the details in `data` when there are some.
fn message_of(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return String::new();
    };
    let mut m = v["message"].as_str().unwrap_or("").to_string();
    if let Some(data) = v.get("data").filter(|d| !d.is_null()) {
        m += &format!(" ({data})");
    }
    m
}

/// What an unexpected status means, and what to do.
fn failure(doing: &str, tailnet: &str, r: &Reply) -> anyhow::Error {
    let m = message_of(&r.body);
    let said = if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    };
    match r.status {
        401 => anyhow!(
            "{doing}: Tailscale refused the API key (401){said}; check TS_API_KEY (an API access token, tskey-api-…)"
        ),
        403 => anyhow!("{doing}: the API key may not do this (403){said}"),
        404 => anyhow!(
            "{doing}: no tailnet {tailnet:?} for this key (404){said}; check \"tailnet\".\"name\" (\"-\" is the key's own)"
        ),
        412 => anyhow!(
            "{doing}: the tailnet policy changed since it was read (an edit in the admin console?); nothing was pushed — run deploy again to see the new diff"
        ),
        429 => anyhow!("{doing}: Tailscale's API is rate limiting (429); try again in a minute"),
        400 => anyhow!("{doing}: Tailscale rejected the tailnet policy (400){said}"),
        s => anyhow!("{doing}: Tailscale's API answered {s}{said}"),
    }
}

/// A private scratch directory for one request, deleted afterwards.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "vds-proxy-ts-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(&self.path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_is_read_from_the_last_response() {
        let dump = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/hujson\r\nETag: \"e-2\"\r\n\r\n";
        assert_eq!(etag_of(dump).as_deref(), Some("\"e-2\""));
        assert_eq!(etag_of("HTTP/1.1 200 OK\r\n\r\n"), None);
    }

    #[test]
    fn a_412_says_the_policy_changed_meanwhile() {
        let r = Reply {
            status: 412,
            etag: None,
            body: "{\"message\": \"precondition failed\"}".into(),
        };
        let e = failure("pushing the policy", "-", &r).to_string();
        assert!(e.contains("changed since it was read"), "{e}");
        let r = Reply {
            status: 200,
            etag: None,
            body: "{\"message\": \"tag:x not found\", \"data\": [\"a\"]}".into(),
        };
        assert_eq!(message_of(&r.body), "tag:x not found ([\"a\"])");
    }
}
