#!/usr/bin/env bash
# Build the npm package's WebAssembly: snapgit-wasm for wasm32-unknown-unknown with the
# size-first `wasm` profile, then `wasm-bindgen --target web` into js/pkg/ (ESM glue whose
# init takes a WebAssembly.Module, bytes, a URL or a Response). Installs what it needs if
# missing: the rustup target, and wasm-bindgen-cli at exactly the version Cargo.toml pins.
# Prints the .wasm size raw and gzipped, and fails above the hard limit of 250 KB gzipped.
#
# No wasm-opt: Debian's binaryen (108) breaks modules with two tables (it exports the
# function table in place of wasm-bindgen's externref table), and a newer one would
# save about 10% raw and 3% gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."

out=js/pkg
hard_limit_gzip=$((250 * 1024))

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

step "cargo build -p snapgit-wasm (wasm32-unknown-unknown, profile wasm)"
cargo build -p snapgit-wasm --target wasm32-unknown-unknown --profile wasm --locked
target_dir="${CARGO_TARGET_DIR:-target}"
built="$target_dir/wasm32-unknown-unknown/wasm/snapgit_wasm.wasm"

step "wasm-bindgen --target web -> $out"
rm -rf "$out"
# No default module path: every entry of the package passes the module in, so the glue
# carries no `import.meta.url` and bundles into the CommonJS entry as it is.
"$bindgen" "$built" --target web --omit-default-module-path --remove-name-section --remove-producers-section \
  --out-dir "$out" --out-name snapgit_wasm
wasm="$out/snapgit_wasm_bg.wasm"

raw=$(wc -c <"$wasm")
gzipped=$(gzip -9 -c "$wasm" | wc -c)
awk -v raw="$raw" -v gz="$gzipped" 'BEGIN {
  printf "snapgit_wasm_bg.wasm: %d bytes raw (%.1f KB), %d bytes gzipped (%.1f KB)\n", raw, raw / 1024, gz, gz / 1024
}'
if [ "$gzipped" -gt "$hard_limit_gzip" ]; then
  echo "error: the .wasm is over the hard limit of 250 KB gzipped" >&2
  exit 1
fi
