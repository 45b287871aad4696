#!/usr/bin/env bash
# The snapgit command's and the core component's tests: builds the component
# (wasm/component/build.sh: guest for wasm32-unknown-unknown, encoded with
# snapgit-component-encode, which fails on any import but snapgit's own), then runs
# every host test (the default features: the snapgit binary embeds that component,
# through SNAPGIT_COMPONENT, and runs it under wasmtime) against ministack and Redis on
# loopback (host/scripts/test.sh). Extra arguments go to cargo test.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

SNAPGIT_COMPONENT=$(bash wasm/component/build.sh)
export SNAPGIT_COMPONENT
bash host/scripts/test.sh "$@"
