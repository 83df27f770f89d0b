//! The HTTP API: routing, roles, bodies, JSON errors, and one access-log line per request.
//!
//! | route | who |
//! |---|---|
//! | `GET /healthz`, `GET /metrics` | anyone |
//! | `GET /v1/web/nodes[?active=true]`, `GET /api/farms[?state=S]` | reader, admin |
//! | `GET /api/farms/{ip}` | reader, admin, that farm's token |
//! | `POST /api/farms/{ip}`, `POST /api/farms/{ip}/heartbeat` | admin, that farm's token |
//! | `DELETE /api/farms/{ip}` | admin |

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{self, Denied, Limiter};
use super::config::{Access, Config, TokenConfig};
use super::metrics::Metrics;
use super::store::{Farm, Registration, State, Store};

/// The config in effect, swapped whole on reload.
pub struct Live {
    pub cfg: Config,
    pub tokens: HashMap<String, TokenConfig>,
}

impl Live {
    /// Indexes `cfg`'s tokens.
    pub fn new(cfg: Config) -> Live {
        Live {
            tokens: cfg.tokens_by_digest(),
            cfg,
        }
    }
}

/// What every request shares.
pub struct Shared {
    live: RwLock<Arc<Live>>,
    pub store: Store,
    pub limiter: Limiter,
    pub metrics: Metrics,
    /// What `/healthz` and `/metrics` last read of the store, at most a second old: callers
    /// who need no token cost the store one small query a second, however many they are.
    health: std::sync::Mutex<Option<(Instant, Health)>>,
}

/// The store as `/healthz` and `/metrics` report it.
#[derive(Clone)]
struct Health {
    /// Why it does not take writes, if it does not.
    unwritable: Option<String>,
    /// Farms by state (online, stale, offline), if they could be counted.
    counts: Option<[u64; 3]>,
}

impl Shared {
    /// The server's state with `cfg` in effect.
    pub fn new(cfg: Config, store: Store) -> Shared {
        Shared {
            live: RwLock::new(Arc::new(Live::new(cfg))),
            store,
            limiter: Limiter::default(),
            metrics: Metrics::default(),
            health: std::sync::Mutex::new(None),
        }
    }

    /// The config in effect.
    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `cfg` in effect for the next requests.
    pub fn swap(&self, cfg: Config) {
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Live::new(cfg));
    }
}

type Reply = Response<Full<Bytes>>;

/// What a route produced, for the metrics and the access log.
struct Outcome {
    reply: Reply,
    route: &'static str,
    who: Option<String>,
}

