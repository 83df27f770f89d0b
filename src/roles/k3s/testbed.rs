//! The k3s system's tests on real test hosts (included in `tests/testbed.rs`, whose harness
//! it uses).

use super::*;

/// k3s workloads on h2 (no Kubernetes server runs here: the test checks delivery, not
/// what k3s does with the files).
fn k3s_inventory(apps: &[&str]) -> String {
    let apps: Vec<String> = apps
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                r#"{{"name": "{a}", "image": "registry.example/{a}:1", "port": 8000, "node_port": {}}}"#,
                30081 + i
            )
        })
        .collect();
    format!(
        r#"{{"nodes": [{{"name": "h2", "public_ip": "10.213.2.2"}}],
            "k3s": {{"node": "h2", "namespace": "tg", "apps": [{}]}}}}"#,
        apps.join(", ")
    )
}

/// Manifests land where k3s's deploy controller looks, 0600; prune and remove delete their
/// objects first (k3s keeps them otherwise), then the files; status says plainly when it
/// cannot read readiness, and names objects left behind.
#[test]
fn k3s_manifests_are_placed_in_the_auto_deploy_directory_and_pruned() {
    let env = Env::new("k3s");
    let dir = "/var/lib/rancher/k3s/server/manifests";
    std::fs::write(
        env.dir.join("nodes.json"),
        k3s_inventory(&["tgweb", "tgapi"]),
    )
    .unwrap();
    let out = env.vds(&["deploy"]);
    assert_ok(&out);
    let listing = stdout(&ssh(2, &format!("cd {dir} && stat -c '%a %n' *")));
    assert_eq!(
        listing,
        "600 vds-proxy-tg-namespace.yaml\n600 vds-proxy-tg-tgapi.yaml\n600 vds-proxy-tg-tgweb.yaml\n"
    );
    let api = stdout(&ssh(2, &format!("cat {dir}/vds-proxy-tg-tgapi.yaml")));
    assert!(api.contains("      nodePort: 30082\n"), "{api}");

    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(
        &out,
        "h2 k3s deployment tg/tgweb FAIL kubectl not found on h2",
    );

    // No k3s server can run here: a recording stand-in for the `k3s` command takes its
    // place, logging each call (and whether the manifest was still there), and answering
    // `kubectl get` from canned files.
    assert_ok(&ssh(2, K3S_STANDIN));

    // Dropping an app deletes its objects (k3s would keep them), then prunes its manifest.
    std::fs::write(env.dir.join("nodes.json"), k3s_inventory(&["tgweb"])).unwrap();
    let out = env.vds(&["deploy"]);
    assert_says(&out, &format!("removed {dir}/vds-proxy-tg-tgapi.yaml"));
    assert_says(
        &out,
        &format!("took back what {dir}/vds-proxy-tg-tgapi.yaml configured before removing it"),
    );
    let listing = stdout(&ssh(2, &format!("ls {dir}")));
    assert_eq!(
        listing,
        "vds-proxy-tg-namespace.yaml\nvds-proxy-tg-tgweb.yaml\n"
    );
    assert_eq!(
        stdout(&ssh(2, "grep delete /var/log/k3s-standin.log")),
        format!(
            "kubectl delete --ignore-not-found -f {dir}/vds-proxy-tg-tgapi.yaml (manifest present)\n"
        )
    );

    // Status: readiness through k3s's kubectl, and objects the inventory no longer has.
    assert_ok(&ssh(
        2,
        "printf '@k8s tgweb 1 1\\n' > /etc/k3s-standin/ready; printf '@k8s-obj Deployment/tgweb tgweb\\n@k8s-obj Service/tgweb tgweb\\n@k8s-obj Deployment/old-api old-api\\n' > /etc/k3s-standin/objects",
    ));
    let out = env.vds(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_row(&out, "h2 k3s deployment tg/tgweb ok 1/1 replicas ready");
    assert_row(
        &out,
        "h2 k3s object tg/Deployment/old-api FAIL left behind: \"old-api\" is no longer in the inventory; delete it with `k3s kubectl -n tg delete deployment old-api`",
    );
    assert!(!text(&out).contains("Service/tgweb"), "{}", text(&out));

    // Remove deletes the remaining objects, then the files and the directories vds-proxy
    // created for them.
    assert!(env.vds(&["remove"]).status.success());
    let deletes = stdout(&ssh(2, "grep delete /var/log/k3s-standin.log | tail -n +2"));
    assert_eq!(
        deletes,
        format!(
            "kubectl delete --ignore-not-found -f {dir}/vds-proxy-tg-namespace.yaml (manifest present)\nkubectl delete --ignore-not-found -f {dir}/vds-proxy-tg-tgweb.yaml (manifest present)\n"
        )
    );
    assert_eq!(stdout(&ssh(2, "ls -d /var/lib/rancher 2>/dev/null")), "");
    assert_ok(&ssh(
        2,
        "rm -rf /usr/local/bin/k3s /etc/k3s-standin /var/log/k3s-standin.log",
    ));
}

/// Installs the recording `k3s` stand-in on a host (see the k3s test).
const K3S_STANDIN: &str = r#"mkdir -p /etc/k3s-standin && : > /var/log/k3s-standin.log && cat > /usr/local/bin/k3s <<'EOF'
#!/bin/bash
# A stand-in for k3s: records each call; `kubectl get` answers from /etc/k3s-standin.
if [ "$1 $2" = "kubectl delete" ]; then
  f=; prev=
  for a in "$@"; do [ "$prev" = -f ] && f=$a; prev=$a; done
  if [ -e "$f" ]; then state=present; else state=missing; fi
  echo "$* (manifest $state)" >> /var/log/k3s-standin.log
  exit 0
fi
echo "$*" >> /var/log/k3s-standin.log
case "$*" in
  *"get deployments -o"*) cat /etc/k3s-standin/ready 2>/dev/null ;;
  *"get deployments,"*) cat /etc/k3s-standin/objects 2>/dev/null ;;
esac
EOF
chmod 755 /usr/local/bin/k3s"#;
