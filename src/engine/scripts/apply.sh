# shellcheck shell=sh disable=SC2015,SC2016
# (SC2016: commands handed to validate/run are single-quoted on purpose: they run later.)
# (SC2015: `a && b || fail` is meant: fail runs when any step fails.)
# The fixed part of every apply script: the functions that the generated part (data and
# calls, written by engine/apply.rs) uses to stage, validate, install, activate and check
# the changes of one host, and to put everything back if anything fails.
#
# Set by the generated part before any call: STATE_DIR STATE_FILE ORIG_DIR LOCK_FILE
# LOCK_WAIT T (transaction directory) LOG (the last apply's log) EXIT_INVALID EXIT_LOCKED
# EXIT_STALE EXIT_RECOVERED LEFTOVER DIGESTS BOOT_UNIT BOOT_LINK BOOT_SCRIPT.
# Reports go to stdout as "@tag ..." lines, read by engine/apply.rs.

export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022

# begin MANIFEST_HASH: takes the host lock, finishes what an apply cut off before left
# (see recover), checks the manifest is still the one gathered (else another deploy ran
# meanwhile), makes the transaction directory and starts this apply's log.
begin() {
  mkdir -p "$STATE_DIR" || exit 1
  take_lock
  if recover; then exit "$EXIT_RECOVERED"; fi
  cur=none
  [ -r "$STATE_FILE" ] && cur=$(sha256sum < "$STATE_FILE" | cut -c1-64)
  [ "$cur" = "$1" ] || { echo "@stale"; exit "$EXIT_STALE"; }
  # 0700 from the start: staged files (secrets among them) are never readable by others.
  (umask 077 && mkdir -p "$T/old" "$T/new" && : > "$LOG") || exit 1
  : > "$T/journal"
  : > "$T/units"
  bad=0 armed=0 failed=0
}

# guard_boot: while this apply runs, a reboot that cuts it off is resolved once the host
# has booted again: BOOT_SCRIPT (the recovery script, on stdin) is run by a oneshot
# unit ordered after multi-user.target, whose boot link is written by hand (nothing is
# reloaded: systemd reads it at the next boot). Best effort: without it, the next deploy
# resolves the transaction instead.
guard_boot() {
  { cat > "$BOOT_SCRIPT" &&
    printf '%s\n' "# Written by vds-proxy while a deploy runs, removed when it ends: after a reboot" \
      "# that cut the deploy off, rolls it back (or forward) once the host has booted." \
      "[Unit]" "Description=vds-proxy: resolve a deploy cut off by a reboot" \
      "After=multi-user.target" "ConditionPathIsDirectory=$T" "" \
      "[Service]" "Type=oneshot" "ExecStart=/bin/sh $BOOT_SCRIPT" > "$BOOT_UNIT" &&
    mkdir -p "${BOOT_LINK%/*}" && ln -sf "$BOOT_UNIT" "$BOOT_LINK"; } 2>/dev/null || unguard_boot
}

# unguard_boot: the apply ended (or was resolved): no recovery at the next boot.
unguard_boot() { rm -f "$BOOT_LINK" "$BOOT_UNIT" "$BOOT_SCRIPT" 2>/dev/null; }

# take_lock: the host lock (fd 9), waited for at most LOCK_WAIT seconds.
take_lock() {
  exec 9>"$LOCK_FILE"
  if ! flock -w "$LOCK_WAIT" 9; then echo "@locked"; exit "$EXIT_LOCKED"; fi
}

# work: the apply proper runs in a subshell whose output goes through `tee -p` to this
# apply's log as well as to the connection; this starts it. A lost connection (a closed
# pipe, a hang-up) does not stop it: the host finishes what it began — commit or roll
# back — and the next run reads the log. Whatever ends it, the transaction goes with it;
# if it is killed, its watcher rolls the transaction back. A rollback that could not put
# every file back leaves the transaction to the watcher, which tries again (keep_trying).
work() {
  trap '' HUP PIPE
  trap 'end_work' EXIT
  watch
}

