# shellcheck shell=sh disable=SC2016
# (SC2016: commands handed to live_check are single-quoted on purpose: they run later.)
# The fixed part of the gather script: one round trip that reports what a host has now,
# as "@tag ..." lines read by engine/gather.rs. The generated part sets STATE_FILE,
# SED_PATHS and SED_UNITS (how to list the manifest's paths and units) and calls these.

export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# host_facts: the architecture, and the manifest with its hash (or "none").
host_facts() {
  echo "@arch $(uname -m)"
  if [ -r "$STATE_FILE" ]; then
    echo "@state $(sha256sum < "$STATE_FILE" | cut -c1-64)"
    sed 's/^/@m /' "$STATE_FILE"
  else
    echo "@state none"
  fi
}

# file_facts PATH...: hash, mode, owner and group of every managed and planned file.
file_facts() {
  { [ -r "$STATE_FILE" ] && sed -n "$SED_PATHS" "$STATE_FILE"; printf '%s\n' "$@"; } | sort -u |
    while IFS= read -r p; do
      [ -n "$p" ] || continue
      if [ -f "$p" ]; then
        echo "@file $(sha256sum < "$p" | cut -c1-64) $(stat -c '%a %U %G' "$p") $p"
      else
        echo "@file - - - - $p"
      fi
    done
}

# dir_facts DIR...: whether each directory exists.
dir_facts() {
  for d in "$@"; do
    if [ -d "$d" ]; then echo "@dir 1 $d"; else echo "@dir 0 $d"; fi
  done
}

# unit_facts UNIT...: state of every managed and planned unit.
unit_facts() {
  { [ -r "$STATE_FILE" ] && sed -n "$SED_UNITS" "$STATE_FILE"; printf '%s\n' "$@"; } | sort -u | grep . |
    xargs -r systemctl show -p Id -p ActiveState -p UnitFileState -p InvocationID -- 2>/dev/null |
    sed 's/^/@u /'
}

# vendor_units NAME...: unit files of these names that systemd or a package installed
# ("@vendor NAME PATH"): a unit file of vds-proxy's in /etc would replace them.
vendor_units() {
  for u in "$@"; do
    for d in /lib/systemd/system /usr/lib/systemd/system; do
      if [ -e "$d/$u" ]; then echo "@vendor $u $d/$u"; break; fi
    done
  done
}

# live_check PATH COMMAND: when PATH exists and COMMAND fails, what PATH configures is not
# in effect (rules flushed by hand, say).
live_check() {
  if [ -f "$1" ] && ! (eval "$2") >/dev/null 2>&1; then echo "@notlive $1"; fi
}

# listening: the TCP ports something listens on.
listening() { ss -Htln 2>/dev/null | awk '{print "@listen " $4}'; }

# read_files PATH...: each existing file's content, base64 on one line after "@content PATH".
read_files() {
  for p in "$@"; do
    if [ -f "$p" ]; then echo "@content $p"; base64 -w0 "$p"; echo; fi
  done
}

# probe HOST PORT: "@probe 0" when a TCP connection to HOST:PORT stays open (it reached
# something), 4 when it was accepted and closed at once, else why it failed.
probe() {
  timeout 4 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 3; timeout 0.7 cat <&3 >/dev/null; [ $? = 124 ] && exit 0; exit 4' probe "$1" "$2"
  echo "@probe $?"
}