impl Outcome {
    fn new(route: &'static str, reply: Reply) -> Outcome {
        Outcome {
            reply,
            route,
            who: None,
        }
    }
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Reply, Infallible> {
    let started = Instant::now();
    let live = shared.live();
    let line = format!("{} {}", req.method(), req.uri().path());
    let out =
        match tokio::time::timeout(live.cfg.request_timeout(), route(&shared, &live, peer, req))
            .await
        {
            Ok(out) => out,
            Err(_) => Outcome::new(
                "timeout",
                error(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "the request did not arrive in time",
                ),
            ),
        };
    let code = out.reply.status().as_u16();
    shared.metrics.count(out.route, code);
    if live.cfg.access_log {
        crate::relay_log!(
            "registry: {} \"{}\" {} token={} {:.1}ms",
            peer.ip(),
            line.escape_debug(),
            code,
            out.who.as_deref().unwrap_or("-"),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(out.reply)
}

/// What a route needs of the token.
#[derive(Clone, Copy)]
enum Need<'a> {
    /// Listing: reader or admin.
    Read,
    /// Reading one farm: reader, admin, or that farm.
    ReadFarm(&'a str),
    /// Changing one farm: admin, or that farm.
    WriteFarm(&'a str),
    Admin,
}

fn permits(t: &TokenConfig, need: Need) -> bool {
    let own = |ip: &str| t.farm.is_some_and(|f| f.to_string() == ip);
    match (t.role, need) {
        (Access::Admin, _) => true,
        (Access::Reader, Need::Read | Need::ReadFarm(_)) => true,
        (Access::Farm, Need::ReadFarm(ip) | Need::WriteFarm(ip)) => own(ip),
        _ => false,
    }
}

async fn route(shared: &Shared, live: &Live, peer: SocketAddr, req: Request<Incoming>) -> Outcome {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let (name, allowed): (&'static str, &[Method]) = match segments.as_slice() {
        ["healthz"] => ("healthz", &[Method::GET]),
        ["metrics"] => ("metrics", &[Method::GET]),
        ["v1", "web", "nodes"] => ("nodes", &[Method::GET]),
        ["api", "farms"] => ("farms", &[Method::GET]),
        ["api", "farms", _] => ("farm", &[Method::GET, Method::POST, Method::DELETE]),
        ["api", "farms", _, "heartbeat"] => ("heartbeat", &[Method::POST]),
        _ => {
            return Outcome::new(
                "unknown",
                error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no route {path}"),
                ),
            );
        }
    };
    if !allowed.contains(&method) {
        let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        let mut reply = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{path} takes {}", list.join(", ")),
        );
        if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
            reply.headers_mut().insert(header::ALLOW, v);
        }
        return Outcome::new(name, reply);
    }
    match name {
        "healthz" => return Outcome::new(name, health(shared)),
        "metrics" => return Outcome::new(name, metrics(shared)),
        _ => {}
    }
    let token = match auth::identify(
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        &live.tokens,
    ) {
        Ok(t) => t,
        Err(denied) => {
            // Requests without a valid token are limited per client address, so guessing
            // tokens is as slow as the global rate (at least 10 a second).
            let rate = live.cfg.rate_limit.max(10);
            let key = format!("address {}", peer.ip());
            if let Err(wait) = shared.limiter.take(&key, rate, Instant::now()) {
                shared.metrics.rate_limited();
                let mut reply = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    &format!(
                        "more than {rate} requests per second without a valid token from {}; retry in {wait} s",
                        peer.ip()
                    ),
                );
                if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                    reply.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return Outcome::new(name, reply);
            }
            let message = match denied {
                Denied::Missing => "send Authorization: Bearer TOKEN",
                Denied::Unknown => "this token is not known",
            };
            let mut reply = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
            reply
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Outcome::new(name, reply);
        }
    };
    let mut out = Outcome::new(name, Response::default());
    out.who = Some(token.name.clone());
    let rate = token.rate_limit.unwrap_or(live.cfg.rate_limit);
    if let Err(wait) = shared.limiter.take(&token.name, rate, Instant::now()) {
        shared.metrics.rate_limited();
        let mut reply = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            &format!("more than {rate} requests per second; retry in {wait} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            reply.headers_mut().insert(header::RETRY_AFTER, v);
        }
        out.reply = reply;
        return out;
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let farm_segment = matches!(name, "farm" | "heartbeat").then(|| segments[2]);
    let farm_ip = match farm_segment.map(|s| s.parse::<IpAddr>()) {
        Some(Ok(ip)) => Some(ip.to_string()),
        Some(Err(_)) => {
            out.reply = error(
                StatusCode::BAD_REQUEST,
                "bad_address",
                &format!(
                    "{:?} is not an IP address; expected a farm's Tailscale address like 100.64.0.7",
                    segments[2]
                ),
            );
            return out;
        }
        None => None,
    };
    let ip = farm_ip.as_deref().unwrap_or("");
    let need = match (name, &method) {
        ("nodes" | "farms", _) => Need::Read,
        ("farm", &Method::GET) => Need::ReadFarm(ip),
        ("farm", &Method::DELETE) => Need::Admin,
        _ => Need::WriteFarm(ip),
    };
    if !permits(token, need) {
        let why = match token.farm {
            Some(own) => format!(
                "token {:?} (farm) may only read, register and heartbeat {own}",
                token.name
            ),
            None => format!(
                "token {:?} has role {}, which may not do this",
                token.name,
                token.role.name()
            ),
        };
        out.reply = error(StatusCode::FORBIDDEN, "forbidden", &why);
        return out;
    }
    let max = live.cfg.max_body_bytes;
    let body = match read_body(req, max).await {
        Ok(b) => b,
        Err(reply) => {
            out.reply = reply;
            return out;
        }
    };
    let now = now_ms();
    out.reply = match (name, method) {
        ("nodes", _) => nodes(live, &query),
        ("farms", _) => farms(shared, &query, now),
        ("farm", Method::GET) => match shared.store.get(ip) {
            Ok(Some(f)) => json_reply(StatusCode::OK, farm_json(&f, now)),
            Ok(None) => not_registered(ip),
            Err(e) => internal(e),
        },
        ("farm", Method::DELETE) => match shared.store.delete(ip) {
            Ok(true) => json_reply(StatusCode::OK, json!({"deleted": ip})),
            Ok(false) => not_registered(ip),
            Err(e) => internal(e),
        },
        ("farm", _) => register(shared, live, ip, &body, now),
        _ => match shared.store.heartbeat(ip, now) {
            Ok(Some(f)) => json_reply(StatusCode::OK, farm_json(&f, now)),
            Ok(None) => not_registered(ip),
            Err(e) => internal(e),
        },
    };
    out
}

/// Reads the body, refusing more than `max` bytes (413).
async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, Reply> {
    let too_big = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("the body may be at most {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_big()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_body",
            &format!("cannot read the body: {e}"),
        )),
    }
}

