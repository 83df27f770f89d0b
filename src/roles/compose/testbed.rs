//! The compose system's tests on real test hosts (included in `tests/testbed.rs`, whose harness
//! it uses).

use super::*;

/// Builds the test images in host `i`'s Podman (no registry can be reached here): busybox
/// httpd serving `/www` on port 8080, logging each request, stopping on SIGTERM; `localhost/web:1` answers "v1"
/// and has `/health`, `localhost/web:2` answers "v2" and has no `/health` (its healthcheck
/// fails).
fn build_app_images(i: u32) {
    assert_ok(&ssh(
        i,
        r#"set -e
for v in 1 2; do
  podman image exists localhost/web:$v && continue
  d=$(mktemp -d); mkdir -p $d/bin $d/www $d/data
  cp /bin/busybox $d/bin/
  for a in sh httpd wget cat echo sleep; do ln -s busybox $d/bin/$a; done
  echo v$v > $d/www/index.html
  [ $v = 1 ] && echo ok > $d/www/health
  tar -C $d -c . | podman import -q --change 'CMD ["/bin/sh", "-c", "trap \"exit 0\" TERM; httpd -f -v -p 8080 -h /www & wait"]' - localhost/web:$v >/dev/null
  rm -rf $d
done"#,
    ));
}

fn app_section(image: &str) -> String {
    format!(
        r#""apps": [{{"name": "shop", "node": "h4", "health_timeout": 8, "services": [
            {{"name": "web", "image": "{image}", "ports": ["18080:8080"],
              "env": {{"GREETING": "costs $5"}}, "secret_env": {{"TOKEN": "s3cr3t-app-token"}},
              "volumes": ["data:/data"],
              "healthcheck": {{"test": "wget -q -O- http://127.0.0.1:8080/health", "interval": 1}}}},
            {{"name": "worker", "image": "localhost/web:1", "depends_on": ["web"],
              "command": ["sh", "-c", "trap 'exit 0' TERM; echo worker up; sleep 100000 & wait"]}}]}}]"#
    )
}

fn app_containers() -> String {
    stdout(&ssh(
        APP_HOST,
        "podman ps -a --filter label=io.podman.compose.project=shop --format '{{.ID}} {{.Names}} {{.StartedAt}}' | sort",
    ))
}

#[test]
fn a_compose_app_comes_up_healthy_an_unhealthy_version_is_rolled_back_and_its_data_is_kept() {
    let env = Env::new("app");
    env.with_app_host();
    build_app_images(APP_HOST);
    env.app_inventory();
    env.add_sections(&app_section("localhost/web:1"));
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert!(!text(&out).contains("s3cr3t-app-token"), "{}", text(&out));
    assert_eq!(
        stdout(&ssh(APP_HOST, "curl -s http://127.0.0.1:18080/")),
        "v1\n",
        "the web service answers on the node's loopback"
    );
    // Plain and secret environment reach the container; the secret sits in a 0600 file.
    assert_eq!(
        stdout(&ssh(
            APP_HOST,
            "podman exec shop_web_1 sh -c 'echo \"$GREETING\"; echo \"$TOKEN\"'; stat -c %a /etc/vds-proxy/apps/shop/web.env"
        )),
        "costs $5\ns3cr3t-app-token\n600\n"
    );
    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(
        &out,
        "h4 app shop/web ok running, healthy, 0 restart(s), listening on 127.0.0.1:18080",
    );
    assert_row(&out, "h4 app shop/worker ok running, 0 restart(s)");
    assert!(!text(&out).contains("s3cr3t-app-token"), "{}", text(&out));
    // What the containers print is in `logs` (the request just made, from the web
    // container's own output), prefixed with the node.
    let out = env.vds(&["logs", "--node", "h4", "--unit", "vds-app-shop.service", "-n", "300"]);
    assert_ok(&out);
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("h4 | ") && l.contains("response:200")),
        "{}",
        text(&out)
    );

    // Data in the named volume; a second deploy recreates nothing.
    assert_ok(&ssh(
        APP_HOST,
        "podman exec shop_web_1 sh -c 'echo kept > /data/f'",
    ));
    let before = app_containers();
    let out = env.vds(&["deploy", "--format", "json"]);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        (&doc["changed"], &doc["unchanged"]),
        (&0.into(), &4.into()),
        "{doc:#}"
    );
    assert_eq!(app_containers(), before, "a no-op deploy recreates nothing");

    // A version whose healthcheck fails: the deploy fails with the service's last log
    // lines, the previous version is back and serves, the data is still there.
    env.app_inventory();
    env.add_sections(&app_section("localhost/web:2"));
    // (The default retry is not used: the failed health gate is a verdict on the version.)
    let t = std::time::Instant::now();
    let out = env.vds(&["deploy"]);
    eprintln!("compose: failed deploy with rollback {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(!said.contains("was retried"), "{said}");
    assert!(said.contains("not retried: vds-app-shop.service failed its own health check"), "{said}");
    assert_eq!(said.matches("is not healthy after 8 s").count(), 1, "{said}");
    assert!(
        said.contains("service web is not healthy after 8 s"),
        "{said}"
    );
    assert!(
        said.contains("| [::ffff:127.0.0.1]"),
        "its log lines: {said}"
    );
    assert!(
        said.contains("the previous files were restored and re-activated"),
        "{said}"
    );
    assert_eq!(
        stdout(&ssh(APP_HOST, "curl -s http://127.0.0.1:18080/")),
        "v1\n"
    );
    assert_eq!(
        stdout(&ssh(
            APP_HOST,
            "grep -c 'localhost/web:1' /etc/vds-proxy/apps/shop/compose.yaml; podman exec shop_web_1 cat /data/f; systemctl is-active vds-app-shop.service"
        )),
        "2\nkept\nactive\n"
    );
    // status: the version that runs is healthy, and the inventory's is not deployed.
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(&out, "h4 app shop/web ok running, healthy");
    assert_row(
        &out,
        "compose.yaml FAIL out of date: the inventory changed; run deploy",
    );

    // remove takes the project and its files away and keeps the named volume;
    // --purge-data deletes it too.
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    assert_eq!(app_containers(), "");
    assert_eq!(
        stdout(&ssh(
            APP_HOST,
            "ls /etc/vds-proxy/apps/shop /etc/systemd/system/vds-app-shop.service 2>&1 | grep -c 'No such file'; podman network exists shop_default || echo no network; podman volume ls -q"
        )),
        "2\nno network\nshop_data\n"
    );
    let out = env.vds(&["remove", "--purge-data"]);
    assert_ok(&out);
    assert!(
        text(&out).contains("h4: deleted volume shop_data"),
        "{}",
        text(&out)
    );
    assert_eq!(stdout(&ssh(APP_HOST, "podman volume ls -q")), "");
}
