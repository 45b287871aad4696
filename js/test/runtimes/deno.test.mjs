// The shared scenarios in Deno (from npm's `deno` package), with the memory adapter and
// the git-folder adapter through Deno's Node compatibility. Deno runs with reads limited
// to the package and a scratch folder, writes to the scratch folder only, and no network:
// `--cached-only` refuses anything not already on disk.
import assert from "node:assert/strict";
import path from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";

import { scenarioSuite } from "./report.mjs";
import { bin, cleanup, denoEnv, lastJson, root, run, scratch } from "./tools.mjs";

after(cleanup);

let report;
function deno() {
  report ??= (async () => {
    const cache = await scratch("deno-cache");
    const files = await scratch("deno-fs");
    const stdout = await run(
      bin("deno"),
      [
        "run",
        `--allow-read=${root},${files}`,
        `--allow-write=${files}`,
        "--cached-only",
        "--no-lock",
        path.join("test", "runtimes", "deno", "main.mjs"),
        files,
      ],
      { cwd: root, env: denoEnv(cache) },
    );
    return lastJson(stdout);
  })();
  return report;
}

test("deno loads the package through its `deno` condition", async () => {
  const { runtime, entry } = await deno();
  assert.match(runtime, /^deno \d/);
  assert.equal(entry, pathToFileURL(path.join(root, "dist", "deno.js")).href);
});

scenarioSuite("deno, memory adapter", async () => (await deno()).results.memory);
scenarioSuite("deno, node-fs adapter", async () => (await deno()).results["node-fs"]);
