//! The real binary against real hosts: systemd-nspawn containers with systemd and OpenSSH
//! booted by `tests/testbed/setup.sh` (`just test` boots them first). These tests never
//! skip: without the testbed they fail and say how to start it.

use std::path::{Path, PathBuf};

use std::process::{Command, Output};

mod common;

#[path = "../benches/registry/client.rs"]
mod registry_client;

const TESTBED: &str = "/var/tmp/vds-proxy-testbed";

fn ip(i: u32) -> String {
    format!("10.213.{i}.2")
}

/// A fresh directory with an inventory and settings pointing at the testbed.
struct Env {
    dir: PathBuf,
    /// Holds `dir`; removed when the test ends.
    _tmp: tempfile::TempDir,
}

impl Env {
    fn new(name: &str) -> Self {
        let hosts = Path::new(TESTBED).join("hosts.txt");
        let list = std::fs::read_to_string(&hosts).unwrap_or_else(|_| {
            panic!("no testbed at {TESTBED}: run `bash tests/testbed/setup.sh` (as root) first")
        });
        assert!(
            list.lines().count() >= 3,
            "the tests need at least 3 testbed hosts (4 with the compose tests): setup.sh"
        );
        for i in 1..=3 {
            let out = ssh(i, "true");
            assert!(
                out.status.success(),
                "testbed host h{i} does not answer on ssh: run tests/testbed/setup.sh"
            );
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("vds-testbed-{name}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::write(
            dir.join("vds-proxy.toml"),
            format!(
                "ssh_key = \"{TESTBED}/id_ed25519\"\nknown_hosts = \"{TESTBED}/known_hosts\"\nconnect_timeout = 5\ncommand_timeout = 120\n"
            ),
        )
        .unwrap();
        let env = Env { dir, _tmp: tmp };
        env.clean();
        env
    }

    /// Writes nodes h1..h3 and the given routes JSON array.
    fn inventory(&self, routes: &str) {
        self.inventory_with(routes, "");
    }

    fn inventory_with(&self, routes: &str, extra_node: &str) {
        let text = format!(
            r#"{{"nodes": [{}{}], "routes": {routes}}}"#,
            nodes_json(3),
            extra_node
        );
        std::fs::write(self.dir.join("nodes.json"), text).unwrap();
    }

    /// Adds top-level sections (`"key": value, …`) to the inventory written last.
    fn add_sections(&self, fields: &str) {
        let path = self.dir.join("nodes.json");
        let nodes = std::fs::read_to_string(&path).unwrap();
        let text = format!("{}, {fields}}}", nodes.trim_end().trim_end_matches('}'));
        std::fs::write(path, text).unwrap();
    }

    fn vds(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// vds-proxy with this inventory and `args`, to add to (environment, pipes) and run.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vds-proxy"));
        c.arg("-i").arg(self.dir.join("nodes.json")).args(args);
        c
    }

    /// Takes back whatever an earlier test left, and starts an echo service on h2:9000.
    fn clean(&self) {
        self.inventory("[]");
        let out = self.vds(&["remove"]);
        assert!(
            out.status.success(),
            "cleanup remove failed: {}",
            text(&out)
        );
        let out = ssh(
            2,
            "systemctl stop test-echo 2>/dev/null; systemctl reset-failed test-echo 2>/dev/null; systemd-run -q --unit=test-echo socat TCP-LISTEN:9000,fork,reuseaddr EXEC:cat",
        );
        assert_ok(&out);
    }
}

/// Test hosts h1..hN as inventory nodes (JSON, comma-separated), each reached at its
/// address as its public and Tailscale address.
fn nodes_json(n: u32) -> String {
    (1..=n)
        .map(|i| {
            format!(
                r#"{{"name": "h{i}", "public_ip": "{0}", "tailscale_ip": "{0}"}}"#,
                ip(i)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `cmd` on host `i` as root, the testbed's key and known hosts checked.
fn ssh_command(i: u32, cmd: &str) -> Command {
    let mut c = Command::new("ssh");
    c.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "StrictHostKeyChecking=yes",
        // A host that reboots under a command ends it within 6 s.
        "-o",
        "ServerAliveInterval=2",
        "-o",
        "ServerAliveCountMax=3",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={TESTBED}/known_hosts"))
    .arg("-i")
    .arg(format!("{TESTBED}/id_ed25519"))
    .arg(format!("root@{}", ip(i)))
    .arg(cmd);
    c
}

fn ssh(i: u32, cmd: &str) -> Output {
    ssh_command(i, cmd).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stdout with every run of blanks made one space (table columns vary in width).
fn squeezed(o: &Output) -> String {
    stdout(o)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fails with the command's whole output unless it succeeded.
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "{}", text(o));
}

/// Fails with the command's whole output unless its stdout holds `needle`.
fn assert_says(o: &Output, needle: &str) {
    assert!(stdout(o).contains(needle), "{}", text(o));
}

/// Fails with the command's whole output unless its stderr (the errors) holds `needle`.
fn assert_error_says(o: &Output, needle: &str) {
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(needle),
        "{}",
        text(o)
    );
}

/// Like [`assert_says`], for a table row (blanks between columns squeezed to one space).
fn assert_row(o: &Output, row: &str) {
    assert!(squeezed(o).contains(row), "{}", text(o));
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr))
}

/// Sends a line through `host:port` and returns what came back.
fn echo(host: &str, port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{host}:{port}").parse().unwrap(),
        std::time::Duration::from_secs(3),
    )
    .unwrap_or_else(|e| panic!("connect {host}:{port}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    s.write_all(b"ping through vds-proxy\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn invocation(i: u32, unit: &str) -> String {
    stdout(&ssh(
        i,
        &format!("systemctl show -p InvocationID --value {unit}"),
    ))
    .trim()
    .to_string()
}

const TWO_ROUTES: &str = r#"[
  {"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"},
  {"port": 8444, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "api", "forwarder": "socat"}
]"#;

#[test]
fn deploy_forwards_traffic_and_a_second_deploy_restarts_nothing() {
    let env = Env::new("deploy");
    env.inventory(TWO_ROUTES);
    // A dry run with changes pending exits 3 when asked to (Terraform's detailed codes).
    let out = env.vds(&["deploy", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_says(&out, "planned (dry run)");
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "h1    4        changed");
    let out = env.vds(&["deploy", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Relay (default forwarder) and socat both reach the echo service on h2.
    assert_eq!(echo(&ip(1), 8443), "ping through vds-proxy\n");
    assert_eq!(echo(&ip(1), 8444), "ping through vds-proxy\n");
    // The relay's line for that connection is in its unit's journal, sent as a native
    // journal entry (batched), not through the stderr stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let lines = "journalctl -u vds-relay.service _TRANSPORT=journal -o cat | grep 'route=web-8443 client=.* end=closed'";
    while !ssh(1, lines).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "no connection line in the journal: {}",
            stdout(&ssh(
                1,
                "journalctl -u vds-relay.service -o verbose | tail -40"
            ))
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let relay = invocation(1, "vds-relay.service");
    let socat = invocation(1, "socat-proxy-api-8444.service");
    assert!(!relay.is_empty() && !socat.is_empty());
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "h1    0        ok (no changes)");
    assert_eq!(
        invocation(1, "vds-relay.service"),
        relay,
        "relay restarted by a no-op deploy"
    );
    assert_eq!(invocation(1, "socat-proxy-api-8444.service"), socat);

    let out = env.vds(&["status"]);
    assert_ok(&out);
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains("route web:8443"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        line.contains(" ok ") && line.ends_with("10.213.1.2:8443 reaches h2:9000"),
        "{}",
        text(&out)
    );

    // The same probes from another host of the mesh.
    let out = env.vds(&["status", "--probe-from", "h3"]);
    assert_ok(&out);

    // With the target service gone, the forwarders accept and close at once: unhealthy.
    assert!(ssh(2, "systemctl stop test-echo").status.success());
    let out = env.vds(&["status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, "accepted and closed at once");
    let out = env.vds(&["status", "--probe-from", "h3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// A host-side command that ends once an apply holds the host lock (at most 30 s; it fails
/// if none did).
const UNTIL_AN_APPLY_RUNS: &str =
    "timeout 30 sh -c 'while flock -n /run/vds-proxy.lock true; do sleep 0.02; done'";

/// Waits until no apply runs on host `i` and none left its transaction, at most `limit`:
/// how long that took, or `None`.
fn apply_settled(i: u32, limit: std::time::Duration) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let idle = ssh(
            i,
            "flock -n /run/vds-proxy.lock true && ! test -d /var/lib/vds-proxy/txn",
        );
        if idle.status.success() {
            return Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    None
}

/// Runs `cmd` on host `i` with `input` as its stdin.
fn ssh_with_input(i: u32, cmd: &str, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = ssh_command(i, cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn drift_makes_status_fail_and_deploy_repairs_it() {
    let env = Env::new("drift");
    env.inventory(TWO_ROUTES);
    assert!(env.vds(&["deploy"]).status.success());
    // The deploy left the bundled binary's hash for the next gather (it is big).
    let bin = "/usr/local/lib/vds-proxy/vds-proxy";
    assert_ok(&ssh(
        1,
        &format!(
            "grep -qxF \"$(stat -c '%s %i %.9Y %.9Z' {bin}) $(sha256sum {bin} | cut -c1-64) {bin}\" /var/lib/vds-proxy/digests"
        ),
    ));
    let unit = "/etc/systemd/system/socat-proxy-api-8444.service";
    assert!(
        ssh(1, &format!("echo '# edited by hand' >> {unit}"))
            .status
            .success()
    );

    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, &format!("file {unit}"));
    assert_says(&out, "drifted");
    let json = env.vds(&["status", "--format", "json"]);
    assert_eq!(json.status.code(), Some(1));
    assert!(stdout(&json).contains("\"healthy\": false"));

    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "repaired drift");
    assert!(!stdout(&ssh(1, &format!("cat {unit}"))).contains("edited by hand"));
    assert!(env.vds(&["status"]).status.success());

    // The bundled binary, whose hash gather keeps (it is big): one byte changed by hand,
    // in place while nothing runs it (same size, same inode), is drift all the same.
    assert_ok(&ssh(
        1,
        &format!(
            "test -s /var/lib/vds-proxy/digests && systemctl stop vds-relay && \
             printf 'X' | dd of={bin} bs=1 seek=4096 conv=notrunc status=none"
        ),
    ));
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, &format!("file {bin}"));
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "repaired drift");
    assert!(env.vds(&["status"]).status.success());
}

#[test]
fn a_route_dropped_from_the_inventory_is_pruned() {
    let env = Env::new("prune");
    env.inventory(TWO_ROUTES);
    assert!(env.vds(&["deploy"]).status.success());
    env.inventory(
        r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}]"#,
    );
    let out = env.vds(&["deploy", "--dry-run"]);
    assert!(out.status.success());
    assert_says(
        &out,
        "- /etc/systemd/system/socat-proxy-api-8444.service (no longer in the inventory)",
    );
    assert!(
        ssh(
            1,
            "test -e /etc/systemd/system/socat-proxy-api-8444.service"
        )
        .status
        .success(),
        "dry run changed the host"
    );

    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(
        &out,
        "removed /etc/systemd/system/socat-proxy-api-8444.service",
    );
    let gone = ssh(
        1,
        "systemctl is-active socat-proxy-api-8444.service; test -e /etc/systemd/system/socat-proxy-api-8444.service && echo still-there; ls /etc/systemd/system/multi-user.target.wants/",
    );
    let o = stdout(&gone);
    assert!(
        !o.contains("still-there") && !o.contains("socat-proxy-api") && o.starts_with("inactive"),
        "{o}"
    );
    assert_eq!(echo(&ip(1), 8443), "ping through vds-proxy\n");
}

#[test]
fn remove_leaves_nothing_behind() {
    let env = Env::new("remove");
    env.inventory(TWO_ROUTES);
    assert!(env.vds(&["deploy"]).status.success());
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    let files = stdout(&ssh(
        1,
        "ls /etc/vds-proxy /usr/local/lib/vds-proxy /var/lib/vds-proxy /etc/systemd/system/vds-relay.service /etc/systemd/system/socat-proxy-api-8444.service 2>&1",
    ));
    assert_eq!(
        files.matches("No such file or directory").count(),
        5,
        "{files}"
    );
    let wants = stdout(&ssh(1, "ls /etc/systemd/system/multi-user.target.wants/"));
    assert!(
        !wants.contains("vds-relay") && !wants.contains("socat-proxy"),
        "{wants}"
    );
    let units = stdout(&ssh(
        1,
        "systemctl is-active vds-relay.service socat-proxy-api-8444.service",
    ));
    assert_eq!(units, "inactive\ninactive\n");
    // Idempotent.
    let again = env.vds(&["remove"]);
    assert!(again.status.success());
    assert_says(&again, "h1    0        ok (no changes)");
}

#[test]
fn a_unit_failing_validation_leaves_the_host_exactly_as_it_was() {
    let env = Env::new("invalid");
    env.inventory(TWO_ROUTES);
    assert!(env.vds(&["deploy"]).status.success());
    let before = stdout(&ssh(
        1,
        "sha256sum /etc/systemd/system/*.service /etc/vds-proxy/* /var/lib/vds-proxy/state.json",
    ));
    let socat_id = invocation(1, "socat-proxy-api-8444.service");

    let tpl = env.dir.join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    // A service without ExecStart: systemd refuses it, systemd-analyze verify must too.
    std::fs::write(
        tpl.join("socat-proxy.service.j2"),
        "[Unit]\nDescription=broken {{ route.service }}\n\n[Service]\nRestart=always\n",
    )
    .unwrap();
    let out = env.vds(&["deploy", "--templates", tpl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, "validation failed; nothing was changed on the host");
    assert_says(&out, "socat-proxy-api-8444.service");
    let after = stdout(&ssh(
        1,
        "sha256sum /etc/systemd/system/*.service /etc/vds-proxy/* /var/lib/vds-proxy/state.json",
    ));
    assert_eq!(before, after);
    assert_eq!(invocation(1, "socat-proxy-api-8444.service"), socat_id);
}

#[test]
fn a_unit_that_does_not_come_up_is_rolled_back() {
    let env = Env::new("rollback");
    env.inventory(TWO_ROUTES);
    assert!(env.vds(&["deploy"]).status.success());
    let before = stdout(&ssh(
        1,
        "cat /etc/systemd/system/socat-proxy-api-8444.service",
    ));
    // Valid unit, but socat cannot bind an address h1 does not have: it exits at once.
    env.inventory(
        r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"},
            {"port": 8444, "listen": "10.213.3.2", "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "api", "forwarder": "socat"}]"#,
    );
    let out = env.vds(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let o = stdout(&out);
    assert!(o.contains("previous files were restored"), "{o}");
    assert!(
        o.contains("unit socat-proxy-api-8444.service did not come up"),
        "{o}"
    );
    assert_eq!(
        stdout(&ssh(
            1,
            "cat /etc/systemd/system/socat-proxy-api-8444.service"
        )),
        before
    );
    assert_eq!(
        echo(&ip(1), 8444),
        "ping through vds-proxy\n",
        "the old unit serves again"
    );
}

#[test]
fn an_unreachable_host_fails_alone() {
    let env = Env::new("unreachable");
    // h3 at a port where nothing listens: refused quickly, no traffic leaves the testbed.
    // Its route uses the relay, so the deploy would read its architecture first: that
    // it cannot be read must not stop the other hosts either.
    env.inventory_with(
        r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"},
            {"port": 8443, "proxy_node": "ghost", "target_node": "h2", "target_port": 9000, "service": "web2"}]"#,
        r#", {"name": "ghost", "public_ip": "10.213.3.2", "ssh_port": 2}"#,
    );
    let out = env.vds(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let o = stdout(&out);
    assert!(o.contains("ghost  0        FAILED"), "{o}");
    assert!(o.contains("ghost (10.213.3.2:2): cannot connect"), "{o}");
    assert!(o.contains("h1     3        changed"), "{o}");
    assert_eq!(echo(&ip(1), 8443), "ping through vds-proxy\n");

    // The same as one JSON document (the schema docs/deploy.md documents), after a change on h1.
    env.inventory_with(
        r#"[{"port": 8444, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"},
            {"port": 8443, "proxy_node": "ghost", "target_node": "h2", "target_port": 9000, "service": "web2", "forwarder": "socat"}]"#,
        r#", {"name": "ghost", "public_ip": "10.213.3.2", "ssh_port": 2}"#,
    );
    let out = env.vds(&["deploy", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(
        (
            &doc["changed"],
            &doc["unchanged"],
            &doc["planned"],
            &doc["failed"]
        ),
        (&1.into(), &2.into(), &0.into(), &1.into()),
        "{doc:#}"
    );
    let host = |name: &str| {
        doc["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["node"] == name)
            .unwrap_or_else(|| panic!("{name} in {doc:#}"))
            .clone()
    };
    let h1 = host("h1");
    assert_eq!(h1["result"], "changed", "{doc:#}");
    assert_eq!(
        h1["files"],
        serde_json::json!([{"change": "updated", "path": "/etc/vds-proxy/relay.toml"}]),
        "{doc:#}"
    );
    assert_eq!(
        h1["actions"],
        serde_json::json!(["reloaded vds-relay.service"]),
        "{doc:#}"
    );
    assert_eq!(h1["error"], serde_json::Value::Null);
    let ghost = host("ghost");
    assert_eq!(ghost["result"], "failed", "{doc:#}");
    assert!(
        ghost["error"].as_str().unwrap().contains("cannot connect"),
        "{doc:#}"
    );
    assert_eq!(host("h2")["result"], "unchanged", "{doc:#}");
}

#[test]
fn concurrent_deploys_to_one_host_are_serialized() {
    let env = Env::new("concurrent");
    env.inventory(TWO_ROUTES);
    let spawn = || {
        env.command(&["deploy", "--node", "h1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_ok(&a);
    assert_ok(&b);
    let changed = [&a, &b]
        .iter()
        .filter(|o| stdout(o).contains("h1    4        changed"))
        .count();
    let unchanged = [&a, &b]
        .iter()
        .filter(|o| stdout(o).contains("h1    0        ok (no changes)"))
        .count();
    assert_eq!((changed, unchanged), (1, 1), "{}\n{}", text(&a), text(&b));
    assert_eq!(echo(&ip(1), 8443), "ping through vds-proxy\n");
}

#[test]
fn a_wrong_host_key_is_refused() {
    let env = Env::new("hostkey");
    env.inventory(TWO_ROUTES);
    let kh = env.dir.join("known_hosts");
    let key = std::fs::read_to_string(format!("{TESTBED}/known_hosts")).unwrap();
    // Same key type, different key: what a man in the middle would present.
    let other = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(env.dir.join("other"))
        .output()
        .unwrap();
    assert!(other.status.success());
    let fake = std::fs::read_to_string(env.dir.join("other.pub")).unwrap();
    let fake: Vec<&str> = fake.split_whitespace().take(2).collect();
    let lines: String = key
        .lines()
        .map(|l| {
            if l.starts_with("10.213.1.2 ") {
                format!("10.213.1.2 {}\n", fake.join(" "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&kh, lines).unwrap();
    std::fs::write(
        env.dir.join("vds-proxy.toml"),
        format!(
            "ssh_key = \"{TESTBED}/id_ed25519\"\nknown_hosts = \"{}\"\nconnect_timeout = 5\n",
            kh.display()
        ),
    )
    .unwrap();
    let out = env.vds(&["deploy", "--accept-new-host-keys"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let o = stdout(&out);
    assert!(o.contains("h1    0        FAILED"), "{o}");
    assert!(o.contains("host key verification failed"), "{o}");
    assert!(
        ssh(1, "test ! -e /var/lib/vds-proxy/state.json")
            .status
            .success(),
        "deployed despite the wrong key"
    );
}

fn balanced(replicas: u32) -> String {
    format!(
        r#"{{"nodes": [{{"name": "h1", "public_ip": "10.213.1.2", "tailscale_ip": "10.213.1.2"}}],
            "services": [{{"name": "echo", "node": "h1", "replicas": {replicas}, "base_port": 10000,
              "exec": ["/usr/bin/socat", "TCP-LISTEN:{{port}},fork,reuseaddr", "EXEC:cat"],
              "balancer": {{"port": 8500}}}}]}}"#
    )
}

/// Backend states from HAProxy's stats socket on h1: (server, status) of service `echo`.
fn haproxy_servers() -> Vec<(String, String)> {
    let out = stdout(&ssh(
        1,
        "echo 'show stat' | socat stdio /run/haproxy/admin.sock",
    ));
    out.lines()
        .filter(|l| l.starts_with("echo,echo-"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_string(), f[17].to_string())
        })
        .collect()
}

fn wait_servers_up(n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = haproxy_servers();
        if s.len() == n && s.iter().all(|(_, st)| st == "UP") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "haproxy servers: {s:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn haproxy_worker() -> String {
    stdout(&ssh(
        1,
        "pgrep -P $(systemctl show -p MainPID --value haproxy.service)",
    ))
    .trim()
    .to_string()
}

/// A client that keeps opening a connection through h1:`port` every 20 ms, sending a line
/// and reading it back, until stopped: (connections that worked, what went wrong).
struct SteadyClient {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u32, Vec<Failure>)>,
}

/// A connection of [`SteadyClient`] that did not echo, and when it was open.
struct Failure {
    began: std::time::Instant,
    ended: std::time::Instant,
    what: String,
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let open = self.ended.duration_since(self.began);
        write!(f, "{} (open {open:?})", self.what)
    }
}

impl SteadyClient {
    fn start(port: u16) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let began = std::time::Instant::now();
                let what = match std::panic::catch_unwind(|| echo(&ip(1), port)) {
                    Ok(s) if s == "ping through vds-proxy\n" => None,
                    Ok(s) => Some(format!("got {s:?}")),
                    Err(_) => Some("connect or read failed".to_string()),
                };
                match what {
                    None => ok += 1,
                    Some(what) => failed.push(Failure {
                        began,
                        ended: std::time::Instant::now(),
                        what,
                    }),
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (ok, failed)
        });
        SteadyClient { stop, thread }
    }

    fn stop(self) -> (u32, Vec<Failure>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A service whose unit would replace one the host already has from a package is refused
/// at deploy, before anything changed (offline, names of well-known units are refused too).
#[test]
fn a_unit_that_would_replace_the_hosts_own_is_refused() {
    let env = Env::new("vendor");
    let vendor = "/lib/systemd/system/pkgsvc@.service";
    assert_ok(&ssh(
        1,
        &format!("printf '[Service]\\nExecStart=/bin/true\\n' > {vendor}"),
    ));
    let inv = r#"{"nodes": [{"name": "h1", "public_ip": "10.213.1.2"}],
        "services": [{"name": "pkgsvc", "node": "h1", "exec": ["/usr/bin/sleep", "600"]}]}"#;
    std::fs::write(env.dir.join("nodes.json"), inv).unwrap();
    let out = env.vds(&["deploy"]);
    let _ = ssh(1, &format!("rm -f {vendor}"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(
        &out,
        "would replace the host's own unit(s) pkgsvc@.service (the host has /lib/systemd/system/pkgsvc@.service); nothing was changed",
    );
    assert!(
        ssh(1, "test ! -e /etc/systemd/system/pkgsvc@.service && test ! -e /var/lib/vds-proxy/state.json")
            .status
            .success(),
        "something was installed"
    );
}

/// `deploy --only` touches only the parts its tags name, like seed 003's Ansible tags.
#[test]
fn only_tags_apply_just_their_parts() {
    let env = Env::new("only");
    std::fs::write(env.dir.join("nodes.json"), balanced(2)).unwrap();
    assert!(env.vds(&["deploy"]).status.success());
    wait_servers_up(2);
    std::fs::write(env.dir.join("nodes.json"), balanced(3)).unwrap();

    // setup: the drop-in is unchanged; no replica or haproxy change happens.
    let out = env.vds(&["deploy", "--only", "setup"]);
    assert_says(&out, "ok (no changes)");

    // config: haproxy.cfg names the third server, but its unit is not created.
    let out = env.vds(&["deploy", "--only", "config"]);
    assert_ok(&out);
    assert_says(&out, "updated /etc/haproxy/haproxy.cfg");
    assert!(!stdout(&out).contains("echo@3"), "{}", text(&out));
    let units = stdout(&ssh(
        1,
        "systemctl list-units --no-legend --state=active 'echo@*' | wc -l",
    ));
    assert_eq!(units.trim(), "2");

    // scale: the third replica starts; once its health checks pass, verify is healthy.
    let out = env.vds(&["deploy", "--only", "scale"]);
    assert_ok(&out);
    assert_says(&out, "echo@3.service");
    wait_servers_up(3);
    let out = env.vds(&["deploy", "--only", "verify"]);
    assert_ok(&out);
    assert_row(
        &out,
        "backend echo/echo-3 ok UP (unit echo@3.service active)",
    );

    // Everything is in place: a full deploy has nothing left to do.
    let out = env.vds(&["deploy"]);
    assert_says(&out, "ok (no changes)");
    assert!(env.vds(&["remove"]).status.success());
}

/// Nodes of different architectures each get the vds-proxy build for their own, by the
/// `uname -m` read before anything changes (when the settings name builds for several); a
/// node with no build for its architecture, or a build that is not for the architecture it
/// is named for, stops the deploy before any host changes. (h3 says it is aarch64 through a `uname` on its PATH; the "aarch64 build"
/// is this build with its ELF header's machine field set to aarch64, for the checks and the
/// dry run: it cannot run here, and no aarch64 host can boot here.)
#[test]
fn each_node_gets_the_build_for_its_architecture_and_a_missing_one_stops_the_deploy() {
    let env = Env::new("arch");
    let fake_uname = "printf '#!/bin/sh\\n[ \"$1\" = -m ] && exec echo aarch64\\nexec /usr/bin/uname \"$@\"\\n' > /usr/local/bin/uname && chmod 755 /usr/local/bin/uname";
    /// Puts h3's own `uname` back however the test ends.
    struct RealUname;
    impl Drop for RealUname {
        fn drop(&mut self) {
            ssh(3, "rm -f /usr/local/bin/uname");
        }
    }
    let _real_uname = RealUname;
    assert_ok(&ssh(3, fake_uname));
    assert_eq!(stdout(&ssh(3, "uname -m")), "aarch64\n");
    let own = std::fs::read(env!("CARGO_BIN_EXE_vds-proxy")).unwrap();
    let mut arm = own.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    let mut riscv = own.clone();
    riscv[18..20].copy_from_slice(&243u16.to_le_bytes());
    let mut x86 = own.clone();
    x86.extend_from_slice(b"another x86_64 build");
    for (name, bytes) in [("arm", &arm), ("riscv", &riscv), ("x86", &x86)] {
        std::fs::write(env.dir.join(name), bytes).unwrap();
    }
    let sha = |name: &str| {
        let out = Command::new("sha256sum").arg(name).output().unwrap();
        stdout(&out)[..64].to_string()
    };
    let settings = std::fs::read_to_string(env.dir.join("vds-proxy.toml")).unwrap();
    let set = |extra: &str| {
        std::fs::write(env.dir.join("vds-proxy.toml"), format!("{settings}{extra}")).unwrap()
    };
    env.inventory(
        r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"},
            {"port": 8445, "proxy_node": "h3", "target_node": "h2", "target_port": 9000, "service": "board"}]"#,
    );
    let h1_untouched = || {
        assert!(
            !ssh(1, "test -e /usr/local/lib/vds-proxy/vds-proxy")
                .status
                .success(),
            "h1 was changed"
        )
    };

    // Builds for two architectures, none for h3's: nothing changes anywhere.
    set("[relay_binaries]\nriscv64 = \"riscv\"\n");
    let out = env.vds(&["deploy"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_error_says(
        &out,
        "h3 is aarch64, and there is no aarch64 build of vds-proxy to install there (builds at hand: x86_64, riscv64)",
    );
    assert_error_says(&out, "no host was changed");
    h1_untouched();
    // One build (no architecture read first): h3 fails alone, before it changes.
    set("");
    let out = env.vds(&["deploy", "--node", "h3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(
        &out,
        "is aarch64 but the vds-proxy build planned for it is for x86_64",
    );
    assert!(
        !ssh(3, "test -e /usr/local/lib/vds-proxy/vds-proxy")
            .status
            .success(),
        "h3 was changed"
    );

    set("[relay_binaries]\naarch64 = \"x86\"\n");
    let out = env.vds(&["deploy"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_error_says(&out, "relay_binaries.aarch64: ");
    assert_error_says(
        &out,
        "is not an aarch64 executable (its ELF header says x86_64)",
    );
    h1_untouched();

    set("[relay_binaries]\naarch64 = \"arm\"\n");
    let out = env.vds(&["deploy", "--dry-run"]);
    assert_ok(&out);
    let o = stdout(&out);
    let own_sha = sha(env!("CARGO_BIN_EXE_vds-proxy"));
    let arm_sha = sha(env.dir.join("arm").to_str().unwrap());
    let h3 = o.split("\nh3:").nth(1).unwrap_or_else(|| panic!("{o}"));
    assert!(
        h3.contains(&format!("binary -> sha256 {arm_sha}")),
        "h3 gets the aarch64 build: {o}"
    );
    let h1 = o.split("\nh1:").nth(1).unwrap_or_else(|| panic!("{o}"));
    let h1 = h1.split("\nh3:").next().unwrap();
    assert!(
        h1.contains(&format!("binary -> sha256 {own_sha}")),
        "h1 gets this one: {o}"
    );
    h1_untouched();

    // A real deploy that takes the other path: the default build is the "aarch64" one, and
    // the x86_64 node h1 gets its own build in its place.
    assert_ok(&ssh(3, "rm -f /usr/local/bin/uname"));
    env.inventory(
        r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}]"#,
    );
    set("relay_binary = \"arm\"\n[relay_binaries]\nx86_64 = \"x86\"\n");
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(
        stdout(&ssh(1, "sha256sum < /usr/local/lib/vds-proxy/vds-proxy")).get(..64),
        Some(sha(env.dir.join("x86").to_str().unwrap()).as_str())
    );
    assert_eq!(echo(&ip(1), 8443), "ping through vds-proxy\n");
    assert!(env.vds(&["remove"]).status.success());
}

/// A host whose unit did not come up is rolled back; with `--retries` it is deployed again
/// after a pause, and when the cause has passed meanwhile (here: a file the replica needs,
/// created by the test once the first attempt was rolled back) the deploy succeeds and
/// says it was retried.
#[test]
fn a_host_whose_activation_failed_is_deployed_again_and_says_so() {
    let env = Env::new("retry");
    const NEEDED: &str = "/etc/vds-test-retry-ok";
    const UNIT: &str = "/etc/systemd/system/retry@.service";
    ssh(1, &format!("rm -f {NEEDED}"));
    let inv = r#"{"nodes": [{"name": "h1", "public_ip": "10.213.1.2"}],
        "services": [{"name": "retry", "node": "h1", "replicas": 1, "base_port": 9311,
          "exec": ["/bin/sh", "-c", "test -e /etc/vds-test-retry-ok || exit 1; exec socat TCP-LISTEN:$PORT,fork,reuseaddr EXEC:cat"]}]}"#;
    std::fs::write(env.dir.join("nodes.json"), inv).unwrap();

    let out = env.vds(&["deploy", "--retries", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, "did not come up");
    assert!(!stdout(&out).contains("retried"), "{}", text(&out));
    assert!(
        !ssh(1, &format!("test -e {UNIT}")).status.success(),
        "the failed attempt was rolled back"
    );

    let child = env
        .command(&["deploy", "--retries", "3", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first attempt installs the unit, sees it fail and rolls back; then the cause
    // goes away while vds-proxy waits to try again.
    let wait_for = |cmd: &str, what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !ssh(1, cmd).status.success() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for(
        &format!("test -e {UNIT}"),
        "the first attempt never installed the unit",
    );
    wait_for(
        &format!("! test -e {UNIT}"),
        "the first attempt was not rolled back",
    );
    assert!(ssh(1, &format!("touch {NEEDED}")).status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    let h1 = &doc["hosts"][0];
    assert_eq!(h1["result"], "changed", "{doc:#}");
    assert_eq!(h1["retries"], 1, "{doc:#}");
    assert!(
        h1["notes"][0]
            .as_str()
            .is_some_and(|n| n.starts_with("attempt 1 failed and was retried: apply failed")),
        "{doc:#}"
    );
    assert_eq!(echo(&ip(1), 9311), "ping through vds-proxy\n");
    assert!(env.vds(&["remove"]).status.success());
    ssh(1, &format!("rm -f {NEEDED}"));
}

const READER: &str = "reader-token-0123456789abcdef";

const ADMIN: &str = "admin-token-0123456789abcdef0";

const FARM2: &str = "farm-h2-token-0123456789abcdef";

const FARM3: &str = "farm-h3-token-0123456789abcdef";

/// An inventory with a registry on h1:8080 (and, with `route`, the relay route too).
fn registry_inventory(env: &Env, route: bool, extra_token: &str) {
    env.inventory(if route {
        r#"[{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}]"#
    } else {
        "[]"
    });
    env.add_sections(&format!(
        r#""registries": [{{"node": "h1", "port": 8080, "heartbeat_interval": 2, "tokens": [
            {{"name": "web", "role": "reader", "token": "{READER}"}},
            {{"name": "ops", "role": "admin", "token": "{ADMIN}", "rate_limit": 0}},
            {{"name": "farm-h2", "role": "farm", "farm": "{}", "token": "{FARM2}"}},
            {{"name": "farm-h3", "role": "farm", "farm": "{}", "token": "{FARM3}", "rate_limit": 3}}{extra_token}]}}]"#,
        ip(2),
        ip(3)
    ));
}

/// `METHOD path` on h1's registry with `token` and `body`: (status code, body).
fn api(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-m",
        "5",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd
        .arg(format!("http://{}:8080{path}", ip(1)))
        .output()
        .expect("curl: apt-get install curl");
    let text = stdout(&out);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The host the compose tests use: Podman leaves its own firewall chains and IP forwarding
/// on a host it ran a network on, which the firewall and TPROXY tests on h1-h3 must not
/// see.
const APP_HOST: u32 = 4;

impl Env {
    /// Checks the 4th test host is up and takes back whatever an earlier run left on it.
    fn with_app_host(&self) {
        let hosts = std::fs::read_to_string(Path::new(TESTBED).join("hosts.txt")).unwrap();
        assert!(
            hosts.lines().count() >= 4 && ssh(APP_HOST, "true").status.success(),
            "the compose tests need a 4th test host: run tests/testbed/setup.sh 4"
        );
        self.app_inventory();
        let out = self.vds(&["remove"]);
        assert!(out.status.success(), "cleanup remove on h4: {}", text(&out));
    }

    /// Nodes h1..h4, nothing else.
    fn app_inventory(&self) {
        self.inventory_with(
            "[]",
            &format!(
                r#", {{"name": "h4", "public_ip": "{0}", "tailscale_ip": "{0}"}}"#,
                ip(APP_HOST)
            ),
        );
    }
}

/// How many logins h`i`'s sshd has accepted so far (this query's own included).
fn logins(i: u32) -> usize {
    stdout(&ssh(
        i,
        "journalctl -u ssh.service -o cat --no-pager | grep -c 'Accepted publickey'",
    ))
    .trim()
    .parse()
    .unwrap()
}

/// Closes the SSH masters `--keep-connections` left (as root: in /tmp/vds-proxy-0 unless
/// XDG_RUNTIME_DIR is set).
fn close_kept_masters() {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("vds-proxy"),
        _ => std::env::temp_dir().join("vds-proxy-0"),
    };
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "master") {
            let ctl = std::fs::read_to_string(e.path()).unwrap();
            let _ = Command::new("ssh")
                .args(["-S", ctl.trim(), "-O", "exit", "kept"])
                .output();
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[test]
fn kept_connections_let_the_next_command_skip_the_logins() {
    let env = Env::new("keep");
    close_kept_masters();
    env.inventory(TWO_ROUTES);
    let c0 = logins(1);
    assert_ok(&env.vds(&["deploy", "--keep-connections=30s"]));
    let c1 = logins(1);
    assert_eq!(c1 - c0, 2, "the deploy logged in once (plus this count)");
    // The next command reuses the kept master: no login but the count's own.
    let out = env.vds(&["status", "--keep-connections=30s"]);
    assert_ok(&out);
    assert_row(&out, "h1 unit vds-relay.service ok active");
    let c2 = logins(1);
    assert_eq!(
        c2 - c1,
        1,
        "status --keep-connections reused the deploy's connection"
    );
    // Without the flag a command opens (and closes) its own.
    assert_ok(&env.vds(&["status"]));
    assert_eq!(logins(1) - c2, 2);
    close_kept_masters();
}

/// One login runs every script of a command in turn: each script's exit status, standard
/// output and standard error come back apart and exact, `exit` ends only its own script, a
/// script that reads standard input reads nothing (not the next script), and the whole
/// exchange is one login on the host.
#[test]
fn one_login_runs_every_script_in_turn_and_keeps_them_apart() {
    use vds_proxy::transport::{self, ConnectOptions};
    let inv = vds_proxy::inventory::from_str(
        Path::new("one-login.json"),
        r#"{"nodes": [{"name": "h1", "public_ip": "10.213.1.2"}]}"#,
        &vds_proxy::roles::all().sections(),
    )
    .expect("valid inventory");
    let settings = vds_proxy::settings::Settings {
        ssh_key: Some(format!("{TESTBED}/id_ed25519").into()),
        known_hosts: Some(format!("{TESTBED}/known_hosts").into()),
        ..Default::default()
    };
    let opts = ConnectOptions::new(&settings, false);
    let before = logins(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outs = rt.block_on(async {
        let t = transport::connect(inv.node("h1").unwrap(), &opts)
            .await
            .expect("connects");
        let mut outs = Vec::new();
        for script in [
            "printf 'no newline'; echo oops >&2; exit 3",
            "cat; echo \"read: $?\"",
            "cd /tmp; x=1",
            "pwd; echo \"x=${x:-unset}\"; printf 'a\\nb\\n'",
        ] {
            outs.push(t.run(script).await.expect("runs"));
        }
        outs
    });
    assert_eq!(
        (
            outs[0].status,
            outs[0].stdout.as_str(),
            outs[0].stderr.as_str()
        ),
        (3, "no newline", "oops\n")
    );
    assert_eq!((outs[1].status, outs[1].stdout.as_str()), (0, "read: 0\n"));
    assert_eq!(
        (
            outs[3].status,
            outs[3].stdout.as_str(),
            outs[3].stderr.as_str()
        ),
        (0, "/root\nx=unset\na\nb\n", ""),
        "each script starts afresh: no directory or variable from the one before"
    );
    assert_eq!(logins(1) - before, 2, "one login (plus the count's own)");
}

/// The `systemd` template filter, read back by systemd itself: hundreds of generated
/// values go into one unit as `Environment=` assignments through the filter; the unit runs
/// `env -0`, and every variable holds exactly its value, with no other variable added.
#[test]
fn systemd_environment_values_read_back_as_one_value_each() {
    use vds_proxy::templates::{systemd_holds, systemd_quote};
    let _env = Env::new("systemd-escape");
    // What systemd cannot hold (NUL, noncharacters) is refused by the filter, never written.
    let (values, refused): (Vec<String>, Vec<String>) = common::strings(0x7379_7374_656d, 400)
        .into_iter()
        .partition(|v| systemd_quote(v.clone()).is_ok());
    for v in &refused {
        assert!(v.chars().any(|c| !systemd_holds(c)), "{v:?} was refused");
    }
    assert!(values.len() > 100, "only {} values to check", values.len());
    let mut unit = String::from("[Service]\nType=oneshot\n");
    for (i, v) in values.iter().enumerate() {
        unit += &format!(
            "Environment={}\n",
            systemd_quote(format!("V{i}={v}")).unwrap()
        );
    }
    unit += "ExecStart=/usr/bin/env -0\nStandardOutput=file:/run/vds-escape-test.env\n";
    let out = ssh_with_input(
        1,
        "cat > /run/systemd/system/vds-escape-test.service && systemctl daemon-reload && \
         rm -f /run/vds-escape-test.env && systemctl start vds-escape-test.service && \
         base64 -w0 /run/vds-escape-test.env; systemctl stop vds-escape-test.service; \
         rm -f /run/systemd/system/vds-escape-test.service /run/vds-escape-test.env; systemctl daemon-reload",
        unit.as_bytes(),
    );
    assert_ok(&out);
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(stdout(&out).trim())
        .unwrap();
    let seen: std::collections::BTreeMap<String, String> = raw
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let e = String::from_utf8(e.to_vec()).unwrap();
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .filter(|(k, _)| k.starts_with('V') && k[1..].bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(seen.len(), values.len(), "a value added or lost a variable");
    for (i, v) in values.iter().enumerate() {
        assert_eq!(seen.get(&format!("V{i}")), Some(v), "V{i}");
    }
}

/// The `systemd_escape` filter (for a checked `Description=`: one line, no backslash), read
/// back by systemd: each value as the description of a unit of its own, as
/// `systemctl show` has it.
#[test]
fn systemd_descriptions_read_back_as_written() {
    use vds_proxy::templates::systemd_escape;
    let _env = Env::new("systemd-describe");
    let holdable = common::holdable(|c| {
        c != '\\' && !c.is_control() && vds_proxy::templates::systemd_holds(c)
    });
    let values: Vec<String> = common::strings_of(&holdable, 0x6465_7363, 120)
        .into_iter()
        .filter(|v| {
            !v.is_empty()
                && !v.contains('\\')
                && v.chars()
                    .all(|c| !c.is_control() && vds_proxy::templates::systemd_holds(c))
                && v.trim() == v
        })
        .take(40)
        .collect();
    assert!(values.len() >= 20, "only {} values", values.len());
    let mut script = String::new();
    let mut names = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let unit = format!("vds-describe-{i}.service");
        let text = format!(
            "[Unit]\nDescription={}\n[Service]\nExecStart=/bin/true\n",
            systemd_escape(v.clone())
        );
        script += &format!(
            "echo {} | base64 -d > /run/systemd/system/{unit}\n",
            b64(&text)
        );
        names.push(unit);
    }
    script += &format!(
        "systemctl daemon-reload && for u in {0}; do systemctl show -p Description --value $u | base64 -w0; echo; done; \
         cd /run/systemd/system && rm -f {0} && systemctl daemon-reload",
        names.join(" ")
    );
    let out = ssh(1, &script);
    assert_ok(&out);
    use base64::Engine as _;
    let seen: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            let raw = base64::engine::general_purpose::STANDARD.decode(l).unwrap();
            String::from_utf8(raw)
                .unwrap()
                .trim_end_matches('\n')
                .to_string()
        })
        .collect();
    assert_eq!(seen, values);
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `logs` reads the managed units of two nodes at once, each line prefixed with its node
/// and secrets masked; `-f` shows new lines of both as they come and stops cleanly on
/// Ctrl-C, leaving nothing running on the nodes.
#[test]
fn logs_follow_two_nodes_at_once_and_stop_on_ctrl_c() {
    let env = Env::new("logs");
    env.inventory(TWO_ROUTES);
    let secret = "0123456789abcdef0123456789abcdef";
    env.add_sections(&format!(
        r#""services": [{{"name": "talker", "node": "h2", "replicas": 1, "base_port": 10400,
            "secret": "{secret}",
            "exec": ["/bin/sh", "-c", "echo serving with {{secret}}; exec socat TCP-LISTEN:{{port}},fork,reuseaddr EXEC:cat"]}}]"#
    ));
    assert_ok(&env.vds(&["deploy"]));
    let out = env.vds(&["logs", "-n", "20"]);
    assert_ok(&out);
    let all = stdout(&out);
    assert!(all.lines().any(|l| l.starts_with("h1 | ")), "{all}");
    assert!(
        all.contains("h2 | ") && all.contains("serving with <redacted>"),
        "{all}"
    );
    assert!(!all.contains(secret), "{all}");
    let out = env.vds(&["logs", "--unit", "sshd.service"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let mut child = env
        .command(&[
            "logs",
            "-f",
            "-n",
            "1",
            "--unit",
            "vds-relay.service",
            "--unit",
            "talker@1.service",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        })
    };
    let wait_for = |what: &str, pred: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !lines.lock().unwrap().iter().any(|l| pred(l)) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {what} in: {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    // Something of each node first, then what happens on both while it follows.
    wait_for("first h2 line", &|l| l.starts_with("h2 | "));
    let before = lines.lock().unwrap().len();
    assert_eq!(echo(&ip(1), 8443), "ping through vds-proxy\n");
    assert_ok(&ssh(2, "systemctl restart talker@1.service"));
    wait_for("new relay line of h1", &|l| {
        l.starts_with("h1 | ") && l.contains("route=web-8443")
    });
    wait_for("restart of h2's replica", &|l| {
        l.starts_with("h2 | ") && l.contains("serving with <redacted>")
    });
    assert!(lines.lock().unwrap().len() > before);
    assert!(!lines.lock().unwrap().iter().any(|l| l.contains(secret)));

    // Ctrl-C: it ends at once and cleanly, and no journal reader is left on the nodes.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logs -f did not stop on Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    reader.join().unwrap();
    for i in 1..=2 {
        assert!(!ssh(i, "pgrep -x journalctl").status.success(), "h{i}");
    }
}

// Each system's real-host tests, from its folder (`src/roles/<name>/testbed.rs`; listed by
// build.rs).
include!(concat!(env!("OUT_DIR"), "/system_testbed_tests.rs"));

#[path = "testbed/faults.rs"]
mod faults;

/// While applies write a secret (a replica's environment file, its value changed each
/// time), another user of the host tries all the time to read what a transaction stages and
/// the apply's log: it sees the transaction directory come and go, and never reads the value.
#[test]
fn staged_secrets_are_never_readable_by_other_users() {
    let env = Env::new("staged-secret");
    env.inventory("[]");
    env.add_sections(
        r#""services": [{"name": "sec", "node": "h1", "replicas": 1, "base_port": 10400,
            "secret": {"env": "VDS_TEST_STAGED_SECRET"},
            "exec": ["/usr/bin/socat", "TCP-LISTEN:{port},fork,reuseaddr", "EXEC:cat"]}]"#,
    );
    // As nobody: every 10 ms, note whether a transaction is there and read all it can.
    let spy = "rm -f /tmp/spy.*; setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '\
        while [ ! -e /tmp/spy.stop ]; do \
          [ -d /var/lib/vds-proxy/txn ] && echo txn >> /tmp/spy.seen; \
          cat /var/lib/vds-proxy/txn/new/*/* /var/lib/vds-proxy/txn/*/* /run/vds-proxy-apply.log \
            >> /tmp/spy.read 2>/dev/null; sleep 0.01; \
        done' >/dev/null 2>&1 &";
    assert_ok(&ssh(1, spy));
    let values: Vec<String> = (0..4).map(|i| format!("5ec2e7{i:020}5ec2e7")).collect();
    for v in &values {
        let out = env
            .command(&["deploy"])
            .env("VDS_TEST_STAGED_SECRET", v)
            .output()
            .unwrap();
        assert_ok(&out);
    }
    assert_ok(&ssh(1, "touch /tmp/spy.stop; sleep 0.2"));
    let seen = stdout(&ssh(1, "cat /tmp/spy.seen 2>/dev/null | wc -l"))
        .trim()
        .to_string();
    assert!(
        seen.parse::<u32>().unwrap_or(0) > 0,
        "the other user never saw a transaction: the test proves nothing"
    );
    let read = stdout(&ssh(1, "cat /tmp/spy.read 2>/dev/null; rm -f /tmp/spy.*"));
    for v in &values {
        assert!(
            !read.contains(v.as_str()),
            "another user read a staged secret"
        );
    }
    env.inventory("[]");
    assert_ok(&env.vds(&["remove"]));
}

/// Ctrl-C during a deploy, one host at a time: the first press starts no more hosts and
/// lets the one applying finish (it ends new, the others untouched and reported as not
/// started); a second press leaves the host applying to finish on its own, names it, exits
/// 130 — and that host still ends entirely new without vds-proxy.
#[test]
fn ctrl_c_once_waits_for_the_running_host_twice_leaves_it_to_finish_alone() {
    let env = Env::new("ctrl-c");
    let routes = |port: u16| {
        format!(
            r#"[{{"port": {port}, "proxy_node": "h1", "target_node": "h2", "target_port": 9000, "service": "web"}},
               {{"port": {port}, "proxy_node": "h3", "target_node": "h2", "target_port": 9000, "service": "web3"}}]"#
        )
    };
    env.inventory(&routes(8443));
    assert_ok(&env.vds(&["deploy"]));
    let interrupt = |presses: u32, port: u16| {
        env.inventory(&routes(port));
        // h1 first (inventory order), one host at a time; pressed once h1 applies.
        let watcher = ssh_command(1, UNTIL_AN_APPLY_RUNS).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let child = env
            .command(&["deploy", "--parallel", "1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            watcher.wait_with_output().unwrap().status.success(),
            "h1 never applied"
        );
        for _ in 0..presses {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    };

    let out = interrupt(1, 8453);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_error_says(
        &out,
        "interrupted: no more hosts are started; waiting for h1",
    );
    assert_says(&out, "not started: the deploy was interrupted (Ctrl-C)");
    assert_eq!(echo(&ip(1), 8453), "ping through vds-proxy\n");
    assert_eq!(
        echo(&ip(3), 8443),
        "ping through vds-proxy\n",
        "h3 was not to be touched"
    );

    let out = interrupt(2, 8463);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert_error_says(&out, "interrupted again: left to finish on their own: h1.");
    // h1 ends entirely new by itself: nothing of its transaction left, the new port serves,
    // and a dry run of this version finds nothing to do on it.
    assert!(
        apply_settled(1, std::time::Duration::from_secs(60)).is_some(),
        "h1 did not finish its apply"
    );
    assert_eq!(echo(&ip(1), 8463), "ping through vds-proxy\n");
    let out = env.vds(&["deploy", "--dry-run", "--detailed-exitcode", "--node", "h1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    env.inventory("[]");
    assert_ok(&env.vds(&["remove"]));
}
