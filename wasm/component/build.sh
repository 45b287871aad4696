#!/usr/bin/env bash
# Build the core component: snapgit-component for wasm32-unknown-unknown (profile
# `component`: the `wasm` profile at opt-level 3), then encode it as a component with
# snapgit-component-encode, which fails if the component imports anything but
# snapgit's own interfaces. Prints its path:
# $CARGO_TARGET_DIR/component/snapgit.wasm (target/ by default).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown >&2
cargo build --quiet --locked -p snapgit-component --target wasm32-unknown-unknown --profile component >&2
cargo build --quiet --locked -p snapgit-component-encode >&2
mkdir -p "$target/component"
"$target/debug/snapgit-component-encode" \
  "$target/wasm32-unknown-unknown/component/snapgit_component.wasm" "$target/component/snapgit.wasm" >&2
echo "$target/component/snapgit.wasm"
