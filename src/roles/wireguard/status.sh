# shellcheck shell=sh
# WireGuard peer health, for `status`.

# wg_peers IFACE...: "@wgnow EPOCH", then per peer "@wg IFACE ALLOWED-IPS HANDSHAKE RX TX"
# from `wg show IFACE dump`, whose first line (the interface, with its private key) is
# dropped on the host.
wg_peers() {
  echo "@wgnow $(date +%s)"
  for i in "$@"; do
    wg show "$i" dump 2>/dev/null | tail -n +2 | awk -v i="$i" '{print "@wg " i, $4, $5, $6, $7}'
  done
}
