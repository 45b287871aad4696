// The npm package's benchmark, in one run (after `npm run build`):
//
//   npm run bench [-- --json] [-- --files N --warmup W --commits K]
//
// It prints:
//   - the .wasm size, raw and gzipped (budget: under 250 KB raw, under 100 KB gzipped);
//   - the module's instantiation time in Node (compile + instantiate, median of fresh
//     processes, so no compiled-code cache helps);
//   - the commit workload of `bench_native_commit` (a repo of N files three folders deep,
//     W + K warm commits of 1 and of 10 changed files, each on top of the last, the last K
//     timed once V8 has compiled the hot code with its optimizing tier) through the package
//     on the in-memory adapter, as a ratio to native core measured in the same run (budget:
//     within 1.5x); both must end at the same commit ids;
//   - commit latency over an adapter that adds 20 ms to every request: cold (a new Store,
//     nothing cached) and warm (the next commit on the same Store), with request counts.
//
// Timings are printed, never asserted.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { MemoryAdapter } from "../dist/adapters/memory.js";
import { Store } from "../dist/node.js";
import { flag, option } from "./args.mjs";
import { workload as workloadOf } from "./workload.mjs";

const FILES = option("--files", 1000);
const WARMUP = option("--warmup", 200);
const COMMITS = option("--commits", 200);
const JSON_OUT = flag("--json");
const LATENCY_MS = 20;

const log = (...line) => JSON_OUT || console.log(...line);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

// The workload of tests/src/bin/bench_native_commit.rs, to the byte.
const { signature, path, initial, changesOf } = workloadOf(FILES);

async function seeded(adapter) {
  const store = await Store.open({ adapter });
  await store.createRepo("bench", { changes: initial(), author: signature(0), message: "initial" });
  return store;
}

// --- size ---------------------------------------------------------------------------
const wasmPath = fileURLToPath(new URL("../pkg/snapgit_wasm_bg.wasm", import.meta.url));
const wasm = readFileSync(wasmPath);
const size = { raw: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length };
log(`.wasm size: ${kb(size.raw)} raw, ${kb(size.gzip)} gzipped (budget: 250 KB raw, 100 KB gzipped)`);

// --- instantiation --------------------------------------------------------------------
const probe = `
  import { readFileSync } from "node:fs";
  const bytes = readFileSync(${JSON.stringify(wasmPath)});
  const { init } = await import(${JSON.stringify(new URL("../dist/slim.js", import.meta.url).href)});
  const t0 = performance.now();
  const module = await WebAssembly.compile(bytes);
  const t1 = performance.now();
  await init(module);
  const t2 = performance.now();
  console.log(JSON.stringify({ compile: t1 - t0, instantiate: t2 - t1 }));
`;
const probes = Array.from({ length: 7 }, () =>
  JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", probe], { encoding: "utf8" })),
);
const instantiation = {
  compileMs: median(probes.map((p) => p.compile)),
  instantiateMs: median(probes.map((p) => p.instantiate)),
};
instantiation.totalMs = median(probes.map((p) => p.compile + p.instantiate));
// What a fresh process pays before its first call: import the package, read, compile and
// instantiate the .wasm, make the engine. The probe is a module file, as a user's program
// is, so Node's module loader is up before the clock starts (with \`-e\` it would start
// inside the measurement).
const coldOpen = `
  const t0 = performance.now();
  const { Store } = await import(${JSON.stringify(new URL("../dist/node.js", import.meta.url).href)});
  const { MemoryAdapter } = await import(${JSON.stringify(new URL("../dist/adapters/memory.js", import.meta.url).href)});
  await Store.open({ adapter: new MemoryAdapter() });
  process.stdout.write(JSON.stringify({ open: performance.now() - t0 }));
`;
const probeDir = mkdtempSync(join(tmpdir(), "snapgit-bench-"));
const probeFile = join(probeDir, "open.mjs");
writeFileSync(probeFile, coldOpen);
instantiation.firstOpenMs = median(
  Array.from({ length: 7 }, () => JSON.parse(execFileSync(process.execPath, [probeFile], { encoding: "utf8" })).open),
);
rmSync(probeDir, { recursive: true, force: true });
log(
  `instantiation in Node ${process.version}: ${instantiation.totalMs.toFixed(2)} ms ` +
    `(compile ${instantiation.compileMs.toFixed(2)} ms, instantiate ${instantiation.instantiateMs.toFixed(2)} ms; median of ${probes.length} fresh processes); ` +
    `import + first Store.open: ${instantiation.firstOpenMs.toFixed(2)} ms`,
);

