# shellcheck shell=sh
# The backup tool of vds-proxy, installed on a node. PostgreSQL dumps in custom format:
# DIR/daily/DB-YYYY-MM-DD.dump, with the first dump of each ISO week and of each month
# hard-linked into DIR/weekly/DB-YYYY-Www.dump and DIR/monthly/DB-YYYY-MM.dump; each dump
# has a .sha256 beside it. Only this tool writes there.
#
#   run DB DIR KEEP_DAILY KEEP_WEEKLY KEEP_MONTHLY [OS_USER]
#                   dump DB (as OS_USER, default postgres), check the archive, put it in
#                   place atomically, link the weekly/monthly copies, prune
#   prune DB DIR KEEP_DAILY KEEP_WEEKLY KEEP_MONTHLY
#                   keep the newest KEEP_* dumps of each kind, delete the rest
#   status DB DIR MAX_AGE_SECONDS UNIT
#                   one line for `vds-proxy status`
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# keep_newest DIR PREFIX N: deletes all but the newest N dumps DIR/PREFIX*.dump (their
# names sort by date) and their checksums.
keep_newest() {
  n=$(find "$1" -maxdepth 1 -name "$2*.dump" | wc -l)
  [ "$n" -le "$3" ] && return 0
  find "$1" -maxdepth 1 -name "$2*.dump" | sort | head -n "$((n - $3))" | while read -r f; do
    rm -f "$f" "$f.sha256"
  done
}

prune() {
  db=$1 dir=$2
  keep_newest "$dir/daily" "$db-" "$3"
  keep_newest "$dir/weekly" "$db-" "$4"
  keep_newest "$dir/monthly" "$db-" "$5"
}

# link_copy FILE DEST: DEST becomes a hard link of FILE (and its checksum) unless it exists.
link_copy() {
  [ -e "$2" ] && return 0
  ln "$1" "$2.tmp" && mv -f "$2.tmp" "$2" &&
    sed "s|  .*|  ${2##*/}|" "$1.sha256" > "$2.sha256.tmp" && mv -f "$2.sha256.tmp" "$2.sha256"
}

run() {
  db=$1 dir=$2 kd=$3 kw=$4 km=$5 user=${6:-postgres}
  umask 077
  mkdir -p "$dir/daily" "$dir/weekly" "$dir/monthly" || exit 1
  day=$(date -u +%Y-%m-%d) week=$(date -u +%G-W%V) month=$(date -u +%Y-%m)
  f=$dir/daily/$db-$day.dump
  tmp=$f.tmp.$$
  trap 'rm -f "$tmp"' EXIT
  start=$(date +%s)
  if ! runuser -u "$user" -- pg_dump --format=custom --dbname="$db" > "$tmp"; then
    echo "backup of $db failed: pg_dump exited with an error (is PostgreSQL running, does the database exist?)" >&2
    exit 1
  fi
  if ! pg_restore --list "$tmp" > /dev/null; then
    echo "backup of $db failed: the dump does not read back as an archive" >&2
    exit 1
  fi
  sync "$tmp" 2>/dev/null || sync
  mv -f "$tmp" "$f" || exit 1
  (cd "$dir/daily" && sha256sum "${f##*/}") > "$f.sha256.tmp" && mv -f "$f.sha256.tmp" "$f.sha256" || exit 1
  [ "$kw" -gt 0 ] && { link_copy "$f" "$dir/weekly/$db-$week.dump" || exit 1; }
  [ "$km" -gt 0 ] && { link_copy "$f" "$dir/monthly/$db-$month.dump" || exit 1; }
  prune "$db" "$dir" "$kd" "$kw" "$km"
  echo "$(date +%s) ${f##*/} $(stat -c %s "$f")" > "$dir/.last-ok-$db.tmp" && mv -f "$dir/.last-ok-$db.tmp" "$dir/.last-ok-$db"
  echo "backup of $db: ${f##*/}, $(stat -c %s "$f") bytes in $(( $(date +%s) - start )) s"
}

status() {
  db=$1 dir=$2 max=$3 unit=$4
  count() { find "$dir/$1" -maxdepth 1 -name "$db-*.dump" 2>/dev/null | wc -l; }
  counts="$(count daily) $(count weekly) $(count monthly)"
  result=$(systemctl show -P Result "$unit" 2>/dev/null)
  if [ -r "$dir/.last-ok-$db" ]; then
    read -r when file size < "$dir/.last-ok-$db"
    age=$(( $(date +%s) - when ))
    state=ok
    [ "$age" -gt "$max" ] && state=old
  else
    age=- file=- size=- state=never
    # Not due yet: the timer was installed less than MAX_AGE ago.
    since=$(stat -c %Y "/etc/systemd/system/${unit%.service}.timer" 2>/dev/null || echo 0)
    [ $(( $(date +%s) - since )) -le "$max" ] && state=waiting
  fi
  [ "$result" != success ] && [ -n "$result" ] && state=failed
  echo "@backup $db $state $age $file $size $counts"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  run) [ $# -ge 5 ] && run "$@" ;;
  prune) [ $# -eq 5 ] && prune "$@" ;;
  status) [ $# -eq 4 ] && status "$@" ;;
  *) echo "usage: backup run|prune|status ..." >&2; exit 2 ;;
esac
