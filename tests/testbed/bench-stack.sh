#!/usr/bin/env bash
# Wall time of applies on the 3-host testbed (release build) for seed 003's balancer and
# the WireGuard mesh: first apply, no-op re-apply, scaling 2 -> 3 replicas, and whether a
# no-op restarted anything (InvocationIDs before and after). Prints one line per step.
set -euo pipefail
cd "$(dirname "$0")/../.."
# VDS_PROXY_BIN measures another build (e.g. an older one, for before/after figures).
[ -n "${VDS_PROXY_BIN:-}" ] || cargo build --release -q
TB=${TESTBED:-/var/tmp/vds-proxy-testbed}
V=${VDS_PROXY_BIN:-$PWD/target/release/vds-proxy}
[ "$(wc -l < "$TB/hosts.txt" 2>/dev/null || echo 0)" -ge 3 ] || bash tests/testbed/setup.sh 3 >/dev/null
d=$(mktemp -d)
printf 'ssh_key = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\n' "$TB" "$TB" > "$d/vds-proxy.toml"
on() { ssh -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" "root@10.213.$1.2" "$2"; }
nodes='{"name": "h1", "public_ip": "10.213.1.2", "tailscale_ip": "10.213.1.2"}, {"name": "h2", "public_ip": "10.213.2.2", "tailscale_ip": "10.213.2.2"}, {"name": "h3", "public_ip": "10.213.3.2", "tailscale_ip": "10.213.3.2"}'
balanced() { # replicas: one transparent balanced echo service on every host
  printf '{"nodes": [%s], "services": [' "$nodes"
  for i in 1 2 3; do [ "$i" -gt 1 ] && printf ','
    printf '{"name": "echo%d", "node": "h%d", "replicas": %d, "base_port": 10000, "exec": ["/usr/bin/socat", "TCP-LISTEN:{port},fork,reuseaddr", "EXEC:cat"], "balancer": {"port": 8500, "transparent": true}}' "$i" "$i" "$1"
  done
  printf ']}'
}
wireguard() {
  printf '{"nodes": [%s], "wireguard": [{"interface": "wg0", "members": [' "$nodes"
  for i in 1 2 3; do [ "$i" -gt 1 ] && printf ','; printf '{"node": "h%d", "address": "10.99.0.%d/24", "userspace": true}' "$i" "$i"; done
  printf ']}]}'
}
timed() { local t0 t1; t0=$(date +%s.%N); "$V" -i "$d/nodes.json" "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
ids() { for i in 1 2 3; do on "$i" "systemctl show -P InvocationID $1"; done | tr '\n' ' '; }

"$V" -i "$d/nodes.json" remove >/dev/null 2>&1 || true
balanced 2 > "$d/nodes.json"
echo "balancer (3 hosts, transparent, 2 replicas each): first apply $(timed deploy) s"
before=$(ids haproxy.service)
echo "balancer: no-op apply $(timed deploy) s"
[ "$before" = "$(ids haproxy.service)" ] && echo "balancer: no-op restarted nothing" || echo "balancer: no-op RESTARTED haproxy"
balanced 3 > "$d/nodes.json"
echo "balancer: scale 2 -> 3 $(timed deploy) s"
echo "balancer: remove $(timed remove) s"
wireguard > "$d/nodes.json"
echo "wireguard (3 hosts, full mesh, wireguard-go): first apply $(timed deploy) s"
before=$(ids wg-quick@wg0.service)
echo "wireguard: no-op apply $(timed deploy) s"
[ "$before" = "$(ids wg-quick@wg0.service)" ] && echo "wireguard: no-op restarted nothing" || echo "wireguard: no-op RESTARTED a tunnel"
echo "wireguard: remove $(timed remove) s"
rm -rf "$d"
