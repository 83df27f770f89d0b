# shellcheck shell=sh
# The firewall tool of vds-proxy, installed on a node with the settings RULES, CONFIRMED,
# REVERTED, STATE, TABLE, TIMER and SELF written above this line. It owns one nftables
# table ($TABLE) and nothing else.
#
#   apply SECONDS  arm a revert, then load $RULES: unless `confirm` runs within SECONDS
#                  (vds-proxy runs it over a new SSH connection), `revert` runs
#   confirm SHA    cancel the revert; $RULES become the confirmed rules, loaded at boot —
#                  only when the rules awaiting confirmation are those (SHA-256 SHA): a
#                  deploy never confirms rules another deploy applied
#   revert         (the timer) put the confirmed rules back, or take the table out
#   boot           (the unit, at boot) load the confirmed rules
#   check          fails unless the rules in effect are $RULES, loaded and confirmed
#   status         one line for `vds-proxy status`: "@firewall ok|pending|reverted|changed"
#   forget         take the table out and forget the confirmed rules
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PENDING=$STATE/pending
LOADED=$STATE/loaded

# Every command that changes the table holds this lock: a confirm and a revert never race.
lock() { mkdir -p "$STATE" && exec 8>"$STATE/lock" && flock -w 30 8; }
table_sha() { nft list table "$TABLE" 2>/dev/null | sha256sum | cut -c1-64; }
file_sha() { sha256sum < "$1" | cut -c1-64; }
# loaded FILE: the table in effect came from FILE (what `check` compares with later).
loaded() { echo "$(file_sha "$1") $(table_sha)" > "$LOADED"; }
disarm() {
  systemctl stop "$TIMER.timer" >/dev/null 2>&1
  systemctl reset-failed "$TIMER.timer" "$TIMER.service" >/dev/null 2>&1
  return 0
}
# in_effect: the rules in effect are $RULES, loaded and confirmed.
in_effect() {
  [ ! -e "$PENDING" ] && [ -r "$LOADED" ] && [ -r "$RULES" ] &&
    [ "$(cat "$LOADED")" = "$(file_sha "$RULES") $(table_sha)" ]
}
# put_back: the confirmed rules, or no table at all when none were ever confirmed.
put_back() {
  if [ -s "$CONFIRMED" ]; then
    nft -f "$CONFIRMED" && loaded "$CONFIRMED"
  else
    if nft list table "$TABLE" >/dev/null 2>&1; then nft delete table "$TABLE"; fi
    rm -f "$LOADED"
  fi
}

case ${1:-} in
apply)
  lock || exit 1
  disarm
  systemd-run --quiet --unit="$TIMER" --on-active="$2" --timer-property=AccuracySec=1s \
    --timer-property=RemainAfterElapse=no \
    --description="vds-proxy: put back the last confirmed firewall rules" "$SELF" revert || exit 1
  file_sha "$RULES" > "$PENDING"
  if ! nft -f "$RULES"; then
    put_back
    rm -f "$PENDING"
    disarm
    exit 1
  fi
  loaded "$RULES"
  ;;
confirm)
  lock || exit 1
  if [ ! -e "$PENDING" ]; then
    echo "too late: the host had already put the last confirmed rules back"
    exit 3
  fi
  if [ "$(cat "$PENDING")" != "${2:-}" ] || [ "$(file_sha "$RULES")" != "${2:-}" ]; then
    echo "another deploy changed the firewall rules since this one applied them: not confirmed (that deploy confirms its own)"
    exit 4
  fi
  disarm
  mkdir -p "${CONFIRMED%/*}" && cp "$RULES" "$CONFIRMED.tmp" && mv -f "$CONFIRMED.tmp" "$CONFIRMED" || exit 1
  rm -f "$PENDING" "$REVERTED"
  ;;
revert)
  lock || exit 1
  [ -e "$PENDING" ] || exit 0
  put_back
  rm -f "$PENDING"
  date -u +%Y-%m-%dT%H:%M:%SZ > "$REVERTED"
  echo "the firewall change was not confirmed in time: the last confirmed rules are back" >&2
  ;;
boot)
  lock || exit 1
  rm -f "$PENDING"
  put_back
  ;;
check)
  in_effect
  ;;
status)
  if [ -e "$PENDING" ]; then
    echo "@firewall pending"
  elif [ -e "$REVERTED" ]; then
    echo "@firewall reverted $(cat "$REVERTED")"
  elif in_effect; then
    echo "@firewall ok"
  else
    echo "@firewall changed"
  fi
  ;;
forget)
  lock || exit 1
  disarm
  if nft list table "$TABLE" >/dev/null 2>&1; then nft delete table "$TABLE" || exit 1; fi
  rm -f "$CONFIRMED" "$REVERTED"
  rm -rf "$STATE"
  rmdir "${STATE%/*}" "${CONFIRMED%/*}" 2>/dev/null || true
  ;;
*)
  echo "usage: $SELF apply SECONDS | confirm SHA256 | revert | boot | check | status | forget" >&2
  exit 2
  ;;
esac
