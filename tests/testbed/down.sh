#!/usr/bin/env bash
# Stops every test host started by setup.sh (by pid, never by name).
TESTBED=${TESTBED:-/var/tmp/vds-proxy-testbed}
for pidfile in "$TESTBED"/hosts/*/pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
# A host's own disk (h1's, see setup.sh), once nothing runs on it.
for dir in "$TESTBED"/hosts/*; do
  if mountpoint -q "$dir" 2>/dev/null; then umount "$dir" 2>/dev/null; fi
done
# The list of running hosts: none now (a bench that found it would wait on stopped hosts).
rm -f "$TESTBED/hosts.txt"
# The hosts' own cgroups (setup.sh), now empty.
for c in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
  if [ ! -f "$c/cgroup.procs" ] || [ ! -d "$c/vds-testbed" ]; then continue; fi
  find "$c/vds-testbed" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
done
