#!/usr/bin/env bash
# Boots N real test hosts (default 4; the compose tests have h4 to themselves) as
# systemd-nspawn containers: systemd as PID 1, OpenSSH, each in its own network namespace
# with address 10.213.<i>.2 (the machine running the tests is 10.213.<i>.1 on the other
# end of the veth pair).
#
# The Debian root filesystem is built once with debootstrap and kept in $TESTBED/base;
# each host boots on its own fresh copy-on-write overlay, so every run starts clean.
# (debootstrap does not resolve virtual packages: python3-cffi-backend is named for certbot.)
# Needs root. Fails loudly when something is missing: tests never skip silently.
# Measured on the 2-core, 24 GB machine: 24 hosts boot in 16 s, 100 hosts in 136 s, each
# using ~20 MB of memory; past ~25 hosts the inotify limit must be raised (done below).
set -euo pipefail
N=${1:-${TESTBED_HOSTS:-4}}
TESTBED=${TESTBED:-/var/tmp/vds-proxy-testbed}
BASE=$TESTBED/base
HERE=$(cd "$(dirname "$0")" && pwd)

[ "$(id -u)" = 0 ] || { echo "testbed: must run as root (systemd-nspawn, ip netns)" >&2; exit 1; }
missing=()
for c in debootstrap systemd-nspawn ssh ssh-keygen ip; do command -v $c >/dev/null || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "testbed: missing commands: ${missing[*]}; run: apt-get install -y debootstrap systemd-container openssh-client iproute2" >&2
  exit 1
fi

mkdir -p "$TESTBED"
bash "$HERE/down.sh" >/dev/null 2>&1 || true

# The shared packages, then what each system's tests need on the hosts (`host PACKAGE` in
# its folder's `packages` file). The base is rebuilt when the list changes.
INCLUDE=systemd,systemd-sysv,dbus,openssh-server,iptables,haproxy,iproute2,python3,socat,procps,curl,util-linux,wireguard-tools,wireguard-go,nginx,certbot,python3-cffi-backend,openssl,ca-certificates,nftables,postgresql,podman,crun,conmon,netavark,aardvark-dns,catatonit,podman-compose,busybox-static
# `host-off UNIT` lines: units a package enables that stay off until a deploy wants them.
OFF=()
while read -r what p; do
  case $what in
    host) INCLUDE="$INCLUDE,$p" ;;
    host-off) OFF+=("$p") ;;
  esac
