#!/usr/bin/env bash
# A local S3-compatible server for the S3 adapter's tests: ministack (PyPI), which keeps
# conditional writes linearizable under racing writers, on 127.0.0.1 only.
#
#   s3-server.sh start [STATE_DIR]   start it; print the endpoint (http://127.0.0.1:<port>)
#   s3-server.sh stop  [STATE_DIR]   stop the server started with that STATE_DIR
#
# STATE_DIR (default $TMPDIR/snapgit-s3-server) keeps the pid, the log and `env`, a file of
# shell assignments for the tests: SNAPGIT_S3_ENDPOINT, SNAPGIT_S3_BUCKET and the credentials
# SNAPGIT_S3_ACCESS_KEY_ID / SNAPGIT_S3_SECRET_ACCESS_KEY.
#
# The server runs with AUTH=true, and the credentials belong to an IAM user made at start, so
# every request's SigV4 signature is checked (ministack does not check its root key's).
# If no Python on PATH has ministack, it is installed into a virtualenv under
# $SNAPGIT_TOOLS_DIR (default ~/.cache/snapgit), pinned to $SNAPGIT_MINISTACK_VERSION.
set -euo pipefail

command=${1:-}
state=${2:-${TMPDIR:-/tmp}/snapgit-s3-server}
bucket=${SNAPGIT_S3_BUCKET:-snapgit-test}
version=${SNAPGIT_MINISTACK_VERSION:-1.5.33}
tools=${SNAPGIT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/snapgit}

say() { echo "s3-server: $*" >&2; }

# A Python interpreter that can import ministack (and botocore, its dependency).
python_with_ministack() {
  if python3 -c 'import ministack, botocore' 2>/dev/null; then
    command -v python3
    return
  fi
  local venv="$tools/ministack-venv"
  if ! "$venv/bin/python" -c 'import ministack' 2>/dev/null; then
    say "installing ministack $version into $venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "ministack==$version" >&2
  fi
  echo "$venv/bin/python"
}

free_port() {
  "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Creates an IAM user allowed everything on S3, its access key and the bucket; prints the key.
provision() {
  "$1" - "$2" "$bucket" <<'PY'
import json, re, sys, urllib.error, urllib.parse, urllib.request
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, bucket = sys.argv[1], sys.argv[2]

def call(method, url, body=b"", service="s3", creds=("test", "test"), headers=None):
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(Credentials(*creds), service, "us-east-1").add_auth(request)
    sent = urllib.request.Request(url, method=method, headers=dict(request.headers.items()), data=body)
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()

def iam(**params):
    params["Version"] = "2010-05-08"
    status, body = call("POST", endpoint + "/", urllib.parse.urlencode(params).encode(), "iam",
                        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    if status != 200:
        sys.exit(f"IAM {params['Action']}: HTTP {status}: {body[:300]!r}")
    return body

iam(Action="CreateUser", UserName="snapgit-test")
key = iam(Action="CreateAccessKey", UserName="snapgit-test")
access = re.search(rb"<AccessKeyId>(.*?)</AccessKeyId>", key).group(1).decode()
secret = re.search(rb"<SecretAccessKey>(.*?)</SecretAccessKey>", key).group(1).decode()
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
iam(Action="PutUserPolicy", UserName="snapgit-test", PolicyName="s3", PolicyDocument=json.dumps(policy))
status, body = call("PUT", f"{endpoint}/{bucket}", creds=(access, secret))
if status not in (200, 409):
    sys.exit(f"creating bucket {bucket}: HTTP {status}: {body[:300]!r}")
print(access, secret)
PY
}

ours() {
  # Only a process we started: a live ministack whose pid file we wrote.
  local pid=$1
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ministack
}

# Alive and not a zombie waiting to be reaped.
running() {
  [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" | grep -q '^Z'
}

start() {
  mkdir -p "$state"
  if [ -f "$state/pid" ] && ours "$(cat "$state/pid")"; then
    # shellcheck disable=SC1091
    (. "$state/env" && echo "$SNAPGIT_S3_ENDPOINT")
    return
  fi
  local python port endpoint pid
  python=$(python_with_ministack)
  for attempt in 1 2 3; do
    port=$(free_port "$python")
    endpoint="http://127.0.0.1:$port"
    # Its own session and process group (unless job control made it a group leader
    # already), so stop can end the server and anything it starts.
    # TMPDIR: ministack writes its pid file (and any scratch) there.
    GATEWAY_PORT=$port BIND_HOST=127.0.0.1 SERVICES=s3,iam AUTH=true LOG_LEVEL=WARNING \
      IOT_MTLS_ENABLED=0 SFTP_ENABLED=0 TMPDIR="$state" \
      "$python" -c 'import os, runpy
try:
    os.setsid()
except OSError:
    pass
runpy.run_module("ministack", run_name="__main__", alter_sys=True)' >"$state/log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$state/pid"
    for _ in $(seq 1 300); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if "$python" -c "import urllib.request; urllib.request.urlopen('$endpoint/_ministack/health', timeout=2)" 2>/dev/null; then
        local keys
        keys=$(provision "$python" "$endpoint")
        cat >"$state/env" <<EOF
SNAPGIT_S3_ENDPOINT=$endpoint
SNAPGIT_S3_BUCKET=$bucket
SNAPGIT_S3_ACCESS_KEY_ID=${keys% *}
SNAPGIT_S3_SECRET_ACCESS_KEY=${keys#* }
EOF
        echo "$endpoint"
        return
      fi
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "ministack did not answer on $endpoint within 30 s; log: $state/log"
      stop
      exit 1
    fi
    say "ministack exited (attempt $attempt, port $port); log:"
    tail -n 20 "$state/log" >&2
  done
  exit 1
}

stop() {
  [ -f "$state/pid" ] || return 0
  local pid
  pid=$(cat "$state/pid")
  if ours "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  fi
  rm -f "$state/pid" "$state/env"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: $0 start|stop [STATE_DIR]" >&2
    exit 2
    ;;
esac
