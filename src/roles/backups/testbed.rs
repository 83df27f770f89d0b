//! PostgreSQL backups on real test hosts (included in `tests/testbed.rs`, whose harness it
//! uses): dumps, restores and retention, a PostgreSQL inside a compose app, copies to
//! another node, and directories vds-proxy did not create keep their owner and mode.

use super::*;

/// A copy directory that already exists on the target keeps its owner and mode through a
/// deploy and a remove; system directories, by any spelling, are refused before any host
/// is touched.
#[test]
fn a_directory_vds_proxy_did_not_create_keeps_its_owner_and_mode() {
    let env = Env::new("backup-dirs");
    let dir = "/srv/vds-test-copies";
    assert_ok(&ssh(
        2,
        &format!(
            "rm -rf {dir} && mkdir -p {dir} && chown nobody:nogroup {dir} && chmod 0751 {dir}"
        ),
    ));
    let stat = |path: &str| stdout(&ssh(2, &format!("stat -c '%U:%G %a' {path}")));
    let var_lib = stat("/var/lib");
    let section = |to: &str| {
        format!(
            r#""backups": [{{"node": "h3", "database": "shop", "copy_to": {{"node": "h2", "directory": "{to}"}}}}]"#
        )
    };
    for bad in ["/var/lib", "/var/..", "//etc", "/var/lib/"] {
        env.inventory("[]");
        env.add_sections(&section(bad));
        let out = env.vds(&["deploy"]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert_error_says(&out, "$.backups[0].copy_to.directory");
    }
    assert_eq!(stat("/var/lib"), var_lib);

    env.inventory("[]");
    env.add_sections(&section(dir));
    assert_ok(&env.vds(&["deploy"]));
    assert_eq!(
        stat(dir),
        "nobody:nogroup 751\n",
        "deploy changed an existing directory"
    );
    assert_ok(&env.vds(&["remove"]));
    assert_eq!(
        stat(dir),
        "nobody:nogroup 751\n",
        "remove changed an existing directory"
    );
    assert_eq!(stat("/var/lib"), var_lib);
    assert_ok(&ssh(2, &format!("rm -rf {dir}")));
}

/// Runs SQL on h3's PostgreSQL as its superuser; the output, unaligned.
fn psql(db: &str, sql: &str) -> String {
    let out = ssh(
        3,
        &format!(
            "cd /tmp && runuser -u postgres -- psql -qtAX -v ON_ERROR_STOP=1 -d {db} -c \"{sql}\""
        ),
    );
    assert_ok(&out);
    stdout(&out).trim().to_string()
}

const BACKUP_DIR: &str = "/var/backups/vds-proxy/postgresql";

#[test]
fn postgres_backups_dump_restore_keep_exactly_what_is_promised_and_fail_loudly() {
    let env = Env::new("backups");
    assert_ok(&ssh(
        3,
        &format!(
            "systemctl start postgresql && rm -rf {BACKUP_DIR} && cd /tmp && \
             runuser -u postgres -- dropdb --if-exists shop && runuser -u postgres -- dropdb --if-exists shop_check && \
             runuser -u postgres -- dropdb --if-exists shop_copy && \
             runuser -u postgres -- createdb shop"
        ),
    ));
    psql(
        "shop",
        "create table orders(id serial primary key, item text); insert into orders(item) select md5(i::text) from generate_series(1, 5000) i; create table users(id int)",
    );
    env.inventory("[]");
    env.add_sections(r#""backups": [{"node": "h3", "database": "shop", "time": "04:30"}]"#);
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "started vds-backup-shop.timer");
    let timer = stdout(&ssh(
        3,
        "systemctl show -P TimersCalendar vds-backup-shop.timer; systemctl show -P Persistent vds-backup-shop.timer",
    ));
    assert!(
        timer.contains("OnCalendar=*-*-* 04:30:00") && timer.ends_with("\nyes\n"),
        "{timer}"
    );
    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(
        &out,
        "h3 backup shop ok no dump yet; the first runs at 04:30",
    );
    let out = env.vds(&["deploy"]);
    assert_row(&out, "h3 0 ok (no changes)");

    // The service makes a checked, private, checksummed dump; it restores with the rows.
    assert_ok(&ssh(3, "systemctl start vds-backup-shop.service"));
    let day = stdout(&ssh(3, "date -u +%Y-%m-%d")).trim().to_string();
    let dump = format!("{BACKUP_DIR}/daily/shop-{day}.dump");
    assert_eq!(
        stdout(&ssh(
            3,
            &format!(
                "stat -c %a {dump}; cd {BACKUP_DIR}/daily && sha256sum -c shop-{day}.dump.sha256"
            )
        )),
        format!("600\nshop-{day}.dump: OK\n")
    );
    assert_ok(&ssh(
        3,
        &format!(
            "cd /tmp && runuser -u postgres -- createdb shop_check && runuser -u postgres -- pg_restore -d shop_check < {dump}"
        ),
    ));
    assert_eq!(psql("shop_check", "select count(*) from orders"), "5000");
    assert_eq!(
        psql(
            "shop_check",
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ),
        "2"
    );
    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(
        &out,
        &format!("h3 backup shop ok last good dump shop-{day}.dump"),
    );
    assert_says(&out, "kept 1 daily, 1 weekly, 1 monthly");

    // `backup list` and `backup restore`: the newest daily into a new database by
    // default; an existing database (the live one) only with --force.
    let out = env.vds(&["backup", "list", "h3"]);
    assert_ok(&out);
    assert_row(&out, &format!("daily shop-{day}.dump 0.1 MB ok"));
    assert_row(&out, "weekly shop-");
    let out = env.vds(&["backup", "restore", "h3", "--into", "shop_copy"]);
    assert_ok(&out);
    assert_says(
        &out,
        &format!("h3: restored shop-{day}.dump into database shop_copy (2 table(s))"),
    );
    assert_eq!(psql("shop_copy", "select count(*) from orders"), "5000");
    let out = env.vds(&["backup", "restore", "h3", "--into", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("database shop exists; restoring over it needs --force"),
        "{}",
        text(&out)
    );
    psql("shop", "delete from orders where id > 10");
    let out = env.vds(&[
        "backup",
        "restore",
        "h3",
        &format!("shop-{day}.dump"),
        "--into",
        "shop",
        "--force",
    ]);
    assert_ok(&out);
    assert_eq!(psql("shop", "select count(*) from orders"), "5000");
    let out = env.vds(&["backup", "restore", "h3", "shop-2026-13-99.dump; id"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // The restore drill: the newest dump has every table of the live database; a table
    // created since makes it fail until the next backup.
    let out = env.vds(&["backup", "restore", "h3", "--verify"]);
    assert_ok(&out);
    assert_says(
        &out,
        &format!("h3: shop-{day}.dump restores, with 2 table(s)"),
    );
    psql("shop", "create table invoices(id int)");
    let out = env.vds(&["backup", "restore", "h3", "--verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("lacks table(s) of shop: public.invoices"),
        "{}",
        text(&out)
    );
    assert_ok(&ssh(3, "systemctl start vds-backup-shop.service"));
    assert_ok(&env.vds(&["backup", "restore", "h3", "--verify"]));
    assert_eq!(
        psql(
            "postgres",
            "select count(*) from pg_database where datname like 'shop_verify%'"
        ),
        "0",
        "the scratch databases are dropped"
    );

    // Retention: with dumps of faked ages on file, a run keeps exactly 7 daily, 4 weekly
    // and 6 monthly — the newest of each — and leaves other databases' dumps alone.
    assert_ok(&ssh(
        3,
        &format!(
            "cd {BACKUP_DIR} && for i in $(seq 1 20); do d=$(date -u -d \"-$i day\" +%Y-%m-%d); touch daily/shop-$d.dump daily/shop-$d.dump.sha256; done && \
             for i in $(seq 1 10); do w=$(date -u -d \"-$i week\" +%G-W%V); touch weekly/shop-$w.dump; done && \
             for i in $(seq 1 12); do m=$(date -u -d \"$(date -u +%Y-%m-15) -$i month\" +%Y-%m); touch monthly/shop-$m.dump; done && \
             touch daily/other-2020-01-01.dump"
        ),
    ));
    assert_ok(&ssh(3, "systemctl start vds-backup-shop.service"));
    let kept = stdout(&ssh(
        3,
        &format!(
            "cd {BACKUP_DIR} && ls daily/*.dump | wc -l; ls weekly | grep -c 'dump$'; ls monthly | grep -c 'dump$'; ls daily/*.sha256 | wc -l; ls daily | sort | tail -1"
        ),
    ));
    let newest_daily = format!("shop-{day}.dump.sha256");
    assert_eq!(
        kept,
        format!("8\n4\n6\n7\n{newest_daily}\n"),
        "7 daily of shop + other's"
    );
    let oldest_kept = stdout(&ssh(
        3,
        &format!("ls {BACKUP_DIR}/daily | grep '^shop.*dump$' | sort | head -1"),
    ));
    let six_days_ago = stdout(&ssh(3, "date -u -d '-6 day' +%Y-%m-%d"))
        .trim()
        .to_string();
    assert_eq!(oldest_kept.trim(), format!("shop-{six_days_ago}.dump"));

    // A failing backup (PostgreSQL stopped): the unit fails, status fails and says where
    // to look; the last good dump is untouched.
    assert_ok(&ssh(3, "systemctl stop postgresql"));
    let run = ssh(3, "systemctl start vds-backup-shop.service");
    assert!(!run.status.success(), "the unit must fail");
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(
        &out,
        "h3 backup shop FAIL the last run failed: see `journalctl -u vds-backup-shop.service`",
    );
    assert_eq!(
        stdout(&ssh(
            3,
            &format!(
                "cd {BACKUP_DIR}/daily && sha256sum -c shop-{day}.dump.sha256; ls | grep -c tmp"
            )
        )),
        format!("shop-{day}.dump: OK\n0\n")
    );
    assert_ok(&ssh(
        3,
        "systemctl start postgresql && systemctl start vds-backup-shop.service",
    ));
    assert_ok(&env.vds(&["status"]));

    // remove takes back the tool, service and timer; the dumps stay.
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    let left = stdout(&ssh(
        3,
        &format!(
            "ls /usr/local/lib/vds-proxy/backup /etc/systemd/system/vds-backup-shop.service /etc/systemd/system/vds-backup-shop.timer 2>&1; ls {BACKUP_DIR}/daily | grep -c '^shop.*dump$'"
        ),
    ));
    assert_eq!(left.matches("No such file").count(), 3, "{left}");
    assert!(left.ends_with("7\n"), "{left}");
    // --purge-data deletes this database's dumps, and only those.
    let out = env.vds(&["remove", "--purge-data"]);
    assert_ok(&out);
    assert!(
        text(&out).contains(&format!("h3: deleted {BACKUP_DIR}/daily/shop-{day}.dump")),
        "{}",
        text(&out)
    );
    assert_eq!(
        stdout(&ssh(3, &format!("find {BACKUP_DIR} -type f | sort"))),
        format!("{BACKUP_DIR}/daily/other-2020-01-01.dump\n")
    );
    assert_ok(&ssh(
        3,
        "cd /tmp && runuser -u postgres -- dropdb shop_check && runuser -u postgres -- dropdb shop_copy && systemctl stop postgresql",
    ));
}

/// psql in the app's database container on h4, as its superuser.
fn app_psql(db: &str, sql: &str) -> String {
    let out = ssh(
        APP_HOST,
        &format!(
            "podman exec -e PGUSER=app shop_db_1 psql -qtAX -d {db} -c {}",
            shell_quote(sql)
        ),
    );
    assert_ok(&out);
    stdout(&out).trim().to_string()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn a_postgres_inside_a_compose_app_is_backed_up_and_restored_through_its_container() {
    let env = Env::new("app-backup");
    env.with_app_host();
    super::compose_system::build_postgres_image(APP_HOST);
    env.app_inventory();
    env.add_sections(
        r#""apps": [{"name": "shop", "node": "h4", "health_timeout": 60, "services": [
              {"name": "db", "image": "localhost/pg:15",
               "env": {"POSTGRES_USER": "app", "POSTGRES_DB": "shop"},
               "volumes": ["pgdata:/var/lib/postgresql/data"],
               "healthcheck": {"test": "pg_isready -U app -d shop", "interval": 1}}]}],
           "backups": [{"node": "h4", "database": "shop", "app": "shop", "service": "db", "db_user": "app"}]"#,
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    app_psql(
        "shop",
        "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 5000) g",
    );
    // The backup unit dumps through the container; the dump stays on the node.
    assert_ok(&ssh(APP_HOST, "systemctl start vds-backup-shop.service"));
    let day = stdout(&ssh(APP_HOST, "date -u +%Y-%m-%d"))
        .trim()
        .to_string();
    let out = env.vds(&["status"]);
    assert_ok(&out);
    assert_row(
        &out,
        &format!("h4 backup shop ok last good dump shop-{day}.dump"),
    );
    assert_row(&out, "h4 app shop/db ok running, healthy");
    let out = env.vds(&["backup", "restore", "h4", "--into", "shop_copy"]);
    assert_ok(&out);
    assert_says(
        &out,
        &format!("h4: restored shop-{day}.dump into database shop_copy (1 table(s))"),
    );
    assert_eq!(
        app_psql("shop_copy", "SELECT count(*), max(item) FROM orders"),
        "5000|item 999"
    );
    assert_ok(&env.vds(&["backup", "restore", "h4", "--verify"]));
    // The database stopped: the next backup fails, and status says so.
    assert_ok(&ssh(APP_HOST, "podman stop -t 10 shop_db_1 >/dev/null"));
    let out = ssh(APP_HOST, "systemctl start vds-backup-shop.service");
    assert!(!out.status.success(), "{}", text(&out));
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(&out, "h4 backup shop FAIL the last run failed");

    let out = env.vds(&["remove", "--purge-data"]);
    assert_ok(&out);
    assert!(
        text(&out).contains("h4: deleted volume shop_pgdata"),
        "{}",
        text(&out)
    );
    assert_eq!(
        stdout(&ssh(
            APP_HOST,
            "podman ps -aq | wc -l; podman volume ls -q | wc -l; ls /var/backups/vds-proxy/postgresql/daily 2>/dev/null | wc -l; \
             systemctl list-units --all --plain --no-legend 'vds-backup-*' | wc -l"
        )),
        "0\n0\n0\n0\n",
        "nothing is left, not even the failed backup service (a backup deployed later under the same name would inherit the failure)"
    );
}

#[test]
fn backup_copies_reach_another_node_through_a_key_that_can_do_nothing_else() {
    let env = Env::new("backup-copy");
    assert_ok(&ssh(
        3,
        &format!(
            "systemctl start postgresql && rm -rf {BACKUP_DIR} && cd /tmp && \
             runuser -u postgres -- dropdb --if-exists shop && runuser -u postgres -- createdb shop"
        ),
    ));
    psql(
        "shop",
        "create table orders(id int); insert into orders select generate_series(1, 1000)",
    );
    let copies = "/var/backups/vds-proxy/copies/h3";
    env.inventory("[]");
    env.add_sections(
        r#""backups": [{"node": "h3", "database": "shop", "copy_to": {"node": "h2", "keep": 2}}]"#,
    );
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    assert_says(&out, "create user vds-backup and the copy directories");
    assert!(
        !stdout(&env.vds(&["show", "--diff"])).contains("PRIVATE KEY"),
        "the private key never leaves h3"
    );
    // A run dumps on h3 and sends the dump to h2, where it is checked and kept.
    assert_ok(&ssh(3, "systemctl start vds-backup-shop.service"));
    let day = stdout(&ssh(3, "date -u +%Y-%m-%d")).trim().to_string();
    let here = stdout(&ssh(
        3,
        &format!("cut -d' ' -f1 {BACKUP_DIR}/daily/shop-{day}.dump.sha256"),
    ));
    let there = stdout(&ssh(
        2,
        &format!(
            "cd {copies} && sha256sum -c --status shop-{day}.dump.sha256 && cut -d' ' -f1 shop-{day}.dump.sha256 && stat -c '%U %a' . shop-{day}.dump"
        ),
    ));
    assert_eq!(there, format!("{here}vds-backup 700\nvds-backup 600\n"));
    // Only the newest `keep` copies stay.
    assert_ok(&ssh(
        2,
        &format!(
            "cd {copies} && for d in 2026-01-01 2026-01-02 2026-01-03; do touch shop-$d.dump shop-$d.dump.sha256; done"
        ),
    ));
    assert_ok(&ssh(3, "systemctl start vds-backup-shop.service"));
    assert_eq!(
        stdout(&ssh(2, &format!("ls {copies}"))),
        format!(
            "shop-2026-01-03.dump\nshop-2026-01-03.dump.sha256\nshop-{day}.dump\nshop-{day}.dump.sha256\n"
        )
    );
    // The key h3 holds gets no shell on h2, and cannot write outside the directory.
    let key = "ssh -i /etc/vds-proxy/backup-copy/id_ed25519 -o UserKnownHostsFile=/etc/vds-proxy/backup-copy/known_hosts -o BatchMode=yes vds-backup@10.213.2.2";
    for (cmd, refusal) in [
        ("id", "expected: DB NAME SHA256 KEEP"),
        ("shop ../../../etc/passwd 0000 3", "bad dump name"),
        ("shop shop-2026-01-04.dump 00 3", "bad checksum"),
    ] {
        let out = ssh(3, &format!("echo x | {key} '{cmd}'"));
        assert!(
            !out.status.success() && text(&out).contains(refusal),
            "{cmd}: {}",
            text(&out)
        );
    }
    assert_eq!(stdout(&ssh(2, &format!("ls {copies} | wc -l"))), "4\n");
    // A target that refuses makes the run fail (the dump stays on h3), and status says so.
    assert_ok(&ssh(
        2,
        "mv /var/lib/vds-backup/.ssh/authorized_keys /tmp/ak",
    ));
    let out = ssh(3, "systemctl start vds-backup-shop.service");
    assert!(!out.status.success());
    assert!(
        stdout(&ssh(3, "journalctl -u vds-backup-shop.service -n 5 -o cat"))
            .contains("failed; the dump is kept on this node")
    );
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(&out, "h3 backup shop FAIL the last run failed");
    assert_ok(&ssh(
        2,
        "mv /tmp/ak /var/lib/vds-backup/.ssh/authorized_keys",
    ));

    // remove takes back the key pair, known_hosts and authorized_keys; the copies stay.
    let out = env.vds(&["remove"]);
    assert_ok(&out);
    assert_eq!(
        stdout(&ssh(3, "ls /etc/vds-proxy/backup-copy 2>/dev/null | wc -l")),
        "0\n"
    );
    assert_eq!(
        stdout(&ssh(
            2,
            &format!(
                "ls /var/lib/vds-backup/.ssh/authorized_keys 2>&1 | grep -c 'No such file'; ls {copies} | wc -l"
            )
        )),
        "1\n4\n"
    );
    // --purge-data deletes the copies of shop (not other files there) and the copy user.
    assert_ok(&ssh(2, &format!("touch {copies}/other-2026-01-01.dump")));
    let out = env.vds(&["remove", "--purge-data"]);
    assert_ok(&out);
    assert!(
        text(&out).contains(&format!("h2: deleted {copies}/shop-{day}.dump"))
            && text(&out).contains("h2: deleted user vds-backup"),
        "{}",
        text(&out)
    );
    assert_eq!(
        stdout(&ssh(
            2,
            &format!("ls {copies}; id vds-backup 2>/dev/null | wc -l; rm -rf {copies}")
        )),
        "other-2026-01-01.dump\n0\n"
    );
    assert_ok(&ssh(
        3,
        "cd /tmp && runuser -u postgres -- dropdb shop && systemctl stop postgresql",
    ));
}
