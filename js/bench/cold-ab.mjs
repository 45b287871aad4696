// Cold start of two builds of the package, in alternating fresh Node processes:
//
//   node bench/cold-ab.mjs <package dir A> <package dir B> [--runs N]
//
// Each directory is a built package (with dist/ and pkg/; copy one aside before
// changing the code). Each run is a new process whose main module imports the package's
// Node entry and its memory adapter, then opens a store (reading, compiling and
// instantiating the .wasm): what a serverless function pays before its first call. Prints
// the medians of the import alone and of import + first Store.open, and the ratios B/A.
// Timings are printed, never asserted.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

import { option, positional } from "./args.mjs";

const RUNS = option("--runs", 15);
const dirs = positional;
if (dirs.length !== 2 || !(RUNS > 0)) {
  console.error("usage: node bench/cold-ab.mjs <package dir A> <package dir B> [--runs N]");
  process.exit(2);
}

const probeDir = mkdtempSync(join(tmpdir(), "snapgit-cold-"));
const probe = (dir) => {
  const base = pathToFileURL(`${resolve(dir)}/`);
  const file = join(probeDir, `${dirs.indexOf(dir)}.mjs`);
  writeFileSync(
    file,
    `const t0 = performance.now();
const { Store } = await import(${JSON.stringify(new URL("dist/node.js", base).href)});
const { MemoryAdapter } = await import(${JSON.stringify(new URL("dist/adapters/memory.js", base).href)});
const t1 = performance.now();
await Store.open({ adapter: new MemoryAdapter() });
process.stdout.write(JSON.stringify({ importMs: t1 - t0, openMs: performance.now() - t0 }));
`,
  );
  return file;
};
const files = dirs.map(probe);
const samples = [[], []];
for (let n = 0; n < RUNS; n++) {
  for (const side of n % 2 ? [1, 0] : [0, 1]) {
    samples[side].push(JSON.parse(execFileSync(process.execPath, [files[side]], { encoding: "utf8" })));
  }
}
rmSync(probeDir, { recursive: true, force: true });

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const summary = samples.map((s) => ({ importMs: median(s.map((x) => x.importMs)), openMs: median(s.map((x) => x.openMs)) }));
for (const [i, label] of ["A", "B"].entries()) {
  const { importMs, openMs } = summary[i];
  console.log(`${label}  import ${importMs.toFixed(2).padStart(7)} ms   import + first open ${openMs.toFixed(2).padStart(7)} ms   ${dirs[i]}`);
}
console.log(
  `B/A import ${(summary[1].importMs / summary[0].importMs).toFixed(3)}, import + first open ${(summary[1].openMs / summary[0].openMs).toFixed(3)}; medians of ${RUNS} fresh processes each`,
);
