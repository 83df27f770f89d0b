//! The web edge on a real test host (included in `tests/testbed.rs`, whose harness it
//! uses): ACME certificates from a real test CA and HTTPS, and values that would add an
//! nginx directive never reach nginx.

use super::*;

/// Pebble, Let's Encrypt's test ACME CA, and its mock DNS (every name resolves to h1), on
/// this machine; stopped when dropped. The ACME API's own HTTPS certificate is signed by a
/// CA made here (`ca.pem`), which h1's certbot is told to trust through the inventory.
struct Pebble {
    dir: PathBuf,
    children: Vec<std::process::Child>,
}

impl Pebble {
    fn start(dir: &Path) -> Self {
        for tool in ["pebble", "pebble-challtestsrv", "openssl", "curl"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .output()
                    .unwrap()
                    .status
                    .success(),
                "{tool} is missing on this machine: apt-get install pebble openssl curl"
            );
        }
        let dir = dir.join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        let sh = |cmd: &str| {
            let o = Command::new("sh")
                .args(["-ec", cmd])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert_ok(&o);
        };
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=vds test ACME API CA' -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=pebble -keyout api.key -out api.csr 2>/dev/null
            echo 'subjectAltName=IP:10.213.1.1,IP:127.0.0.1' > ext
            openssl x509 -req -in api.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out api.pem 2>/dev/null");
        std::fs::write(
            dir.join("pebble.json"),
            r#"{"pebble": {"listenAddress": "10.213.1.1:14000", "managementListenAddress": "127.0.0.1:15000",
                "certificate": "api.pem", "privateKey": "api.key", "httpPort": 80, "tlsPort": 443,
                "ocspResponderURL": "", "externalAccountBindingRequired": false}}"#,
        )
        .unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let dns = Command::new("pebble-challtestsrv")
            .args([
                "-defaultIPv4",
                "10.213.1.2",
                "-defaultIPv6",
                "",
                "-dns01",
                "127.0.0.1:8053",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                "127.0.0.1:8055",
            ])
            .stdout(log("dns.log"))
            .stderr(log("dns.err"))
            .spawn()
            .unwrap();
        let ca = Command::new("pebble")
            .args(["-config", "pebble.json", "-dnsserver", "127.0.0.1:8053"])
            .current_dir(&dir)
            // No random waits or nonce rejections: the test checks issuance, not retries.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .unwrap();
        let p = Pebble {
            dir,
            children: vec![dns, ca],
        };
        for _ in 0..100 {
            if p.curl_api("https://10.213.1.1:14000/dir").status.success() {
                return p;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "pebble did not answer on 10.213.1.1:14000 (is another one running?): {}",
            std::fs::read_to_string(p.dir.join("pebble.log")).unwrap_or_default()
        );
    }

    fn curl_api(&self, url: &str) -> Output {
        Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(self.dir.join("ca.pem"))
            .arg(url)
            .output()
            .unwrap()
    }

    /// The PEM of the CA that signs the API's certificate.
    fn api_ca(&self) -> String {
        std::fs::read_to_string(self.dir.join("ca.pem")).unwrap()
    }

    /// Writes pebble's root (the CA that issues site certificates) and returns its path.
    fn root(&self) -> PathBuf {
        let out = self.curl_api("https://127.0.0.1:15000/roots/0");
        assert_ok(&out);
        let path = self.dir.join("root.pem");
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTPS request to the site on h1 through its domain, checked against pebble's root.
fn https(root: &Path, path: &str, extra: &[&str]) -> Output {
    Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "--resolve",
            "app.test:443:10.213.1.2",
        ])
        .arg("--cacert")
        .arg(root)
        .args(extra)
        .arg(format!("https://app.test{path}"))
        .output()
        .unwrap()
}

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

