# shellcheck shell=sh disable=SC2016
# (SC2016: commands handed to live_check are single-quoted on purpose: they run later.)
# The fixed part of the gather script: one round trip that reports what a host has now,
# as "@tag ..." lines read by engine/gather.rs. The generated part sets STATE_FILE, LEFTOVER,
# DIGESTS and BIG (the hash cache of files of BIG bytes or more), PATH_PREFIX and
# UNIT_PREFIX (how the manifest's file and unit lines start), KEY and SECRET_PATHS (the
# planned files that hold secrets, one per line) and calls these.

export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

NL='
'

# host_facts [arch]: the architecture when asked, then the manifest ("@m" lines); keeps the
# manifest's paths and units in M_PATHS and M_UNITS for file_facts and unit_facts, and in
# SECRETS the paths of secret files (planned, or recorded without a digest). One process
# (cat), the rest builtins: at 100 hosts every process a gather starts shows in the
# deploy's time.
host_facts() {
  [ "${1:-}" != arch ] || echo "@arch $(uname -m)"
  M_PATHS='' M_UNITS='' SECRETS=$NL$SECRET_PATHS
  # Files an apply created and its rollback could not delete: managed like the manifest's
  # (those still there: a rollback tried again later may have deleted them).
  [ ! -r "$LEFTOVER" ] || while IFS= read -r l; do
    [ -z "$l" ] || [ ! -e "$l" ] || { echo "@leftover $l"; M_PATHS="$M_PATHS$l$NL"; }
  done < "$LEFTOVER"
  [ -r "$STATE_FILE" ] || return 0
  m=$(cat "$STATE_FILE")
  set -f
  IFS=$NL
  # shellcheck disable=SC2086 # one line per word
  printf '@m %s\n' $m
  for l in $m; do
    case $l in
      "$PATH_PREFIX"*)
        l=${l#"$PATH_PREFIX"}
        M_PATHS="$M_PATHS${l%%\"*}$NL"
        case $l in *'","sha256":"",'*) SECRETS="$SECRETS${l%%\"*}$NL" ;; esac ;;
      "$UNIT_PREFIX"*) l=${l#"$UNIT_PREFIX"}; M_UNITS="$M_UNITS${l%%\"*}$NL" ;;
    esac
  done
  IFS=' 	
'
  set +f
}

# unique LIST WORD...: the lines of LIST and the WORDs, empty ones left out and each once,
# in the order given, one per line in $seen. The caller has set IFS to a newline and
# turned globbing off.
unique() {
  list=$1
  shift
  seen=''
  # shellcheck disable=SC2086 # split on newlines only, no globbing: one line per word
  for w in $list "$@"; do
    [ -n "$w" ] || continue
    case "$NL$seen" in *"$NL$w$NL"*) ;; *) seen="$seen$w$NL" ;; esac
  done
}

# file_facts PATH...: every managed (M_PATHS) and planned file: "@file - - - - PATH" when
# it does not exist, else its mode and owner and group ids ("@stat MODE UID GID PATH", the
# names of ids other than 0 after it, see id_names) and its hash (sha256sum --tag lines),
# the manifest's ("@statefile PATH") among them: one process for all. A secret file's hash
# is keyed instead ("@keyed HASH PATH": SHA-256 of KEY and the content; KEY is not printed).
# A big file's hash comes from the cache (see cached_hashes).
file_facts() {
  set -f
  IFS=$NL
  unique "$M_PATHS" "$@"
  have='' plain=''
  for p in $seen; do
    if [ ! -f "$p" ]; then echo "@file - - - - $p"; continue; fi
    have="$have$p$NL"
    case "${SECRETS:-$NL}" in
      *"$NL$p$NL"*) k=$({ printf '%s' "$KEY"; cat -- "$p"; } | sha256sum); echo "@keyed ${k%% *} $p" ;;
      *) plain="$plain$p$NL" ;;
    esac
  done
  state=''
  [ ! -r "$STATE_FILE" ] || { state=$STATE_FILE; echo "@statefile $state"; }
  st='' big=''
  if [ -n "$have" ]; then
    # shellcheck disable=SC2086 # split on newlines only, no globbing: one path per word
    out=$(stat --printf '@stat %a %u %g %n\n%s %i %.9Y %.9Z %n\n' -- $have)
    for l in $out; do
      case $l in
        @stat*) st="$st$l$NL" ;;
        *) [ "${l%% *}" -lt "$BIG" ] || big="$big$l$NL" ;;
      esac
    done
  fi
  wanted='' kept=''
  [ -z "$big" ] || cached_hashes
  # shellcheck disable=SC2086 # split on newlines only, no globbing: one path per word
  { if [ -z "$state$plain" ]; then :
    elif [ -n "$wanted" ]; then sha256sum --tag -- $state $plain | remember_hashes
    else sha256sum --tag -- $state $plain; fi
    [ -z "$st" ] || { printf '%s' "$st"; id_names "$st"; }; }
  IFS=' 	
'
  set +f
}

