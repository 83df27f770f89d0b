#!/usr/bin/env bash
# `just bench-relay` first table: forwarders as users run them, on the test hosts. h1 runs
# the relay unit that `vds-proxy deploy` installs (journald logging by default, hardened
# unit), next to HAProxy 2.6 (TCP mode, with and without `option tcplog` to the journal)
# and socat fork, all on h1 and all forwarding to the same C epoll backend on h2; the load
# comes from this machine. One run, every forwarder measured the same way; the ratio column
# compares with HAProxy without logging. Bounded: every step runs a few seconds, and what
# the script starts on the hosts is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/relay/lib.sh
. benches/relay/lib.sh
SECS=${SECS:-3}
TB=${TESTBED:-/var/tmp/vds-proxy-testbed}
[ "$(wc -l 2>/dev/null < "$TB/hosts.txt" || echo 0)" -ge 2 ] || bash tests/testbed/setup.sh 3 >/dev/null
on() { ssh -o BatchMode=yes -o ConnectTimeout=10 -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" "root@10.213.$1.2" "$2"; }
H1=10.213.1.2 H2=10.213.2.2
ECHO=20001 SRC=20002
W=$(mktemp -d /tmp/vds-bench-hosts.XXXXXX)
V=${VDS_PROXY_BIN:-$PWD/target/release/vds-proxy}
cleanup() {
  if [ -n "${tw_before:-}" ]; then on 1 "sysctl -qw net.ipv4.tcp_tw_reuse=$tw_before" || true; fi
  on 1 'systemctl stop bench-haproxy bench-haproxy-log bench-socat-echo bench-socat-src 2>/dev/null; systemctl reset-failed bench-haproxy bench-haproxy-log bench-socat-echo bench-socat-src 2>/dev/null' || true
  on 2 'systemctl stop bench-backend 2>/dev/null; systemctl reset-failed bench-backend 2>/dev/null' || true
  if [ -f "$W/nodes.json" ]; then "$V" -i "$W/nodes.json" remove >/dev/null 2>&1 || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
trap "exit 1" INT TERM
sysctl -qw net.ipv4.tcp_tw_reuse=1 || true
# Every forwarder connects to the backend from h1: at thousands of short connections a
# second the ~28k local ports towards one backend are all in TIME_WAIT within seconds, and
# connect() then spends its time searching for a free one (whichever forwarder runs later
# is slowed down). Let h1 reuse TIME_WAIT ports, as a busy proxy host should
# (README: "Many short connections"), and give each forwarder a fresh start.
tw_before=$(on 1 'sysctl -n net.ipv4.tcp_tw_reuse')
on 1 'sysctl -qw net.ipv4.tcp_tw_reuse=1'

gcc -O2 -o "$W/backend" benches/relay/backend.c
[ -n "${VDS_PROXY_BIN:-}" ] || cargo build --release -q
LOAD=$(cargo bench --bench relay-load --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*relay_load[^"]*\)".*/\1/p' | tail -1)
[ -x "$LOAD" ] || { echo "bench-relay: load client not built" >&2; exit 1; }

# The backend on h2.
on 2 "systemctl stop bench-backend 2>/dev/null; rm -f /usr/local/bin/bench-backend" || true
scp -q -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" "$W/backend" "root@$H2:/usr/local/bin/bench-backend"
on 2 "systemctl stop bench-backend 2>/dev/null; systemctl reset-failed bench-backend 2>/dev/null; systemd-run -q --unit=bench-backend -p LimitNOFILE=20000 /usr/local/bin/bench-backend $ECHO $SRC any"

# The relay, deployed by vds-proxy: default logging (one journal line per connection).
printf 'ssh_key = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\n' "$TB" "$TB" > "$W/vds-proxy.toml"
cat > "$W/nodes.json" <<JSON
{"nodes": [{"name": "h1", "public_ip": "$H1", "tailscale_ip": "$H1"},
           {"name": "h2", "public_ip": "$H2", "tailscale_ip": "$H2"}],
 "routes": [
   {"port": 21001, "proxy_node": "h1", "target_node": "h2", "target_port": $ECHO, "service": "echo"},
   {"port": 21002, "proxy_node": "h1", "target_node": "h2", "target_port": $SRC, "service": "source"},
   {"port": 21003, "proxy_node": "h1", "target_node": "h2", "target_port": $ECHO, "service": "echo-quiet", "log": "off"},
   {"port": 21004, "proxy_node": "h1", "target_node": "h2", "target_port": $SRC, "service": "source-quiet", "log": "off"}]}
JSON
"$V" -i "$W/nodes.json" deploy >/dev/null

# HAProxy and socat on h1, as transient units with CPU accounting.
haproxy_cfg() { # port-offset log?
  printf 'global\n  maxconn 8000\n%s\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n%s\n' \
    "$([ "$2" = log ] && echo '  log /dev/log local0')" "$([ "$2" = log ] && printf '  log global\n  option tcplog')"
  printf 'frontend echo\n  bind :%d\n  default_backend echo\nbackend echo\n  server s %s:%d\n' $((22001 + $1)) "$H2" $ECHO
  printf 'frontend source\n  bind :%d\n  default_backend source\nbackend source\n  server s %s:%d\n' $((22002 + $1)) "$H2" $SRC
}
haproxy_cfg 0 nolog > "$W/haproxy.cfg"
haproxy_cfg 10 log > "$W/haproxy-log.cfg"
for f in haproxy haproxy-log; do
  on 1 "cat > /run/bench-$f.cfg" < "$W/$f.cfg"
  on 1 "haproxy -c -q -f /run/bench-$f.cfg && systemctl stop bench-$f 2>/dev/null; systemctl reset-failed bench-$f 2>/dev/null; systemd-run -q --unit=bench-$f -p CPUAccounting=yes -p LimitNOFILE=20000 haproxy -db -f /run/bench-$f.cfg"
done
on 1 "systemctl stop bench-socat-echo bench-socat-src 2>/dev/null; systemctl reset-failed bench-socat-echo bench-socat-src 2>/dev/null
      systemd-run -q --unit=bench-socat-echo -p CPUAccounting=yes -p LimitNOFILE=20000 socat TCP-LISTEN:23001,fork,reuseaddr,backlog=4096 TCP:$H2:$ECHO
      systemd-run -q --unit=bench-socat-src -p CPUAccounting=yes socat TCP-LISTEN:23002,fork,reuseaddr,backlog=4096 TCP:$H2:$SRC"
sleep 1

# CPU time (clock ticks, 1/100 s) of a unit's main process, its threads and the children it
# reaped (socat's forks).
cpu_ticks() { on 1 "awk '{print \$14 + \$15 + \$16 + \$17}' /proc/\$(systemctl show -P MainPID $1)/stat"; }
# Proportional set size (kB) of every process of a unit.
pss() { on 1 "t=0; for p in \$(cat /sys/fs/cgroup/systemd\$(systemctl show -P ControlGroup $1)/cgroup.procs 2>/dev/null); do v=\$(awk '/^Pss:/ {print \$2}' /proc/\$p/smaps_rollup 2>/dev/null); t=\$((t + \${v:-0})); done; echo \$t"; }

SPECS=("haproxy bench-haproxy 22001 22002" "haproxy+tcplog bench-haproxy-log 22011 22012"
       "relay(deployed) vds-relay.service 21001 21002" "relay,log=off vds-relay.service 21003 21004"
       "socat-fork bench-socat-echo 23001 23002")
# Short connections: the machine's speed drifts by more than the forwarders differ (HAProxy
# alone ranged 3500-5400 conn/s within one run), so every other forwarder is measured in
# PAIRS pairs with HAProxy, back to back, which one goes first alternating; its ratio is the
# median of the ratios within the pairs. Bulk: ROUNDS rounds, every forwarder once per
# round, each round starting one further down the list. The medians count; CPU is summed.
PAIRS=${PAIRS:-9}
ROUNDS=${ROUNDS:-5}
declare -A runs pair_ratios bulk1 bulk16 echo1 echo16 echo64 mix_p99 mix_mbps ticks fails_of
short() { # NAME UNIT PORT: one short-connection run, its figures recorded; prints conn/s
  local c0 c1 cps fails
  sleep 1 # let TIME_WAIT of the previous run drain a little
  c0=$(cpu_ticks "$2")
  read -r cps fails < <("$LOAD" cps "$H1:$3" 4 "$SECS")
  c1=$(cpu_ticks "$2")
  runs[$1]="${runs[$1]:-} $cps"
  ticks[$1]=$(( ${ticks[$1]:-0} + c1 - c0 ))
  fails_of[$1]=$(( ${fails_of[$1]:-0} + fails ))
  echo "$cps"
}
read -r base_name base_unit base_port _ <<< "${SPECS[0]}"
for pair in $(seq 0 $((PAIRS - 1))); do
  for spec in "${SPECS[@]:1}"; do
    read -r name unit eport _ <<< "$spec"
    if [ $((pair % 2)) = 0 ]; then
      short "$base_name" "$base_unit" "$base_port" > "$W/base"; short "$name" "$unit" "$eport" > "$W/this"
    else
      short "$name" "$unit" "$eport" > "$W/this"; short "$base_name" "$base_unit" "$base_port" > "$W/base"
    fi
    pair_ratios[$name]="${pair_ratios[$name]:-} $(awk -v a="$(cat "$W/this")" -v b="$(cat "$W/base")" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
  done
done
for round in $(seq 0 $((ROUNDS - 1))); do
  for k in "${!SPECS[@]}"; do
    read -r name unit eport sport <<< "${SPECS[$(( (k + round) % ${#SPECS[@]} ))]}"
    bulk1[$name]="${bulk1[$name]:-} $("$LOAD" bulk "$H1:$sport" 1 "$SECS")"
    bulk16[$name]="${bulk16[$name]:-} $("$LOAD" bulk "$H1:$sport" 16 "$SECS")"
    # Both ways at once (each stream writes and reads, as a proxied TLS session does).
    echo1[$name]="${echo1[$name]:-} $("$LOAD" echo "$H1:$eport" 1 "$SECS")"
    echo16[$name]="${echo16[$name]:-} $("$LOAD" echo "$H1:$eport" 16 "$SECS")"
    echo64[$name]="${echo64[$name]:-} $("$LOAD" echo "$H1:$eport" 64 "$SECS")"
    # Mixed: 16 echo streams running while short connections arrive (their p99, ms).
    read -r _ p99 _ mfails mbps < <("$LOAD" mixed "$H1:$eport" 16 "$SECS")
    mix_p99[$name]="${mix_p99[$name]:-} $p99"
    mix_mbps[$name]="${mix_mbps[$name]:-} $mbps"
    fails_of[$name]=$(( ${fails_of[$name]:-0} + mfails ))
  done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR] = $1} END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

printf '%-22s %9s %6s %6s %9s %6s %9s %6s %8s %6s %8s %6s %8s %6s %8s %6s %8s %8s %10s %9s\n' forwarder conn/s x fails "MB/s x1" "x(1)" "MB/s x16" "x(16)" \
  "echo x1" "x" "echo x16" "x" "echo x64" "x" "mix p99" "x" "p50 us" "p99 us" "B/idle@1k" "us CPU/c"
base_b1=0 base_b16=0 base_e1=0 base_e16=0 base_e64=0 base_m=0
for spec in "${SPECS[@]}"; do
  read -r name unit eport sport <<< "$spec"
  cps=$(median <<< "${runs[$name]}")
  cps_x=1.00
  [ "$name" = haproxy ] || cps_x=$(median <<< "${pair_ratios[$name]}" | awk '{ printf "%.2f", $1 }')
  all_conns=$(tr ' ' '\n' <<< "${runs[$name]}" | awk -v s="$SECS" '{ n += $1 * s } END { print n }')
  cpu=$(awk -v t="${ticks[$name]}" -v n="$all_conns" 'BEGIN { if (n > 0) printf "%.0f", t * 10000 / n; else print "-" }')
  b1=$(median <<< "${bulk1[$name]}")
  b16=$(median <<< "${bulk16[$name]}")
  e1=$(median <<< "${echo1[$name]}")
  e16=$(median <<< "${echo16[$name]}")
  e64=$(median <<< "${echo64[$name]}")
  m99=$(median <<< "${mix_p99[$name]}")
  read -r p50 p99 < <("$LOAD" latency "$H1:$eport" 5000)
  # Once per process: a second route of the same unit would reuse the memory the first grew.
  idle=-
  case " ${idle_done:-} " in *" $unit "*) ;; *) idle=$(idle_cost "$H1:$eport" 1000 pss "$unit"); idle_done="${idle_done:-} $unit" ;; esac
  [ "$name" = haproxy ] && { base_b1=$b1; base_b16=$b16; base_e1=$e1; base_e16=$e16; base_e64=$e64; base_m=$m99; }
  printf '%-22s %9s %6s %6s %9s %6s %9s %6s %8s %6s %8s %6s %8s %6s %8s %6s %8s %8s %10s %9s\n' "$name" "$cps" "$cps_x" "${fails_of[$name]}" \
    "$b1" "$(ratio "$b1" "$base_b1")" "$b16" "$(ratio "$b16" "$base_b16")" \
    "$e1" "$(ratio "$e1" "$base_e1")" "$e16" "$(ratio "$e16" "$base_e16")" "$e64" "$(ratio "$e64" "$base_e64")" \
    "$m99" "$(ratio "$base_m" "$m99")" "$p50" "$p99" "$idle" "$cpu"
done
echo "conn/s, MB/s: medians (each run ${SECS} s; conn/s with 4 client threads); every run, conn/s | MB/s x1 | MB/s x16 | echo x1 | x16 | x64 | mixed p99 ms | mixed MB/s | conn/s ratio to the HAProxy run paired with it:"
for spec in "${SPECS[@]}"; do
  read -r name _ <<< "$spec"
  echo "  $name:${runs[$name]} |${bulk1[$name]} |${bulk16[$name]} |${echo1[$name]} |${echo16[$name]} |${echo64[$name]} |${mix_p99[$name]} |${mix_mbps[$name]} |${pair_ratios[$name]:-}"
done
echo "x: ratio to HAProxy without logging (conn/s: median of the ratios within pairs); bulk: MB/s read through the forwarder from a source on h2; echo: MB/s read back through an echo backend on h2 while every stream writes at the same time; mix p99: ms of a short connection (2 client threads) while 16 echo streams run, its x = HAProxy p99 / this p99 (above 1: faster); latency: 64-byte round trips on one connection; us CPU/c: the forwarder's CPU time per short connection"
