#!/usr/bin/env bash
# bench-fleet: the same stack on N test hosts — a socat route per host (port 8443 to the
# next host's balancer) and one balanced service (HAProxy on 8500 in front of socat echo
# replicas) — deployed by vds-proxy and by pyinfra 3 (benches/fleet/deploy.py), next to the
# SSH floor (N parallel `ssh -o ControlMaster=no host true`). For each N given (default
# 8 32 100): first apply, no-op, scale 2 -> 3 replicas on every host, a one-host change
# (h1 3 -> 4), and vds-proxy's status; seconds, and each as a multiple of the floor. The
# floor and both no-ops are the best of three runs (they are short and the machine is
# noisy); the floor is measured after vds-proxy's first apply, with the stack (and its
# health checks) running, as during the steps it is compared with, each of its runs next
# to one of vds-proxy's no-ops; every login of the floor must succeed.
# Boots the test hosts itself (tests/testbed/setup.sh N) and stops them at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -n "${VDS_PROXY_BIN:-}" ] || cargo build --release -q
V=${VDS_PROXY_BIN:-$PWD/target/release/vds-proxy}
TB=${TESTBED:-/var/tmp/vds-proxy-testbed}
PY=/var/tmp/vds-pyinfra
[ -x "$PY/bin/pyinfra" ] || { python3 -m venv "$PY" && "$PY/bin/pip" install -q 'pyinfra>=3,<4'; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(8 32 100)
d=$(mktemp -d)
trap 'rm -rf "$d"; bash tests/testbed/down.sh >/dev/null 2>&1 || true' EXIT
printf 'ssh_key = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\ncommand_timeout = 300\nconnect_timeout = 30\n' "$TB" "$TB" > "$d/vds-proxy.toml"

# inventories N REPLICAS [H1_REPLICAS]: nodes.json for vds-proxy, inventory.py for pyinfra.
inventories() {
  local n=$1 r=$2 r1=${3:-$2}
  { printf '{"nodes": ['
    for i in $(seq 1 "$n"); do [ "$i" -gt 1 ] && printf ','; printf '{"name": "h%d", "public_ip": "10.213.%d.2", "tailscale_ip": "10.213.%d.2"}' "$i" "$i" "$i"; done
    printf '], "routes": ['
    for i in $(seq 1 "$n"); do [ "$i" -gt 1 ] && printf ','; printf '{"port": 8443, "proxy_node": "h%d", "target_node": "h%d", "target_port": 8500, "service": "r%d", "forwarder": "socat"}' "$i" $(( i % n + 1 )) "$i"; done
    printf '], "services": ['
    for i in $(seq 1 "$n"); do [ "$i" -gt 1 ] && printf ','; rr=$r; [ "$i" = 1 ] && rr=$r1
      printf '{"name": "echo%d", "node": "h%d", "replicas": %d, "base_port": 10000, "exec": ["/usr/bin/socat", "TCP-LISTEN:{port},fork,reuseaddr", "EXEC:cat"], "balancer": {"port": 8500}}' "$i" "$i" "$rr"; done
    printf ']}'; } > "$d/nodes.json"
  { echo "hosts = ["
    for i in $(seq 1 "$n"); do rr=$r; [ "$i" = 1 ] && rr=$r1
      echo "    (\"h$i\", {\"ssh_hostname\": \"10.213.$i.2\", \"replicas\": $rr, \"base_port\": 10000, \"next_ip\": \"10.213.$(( i % n + 1 )).2\"}),"; done
    echo "]"
    echo "_data = {\"ssh_user\": \"root\", \"ssh_key\": \"$TB/id_ed25519\", \"ssh_known_hosts_file\": \"$TB/known_hosts\", \"ssh_strict_host_key_checking\": \"yes\", \"ssh_look_for_keys\": False, \"ssh_allow_agent\": False}"
    echo "hosts = (hosts, _data)"; } > "$d/inventory.py"
}
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >"$d/out" 2>&1 || { echo "FAILED: $* (its output: ${FLEET_FAILED_OUT:-/tmp/fleet-failed.txt})" >&2; cp "$d/out" "${FLEET_FAILED_OUT:-/tmp/fleet-failed.txt}"; exit 1; }; t1=$(date +%s.%N); printf '%.2f' "$(echo "$t1 - $t0" | bc)"; }
vds() { "$V" -i "$d/nodes.json" "$@" --parallel "$n"; }
pyi() { "$PY/bin/pyinfra" "$d/inventory.py" benches/fleet/deploy.py -y --parallel "$n" --no-wait; }
floor() {
  local pids=() p bad=0
  for i in $(seq 1 "$n"); do ssh -o ControlMaster=no -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" "root@10.213.$i.2" true & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || bad=1; done
  return "$bad"
}
# The route on h1 answers through h2's HAProxy within 15 s (its health checks bring the
# replicas up after 2 x 2 s).
echoes() {
  for _ in $(seq 1 30); do
    [ "$(echo ping | socat -t 2 - TCP:10.213.1.2:8443 2>/dev/null)" = ping ] && return 0
    sleep 0.5
  done
  return 1
}
best() { printf '%s\n' "$@" | sort -n | head -1; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

for n in "${sizes[@]}"; do
  bash tests/testbed/setup.sh "$n" >/dev/null
  for i in $(seq 1 "$n"); do ssh -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" "root@10.213.$i.2" 'systemctl is-system-running --wait >/dev/null 2>&1 || true' & done; wait
  inventories "$n" 2
  v1=$(secs vds deploy); echoes || { echo "vds-proxy stack does not echo" >&2; exit 1; }
  # The floor under the load the steps after the first apply have: the stack running.
  # Floor and no-op in turn, so that a slow spell of the machine weighs on both.
  fs=() ns=()
  for _ in 1 2 3; do fs+=("$(secs floor)"); ns+=("$(secs vds deploy)"); done
  F=$(best "${fs[@]}") v2=$(best "${ns[@]}")
  echo
  echo "## $n hosts (SSH floor: $F s)"
  echo
  echo '| step | pyinfra | vds-proxy | vds-proxy / pyinfra |'
  echo '|---|---|---|---|'
  inventories "$n" 3; v3=$(secs vds deploy)
  inventories "$n" 3 4; v4=$(secs vds deploy)
  vs=$(secs vds status); cp "$d/out" "${FLEET_STATUS_OUT:-/dev/null}"
  secs vds remove >/dev/null
  inventories "$n" 2
  p1=$(secs pyi); echoes || { echo "pyinfra stack does not echo" >&2; exit 1; }
  p2=$(best "$(secs pyi)" "$(secs pyi)" "$(secs pyi)")
  inventories "$n" 3; p3=$(secs pyi)
  inventories "$n" 3 4; p4=$(secs pyi)
  for pair in "first apply:$p1:$v1" "no-op:$p2:$v2" "scale 2 -> 3 (every host):$p3:$v3" "one-host change:$p4:$v4"; do
    IFS=: read -r step p v <<< "$pair"
    printf '| %s | %s s (%sx) | %s s (%sx) | %s |\n' "$step" "$p" "$(ratio "$p" "$F")" "$v" "$(ratio "$v" "$F")" "$(ratio "$v" "$p")"
  done
  printf '| status | - | %s s (%sx) | - |\n' "$vs" "$(ratio "$vs" "$F")"
  echo
  echo "Floor runs: ${fs[*]} s; vds-proxy no-op runs (each after one of them): ${ns[*]} s."
done