fn web_inventory(ca_file: &str) -> String {
    format!(
        r#"{{"nodes": [{{"name": "h1", "public_ip": "10.213.1.2"}}],
            "acme": {{"directory": "https://10.213.1.1:14000/dir", "email": "ops@example.com", "ca_file": "{ca_file}"}},
            "sites": [{{"name": "app", "node": "h1", "domains": ["app.test", "www.app.test"],
              "locations": [{{"path": "/", "upstream": "127.0.0.1:3000"}},
                {{"path": "/api/", "upstream": "127.0.0.1:8000", "websocket": true,
                  "rate_limit": {{"rate": "5r/s", "burst": 5}}}}]}}]}}"#
    )
}

/// nginx's worker processes on h1: a reload replaces them.
fn nginx_workers() -> String {
    stdout(&ssh(
        1,
        "pgrep -P $(systemctl show -p MainPID --value nginx) | sort",
    ))
}

fn served_fingerprint() -> String {
    stdout(&ssh(
        1,
        "echo | openssl s_client -connect 127.0.0.1:443 -servername app.test 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
    ))
}

/// One deploy goes from Debian's nginx to a site with a certificate from a real ACME CA
/// (pebble, HTTP-01 through nginx); the site proxies by path, sends the security headers,
/// rate-limits; a re-apply reloads nothing; renewal swaps the certificate without a failed
/// request; a broken config never goes live; remove gives Debian's nginx.conf back.
#[test]
fn web_sites_get_acme_certificates_and_serve_https() {
    let env = Env::new("web");
    // A fresh CA knows no accounts: certbot's from an earlier run must go.
    let pebble = Pebble::start(&env.dir);
    let ca_file = "/usr/local/share/vds-test/acme-api-ca.pem";
    assert_ok(&ssh(
        1,
        &format!(
            "mkdir -p /usr/local/share/vds-test /srv/front /srv/api/api && printf '%s' '{}' > {ca_file}
             rm -rf /etc/letsencrypt/accounts
             echo front-page > /srv/front/index.html && echo api-answer > /srv/api/api/index.html
             for u in t-front t-api; do systemctl stop $u; systemctl reset-failed $u; done 2>/dev/null
             systemd-run -q --unit=t-front python3 -m http.server 3000 --bind 127.0.0.1 --directory /srv/front
             systemd-run -q --unit=t-api python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv/api",
            pebble.api_ca()
        ),
    ));
    let debian_conf = stdout(&ssh(1, "sha256sum /etc/nginx/nginx.conf"));
    std::fs::write(env.dir.join("nodes.json"), web_inventory(ca_file)).unwrap();

    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "ran certificate of site app");
    let root = pebble.root();
    let page = https(&root, "/", &["-D", "-"]);
    assert_ok(&page);
    let page = stdout(&page).to_ascii_lowercase();
    assert!(page.ends_with("\r\n\r\nfront-page\n"), "{page}");
    for header in [
        "strict-transport-security: max-age=31536000",
        "x-content-type-options: nosniff",
        "x-frame-options: sameorigin",
        "referrer-policy: strict-origin-when-cross-origin",
    ] {
        assert!(page.contains(header), "{header} missing: {page}");
    }
    assert_eq!(stdout(&https(&root, "/api/", &[])), "api-answer\n");
    let redirect = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .args([
            "--resolve",
            "www.app.test:80:10.213.1.2",
            "http://www.app.test/x?y=1",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&redirect), "301 https://www.app.test/x?y=1");

    // A burst beyond 5 r/s + 5 gets 429s; the first requests go through.
    let codes: Vec<String> = (0..20)
        .map(|_| {
            stdout(&https(
                &root,
                "/api/",
                &["-o", "/dev/null", "-w", "%{http_code}"],
            ))
        })
        .collect();
    assert!(codes[..4].iter().all(|c| c == "200"), "{codes:?}");
    assert!(
        codes.iter().filter(|c| *c == "429").count() >= 5,
        "{codes:?}"
    );

    // Re-apply: nothing changes, nothing reloads.
    let workers = nginx_workers();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "ok (no changes)");
    assert_eq!(nginx_workers(), workers);

    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(
        &out,
        "h1 site app ok HTTPS 200, serves the certificate on file",
    );
    assert_row(&out, "h1 certificate app ok 1825 days left");
    assert_row(
        &out,
        "h1 nginx ok active, running /etc/nginx/nginx.conf as it is on disk",
    );

    // nginx.conf newer than nginx's last reload (a deploy cut short before the reload):
    // status says nginx runs an older configuration, and a deploy reloads it.
    assert_ok(&ssh(1, "sleep 1; touch /etc/nginx/nginx.conf"));
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(&out, "h1 nginx FAIL runs an older configuration");
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "reloaded nginx.service");
    assert_ok(&env.vds(&["status"]));

    // Renewal through certbot (the drop-in tells its timer runs which CA to trust) swaps
    // the certificate nginx serves while a client keeps asking: no request fails.
    assert_says(
        &ssh(1, "systemctl show -p Environment certbot.service"),
        &format!("REQUESTS_CA_BUNDLE={ca_file}"),
    );
    let before = served_fingerprint();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (stop, root) = (stop.clone(), root.clone());
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut o = https(&root, "/", &[]);
                // An HTTP/2 connection the old worker accepted just before the reload can
                // be closed with GOAWAY before its request is served (curl: 16); a browser
                // sends that request again, and so does this client — once.
                if o.status.code() == Some(16) {
                    o = https(&root, "/", &[]);
                }
                if o.status.success() && stdout(&o) == "front-page\n" {
                    ok += 1;
                } else {
                    failed.push(format!("{:?} {}", o.status.code(), text(&o)));
                }
            }
            (ok, failed)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_ok(&ssh(
        1,
        &format!(
            "REQUESTS_CA_BUNDLE={ca_file} certbot renew -q --force-renewal --no-random-sleep-on-renew"
        ),
    ));
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = client.join().unwrap();
    assert!(failed.is_empty() && ok > 10, "{ok} ok, failed: {failed:?}");
    let after = served_fingerprint();
    assert_ne!(after, before, "nginx still serves the old certificate");
    assert_ok(&env.vds(&["status"]));

    // A template override nginx refuses never goes live.
    let tpl = env.dir.join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(
        tpl.join("nginx.conf.j2"),
        "events {}\nhttp { server { listen 80; no_such_directive {{ node.name }}; } }\n",
    )
    .unwrap();
    let live = stdout(&ssh(1, "sha256sum /etc/nginx/nginx.conf"));
    let out = env.vds(&["deploy", "--templates", tpl.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_says(&out, "validation failed; nothing was changed");
    assert_says(&out, "no_such_directive");
    assert_eq!(stdout(&ssh(1, "sha256sum /etc/nginx/nginx.conf")), live);
    assert_eq!(stdout(&https(&root, "/", &[])), "front-page\n");

    // Remove: Debian's nginx.conf is back, the certificate and vds-proxy's directories gone.
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    assert_eq!(
        stdout(&ssh(1, "sha256sum /etc/nginx/nginx.conf")),
        debian_conf
    );
    assert_eq!(
        stdout(&ssh(
            1,
            "ls /etc/letsencrypt/live /etc/letsencrypt/renewal; ls -d /etc/vds-proxy /var/lib/vds-proxy /etc/systemd/system/certbot.service.d 2>&1 | grep -vc 'No such'"
        )),
        "/etc/letsencrypt/live:\nREADME\n\n/etc/letsencrypt/renewal:\n0\n"
    );
    assert!(
        stdout(&ssh(1, "curl -s http://127.0.0.1/")).contains("Welcome to nginx"),
        "Debian's default site should answer again"
    );
    assert_ok(&ssh(
        1,
        "systemctl stop t-front t-api; rm -rf /srv/front /srv/api /usr/local/share/vds-test",
    ));
}
