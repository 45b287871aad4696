// Where a commit's time goes in the package: the commit workload of bench.mjs on the
// in-memory adapter, with each crossing into the WebAssembly, each JSON.parse and each
// adapter call timed.
//
//   node bench/breakdown.mjs [--changed C] [--commits K]      (after `npm run build`)
//
// It runs the per-module build in build/ (what `npm run build` compiles before bundling),
// whose wasm glue module can be reached to wrap the engine's methods; the code is the
// same. Prints, over the last half of K commits, the median per commit of:
//   - `wasm: <method>`: time inside the WebAssembly (and its glue), per method;
//   - `JSON.parse`: parsing steps and results;
//   - `adapter: <method>`: the memory adapter;
//   - `the rest`: everything else (packing the request, the driver, the API, promises).
// Timers cost a little each; compare runs of this script, not with bench.mjs.
// Timings are printed, never asserted.
import { fileURLToPath } from "node:url";

import { option } from "./args.mjs";
import { workload } from "./workload.mjs";

const CHANGED = option("--changed", 1);
const COMMITS = option("--commits", 1000);
const FILES = 1000;

const build = new URL("../build/", import.meta.url);
const glue = await import(new URL("../pkg/snapgit_wasm.js", import.meta.url).href);
const { Store } = await import(new URL("node.js", build).href);
const { MemoryAdapter } = await import(new URL("adapters/memory.js", build).href);

// The time per label of the commit being timed, if one is.
let spent;
const add = (label, ms) => spent && spent.set(label, (spent.get(label) ?? 0) + ms);

/** Replace `object[name]` with a timed version booked under `label`. */
function timed(object, name, label) {
  const original = object[name];
  object[name] = function (...callArgs) {
    const start = performance.now();
    try {
      return original.apply(this, callArgs);
    } finally {
      add(label, performance.now() - start);
    }
  };
}

/** The same for a method returning a promise: booked when it settles. */
function timedAsync(object, name, label) {
  const original = object[name];
  object[name] = async function (...callArgs) {
    const start = performance.now();
    try {
      return await original.apply(this, callArgs);
    } finally {
      add(label, performance.now() - start);
    }
  };
}

for (const name of ["poll", "bytes", "provide", "answerRef", "answerWon", "answerLost", "answer", "free"]) {
  timed(glue.Op.prototype, name, `wasm: Op.${name}`);
}
timed(glue.Engine.prototype, "commit", "wasm: Engine.commit");
timed(JSON, "parse", "JSON.parse");
for (const name of ["getMany", "putMany", "readRef", "casRef"]) {
  timedAsync(MemoryAdapter.prototype, name, `adapter: ${name}`);
}

const { signature, initial, changesOf } = workload(FILES);
const store = await Store.open({
  adapter: new MemoryAdapter(),
  wasm: await import("node:fs/promises").then((fs) =>
    fs.readFile(fileURLToPath(new URL("../pkg/snapgit_wasm_bg.wasm", import.meta.url))),
  ),
});
await store.createRepo("bench", { changes: initial(), author: signature(0), message: "initial" });
const repo = store.repo("bench");

const REST = "the rest (request packing, driver, API, promises)";
const commits = [];
const timedCommits = Math.floor(COMMITS / 2);
for (let n = 1; n <= COMMITS; n++) {
  const changes = changesOf(n, CHANGED);
  spent = n > COMMITS - timedCommits ? new Map() : undefined;
  const start = performance.now();
  await repo.commit({ changes, author: signature(n), message: `turn ${n}` });
  if (spent) {
    const total = performance.now() - start;
    const accounted = [...spent.values()].reduce((a, b) => a + b, 0);
    spent.set(REST, total - accounted).set("total", total);
    commits.push(spent);
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const labels = [...new Set(commits.flatMap((c) => [...c.keys()]))];
const medians = labels.map((label) => [label, median(commits.map((c) => c.get(label) ?? 0))]);
console.log(`commit of ${CHANGED} changed file(s) into ${FILES}: medians over the last ${timedCommits} of ${COMMITS}`);
for (const [label, ms] of medians.sort((a, b) => b[1] - a[1])) {
  console.log(`${(ms * 1000).toFixed(1).padStart(8)} us  ${label}`);
}
