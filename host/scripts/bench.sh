#!/usr/bin/env bash
# The host's benchmark in one command: builds the core component (wasm/component/build.sh)
# and the `host` bench target of snapgit-host (host/benches/host.rs), starts an S3-compatible server (ministack) and Redis on
# 127.0.0.1 (scripts/services.sh), runs the benchmark against them, and stops them
# whatever the outcome.
#
#   bash host/scripts/bench.sh [--release] [benchmark options]
#
# The dev profile by default (dependencies at opt-level 2, snapgit-core and snapgit-host
# at 3): a release build of wasmtime takes over 10 minutes on 2 cores. --release builds and runs the release profile. Other
# arguments go to the benchmark (`--help` lists them: --delay-ms, --repeat, --files, ...).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

profile=dev
args=()
for arg in "$@"; do
  case $arg in
    --release) profile=release ;;
    *) args+=("$arg") ;;
  esac
done

component=$(bash wasm/component/build.sh)
export SNAPGIT_COMPONENT="$component"
# The benchmark's executable, built (not run) by cargo bench in the chosen profile.
build() {
  cargo bench --locked -p snapgit-host --features component --bench host --no-run \
    --message-format=json-render-diagnostics "$@" |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "host" and m.get("executable"):
        print(m["executable"])'
}
if [ "$profile" = release ]; then
  bench=$(build)
else
  # The workspace's own crates are unoptimized in the dev profile; native core must be
  # optimized like the component it is compared with, so they are built at opt-level 3.
  bench=$(build --profile dev \
    --config 'profile.dev.package.snapgit-core.opt-level=3' \
    --config 'profile.dev.package.snapgit-host.opt-level=3')
fi
[ -x "$bench" ] || { echo "the benchmark did not build" >&2; exit 1; }

state=$(mktemp -d "${TMPDIR:-/tmp}/snapgit-bench-services.XXXXXX")
cleanup() {
  scripts/services.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

exports=$(scripts/services.sh start "$state")
eval "$exports"
"$bench" ${args[@]+"${args[@]}"}
