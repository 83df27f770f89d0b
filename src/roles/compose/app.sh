# shellcheck shell=sh
# The app tool of vds-proxy, installed on a node: runs one Compose project per app from
# /etc/vds-proxy/apps/NAME/compose.yaml, for its unit vds-app-NAME.service, on the engine
# that app.conf beside it names (Podman with podman-compose, or Docker with the
# `docker compose` plugin, else docker-compose). app.conf also lists the images and the
# services in start order: `service NAME health|- [SERVICE...]`, where the services named
# after it must be healthy before it starts.
#
#   up NAME TIMEOUT   check the engine, make sure every image is there (pull the missing
#                     ones), replace the project's containers (orphans included), start the
#                     services in order, then wait until every container runs and every one
#                     with a healthcheck is healthy, at most TIMEOUT seconds in all;
#                     on failure: the unhealthy service's last log lines, exit 65
#   down NAME         stop and remove the project's containers and network (named
#                     volumes, the data, stay)
#   status NAME       "@app NAME SERVICE|STATE|HEALTH|RESTARTS" per container
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
APPS=/etc/vds-proxy/apps

# engine NAME: sets E (podman or docker) from the app's app.conf.
engine() {
  E=$(sed -n 's/^engine \([a-z]*\)$/\1/p' "$APPS/$1/app.conf" 2>/dev/null)
  E=${E:-podman}
}

# containers NAME: the ids of the project's containers (both engines' Compose label them).
containers() { $E ps -aq --filter "label=com.docker.compose.project=$1"; }

# service_of ID: the compose service a container runs.
service_of() { $E inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$1"; }

# compose ARG...: the engine's Compose on the app's file, in its directory.
compose() {
  case $E in
    podman) podman-compose -p "$NAME" -f compose.yaml "$@" ;;
    *)
      if docker compose version >/dev/null 2>&1; then
        docker compose -p "$NAME" -f compose.yaml "$@"
      else
        docker-compose -p "$NAME" -f compose.yaml "$@"
      fi
      ;;
  esac
}

# down NAME: stops and removes the project's containers and network on every engine the
# node has (an app moved from Podman to Docker leaves nothing behind on the other).
down() {
  for e in podman docker; do
    command -v "$e" >/dev/null || continue
    if [ "$e" = docker ] && ! docker info >/dev/null 2>&1; then continue; fi
    ids=$($e ps -aq --filter "label=com.docker.compose.project=$1")
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086 # one id per word
      $e stop -t 10 $ids >/dev/null 2>&1
      # shellcheck disable=SC2086
      $e rm -f $ids >/dev/null || return 1
    fi
    if $e network inspect "$1_default" >/dev/null 2>&1; then
      $e network rm "$1_default" >/dev/null || return 1
    fi
  done
  return 0
}

# fail ID WHY: takes the project down and says why, with the failing service's last log
# lines, on stderr (the journal) — last, so the report is the unit's last words. Exit 65:
# the version itself failed its health gate, a verdict the deploy does not retry.
fail() {
  why="app $NAME: service $(service_of "$1") $2; its last log lines:"
  lines=$($E logs "$1" 2>&1 | tail -n 8 | sed 's/^/  | /')
  down "$NAME"
  printf '%s\n%s\n' "$why" "$lines" >&2
  exit 65
}

# healthy ID: the container runs, and passes its healthcheck if it has one (Docker runs
# the checks itself; Podman without systemd timers is asked to run one now).
healthy() {
  state=$($E inspect -f '{{.State.Status}}' "$1")
  [ "$state" = running ] || return 1
  case $E in
    podman)
      [ -z "$(podman inspect -f '{{if .Config.Healthcheck}}yes{{end}}' "$1")" ] ||
        podman healthcheck run "$1" >/dev/null 2>&1
      ;;
    *)
      h=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1")
      [ -z "$h" ] || [ "$h" = healthy ]
      ;;
  esac
}

# wait_healthy ID: waits until the container is healthy, failing the app when it stops
# or the deadline passes.
wait_healthy() {
  while ! healthy "$1"; do
    case $state in
      running | created | configured | starting) ;;
      *) fail "$1" "stopped (state $state)" ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail "$1" "is not healthy after $timeout s"
    fi
    sleep 1
  done
}