# cached_hashes: the hashes of big plain files (BIG bytes or more: the bundled binary, image
# archives; hashing the 9.8 MB binary costs a host 40 ms on every run) come from the cache
# DIGESTS ("SIZE INODE MTIME CTIME HASH PATH" lines) while the file is the one
# hashed: same inode, size, and times to the nanosecond (any write changes its ctime). Those
# found are printed and taken out of $plain; the signatures of the others ($big: "SIZE INODE
# MTIME CTIME PATH" lines) stay in $wanted for remember_hashes.
cached_hashes() {
  cache=''
  [ ! -r "$DIGESTS" ] || while IFS= read -r c; do cache="$cache$c$NL"; done < "$DIGESTS"
  wanted='' kept=''
  for l in $big; do
    p=${l#* * * * }
    case "$NL$plain" in *"$NL$p$NL"*) ;; *) continue ;; esac
    sig=${l%" $p"} h=''
    for c in $cache; do
      case $c in "$sig "*" $p") h=${c#"$sig "} h=${h%%" $p"}; break ;; esac
    done
    if [ ${#h} = 64 ]; then
      echo "SHA256 ($p) = $h"
      kept="$kept$sig $h $p$NL"
      rest=''
      for q in $plain; do [ "$q" = "$p" ] || rest="$rest$q$NL"; done
      plain=$rest
    else
      wanted="$wanted$l$NL"
    fi
  done
}

# remember_hashes: passes sha256sum's lines on; the hashes of the big files it was asked
# for ($wanted) are written to the cache with those still valid ($kept), best effort.
remember_hashes() {
  new=''
  while IFS= read -r l; do
    printf '%s\n' "$l"
    p=${l#"SHA256 ("} p=${p%") = "*} h=${l##* }
    for w in $wanted; do
      [ "${w#* * * * }" != "$p" ] || new="$new${w%" $p"} $h $p$NL"
    done
  done
  [ -z "$new" ] || { printf '%s' "$kept$new" > "$DIGESTS.$$" && mv -f "$DIGESTS.$$" "$DIGESTS"; } 2>/dev/null ||
    rm -f "$DIGESTS.$$"
}

# id_names STAT_LINES: "@uid ID NAME" and "@gid ID NAME" for the owners and groups in these
# "@stat" lines other than root (0), read from /etc/passwd and /etc/group by builtins, and
# only when there are any (stat's own name lookups cost it more than its work). The caller
# has set IFS to a newline and turned globbing off.
id_names() {
  uids=' ' gids=' '
  for l in $1; do
    IFS=' '
    # shellcheck disable=SC2086 # the fields of one @stat line
    set -- $l
    IFS=$NL
    [ "$3" = 0 ] || uids="$uids$3 "
    [ "$4" = 0 ] || gids="$gids$4 "
  done
  [ "$uids" = ' ' ] || while IFS=: read -r n _ i _; do
    case $uids in *" $i "*) echo "@uid $i $n" ;; esac
  done </etc/passwd
  [ "$gids" = ' ' ] || while IFS=: read -r n _ i _; do
    case $gids in *" $i "*) echo "@gid $i $n" ;; esac
  done </etc/group
}

# txn_facts TXN_DIR LOCK_FILE: "@interrupted" when an apply's transaction directory is
# there and no apply holds the lock (an apply cut off before left it, or one whose rollback
# could not put back the files listed as "@stuck PATH": the next deploy resolves it first),
# "@applying" when one holds it now. Only a test when there is none.
txn_facts() {
  [ -d "$1" ] || return 0
  if flock -n "$2" true 2>/dev/null; then echo "@interrupted"; else echo "@applying"; fi
  [ ! -e "$1/unrestored" ] || sed 's/^/@stuck /' "$1/unrestored"
}

# dir_facts DIR...: whether each directory exists.
dir_facts() {
  for d in "$@"; do
    if [ -d "$d" ]; then echo "@dir 1 $d"; else echo "@dir 0 $d"; fi
  done
}

# unit_facts UNIT...: state of every managed (M_UNITS) and planned unit, between "@units"
# and "@units-end": systemd's answer to ListUnitsByNames as dbus-send prints it (after
# "@dbus"), or where there is no system bus, systemctl's list-units lines (UNIT LOAD ACTIVE
# SUB DESCRIPTION; a unit systemd has not loaded is inactive). Then "@enabled UNIT" for
# each unit enabled the way `systemctl enable` does it, a link in a .wants or .requires
# directory of /etc/systemd/system. (dbus-send costs a third of systemctl, and `systemctl
# show` makes systemd send every property of every unit: at 100 hosts that is seconds.)
unit_facts() {
  links=''
  for d in /etc/systemd/system/*.wants /etc/systemd/system/*.requires; do
    [ ! -d "$d" ] || links="$links$d$NL"
  done
  set -f
  IFS=$NL
  unique "$M_UNITS" "$@"
  names=''
  for u in $seen; do names="$names$u,"; done
  echo "@units"
  if [ -n "$seen" ]; then
    if command -v dbus-send >/dev/null 2>&1 &&
      reply=$(dbus-send --system --print-reply --dest=org.freedesktop.systemd1 \
        /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager.ListUnitsByNames \
        "array:string:${names%,}" 2>/dev/null); then
      echo "@dbus"
      printf '%s\n' "$reply"
    else
      # shellcheck disable=SC2086 # split on newlines only, no globbing: one unit per word
      systemctl list-units --all --plain --no-legend --full -- $seen 2>/dev/null
    fi
  fi
  echo "@units-end"
  for u in $seen; do
    for d in $links; do
      if [ -L "$d/$u" ]; then echo "@enabled $u"; break; fi
    done
  done
  IFS=' 	
'
  set +f
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

# present_check PATH COMMAND: when PATH does not exist and COMMAND succeeds, what PATH is
# for is on the host already (an image the engine has): it need not be uploaded.
present_check() {
  if [ ! -f "$1" ] && (eval "$2") >/dev/null 2>&1; then echo "@present $1"; fi
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
