#!/usr/bin/env bash
# The main job on a fresh machine, with the embedded default store (a folder in the
# current directory, no server): build snapgit, commit an agent's memory files twice,
# show the log and the diff, restore the first version, and let git check the store.
# snapgit runs core as the WebAssembly component embedded in the binary, under wasmtime
# (its default engine); the last step prints the log again from native core.
#
#   bash scripts/demo.sh [WORK_DIR]     (default: a new temporary folder)
#
# SNAPGIT_BIN=/path/to/snapgit skips the build (the tests use the binary they built).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/snapgit-demo.XXXXXX")}

if [ -z "${SNAPGIT_BIN:-}" ]; then
  echo "== build (the first build compiles wasmtime and the core component: minutes)" >&2
  (cd "$root" && cargo build --quiet -p snapgit-host --bin snapgit)
  target=${CARGO_TARGET_DIR:-$root/target}
  case $target in /*) ;; *) target=$root/$target ;; esac # cargo ran in $root
  SNAPGIT_BIN="$target/debug/snapgit"
fi
case $SNAPGIT_BIN in /*) ;; *) SNAPGIT_BIN=$PWD/$SNAPGIT_BIN ;; esac
snapgit() { "$SNAPGIT_BIN" "$@"; }

mkdir -p "$work" && cd "$work"
echo "== in $work" >&2
# Only the store's location comes from the environment; everything else is explicit.
unset SNAPGIT_REPO SNAPGIT_BRANCH SNAPGIT_REDIS_URL SNAPGIT_ENGINE
export SNAPGIT_STORE=./.snapgit SNAPGIT_AUTHOR="Agent <agent@example.com>"

echo "== init: a bare git repository in ./.snapgit" >&2
snapgit init

echo "== turn 1: commit the agent's memory" >&2
mkdir -p memory
printf '# Profile\nname: Ada\nprefers: short answers\n' >memory/profile.md
printf '{"turn": 1}\n' >memory/state.json
snapgit commit memory -m "turn 1"

echo "== turn 2: edit one file, add one, delete one" >&2
printf '# Profile\nname: Ada\nprefers: detailed answers\n' >memory/profile.md
printf 'met Bob\n' >memory/journal.md
rm memory/state.json
snapgit commit memory --sync -m "turn 2"

echo "== log" >&2
snapgit log --oneline
echo "== diff: turn 1 -> turn 2" >&2
snapgit diff main~1 main --stat
snapgit diff main~1 main

echo "== restore turn 1 as a new commit (history is kept)" >&2
snapgit restore main~1 -m "back to turn 1"
snapgit cat memory/profile.md
snapgit ls -r

echo "== the same log from native core (--engine native) instead of the component" >&2
snapgit --engine native log --oneline

echo "== git reads the same store" >&2
git --git-dir .snapgit log --oneline refs/namespaces/default/refs/heads/main
git --git-dir .snapgit fsck --strict
echo "== done: the store is $work/.snapgit" >&2
