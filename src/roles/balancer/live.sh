# shellcheck shell=sh
# HAProxy takes new replicas without a reload: the servers a new haproxy.cfg adds are added
# to the running HAProxy through its runtime API (the config's stats socket, level admin),
# with their health checks, so no new worker starts and no old one lingers with its
# connections. Anything else changed is left to a reload, which reads the whole file.

# haproxy_added OLD NEW: "BACKEND SERVER-LINE" for each server line NEW adds to a backend,
# when that is all that differs from OLD; fails (printing nothing) otherwise — a line
# outside the server lines changed, a server went or changed, nothing was added, or the
# backends are transparent (TPROXY: left to a reload).
haproxy_added() {
  awk '
    FILENAME == ARGV[1] { f = 1 } FILENAME == ARGV[2] { f = 2 }
    /^backend[ \t]/ { b = $2 }
    /^[^ \t]/ && !/^backend[ \t]/ { b = "" }
    /usesrc/ { bad = 1 }
    b != "" && $1 == "server" {
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

# haproxy_add_servers OLD NEW: adds the servers NEW adds (see haproxy_added) to the running
# HAProxy, each with its health check, and enables them. Fails when it cannot: the caller
# then reloads HAProxy, which reads every server from NEW (those added already included).
haproxy_add_servers() {
  added=$(haproxy_added "$1" "$2") || return 1
  sock=$(awk '$1 == "stats" && $2 == "socket" { print $3; exit }' "$2")
  if [ ! -S "$sock" ] || ! command -v socat >/dev/null; then return 1; fi
  cmds='' expect=''
  while read -r backend _ name rest; do
    cmds="$cmds${cmds:+; }add server $backend/$name $rest"
    case " $rest " in *" check "*) cmds="$cmds; enable health $backend/$name" ;; esac
    cmds="$cmds; enable server $backend/$name"
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
