//! The compose system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// The web example's compose file passes the check it must pass before it goes live (and
/// a file without an image does not); ports without `publish` are bound to loopback, `$`
/// reaches the container as written, secret values are only in the 0600 env files; the
/// app's unit passes `systemd-analyze verify` and restarts when its files change.
#[test]
fn rendered_compose_files_pass_their_check_and_keep_secrets_out() {
    use vds_proxy::roles::compose::compose_file::CHECK;
    let (inv, plan) = plan_of("examples/web.json");
    let files = &plan.hosts[0].resources;
    let dir = std::env::temp_dir().join(format!("vds-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let compose = files
        .iter()
        .find(|r| r.kind == vds_proxy::roles::compose::compose_file::COMPOSE)
        .unwrap();
    let text = compose.text_content().unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, text).unwrap();
    must_pass(
        &["python3", "-c", CHECK, "apt-get install python3-yaml"],
        &file,
    );
    let bad = dir.join("no-image.yaml");
    std::fs::write(&bad, text.replace("image:", "labels:")).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", CHECK])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no image"));

    assert!(text.contains("- \"127.0.0.1:8000:8000\""), "{text}");
    assert!(!text.contains("0.0.0.0:"), "nothing is published: {text}");
    for s in vds_proxy::roles::compose::of(&inv)
        .iter()
        .flat_map(|a| &a.services)
        .flat_map(|s| &s.secret_env)
    {
        assert!(!text.contains(&s.1), "secret {} in the compose file", s.0);
    }
    let envs: Vec<_> = files
        .iter()
        .filter(|r| r.path.ends_with(".env"))
        .map(|r| (r.path.as_str(), r.mode, r.secret))
        .collect();
    assert_eq!(
        envs,
        [
            ("/etc/vds-proxy/apps/shop/db.env", 0o600, true),
            ("/etc/vds-proxy/apps/shop/backend.env", 0o600, true),
            ("/etc/vds-proxy/apps/shop/bot.env", 0o600, true),
        ]
    );

    let unit = files
        .iter()
        .find(|r| r.path.ends_with("/vds-app-shop.service"))
        .unwrap();
    let file = dir.join("vds-app-shop.service");
    std::fs::write(&file, unit.text_content().unwrap()).unwrap();
    must_pass(VERIFY, &file);
    for r in [compose, unit] {
        assert!(
            format!("{:?}", r.on_change).contains("Restart(\"vds-app-shop.service\")"),
            "{}",
            r.path
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `$` in environment values, commands and healthchecks is doubled in the compose file,
/// so podman-compose's interpolation gives the container the text as written.
#[test]
fn dollar_signs_are_escaped_for_compose_interpolation() {
    let dir = std::env::temp_dir().join(format!("vds-compose-dollar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nodes.json");
    std::fs::write(
        &path,
        r#"{"nodes": [{"name": "a"}], "apps": [{"name": "x", "node": "a", "services": [
            {"name": "s", "image": "localhost/s:1", "env": {"PRICE": "$5 ${HOME}"},
             "command": ["sh", "-c", "echo $PRICE"], "healthcheck": {"test": "test -n \"$PRICE\""}}]}]}"#,
    )
    .unwrap();
    let inv = inventory::load(&path, &roles::all().sections()).unwrap();
    let t = Templates::new(None, roles::all().templates()).unwrap();
    let plan = plan::build(&inv, &t, &fake_relay(), &Sections::default(), &roles::all()).unwrap();
    let text = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.kind == vds_proxy::roles::compose::compose_file::COMPOSE)
        .and_then(|r| r.text_content())
        .unwrap()
        .to_string();
    assert!(text.contains(r#""PRICE": "$$5 $${HOME}""#), "{text}");
    assert!(
        text.contains(r#"command: ["sh", "-c", "echo $$PRICE"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#"test: ["CMD-SHELL", "test -n \"$$PRICE\""]"#),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
