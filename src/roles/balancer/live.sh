# shellcheck shell=sh
# HAProxy takes new replicas without a reload: the servers a new haproxy.cfg adds are added
# to the running HAProxy through its runtime API (the config's stats socket, level admin),
# with their health checks, so no new worker starts and no old one lingers with its
# connections. Anything else changed is left to a reload, which reads the whole file.

# haproxy_added OLD NEW: "BACKEND SERVER-LINE" for each server line NEW adds to a backend,
# when that is all that differs from OLD; fails (printing nothing) otherwise — a line
# outside the server lines changed, a server went or changed, nothing was added, the
# backends are transparent (TPROXY: left to a reload), or a server line holds a ";".
haproxy_added() {
  awk '
    FILENAME == ARGV[1] { f = 1 } FILENAME == ARGV[2] { f = 2 }
    /^backend[ \t]/ { b = $2 }
    /^[^ \t]/ && !/^backend[ \t]/ { b = "" }
    /usesrc/ { bad = 1 }
    b != "" && $1 == "server" {
      # A ";" would end a runtime API command early: such a line is left to a reload.
      if (index($0, ";")) bad = 1
      $1 = $1; key = b " " $0
      if (f == 1) old[key] = 1; else { now[key] = 1; if (!(key in old)) add[++n] = key }
      next
    }
    { rest[f] = rest[f] $0 "\n" }
    END {
      if (bad || rest[1] != rest[2] || n == 0) exit 1
      for (k in old) if (!(k in now)) exit 1
      for (i = 1; i <= n; i++) print add[i]
    }' "$1" "$2"
}

# haproxy_wait_listening PORT...: waits until each PORT has a listening socket here (a new
# replica's first health check then finds it), at most 10 s.
haproxy_wait_listening() {
  i=0
  while [ "$i" -lt 50 ]; do
    open=$(ss -Htln) missing=''
    for p in "$@"; do
      case $open in *":$p "*) ;; *) missing=1 ;; esac
    done
    [ -n "$missing" ] || return 0
    sleep 0.2
    i=$((i + 1))
  done
}

# haproxy_add_servers OLD NEW: adds the servers NEW adds (see haproxy_added) to the running
# HAProxy once they listen, enables them, and their health checks. Fails when it
# cannot: the caller then reloads HAProxy, which reads every server from NEW (those added
# already included).
haproxy_add_servers() {
  added=$(haproxy_added "$1" "$2") || return 1
  sock=$(awk '$1 == "stats" && $2 == "socket" { print $3; exit }' "$2")
  if [ ! -S "$sock" ] || ! command -v socat >/dev/null; then return 1; fi
  # shellcheck disable=SC2046 # one word per port
  haproxy_wait_listening $(printf '%s\n' "$added" | awk '{ n = split($4, a, ":"); print a[n] }')
  cmds='' expect=''
  while read -r backend _ name rest; do
    cmds="$cmds${cmds:+; }add server $backend/$name $rest"
    cmds="$cmds; enable server $backend/$name"
    # Checked: at full health once it listens, as a reload would start it; its checks take
    # it out if it fails.
    case " $rest " in
      *" check "*) cmds="$cmds; enable health $backend/$name; set server $backend/$name health up" ;;
    esac
    expect="${expect}New server registered.
"
  done <<EOF
$added
EOF
  got=$(printf '%s\n' "$cmds" | socat -t 5 stdio "UNIX-CONNECT:$sock" | sed '/^$/d')
  if [ "$got
" != "$expect" ]; then
    echo "HAProxy's runtime API refused the new servers: $(printf '%s\n' "$got" | grep -v '^New server registered\.$' | head -n 1)"
    return 1
  fi
}
