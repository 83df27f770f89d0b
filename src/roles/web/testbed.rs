//! The web edge on a real test host (included in `tests/testbed.rs`, whose harness it
//! uses): values that would add an nginx directive never reach nginx.

use super::{Env, assert_error_says, assert_ok, ssh, stdout};

/// A site whose certificate paths and header values carry nginx syntax: a key path that
/// would add a location serving `/` is refused before any host is touched (nginx.conf
/// unchanged), and header values with `;`, braces and quotes-free text are served as they
/// are, with nothing else served.
#[test]
fn nginx_serves_nothing_it_was_not_asked_to() {
    let env = Env::new("web-inject");
    assert_ok(&ssh(
        1,
        "mkdir -p /etc/ssl/vds-test && cd /etc/ssl/vds-test && \
         [ -s a.pem ] || openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=inject.test \
           -keyout a.key -out a.pem 2>/dev/null",
    ));
    let before = stdout(&ssh(1, "sha256sum /etc/nginx/nginx.conf"));
    let site = |key: &str| {
        format!(
            r#"{{"nodes": [{{"name": "h1", "public_ip": "10.213.1.2"}}],
              "sites": [{{"name": "inject", "node": "h1", "domains": ["inject.test"], "tls": "files",
                "certificate": "/etc/ssl/vds-test/a.pem", "certificate_key": "{key}",
                "headers": {{"X-Test": "a; b {{c}} d"}},
                "locations": [{{"path": "/api/", "upstream": "127.0.0.1:8009"}}]}}]}}"#
        )
    };
    std::fs::write(
        env.dir.join("nodes.json"),
        site("/etc/ssl/vds-test/a.key; location /leak/ { alias /; autoindex on; }"),
    )
    .unwrap();
    let out = env.vds(&["deploy"]);
    assert_eq!(out.status.code(), Some(2));
    assert_error_says(
        &out,
        "$.sites[0].certificate_key: \"/etc/ssl/vds-test/a.key; location /leak/ { alias /; autoindex on; }\" contains a space",
    );
    assert_eq!(
        stdout(&ssh(1, "sha256sum /etc/nginx/nginx.conf")),
        before,
        "no host touched"
    );

    std::fs::write(env.dir.join("nodes.json"), site("/etc/ssl/vds-test/a.key")).unwrap();
    assert_ok(&env.vds(&["deploy"]));
    let get = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "5",
                "-D",
                "-",
                "--resolve",
                "inject.test:443:10.213.1.2",
            ])
            .arg(format!("https://inject.test{path}"))
            .output()
            .unwrap();
        stdout(&out)
    };
    let leak = get("/leak/etc/hostname");
    assert!(
        leak.starts_with("HTTP/1.1 404") || leak.starts_with("HTTP/2 404"),
        "{leak}"
    );
    assert!(
        !leak.contains("\nh1\n") && !leak.ends_with("h1\n"),
        "the host's file was served: {leak}"
    );
    assert!(
        leak.to_ascii_lowercase().contains("x-test: a; b {c} d\r\n"),
        "{leak}"
    );
    let conf = stdout(&ssh(1, "cat /etc/nginx/nginx.conf"));
    assert!(
        conf.contains("ssl_certificate_key \"/etc/ssl/vds-test/a.key\";"),
        "{conf}"
    );
    assert!(!conf.contains("/leak/"), "{conf}");
    assert_ok(&env.vds(&["remove"]));
}

use std::process::Command;
