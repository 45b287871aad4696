#!/usr/bin/env bash
# Build the fuzz targets with coverage instrumentation on the stable toolchain and run
# each one briefly from a seed corpus made of real git objects.
#
#   fuzz/smoke.sh [runs]        default: 20000 runs per target
#
# No nightly is needed: `-Cpasses=sancov-module` and the `-Cllvm-args` below are stable
# codegen flags, the ones cargo-fuzz passes; only the sanitizers (ASan and friends) need
# nightly, and core has no unsafe code for them to check. `--target` keeps the flags off
# build scripts and proc macros. A crash leaves its input in fuzz/artifacts/<target>/.
set -euo pipefail

runs="${1:-20000}"
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
host="$(rustc -vV | sed -n 's/^host: //p')"
targets=(loose_object tree commit pack ingest remote)

export RUSTFLAGS="--cfg fuzzing -Cdebug-assertions -Coverflow-checks \
 -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares"
cargo build --manifest-path "$fuzz_dir/Cargo.toml" --release --target "$host" --bins

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Seeds: a blob, nested trees (file, executable, symlink, folder) and commits with and
# without a parent, written by real git.
repo="$work/repo"
git init --quiet --bare "$repo"
gitc() {
    GIT_DIR="$repo" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
        GIT_AUTHOR_NAME="Agent Smith" GIT_AUTHOR_EMAIL=agent@example.com \
        GIT_COMMITTER_NAME="Agent Smith" GIT_COMMITTER_EMAIL=agent@example.com \
        GIT_AUTHOR_DATE="1700000000 +0130" GIT_COMMITTER_DATE="1700000000 +0130" git "$@"
}
blob="$(printf '# Notes\n\n- remember this\n' | gitc hash-object -w --stdin)"
run="$(printf '#!/bin/sh\necho hi\n' | gitc hash-object -w --stdin)"
link="$(printf 'notes.md' | gitc hash-object -w --stdin)"
sub="$(printf '100644 blob %s\tday-1.md\n' "$blob" | gitc mktree)"
tree="$(printf '100644 blob %s\tnotes.md\n100755 blob %s\trun.sh\n120000 blob %s\tlatest\n040000 tree %s\tdays\n' \
    "$blob" "$run" "$link" "$sub" | gitc mktree)"
first="$(printf 'first turn\n' | gitc commit-tree "$tree")"
second="$(printf 'second turn\n\nwith a body\n' | gitc commit-tree "$sub" -p "$first")"

for target in "${targets[@]}"; do mkdir -p "$work/corpus/$target" "$fuzz_dir/artifacts/$target"; done
gitc cat-file tree "$tree" > "$work/corpus/tree/root"
gitc cat-file tree "$sub" > "$work/corpus/tree/sub"
gitc cat-file commit "$first" > "$work/corpus/commit/root"
gitc cat-file commit "$second" > "$work/corpus/commit/child"
# loose_object reads its first byte as the kind (0 blob, 1 tree, 2 commit), the rest as content.
{ printf '\000'; gitc cat-file blob "$blob"; } > "$work/corpus/loose_object/blob"
{ printf '\001'; cat "$work/corpus/tree/root"; } > "$work/corpus/loose_object/tree"
{ printf '\002'; cat "$work/corpus/commit/child"; } > "$work/corpus/loose_object/commit"
cp "$repo/objects/${first:0:2}/${first:2}" "$work/corpus/loose_object/stored-commit"
# pack reads its first byte as the mode (0 index, 1 entry, 2 delta), the rest as input:
# the index and the pack git writes for the objects above, and a delta.
printf '%s\n' "$blob" "$run" "$link" "$sub" "$tree" "$first" "$second" |
    gitc pack-objects -q "$repo/objects/pack/pack" >/dev/null
idx="$(ls "$repo"/objects/pack/*.idx)"
{ printf '\000'; cat "$idx"; } > "$work/corpus/pack/index"
{ printf '\001'; tail -c +13 "${idx%.idx}.pack"; } > "$work/corpus/pack/entry"
printf '\002\013hello world\013\013\220\006\005there' > "$work/corpus/pack/delta"
# ingest reads its first byte's low bit as "seal the checksum", the rest as a pack: the
# pack above, and three versions of a text packed with offset deltas and with ref deltas.
{ printf '\001'; cat "${idx%.idx}.pack"; } > "$work/corpus/ingest/pack"
text() { for line in $(seq 1 30); do printf 'line %s of a text, version %s\n' "$line" "$(( line == $1 ? $1 : 0 ))"; done; }
versions="$(for v in 3 9 17; do text "$v" | gitc hash-object -w --stdin; done)"
for deltas in --delta-base-offset ""; do
    { printf '\001'; gitc pack-objects -q --stdout $deltas <<<"$versions"; } > "$work/corpus/ingest/deltas$deltas"
done
# remote reads its first byte as the decoder (see fuzz_targets/remote.rs): what git's
# upload-pack and receive-pack answer, and what their clients send, for the repository above.
v2() { GIT_PROTOCOL=version=2 gitc upload-pack --stateless-rpc "$repo"; }
gitc update-ref refs/heads/main "$second"
{ printf '\002'; GIT_PROTOCOL=version=2 gitc upload-pack --http-backend-info-refs "$repo"; } > "$work/corpus/remote/advertisement"
ls_refs='0014command=ls-refs\n0017object-format=sha1\n00010009peel\n000csymrefs\n000bunborn\n0000'
{ printf '\001'; printf "$ls_refs"; } > "$work/corpus/remote/ls-refs-request"
{ printf '\003'; printf "$ls_refs" | v2; } > "$work/corpus/remote/ls-refs"
fetch="0012command=fetch\n0001000ethin-pack\n000eofs-delta\n000ddeepen 1\n0032want $second\n0032have $first\n0009done\n0000"
{ printf '\001'; printf "$fetch"; } > "$work/corpus/remote/fetch-request"
{ printf '\004'; printf "$fetch" | v2; } > "$work/corpus/remote/fetch"
{ printf '\006'; gitc receive-pack --http-backend-info-refs "$repo"; } > "$work/corpus/remote/receive-advertisement"
{ printf '\007'; printf '007f%s %s refs/heads/x\000report-status side-band-64k\n0000' 0000000000000000000000000000000000000000 "$second"
  printf '%s\n' "$second" | gitc pack-objects -q --revs --stdout; } > "$work/corpus/remote/push"
printf '\010000eunpack ok\n0014ok refs/heads/x\n0000' > "$work/corpus/remote/report"
printf '\011002b\001000eunpack ok\n0014ok refs/heads/x\n00000000' > "$work/corpus/remote/report-sideband"

failed=()
for target in "${targets[@]}"; do
    echo "== $target: $runs runs"
    status=0
    "${CARGO_TARGET_DIR:-$fuzz_dir/target}/$host/release/$target" -runs="$runs" -max_len=4096 \
        -artifact_prefix="$fuzz_dir/artifacts/$target/" "$work/corpus/$target" > "$work/$target.log" 2>&1 ||
        status=$?
    if [ "$status" -eq 0 ]; then
        grep -E '^Done ' "$work/$target.log"
    else
        # The panic message and the saved input; libFuzzer's chatter stays in the log.
        grep -E -A2 "panicked at|^SUMMARY|^artifact_prefix|Test unit written" "$work/$target.log" || tail -n 20 "$work/$target.log"
        failed+=("$target")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz smoke: every target ran $runs inputs without a failure"