# container_of SERVICE: the project's container of SERVICE.
container_of() {
  $E ps -aq --filter "label=com.docker.compose.project=$NAME" --filter "label=com.docker.compose.service=$1" | head -n 1
}

up() {
  NAME=$1 timeout=$2 dir=$APPS/$1
  engine "$NAME"
  case $E in
    podman) need="podman podman-compose" hint="apt-get install podman podman-compose" ;;
    *) need="docker" hint="apt-get install docker.io docker-compose, or Docker's docker-ce with the compose plugin" ;;
  esac
  for c in $need; do
    command -v "$c" >/dev/null || {
      echo "app $NAME: $c is not installed on this node; install it ($hint) and deploy again" >&2
      exit 1
    }
  done
  if [ "$E" = docker ]; then
    docker info >/dev/null 2>&1 || {
      echo "app $NAME: the Docker daemon does not answer; start it (systemctl enable --now docker) and deploy again" >&2
      exit 1
    }
    docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || {
      echo "app $NAME: neither the docker compose plugin nor docker-compose is installed; install one (apt-get install docker-compose) and deploy again" >&2
      exit 1
    }
  fi
  cd "$dir" || exit 1
  # Image archives shipped by vds-proxy: loaded when the engine lacks the image.
  sed -n 's/^load //p' app.conf | while read -r id archive; do
    $E image inspect "$id" >/dev/null 2>&1 && continue
    [ -f "$archive" ] || {
      echo "app $NAME: image $id is not on this node and its archive $archive is missing; deploy again to upload it" >&2
      exit 1
    }
    echo "app $NAME: loading $archive"
    $E load -q -i "$archive" >/dev/null || {
      echo "app $NAME: $E load -i $archive failed" >&2
      exit 1
    }
  done || exit 1
  sed -n 's/^image //p' app.conf | while read -r image; do
    $E image inspect "$image" >/dev/null 2>&1 && continue
    echo "app $NAME: pulling $image"
    $E pull -q "$image" >/dev/null || {
      echo "app $NAME: image $image is not on this node and cannot be pulled ($E pull failed); push it to a registry the node can reach or load it with $E load" >&2
      exit 1
    }
  done || exit 1
  down "$NAME" || { echo "app $NAME: cannot remove the previous containers" >&2; exit 1; }
  log=$(mktemp) && order=$(mktemp) || exit 1
  trap 'rm -f "$log" "$order"' EXIT
  deadline=$(($(date +%s) + timeout))
  # One service at a time, in order; those it waits for healthy first.
  sed -n 's/^service //p' app.conf > "$order"
  # (The list is read on fd 3: Compose and the engines read their standard input.)
  while read -r service _ waits <&3; do
    for w in $waits; do
      id=$(container_of "$w")
      [ -n "$id" ] && wait_healthy "$id"
    done
    if ! compose up -d --no-deps "$service" < /dev/null > "$log" 2>&1; then
      echo "app $NAME: starting service $service failed:" >&2
      tail -n 8 "$log" | sed 's/^/  | /' >&2
      exit 1
    fi
  done 3< "$order"
  wanted=$(cut -d' ' -f1 "$order" | sort)
  have=$(for id in $(containers "$NAME"); do service_of "$id"; done | sort)
  if [ "$wanted" != "$have" ]; then
    echo "app $NAME: Compose did not create every service (wanted: $(echo "$wanted" | tr '\n' ' ')); it said:" >&2
    grep -v '^\[' "$log" | tail -n 8 | sed 's/^/  | /' >&2
    exit 1
  fi
  for id in $(containers "$NAME"); do
    wait_healthy "$id"
  done
  echo "app $NAME: $(echo "$wanted" | wc -w) service(s) up"
}

status() {
  engine "$1"
  case $E in
    podman) health='{{if .Config.Healthcheck}}{{.State.Health.Status}}{{else}}-{{end}}' ;;
    *) health='{{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}' ;;
  esac
  for id in $(containers "$1"); do
    echo "@app $1 $($E inspect -f "{{index .Config.Labels \"com.docker.compose.service\"}}|{{.State.Status}}|$health|{{.RestartCount}}" "$id")"
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
