# shellcheck shell=sh
# HAProxy's view of its backends, for `status`.

# haproxy_stats SOCKET...: `show stat` of each stats socket as @stat lines (@stat-nosocat
# when socat, which talks to the socket, is missing).
haproxy_stats() {
  for sock in "$@"; do
    if command -v socat >/dev/null; then
      echo 'show stat' | socat -t 2 stdio "UNIX-CONNECT:$sock" 2>/dev/null | sed 's/^/@stat /'
    else
      echo '@stat-nosocat'
    fi
  done
}
