//! Backend states of balanced services, read from HAProxy's stats socket for `status`.

use std::collections::BTreeMap;

use super::gather::Facts;
use super::status::Check;
use crate::inventory::Inventory;
use crate::roles::replicas;
use crate::shell::quote;

/// Script lines printing `show stat` of every stats socket on `node` as `@stat` lines.
pub fn script(inv: &Inventory, node: &str) -> String {
    let mut sockets: Vec<&str> = inv
        .balanced_on(node)
        .map(|(_, b)| b.stats_socket.as_str())
        .collect();
    sockets.sort();
    sockets.dedup();
    let mut out = String::new();
    for sock in sockets {
        out.push_str(&format!(
            "if command -v socat >/dev/null; then echo 'show stat' | socat -t 2 stdio UNIX-CONNECT:{} 2>/dev/null | sed 's/^/@stat /'; else echo '@stat-nosocat'; fi\n",
            quote(sock)
        ));
    }
    out
}

/// One check per replica of every balanced service on `node`: its state in HAProxy next to
/// the state of its unit.
pub fn checks(inv: &Inventory, node: &str, stdout: &str, facts: &Facts) -> Vec<Check> {
    let mut state: BTreeMap<(String, String), String> = BTreeMap::new();
    for line in stdout.lines().filter_map(|l| l.strip_prefix("@stat ")) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() > 17 && !line.starts_with('#') {
            state.insert((f[0].to_string(), f[1].to_string()), f[17].to_string());
        }
    }
    let no_socat = stdout.lines().any(|l| l == "@stat-nosocat");
    let mut out = Vec::new();
    for (s, _) in inv.balanced_on(node) {
        for n in 1..=s.replicas {
            let server = format!("{}-{n}", s.name);
            let unit = replicas::instance(s, n);
            let unit_state = match facts.unit(&unit).active.as_str() {
                "" => "unknown".to_string(),
                a => a.to_string(),
            };
            let (ok, detail) = match state.get(&(s.name.clone(), server.clone())) {
                _ if no_socat => (
                    false,
                    "cannot read the stats socket: socat is not installed on the host".to_string(),
                ),
                None => (
                    false,
                    format!("not in haproxy's stats (unit {unit} {unit_state}); run deploy"),
                ),
                Some(st) => (
                    st == "UP" || st == "DRAIN",
                    format!("{st} (unit {unit} {unit_state})"),
                ),
            };
            out.push(Check {
                node: node.to_string(),
                check: format!("backend {}/{server}", s.name),
                ok,
                detail,
            });
        }
    }
    out
}
