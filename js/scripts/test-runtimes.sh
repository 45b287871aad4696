#!/usr/bin/env bash
# The package in every runtime it supports, from a fresh machine:
#
# - the shared scenarios (commit, read, log, diff, restore, concurrent commits that all
#   survive, bad input with its error code) in Node (ESM and CommonJS), Deno, workerd
#   (memory adapter, and the R2 adapter on an R2 binding; and a Worker pushing to and
#   importing from `snapgit serve`, when the snapgit binary is there: SNAPGIT_BIN or
#   target/debug/snapgit) and headless Chromium (memory and IndexedDB adapters, and tabs
#   committing at once): test/runtimes/;
# - the packaging test: `npm pack`, the tarball installed into a throwaway project per
#   runtime and imported by name, `tsc` on the declarations, examples/worker built and
#   served by workerd, package.json's publishing fields, and a fresh `npm init -y` project
#   that installs the tarball and runs the README's first example: test/packaging/.
#   (Every README example runs from ../scripts/examples.mjs.)
#
# Installs what is missing: the npm dev dependencies (deno, workerd, playwright-core) and,
# with apt, Debian's chromium. Uses the WebAssembly and the TypeScript build that
# scripts/test.sh leaves, building them if missing or older than their sources. Everything
# listens on loopback only. Exits non-zero on any failure; the last line is
# `runtimes: N passed, M failed` (N and M count tests).
#
#   CHROMIUM=/path/to/chromium  use another Chromium than /usr/bin/chromium
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

for tool in node npm git; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  step "apt-get install chromium"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
fi

if [ ! -d node_modules/workerd ] || [ ! -d node_modules/deno ] || [ ! -d node_modules/playwright-core ] \
  || [ ! -d node_modules/esbuild ] || [ ! -d node_modules/typescript ]; then
  step "npm ci"
  npm ci --no-audit --no-fund
fi

if [ ! -f pkg/snapgit_wasm_bg.wasm ] || [ ! -f pkg/snapgit_wasm.js ]; then
  step "wasm"
  bash ../scripts/build-wasm.sh
fi

# The TypeScript build (and the CommonJS twin of the wasm glue) when missing or stale.
stale=$(find src pkg/snapgit_wasm.js package.json -newer dist/index.js 2>/dev/null | head -n 1 || true)
if [ ! -f dist/index.js ] || [ ! -f dist/node.cjs ] || [ ! -f pkg/snapgit_wasm.cjs ] || [ -n "$stale" ]; then
  step "build"
  npm run build
fi

step "node --test test/runtimes test/packaging"
tap=$(mktemp "${TMPDIR:-/tmp}/snapgit-runtimes.XXXXXX")
trap 'rm -f "$tap"' EXIT
status=0
node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  test/runtimes/*.test.mjs test/packaging/*.test.mjs || status=$?

# Node's TAP summary: `# pass N`, `# fail M`, `# cancelled K` at the top level.
count() { sed -n "s/^# $1 \([0-9][0-9]*\)$/\1/p" "$tap" | tail -n 1; }
passed=$(count pass)
failed=$(count fail)
cancelled=$(count cancelled)
passed=${passed:-0}
failed=$((${failed:-0} + ${cancelled:-0}))
# A run that failed without counting a failed test (a crash before the summary) is a failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "runtimes: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
