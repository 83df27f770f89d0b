//! Property tests of the templates' output filters: arbitrary strings go through each
//! filter, and the result is read back by the format's own parser (the `toml` crate,
//! PyYAML as podman-compose uses it, a real nginx on loopback, nftables loaded in a network
//! namespace of its own; systemd's is in the testbed tests): one value in, exactly that
//! value out, and nothing else added.
//!
//! The strings come from a fixed-seed generator (`common`) biased towards what breaks
//! formats; the seed is printed so a failure replays.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use vds_proxy::templates::{nft_string, nginx_string, toml_string, yaml_string};

mod common;
use common::{holdable, strings, strings_of};

#[test]
fn toml_strings_read_back_as_one_value() {
    for v in strings(0x746f_6d6c, 3000) {
        let doc = format!("k = {}\nafter = 1\n", toml_string(v.clone()));
        let t: toml::Table = toml::from_str(&doc).unwrap_or_else(|e| panic!("{v:?}: {e}\n{doc}"));
        assert_eq!(t.len(), 2, "{v:?} added a key:\n{doc}");
        assert_eq!(t["k"].as_str(), Some(v.as_str()), "{doc}");
        assert_eq!(t["after"].as_integer(), Some(1));
    }
}

#[test]
fn yaml_strings_read_back_as_one_value() {
    let values = strings(0x7961_6d6c, 1500);
    let doc: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("k{i}: {}\n", yaml_string(v.clone())))
        .collect();
    // PyYAML, the parser podman-compose reads compose files with; JSON back.
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin.read()), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with PyYAML (apt-get install python3-yaml)");
    py.stdin.take().unwrap().write_all(doc.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML refused the document");
    let back: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back.len(), values.len(), "a value added or removed a key");
    for (i, v) in values.iter().enumerate() {
        assert_eq!(back[&format!("k{i}")].as_str(), Some(v.as_str()), "k{i}");
    }
}

/// A running nginx on a free loopback port, its prefix a temporary directory; stopped on
/// drop.
struct Nginx {
    child: std::process::Child,
    port: u16,
    /// nginx's prefix (config, logs, temp paths); removed once nginx is stopped.
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(locations: &str) -> Nginx {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tmp = tempfile::Builder::new()
            .prefix("vds-nginx-escape-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir(dir.join("logs")).unwrap();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
             error_log {d}/logs/error.log;\nevents {{}}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
             fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             default_type application/octet-stream;\n\
             server {{ listen 127.0.0.1:{port};\n{locations}\n location / {{ return 404; }} }} }}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx (apt-get install nginx)");
        // nginx with this prefix, error log and config.
        let run = || {
            let mut cmd = Command::new(nginx);
            cmd.arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("logs/error.log"))
                .arg("-c")
                .arg(dir.join("nginx.conf"));
            cmd
        };
        let check = run().arg("-t").output().unwrap();
        assert!(
            check.status.success(),
            "nginx -t refused the escaped values: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = run().spawn().unwrap();
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Nginx {
            child,
            port,
            _dir: tmp,
        }
    }

    /// The status line's code and the body of `GET path`.
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&resp[..split]).into_owned();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, resp[split + 4..].to_vec())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nginx_strings_are_served_back_as_one_value_or_refused() {
    // Every kind of string, and as many again of those nginx can hold (no `$`, no control
    // character), so hundreds are served.
    let holdable = holdable(|c| c != '$' && !c.is_control());
    let mut values = strings(0x006e_6769_6e78, 300);
    values.extend(strings_of(&holdable, 0x006e_6769_6e79, 300));
    let mut served = Vec::new();
    let mut locations = String::new();
    for v in &values {
        match nginx_string(v.clone()) {
            Ok(quoted) => {
                locations += &format!(
                    " location = /v{} {{ return 200 {quoted}; }}\n",
                    served.len()
                );
                served.push(v.clone());
            }
            // Refused: only what nginx cannot hold in a string.
            Err(_) => assert!(
                v.chars().any(|c| c == '$' || c.is_control()),
                "{v:?} was refused"
            ),
        }
    }
    assert!(
        served.len() > 50,
        "too few values to serve: {}",
        served.len()
    );
    let nginx = Nginx::start(&locations);
    for (i, v) in served.iter().enumerate() {
        let (code, body) = nginx.get(&format!("/v{i}"));
        assert_eq!(code, 200, "{v:?}");
        assert_eq!(String::from_utf8(body).unwrap(), *v, "/v{i}");
    }
    // Nothing was added: a path nobody asked for is not served.
    assert_eq!(nginx.get("/leak/etc/hostname").0, 404);
}

/// Runs `args` in a network namespace made for the test (root: `ip netns`), removed after.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("vds-escape-{}", std::process::id());
        let out = Command::new("ip").args(["netns", "add", &name]).output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        assert!(ok, "ip netns add (needs root and iproute2): {out:?}");
        Netns(name)
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> std::process::Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .output();
    }
}

#[test]
fn nft_strings_load_as_one_value_or_are_refused() {
    let holdable = holdable(|c| c != '"' && !c.is_control());
    let mut values = strings(0x006e_6674, 200);
    values.extend(strings_of(&holdable, 0x006e_6675, 200));
    let mut kept = Vec::new();
    let mut rules = String::from("table inet vds_escape_test {\n  chain c {\n");
    for v in &values {
        match nft_string(v.clone()) {
            Ok(quoted) => {
                rules += &format!(
                    "    tcp dport {} accept comment {quoted}\n",
                    1000 + kept.len()
                );
                kept.push(v.clone());
            }
            Err(_) => assert!(
                v.chars().any(|c| c == '"' || c.is_control()) || v.len() > 128,
                "{v:?} was refused"
            ),
        }
    }
    rules += "  }\n}\n";
    assert!(kept.len() > 100, "too few values: {}", kept.len());
    let ns = Netns::new();
    let load = ns.run(&["nft", "-f", "-"], Some(&rules));
    assert!(
        load.status.success(),
        "nft refused the escaped values: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let list = ns.run(
        &["nft", "-j", "list", "table", "inet", "vds_escape_test"],
        None,
    );
    assert!(list.status.success());
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let comments: Vec<(u64, String)> = json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .map(|r| {
            let port = r["expr"][0]["match"]["right"].as_u64().unwrap();
            (port, r["comment"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(comments.len(), kept.len(), "a value added or lost a rule");
    for (port, comment) in comments {
        assert_eq!(comment, kept[(port - 1000) as usize], "rule for {port}");
    }
}
