//! Bearer tokens (looked up by their SHA-256, so the node never holds one in plain text)
//! and a token bucket per token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::config::TokenConfig;

/// Why a request is not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token nobody was given.
    Unknown,
}

/// The token of a request, from its `Authorization` header value.
pub fn identify<'a>(
    header: Option<&str>,
    tokens: &'a HashMap<String, TokenConfig>,
) -> Result<&'a TokenConfig, Denied> {
    let presented = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Denied::Missing)?;
    tokens.get(&digest(presented)).ok_or(Denied::Unknown)
}

/// Hex SHA-256 of a token.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One token bucket per token name, each holding one second's worth of requests.
#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    /// Takes one request from `name`'s bucket at `rate` per second; `Err(seconds)` to wait
    /// when it is empty. A rate of 0 never limits.
    pub fn take(&self, name: &str, rate: u32, now: Instant) -> Result<(), u64> {
        if rate == 0 {
            return Ok(());
        }
        let rate = f64::from(rate);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(name.to_string()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::serve::config::Access;

    #[test]
    fn a_token_is_found_by_its_digest_only() {
        let t = TokenConfig {
            name: "ci".into(),
            role: Access::Reader,
            sha256: digest("s3cret-token-for-tests-0001"),
            farm: None,
            rate_limit: None,
        };
        let tokens = HashMap::from([(t.sha256.clone(), t)]);
        let found = identify(Some("Bearer s3cret-token-for-tests-0001"), &tokens).unwrap();
        assert_eq!(found.name, "ci");
        assert_eq!(
            identify(Some("Bearer s3cret-token-for-tests-0002"), &tokens).unwrap_err(),
            Denied::Unknown
        );
        assert_eq!(identify(None, &tokens).unwrap_err(), Denied::Missing);
        assert_eq!(
            identify(Some("Basic abc"), &tokens).unwrap_err(),
            Denied::Missing
        );
    }

    #[test]
    fn the_bucket_lets_one_seconds_worth_through_then_refills() {
        let l = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.take("a", 5, t0).is_ok());
        }
        assert_eq!(l.take("a", 5, t0), Err(1));
        assert!(l.take("b", 5, t0).is_ok(), "buckets are per token");
        assert!(l.take("a", 5, t0 + Duration::from_millis(200)).is_ok());
        assert!(l.take("a", 0, t0).is_ok());
    }
}
