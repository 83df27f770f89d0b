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

/// Builds `localhost/pg:15` in host `i`'s Podman from the host's own PostgreSQL 15
/// binaries (no registry can be reached here): like the official image, it creates its
/// cluster on first start with superuser `POSTGRES_USER` and database `POSTGRES_DB`, and
/// runs as user `postgres`; clients find the server through `PGHOST`.
pub(crate) fn build_postgres_image(i: u32) {
    assert_ok(&ssh(
        i,
        r#"set -e
podman image exists localhost/pg:15 && exit 0
B=/usr/lib/postgresql/15/bin
d=$(mktemp -d); chmod 755 $d
mkdir -p $d/bin $d/etc $d/tmp $d$B $d/var/lib/postgresql/data $d/run/postgresql $d/usr/share/postgresql $d/usr/lib/postgresql/15/lib
chmod 1777 $d/tmp
for f in postgres initdb pg_ctl pg_dump pg_restore psql pg_isready createdb dropdb; do
  cp -a $B/$f $d$B/
  ldd $B/$f | grep -o '/[^ ]*'
done | sort -u | while read -r l; do mkdir -p $d$(dirname $l); cp -L $l $d$l; done
cp -a /usr/share/postgresql/15 $d/usr/share/postgresql/
find /usr/lib/postgresql/15/lib -maxdepth 1 -type f -exec cp {} $d/usr/lib/postgresql/15/lib/ \;
cp /bin/busybox $d/bin/
for a in sh cat echo sleep; do ln -s busybox $d/bin/$a; done
printf 'root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n' > $d/etc/passwd
printf 'root:x:0:\npostgres:x:999:\n' > $d/etc/group
chown -R 999:999 $d/var/lib/postgresql $d/run/postgresql
cat > $d/bin/pg-entry <<'EOS'
#!/bin/sh
set -e
D=/var/lib/postgresql/data
if [ ! -f $D/PG_VERSION ]; then
  initdb -D $D -U "$POSTGRES_USER" --auth=trust --locale=C -E UTF8 >/dev/null
  pg_ctl -D $D -o "-k /run/postgresql -c listen_addresses=" -w start >/dev/null
  createdb -U "$POSTGRES_USER" "$POSTGRES_DB"
  pg_ctl -D $D -w stop >/dev/null
fi
trap 'pg_ctl -D $D -m fast -w stop; exit 0' TERM
postgres -D $D -k /run/postgresql -c listen_addresses= &
wait
EOS
chmod 755 $d/bin/pg-entry
tar -C $d -c . | podman import -q --change "USER postgres" --change "ENV PATH=$B:/bin" \
  --change "ENV PGHOST=/run/postgresql" --change 'CMD ["/bin/pg-entry"]' - localhost/pg:15 >/dev/null
rm -rf $d"#,
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

/// The seed's mini-app as its owners keep it: their own compose file with a `.env` and an
/// env file beside it — a Postgres with a named volume, a backend with a healthcheck that
/// waits for the database to be healthy, a frontend on a public port, a bot with no ports
/// that waits for the backend. `BACKEND_TAG` in the `.env` picks the backend's version.
const MINI_APP: &str = r#"# The shop, as its owners run it with Compose.
services:
  db:
    image: localhost/pg:15
    environment:
      POSTGRES_USER: shop
      POSTGRES_DB: shop
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U shop -d shop"]
      interval: 1s
  backend:
    image: localhost/web:${BACKEND_TAG}
    env_file: backend.env
    environment:
      TOKEN: ${BOT_TOKEN}
    ports:
      - "127.0.0.1:18080:8080"
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/health"]
      interval: 1s
  frontend:
    image: localhost/web:1
    ports:
      - "18081:8080"
    depends_on:
      - backend
  bot:
    image: localhost/web:1
    command: ["sh", "-c", "trap 'exit 0' TERM; echo bot up; sleep 100000 & wait"]
    environment:
      BOT_TOKEN: ${BOT_TOKEN}
    depends_on:
      backend:
        condition: service_healthy
volumes:
  pgdata:
"#;

/// Writes the mini-app's files into the test's inventory directory, with backend version
/// `tag`, and an inventory deploying it on `engine` with a backup of its database.
fn mini_app_inventory(env: &Env, engine: &str, tag: u32) {
    let images = serde_json::to_string(&[
        "images/web-1.tar",
        "images/web-2.tar",
        "images/pg-15.tar",
    ])
    .unwrap();
    let dir = env.dir.join("shop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), MINI_APP).unwrap();
    std::fs::write(dir.join(".env"), format!("BACKEND_TAG={tag}\n")).unwrap();
    std::fs::write(dir.join("backend.env"), "LOG_LEVEL=debug\n").unwrap();
    env.app_inventory();
    env.add_sections(&format!(
        r#""apps": [{{"name": "shop", "node": "h4", "engine": "{engine}", "health_timeout": 20,
              "compose_file": "shop/docker-compose.yml", "images": {images},
              "secret_env": {{"BOT_TOKEN": "bot-token-s3cr3t"}}}}],
           "backups": [{{"node": "h4", "database": "shop", "app": "shop", "service": "db", "db_user": "shop"}}]"#
    ));
}

/// The container of `service` of the mini-app on `engine` (found by Compose's labels).
fn mini_container(engine: &str, service: &str) -> String {
    let out = ssh(
        APP_HOST,
        &format!(
            "{engine} ps -q --filter label=com.docker.compose.project=shop --filter label=com.docker.compose.service={service}"
        ),
    );
    let id = stdout(&out).trim().to_string();
    assert!(!id.is_empty(), "no container of {service}: {}", text(&out));
    id
}

/// `sql` run by psql in the mini-app's database as its superuser.
fn mini_psql(engine: &str, db: &str, sql: &str) -> String {
    let id = mini_container(engine, "db");
    let out = ssh(
        APP_HOST,
        &format!(
            "{engine} exec -e PGUSER=shop {id} psql -qtAX -d {db} -c '{}'",
            sql.replace('\'', r"'\''")
        ),
    );
    assert_ok(&out);
    stdout(&out).trim().to_string()
}

/// Each container of the mini-app with its start time, by service.
fn mini_containers(engine: &str) -> String {
    stdout(&ssh(
        APP_HOST,
        &format!(
            "for id in $({engine} ps -aq --filter label=com.docker.compose.project=shop); do \
             {engine} inspect -f '{{{{index .Config.Labels \"com.docker.compose.service\"}}}} {{{{.Id}}}} {{{{.State.StartedAt}}}}' $id; done | sort"
        ),
    ))
}

/// The test images as their owners would ship them: built with Podman on the app host
/// (no registry can be reached here) and saved as archives into the test's inventory
/// directory, `images/NAME.tar`. On Docker, the engine starts without them, so the deploy
/// must upload and load them; Podman has them, so the deploy must upload nothing.
fn mini_images(env: &Env, engine: &str) {
    build_app_images(APP_HOST);
    build_postgres_image(APP_HOST);
    let dir = env.dir.join("images");
    std::fs::create_dir_all(&dir).unwrap();
    for (image, file) in [
        ("localhost/web:1", "web-1.tar"),
        ("localhost/web:2", "web-2.tar"),
        ("localhost/pg:15", "pg-15.tar"),
    ] {
        let out = ssh(APP_HOST, &format!("podman save {image}"));
        assert_ok(&out);
        std::fs::write(dir.join(file), &out.stdout).unwrap();
    }
    if engine == "docker" {
        assert_ok(&ssh(
            APP_HOST,
            "set -e; systemctl start docker; for i in localhost/web:1 localhost/web:2 localhost/pg:15; do \
             docker rmi -f $i >/dev/null 2>&1 || true; done; rm -rf /var/lib/vds-proxy/images",
        ));
    }
}

/// Stops dockerd on the app host when a Docker test ends, however it ends (its iptables
/// rules turn the host's forwarding policy to DROP while it runs).
struct DockerOff;

impl Drop for DockerOff {
    fn drop(&mut self) {
        let _ = ssh(
            APP_HOST,
            "systemctl stop docker.socket docker containerd; iptables -P FORWARD ACCEPT",
        );
    }
}

/// The mini-app from its owners' compose file, deployed as it is on `engine`: healthy, in
/// `depends_on` order, secrets only in 0600 files; a no-op recreates nothing; a backup of
/// its Postgres restores; a backend version that fails its healthcheck is rolled back with
/// the old one serving and the data kept; `remove` keeps the volume, `--purge-data` not.
fn mini_app_on(engine: &str) {
    let env = Env::new(&format!("mini-app-{engine}"));
    env.with_app_host();
    mini_images(&env, engine);
    mini_app_inventory(&env, engine, 1);
    let t = std::time::Instant::now();
    let out = env.vds(&["deploy"]);
    let first = t.elapsed().as_secs_f64();
    assert_ok(&out);
    // The image archives: uploaded and loaded where the engine lacked the images, not
    // uploaded where it had them.
    let shipped = stdout(&ssh(
        APP_HOST,
        &format!(
            "ls /var/lib/vds-proxy/images 2>/dev/null | wc -l; {engine} image inspect -f '{{{{.Id}}}}' localhost/web:1 localhost/web:2 localhost/pg:15 | wc -l"
        ),
    ));
    let uploaded = if engine == "docker" { 3 } else { 0 };
    assert_eq!(shipped, format!("{uploaded}\n3\n"), "{}", text(&out));
    assert!(!text(&out).contains("bot-token-s3cr3t"), "{}", text(&out));
    assert_eq!(
        stdout(&ssh(APP_HOST, "curl -s http://127.0.0.1:18080/")),
        "v1\n",
        "the backend answers on the node's loopback"
    );
    let public = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://{}:18081/", ip(APP_HOST)))
        .output()
        .unwrap();
    assert_eq!(stdout(&public), "v1\n", "the frontend answers on the node's address");
    // The secret from the inventory and the env file reach the containers; both files are 0600.
    let backend = mini_container(engine, "backend");
    let bot = mini_container(engine, "bot");
    assert_eq!(
        stdout(&ssh(
            APP_HOST,
            &format!(
                "{engine} exec {backend} sh -c 'echo $TOKEN $LOG_LEVEL'; {engine} exec {bot} sh -c 'echo $BOT_TOKEN'; \
                 stat -c %a /etc/vds-proxy/apps/shop/.env /etc/vds-proxy/apps/shop/backend.env"
            )
        )),
        "bot-token-s3cr3t debug\nbot-token-s3cr3t\n600\n600\n"
    );
    // Each service started after those it depends on.
    let started: Vec<(String, String)> = mini_containers(engine)
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.splitn(3, ' ').collect();
            (w[0].to_string(), w[2].to_string())
        })
        .collect();
    let at = |s: &str| started.iter().find(|(n, _)| n == s).unwrap().1.clone();
    assert!(at("db") < at("backend") && at("backend") < at("bot") && at("backend") < at("frontend"), "{started:?}");
    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(&out, "h4 app shop/db ok running, healthy, 0 restart(s)");
    assert_row(
        &out,
        "h4 app shop/backend ok running, healthy, 0 restart(s), listening on 127.0.0.1:18080",
    );
    assert_row(&out, "h4 app shop/frontend ok running, 0 restart(s), listening on *:18081");
    assert_row(&out, "h4 app shop/bot ok running, 0 restart(s)");

    // Data; a second deploy recreates nothing.
    mini_psql(
        engine,
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 1000) g",
    );
    let before = mini_containers(engine);
    let t = std::time::Instant::now();
    let out = env.vds(&["deploy", "--format", "json"]);
    let noop = t.elapsed().as_secs_f64();
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(doc["changed"], 0, "{doc:#}");
    assert_eq!(mini_containers(engine), before, "a no-op deploy recreates nothing");

    // A backup through the database's container, and a restore drill.
    assert_ok(&ssh(APP_HOST, "systemctl start vds-backup-shop.service"));
    let out = env.vds(&["backup", "restore", "h4", "--into", "shop_copy"]);
    assert_ok(&out);
    assert_eq!(mini_psql(engine, "shop_copy", "SELECT count(*) FROM orders"), "1000");

    // A backend version whose healthcheck fails: rolled back, the old one serves, the
    // data is there.
    mini_app_inventory(&env, engine, 2);
    let t = std::time::Instant::now();
    let out = env.vds(&["deploy"]);
    let failed = t.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("service backend is not healthy after 20 s"), "{said}");
    assert!(!said.contains("was retried"), "{said}");
    assert!(said.contains("the previous files were restored and re-activated"), "{said}");
    assert!(!said.contains("bot-token-s3cr3t"), "{said}");
    assert_eq!(stdout(&ssh(APP_HOST, "curl -s http://127.0.0.1:18080/")), "v1\n");
    assert_eq!(mini_psql(engine, "shop", "SELECT count(*) FROM orders"), "1000");
    eprintln!(
        "compose on {engine}: first deploy {first:.1} s, no-op {noop:.1} s, failed deploy with rollback {failed:.1} s"
    );

    // remove keeps the named volume; --purge-data deletes it.
    mini_app_inventory(&env, engine, 1);
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    assert_eq!(mini_containers(engine), "");
    assert_eq!(
        stdout(&ssh(APP_HOST, &format!("{engine} volume ls -q | grep shop"))),
        "shop_pgdata\n"
    );
    let out = env.vds(&["remove", "--purge-data"]);
    assert_ok(&out);
    assert!(text(&out).contains("h4: deleted volume shop_pgdata"), "{}", text(&out));
    assert!(!stdout(&ssh(APP_HOST, &format!("{engine} volume ls -q"))).contains("shop"));
}

#[test]
fn the_mini_app_from_its_own_compose_file_runs_on_podman() {
    mini_app_on("podman");
}

#[test]
fn the_mini_app_from_its_own_compose_file_runs_on_docker() {
    let _off = DockerOff;
    mini_app_on("docker");
}
