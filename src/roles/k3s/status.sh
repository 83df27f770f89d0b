# shellcheck shell=sh
# k3s deployment readiness, for `status`.

# k8s_ready NAMESPACE: "@k8s NAME READY WANTED" per deployment of the namespace; kubectl's
# complaints as "@k8s-err" lines; "@k8s-nokubectl" when there is no kubectl.
k8s_ready() {
  if command -v kubectl >/dev/null 2>&1; then
    kubectl -n "$1" get deployments \
      -o jsonpath='{range .items[*]}@k8s {.metadata.name} {.status.readyReplicas} {.spec.replicas}{"\n"}{end}' 2>&1 |
      sed '/^@k8s /!s/^/@k8s-err /'
  else
    echo '@k8s-nokubectl'
  fi
}
