#!/usr/bin/env bash
# The main job in one command: build vds-proxy, boot two local test hosts, deploy the seed
# 000 system to them (h1 = the VDS, h2 = the node behind it), and print status.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null && command -v socat >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq debootstrap systemd-container openssh-client iproute2 socat >/dev/null; }
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
echo "== status";        $V -i "$DEMO/nodes.json" status
echo "(hosts keep running; stop them with: bash tests/testbed/down.sh)"
