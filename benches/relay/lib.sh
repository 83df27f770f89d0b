# shellcheck shell=bash
# What both relay benchmarks (run.sh on loopback, hosts.sh on the test hosts) measure the
# same way. Needs LOAD: the load generator (benches/relay/load).

# idle_cost ADDR COUNT PSS_CMD...: bytes of memory per idle connection — PSS_CMD (prints
# the forwarder's proportional set size in kB) before, and while COUNT connections to ADDR
# are held open.
idle_cost() {
  local addr=$1 count=$2 before after
  shift 2
  before=$("$@")
  coproc HOLD { "$LOAD" idle "$addr" "$count"; }
  read -r _ <&"${HOLD[0]}"
  sleep 0.5
  after=$("$@")
  local fd=${HOLD[1]}
  exec {fd}>&-
  wait "$HOLD_PID" 2>/dev/null || true
  echo $(( (after - before) * 1024 / count ))
}
