// A Worker that runs the shared scenarios on each request, with the package imported by
// name (bundled through its `workerd` condition, the `.wasm` a module of its own).
//
//   GET /?adapter=memory   the memory adapter
//   GET /?adapter=r2       the R2 adapter on the `BUCKET` binding
//   GET /conditions        what the binding returns for conditional puts (a check of the
//                          bucket service behind it)
//   GET /remote?url=URL    a repo pushed to the git remote at URL, then imported from it
//                          into another store (memory adapter)
//
// Answers `{ runtime, adapter, results }` as JSON.
import * as snapgit from "snapgit";
import { MemoryAdapter } from "snapgit/adapters/memory";
import { R2Adapter } from "snapgit/adapters/r2";

import { runScenarios } from "../scenarios.mjs";

let runs = 0;

/** Conditional puts through the binding: `null` when the condition fails, as on R2. */
async function conditions(bucket) {
  const key = `conditions/${++runs}`;
  const created = await bucket.put(key, "a", { onlyIf: { etagDoesNotMatch: "*" } });
  const again = await bucket.put(key, "b", { onlyIf: { etagDoesNotMatch: "*" } });
  const wrong = await bucket.put(key, "c", { onlyIf: { etagMatches: "0".repeat(32) } });
  const right = await bucket.put(key, "d", { onlyIf: { etagMatches: created.etag } });
  const stored = await bucket.get(key);
  return {
    created: created !== null,
    again: again === null ? null : "stored",
    wrong: wrong === null ? null : "stored",
    right: right !== null,
    value: await stored.text(),
    missing: await bucket.get(`${key}/missing`),
  };
}

/** Push a new repo to the git remote at `url`, then import it into another store. */
async function remote(url) {
  const author = { name: "Worker", email: "worker@example.com", date: 1_700_000_000 };
  try {
    const store = await snapgit.Store.open({ adapter: new MemoryAdapter() });
    await store.createRepo("worker", { author, files: { "memory.md": "# From a Worker\n" } });
    const pushed = await store.repo("worker").push({ url });
    const mirror = await snapgit.Store.open({ adapter: new MemoryAdapter() });
    const imported = await mirror.import("worker", { url });
    return { pushed, imported, text: await mirror.repo("worker").readText("memory.md") };
  } catch (error) {
    return { error: { name: error.name, code: error.code, message: error.message } };
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/conditions") return Response.json(await conditions(env.BUCKET));
    if (url.pathname === "/remote") return Response.json(await remote(url.searchParams.get("url")));
    const kind = url.searchParams.get("adapter") ?? "memory";
    const run = ++runs;
    let adapter;
    if (kind === "memory") adapter = () => new MemoryAdapter({ latencyMs: 1 });
    else if (kind === "r2") adapter = (name) => new R2Adapter(env.BUCKET, { prefix: `run-${run}/${name}` });
    else return new Response(`unknown adapter ${kind}`, { status: 400 });
    const results = await runScenarios({ snapgit, adapter });
    return Response.json({ runtime: navigator.userAgent, adapter: kind, results });
  },
};
