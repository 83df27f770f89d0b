# shellcheck shell=sh
# `vds-proxy logs`: journal lines of the units vds-proxy manages on a node.

# logs_read CURSOR SINCE LINES UNIT...: the units' lines after CURSOR (empty: the last
# LINES lines, from SINCE when given), then "@cursor CURSOR" for the next read.
logs_read() {
  cursor=$1 since=$2 lines=$3
  shift 3
  # Each UNIT becomes "-u UNIT" (no word splitting of the names).
  n=$#
  for u in "$@"; do set -- "$@" -u "$u"; done
  shift "$n"
  if [ -n "$cursor" ]; then
    set -- --after-cursor="$cursor" "$@"
  else
    set -- -n "$lines" "$@"
    [ -z "$since" ] || set -- --since="$since" "$@"
  fi
  out=$(journalctl -q --no-pager -o short-iso --show-cursor "$@" 2>&1)
  status=$?
  printf '%s\n' "$out" | sed -e 's/^-- cursor: /@cursor /'
  return $status
}