# watch: a process of its own that waits for the host lock, which the apply holds (fd 9)
# until it ends, then resolves the transaction if the apply left one (it was killed, or
# its rollback could not put everything back).
# Holds nothing of the apply's: not the lock, not the output the connection waits on.
watch() {
  (
    trap - EXIT
    trap '' HUP PIPE
    exec 9>&- 8>"$LOCK_FILE" </dev/null >>"$LOG" 2>&1
    flock 8 || exit 0
    if [ -e "$T/unrestored" ]; then keep_trying 8; else recover_or_keep_trying 8; fi
  ) &
}

# end_work: reports how the apply ended ("@exit STATUS") and removes its transaction
# (unless the watcher is to try its rollback again).
end_work() {
  rc=$?
  if [ ! -e "$T/unrestored" ]; then
    rm -rf "$T"
    unguard_boot
  fi
  [ -e "$STATE_FILE" ] || { rm -f "$DIGESTS"; rmdir "$ORIG_DIR" "$STATE_DIR"; } 2>/dev/null
  echo "@exit $rc"
}

# recover [keep]: with the lock held, a transaction directory is what an apply cut off
# before it ended left (the host was rebooted or its processes killed), or one whose
# rollback could not put every file back ("$T/unrestored": /etc read-only, a full disk).
# Rolled forward when its manifest was written (only its cleanup was left), else rolled
# back — every file put back as it was, every unit it touched brought back — and removed.
# A rollback tried again puts the files back first; the units follow once they all are.
# With "keep", a transaction whose files still cannot all be put back stays (return 2) for
# keep_trying; without it, it goes anyway (a deploy resolves it: it applies afresh).
# False when there is none.
recover() {
  [ -d "$T" ] || return 1
  armed=0
  [ ! -e "$T/armed" ] || armed=1
  if [ -e "$T/committed" ]; then
    echo "@recovered forward"
  elif [ -e "$T/unrestored" ]; then
    echo "@recovered retried"
    rm -f "$T/unrestored"
    undo_files
    [ "${1:-}" != keep ] || [ ! -e "$T/unrestored" ] || return 2
    [ "$armed" = 0 ] || reactivate
  else
    echo "@recovered back"
    : >> "$T/journal"
    : >> "$T/units"
    rollback
  fi
  [ "${1:-}" != keep ] || [ ! -e "$T/unrestored" ] || return 2
  rm -rf "$T"
  unguard_boot
  return 0
}

# recover_or_keep_trying FD: resolves a transaction left behind, and keeps trying (see
# keep_trying, with the lock on fd FD) while its files cannot all be put back.
recover_or_keep_trying() {
  recover keep
  [ $? != 2 ] || keep_trying "$1"
}

# keep_trying FD: a rollback that could not put every file back is tried again every 5 s
# for 30 minutes (the lock, fd FD, released in between), until it has; the transaction
# (and the boot unit: a reboot tries again) stays meanwhile. The outcome goes to the journal.
keep_trying() {
  n=0
  while [ "$n" -lt 360 ]; do
    flock -u "$1"
    sleep 5
    flock "$1" || return 0
    recover keep > /dev/null 2>&1
    case $? in
      0) logger -t vds-proxy "the rolled-back deploy's files are all back now (try $((n + 2)))"; return 0 ;;
      1) return 0 ;;
    esac
    n=$((n + 1))
  done
  logger -t vds-proxy "the rolled-back deploy's files could not all be put back in 30 minutes; the next deploy or boot tries again"
}

# step NAME: reports the step now running.
step() { echo "@step $1"; }

# stage N NAME: writes standard input (base64) to $T/new/N/NAME, the staged copy of change N.
stage() { mkdir "$T/new/$1" && base64 -d > "$T/new/$1/$2" || bad=1; }

# validate PATH COMMAND: runs COMMAND (which names a staged copy); on failure reports PATH
# invalid with the command's output.
validate() {
  if ! (eval "$2") > "$T/v.log" 2>&1; then
    echo "@invalid $1"
    sed 's/^/@log /' "$T/v.log"
    bad=1
  fi
}

