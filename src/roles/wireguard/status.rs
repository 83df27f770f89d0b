//! WireGuard peer health for `status`: latest handshake age and transfer counters per peer,
//! read with `wg show IFACE dump` (`status.sh`; its first line, which holds the private key,
//! is skipped on the host and never sent).

use std::collections::BTreeMap;

use super::model::WgNetwork;
use crate::contract::Check;
use crate::shell::quote;

/// How long `status` and a deploy wait for the first handshake of a fresh tunnel.
pub const HANDSHAKE_WAIT_SECS: u32 = 8;

/// `wg_handshake` (status.sh) for interface `w` of `node`: starts a handshake with every
/// peer and waits for them; the status script and the deploy's settle step both run it.
pub fn handshake(w: &WgNetwork, node: &str) -> String {
    let peers: Vec<String> = w
        .peers_of(node)
        .iter()
        .map(|p| quote(&p.address.to_string()))
        .collect();
    format!(
        "wg_handshake {} {HANDSHAKE_WAIT_SECS} {} {}\n",
        quote(&w.interface),
        w.handshake_timeout,
        peers.join(" ")
    )
}

/// The settle script of interface `w`'s unit on `node`.
pub fn settle(w: &WgNetwork, node: &str) -> String {
    format!("{}{}", include_str!("status.sh"), handshake(w, node))
}

/// For every interface `node` has: a handshake with each peer (bounded wait), then
/// `wg_peers` (status.sh).
pub fn script(networks: &[WgNetwork], node: &str) -> String {
    let mine: Vec<&WgNetwork> = networks
        .iter()
        .filter(|w| w.member(node).is_some())
        .collect();
    if mine.is_empty() {
        return String::new();
    }
    let handshakes: String = mine.iter().map(|w| handshake(w, node)).collect();
    let ifaces: Vec<String> = mine.iter().map(|w| quote(&w.interface)).collect();
    format!(
        "{}{handshakes}wg_peers {}\n",
        include_str!("status.sh"),
        ifaces.join(" ")
    )
}

/// Human-readable byte count.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// One check per peer of every interface on `node`: unhealthy when the peer is missing or
/// its latest handshake is older than the network's `handshake_timeout`.
pub fn checks(networks: &[WgNetwork], node: &str, stdout: &str) -> Vec<Check> {
    let now: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("@wgnow ")?.trim().parse().ok())
        .unwrap_or(0);
    // (iface, first allowed ip) → (handshake, rx, tx)
    let mut seen: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for l in stdout.lines().filter_map(|l| l.strip_prefix("@wg ")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [iface, allowed, hs, rx, tx] = f[..] {
            let n = |s: &str| s.parse::<u64>().unwrap_or(0);
            for a in allowed.split(',') {
                seen.insert((iface.to_string(), a.to_string()), (n(hs), n(rx), n(tx)));
            }
        }
    }
    let mut out = Vec::new();
    for w in networks {
        let Some(me) = w.member(node) else { continue };
        for p in w.peers_of(node) {
            // A peer is recognised by the first AllowedIPs entry rendered for it.
            let first = w.allowed_ips(me, p).swap_remove(0);
            let key = (w.interface.clone(), first);
            let (ok, detail) = match seen.get(&key) {
                None => (
                    false,
                    "peer not configured on the interface (is the tunnel up?); run deploy"
                        .to_string(),
                ),
                Some((0, _, _)) => (false, "WireGuard tunnel down: no handshake yet".to_string()),
                Some(&(hs, rx, tx)) => {
                    let age = now.saturating_sub(hs);
                    let counters = format!("received {}, sent {}", bytes(rx), bytes(tx));
                    if age > u64::from(w.handshake_timeout) {
                        (
                            false,
                            format!(
                                "WireGuard tunnel down: last handshake {age} s ago; {counters}"
                            ),
                        )
                    } else {
                        (true, format!("handshake {age} s ago; {counters}"))
                    }
                }
            };
            out.push(Check::new(
                node,
                format!("wireguard {} peer {}", w.interface, p.node),
                ok,
                detail,
            ));
        }
    }
    out
}
