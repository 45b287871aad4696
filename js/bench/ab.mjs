// Two builds of the package compared in one process, for changes too small to see across
// runs on a busy machine:
//
//   node bench/ab.mjs <package dir A> <package dir B> [--commits K] [--changed C]
//
// Each directory is a built package (with dist/ and pkg/; copy one aside before changing
// the code). Both get a store on the in-memory adapter with the repo of bench.mjs, then
// commit the same changes turn by turn, alternating which goes first; the second half of
// the turns is timed. Prints each median, the ratio B/A and both heads, which must agree.
// Timings are printed, never asserted.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

import { option, positional } from "./args.mjs";
import { workload } from "./workload.mjs";

const dirs = positional;
if (dirs.length !== 2) {
  console.error("usage: node bench/ab.mjs <package dir A> <package dir B> [--commits K] [--changed C]");
  process.exit(2);
}
const COMMITS = option("--commits", 2000);
const CHANGED = option("--changed", 1);
const FILES = 1000;
const { signature, initial, changesOf } = workload(FILES);

async function side(dir) {
  const base = pathToFileURL(`${resolve(dir)}/`);
  const { Store } = await import(new URL("dist/node.js", base).href);
  const { MemoryAdapter } = await import(new URL("dist/adapters/memory.js", base).href);
  const store = await Store.open({ adapter: new MemoryAdapter() });
  await store.createRepo("bench", { changes: initial(), author: signature(0), message: "initial" });
  return { dir, repo: store.repo("bench"), times: [], head: "" };
}

const sides = [await side(dirs[0]), await side(dirs[1])];
for (let n = 1; n <= COMMITS; n++) {
  for (const s of n % 2 ? sides : [...sides].reverse()) {
    const changes = changesOf(n, CHANGED);
    const start = performance.now();
    const out = await s.repo.commit({ changes, author: signature(n), message: `turn ${n}` });
    if (n > COMMITS / 2) s.times.push((performance.now() - start) * 1000);
    s.head = out.commit;
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [label, s] of [["A", sides[0]], ["B", sides[1]]]) {
  console.log(`${label} ${median(s.times).toFixed(1).padStart(8)} us   ${s.head}   ${s.dir}`);
}
const same = sides[0].head === sides[1].head;
console.log(`B/A ${(median(sides[1].times) / median(sides[0].times)).toFixed(3)}, ${CHANGED} changed, ${COMMITS / 2} timed each; same heads: ${same}`);
