//! Monitoring on real test hosts (included in `tests/testbed.rs`, whose harness it uses):
//! Prometheus on h1 scrapes both hosts and probes the route; a webhook receiver on this
//! machine records what Alertmanager sends when a tunnel peer and a replica are stopped,
//! and when they are back. Real Prometheus, Alertmanager, blackbox exporter, node_exporter
//! (Debian's packages), real WireGuard (userspace) and HAProxy; nothing is mocked.

use super::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every webhook call Alertmanager made: when it arrived, and its JSON body.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Receiver {
    /// Listens on this machine, at an address the test hosts reach; returns its URL.
    fn start(&self) -> String {
        let listener = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = self.got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    got.lock().unwrap().push((Instant::now(), v));
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        // h1's end of its veth pair (x.x.x.1) is this machine.
        let host = ip(1);
        let net = host.rsplit_once('.').unwrap().0;
        format!("http://{net}.1:{port}/alerts")
    }

    /// Every (alertname, node label, status) notified since `since`.
    fn notified(&self, since: Instant) -> Vec<(String, String, String)> {
        let got = self.got.lock().unwrap();
        let mut out = Vec::new();
        for (_, v) in got.iter().filter(|(t, _)| *t >= since) {
            for a in v["alerts"].as_array().into_iter().flatten() {
                let label = |k: &str| a["labels"][k].as_str().unwrap_or("-").to_string();
                let status = a["status"].as_str().unwrap_or("-").to_string();
                out.push((label("alertname"), label("node"), status));
            }
        }
        out
    }

    /// Waits up to `limit` for a notification of `alert` about `node` with `status`
    /// (`firing` or `resolved`) after `since`; how long after `since` it came.
    fn wait(&self, since: Instant, alert: &str, node: &str, status: &str, limit: Duration) -> Duration {
        let deadline = since + limit;
        loop {
            {
                let got = self.got.lock().unwrap();
                for (t, v) in got.iter().filter(|(t, _)| *t >= since) {
                    let hit = v["alerts"].as_array().into_iter().flatten().any(|a| {
                        a["labels"]["alertname"] == alert
                            && a["labels"]["node"] == node
                            && a["status"] == status
                    });
                    if hit {
                        return *t - since;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {status} {alert} about {node} within {limit:?}; notified: {:?}",
                self.notified(since)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// h1 runs monitoring; h2 runs two balanced replicas and backs up a database; a WireGuard
/// tunnel joins them and a route on h1 forwards to h2's echo service.
fn monitoring_inventory(env: &Env, webhook: &str) {
    let text = format!(
        r#"{{"nodes": [{}],
  "routes": [{{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}}],
  "services": [{{"name": "echo", "node": "h2", "replicas": 2, "base_port": 10000,
    "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "EXEC:cat"], "balancer": {{"port": 8500}}}}],
  "wireguard": [{{"interface": "wg0", "members": [
    {{"node": "h1", "address": "10.99.0.1/24", "userspace": true}},
    {{"node": "h2", "address": "10.99.0.2/24", "userspace": true}}]}}],
  "backups": [{{"node": "h2", "database": "app", "time": "03:15", "max_age_hours": 1}}],
  "monitoring": {{"node": "h1", "scrape_interval": 5, "receivers": {{"webhook": ["{webhook}"]}},
    "alerts": {{"BackendDown": {{"for": "10s"}}}}}}}}"#,
        nodes_json(2)
    );
    std::fs::write(env.dir.join("nodes.json"), text).unwrap();
}

/// Prometheus' targets on h1: (job, health) of each.
fn targets() -> Vec<(String, String)> {
    let out = stdout(&ssh(1, "curl -s -m 5 http://127.0.0.1:9090/api/v1/targets"));
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    v["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or("?").to_string(),
                t["health"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Waits up to `secs` until Prometheus on h1 answers the PromQL `query` (no single quote
/// in it) with a first value `ok` accepts.
fn wait_value(query: &str, secs: u64, ok: impl Fn(&str) -> bool) {
    let cmd = format!(
        "curl -s -m 5 http://127.0.0.1:9090/api/v1/query --data-urlencode 'query={query}'"
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v: Value = serde_json::from_str(&stdout(&ssh(1, &cmd))).unwrap_or(Value::Null);
        if v["data"]["result"][0]["value"][1].as_str().is_some_and(&ok) {
            return;
        }
        assert!(Instant::now() < deadline, "{query} not as expected after {secs} s: {v}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// When Prometheus and Alertmanager on h1 last loaded their configs, and their PIDs.
fn loads() -> String {
    stdout(&ssh(
        1,
        "curl -s -m 5 http://127.0.0.1:9090/api/v1/query \
         --data-urlencode query=prometheus_config_last_reload_success_timestamp_seconds \
         | grep -o '\"value\":\\[[^]]*\\]'; \
         systemctl show -P MainPID prometheus.service prometheus-alertmanager.service prometheus-blackbox-exporter.service prometheus-node-exporter.service",
    ))
}

/// Deploys monitoring derived from the inventory: every target up; a no-op deploy reloads
/// nothing; a broken rules template is refused by promtool with the rules in effect kept;
/// a stopped replica, a stopped tunnel peer, a stopped relay and a stale backup reach the
/// webhook as BackendDown, TunnelDown, RelayDown and BackupTooOld, `status` and `alerts`
/// show them, and repairs are notified as resolved.
#[test]
fn monitoring_alerts_reach_a_webhook_when_a_tunnel_a_replica_or_a_backup_goes_bad() {
    let env = Env::new("monitoring");
    for i in 1..=2 {
        // Port 9100 is node_exporter's here; other tests' echo services leave it.
        ssh(i, "systemctl stop test-fast-echo wg-echo 2>/dev/null; true");
    }
    let receiver = Receiver::default();
    let webhook = receiver.start();
    monitoring_inventory(&env, &webhook);
    // What an earlier run left (Alertmanager remembers what it notified for hours).
    assert_ok(&env.vds(&["remove", "--purge-data"]));
    let t = Instant::now();
    assert_ok(&env.vds(&["deploy"]));
    eprintln!("monitoring: first deploy of 2 hosts {:.2} s", t.elapsed().as_secs_f64());

    let deadline = Instant::now() + Duration::from_secs(60);
    let want = |t: &[(String, String)]| {
        t.len() == 3 && t.iter().all(|(_, h)| h == "up")
    };
    let mut seen = targets();
    while !want(&seen) {
        assert!(Instant::now() < deadline, "targets not all up: {seen:?}");
        std::thread::sleep(Duration::from_secs(1));
        seen = targets();
    }
    let mut jobs: Vec<&str> = seen.iter().map(|(j, _)| j.as_str()).collect();
    jobs.sort();
    assert_eq!(jobs, ["node", "node", "routes"]);
    // HAProxy's own exporter reaches Prometheus through h2's facts: both replicas active.
    wait_value(
        r#"haproxy_backend_active_servers{proxy="echo",node="h2"}"#,
        60,
        |v| v == "2",
    );
    // The relay's own counters reach Prometheus too (the probes of the route count).
    wait_value(
        r#"vds_relay_connections_total{route="web-8443",node="h1"}"#,
        60,
        |v| v.parse::<f64>().is_ok_and(|n| n > 0.0),
    );
    // A managed file changed by hand is counted, and no longer once it is as deployed.
    let drifted = r#"vds_managed_files_drifted{node="h2"}"#;
    let tool = "/usr/local/lib/vds-proxy/monitoring-facts";
    assert_ok(&ssh(2, &format!("echo '# changed by hand' >> {tool}")));
    wait_value(drifted, 90, |v| v == "1");
    assert_ok(&ssh(2, &format!("sed -i '$d' {tool}")));
    wait_value(drifted, 90, |v| v == "0");
    let rss = stdout(&ssh(
        1,
        "ps -o rss= -C prometheus,prometheus-alertmanager,prometheus-blackbox-exporter,prometheus-node-exporter | awk '{s += $1} END {print s}'",
    ));
    eprintln!("monitoring: resident memory of the four on h1: {} MiB", rss.trim().parse::<u64>().unwrap_or(0) / 1024);

    // A deploy with nothing to change reloads nothing.
    let before = loads();
    let t = Instant::now();
    let out = env.vds(&["deploy", "--format", "json"]);
    assert_ok(&out);
    eprintln!("monitoring: no-op deploy {:.2} s", t.elapsed().as_secs_f64());
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["unchanged"], 2, "{doc:#}");
    assert_eq!(before, loads());

    // A rules template that promtool refuses never goes live.
    let rules = "sha256sum /etc/prometheus/vds-proxy.rules.yml";
    let rules_before = stdout(&ssh(1, rules));
    let tpl = env.dir.join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(
        tpl.join("prometheus-rules.yml.j2"),
        "groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: \"up{\"\n",
    )
    .unwrap();
    let out = env.vds(&["deploy", "--templates", tpl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, "vds-proxy.rules.yml");
    assert_eq!(rules_before, stdout(&ssh(1, rules)));
    let loaded = stdout(&ssh(1, "curl -s -m 5 http://127.0.0.1:9090/api/v1/rules"));
    assert!(loaded.contains("\"BackendDown\"") && !loaded.contains("\"Broken\""), "{loaded}");
    assert_eq!(before, loads());

    // Healthy so far: nothing was notified.
    let firing: Vec<_> = receiver
        .notified(t)
        .into_iter()
        .filter(|n| n.2 == "firing")
        .collect();
    assert!(firing.is_empty(), "{firing:?}");

    // A replica and a tunnel peer go down, and the last good dump is two hours old (as the
    // backup tool records it).
    let fault = Instant::now();
    assert_ok(&ssh(2, "systemctl stop echo@2.service wg-quick@wg0.service"));
    assert_ok(&ssh(1, "systemctl stop vds-relay.service"));
    let dumps = "/var/backups/vds-proxy/postgresql";
    assert_ok(&ssh(
        2,
        &format!("mkdir -p {dumps} && echo \"$(( $(date +%s) - 7200 )) app-old.dump 1\" > {dumps}/.last-ok-app"),
    ));
    let backend = receiver.wait(fault, "BackendDown", "h2", "firing", Duration::from_secs(120));
    eprintln!("monitoring: BackendDown notified {:.1} s after the replica stopped", backend.as_secs_f64());
    let status = env.vds(&["status"]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    assert!(stdout(&status).contains("alert BackendDown"), "{}", text(&status));
    let out = env.vds(&["alerts", "--format", "json"]);
    assert_ok(&out);
    let alerts: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        alerts.as_array().unwrap().iter().any(|a| a["alert"] == "BackendDown" && a["node"] == "h2"),
        "{alerts:#}"
    );
    let stale = receiver.wait(fault, "BackupTooOld", "h2", "firing", Duration::from_secs(120));
    eprintln!("monitoring: BackupTooOld notified {:.1} s after the dump was made stale", stale.as_secs_f64());
    let relay = receiver.wait(fault, "RelayDown", "h1", "firing", Duration::from_secs(200));
    eprintln!("monitoring: RelayDown notified {:.1} s after the relay stopped", relay.as_secs_f64());
    // h1 still has the tunnel but hears nothing from h2: down once no handshake is newer
    // than the network's handshake_timeout (180 s, WireGuard renews them every 2 min).
    let tunnel = receiver.wait(fault, "TunnelDown", "h1", "firing", Duration::from_secs(330));
    eprintln!("monitoring: TunnelDown (h1's side) notified {:.1} s after its peer stopped", tunnel.as_secs_f64());

    let repair = Instant::now();
    assert_ok(&ssh(2, "systemctl start echo@2.service wg-quick@wg0.service"));
    assert_ok(&ssh(1, "systemctl start vds-relay.service"));
    assert_ok(&ssh(2, &format!("echo \"$(date +%s) app-new.dump 1\" > {dumps}/.last-ok-app")));
    let backend = receiver.wait(repair, "BackendDown", "h2", "resolved", Duration::from_secs(120));
    let tunnel = receiver.wait(repair, "TunnelDown", "h1", "resolved", Duration::from_secs(120));
    receiver.wait(repair, "BackupTooOld", "h2", "resolved", Duration::from_secs(120));
    receiver.wait(repair, "RelayDown", "h1", "resolved", Duration::from_secs(120));
    eprintln!(
        "monitoring: resolved notified {:.1} s (backend) and {:.1} s (tunnel) after the repair",
        backend.as_secs_f64(),
        tunnel.as_secs_f64()
    );
    // Once Prometheus sent the resolutions, nothing fires any more.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = env.vds(&["alerts"]);
        assert_ok(&out);
        if stdout(&out).trim() == "no alerts firing" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", text(&out));
        std::thread::sleep(Duration::from_secs(2));
    }
}
