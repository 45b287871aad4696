// A Node project (CommonJS) using the installed package with require(). Prints one JSON line.
const snapgit = require("snapgit");
const { MemoryAdapter } = require("snapgit/adapters/memory");

(async () => {
  const { runScenarios } = await import("./scenarios.mjs");
  const results = await runScenarios({ snapgit, adapter: () => new MemoryAdapter({ latencyMs: 1 }) });
  console.log(JSON.stringify({ entry: require.resolve("snapgit"), results: { memory: results } }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