# end_validation: stops before anything changed if a validation failed.
end_validation() {
  [ "$bad" = 0 ] && return 0
  undo_files
  exit "$EXIT_INVALID"
}

# verify_unit FILE: systemd's own check of a unit file.
verify_unit() { SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$1" >&2; }

# verify_units FILE...: the same check of several unit files in one run of systemd-analyze
# (it loads every unit on the host each time); quiet: on failure each file is checked
# alone, which names the one at fault.
verify_units() { SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$@" >/dev/null 2>&1; }

# dropin_unit UNIT STAGED: writes the unit as it will be (its own file followed by the
# staged drop-in) as UNIT beside the staged drop-in, for verify_units.
dropin_unit() {
  f=$(systemctl show -P FragmentPath "$1" 2>/dev/null)
  [ -n "$f" ] && cat "$f" "$2" > "${2%/*}/$1" 2>/dev/null
}

# verify_dropin UNIT STAGED: the unit as it will be passes systemd's check.
verify_dropin() { dropin_unit "$1" "$2" && verify_unit "${2%/*}/$1"; }

# fail PATH: reports what could not be installed and puts everything back.
fail() { echo "@error cannot install $1"; rollback; exit 1; }

# put N PATH MODE OWNER GROUP: installs the staged copy of change N at PATH atomically (temp
# file beside it, mode and owner set, rename), the previous version kept for rollback.
put() {
  dir=${2%/*}
  [ -d "${dir:-/}" ] || mkdir -p "${dir:-/}" || fail "$2"
  if [ -e "$2" ]; then cp -p "$2" "$T/old/$1" || fail "$2"; fi
  echo "$1 $2" >> "$T/journal"
  install -m "$3" -o "$4" -g "$5" "$T/new/$1/${2##*/}" "$2.vds-tmp" &&
    mv -f "$2.vds-tmp" "$2" || { rm -f "$2.vds-tmp"; fail "$2"; }
}

# set_meta PATH MODE OWNER GROUP: fixes mode and owner of an unchanged file.
set_meta() { chmod "$2" "$1" && chown "$3:$4" "$1" || fail "$1"; }

# adopt PATH KEY: keeps the original of a file vds-proxy takes over, once.
adopt() { mkdir -p "$ORIG_DIR" && { [ -e "$ORIG_DIR/$2" ] || cp -p "$1" "$ORIG_DIR/$2"; } || fail "$1"; }

# make_dir DIR: creates a directory vds-proxy will manage (removed again on rollback).
make_dir() { mkdir -p "$1" || fail "$1"; echo "dir $1" >> "$T/journal"; }

# prune N PATH [KEY]: deletes a file vds-proxy no longer manages, or puts back the original
# KEY it adopted; the file is kept for rollback.
prune() {
  [ -e "$2" ] || return 0
  cp -p "$2" "$T/old/p$1" || fail "$2"
  echo "p$1 $2" >> "$T/journal"
  if [ -n "${3:-}" ] && [ -e "$ORIG_DIR/$3" ]; then
    cp -p "$ORIG_DIR/$3" "$2.vds-tmp" && mv -f "$2.vds-tmp" "$2" || { rm -f "$2.vds-tmp"; fail "$2"; }
  else
    rm -f "$2" || fail "$2"
  fi
}

# unload PATH COMMAND: takes back what PATH configured before the file goes (COMMAND
# deletes a manifest's objects, say); a failure is reported, and the file still goes.
unload() {
  if (eval "$2") > "$T/unload.log" 2>&1; then
    echo "@unloaded $1"
  else
    echo "@note could not take back what $1 configured; it may still be in effect:"
    sed 's/^/@note   /' "$T/unload.log"
  fi
}

# undo_files: puts every file of the journal back, newest first, then removes the
# directories this apply created (once the files in them are gone). A file that cannot be
# put back is reported and listed (see unrestored) and left as it is; one this apply
# created is also listed in LEFTOVER, for the next run to take care of.
undo_files() {
  tac "$T/journal" | while read -r key path; do
    if [ "$key" = dir ]; then
      continue
    elif [ -e "$T/old/$key" ]; then
      cmp -s "$T/old/$key" "$path" && continue
      { cp -p "$T/old/$key" "$path.vds-tmp" && mv -f "$path.vds-tmp" "$path"; } 2>/dev/null ||
        { rm -f "$path.vds-tmp"; unrestored "$path"; }
    else
      [ ! -e "$path" ] || rm -f "$path" 2>/dev/null ||
        { unrestored "$path"; grep -qxF "$path" "$LEFTOVER" 2>/dev/null || echo "$path" >> "$LEFTOVER"; }
    fi
  done
  tac "$T/journal" | while read -r key path; do
    if [ "$key" = dir ]; then rmdir "$path" 2>/dev/null; fi
  done
}

# unrestored PATH: a file the rollback could not put back: reported ("@unrestored PATH") and
# listed in the transaction, which then stays for the rollback to be tried again.
unrestored() { echo "@unrestored $1"; echo "$1" >> "$T/unrestored"; }

# arm: from here on a rollback also reloads systemd and brings units back (before, only
# binaries went live).
arm() { armed=1; : > "$T/armed"; }

# was UNIT ACTIVE ENABLED NEWLY_ENABLED: how a unit this apply touches was before it, so a
# rollback can bring it back.
was() { echo "$1 $2 $3 $4" >> "$T/units"; }

# rollback: files first, then every touched unit as it was. What could not be brought
# back is reported ("@unrestored WHAT"): the host is then neither old nor new, and the
# report says so instead of "restored".
rollback() {
  echo "@rollback"
  undo_files
  [ "$armed" = 0 ] || reactivate
}

# reactivate: systemd reads the unit files as they are again, and every unit the
# transaction touched is brought back as it was (enabled or not, running or not).
reactivate() {
  systemctl daemon-reload || echo "@unrestored systemd's view of the unit files (daemon-reload failed)"
  while read -r u active enabled newly; do
    if [ "$enabled" = enabled ]; then
      systemctl enable "$u" >/dev/null 2>&1
    elif [ "$newly" = 1 ]; then
      systemctl disable "$u" >/dev/null 2>&1
    fi
    if [ "$active" = active ]; then
      systemctl restart "$u" >/dev/null 2>&1 || echo "@unrestored $u (it did not start again)"
    else
      systemctl stop "$u" >/dev/null 2>&1
    fi
  done < "$T/units"
}

# daemon_reload: systemd reads the changed unit files.
daemon_reload() { systemctl daemon-reload || { rollback; exit 1; }; }

# daemon_reload_unless_loaded UNIT...: the apply only added unit files for units systemd has
# never loaded; systemd loads a new file when one of its units is first asked for (asked
# here). If every unit now loads, nothing else needs reading; else systemd reloads.
daemon_reload_unless_loaded() {
  loaded=$(systemctl show -P LoadState -- "$@" 2>/dev/null | grep -c '^loaded$')
  [ "$loaded" = $# ] || daemon_reload
}

# enable_units UNIT...: their boot symlinks, without the reload `enable` does by itself (the
# daemon-reload before it already read the unit files; the units are started explicitly).
# A failure (the links cannot be written) fails the apply and rolls it back.
enable_units() {
  logged systemctl enable --no-reload "$@" || { echo "@error cannot enable $*"; rollback; exit 1; }
}

# logged COMMAND...: runs COMMAND, its output reported as "@log" lines; its exit status.
logged() {
  "$@" > "$T/cmd.log" 2>&1
  rc=$?
  sed 's/^/@log /' "$T/cmd.log"
  return "$rc"
}

# unit TAG VERB UNIT: runs `systemctl VERB UNIT`, reported as "@TAG UNIT". A unit that
# fails to start, restart or reload is a unit that did not come up (see end_checks): a
# failed reload would leave the old configuration serving while the new one is on disk.
unit() {
  echo "@$1 $3"
  logged systemctl "$2" "$3" || unit_failed "$3" "$3"
}

# previous PATH: the staged-over version of PATH this apply kept (see put), for a command
# that compares; false when PATH is new in this apply.
previous() {
  while read -r key path; do
    if [ "$path" = "$1" ] && [ -e "$T/old/$key" ]; then echo "$T/old/$key"; return 0; fi
  done < "$T/journal"
  return 1
}

# live_or_reload UNIT PATH COMMAND: UNIT takes the change of PATH without a reload when
# COMMAND, run with $old naming PATH's previous version, says it did (exits 0; a proxy
# given new servers through its runtime API, say): reported as "@live UNIT". Else, or when
# PATH is new, UNIT reloads as `unit` does it; what COMMAND printed becomes notes.
live_or_reload() {
  # shellcheck disable=SC2034 # read by COMMAND
  if old=$(previous "$2") && (eval "$3") > "$T/live.log" 2>&1; then
    echo "@live $1"
  else
    sed "s/^/@note $1 reloaded instead: /" "$T/live.log" 2>/dev/null
    unit reload reload "$1"
  fi
}

# run NAME COMMAND: an activation command; it must succeed.
run() {
  echo "@ran $1"
  if ! (eval "$2") > "$T/run.log" 2>&1; then
    echo "@error $1 failed"
    sed 's/^/@log /' "$T/run.log"
    rollback
    exit 1
  fi
}

# stop_unit UNIT: stops and disables a unit vds-proxy lets go of; a unit killed by the
# stop is not left "failed" behind. A unit still running or still enabled afterwards (its
# links could not be removed, say) fails the apply and is rolled back: never reported as
# stopped while it runs on.
stop_unit() {
  systemctl disable --now "$1" > "$T/stop.log" 2>&1
  systemctl reset-failed "$1" >/dev/null 2>&1
  state=$(systemctl is-active "$1" 2>/dev/null)
  links=$(systemctl is-enabled "$1" 2>/dev/null)
  if [ "$state" = active ] || [ "$links" = enabled ]; then
    echo "@error cannot stop $1: it is still $state and $links"
    sed 's/^/@log /' "$T/stop.log"
    rollback
    exit 1
  fi
}

# settle: gives started units a moment before they are checked.
settle() { sleep 1; }

# check_active UNIT...: every unit must be active; else its last journal lines are
# reported. One systemctl for all: it prints one state per unit, in order (a unit without
# a state line counts as failed).
check_active() {
  states=$(systemctl is-active -- "$@" 2>/dev/null)
  for state in $states; do
    [ $# -gt 0 ] || break
    [ "$state" = active ] || unit_failed "$1" "$1"
    shift
  done
  for u in "$@"; do unit_failed "$u" "$u"; done
}

# check_listening UNIT PORT [UNIT PORT]...: each unit must listen on its TCP port within
# 20 s while it runs (a unit can be active and still not serve, e.g. a proxy that keeps its
# old worker when a reload fails; on a loaded host a healthy one can take more than 5 s to
# listen). Each look is one `ss` for every port and one systemctl for the units still
# waited for. Unit names and ports are words without spaces.
check_listening() {
  i=0
  set -f
  while [ $# -ge 2 ]; do
    # "LISTEN 0 4096 0.0.0.0:8500 0.0.0.0:*": a listening port is followed by a space.
    open=$(ss -Htln)
    waiting='' units=''
    while [ $# -ge 2 ]; do
      case $open in *":$2 "*) ;; *) waiting="$waiting $1 $2" units="$units $1" ;; esac
      shift 2
    done
    [ -n "$waiting" ] || break
    i=$((i + 1))
    # A unit that stopped or failed will not listen: no need to wait it out.
    # shellcheck disable=SC2086 # one word per unit
    states=$(systemctl is-active -- $units 2>/dev/null)
    # shellcheck disable=SC2086 # one word per unit or port
    set -- $waiting
    waiting=''
    for state in $states; do
      [ $# -ge 2 ] || break
      still_waiting "$1" "$2" "$state"
      shift 2
    done
    while [ $# -ge 2 ]; do
      still_waiting "$1" "$2" unknown
      shift 2
    done
    [ -n "$waiting" ] || break
    sleep 0.2
    # shellcheck disable=SC2086 # one word per unit or port
    set -- $waiting
  done
  set +f
}

# still_waiting UNIT PORT STATE: for check_listening, the unit in this state after $i looks
# either failed to listen, or is waited for once more (added to $waiting).
still_waiting() {
  if [ "$i" -ge 100 ] || [ "$3" = failed ] || [ "$3" = inactive ]; then
    unit_failed "$1" "$1 (not listening on port $2)"
  else
    waiting="$waiting $1 $2"
  fi
}

# unit_failed UNIT WHAT: "@verdict UNIT" too when its main process exited 65 (EX_DATAERR):
# what was deployed is itself bad (an app that failed its health gate), and deploying it
# again would not help.
# A unit already reported (inactive, then not listening) gets its journal lines once.
unit_failed() {
  echo "@unitfail $2"
  failed=1
  case " ${reported:-} " in *" $1 "*) return 0 ;; esac
  reported="${reported:-} $1"
  journalctl -u "$1" -n 15 --no-pager -o cat 2>/dev/null | sed 's/^/@journal /'
  [ "$(systemctl show -P ExecMainStatus -- "$1" 2>/dev/null)" != 65 ] || echo "@verdict $1"
}

# settle_unit UNIT SCRIPT: runs a unit's settle script (it waits until the unit works);
# what it prints is reported as notes, and it cannot fail the apply.
settle_unit() { (eval "$2") 2>&1 | sed "s/^/@note $1: /"; }

# end_checks: rolls back if a touched unit did not come up.
end_checks() { [ "$failed" = 0 ] || { rollback; exit 1; }; }

# drain UNIT SECONDS PORT...: waits until no established connection uses one of the unit's
# ports (a late-stop unit whose traffic source was reloaded without it), at most SECONDS.
drain() {
  u=$1 max=$(($2 * 5))
  shift 2
  filter=""
  for p in "$@"; do filter="${filter:+$filter or }sport = :$p"; done
  i=0
  while n=$(ss -Htn state established "( $filter )" | wc -l) && [ "$n" -gt 0 ] && [ "$i" -lt "$max" ]; do
    sleep 0.2
    i=$((i + 1))
  done
  if [ "$n" -gt 0 ]; then echo "@drain-timeout $u $n"; else echo "@drained $u $((i / 5))"; fi
}

# forget_orig KEY: the original of a released file is back in place; its copy goes.
forget_orig() { rm -f "$ORIG_DIR/$1"; }

# remove_extra PATH: a file that goes away with a pruned one (a private key beside a config).
remove_extra() { rm -f "$1"; }

# write_manifest: standard input (base64) becomes the manifest, atomically.
# From here on the apply is rolled forward if it is cut off ("$T/committed").
write_manifest() {
  base64 -d > "$STATE_FILE.tmp" && mv -f "$STATE_FILE.tmp" "$STATE_FILE" || { rollback; exit 1; }
  : > "$T/committed"
  rm -f "$LEFTOVER"
}

# remove_manifest: nothing is managed any more.
remove_manifest() { rm -f "$STATE_FILE" || { rollback; exit 1; }; : > "$T/committed"; rm -f "$LEFTOVER"; }

# remember_digest PATH HASH: the hash of a big file this apply installed goes to gather's
# cache, DIGESTS (see cached_hashes in the gather library), in place of the line PATH had;
# best effort.
remember_digest() {
  sig=$(stat -c '%s %i %.9Y %.9Z' -- "$1") || return 0
  { [ ! -r "$DIGESTS" ] || while IFS= read -r c; do
      case $c in *" $1") ;; *) printf '%s\n' "$c" ;; esac
    done < "$DIGESTS"
    printf '%s %s %s\n' "$sig" "$2" "$1"; } > "$DIGESTS.tmp" 2>/dev/null &&
    mv -f "$DIGESTS.tmp" "$DIGESTS" 2>/dev/null || rm -f "$DIGESTS.tmp"
}

# prune_dir DIR: a directory vds-proxy created and nothing needs, if empty.
prune_dir() { rmdir "$1" 2>/dev/null; }

# finish: the apply is complete.
finish() { echo "@done"; }
