#!/usr/bin/env bash
# The npm package's tests, from a fresh machine: build the WebAssembly
# (scripts/build-wasm.sh installs its toolchain), `npm ci`, build the TypeScript and its
# CommonJS twin, render the TypeScript reference (TypeDoc, warnings fail), then run the
# package's Node tests (ESM and CommonJS) with Node's own runner, whose summary ends the
# output. The push and fetch tests serve a store with the `snapgit` binary (SNAPGIT_BIN,
# else target/debug/snapgit; ../scripts/test.sh builds it first) and are skipped, saying
# so, without one. The storage adapters' conformance suites run
# from scripts/test-adapters.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

for tool in node npm git; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

step "wasm"
bash ../scripts/build-wasm.sh

step "npm ci"
npm ci --no-audit --no-fund

step "build"
npm run build

step "TypeScript reference: TypeDoc over the declarations, every link and export checked"
npm run docs --silent

step "node --test"
tests=()
for file in test/*.test.mjs test/*.test.cjs; do
  [ -e "$file" ] || continue
  case "$(basename "$file")" in
    conformance* | s3*) ;;
    *) tests+=("$file") ;;
  esac
done
node --test "${tests[@]}"
