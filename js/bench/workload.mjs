// The commit workload of tests/src/bin/bench_native_commit.rs, to the byte, shared by
// bench.mjs and ab.mjs: a repo of `files` files three folders deep, then turns that each
// rewrite `count` of them.
const EPOCH = 1_700_000_000;

/** The workload for a repo of `files` files. */
export function workload(files) {
  const signature = (n) => ({ name: "Agent", email: "agent@example.com", date: EPOCH + n });
  const path = (i) => `d${i % 7}/d${Math.floor(i / 7) % 5}/d${Math.floor(i / 35) % 3}/file-${i}.md`;
  const changed = (n, k) => (n * 37 + k * 101) % files;
  const initial = () =>
    Array.from({ length: files }, (_, i) => ({ type: "put", path: path(i), content: `# file ${i}\n` }));
  const changesOf = (n, count) =>
    Array.from({ length: count }, (_, k) => {
      const i = changed(n, k);
      return { type: "put", path: path(i), content: `# file ${i}\nturn ${n}\n` };
    });
  return { signature, path, initial, changesOf };
}
