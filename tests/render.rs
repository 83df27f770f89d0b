//! Rendering and planning are pure: snapshot the plans of the examples, check determinism,
//! and run the rendered units through `systemd-analyze verify`.

use std::path::{Path, PathBuf};

use vds_proxy::inventory;
use vds_proxy::inventory::Sections;
use vds_proxy::plan::{self, Plan};
use vds_proxy::resources::Kind;
use vds_proxy::resources::binary::Artifact;
use vds_proxy::roles;
use vds_proxy::roles::wireguard::{self, PublicKeys};
use vds_proxy::show;
use vds_proxy::templates::Templates;

fn fake_relay() -> Artifact {
    Artifact {
        source: PathBuf::from("target/release/vds-proxy"),
        sha256: "0".repeat(64),
        size: 1234,
        arch: "x86_64".into(),
    }
}

/// Stand-ins for the WireGuard public keys read from the nodes: 32 bytes in base64, like
/// real keys, derived from node and interface so snapshots are stable.
fn fake_keys(inv: &inventory::Inventory) -> Sections {
    use base64::Engine as _;
    let mut keys = PublicKeys::default();
    for w in wireguard::of(inv) {
        for m in &w.members {
            let digest =
                vds_proxy::resources::sha256_hex(format!("{}/{}", m.node, w.interface).as_bytes());
            let bytes: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            keys.0.insert(
                (m.node.clone(), w.interface.clone()),
                base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
    }
    let mut prepared = Sections::default();
    prepared.insert(keys);
    prepared
}

/// `systemd-analyze verify` (see [`must_pass`]).
const VERIFY: &[&str] = &[
    "systemd-analyze",
    "verify",
    "--man=no",
    "apt-get install systemd",
];

/// Runs `tool[..n-1] file` (the last element says how to install the tool) and fails the
/// test with the tool's output unless it succeeds; returns its stdout.
fn must_pass(tool: &[&str], file: &Path) -> String {
    let (install, cmd) = tool.split_last().unwrap();
    let out = std::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .arg(file)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; install it: {install}", cmd[0]));
    assert!(
        out.status.success(),
        "{} {}: {}{}",
        cmd.join(" "),
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn plan_of(path: &str) -> (inventory::Inventory, Plan) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The mini-app example keeps its secrets encrypted, to the example key beside it.
    // SAFETY: each test runs in a process of its own (nextest), and reads this variable
    // only here.
    unsafe {
        std::env::set_var(
            "VDS_PROXY_AGE_KEY_FILE",
            root.join("examples/example-age-key.txt"),
        )
    };
    let inv =
        inventory::load(&root.join(path), &roles::all().sections()).expect("example is valid");
    let t = Templates::new(None, roles::all().templates()).unwrap();
    let plan = plan::build(&inv, &t, &fake_relay(), &fake_keys(&inv), &roles::all()).unwrap();
    (inv, plan)
}

#[test]
fn seed_example_plan() {
    let (inv, plan) = plan_of("inventory/nodes.example.json");
    insta::assert_snapshot!("seed_text", show::plan_text(&inv, &plan));
}

#[test]
fn mesh_example_plan() {
    let (inv, plan) = plan_of("examples/mesh.json");
    insta::assert_snapshot!("mesh_text", show::plan_text(&inv, &plan));
    insta::assert_snapshot!("mesh_json", show::plan_json(&plan));
    insta::assert_snapshot!("mesh_routes", vds_proxy::roles::routes::table(&inv));
}

#[test]
fn plans_are_deterministic() {
    let (_, a) = plan_of("examples/mesh.json");
    let (_, b) = plan_of("examples/mesh.json");
    assert_eq!(show::plan_json(&a), show::plan_json(&b));
}

#[test]
fn socat_forwarder_renders_exactly_the_seed_command() {
    let (_, plan) = plan_of("examples/mesh.json");
    let unit = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path == "/etc/systemd/system/socat-proxy-tgapi-30081.service")
        .expect("vds_proxy.sh's unit name");
    assert!(unit.text_content().unwrap().contains(
        "\nExecStart=/usr/bin/socat TCP-LISTEN:30081,fork,reuseaddr TCP:100.64.0.1:30081\n"
    ));
}

#[test]
fn bind_capability_only_below_1024() {
    let (_, plan) = plan_of("examples/mesh.json");
    let relay = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path.ends_with("/vds-relay.service"))
        .unwrap();
    assert!(
        relay
            .text_content()
            .unwrap()
            .contains("AmbientCapabilities=CAP_NET_BIND_SERVICE")
    );
    let (_, seed) = plan_of("inventory/nodes.example.json");
    let relay = seed.hosts[0]
        .resources
        .iter()
        .find(|r| r.path.ends_with("/vds-relay.service"))
        .unwrap();
    let text = relay.text_content().unwrap();
    assert!(!text.contains("CAP_NET_BIND_SERVICE"));
    assert!(text.contains("\nCapabilityBoundingSet=\n"));
}

/// Every rendered unit passes `systemd-analyze verify`. Binaries a unit starts must exist
/// for verify, so the relay path is pointed at the test binary and the replica at /bin/true.
#[test]
fn rendered_units_pass_systemd_analyze_verify() {
    let (_, plan) = plan_of("examples/mesh.json");
    let dir = std::env::temp_dir().join(format!("vds-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for r in plan
        .hosts
        .iter()
        .flat_map(|h| &h.resources)
        .filter(|r| r.kind == Kind::UNIT)
    {
        let text = r
            .text_content()
            .unwrap()
            .replace(
                "/usr/local/lib/vds-proxy/vds-proxy",
                env!("CARGO_BIN_EXE_vds-proxy"),
            )
            .replace("/usr/local/bin/mtproto-proxy", "/bin/true");
        let file = dir.join(r.path.rsplit('/').next().unwrap());
        std::fs::write(&file, text).unwrap();
        must_pass(VERIFY, &file);
        checked += 1;
    }
    assert_eq!(
        checked, 4,
        "relay, socat, replica template and TPROXY units"
    );
}

/// The haproxy drop-in verifies together with Debian's haproxy.service, as the deploy
/// checks it on the host.
#[test]
fn rendered_haproxy_drop_in_passes_systemd_analyze_verify() {
    let (_, plan) = plan_of("examples/mesh.json");
    let dropin = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.kind == Kind::DROPIN)
        .expect("a balancer node gets the haproxy drop-in");
    assert_eq!(
        dropin.path,
        "/etc/systemd/system/haproxy.service.d/vds-proxy.conf"
    );
    let text = dropin.text_content().unwrap();
    assert!(text.contains("AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW\n"));
    assert!(text.contains("User=haproxy\n"));
    let unit = std::fs::read_to_string("/lib/systemd/system/haproxy.service")
        .expect("haproxy must be installed (apt-get install haproxy)");
    let dir = std::env::temp_dir().join(format!("vds-dropin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("haproxy.service");
    std::fs::write(&file, unit + text).unwrap();
    must_pass(VERIFY, &file);
}

/// The TPROXY rule sets load with `iptables-restore --test` (nothing is committed).
#[test]
fn rendered_tproxy_rules_pass_iptables_restore_test() {
    let (_, plan) = plan_of("examples/mesh.json");
    let rules: Vec<_> = plan.hosts[0]
        .resources
        .iter()
        .filter(|r| r.kind == vds_proxy::roles::tproxy::iptables::IPTABLES)
        .collect();
    assert_eq!(rules.len(), 2, "frontend rules and backend replies");
    let all: String = rules.iter().map(|r| r.text_content().unwrap()).collect();
    assert!(all.contains(
        "-A VDS_TPROXY -p tcp --dport 443 -j TPROXY --on-port 443 --tproxy-mark 0x1/0x1\n"
    ));
    assert!(all.contains("-A VDS_TPROXY -p tcp -m socket --transparent -j MARK"));
    assert!(all.contains("-A VDS_TPROXY_OUT -p tcp --sport 10001 -j MARK"));
    for r in rules {
        let file = std::env::temp_dir().join(format!(
            "vds-rules-{}-{}",
            std::process::id(),
            r.path.rsplit('/').next().unwrap()
        ));
        std::fs::write(&file, r.text_content().unwrap()).unwrap();
        must_pass(
            &[
                "iptables-restore",
                "--test",
                "--noflush",
                "apt-get install iptables",
            ],
            &file,
        );
    }
}

/// The rendered haproxy.cfg passes `haproxy -c`, with one server line per replica.
#[test]
fn rendered_haproxy_config_passes_haproxy_check() {
    let (_, plan) = plan_of("examples/mesh.json");
    let cfg = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.kind == vds_proxy::roles::balancer::haproxy::HAPROXY)
        .expect("the balanced service renders haproxy.cfg");
    let text = cfg.text_content().unwrap();
    assert_eq!(text.matches("\n    server mtproxy-").count(), 2);
    // Transparent: the replicas are reached on the node's mesh address, not 127.0.0.1.
    assert!(
        text.contains("    server mtproxy-2 100.64.0.10:10001 check inter 2000 fall 3 rise 2\n")
    );
    assert!(text.contains("source 0.0.0.0 usesrc clientip"));
    let file = std::env::temp_dir().join(format!("vds-haproxy-{}.cfg", std::process::id()));
    std::fs::write(&file, text).unwrap();
    must_pass(&["haproxy", "-c", "-f", "apt-get install haproxy"], &file);
}

/// Every rendered WireGuard config passes `wg-quick strip`, holds no private key, and its
/// drop-in verifies together with wireguard-tools' `wg-quick@.service`.
#[test]
fn rendered_wireguard_configs_pass_wg_quick_strip() {
    let (_, plan) = plan_of("examples/mesh.json");
    let dir = std::env::temp_dir().join(format!("vds-wg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for host in &plan.hosts {
        for r in host
            .resources
            .iter()
            .filter(|r| r.kind == vds_proxy::roles::wireguard::wg_quick::WG_QUICK)
        {
            let text = r.text_content().unwrap();
            assert!(!text.contains("PrivateKey"), "{}", r.path);
            assert_eq!(r.mode, 0o600);
            let file = dir.join("wg0.conf");
            std::fs::write(&file, text).unwrap();
            let stripped = must_pass(
                &["wg-quick", "strip", "apt-get install wireguard-tools"],
                &file,
            );
            assert!(stripped.contains("[Peer]\nPublicKey = "), "{stripped}");
            checked += 1;
        }
        for r in host
            .resources
            .iter()
            .filter(|r| r.kind == Kind::DROPIN && r.path.contains("wg-quick@"))
        {
            let unit = std::fs::read_to_string("/lib/systemd/system/wg-quick@.service")
                .expect("wireguard-tools must be installed (apt-get install wireguard-tools)");
            let file = dir.join("wg-quick@wg0.service");
            std::fs::write(&file, unit + r.text_content().unwrap()).unwrap();
            must_pass(VERIFY, &file);
        }
    }
    assert_eq!(checked, 2, "the hub and its spoke");
}

/// `kubernetes-validate`, installed by `.ci/run` into /var/tmp/vds-kv (or on PATH).
fn kubernetes_validate() -> std::process::Command {
    let venv = "/var/tmp/vds-kv/bin/kubernetes-validate";
    let exe = if Path::new(venv).exists() {
        venv
    } else {
        "kubernetes-validate"
    };
    let mut c = std::process::Command::new(exe);
    c.args(["--strict", "--kubernetes-version", "1.30.0"]);
    c
}

/// Every rendered Kubernetes manifest validates against the official schemas (strict:
/// unknown fields are errors), and a broken one is rejected by the same check.
#[test]
fn rendered_k8s_manifests_validate_against_the_kubernetes_schemas() {
    let (_, plan) = plan_of("examples/mesh.json");
    let dir = std::env::temp_dir().join(format!("vds-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifests: Vec<_> = plan
        .hosts
        .iter()
        .flat_map(|h| &h.resources)
        .filter(|r| r.kind == vds_proxy::roles::k3s::manifest::K8S)
        .collect();
    let kinds: Vec<&str> = manifests
        .iter()
        .flat_map(|r| r.text_content().unwrap().lines())
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "NetworkPolicy",
            "Deployment",
            "Service",
            "Deployment",
            "Service",
            "Secret",
            "Deployment",
            "Service",
            "NetworkPolicy",
            "Job",
            "DaemonSet"
        ]
    );
    for r in &manifests {
        assert!(
            r.path
                .starts_with("/var/lib/rancher/k3s/server/manifests/vds-proxy-tg-")
        );
        let file = dir.join(r.path.rsplit('/').next().unwrap());
        std::fs::write(&file, r.text_content().unwrap()).unwrap();
        let out = kubernetes_validate().arg(&file).output().expect(
            "kubernetes-validate must be installed: python3 -m venv /var/tmp/vds-kv && /var/tmp/vds-kv/bin/pip install kubernetes-validate",
        );
        assert!(
            out.status.success(),
            "{}: {}{}",
            r.path,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let broken = dir.join("broken.yaml");
    let text = manifests[2]
        .text_content()
        .unwrap()
        .replacen("  replicas:", "  replica:", 1);
    std::fs::write(&broken, text).unwrap();
    assert!(
        !kubernetes_validate()
            .arg(&broken)
            .output()
            .unwrap()
            .status
            .success()
    );
}

/// Seed 003 as it runs MTProxy: each replica a `docker run` of the image, published on the
/// node's address for the transparent balancer, the secret only in the 0600 env file.
/// (No Docker engine here: the unit is verified with `docker` standing in as /bin/true.)
#[test]
fn seed_003_containers_render_docker_units() {
    let (inv, plan) = plan_of("examples/seed003.json");
    insta::assert_snapshot!("seed003_text", show::plan_text(&inv, &plan));
    let unit = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path == "/etc/systemd/system/mtproxy@.service")
        .unwrap()
        .text_content()
        .unwrap()
        .to_string();
    assert!(unit.contains(
        "ExecStart=docker run --rm --name mtproxy-%i -p 100.64.0.10:${PORT}:443 --env-file /etc/vds-proxy/mtproxy/%i.env telegrammessenger/proxy:latest\n"
    ));
    assert!(!unit.contains("dd000000000000000000000000000000"));
    let dir = std::env::temp_dir().join(format!("vds-docker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mtproxy@.service");
    std::fs::write(
        &file,
        unit.replace("=docker ", "=/bin/true ")
            .replace("=-docker ", "=-/bin/true ")
            .replace("Requires=docker.service\n", ""),
    )
    .unwrap();
    must_pass(VERIFY, &file);
}

/// Secrets stay out of `show` by structure: every file whose content holds a secret value,
/// or a digest of one (registry.toml's token digests), is marked secret, and the JSON and
/// text plans show neither its content nor its digest (a digest of a weak secret can be
/// reversed with a dictionary). Every example that holds secrets.
#[test]
fn secret_files_show_neither_content_nor_digest() {
    for example in ["examples/mesh.json", "examples/farms.json"] {
        secret_files_of(example);
    }
}

fn secret_files_of(example: &str) {
    let (inv, plan) = plan_of(example);
    let secrets = inv.secrets();
    assert!(secrets.len() >= 2, "{example} holds secrets");
    let digests: Vec<String> = secrets
        .iter()
        .map(|s| vds_proxy::serve::auth::digest(s))
        .collect();
    let resources: Vec<_> = plan.hosts.iter().flat_map(|h| &h.resources).collect();
    for r in &resources {
        let holds = r.text_content().is_some_and(|t| {
            secrets
                .iter()
                .chain(&digests)
                .any(|s| t.contains(s.as_str()))
        });
        assert!(
            !holds || r.secret,
            "{} holds a secret but is not marked",
            r.path
        );
    }
    let json_text = show::plan_json(&plan);
    let text = show::plan_text(&inv, &plan);
    let json: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let mut masked = 0;
    for h in json["hosts"].as_array().unwrap() {
        for r in h["resources"].as_array().unwrap() {
            if r["secret"] == true {
                assert_eq!(r["content"], "<redacted>", "{}", r["path"]);
                assert_eq!(r["sha256"], "<redacted>", "{}", r["path"]);
                masked += 1;
            }
        }
    }
    assert_eq!(masked, resources.iter().filter(|r| r.secret).count());
    for r in resources.iter().filter(|r| r.secret) {
        assert!(
            !json_text.contains(&r.sha256),
            "digest of {} in JSON",
            r.path
        );
        assert!(!text.contains(&r.sha256), "digest of {} in text", r.path);
    }
    for s in secrets.iter().chain(&digests) {
        assert!(
            !json_text.contains(s.as_str()) && !text.contains(s.as_str()),
            "{example}"
        );
    }
}

#[test]
fn web_example_plan() {
    let (inv, plan) = plan_of("examples/web.json");
    insta::assert_snapshot!("web_text", show::plan_text(&inv, &plan));
}

/// The rendered nginx.conf passes `nginx -t` (with test certificates where the node's
/// would be, and logs in a scratch directory).
#[test]
fn rendered_nginx_config_passes_nginx_check() {
    let (_, plan) = plan_of("examples/web.json");
    let conf = plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path == vds_proxy::roles::web::nginx::CONFIG)
        .and_then(|r| r.text_content())
        .unwrap()
        .to_string();
    let dir = std::env::temp_dir().join(format!("vds-nginx-{}", std::process::id()));
    let d = dir.display().to_string();
    for site in ["app", "status"] {
        std::fs::create_dir_all(dir.join(site)).unwrap();
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=t", "-keyout"])
            .arg(dir.join(site).join("privkey.pem"))
            .arg("-out")
            .arg(dir.join(site).join("fullchain.pem"))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl: apt-get install openssl");
        assert!(status.success());
    }
    let conf = conf
        .replace(vds_proxy::roles::web::CERT_DIR, &d)
        .replace("/etc/ssl", &d)
        .replace("/var/log/nginx", &d)
        .replace("/run/nginx.pid", &format!("{d}/nginx.pid"));
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    must_pass(&["nginx", "-t", "-q", "-c", "apt-get install nginx"], &file);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn firewall_rules(plan: &Plan) -> String {
    plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path == vds_proxy::roles::firewall::nftables::RULES)
        .and_then(|r| r.text_content())
        .expect("the node has firewall rules")
        .to_string()
}

/// The rendered nftables rules pass `nft -c` (nftables' own check).
#[test]
fn rendered_firewall_rules_pass_nft_check() {
    let (_, plan) = plan_of("examples/web.json");
    let file = std::env::temp_dir().join(format!("vds-firewall-{}.nft", std::process::id()));
    std::fs::write(&file, firewall_rules(&plan)).unwrap();
    must_pass(&["nft", "-c", "-f", "apt-get install nftables"], &file);
    std::fs::remove_file(&file).unwrap();
}

/// Whatever the inventory says, the SSH port vds-proxy uses is open, and so is every port
/// the node's systems listen on (a route, a WireGuard tunnel) — and nothing else.
#[test]
fn the_firewall_opens_the_ssh_port_and_every_claimed_port() {
    // An app's published port is opened, its loopback-only port (8000) is not.
    let text = r#"{"nodes": [{"name": "a", "public_ip": "203.0.113.1", "ssh_port": 2222},
                             {"name": "b", "public_ip": "203.0.113.2"}],
        "routes": [{"port": 8443, "proxy_node": "a", "target_node": "b", "target_port": 9000, "service": "web"}],
        "wireguard": [{"interface": "wg0", "topology": "hub", "hub": "a", "port": 51820,
                       "members": [{"node": "a", "address": "10.8.0.1/24"}, {"node": "b", "address": "10.8.0.2/24"}]}],
        "apps": [{"name": "shop", "node": "a", "services": [
                  {"name": "web", "image": "localhost/web:1", "ports": ["8000:80"], "publish": ["443:8443"]}]}],
        "firewalls": [{"node": "a"}]}"#;
    let inv = inventory::from_str(Path::new("nodes.json"), text, &roles::all().sections()).unwrap();
    let t = Templates::new(None, roles::all().templates()).unwrap();
    let plan = plan::build(&inv, &t, &fake_relay(), &fake_keys(&inv), &roles::all()).unwrap();
    let rules = firewall_rules(&plan);
    let accepts: Vec<&str> = rules
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("dport"))
        .collect();
    assert_eq!(
        accepts,
        [
            "tcp dport 2222 accept comment \"SSH: vds-proxy connects here\"",
            "tcp dport 443 accept comment \"$.apps[0].services[0].publish[0]\"",
            "tcp dport 8443 accept comment \"$.routes[0].port\"",
            "udp dport 51820 accept comment \"$.wireguard[0].port (wg0)\"",
        ],
        "{rules}"
    );
    assert!(rules.contains("policy drop;"), "{rules}");
}

#[test]
fn farms_example_plan() {
    let (inv, plan) = plan_of("examples/farms.json");
    insta::assert_snapshot!("farms_text", show::plan_text(&inv, &plan));
}

/// The relay and the registry share one copy of the binary, which restarts both.
#[test]
fn the_relay_and_the_registry_share_the_binary() {
    let (_, plan) = plan_of("examples/farms.json");
    let vds = &plan.hosts[0];
    let binaries: Vec<_> = vds
        .resources
        .iter()
        .filter(|r| r.kind == Kind::BINARY)
        .collect();
    assert_eq!(binaries.len(), 1);
    let restarts: Vec<String> = binaries[0]
        .on_change
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    assert_eq!(
        restarts,
        [
            "Restart(\"vds-relay.service\")",
            "Restart(\"vds-registry.service\")"
        ]
    );
}

/// The rendered registry config loads in the server, holds only digests of the tokens,
/// and its unit passes `systemd-analyze verify`.
#[test]
fn the_rendered_registry_config_loads_and_holds_no_token() {
    let (inv, plan) = plan_of("examples/farms.json");
    let res = |path: &str| {
        plan.hosts[0]
            .resources
            .iter()
            .find(|r| r.path == path)
            .and_then(|r| r.text_content())
            .unwrap()
            .to_string()
    };
    let text = res(vds_proxy::roles::registry::CONFIG);
    let cfg = vds_proxy::serve::config::parse(&text).expect("the server loads it");
    assert_eq!(cfg.tokens.len(), 4);
    assert_eq!(
        cfg.nodes.len(),
        4,
        "every node of the inventory, active or not"
    );
    assert_eq!(cfg.listen.to_string(), "100.64.0.10:8080");
    for secret in inv.secrets() {
        assert!(
            !text.contains(secret.as_str()),
            "a token reached the config"
        );
        let digest = vds_proxy::serve::auth::digest(secret);
        assert!(text.contains(&digest));
    }
    let dir = std::env::temp_dir().join(format!("vds-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vds-registry.service");
    let unit = res("/etc/systemd/system/vds-registry.service").replace(
        "/usr/local/lib/vds-proxy/vds-proxy",
        env!("CARGO_BIN_EXE_vds-proxy"),
    );
    std::fs::write(&file, unit).unwrap();
    must_pass(VERIFY, &file);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Strips HuJSON's comments and trailing commas: what Tailscale does before reading it.
fn standard_json(hujson: &str) -> serde_json::Value {
    let no_comments: String = hujson
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let chars: Vec<char> = no_comments.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(*c);
    }
    serde_json::from_str(&out).expect("the policy is HuJSON")
}

/// The seed's farm policy (tag:farm and tag:mobile owned by the admin; mobile reaches the
/// farms on 8080 and 8081, farms reach mobile on every port), written in inventory terms,
/// comes out as the seed's policy file.
#[test]
fn the_seed_farm_policy_is_generated_from_the_inventory() {
    let text = r#"{
      "nodes": [{"name": "farm-a", "tailscale_ip": "100.64.0.21", "tailscale_tags": ["tag:farm"]}],
      "tailnet": {
        "tag_owners": {"tag:farm": ["admin@kub1063.com"], "tag:mobile": ["admin@kub1063.com"]},
        "acls": [
          {"src": ["tag:mobile"], "dst": ["tag:farm"], "ports": [8080, 8081]},
          {"src": ["tag:farm"], "dst": ["tag:mobile"], "ports": ["*"]}
        ]
      }
    }"#;
    let inv =
        inventory::from_str(Path::new("seed004.json"), text, &roles::all().sections()).unwrap();
    let (_, policy) = roles::all()
        .tables
        .iter()
        .find_map(|r| r.table(&inv).filter(|(n, _)| *n == "tailscale-policy"))
        .unwrap();
    let seed = serde_json::json!({
        "tagOwners": {
            "tag:farm": ["admin@kub1063.com"],
            "tag:mobile": ["admin@kub1063.com"]
        },
        "acls": [
            {"action": "accept", "src": ["tag:mobile"], "dst": ["tag:farm:8080,8081"]},
            {"action": "accept", "src": ["tag:farm"], "dst": ["tag:mobile:*"]}
        ]
    });
    assert_eq!(standard_json(&policy), seed);
}

#[test]
fn the_farms_example_policy_is_hujson() {
    let (inv, _) = plan_of("examples/farms.json");
    let policy =
        vds_proxy::roles::tailscale::hujson(&inv, vds_proxy::roles::tailscale::of(&inv).unwrap());
    let v = standard_json(&policy);
    assert_eq!(v["acls"].as_array().unwrap().len(), 4);
    assert_eq!(v["tagOwners"]["tag:farm"][1], "tag:server");
}

/// The backup units of the web example pass `systemd-analyze verify`; the service is a
/// oneshot that no deploy restarts, the timer is persistent.
#[test]
fn rendered_backup_units_pass_systemd_analyze_verify() {
    let (_, plan) = plan_of("examples/web.json");
    let dir = std::env::temp_dir().join(format!("vds-backup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = Vec::new();
    for r in plan.hosts[0]
        .resources
        .iter()
        .filter(|r| r.path.contains("/vds-backup-"))
    {
        let name = r.path.rsplit('/').next().unwrap();
        let text = r.text_content().unwrap();
        if name.ends_with(".service") {
            assert!(text.contains("Type=oneshot"), "{text}");
            let restarts = r
                .on_change
                .iter()
                .filter(|a| format!("{a:?}").starts_with("Restart"))
                .count();
            assert_eq!(restarts, 0, "a deploy must not run a backup");
        } else {
            assert!(text.contains("Persistent=true"), "{text}");
        }
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        must_pass(VERIFY, &file);
        checked.push(name.to_string());
    }
    assert_eq!(
        checked,
        [
            "vds-backup-app.service",
            "vds-backup-app.timer",
            "vds-backup-bot_state.service",
            "vds-backup-bot_state.timer"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

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

/// Backup copies: the sender's unit sends each dump to the target's mesh address and port
/// with the sender's own key, its known_hosts holds the target's host key; the target's
/// authorized_keys lets that key only `receive` into the directory (and creates the user).
#[test]
fn backup_copies_plan() {
    use vds_proxy::roles::backups::copy::CopyKeys;
    let text = r#"{"nodes": [{"name": "db-1", "public_ip": "203.0.113.5"},
                             {"name": "store", "tailscale_ip": "100.64.0.9", "ssh_port": 2222}],
        "backups": [{"node": "db-1", "database": "app", "copy_to": {"node": "store", "keep": 14}}]}"#;
    let inv = inventory::from_str(Path::new("nodes.json"), text, &roles::all().sections()).unwrap();
    let mut keys = CopyKeys::default();
    keys.client.insert(
        "db-1".into(),
        format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{}", "C".repeat(44)),
    );
    keys.host.insert(
        "store".into(),
        format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA{}", "H".repeat(44)),
    );
    let mut prepared = Sections::default();
    prepared.insert(keys);
    let t = Templates::new(None, roles::all().templates()).unwrap();
    let plan = plan::build(&inv, &t, &fake_relay(), &prepared, &roles::all()).unwrap();
    let mut plan_without_tool = plan.clone();
    for h in &mut plan_without_tool.hosts {
        h.resources
            .retain(|r| r.path != vds_proxy::roles::backups::TOOL);
    }
    insta::assert_snapshot!(
        "backup_copies_text",
        show::plan_text(&inv, &plan_without_tool)
    );
    let dir = std::env::temp_dir().join(format!("vds-copy-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for r in plan.hosts.iter().flat_map(|h| &h.resources) {
        if r.path.ends_with(".service") {
            let unit = dir.join(r.path.rsplit('/').next().unwrap());
            std::fs::write(&unit, r.text_content().unwrap()).unwrap();
            must_pass(VERIFY, &unit);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// Each system's rendering tests, from its folder (`src/roles/<name>/render.rs`; listed by
// build.rs).
include!(concat!(env!("OUT_DIR"), "/system_render_tests.rs"));
