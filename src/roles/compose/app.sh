# shellcheck shell=sh
# The app tool of vds-proxy, installed on a node: runs one Podman Compose project per app
# from /etc/vds-proxy/apps/NAME/compose.yaml, for its unit vds-app-NAME.service.
#
#   up NAME TIMEOUT   check the engine, make sure every image is there (pull the missing
#                     ones), replace the project's containers (orphans included) with
#                     `podman-compose up -d`, then wait until every container runs and
#                     every one with a healthcheck is healthy, at most TIMEOUT seconds;
#                     on failure: the unhealthy service's last log lines, exit 65
#   down NAME         stop and remove the project's containers and network (named
#                     volumes, the data, stay)
#   status NAME       "@app NAME SERVICE|STATE|HEALTH|RESTARTS" per container
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
APPS=/etc/vds-proxy/apps

# containers NAME: the ids of the project's containers.
containers() { podman ps -aq --filter "label=io.podman.compose.project=$1"; }

# service_of ID: the compose service a container runs.
service_of() { podman inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$1"; }

down() {
  ids=$(containers "$1")
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086 # one id per word
    podman stop -t 10 $ids >/dev/null 2>&1
    # shellcheck disable=SC2086
    podman rm -f $ids >/dev/null || return 1
  fi
  if podman network exists "$1_default" 2>/dev/null; then
    podman network rm "$1_default" >/dev/null || return 1
  fi
  return 0
}

# fail ID WHY: takes the project down and says why, with the failing service's last log
# lines, on stderr (the journal) — last, so the report is the unit's last words. Exit 65:
# the version itself failed its health gate, a verdict the deploy does not retry.
fail() {
  why="app $NAME: service $(service_of "$1") $2; its last log lines:"
  lines=$(podman logs "$1" 2>&1 | tail -n 8 | sed 's/^/  | /')
  down "$NAME"
  printf '%s\n%s\n' "$why" "$lines" >&2
  exit 65
}

up() {
  NAME=$1 timeout=$2 dir=$APPS/$1
  for c in podman podman-compose; do
    command -v "$c" >/dev/null || {
      echo "app $NAME: $c is not installed on this node; install it (apt-get install podman podman-compose) and deploy again" >&2
      exit 1
    }
  done
  cd "$dir" || exit 1
  sed -n 's/^    image: "\(.*\)"$/\1/p' compose.yaml | sort -u | while read -r image; do
    podman image exists "$image" && continue
    echo "app $NAME: pulling $image"
    podman pull -q "$image" >/dev/null || {
      echo "app $NAME: image $image is not on this node and cannot be pulled (podman pull failed); push it to a registry the node can reach or load it with podman load" >&2
      exit 1
    }
  done || exit 1
  down "$NAME" || { echo "app $NAME: cannot remove the previous containers" >&2; exit 1; }
  log=$(mktemp) || exit 1
  trap 'rm -f "$log"' EXIT
  if ! podman-compose -p "$NAME" -f compose.yaml up -d > "$log" 2>&1; then
    echo "app $NAME: podman-compose up failed:" >&2
    tail -n 8 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
  wanted=$(sed -n 's/^  \([a-z0-9][a-z0-9-]*\):$/\1/p' compose.yaml | sort)
  have=$(for id in $(containers "$NAME"); do service_of "$id"; done | sort)
  if [ "$wanted" != "$have" ]; then
    echo "app $NAME: podman-compose did not create every service (wanted: $(echo "$wanted" | tr '\n' ' ')); it said:" >&2
    grep -v '^\[' "$log" | tail -n 8 | sed 's/^/  | /' >&2
    exit 1
  fi
  deadline=$(($(date +%s) + timeout))
  for id in $(containers "$NAME"); do
    checked=$(podman inspect -f '{{if .Config.Healthcheck}}yes{{end}}' "$id")
    while :; do
      state=$(podman inspect -f '{{.State.Status}}' "$id")
      if [ "$state" = running ] && { [ -z "$checked" ] || podman healthcheck run "$id" >/dev/null 2>&1; }; then
        break
      fi
      case $state in
        running | created | configured) ;;
        *) fail "$id" "stopped (state $state)" ;;
      esac
      if [ "$(date +%s)" -ge "$deadline" ]; then
        fail "$id" "is not healthy after $timeout s"
      fi
      sleep 1
    done
  done
  echo "app $NAME: $(echo "$wanted" | wc -w) service(s) up"
}

status() {
  for id in $(containers "$1"); do
    echo "@app $1 $(podman inspect -f '{{index .Config.Labels "com.docker.compose.service"}}|{{.State.Status}}|{{if .Config.Healthcheck}}{{.State.Health.Status}}{{else}}-{{end}}|{{.RestartCount}}' "$id")"
  done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  up) up "$1" "$2" ;;
  down) down "$1" ;;
  status) status "$1" ;;
  *) echo "usage: app up NAME TIMEOUT | down NAME | status NAME" >&2; exit 2 ;;
esac
