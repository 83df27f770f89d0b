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

/// Every rendered unit passes `systemd-analyze verify`. Binaries a unit starts must exist
/// for verify, so the relay path is pointed at the test binary and the replica at /bin/true.
#[test]
fn rendered_units_pass_systemd_analyze_verify() {
    let (_, plan) = plan_of("examples/mesh.json");
    let tmp = tempfile::Builder::new()
        .prefix("vds-verify-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
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

fn firewall_rules(plan: &Plan) -> String {
    plan.hosts[0]
        .resources
        .iter()
        .find(|r| r.path == vds_proxy::roles::firewall::nftables::RULES)
        .and_then(|r| r.text_content())
        .expect("the node has firewall rules")
        .to_string()
}

#[test]
fn farms_example_plan() {
    let (inv, plan) = plan_of("examples/farms.json");
    insta::assert_snapshot!("farms_text", show::plan_text(&inv, &plan));
}

// Each system's rendering tests, from its folder (`src/roles/<name>/render.rs`; listed by
// build.rs).
include!(concat!(env!("OUT_DIR"), "/system_render_tests.rs"));