/// The body of `POST /api/farms/{ip}`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    name: Option<String>,
    metadata: Option<serde_json::Map<String, Value>>,
    heartbeat_interval: Option<u64>,
}

fn register(shared: &Shared, live: &Live, ip: &str, body: &[u8], now: i64) -> Reply {
    let parsed: RegisterBody = if body.iter().all(u8::is_ascii_whitespace) {
        RegisterBody::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_json",
                    &format!(
                        "{e}; expected {{\"name\": \"…\", \"metadata\": {{…}}, \"heartbeat_interval\": 30}}, each optional"
                    ),
                );
            }
        }
    };
    if let Some(n) = &parsed.name
        && (n.chars().count() > 100 || n.chars().any(char::is_control))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_name",
            "name must be one line of at most 100 characters",
        );
    }
    if let Some(i) = parsed.heartbeat_interval
        && !(1..=86_400).contains(&i)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_interval",
            "heartbeat_interval must be 1 to 86400 seconds",
        );
    }
    let reg = Registration {
        name: parsed.name,
        metadata: parsed.metadata.map(Value::Object),
        heartbeat_interval: parsed.heartbeat_interval,
    };
    match shared
        .store
        .register(ip, reg, live.cfg.heartbeat_interval, now)
    {
        Ok((farm, created)) => {
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            json_reply(code, farm_json(&farm, now))
        }
        Err(e) => internal(e),
    }
}

fn nodes(live: &Live, query: &str) -> Reply {
    let active_only = match param(query, "active") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                &format!("active={other:?}: expected true or false"),
            );
        }
    };
    let list: Vec<_> = live
        .cfg
        .nodes
        .iter()
        .filter(|n| active_only.is_none_or(|a| n.active == a))
        .collect();
    json_reply(StatusCode::OK, json!({ "nodes": list }))
}

fn farms(shared: &Shared, query: &str, now: i64) -> Reply {
    let wanted = match param(query, "state") {
        None => None,
        Some(s) => match State::ALL.iter().find(|st| st.name() == s) {
            Some(st) => Some(*st),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    &format!("state={s:?}: expected online, stale or offline"),
                );
            }
        },
    };
    match shared.store.list() {
        Ok(list) => {
            let farms: Vec<Value> = list
                .iter()
                .filter(|f| wanted.is_none_or(|w| state_of(f, now) == w))
                .map(|f| farm_json(f, now))
                .collect();
            json_reply(StatusCode::OK, json!({ "farms": farms }))
        }
        Err(e) => internal(e),
    }
}

