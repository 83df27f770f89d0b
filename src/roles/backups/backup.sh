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
#   list DB DIR     "@dump KIND NAME BYTES CHECKSUM" per dump, newest first in each kind
#   restore DB DIR DUMP INTO FORCE OS_USER
#                   check DUMP's checksum, then restore it into database INTO: created
#                   when missing; an existing one only with FORCE=force (--clean)
#   receive DIR     (the forced command of the copy key, run as the copy user on the node
#                   that keeps the copies) reads "DB NAME SHA256 KEEP" from
#                   SSH_ORIGINAL_COMMAND and the dump from stdin: checked, put in DIR
#                   atomically, the newest KEEP copies of DB kept
#   verify DB DIR OS_USER
#                   restore the newest dump into a scratch database, compare its tables
#                   with DB's (when DB is up), drop the scratch database
#
# With COPY_TO (user@host), COPY_PORT and COPY_KEEP set, `run` sends each new dump there
# over SSH with the node's copy key (COPY_DIR/id_ed25519, host keys in COPY_DIR/known_hosts);
# a failed copy fails the run (the dump stays).
#
# With PG_APP and PG_SERVICE set, PostgreSQL runs in that service's container (a compose
# app's database, found by its Compose labels on the engine the app's app.conf names):
# every client runs there (`podman exec` or `docker exec`, as OS_USER, as role PG_ROLE when
# set); the dumps stay on the node.
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

# as_pg USER COMMAND...: runs a PostgreSQL client as USER from a directory it can read, on
# the node or in the app's container.
as_pg() {
  user=$1
  shift
  if [ -n "${PG_APP:-}" ]; then
    engine=$(sed -n 's/^engine \([a-z]*\)$/\1/p' "/etc/vds-proxy/apps/$PG_APP/app.conf" 2>/dev/null)
    engine=${engine:-podman}
    id=$($engine ps -q --filter "label=com.docker.compose.project=$PG_APP" --filter "label=com.docker.compose.service=$PG_SERVICE" 2>/dev/null | head -n 1)
    if [ -z "$id" ]; then
      echo "service $PG_SERVICE of app $PG_APP has no running container ($engine)" >&2
      return 1
    fi
    $engine exec -i --user "$user" ${PG_ROLE:+--env "PGUSER=$PG_ROLE"} "$id" "$@"
  else
    (cd / && runuser -u "$user" -- "$@")
  fi
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
  if ! as_pg "$user" pg_dump --format=custom --dbname="$db" > "$tmp"; then
    echo "backup of $db failed: pg_dump exited with an error (is PostgreSQL running, does the database exist?)" >&2
    exit 1
  fi
  if ! as_pg "$user" pg_restore --list < "$tmp" > /dev/null; then
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
  [ -n "${COPY_TO:-}" ] && copy "$db" "$f"
  return 0
}

