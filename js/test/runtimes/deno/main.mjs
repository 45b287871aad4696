// The shared scenarios in Deno, with the package imported by name, as a Deno user does
// from a project with a package.json: Deno resolves it through the `deno` condition.
// Prints one JSON line: { runtime, entry, results }.
//
//   deno run --allow-read main.mjs [<scratch dir for the node-fs adapter>]
import * as snapgit from "snapgit";
import { MemoryAdapter } from "snapgit/adapters/memory";
import { NodeFsAdapter } from "snapgit/adapters/node-fs";

import { runScenarios } from "../scenarios.mjs";

const scratch = Deno.args[0];
const memory = await runScenarios({ snapgit, adapter: () => new MemoryAdapter({ latencyMs: 1 }) });
const nodeFs = scratch
  ? await runScenarios({ snapgit, adapter: (name) => NodeFsAdapter.open(`${scratch}/${name}`) })
  : [];
console.log(
  JSON.stringify({
    runtime: `deno ${Deno.version.deno}`,
    entry: import.meta.resolve("snapgit"),
    results: { memory, "node-fs": nodeFs },
  }),
);