/// The store's health, read again when the last reading is a second old.
fn store_health(shared: &Shared) -> Health {
    let mut cached = shared.health.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, h)) = cached.as_ref()
        && at.elapsed() < Duration::from_secs(1)
    {
        return h.clone();
    }
    let unwritable = shared.store.writable().err().map(|e| {
        crate::relay_log!("registry: {e:#}");
        format!("{e:#}")
    });
    let counts = shared.store.state_counts(now_ms()).ok();
    let h = Health { unwritable, counts };
    *cached = Some((Instant::now(), h.clone()));
    h
}

/// Farms by state, as JSON.
fn counts_json(counts: [u64; 3]) -> serde_json::Map<String, Value> {
    State::ALL
        .iter()
        .zip(counts)
        .map(|(st, n)| (st.name().to_string(), json!(n)))
        .collect()
}

/// 200 with the farms by state when the store takes writes; 503 saying why when not.
fn health(shared: &Shared) -> Reply {
    let h = store_health(shared);
    match (&h.unwritable, h.counts) {
        (None, Some(c)) => json_reply(
            StatusCode::OK,
            json!({ "status": "ok", "store": "writable", "farms": counts_json(c) }),
        ),
        (why, _) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "failing", "store": why.as_deref().unwrap_or("cannot be read") }),
        ),
    }
}

fn metrics(shared: &Shared) -> Reply {
    let h = store_health(shared);
    let counts = h.counts.map(counts_json).unwrap_or_default();
    let text = shared.metrics.render(&counts, h.unwritable.is_none());
    let mut reply = Response::new(Full::new(Bytes::from(text)));
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    reply
}

fn state_of(f: &Farm, now: i64) -> State {
    State::of(now - f.last_seen_ms, f.heartbeat_interval)
}

fn farm_json(f: &Farm, now: i64) -> Value {
    json!({
        "ip": f.ip,
        "name": f.name,
        "metadata": f.metadata,
        "state": state_of(f, now),
        "heartbeat_interval": f.heartbeat_interval,
        "last_seen": f.last_seen_ms / 1000,
        "seconds_since_seen": (now - f.last_seen_ms).max(0) / 1000,
        "registered": f.registered_ms / 1000,
        "heartbeats": f.heartbeats,
    })
}

/// The value of `key` in a query string (no percent-decoding: the values are words).
fn param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn not_registered(ip: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "not_registered",
        &format!("no farm {ip}; register it with POST /api/farms/{ip}"),
    )
}

fn internal(e: anyhow::Error) -> Reply {
    crate::relay_log!("registry: database error: {e:#}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the database failed; see the service's log",
    )
}

fn json_reply(code: StatusCode, body: Value) -> Reply {
    let mut text = body.to_string();
    text.push('\n');
    let mut reply = Response::new(Full::new(Bytes::from(text)));
    *reply.status_mut() = code;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

/// A JSON error: `{"error": CODE, "message": TEXT}`.
fn error(code: StatusCode, short: &str, message: &str) -> Reply {
    json_reply(code, json!({ "error": short, "message": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(role: Access, farm: Option<&str>) -> TokenConfig {
        TokenConfig {
            name: "t".into(),
            role,
            sha256: String::new(),
            farm: farm.map(|f| f.parse().unwrap()),
            rate_limit: None,
        }
    }

    #[test]
    fn a_farm_token_may_touch_only_its_own_farm() {
        let farm = token(Access::Farm, Some("100.64.0.9"));
        assert!(permits(&farm, Need::WriteFarm("100.64.0.9")));
        assert!(permits(&farm, Need::ReadFarm("100.64.0.9")));
        assert!(!permits(&farm, Need::WriteFarm("100.64.0.10")));
        assert!(!permits(&farm, Need::Read));
        let reader = token(Access::Reader, None);
        assert!(permits(&reader, Need::Read));
        assert!(!permits(&reader, Need::WriteFarm("100.64.0.9")));
        assert!(!permits(&reader, Need::Admin));
        assert!(permits(&token(Access::Admin, None), Need::Admin));
    }
}