# copy DB FILE: sends FILE to COPY_TO (see above).
copy() {
  sum=$(sha256sum < "$2" | cut -d' ' -f1)
  if ! ssh -i "$COPY_DIR/id_ed25519" -o UserKnownHostsFile="$COPY_DIR/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=20 -p "$COPY_PORT" \
    "$COPY_TO" "$1 ${2##*/} $sum $COPY_KEEP" < "$2"; then
    echo "copy of ${2##*/} to $COPY_TO failed; the dump is kept on this node" >&2
    exit 1
  fi
}

receive() {
  dir=$1
  set -f
  # shellcheck disable=SC2086 # the words the sender chose, each checked below
  set -- ${SSH_ORIGINAL_COMMAND:-}
  [ $# -eq 4 ] || { echo "expected: DB NAME SHA256 KEEP" >&2; exit 2; }
  db=$1 name=$2 sum=$3 keep=$4
  case $db in '' | [0-9]* | *[!A-Za-z0-9_]*) echo "bad database name" >&2; exit 2 ;; esac
  case $name in "$db"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].dump) ;; *) echo "bad dump name" >&2; exit 2 ;; esac
  case $sum in *[!0-9a-f]*) echo "bad checksum" >&2; exit 2 ;; esac
  [ ${#sum} -eq 64 ] || { echo "bad checksum" >&2; exit 2; }
  case $keep in '' | *[!0-9]* | 0 | ????*) echo "bad keep count" >&2; exit 2 ;; esac
  umask 077
  tmp=$dir/.$name.tmp.$$
  trap 'rm -f "$tmp"' EXIT
  cat > "$tmp" || exit 1
  [ "$(sha256sum < "$tmp" | cut -d' ' -f1)" = "$sum" ] || { echo "$name arrived damaged (checksum differs)" >&2; exit 1; }
  mv -f "$tmp" "$dir/$name" || exit 1
  echo "$sum  $name" > "$dir/$name.sha256.tmp" && mv -f "$dir/$name.sha256.tmp" "$dir/$name.sha256" || exit 1
  keep_newest "$dir" "$db-" "$keep"
  echo "copy of $name kept in $dir"
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

list() {
  db=$1 dir=$2
  for kind in daily weekly monthly; do
    find "$dir/$kind" -maxdepth 1 -name "$db-*.dump" 2>/dev/null | sort -r | while read -r f; do
      if (cd "$dir/$kind" && sha256sum -c --status "${f##*/}.sha256" 2>/dev/null); then sum=ok; else sum=BAD; fi
      echo "@dump $kind ${f##*/} $(stat -c %s "$f") $sum"
    done
  done
}

# dump_path DIR DUMP: the file of dump DUMP (a name from `list`), or nothing.
dump_path() {
  for kind in daily weekly monthly; do
    [ -f "$1/$kind/$2" ] && { echo "$1/$kind/$2"; return 0; }
  done
  return 1
}

exists_db() {
  [ "$(as_pg "$2" psql -qtAX -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]
}

restore() {
  db=$1 dir=$2 dump=$3 into=$4 force=$5 user=$6
  f=$(dump_path "$dir" "$dump") || { echo "no dump $dump of $db in $dir; see \`vds-proxy backup list\`" >&2; exit 1; }
  (cd "${f%/*}" && sha256sum -c --status "$dump.sha256") || { echo "$dump does not match its checksum; pick another dump" >&2; exit 1; }
  if exists_db "$into" "$user"; then
    if [ "$force" != force ]; then
      echo "database $into exists; restoring over it needs --force (or pick a new name with --into)" >&2
      exit 1
    fi
    as_pg "$user" pg_restore --clean --if-exists --no-owner -d "$into" < "$f" || exit 1
  else
    as_pg "$user" createdb "$into" && as_pg "$user" pg_restore --no-owner -d "$into" < "$f" || exit 1
  fi
  tables=$(as_pg "$user" psql -qtAX -d "$into" -c "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
  echo "@restored $dump $into $tables"
}

tables_of() {
  as_pg "$2" psql -qtAX -d "$1" -c "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
}

verify() {
  db=$1 dir=$2 user=$3
  newest=$(find "$dir/daily" -maxdepth 1 -name "$db-*.dump" 2>/dev/null | sort | tail -n 1)
  [ -n "$newest" ] || { echo "no daily dump of $db in $dir yet" >&2; exit 1; }
  scratch="${db}_verify_$$"
  (restore "$db" "$dir" "${newest##*/}" "$scratch" no "$user") > /dev/null ||
    { as_pg "$user" dropdb --if-exists "$scratch"; exit 1; }
  got=$(tables_of "$scratch" "$user")
  as_pg "$user" dropdb "$scratch"
  [ -n "$got" ] || { echo "the newest dump ${newest##*/} restores with no tables" >&2; exit 1; }
  if live=$(tables_of "$db" "$user" 2>/dev/null); then
    missing=$(printf '%s\n' "$live" | while read -r t; do printf '%s\n' "$got" | grep -qxF "$t" || echo "$t"; done)
    [ -z "$missing" ] || { echo "the newest dump ${newest##*/} lacks table(s) of $db: $(echo "$missing" | tr '\n' ' ')" >&2; exit 1; }
  fi
  echo "@verified ${newest##*/} $(printf '%s\n' "$got" | wc -l)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  run) [ $# -ge 5 ] && run "$@" ;;
  prune) [ $# -eq 5 ] && prune "$@" ;;
  status) [ $# -eq 4 ] && status "$@" ;;
  list) [ $# -eq 2 ] && list "$@" ;;
  restore) [ $# -eq 6 ] && restore "$@" ;;
  receive) [ $# -eq 1 ] && receive "$@" ;;
  verify) [ $# -eq 3 ] && verify "$@" ;;
  *) echo "usage: backup run|prune|status|list|restore|receive|verify ..." >&2; exit 2 ;;
esac
