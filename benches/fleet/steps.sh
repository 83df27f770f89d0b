#!/usr/bin/env bash
# bench-steps: where one host's CPU goes, step by step, in a first apply, a scale (2 -> 3
# replicas) and a no-op of bench-fleet's stack (a socat route to the next host's HAProxy;
# HAProxy in front of socat echo replicas) on test host h1 (h2 is the route's target).
# The host's CPU is its own cgroup's counter (cpu.stat, read every millisecond from
# outside the container); the steps are marked by a build of this tree whose apply library
# also writes a timestamp at each step and unit command (built into target/steps; the marks
# cost about 1 ms each). Prints the median of ROUNDS (default 4) rounds of remove / first
# apply / scale / no-op, ms of h1's CPU between one mark and the next.
# Boots 2 test hosts itself (tests/testbed/setup.sh 2) and stops them at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-4}
TB=${TESTBED:-/var/tmp/vds-proxy-testbed}
CG=/sys/fs/cgroup/unified/vds-testbed/h1/cpu.stat
d=$(mktemp -d)
trap 'rm -rf "$d"; bash tests/testbed/down.sh >/dev/null 2>&1 || true' EXIT

# The marked build: the same tree, the apply library with a mark at each step.
mkdir "$d/src-copy"
cp -r Cargo.toml Cargo.lock build.rs src "$d/src-copy/"
python3 - "$d/src-copy/src/engine/scripts/apply.sh" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
subs = [
    ('\nstep() { echo "@step $1"; }',
     '\nmark() { echo "$1 $(date +%s%N)" >> /run/vds-marks; }\nstep() { mark "$1"; echo "@step $1"; }'),
    ('\nbegin() {\n', '\nbegin() {\n  mark begin\n'),
    ('\nend_validation() {\n', '\nend_validation() {\n  mark validated\n'),
    ('\nverify_units() {', '\nverify_units() { mark systemd-analyze;'),
    ('\nvalidate() {\n', '\nvalidate() { mark "check:${1##*/}";\n'),
    ('\ndaemon_reload() {', '\ndaemon_reload() { mark daemon-reload;'),
    ('\nenable_units() {\n', '\nenable_units() {\n  mark enable\n'),
    ('\nunit() {\n', '\nunit() { mark "$2:$3";\n'),
    ('\nsettle() { sleep 1; }', '\nsettle() { mark settle; sleep 1; mark checks; }'),
    ('\nend_checks() {', '\nend_checks() { mark end-checks;'),
    ('\nend_work() {\n  rc=$?\n', '\nend_work() {\n  rc=$?\n  mark end\n'),
]
for old, new in subs:
    if old not in s:
        sys.exit(f"steps.sh: the apply library no longer has {old!r}: update the marks")
    s = s.replace(old, new, 1)
open(p, "w").write(s)
EOF
CARGO_TARGET_DIR=$PWD/target/steps cargo build --release -q --manifest-path "$d/src-copy/Cargo.toml"
V=$PWD/target/steps/release/vds-proxy

bash tests/testbed/setup.sh 2 >/dev/null
[ -r "$CG" ] || { echo "steps.sh: $CG is not readable (the testbed's cgroup of h1)" >&2; exit 1; }
printf 'ssh_key = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\n' "$TB" "$TB" > "$d/vds-proxy.toml"
inventory() {
  printf '{"nodes": [{"name": "h1", "public_ip": "10.213.1.2", "tailscale_ip": "10.213.1.2"}, {"name": "h2", "public_ip": "10.213.2.2", "tailscale_ip": "10.213.2.2"}], "routes": [{"port": 8443, "proxy_node": "h1", "target_node": "h2", "target_port": 8500, "service": "r1", "forwarder": "socat"}], "services": [{"name": "echo1", "node": "h1", "replicas": %d, "base_port": 10000, "exec": ["/usr/bin/socat", "TCP-LISTEN:{port},fork,reuseaddr", "EXEC:cat"], "balancer": {"port": 8500}}]}' "$1" > "$d/nodes.json"
}
on_h1() { ssh -o BatchMode=yes -o UserKnownHostsFile="$TB/known_hosts" -i "$TB/id_ed25519" root@10.213.1.2 "$@"; }

# measure STEP ROUND: one deploy, h1's counter sampled around it, its marks collected.
measure() {
  on_h1 'rm -f /run/vds-marks'
  python3 - "$CG" "$d/samples" 8 <<'EOF' &
import sys, time
f, out, end = sys.argv[1], open(sys.argv[2], "w"), time.time() + float(sys.argv[3])
while time.time() < end:
    with open(f) as fh:
        out.write(f"{time.time_ns()} {fh.readline().split()[1]}\n")
    time.sleep(0.001)
EOF
  local sampler=$! t0 t1
  sleep 0.3
  t0=$(date +%s%N)
  "$V" -i "$d/nodes.json" deploy > "$d/out" 2>&1 || { cat "$d/out" >&2; exit 1; }
  t1=$(date +%s%N)
  wait "$sampler"
  { echo "login+gather $t0"; on_h1 'cat /run/vds-marks 2>/dev/null || true'; echo "done $t1"; } > "$d/marks"
  python3 - "$d/samples" "$d/marks" "$1" "$2" >> "$d/steps" <<'EOF'
import sys, bisect
samples = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
ts = [t for t, _ in samples]
def at(t):
    return samples[min(bisect.bisect_left(ts, t), len(ts) - 1)][1]
marks = [(n, int(t)) for n, t in (l.split() for l in open(sys.argv[2]) if l.strip())]
seen = {}
for (name, t), (_, t2) in zip(marks, marks[1:]):
    # A mark met again (a second validation) is a step of its own.
    seen[name] = seen.get(name, 0) + 1
    label = name if seen[name] == 1 else f"{name} ({seen[name]})"
    print(f"{sys.argv[3]}\t{sys.argv[4]}\t{label}\t{(at(t2) - at(t)) / 1000:.1f}")
EOF
}

for r in $(seq 1 "$rounds"); do
  inventory 3; "$V" -i "$d/nodes.json" remove > /dev/null; sleep 2
  inventory 2; measure "first apply" "$r"; sleep 3
  inventory 3; measure "scale 2 -> 3" "$r"; sleep 3
  measure "no-op" "$r"; sleep 1
done

# One table per deploy: each step's median over the rounds, and the whole deploy's.
python3 - "$d/steps" "$rounds" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    step, r, name, ms = line.rstrip("\n").split("\t")
    rows.setdefault(step, {}).setdefault(name, {})[r] = float(ms)
for step, names in rows.items():
    totals = {}
    for per_round in names.values():
        for r, ms in per_round.items():
            totals[r] = totals.get(r, 0) + ms
    print(f"\n{step}: ms of h1's CPU, median of {sys.argv[2]} rounds")
    print("| from the mark | ms |\n|---|---|")
    for name, per_round in names.items():
        print(f"| {name} | {statistics.median(per_round.values()):.1f} |")
    print(f"| **whole deploy** | **{statistics.median(totals.values()):.0f}** |")
EOF
