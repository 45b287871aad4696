// The shared scenarios in workerd (the Cloudflare Workers runtime, from npm's `workerd`
// package): a Worker bundled as wrangler bundles it (the package through its `workerd`
// condition, the `.wasm` imported as a module), served on a free loopback port, runs the
// scenarios on each request, with the memory adapter and with the R2 adapter on an R2
// binding. workerd has no R2 storage of its own (its config binds a bucket to a service
// that speaks R2's protocol), so the binding is served by examples/worker/local-r2.js.
// The `edge-light` entry (Vercel Edge, which imports `.wasm?module`) is bundled the same
// way and run in workerd too, the closest runtime at hand.
import assert from "node:assert/strict";
import { copyFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { bundle } from "../../examples/worker/build.mjs";
import { git, noServer, serve } from "../snapgit-serve.mjs";
import { scenarioSuite } from "./report.mjs";
import { cleanup, root, scratch } from "./tools.mjs";
import { startWorkerd } from "./workerd.mjs";

const servers = [];
after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await cleanup();
});

/** The scenarios Worker bundled under `conditions` and served: `{ url, inputs }`. */
async function serveScenarios(conditions) {
  const out = await scratch("workerd");
  const built = await bundle({ entry: path.join(root, "test/runtimes/workerd/worker.mjs"), outdir: out, conditions });
  await copyFile(path.join(root, "test/runtimes/workerd/config.capnp"), path.join(out, "config.capnp"));
  await copyFile(path.join(root, "examples/worker/local-r2.js"), path.join(out, "local-r2.js"));
  const server = await startWorkerd(path.join(out, "config.capnp"));
  servers.push(server);
  return { url: server.url, inputs: Object.keys(built.metafile.inputs) };
}

const started = serveScenarios(["workerd", "worker", "browser"]);
// Keep the rejection for the tests that await it, not as an unhandled one.
started.catch(() => {});

async function get(pathname, server = started) {
  const { url } = await server;
  const response = await fetch(`${url}${pathname}`);
  const body = await response.text();
  assert.equal(response.status, 200, body);
  return JSON.parse(body);
}

describe("workerd", () => {
  before(() => started);

  test("the bundle takes the package's `workerd` entry", async () => {
    const { inputs } = await started;
    assert.ok(inputs.includes("dist/workerd.js"), inputs.join("\n"));
    for (const other of ["dist/node.js", "dist/browser.js", "dist/deno.js"]) assert.ok(!inputs.includes(other), other);
  });

  test("the R2 binding honours onlyIf (null when a condition fails)", async () => {
    assert.deepEqual(await get("/conditions"), {
      created: true,
      again: null,
      wrong: null,
      right: true,
      value: "d",
      missing: null,
    });
  });
});

// The Worker's `fetch()` reaches a `snapgit serve` on loopback (its config allows local
// addresses): a push from a Worker, then an import back, and git clones what it pushed.
describe("workerd, git remotes", { skip: noServer }, () => {
  test("a Worker pushes a repo to snapgit serve and imports it back", async () => {
    const remote = await serve();
    servers.push(remote);
    const url = remote.url("worker");
    const report = await get(`/remote?url=${encodeURIComponent(url)}`);
    assert.equal(report.error, undefined, JSON.stringify(report.error));
    const { pushed, imported, text } = report;
    assert.equal(pushed.remoteRef, "refs/heads/main");
    assert.equal(pushed.old, null);
    assert.equal(pushed.objects, 3);
    assert.deepEqual(imported.refs, [
      { remoteRef: "refs/heads/main", localRef: "refs/heads/main", old: null, new: pushed.new },
    ]);
    assert.equal(text, "# From a Worker\n");
    const work = await scratch("workerd-clone");
    git(work, "clone", "--quiet", url, "clone");
    assert.equal(git(path.join(work, "clone"), "rev-parse", "HEAD"), pushed.new);
    git(path.join(work, "clone"), "fsck", "--strict");
  });
});

scenarioSuite("workerd, memory adapter", async () => {
  const report = await get("/?adapter=memory");
  assert.equal(report.runtime, "Cloudflare-Workers");
  return report.results;
});

scenarioSuite("workerd, r2 adapter on an R2 binding", async () => (await get("/?adapter=r2")).results);

// A second request to the same isolate: module state (the loaded WebAssembly) is reused.
scenarioSuite("workerd, memory adapter, second request", async () => (await get("/?adapter=memory")).results);

scenarioSuite("workerd, edge-light entry, memory adapter", async () => {
  const edgeLight = serveScenarios(["edge-light", "worker", "browser"]);
  const { inputs } = await edgeLight;
  assert.ok(inputs.includes("dist/edge-light.js"), inputs.join("\n"));
  assert.ok(!inputs.includes("dist/workerd.js"));
  return (await get("/?adapter=memory", edgeLight)).results;
});
