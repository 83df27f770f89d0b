# shellcheck shell=sh
# k3s deployment readiness and the objects vds-proxy made, for `status`.

# k8s ARG...: kubectl, as k3s ships it where k3s is installed.
k8s() {
  if command -v k3s >/dev/null 2>&1; then k3s kubectl "$@"; else kubectl "$@"; fi
}

# k8s_present: true when there is a kubectl to ask ("@k8s-nokubectl" otherwise).
k8s_present() {
  command -v k3s >/dev/null 2>&1 || command -v kubectl >/dev/null 2>&1 || { echo '@k8s-nokubectl'; return 1; }
}

# k8s_ready NAMESPACE: "@k8s NAME READY WANTED" per deployment of the namespace; kubectl's
# complaints as "@k8s-err" lines.
k8s_ready() {
  k8s_present || return 0
  k8s -n "$1" get deployments \
    -o jsonpath='{range .items[*]}@k8s {.metadata.name} {.status.readyReplicas} {.spec.replicas}{"\n"}{end}' 2>&1 |
    sed '/^@k8s /!s/^/@k8s-err /'
}

# k8s_objects NAMESPACE: "@k8s-obj KIND/NAME APP" for every object vds-proxy made there
# (label app.kubernetes.io/managed-by=vds-proxy), APP its app.kubernetes.io/name label.
k8s_objects() {
  k8s_present || return 0
  k8s -n "$1" get deployments,services,secrets,jobs,daemonsets,networkpolicies \
    -l app.kubernetes.io/managed-by=vds-proxy \
    -o jsonpath='{range .items[*]}@k8s-obj {.kind}/{.metadata.name} {.metadata.labels.app\.kubernetes\.io/name}{"\n"}{end}' 2>&1 |
    sed '/^@k8s-obj /!s/^/@k8s-err /'
}
