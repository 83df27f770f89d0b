# shellcheck shell=sh
# The registry's own view, for `status`.

# registry_health HOST PORT: one @registry line, "ok" and the body of GET /healthz, or
# "fail" and why. Plain HTTP over bash's /dev/tcp, so the node needs no HTTP client.
registry_health() {
  # shellcheck disable=SC2016 # bash expands $1 and $2: they are its arguments
  reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
    cat <&3' registry-health "$1" "$2" 2>/dev/null | tr -d '\r')
  status=$(printf '%s\n' "$reply" | head -n 1)
  case "$status" in
    'HTTP/1.'?' 200'*) echo "@registry ok $(printf '%s\n' "$reply" | tail -n 1)" ;;
    '') echo "@registry fail nothing answers" ;;
    *) echo "@registry fail answered $status" ;;
  esac
}
