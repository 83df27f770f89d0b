//! The k3s system, rendered offline (included in `tests/render.rs`, whose helpers it uses).

use super::*;

/// `kubernetes-validate`, installed by `.ci/run` into /var/tmp/vds-kv (or on PATH).
fn kubernetes_validate() -> std::process::Command {
    let venv = "/var/tmp/vds-kv/bin/kubernetes-validate";
    let exe = if Path::new(venv).exists() {
        venv
    } else {
        "kubernetes-validate"
    };
    let mut c = std::process::Command::new(exe);
    c.args(["--strict", "--kubernetes-version", "1.30.0"]);
    c
}

/// Every rendered Kubernetes manifest validates against the official schemas (strict:
/// unknown fields are errors), and a broken one is rejected by the same check.
#[test]
fn rendered_k8s_manifests_validate_against_the_kubernetes_schemas() {
    let (_, plan) = plan_of("examples/mesh.json");
    let tmp = tempfile::Builder::new().prefix("vds-k8s-").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let manifests: Vec<_> = plan
        .hosts
        .iter()
        .flat_map(|h| &h.resources)
        .filter(|r| r.kind == vds_proxy::roles::k3s::manifest::K8S)
        .collect();
    let kinds: Vec<&str> = manifests
        .iter()
        .flat_map(|r| r.text_content().unwrap().lines())
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "NetworkPolicy",
            "Deployment",
            "Service",
            "Deployment",
            "Service",
            "Secret",
            "Deployment",
            "Service",
            "NetworkPolicy",
            "Job",
            "DaemonSet"
        ]
    );
    for r in &manifests {
        assert!(
            r.path
                .starts_with("/var/lib/rancher/k3s/server/manifests/vds-proxy-tg-")
        );
        let file = dir.join(r.path.rsplit('/').next().unwrap());
        std::fs::write(&file, r.text_content().unwrap()).unwrap();
        let out = kubernetes_validate().arg(&file).output().expect(
            "kubernetes-validate must be installed: python3 -m venv /var/tmp/vds-kv && /var/tmp/vds-kv/bin/pip install kubernetes-validate",
        );
        assert!(
            out.status.success(),
            "{}: {}{}",
            r.path,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let broken = dir.join("broken.yaml");
    let text = manifests[2]
        .text_content()
        .unwrap()
        .replacen("  replicas:", "  replica:", 1);
    std::fs::write(&broken, text).unwrap();
    assert!(
        !kubernetes_validate()
            .arg(&broken)
            .output()
            .unwrap()
            .status
            .success()
    );
}
