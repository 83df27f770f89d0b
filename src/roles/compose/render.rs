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
    let tmp = tempfile::Builder::new().prefix("vds-compose-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
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
}

/// `$` in environment values, commands and healthchecks is doubled in the compose file,
/// so podman-compose's interpolation gives the container the text as written.
#[test]
fn dollar_signs_are_escaped_for_compose_interpolation() {
    let tmp = tempfile::Builder::new().prefix("vds-compose-dollar-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
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
}

const USER_FILE_EXAMPLE: &str = "src/roles/compose/example/nodes.json";

/// The app from a user's own compose file, planned: its snapshot (the secrets are never
/// in it).
#[test]
fn user_compose_file_example_plan() {
    let (inv, plan) = plan_of(USER_FILE_EXAMPLE);
    let text = show::plan_text(&inv, &plan);
    for secret in ["example-db-password", "example-bot-token", "LOG_LEVEL"] {
        assert!(!text.contains(secret), "{secret} in the plan's text");
    }
    insta::assert_snapshot!("user_compose_file_text", text);
}

/// The user's compose file is shipped byte for byte, its env file and the `.env` (with the
/// app's secret_env added) are 0600 secrets beside it, and the app tool starts the
/// services in the order `depends_on` gives, each waiting for those that must be healthy.
#[test]
fn a_users_compose_file_ships_unchanged_with_its_env_files() {
    let (_, plan) = plan_of(USER_FILE_EXAMPLE);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/roles/compose/example/shop");
    let files = &plan.hosts[0].resources;
    let get = |p: &str| {
        files
            .iter()
            .find(|r| r.path == format!("/etc/vds-proxy/apps/shop/{p}"))
            .unwrap_or_else(|| panic!("{p} is not in the plan"))
    };
    assert_eq!(
        get("compose.yaml").text_content().unwrap(),
        std::fs::read_to_string(root.join("docker-compose.yml")).unwrap()
    );
    let backend = get("backend.env");
    assert_eq!(
        (backend.text_content().unwrap(), backend.mode, backend.secret),
        (
            std::fs::read_to_string(root.join("backend.env"))
                .unwrap()
                .as_str(),
            0o600,
            true
        )
    );
    let dotenv = get(".env");
    assert_eq!((dotenv.mode, dotenv.secret), (0o600, true));
    let text = dotenv.text_content().unwrap();
    assert!(text.starts_with("# Read by Compose"), "{text}");
    assert!(
        text.contains("TAG=1.4.2\n")
            && text.contains("POSTGRES_PASSWORD='example-db-password'\n")
            && text.contains("BOT_TOKEN='123456:example-bot-token'\n"),
        "{text}"
    );
    let conf = get("app.conf").text_content().unwrap();
    let services: Vec<&str> = conf.lines().filter(|l| l.starts_with("service ")).collect();
    assert_eq!(
        services,
        [
            "service db health",
            "service backend health db",
            "service bot - backend",
            "service frontend -",
        ]
    );
    assert!(conf.contains("\nengine docker\n"), "{conf}");
    assert!(
        conf.contains("\nimage ghcr.io/example/shop-backend:1.4.2\n"),
        "the image as Compose reads it, ${{TAG}} from the .env: {conf}"
    );
}

/// What a user's compose file may not do is refused, each with its place in the file, all
/// at once, before anything is planned.
#[test]
fn a_users_compose_file_that_would_break_the_rules_is_refused_with_its_places() {
    let tmp = tempfile::Builder::new().prefix("vds-user-compose-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("app/compose.yml"),
        r#"
services:
  web:
    image: localhost/web:1
    privileged: true
    ports: ["80", "8080:80/udp", "127.0.0.1:9000:9000"]
    volumes: ["/var/run/docker.sock:/var/run/docker.sock", "./conf:/conf", "/etc/passwd:/etc/passwd", "cache:/cache"]
  sidecar:
    build: .
  tool:
    image: localhost/tool:${TAG}
    network_mode: host
    env_file: [missing.env]
    depends_on: [nothere]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("nodes.json"),
        r#"{"nodes": [{"name": "a"}], "apps": [{"name": "x", "node": "a", "engine": "docker", "compose_file": "app/compose.yml"}]}"#,
    )
    .unwrap();
    let errors = inventory::load(&dir.join("nodes.json"), &roles::all().sections())
        .expect_err("refused")
        .0
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect::<Vec<_>>();
    let wanted = [
        "services.web.privileged: a privileged container",
        "services.web.ports[0]: \"80\" publishes the container's port on a port the engine picks at random",
        "services.web.ports[1]: \"8080:80/udp\" is a udp port",
        "services.web.volumes[0]: binds \"/var/run/docker.sock\" of the node, which is in /var/run",
        "services.web.volumes[1]: binds \"./conf\", a path relative to the compose file",
        "services.web.volumes[2]: binds \"/etc/passwd\" of the node, which is in /etc, which a container may only read",
        "services.web.volumes[3]: names the volume \"cache\", which the file's top-level \"volumes\" does not declare",
        "services.sidecar.build: vds-proxy does not build images",
        "services.tool.network_mode: \"host\" puts the container on the node's own network",
        "services.tool.image: \"localhost/tool:${TAG}\" uses ${TAG}, which the .env beside the compose file does not set",
        "services.tool.depends_on[0]: \"nothere\" is not another service of this file; expected one of: sidecar, web",
        "cannot read missing.env",
    ];
    for w in wanted {
        assert!(
            errors.iter().any(|e| e.starts_with("$.apps[0].compose_file") && e.contains(w)),
            "{w} not in:\n{}",
            errors.join("\n")
        );
    }
    assert!(
        !errors.iter().any(|e| e.contains("9000")),
        "127.0.0.1:9000:9000 is fine: {errors:#?}"
    );
}

/// The ports a user's compose file publishes on every address are claimed, so the node's
/// firewall opens them; those bound to 127.0.0.1 stay closed.
#[test]
fn the_firewall_opens_what_a_users_compose_file_publishes() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/roles/compose/example");
    let tmp = tempfile::Builder::new().prefix("vds-user-compose-fw-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("shop")).unwrap();
    for f in ["docker-compose.yml", ".env", "backend.env"] {
        std::fs::copy(example.join("shop").join(f), dir.join("shop").join(f)).unwrap();
    }
    let nodes = std::fs::read_to_string(example.join("nodes.json")).unwrap();
    let nodes = nodes.replacen(
        "\"apps\":",
        "\"firewalls\": [{\"node\": \"app-1\"}],\n  \"apps\":",
        1,
    );
    std::fs::write(dir.join("nodes.json"), nodes).unwrap();
    let (_, plan) = plan_of(dir.join("nodes.json").to_str().unwrap());
    let rules = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path == "/etc/vds-proxy/firewall.nft")
        .and_then(|r| r.text_content())
        .expect("the firewall's rules");
    assert!(
        rules.contains("tcp dport 80 accept comment \"$.apps[0].compose_file: shop/docker-compose.yml at services.frontend.ports[0]\""),
        "{rules}"
    );
    assert!(!rules.contains("8000"), "{rules}");
}
