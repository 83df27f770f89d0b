#!/usr/bin/env bash
# Wall time of `deploy` on 3 and 8 testbed hosts: first deploy and no-op re-deploy,
# next to the cost of one bare SSH connection + round trip. Prints a table.
set -euo pipefail
cd "$(dirname "$0")/../.."
# VDS_PROXY_BIN measures another build (e.g. an older one, for before/after figures).
[ -n "${VDS_PROXY_BIN:-}" ] || cargo build --release -q
TB=${TESTBED:-/var/tmp/vds-proxy-testbed}
V=${VDS_PROXY_BIN:-$PWD/target/release/vds-proxy}
printf '%-6s %-14s %-14s %-20s\n' hosts first_deploy noop_deploy bare_ssh_roundtrip
for n in 3 8; do
  bash tests/testbed/setup.sh "$n" >/dev/null
  d=$(mktemp -d)
  { printf '{"nodes": ['
    for i in $(seq 1 "$n"); do [ "$i" -gt 1 ] && printf ','; printf '{"name": "h%d", "public_ip": "10.213.%d.2"}' "$i" "$i"; done
    printf '], "routes": ['
    for i in $(seq 1 "$n"); do [ "$i" -gt 1 ] && printf ','; t=$(( i % n + 1 )); printf '{"port": 8443, "proxy_node": "h%d", "target_node": "h%d", "target_port": 9000, "service": "web"}' "$i" "$t"; done
    printf ']}'; } > "$d/nodes.json"
  printf 'ssh_key = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\n' "$TB" "$TB" > "$d/vds-proxy.toml"
  t0=$(date +%s.%N); "$V" -i "$d/nodes.json" deploy >/dev/null; t1=$(date +%s.%N)
  "$V" -i "$d/nodes.json" deploy >/dev/null; t2=$(date +%s.%N)
  ssh -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" root@10.213.1.2 true; t3=$(date +%s.%N)
  printf '%-6s %-14s %-14s %-20s\n' "$n" "$(echo "$t1 - $t0" | bc)s" "$(echo "$t2 - $t1" | bc)s" "$(echo "$t3 - $t2" | bc)s"
  rm -rf "$d"
done
