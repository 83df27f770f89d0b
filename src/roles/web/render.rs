//! The web system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

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
    let tmp = tempfile::Builder::new().prefix("vds-nginx-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
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
}
