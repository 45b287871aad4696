#!/usr/bin/env bash
# The npm package `snapgit`, built from this checkout and packed into a tarball that any
# project can install:
#
#   bash scripts/pack.sh [DIR]          -> DIR/snapgit-<version>.tgz (DIR: default the current folder)
#   npm install DIR/snapgit-<version>.tgz
#
# Builds only what is missing or older than its sources: the WebAssembly
# (scripts/build-wasm.sh, which installs the wasm32 target and wasm-bindgen-cli if
# missing; a few minutes the first time), the npm dev dependencies (`npm ci`) and the
# TypeScript (`npm run build`). Needs Rust, Node 20 or later and npm. Build output goes to
# stderr; the only line on stdout is the tarball's path.
set -euo pipefail

dir=${1:-.}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/js"

step() { printf '== %s\n' "$*" >&2; }

for tool in node npm cargo; do
  command -v "$tool" >/dev/null || { echo "pack.sh: $tool is required" >&2; exit 1; }
done

# Newer than $1: any file under the other arguments.
changed_since() {
  local mark=$1
  shift
  [ ! -e "$mark" ] || [ -n "$(find "$@" -newer "$mark" -type f 2>/dev/null | head -n 1)" ]
}

if changed_since pkg/snapgit_wasm_bg.wasm ../core/src ../core/Cargo.toml ../wasm/src ../wasm/Cargo.toml \
  ../Cargo.toml ../Cargo.lock ../scripts/build-wasm.sh; then
  step "WebAssembly (scripts/build-wasm.sh)"
  bash ../scripts/build-wasm.sh >&2
fi

if [ ! -d node_modules/esbuild ] || [ ! -d node_modules/typescript ] || changed_since node_modules/.package-lock.json package-lock.json; then
  step "npm ci"
  npm ci --no-audit --no-fund >&2
fi

if [ ! -f dist/node.cjs ] || [ ! -f pkg/snapgit_wasm.cjs ] || changed_since dist/index.js src pkg/snapgit_wasm.js package.json scripts/build.mjs; then
  step "npm run build"
  npm run build >&2
fi

step "npm pack"
name=$(npm pack --pack-destination "$dir" --json --loglevel=error | node -e '
  let text = "";
  process.stdin.on("data", (d) => (text += d)).on("end", () => console.log(JSON.parse(text)[0].filename));
')
echo "$dir/$name"
