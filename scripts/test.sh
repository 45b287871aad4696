#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then checks
# formatting, lints, the wasm build of core, every test, and the fuzz crate's build.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "toolchain"
command -v git >/dev/null || { echo "git is required (apt-get install git)" >&2; exit 1; }
installed_components=$(rustup component list --installed 2>/dev/null || true)
for component in rustfmt clippy; do
  grep -q "^$component" <<<"$installed_components" || rustup component add "$component"
done
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "format"
cargo fmt --all --check

step "core component: wasm32 guest, encoded (refused if it imports anything but snapgit's interfaces)"
# Built once here: the snapgit binary embeds this one (host/build.rs takes
# SNAPGIT_COMPONENT instead of building its own), and the host's tests load it.
SNAPGIT_COMPONENT=$(bash wasm/component/build.sh)
export SNAPGIT_COMPONENT

step "lint"
# snapgit-host's default build runs core as the component under wasmtime ...
cargo clippy --workspace --all-targets --locked -- -D warnings
# ... and without the `component` feature it is a native-only build; lint that too.
cargo clippy -p snapgit-host --all-targets --no-default-features --locked -- -D warnings

step "cargo doc: every crate's docs build without a warning (each README is its crate's overview)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "core for wasm32-unknown-unknown"
cargo build -p snapgit-core --target wasm32-unknown-unknown --locked

step "tests"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
# The host runs its tests below, with real servers.
cargo test --workspace --locked --exclude snapgit-host 2>&1 | tee "$results"

step "the snapgit binary: the npm package's push and fetch tests (Node, workerd) serve a store with it"
cargo build --locked --quiet -p snapgit-host --bin snapgit
SNAPGIT_BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/snapgit"
export SNAPGIT_BIN

step "npm package: wasm build, Node tests (ESM and CommonJS)"
bash js/scripts/test.sh 2>&1 | tee -a "$results"

step "npm package in Deno, workerd and Chromium; packaging into throwaway projects"
bash js/scripts/test-runtimes.sh 2>&1 | tee -a "$results"

step "Python package: blocking and asyncio clients of serve's JSON API, pytest against the snapgit binary"
bash python/scripts/test.sh 2>&1 | tee -a "$results"

step "JS storage adapters: conformance suite, S3 against a local server"
bash js/scripts/test-adapters.sh 2>&1 | tee -a "$results"

step "host: storage backends, locks, the snapgit command and the core component under wasmtime, against ministack and redis-server on loopback"
bash host/scripts/test-cli.sh 2>&1 | tee -a "$results"

step "fuzz targets: build with coverage instrumentation, short run from git-made seeds"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/fuzz" bash fuzz/smoke.sh "${FUZZ_RUNS:-20000}"

step "every example of the READMEs, as a reader pastes it (scripts/examples.mjs): the snapgit binary is built as scripts/demo.sh builds it, with the component host/build.rs builds, and the README's own demo step runs it"
env -u SNAPGIT_COMPONENT -u SNAPGIT_BIN node scripts/examples.mjs 2>&1 | tee -a "$results"

# cargo's "test result:" lines, node's "# pass N" / "# fail N" lines, and the runtime
# suite's and the examples runner's own "runtimes: N passed, M failed" and
# "examples: N passed, M failed" lines.
sum() {
  {
    grep -E '^test result:' "$results" | grep -oE "[0-9]+ $1" | awk '{ print $1 }'
    grep -E "^# $2 [0-9]+$" "$results" | awk '{ print $3 }'
    grep -E "^(runtimes|examples): [0-9]+ passed, [0-9]+ failed$" "$results" | grep -oE "[0-9]+ $1" | awk '{ print $1 }'
  } | awk '{ n += $1 } END { print n + 0 }'
}
passed="$(sum passed pass)"
failed="$(sum failed fail)"

printf '\nsnapgit: %s passed, %s failed\n' "$passed" "$failed"
