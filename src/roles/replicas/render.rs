//! The replicas system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

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
    let tmp = tempfile::Builder::new().prefix("vds-docker-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
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
