#!/usr/bin/env bash
# The main job in one command: build vds-proxy, boot two local test hosts, deploy to them
# forwarded routes (h1 = the VDS, h2 = the node behind it), replicas behind a
# transparent HAProxy on the VDS, and a WireGuard tunnel between the two; print status.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
if ! { command -v debootstrap && command -v systemd-nspawn && command -v socat; } >/dev/null; then
  apt-get update -qq && apt-get install -y -qq debootstrap systemd-container openssh-client iproute2 socat >/dev/null
fi
cargo build --release
bash tests/testbed/setup.sh 2
TB=${TESTBED:-/var/tmp/vds-proxy-testbed}
DEMO=$TB/demo; mkdir -p "$DEMO"
cat > "$DEMO/nodes.json" <<'JSON'
{
  "nodes": [
    {"name": "vds-1", "public_ip": "10.213.1.2", "tailscale_ip": "10.213.1.2", "domain": "tg.example.com", "ssh_user": "root", "ports": {"socat": [8443]}, "ram_gb": 2.0, "active": true},
    {"name": "k3s-node", "tailscale_ip": "10.213.2.2", "ports": {"k3s_host": [8443]}, "ram_gb": 8.0, "active": true}
  ],
  "routes": [
    {"domain": "tg.example.com", "port": 8443, "proxy_node": "vds-1", "target_node": "k3s-node", "target_port": 8443, "service": "tgweb", "ssl": true, "description": "Telegram Mini App (HTTPS)"},
    {"domain": "tg.example.com", "port": 8444, "proxy_node": "vds-1", "target_node": "k3s-node", "target_port": 8443, "service": "tgweb-legacy", "forwarder": "socat"}
  ],
  "services": [
    {"name": "mtproxy", "node": "vds-1", "replicas": 2, "base_port": 10000,
     "exec": ["/usr/bin/socat", "TCP-LISTEN:{port},fork,reuseaddr", "SYSTEM:echo replica on {port} sees $SOCAT_PEERADDR"],
     "secret": "0123456789abcdef0123456789abcdef",
     "balancer": {"port": 443, "transparent": true}}
  ],
  "wireguard": [
    {"interface": "wg0", "members": [
      {"node": "vds-1", "address": "10.99.0.1/24", "userspace": true},
      {"node": "k3s-node", "address": "10.99.0.2/24", "endpoint": "10.213.2.2:51820", "userspace": true}]}
  ]
}
JSON
cat > "$DEMO/vds-proxy.toml" <<TOML
ssh_key = "$TB/id_ed25519"
known_hosts = "$TB/known_hosts"
TOML
# A stand-in for the Mini App on the target: an echo service on 8443.
ssh -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" root@10.213.2.2 \
  'systemctl stop demo-app 2>/dev/null; systemctl reset-failed demo-app 2>/dev/null; systemd-run -q --unit=demo-app socat TCP-LISTEN:8443,fork,reuseaddr EXEC:cat'
V=target/release/vds-proxy
echo "== show --routes"; $V -i "$DEMO/nodes.json" show --routes
echo "== deploy";        $V -i "$DEMO/nodes.json" deploy
echo "== deploy again (no-op)"; $V -i "$DEMO/nodes.json" deploy
echo "== traffic through the VDS"; printf 'hello through vds-1:8443\n' | timeout 3 socat - TCP:10.213.1.2:8443
echo "== through HAProxy on vds-1:443 (TPROXY: the replica sees this machine's address)"
sleep 2; printf 'hello\n' | timeout 3 socat - TCP:10.213.1.2:443
echo "== over the WireGuard tunnel, from vds-1 to k3s-node's tunnel address"
ssh -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" root@10.213.1.2 \
  "printf 'hello over wg0\n' | timeout 3 socat - TCP:10.99.0.2:8443"
echo "== status";        $V -i "$DEMO/nodes.json" status
echo "(hosts keep running; stop them with: bash tests/testbed/down.sh)"
