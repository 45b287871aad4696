// A Node project (ESM) using the installed package by name. Prints one JSON line.
import * as snapgit from "snapgit";
import { MemoryAdapter } from "snapgit/adapters/memory";
import { NodeFsAdapter } from "snapgit/adapters/node-fs";

import { runScenarios } from "./scenarios.mjs";

const scratch = process.argv[2];
const memory = await runScenarios({ snapgit, adapter: () => new MemoryAdapter({ latencyMs: 1 }) });
const nodeFs = await runScenarios({ snapgit, adapter: (name) => NodeFsAdapter.open(`${scratch}/${name}`) });
console.log(JSON.stringify({ entry: import.meta.resolve("snapgit"), results: { memory, "node-fs": nodeFs } }));