done < <(cat "$HERE"/../../src/roles/*/packages | grep '^host')
MARK="$BASE/.vds-testbed-$(printf '%s %s' "$INCLUDE" "${OFF[*]}" | sha256sum | cut -c1-12)"
if [ ! -f "$MARK" ]; then
  echo "testbed: building the Debian root filesystem in $BASE (once, about a minute)"
  rm -rf "$BASE"
  debootstrap --variant=minbase \
    --include="$INCLUDE" \
    bookworm "$BASE" http://deb.debian.org/debian >"$TESTBED/debootstrap.log" 2>&1 \
    || { tail -20 "$TESTBED/debootstrap.log" >&2; exit 1; }
  chroot "$BASE" systemctl enable systemd-networkd ssh >/dev/null 2>&1
  # Containers have no consoles to log in on, and nothing should wait for a network that
  # is configured statically.
  chroot "$BASE" systemctl mask systemd-networkd-wait-online.service console-getty.service >/dev/null 2>&1 || true
  # PostgreSQL (for the backup tests) starts only where a test starts it.
  chroot "$BASE" systemctl disable postgresql.service >/dev/null 2>&1 || true
  for u in "${OFF[@]}"; do chroot "$BASE" systemctl disable "$u" >/dev/null 2>&1 || true; done
  rm -f "$BASE"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -f "$BASE/etc/ssh/ssh_host_ed25519_key"
  echo "PermitRootLogin prohibit-password" > "$BASE/etc/ssh/sshd_config.d/vds-testbed.conf"
  echo "HostKey /etc/ssh/ssh_host_ed25519_key" >> "$BASE/etc/ssh/sshd_config.d/vds-testbed.conf"
  touch "$MARK"
fi

# Podman in a test host (compose apps): the host's root is an overlay, on which podman's
# overlay storage cannot stack (vfs instead), and crun cannot create cgroups or session
# keyrings inside the container (both off; podman places nothing in cgroups of its own).
mkdir -p "$BASE/etc/containers"
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
  > "$BASE/etc/containers/storage.conf"
printf '[containers]\ncgroups = "disabled"\nkeyring = false\n\n[engine]\ncgroup_manager = "cgroupfs"\n' \
  > "$BASE/etc/containers/containers.conf"

# Docker in a test host (compose apps on Docker): the same limits as Podman's, given to
# Docker as a runtime — crun without cgroups and without a new session keyring (neither can
# be created inside the container; crun takes --no-new-keyring only after create/run) —
# and vfs storage. Off until a test starts it (see src/roles/compose/packages).
mkdir -p "$BASE/etc/docker" "$BASE/usr/local/bin"
cat > "$BASE/usr/local/bin/crun-nspawn" <<'EOF'
#!/bin/sh
# crun for dockerd inside a systemd-nspawn test host: no cgroups, no new session keyring.
for a; do shift; set -- "$@" "$a"; case $a in create | run) set -- "$@" --no-new-keyring ;; esac; done
exec /usr/bin/crun --cgroup-manager=disabled "$@"
EOF
chmod 755 "$BASE/usr/local/bin/crun-nspawn"
printf '{"storage-driver": "vfs", "runtimes": {"crun-nspawn": {"path": "/usr/local/bin/crun-nspawn"}}, "default-runtime": "crun-nspawn"}\n' \
  > "$BASE/etc/docker/daemon.json"

# The key the tests log in with.
[ -f "$TESTBED/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$TESTBED/id_ed25519"
mkdir -p "$BASE/root/.ssh"
cp "$TESTBED/id_ed25519.pub" "$BASE/root/.ssh/authorized_keys"
chmod 700 "$BASE/root/.ssh"; chmod 600 "$BASE/root/.ssh/authorized_keys"

mountpoint -q /run/systemd/nspawn 2>/dev/null || { mkdir -p /run/systemd/nspawn; mount -t tmpfs tmpfs /run/systemd/nspawn; }
sysctl -qw net.ipv4.ip_forward=1
# Each host's systemd takes inotify instances; the default limit (128 per user) runs out at
# about 25 hosts ("Failed to create control group inotify object: Too many open files").
need=$((N * 64))
[ "$(sysctl -n fs.inotify.max_user_instances)" -ge "$need" ] || sysctl -qw fs.inotify.max_user_instances="$need"

: > "$TESTBED/known_hosts"
: > "$TESTBED/hosts.txt"
for i in $(seq 1 "$N"); do
  h=h$i
  dir=$TESTBED/hosts/$h
  # h1's disk (its overlay's upper layer) is a filesystem of its own, 1 GB, so that the
  # fault campaign can fill it (a full disk mid-apply) without touching this machine's.
  ! mountpoint -q "$dir" || umount "$dir"
  rm -rf "$dir"; mkdir -p "$dir"
  if [ "$i" = 1 ]; then mount -t tmpfs -o size=1g,mode=0755 vds-testbed-disk "$dir"; fi
  mkdir -p "$dir/upper/etc/systemd/network"
  printf '[Match]\nName=host0\n\n[Network]\nAddress=10.213.%d.2/24\nGateway=10.213.%d.1\n' "$i" "$i" \
    > "$dir/upper/etc/systemd/network/10-host0.network"
  echo "$h" > "$dir/upper/etc/hostname"
  # Each host in its own cgroup (in every hierarchy): with --keep-unit all containers
  # would otherwise share one payload cgroup, and same-named units on different hosts
  # (every host's haproxy.service) would share cgroup directories and fail with
  # status=219/CGROUP under load.
  # A reboot inside a host (`reboot`, `reboot -f`) ends its nspawn with status 133: the
  # host is booted again on the same overlay (its disk), and the outer end of its new veth
  # gets its address back. down.sh's SIGTERM stops the host and the loop.
  # shellcheck disable=SC2016 # the inner script expands its own variables
  H=$h I=$i setsid bash -c 'for c in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
      [ -f "$c/cgroup.procs" ] || continue
      mkdir -p "$c/vds-testbed/$H" && echo $$ > "$c/vds-testbed/$H/cgroup.procs" || true
    done
    pid=
    trap "[ -z \"\$pid\" ] || kill \$pid 2>/dev/null; wait; exit 0" TERM INT
    while :; do
      "$@" & pid=$!
      for _ in $(seq 1 100); do ip link show "ve-$H" >/dev/null 2>&1 && break; sleep 0.1; done
      ip addr replace "10.213.$I.1/24" dev "ve-$H" && ip link set "ve-$H" up
      wait $pid; rc=$?
      [ "$rc" = 133 ] || exit "$rc"
      echo "testbed: $H rebooted" >&2
      for _ in $(seq 1 50); do ip link show "ve-$H" >/dev/null 2>&1 || break; sleep 0.1; done
    done' nspawn systemd-nspawn -q -D "$BASE" --overlay="$BASE:$dir/upper:/" -M "$h" -b \
    --register=no --keep-unit --network-veth --bind=/dev/net/tun \
    </dev/null >"$dir/console.log" 2>&1 &
  echo $! > "$dir/pid"
  echo "10.213.$i.2 $(cut -d' ' -f1,2 "$BASE/etc/ssh/ssh_host_ed25519_key.pub")" >> "$TESTBED/known_hosts"
  echo "$h 10.213.$i.2" >> "$TESTBED/hosts.txt"
done

ssh_opts=(-o BatchMode=yes -o ConnectTimeout=2 -o UserKnownHostsFile="$TESTBED/known_hosts" -o StrictHostKeyChecking=yes -i "$TESTBED/id_ed25519")
for i in $(seq 1 "$N"); do
  ok=
  for _ in $(seq 1 120); do
    if ssh "${ssh_opts[@]}" "root@10.213.$i.2" true 2>/dev/null; then ok=1; break; fi
    sleep 0.5
  done
  [ -n "$ok" ] || { echo "testbed: h$i did not answer on ssh; console:" >&2; tail -30 "$TESTBED/hosts/h$i/console.log" >&2; exit 1; }
done
echo "testbed: $N host(s) up: $(cut -d" " -f2 "$TESTBED/hosts.txt" | tr '\n' ' ')"
