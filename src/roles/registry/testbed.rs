//! The node registry on a real test host (included in `tests/testbed.rs`, whose harness it
//! uses): its health tells the truth about its store, and guessing tokens is rate-limited.

use super::{Env, READER, api, assert_ok, json, registry_inventory, ssh, stdout};

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
