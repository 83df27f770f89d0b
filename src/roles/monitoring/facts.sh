# shellcheck shell=sh
# The facts tool of vds-proxy's monitoring, installed on every monitored node with the
# settings OUT, TUNNELS, BALANCERS, BACKUPS, FIREWALL, RELAY and MANIFEST written above
# this line. A timer
# runs it; it writes what only vds-proxy knows as metrics for node_exporter's textfile
# collector, in one file replaced atomically:
#
#   vds_facts_timestamp_seconds                          when it last ran
#   vds_wireguard_last_handshake_seconds{interface,peer} a tunnel peer's latest handshake
#                                                        (0: the tunnel is not up)
#   vds_backend_up{service,server}                       HAProxy's view of a replica
#   vds_backup_last_success_seconds{database}            the last good dump (before any:
#                                                        when the backup was installed)
#   vds_backup_failed{database}                          the last run failed
#   vds_firewall_state{state}                            ok, pending, reverted or changed
#   vds_managed_files_drifted                            files changed since the last deploy
#   haproxy_*, vds_relay_*                               HAProxy's and the relay's own
#                                                        exporters, as they are
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# A label value as the text format wants it: \ and " escaped, one line.
esc() { printf '%s' "$1" | tr -d '\n' | sed 's/\\/\\\\/g; s/"/\\"/g'; }

# TUNNELS lines "INTERFACE PEER_NODE PEER_ADDRESS": the peer is the one whose allowed IPs
# hold its address. A packet towards it first keeps a session (and its handshakes) going
# where the tunnel has no keepalive. Before a first handshake, the time the tunnel came up
# stands in (a tunnel just started is not down yet); a tunnel that is not up reports 0.
tunnels() {
  echo "$TUNNELS" | while read -r iface peer addr; do
    [ -n "$iface" ] || continue
    command -v bash >/dev/null 2>&1 && bash -c 'echo > "/dev/udp/$1/9"' poke "$addr" 2>/dev/null
    ts=$(wg show "$iface" dump 2>/dev/null | awk -v a="$addr" 'NR > 1 {
      n = split($4, ips, ","); for (i = 1; i <= n; i++) if (ips[i] == a "/32" || ips[i] == a "/128") print $5 }' | head -n 1)
    if [ "${ts:-0}" = 0 ] && systemctl is-active -q "wg-quick@$iface"; then
      ts=$(date -d "$(systemctl show -P ActiveEnterTimestamp "wg-quick@$iface")" +%s 2>/dev/null)
    fi
    echo "vds_wireguard_last_handshake_seconds{interface=\"$(esc "$iface")\",peer=\"$(esc "$peer")\"} ${ts:-0}"
  done
}

# BALANCERS lines "STATS_ADDRESS": HAProxy's stats page as CSV; a row per server.
backends() {
  echo "$BALANCERS" | while read -r addr; do
    [ -n "$addr" ] || continue
    curl -s -m 5 "http://$addr/;csv" 2>/dev/null | awk -F, '
      /^#/ || $2 == "FRONTEND" || $2 == "BACKEND" || $1 == "stats" || NF < 18 { next }
      { gsub(/["\\]/, "", $1); gsub(/["\\]/, "", $2)
        printf "vds_backend_up{service=\"%s\",server=\"%s\"} %d\n", $1, $2, ($18 ~ /^UP/ || $18 == "no check") }'
  done
}

# BACKUPS lines "DATABASE DIRECTORY UNIT TIMER_FILE". (A metric's lines stay together:
# the text format wants each family in one group.)
backups() {
  echo "$BACKUPS" | while read -r db dir _ timer; do
    [ -n "$db" ] || continue
    when=
    [ -r "$dir/.last-ok-$db" ] && read -r when _ < "$dir/.last-ok-$db"
    [ -n "$when" ] || when=$(stat -c %Y "$timer" 2>/dev/null || echo 0)
    echo "vds_backup_last_success_seconds{database=\"$(esc "$db")\"} $when"
  done
  echo "$BACKUPS" | while read -r db _ unit _; do
    [ -n "$db" ] || continue
    result=$(systemctl show -P Result "$unit" 2>/dev/null)
    failed=0
    [ -n "$result" ] && [ "$result" != success ] && failed=1
    echo "vds_backup_failed{database=\"$(esc "$db")\"} $failed"
  done
}

# drifted: managed files whose content is not what the last deploy wrote (the manifest's
# digest; secret files have none and are left out), counted with one sha256sum.
drifted() {
  [ -r "$MANIFEST" ] || return 0
  n=$(sed -n 's/^{"path":"\([^"]*\)","sha256":"\([0-9a-f]\{64\}\)",.*/\2  \1/p' "$MANIFEST" |
    sha256sum -c --quiet 2>/dev/null | grep -c ': FAILED')
  echo "vds_managed_files_drifted ${n:-0}"
}

# The relay's own counters (its metrics endpoint on the loopback), as they are.
relay_metrics() {
  [ -z "$RELAY" ] || curl -s -m 5 -f "http://$RELAY/metrics" 2>/dev/null
}

# HAProxy's own metrics (its Prometheus exporter on the stats page, `/metrics`), as is.
haproxy_metrics() {
  echo "$BALANCERS" | while read -r addr; do
    [ -n "$addr" ] || continue
    curl -s -m 5 -f "http://$addr/metrics" 2>/dev/null
  done
}

firewall() {
  [ -n "$FIREWALL" ] && [ -x "$FIREWALL" ] || return 0
  state=$("$FIREWALL" status 2>/dev/null | sed -n 's/^@firewall \([a-z]*\).*/\1/p')
  for s in ok pending reverted changed; do
    v=0
    [ "$s" = "$state" ] && v=1
    echo "vds_firewall_state{state=\"$s\"} $v"
  done
}

tmp="$OUT.$$"
{
  echo "vds_facts_timestamp_seconds $(date +%s)"
  tunnels
  backends
  backups
  firewall
  drifted
  haproxy_metrics
  relay_metrics
  # What a part could not read (a relay that is down) is left out, not the whole file.
  true
} > "$tmp" && mv -f "$tmp" "$OUT"
