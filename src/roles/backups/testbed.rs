//! PostgreSQL backups on real test hosts (included in `tests/testbed.rs`, whose harness it
//! uses): directories vds-proxy did not create keep their owner and mode.

use super::{Env, assert_error_says, assert_ok, ssh, stdout};

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
