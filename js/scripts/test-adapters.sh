#!/usr/bin/env bash
# Runs the storage adapter conformance tests of every adapter: memory, node-fs (with real
# git), R2 (fake binding), IndexedDB (fake-indexeddb) and S3 against a local ministack
# started here on loopback and stopped on exit, whatever the outcome.
# Exits non-zero on any failure; the output ends with node's test summary.
set -euo pipefail

js=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$js"

state=$(mktemp -d "${TMPDIR:-/tmp}/snapgit-s3.XXXXXX")
cleanup() {
  scripts/s3-server.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/s3-server.sh start "$state" >/dev/null
set -a
# shellcheck disable=SC1091
. "$state/env"
set +a

[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p tsconfig.json

node --test test/conformance-*.test.mjs