// --- commit workload: package vs native -------------------------------------------------
let native;
try {
  const out = execFileSync(
    "cargo",
    ["run", "--quiet", "--release", "-p", "snapgit-tests", "--bin", "bench_native_commit", "--", "--json", "--files", `${FILES}`, "--warmup", `${WARMUP}`, "--commits", `${COMMITS}`],
    { cwd: fileURLToPath(new URL("../..", import.meta.url)), encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  );
  native = JSON.parse(out.trim().split("\n").pop());
} catch (error) {
  log(`native run skipped: ${error.message.split("\n")[0]}`);
}

const workload = [];
for (const count of [1, 10]) {
  const store = await seeded(new MemoryAdapter());
  const repo = store.repo("bench");
  const times = [];
  let head;
  for (let n = 1; n <= WARMUP + COMMITS; n++) {
    const changes = changesOf(n, count);
    const start = performance.now();
    const out = await repo.commit({ changes, author: signature(n), message: `turn ${n}` });
    if (n > WARMUP) times.push((performance.now() - start) * 1000);
    head = out.commit;
  }
  const row = { changed: count, medianUs: median(times), meanUs: mean(times), head };
  const twin = native?.runs.find((r) => r.changed === count);
  if (twin) {
    row.nativeMedianUs = twin.median_us;
    row.nativeMeanUs = twin.mean_us;
    row.ratio = row.medianUs / twin.median_us;
    row.sameIds = twin.head === head;
  }
  workload.push(row);
}
log(`\ncommit workload: ${FILES} files, ${COMMITS} warm commits each after ${WARMUP} untimed, in-memory storage (budget: within 1.5x of native)`);
log("changed   package median (mean)    native median (mean)     ratio   same commit ids");
for (const r of workload) {
  const us = (m, a) => `${m.toFixed(1).padStart(8)} us (${a.toFixed(1)})`;
  log(
    `${String(r.changed).padStart(7)}   ${us(r.medianUs, r.meanUs).padEnd(24)} ${
      r.nativeMedianUs === undefined ? "-".padEnd(24) : us(r.nativeMedianUs, r.nativeMeanUs).padEnd(24)
    } ${r.ratio === undefined ? "  -  " : `${r.ratio.toFixed(2)}x`.padStart(6)}   ${r.sameIds ?? "-"}`,
  );
}

// --- latency over a 20 ms store -------------------------------------------------------
// The agent-memory pattern: the same file changes turn after turn. Cold is a new Store
// (a new isolate: nothing cached, the head unknown); warm is the next turn on it.
const adapter = new MemoryAdapter();
await seeded(adapter);
adapter.latencyMs = LATENCY_MS;
const latency = {};
const memory = path(37);
const timed = async (label, run) => {
  adapter.resetCounters();
  const start = performance.now();
  await run();
  latency[label] = { ms: performance.now() - start, requests: adapter.counters.requests, reads: adapter.counters.getMany };
};
{
  const repo = (await Store.open({ adapter })).repo("bench");
  const turn = (n) => repo.commit({ files: { [memory]: `# memory\nturn ${n}\n` }, author: signature(n), message: `turn ${n}` });
  await timed("commit, cold", () => turn(1));
  await timed("commit, warm", () => turn(2));
  await timed("commit, warm (again)", () => turn(3));
  const reader = (await Store.open({ adapter })).repo("bench");
  await timed("read, cold", () => reader.readText(memory));
  await timed("read, warm", () => reader.readText(memory));
}
log(`\nlatency at ${LATENCY_MS} ms per storage request (1 file three folders deep, ${FILES} files):`);
for (const [label, l] of Object.entries(latency)) {
  log(`  ${label.padEnd(22)} ${l.ms.toFixed(1).padStart(7)} ms   ${l.requests} requests (${l.reads} of them object reads)`);
}

if (JSON_OUT) {
  console.log(JSON.stringify({ size, instantiation, files: FILES, warmup: WARMUP, commits: COMMITS, workload, latency }, null, 2));
}
