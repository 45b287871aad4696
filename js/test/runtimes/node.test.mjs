// The shared scenarios in Node, through the package's own name: the ESM entry (memory and
// git-folder adapters) and the CommonJS entry (memory adapter).
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { after } from "node:test";

import * as snapgit from "snapgit";
import { MemoryAdapter } from "snapgit/adapters/memory";
import { NodeFsAdapter } from "snapgit/adapters/node-fs";

import { scenarioSuite } from "./report.mjs";
import { runScenarios } from "./scenarios.mjs";

const scratch = await mkdtemp(path.join(tmpdir(), "snapgit-runtimes-node-"));
after(() => rm(scratch, { recursive: true, force: true }));

scenarioSuite("node esm, memory adapter", () =>
  runScenarios({ snapgit, adapter: () => new MemoryAdapter({ latencyMs: 1 }) }),
);

scenarioSuite("node esm, node-fs adapter", () =>
  runScenarios({ snapgit, adapter: (name) => NodeFsAdapter.open(path.join(scratch, name)) }),
);

scenarioSuite("node commonjs, memory adapter", () => {
  const require = createRequire(import.meta.url);
  const cjs = require("snapgit");
  const { MemoryAdapter: CjsMemoryAdapter } = require("snapgit/adapters/memory");
  if (cjs.Store === snapgit.Store) throw new Error("require('snapgit') returned the ESM module");
  return runScenarios({ snapgit: cjs, adapter: () => new CjsMemoryAdapter({ latencyMs: 1 }) });
});
