#!/usr/bin/env bash
# The servers the host's tests run against, on 127.0.0.1 only: an S3-compatible server
# (ministack, from PyPI, which keeps conditional writes linearizable under racing writers)
# and Redis (Debian's redis-server).
#
#   scripts/services.sh start [STATE_DIR]   install what is missing, start both, wait until
#                                           they answer, create the bucket; print `export`
#                                           lines: eval "$(scripts/services.sh start)"
#   scripts/services.sh env   [STATE_DIR]   print the `export` lines of running servers
#   scripts/services.sh stop  [STATE_DIR]   stop the servers started with that STATE_DIR
#
# The variables: SNAPGIT_SERVICES=1, SNAPGIT_S3_ENDPOINT, SNAPGIT_S3_BUCKET,
# SNAPGIT_S3_ACCESS_KEY_ID, SNAPGIT_S3_SECRET_ACCESS_KEY, SNAPGIT_REDIS_URL, and for S3
# clients the usual AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION and AWS_ALLOW_HTTP.
# STATE_DIR (default $TMPDIR/snapgit-services) keeps pids, logs and the variables.
#
# The S3 server is started by js/scripts/s3-server.sh (shared with the JS package's tests):
# ministack with signatures checked, an IAM user's key, and the bucket.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command=${1:-}
state=${2:-${TMPDIR:-/tmp}/snapgit-services}
s3_server="$root/js/scripts/s3-server.sh"

say() { echo "services: $*" >&2; }

# A live process we started: its pid file is ours and its command line names the program.
ours() {
  local pid=$1 program=$2
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$program"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  say "installing redis-server (apt-get)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2
}

start_redis() {
  local dir="$state/redis" pid port
  mkdir -p "$dir"
  if [ -f "$dir/pid" ] && ours "$(cat "$dir/pid")" redis-server; then
    return
  fi
  install_redis
  for attempt in 1 2 3; do
    port=$(free_port)
    # No persistence; its own session, so stop can end it whatever shell started it.
    setsid redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
      --dir "$dir" --logfile "$dir/log" </dev/null >/dev/null 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
        echo "SNAPGIT_REDIS_URL=redis://127.0.0.1:$port/" >"$dir/env"
        return
      fi
      sleep 0.1
    done
    say "redis-server did not answer on port $port (attempt $attempt); log:"
    tail -n 20 "$dir/log" >&2 2>/dev/null || true
    stop_redis
  done
  exit 1
}

stop_redis() {
  local dir="$state/redis" pid
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  if ours "$pid" redis-server; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid" "$dir/env"
}

start_s3() {
  if [ ! -x "$s3_server" ]; then
    say "$s3_server is missing: it starts the S3 server"
    exit 1
  fi
  "$s3_server" start "$state/s3" >/dev/null
}

print_env() {
  local file
  for file in "$state/s3/env" "$state/redis/env"; do
    if [ ! -f "$file" ]; then
      say "no running servers under $state (run: scripts/services.sh start)"
      exit 1
    fi
  done
  echo "export SNAPGIT_SERVICES=1"
  sed 's/^/export /' "$state/s3/env" "$state/redis/env"
  # The same server under the names S3 tools (and snapgit's s3:// stores) read.
  (
    # shellcheck disable=SC1091
    . "$state/s3/env"
    echo "export AWS_ENDPOINT_URL=$SNAPGIT_S3_ENDPOINT"
    echo "export AWS_ACCESS_KEY_ID=$SNAPGIT_S3_ACCESS_KEY_ID"
    echo "export AWS_SECRET_ACCESS_KEY=$SNAPGIT_S3_SECRET_ACCESS_KEY"
    echo "export AWS_REGION=us-east-1"
    echo "export AWS_ALLOW_HTTP=true"
  )
}

case "$command" in
  start)
    mkdir -p "$state"
    start_s3
    start_redis
    print_env
    ;;
  env) print_env ;;
  stop)
    stop_redis
    [ -x "$s3_server" ] && "$s3_server" stop "$state/s3" || true
    ;;
  *)
    echo "usage: $0 start|env|stop [STATE_DIR]" >&2
    exit 2
    ;;
esac
