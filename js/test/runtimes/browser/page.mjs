// The shared scenarios in a browser page, with the package imported by name through the
// page's import map (made from the package's `browser` condition): the memory adapter and
// the IndexedDB adapter. The report is left in `window.snapgitReport`.
import * as snapgit from "snapgit";
import { IndexedDbAdapter } from "snapgit/adapters/indexeddb";
import { MemoryAdapter } from "snapgit/adapters/memory";

import { runScenarios } from "../scenarios.mjs";

const run = `${Date.now()}-${Math.random().toString(16).slice(2)}`;
const memory = await runScenarios({ snapgit, adapter: () => new MemoryAdapter({ latencyMs: 1 }) });
const indexeddb = await runScenarios({ snapgit, adapter: (name) => IndexedDbAdapter.open(`snapgit-${run}-${name}`) });
window.snapgitReport = { runtime: navigator.userAgent, results: { memory, indexeddb } };
