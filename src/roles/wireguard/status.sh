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

# wg_handshake IFACE SECONDS TIMEOUT PEER_ADDRESS...: sends a packet into the tunnel
# towards each peer (where there is no session, that starts a handshake), then waits up to
# SECONDS until every peer's latest handshake is at most TIMEOUT seconds old; says how many
# peers still have none.
wg_handshake() {
  iface=$1 wait=$2 timeout=$3
  shift 3
  command -v wg >/dev/null 2>&1 || return 0
  for a in "$@"; do
    bash -c 'echo > "/dev/udp/$1/9"' probe "$a" 2>/dev/null
  done
  n=0
  while :; do
    stale=$(wg show "$iface" latest-handshakes 2>/dev/null |
      awk -v now="$(date +%s)" -v max="$timeout" '$2 == 0 || now - $2 > max' | wc -l)
    [ "$stale" = 0 ] && return 0
    [ "$n" -ge "$((wait * 5))" ] && break
    sleep 0.2
    n=$((n + 1))
  done
  echo "$iface: $stale peer(s) without a handshake after ${wait} s (deployed and reachable?)"
}
