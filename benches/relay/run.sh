#!/usr/bin/env bash
# `just bench-relay`: the bundled relay against `socat ... fork` and HAProxy (TCP mode), all
# on loopback, forwarding to the same C epoll backend, driven by benches/relay/load.rs.
# Prints one table. Bounded: every load step runs a few seconds; everything is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/relay/lib.sh
. benches/relay/lib.sh
SECS=${SECS:-3}
if ! { command -v haproxy && command -v socat && command -v gcc; } >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy socat gcc >/dev/null
fi
W=$(mktemp -d /tmp/vds-bench-relay.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pkill -P $$ 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
trap "exit 1" INT TERM
# A forwarder holds two descriptors per connection: size the big idle step to the limit.
ulimit -n "$(ulimit -Hn)"
BIG=$(( ( $(ulimit -n) - 400 ) / 2 )); [ "$BIG" -gt 10000 ] && BIG=10000
# Many short connections on loopback: let TIME_WAIT ports be reused. (Service ports stay
# below the ephemeral range, 32768-60999.)
sysctl -qw net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=4096 || true

if ss -Htln | awk '{print $4}' | grep -qE ':(2000[12]|2[123]00[12])$'; then
  echo "bench-relay: ports 20001-23002 are in use (an earlier run still going?)" >&2; exit 1
fi
gcc -O2 -o "$W/backend" benches/relay/backend.c
cargo build --release -q
LOAD=$(cargo bench --bench relay-load --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*relay_load[^"]*\)".*/\1/p' | tail -1)
[ -x "$LOAD" ] || { echo "bench-relay: load client not built" >&2; exit 1; }
V=target/release/vds-proxy

ECHO=20001 SRC=20002
"$W/backend" $ECHO $SRC & pids+=($!)

cat > "$W/relay.toml" <<TOML
[[route]]
name = "echo"
listen = "127.0.0.1:21001"
upstreams = ["127.0.0.1:$ECHO"]
max_connections = 100000
[[route]]
name = "source"
listen = "127.0.0.1:21002"
upstreams = ["127.0.0.1:$SRC"]
max_connections = 100000
TOML
"$V" relay --config "$W/relay.toml" 2>/dev/null & pids+=($!); RELAY=$!

cat > "$W/haproxy.cfg" <<CFG
global
  maxconn $(( BIG + 50 ))
  nbthread 2
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend echo
  bind 127.0.0.1:22001
  default_backend echo
backend echo
  server s 127.0.0.1:$ECHO
frontend source
  bind 127.0.0.1:22002
  default_backend source
backend source
  server s 127.0.0.1:$SRC
CFG
haproxy -db -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 & pids+=($!); HAPROXY=$!

socat TCP-LISTEN:23001,fork,reuseaddr,backlog=4096 TCP:127.0.0.1:$ECHO 2>/dev/null & pids+=($!); SOCAT1=$!
socat TCP-LISTEN:23002,fork,reuseaddr,backlog=4096 TCP:127.0.0.1:$SRC 2>/dev/null & pids+=($!)
sleep 1
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "bench-relay: a proxy or the backend did not start" >&2; cat "$W/haproxy.log" >&2; exit 1; }; done

# Proportional set size (kB) of a process and all its descendants: shared pages counted once.
# Processes only (-T): a thread's smaps_rollup is its process's, so listing threads counted a
# threaded forwarder's memory once per thread (the relay's four, HAProxy's two).
pss_tree() {
  local total=0 p
  for p in $(pstree -pT "$1" 2>/dev/null | grep -o '([0-9]*)' | tr -d '()' || echo "$1"); do
    total=$(( total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0) ))
  done
  echo $total
}

printf '%-8s %12s %10s %10s %10s %10s %10s %14s %14s\n' proxy "conn/s" fails "MB/s x1" "MB/s x32" "p50 us" "p99 us" "B/idle@1000" "B/idle@$BIG"
direct_lat=$("$LOAD" latency 127.0.0.1:$ECHO 20000)
printf '%-8s %12s %10s %10s %10s %10s %10s %14s %14s\n' direct \
  "$("$LOAD" cps 127.0.0.1:$ECHO 4 "$SECS" | cut -d' ' -f1)" - \
  "$("$LOAD" bulk 127.0.0.1:$SRC 1 "$SECS")" "$("$LOAD" bulk 127.0.0.1:$SRC 32 "$SECS")" \
  "${direct_lat% *}" "${direct_lat#* }" - -
for spec in "relay 21001 21002 $RELAY" "haproxy 22001 22002 $HAPROXY" "socat 23001 23002 $SOCAT1"; do
  read -r name eport sport pid <<< "$spec"
  sleep 2  # let TIME_WAIT from the previous run drain a little
  read -r cps fails < <("$LOAD" cps "127.0.0.1:$eport" 4 "$SECS")
  b1=$("$LOAD" bulk "127.0.0.1:$sport" 1 "$SECS")
  b32=$("$LOAD" bulk "127.0.0.1:$sport" 32 "$SECS")
  read -r p50 p99 < <("$LOAD" latency "127.0.0.1:$eport" 20000)
  i1=$(idle_cost "127.0.0.1:$eport" 1000 pss_tree "$pid")
  if [ "$name" = socat ] && [ "${SOCAT_10K:-0}" != 1 ]; then i10="(skipped)"; else i10=$(idle_cost "127.0.0.1:$eport" "$BIG" pss_tree "$pid"); fi
  printf '%-8s %12s %10s %10s %10s %10s %10s %14s %14s\n' "$name" "$cps" "$fails" "$b1" "$b32" "$p50" "$p99" "$i1" "$i10"
done
echo "latency columns are full round trips; direct p50/p99: $direct_lat us (subtract for the added latency)"
