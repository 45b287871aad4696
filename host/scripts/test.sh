#!/usr/bin/env bash
# The host's tests with every backend: starts an S3-compatible server (ministack) and
# Redis on 127.0.0.1 (scripts/services.sh), runs `cargo test -p snapgit-host` against
# them, and stops them whatever the outcome. Extra arguments go to cargo test.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

state=$(mktemp -d "${TMPDIR:-/tmp}/snapgit-services.XXXXXX")
cleanup() {
  scripts/services.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

exports=$(scripts/services.sh start "$state")
eval "$exports"
SNAPGIT_SERVICES=1 cargo test -p snapgit-host "$@"
