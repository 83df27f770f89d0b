//! The node registry on a real test host (included in `tests/testbed.rs`, whose harness it
//! uses): nodes and farms by role, data kept across restarts, health that tells the truth
//! about its store, and rate-limited guessing of tokens.

use super::*;

/// `n` requests over one connection with a wrong token: the status code of each.
fn wrong_token_burst(n: usize) -> Vec<String> {
    let url = format!("http://{}:8080/api/farms", super::ip(1));
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-m",
            "20",
            "-H",
            "Authorization: Bearer not-a-token-of-this-registry",
        ])
        .args(
            std::iter::repeat_n(
                ["-o", "/dev/null", "-w", "%{http_code}\\n", url.as_str()],
                n,
            )
            .flatten(),
        )
        .output()
        .unwrap();
    stdout(&out).lines().map(String::from).collect()
}

/// With a database its service cannot write, `/healthz` answers 503 naming the file (it
/// said ok while every write failed); writes fail naming the file in the log; once
/// writable again, healthy again. Hundreds of wrong-token requests from one address get
/// 429s after the first tens (they were all 401s, unlimited).
#[test]
fn the_registry_health_includes_its_store_and_wrong_tokens_are_limited() {
    let env = Env::new("registry-faults");
    registry_inventory(&env, false, "");
    assert_ok(&env.vds(&["deploy"]));
    let (code, body) = api("GET", "/healthz", None, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["store"], "writable");

    let codes = wrong_token_burst(400);
    assert_eq!(codes.len(), 400);
    let limited = codes.iter().filter(|c| *c == "429").count();
    let denied = codes.iter().filter(|c| *c == "401").count();
    assert_eq!(limited + denied, 400, "{codes:?}");
    assert!(
        denied >= 50 && limited >= 100,
        "401: {denied}, 429: {limited}"
    );
    // A valid token is not held back by someone else's guessing.
    assert_eq!(api("GET", "/api/farms", Some(READER), None).0, 200);

    // The database made read-only for the service (DynamicUser), which then restarts.
    let db = "/var/lib/private/vds-registry/registry.db";
    assert_ok(&ssh(
        1,
        &format!("chmod 0444 {db} && systemctl restart vds-registry.service"),
    ));
    let mut health = (0, String::new());
    for _ in 0..50 {
        health = api("GET", "/healthz", None, None);
        if health.0 != 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(health.0, 503, "{health:?}");
    assert!(health.1.contains("does not take writes"), "{}", health.1);
    assert!(health.1.contains("registry.db"), "{}", health.1);
    let (code, _) = api(
        "POST",
        &format!("/api/farms/{}", super::ip(2)),
        Some(super::ADMIN),
        Some("{}"),
    );
    assert_eq!(code, 500);
    let log = stdout(&ssh(
        1,
        "journalctl -u vds-registry.service --no-pager -n 50 -o cat",
    ));
    assert!(log.contains("registry.db"), "the log names the file: {log}");

    // SQLite made its shared-memory file with the database's mode: all get theirs back.
    assert_ok(&ssh(
        1,
        &format!(
            "systemctl stop vds-registry.service && chmod 0600 {db}* && systemctl start vds-registry.service"
        ),
    ));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(api("GET", "/healthz", None, None).0, 200);
    assert_ok(&env.vds(&["remove", "--purge-data"]));
}

#[test]
fn the_registry_serves_nodes_and_farms_with_roles_and_keeps_its_data() {
    let env = Env::new("registry");
    assert_ok(&ssh(
        1,
        "rm -rf /var/lib/private/vds-registry /var/lib/vds-registry",
    ));
    registry_inventory(&env, true, "");
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(echo(&ip(1), 8443), "ping through vds-proxy\n");

    // Anyone: health. Tokens: the nodes, never SSH details.
    let (code, body) = api("GET", "/healthz", None, None);
    assert_eq!((code, json(&body)["status"].as_str()), (200, Some("ok")));
    let (code, body) = api("GET", "/v1/web/nodes?active=true", Some(READER), None);
    assert_eq!(code, 200, "{body}");
    let names: Vec<String> = json(&body)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["h1", "h2", "h3"]);
    assert!(
        !body.contains("ssh") && !body.contains("public_ip"),
        "{body}"
    );
    assert_eq!(api("GET", "/v1/web/nodes", None, None).0, 401);
    assert_eq!(
        api(
            "GET",
            "/v1/web/nodes",
            Some("not-a-token-0123456789abcdef"),
            None
        )
        .0,
        401
    );

    // Roles: a farm registers and beats for its own address only.
    let h2 = format!("/api/farms/{}", ip(2));
    let h3 = format!("/api/farms/{}", ip(3));
    let reg = r#"{"name": "farm h2", "metadata": {"gpus": 2}}"#;
    assert_eq!(api("POST", &h2, Some(FARM2), Some(reg)).0, 201);
    assert_eq!(api("POST", &h2, Some(FARM2), Some(reg)).0, 200);
    let (code, body) = api("POST", &h3, Some(FARM2), Some(reg));
    assert_eq!(code, 403, "{body}");
    assert_eq!(json(&body)["error"], "forbidden");
    assert_eq!(api("POST", &h2, Some(READER), Some(reg)).0, 403);
    assert_eq!(api("GET", "/api/farms", Some(FARM2), None).0, 403);
    let (code, body) = api("POST", &format!("{h2}/heartbeat"), Some(FARM2), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["state"], "online");
    assert_eq!(json(&body)["heartbeats"], 1);
    assert_eq!(
        api("POST", &format!("{h3}/heartbeat"), Some(FARM3), None).0,
        404
    );
    assert_eq!(api("DELETE", &h2, Some(FARM2), None).0, 403);

    // Bad input gets a clean 4xx JSON error.
    let (code, body) = api("POST", &h3, Some(ADMIN), Some("{\"name\": "));
    assert_eq!(
        (code, json(&body)["error"].as_str()),
        (400, Some("bad_json"))
    );
    let (code, body) = api(
        "POST",
        &h3,
        Some(ADMIN),
        Some(r#"{"heartbeat_interval": 0}"#),
    );
    assert_eq!(
        (code, json(&body)["error"].as_str()),
        (400, Some("bad_interval"))
    );
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100_000));
    let (code, body) = api("POST", &h3, Some(ADMIN), Some(&big));
    assert_eq!(
        (code, json(&body)["error"].as_str()),
        (413, Some("too_large"))
    );
    assert_eq!(
        api("POST", "/api/farms/not-an-ip", Some(ADMIN), Some("{}")).0,
        400
    );
    assert_eq!(api("PUT", "/api/farms", Some(ADMIN), None).0, 405);
    assert_eq!(api("GET", "/nope", Some(ADMIN), None).0, 404);

    // The per-token rate limit (3/s for farm-h3).
    let codes: Vec<u16> = (0..6)
        .map(|_| api("GET", &h3, Some(FARM3), None).0)
        .collect();
    assert!(codes.contains(&404) && codes.contains(&429), "{codes:?}");

    // Heartbeat states: an admin registers h3 with a 1 s interval; stale after 1 s,
    // offline after 3 s without a beat.
    let (code, body) = api(
        "POST",
        &h3,
        Some(ADMIN),
        Some(r#"{"heartbeat_interval": 1}"#),
    );
    assert_eq!(code, 201, "{body}");
    std::thread::sleep(std::time::Duration::from_millis(1600));
    assert_eq!(
        json(&api("GET", &h3, Some(READER), None).1)["state"],
        "stale"
    );
    std::thread::sleep(std::time::Duration::from_millis(1800));
    assert_eq!(
        json(&api("GET", &h3, Some(READER), None).1)["state"],
        "offline"
    );
    let (_, body) = api("GET", "/api/farms?state=offline", Some(READER), None);
    assert_eq!(json(&body)["farms"][0]["ip"], ip(3));

    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(&out, "h1 registry ok answers on :8080; farms:");
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_row(&out, "h1 0 ok (no changes)");

    // A new token is a reload: same process, the farms still there, the token works.
    let before = invocation(1, "vds-registry.service");
    registry_inventory(
        &env,
        true,
        r#", {"name": "ci", "role": "reader", "token": "ci-token-0123456789abcdef0123"}"#,
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "reloaded vds-registry.service");
    assert_eq!(invocation(1, "vds-registry.service"), before);
    let (code, body) = api(
        "GET",
        "/api/farms",
        Some("ci-token-0123456789abcdef0123"),
        None,
    );
    assert_eq!(
        (code, json(&body)["farms"].as_array().unwrap().len()),
        (200, 2)
    );

    // A restart keeps the data (SQLite in the unit's state directory).
    assert_ok(&ssh(1, "systemctl restart vds-registry.service"));
    let (code, body) = api("GET", &h2, Some(READER), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["metadata"]["gpus"], 2);
    assert_eq!(json(&body)["heartbeats"], 1);

    // Hardened like the relay; the token never reaches the node or the log.
    let out = stdout(&ssh(
        1,
        "systemd-analyze security --no-pager vds-registry.service | tail -1",
    ));
    assert!(out.contains("OK") || out.contains("SAFE"), "{out}");
    let leaked = stdout(&ssh(
        1,
        &format!(
            "grep -rl -e {READER} -e {FARM2} /etc/vds-proxy /var/lib/private/vds-registry; journalctl -u vds-registry | grep -c -e {READER} -e {FARM2}"
        ),
    ));
    assert_eq!(leaked.trim(), "0", "a token reached the node: {leaked}");
    let log = stdout(&ssh(
        1,
        "journalctl -u vds-registry -o cat | grep -c 'token=farm-h2'",
    ));
    assert!(log.trim().parse::<u32>().unwrap() >= 3, "access log: {log}");

    // Load: 32 clients with keep-alive connections.
    let load = registry_client::run(
        &format!("{}:8080", ip(1)),
        &registry_client::request("GET", "/api/farms", ADMIN),
        32,
        200,
    );
    println!(
        "registry load: 32 clients x 200 GET /api/farms: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        load.per_second, load.p50_ms, load.p99_ms
    );
    assert_eq!(load.failures, 0);

    // The route goes, the registry stays (and so does the binary it runs from).
    registry_inventory(&env, false, "");
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_eq!(api("GET", "/healthz", None, None).0, 200);
    assert_eq!(
        stdout(&ssh(
            1,
            "systemctl is-active vds-relay.service vds-registry.service"
        )),
        "inactive\nactive\n"
    );

    // remove: unit, config and binary go; the farms' database is kept.
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    let files = stdout(&ssh(
        1,
        "ls /etc/vds-proxy/registry.toml /usr/local/lib/vds-proxy /etc/systemd/system/vds-registry.service 2>&1; ls /var/lib/private/vds-registry",
    ));
    assert_eq!(
        files.matches("No such file or directory").count(),
        3,
        "{files}"
    );
    assert!(files.contains("registry.db"), "{files}");
    assert_eq!(api("GET", "/healthz", None, None).0, 0, "nothing answers");

    // --purge-data deletes the database too.
    let out = env.vds(&["remove", "--purge-data"]);
    assert_ok(&out);
    assert!(
        text(&out).contains("h1: deleted /var/lib/private/vds-registry"),
        "{}",
        text(&out)
    );
    assert_says(
        &ssh(
            1,
            "ls -d /var/lib/private/vds-registry /var/lib/vds-registry 2>&1",
        ),
        "No such file",
    );
}
