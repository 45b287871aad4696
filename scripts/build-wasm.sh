#!/usr/bin/env bash
# Build the npm package's WebAssembly: snapgit-wasm for wasm32-unknown-unknown with the
# size-first `wasm` profile, then `wasm-bindgen --target web` into js/pkg/ (ESM glue whose
# init takes a WebAssembly.Module, bytes, a URL or a Response), then binaryen's
# `wasm-opt` on the module.
#
# Installs what it needs if missing: the rustup target, wasm-bindgen-cli at exactly the
# version Cargo.toml pins, and binaryen at the version pinned below (its npm package, run
# by Node, under the target folder; Debian's binaryen 108 breaks modules with two tables:
# it exports the function table in place of wasm-bindgen's externref table).
# Prints the .wasm size raw and gzipped, and fails above the hard limit of 384 KB gzipped:
# a guard against accidental growth, not the budget (DESIGN.md's 200 KB, which the
# package misses: compaction with its deltas and commit-graph took it from 219 to 252 KB,
# push and fetch to git remotes — the git protocol, the walk that packs what a remote
# lacks, indexing a received pack — to 334 KB; the store-wide size cap, compaction that
# drops unreachable objects, history reading the commit-graph and its split chains to
# 357 KB; shallow and partial fetches into a store, the swap of git's shallow and config
# files and the lazy fetch of promised objects to 371 KB; every `.gitignore` of a folder
# read by core's one rule, each verdict naming its file and line, to 374 KB; about 85 KB of that growth is
# generic code instantiated again for the new types, the first place to slim).
#
# For size experiments, two settings build a variant elsewhere without touching js/pkg:
# SNAPGIT_WASM_OUT (the output folder) and SNAPGIT_WASM_CARGO_FLAGS (more `cargo build`
# arguments); RUSTFLAGS and CARGO_TARGET_DIR reach cargo as usual. For example, std
# rebuilt for size (unstable flags, hence RUSTC_BOOTSTRAP; needs `rustup component add
# rust-src`):
#   SNAPGIT_WASM_OUT=/tmp/build-std CARGO_TARGET_DIR=/tmp/build-std-target RUSTC_BOOTSTRAP=1 \
#     RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
#     SNAPGIT_WASM_CARGO_FLAGS="-Zbuild-std=std,panic_abort" bash scripts/build-wasm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

out="${SNAPGIT_WASM_OUT:-js/pkg}"
hard_limit_gzip=$((384 * 1024))
binaryen_version=132.0.0

step() { printf '\n== %s\n' "$*" >&2; }

step "toolchain"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

pinned="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)"
[ -n "$pinned" ] || { echo "Cargo.toml must pin wasm-bindgen with '='" >&2; exit 1; }
bindgen="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
if ! { [ -x "$bindgen" ] && "$bindgen" --version | grep -qx "wasm-bindgen $pinned"; }; then
  # Not --locked: the CLI's own lock file does not build with this toolchain.
  cargo install wasm-bindgen-cli --version "$pinned" --force
fi

target_dir="${CARGO_TARGET_DIR:-target}"
binaryen="$target_dir/tools/binaryen-$binaryen_version"
wasm_opt="$binaryen/node_modules/binaryen/bin/wasm-opt"
if [ ! -f "$wasm_opt" ]; then
  npm install --prefix "$binaryen" --no-save --no-package-lock --no-audit --no-fund \
    "binaryen@$binaryen_version" >&2
fi

step "cargo build -p snapgit-wasm (wasm32-unknown-unknown, profile wasm)"
# shellcheck disable=SC2086 # the extra flags are separate words
cargo build -p snapgit-wasm --target wasm32-unknown-unknown --profile wasm --locked ${SNAPGIT_WASM_CARGO_FLAGS:-}
built="$target_dir/wasm32-unknown-unknown/wasm/snapgit_wasm.wasm"

step "wasm-bindgen --target web -> $out"
rm -rf "$out"
# No default module path: every entry of the package passes the module in, so the glue
# carries no `import.meta.url` and bundles into the CommonJS entry as it is. Function
# names stay for wasm-opt, which orders functions by them and then drops them.
"$bindgen" "$built" --target web --omit-default-module-path --out-dir "$out" --out-name snapgit_wasm
wasm="$out/snapgit_wasm_bg.wasm"

step "wasm-opt (binaryen $binaryen_version)"
# -Oz, but without binaryen's inlining and with functions ordered by name rather than by
# use: both of those shrink the module yet make it compress worse (together, about 5%
# more gzipped than no wasm-opt at all). Ordered by name, the copies of each generic
# function sit side by side, which suits gzip. Measured against the module as
# wasm-bindgen leaves it: about 10% smaller raw, 5% gzipped, and commits about 7% faster.
# The features are the ones Rust enables for wasm32-unknown-unknown.
node "$wasm_opt" "$wasm" -o "$wasm" -Oz \
  --one-caller-inline-max-function-size 0 --always-inline-max-function-size 0 \
  --reorder-functions-by-name --strip-debug --strip-producers --strip-target-features \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue

raw=$(wc -c <"$wasm")
gzipped=$(gzip -9 -c "$wasm" | wc -c)
awk -v raw="$raw" -v gz="$gzipped" 'BEGIN {
  printf "snapgit_wasm_bg.wasm: %d bytes raw (%.1f KB), %d bytes gzipped (%.1f KB)\n", raw, raw / 1024, gz, gz / 1024
  if (raw > 250 * 1024 || gz > 100 * 1024) print "note: over the budget of 250 KB raw and 100 KB gzipped (DESIGN.md)"
}'
if [ "$gzipped" -gt "$hard_limit_gzip" ]; then
  echo "error: the .wasm is over the hard limit of 384 KB gzipped" >&2
  exit 1
fi
