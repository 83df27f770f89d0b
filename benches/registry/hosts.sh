#!/usr/bin/env bash
# `just bench-registry`: the registry that `vds-proxy deploy` installs on testbed host h1
# (release build, hardened unit, access log to the journal) next to the same API written
# with Python's standard library (benches/registry/peer.py: ThreadingHTTPServer + sqlite3)
# on the same host, 50 farms registered, load from this machine with keep-alive
# connections (benches/registry/load.rs). Prints one table. Needs the testbed (3 hosts).
set -euo pipefail
cd "$(dirname "$0")/../.."
TB=${TESTBED:-/var/tmp/vds-proxy-testbed}
N=${REQUESTS:-300}
cargo build --release -q
LOAD=$(cargo bench --bench registry-load --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*registry_load[^"]*\)".*/\1/p' | tail -1)
[ -x "$LOAD" ] || { echo "bench-registry: load client not built" >&2; exit 1; }
V=$PWD/target/release/vds-proxy
h1() { ssh -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" root@10.213.1.2 "$@"; }
h1 true || { echo "bench-registry: no testbed; run tests/testbed/setup.sh 3" >&2; exit 1; }
ADMIN=bench-admin-token-0123456789abcdef
DIGEST=$(printf %s "$ADMIN" | sha256sum | cut -c1-64)
d=$(mktemp -d)
cleanup() {
  h1 'systemctl stop bench-peer 2>/dev/null; systemctl reset-failed bench-peer 2>/dev/null; rm -f /tmp/bench-peer.*' || true
  "$V" -i "$d/nodes.json" remove >/dev/null || true
  rm -rf "$d"
}
trap cleanup EXIT
printf 'ssh_key = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\n' "$TB" "$TB" > "$d/vds-proxy.toml"
cat > "$d/nodes.json" <<JSON
{"nodes": [{"name": "h1", "public_ip": "10.213.1.2"}],
 "registries": [{"node": "h1", "port": 8080, "tokens": [{"name": "bench", "role": "admin", "token": "$ADMIN", "rate_limit": 0}]}]}
JSON
"$V" -i "$d/nodes.json" deploy >/dev/null
for i in $(seq 1 50); do
  curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $ADMIN" \
    -d "{\"name\": \"farm-$i\", \"metadata\": {\"gpus\": $((i % 4))}}" "http://10.213.1.2:8080/api/farms/100.64.1.$i"
done
h1 'cat > /tmp/bench-peer.py' < benches/registry/peer.py
h1 "systemd-run -q --unit=bench-peer python3 /tmp/bench-peer.py 8090 /tmp/bench-peer.db $DIGEST"
up=
for _ in $(seq 50); do
  curl -fsS -o /dev/null -H "Authorization: Bearer $ADMIN" http://10.213.1.2:8090/api/farms 2>/dev/null && { up=1; break; }
  sleep 0.1
done
[ -n "$up" ] || { echo "bench-registry: the Python peer did not come up on h1:8090" >&2; exit 1; }

row() { # NAME METHOD PATH CLIENTS
  read -r vr v50 v99 vf < <("$LOAD" 10.213.1.2:8080 "$ADMIN" "$2" "$3" "$4" "$N")
  read -r pr p50 p99 pf < <("$LOAD" 10.213.1.2:8090 "$ADMIN" "$2" "$3" "$4" "$N")
  printf '| %s, %s clients | %s | %s / %s | %s | %s / %s | %s | %s |\n' "$1" "$4" "$vr" "$v50" "$v99" "$pr" "$p50" "$p99" \
    "$(echo "scale=2; $vr / $pr" | bc)" "$((vf + pf))"
}
echo "| request (50 farms), keep-alive | registry req/s | p50 / p99 ms | Python peer req/s | p50 / p99 ms | ratio | failures |"
echo "|---|---|---|---|---|---|---|"
for c in 1 32 128; do row "GET /api/farms" GET /api/farms "$c"; done
for c in 1 32; do row "POST heartbeat" POST /api/farms/100.64.1.7/heartbeat "$c"; done
