// A push of one new commit from the npm package, in Node, to a remote that has the rest:
// requests, bytes each way and time, against `git push` of the same kind of commit from a
// clone, to the same `snapgit serve` (a folder store on loopback).
//
//   node bench/push.mjs [--files 1000] [--changed 10] [--pushes 20]
//
// Needs the package built (npm run build) and a `snapgit` binary (SNAPGIT_BIN, or the
// debug build under the target folder: see test/snapgit-serve.mjs).

import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Store } from "../dist/node.js";
import { MemoryAdapter } from "../dist/adapters/memory.js";
import { serve, git } from "../test/snapgit-serve.mjs";
import { workload } from "./workload.mjs";

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), Number(all[i + 1])]] : pairs), []),
);
const files = args.files ?? 1000;
const changed = args.changed ?? 10;
const pushes = args.pushes ?? 20;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Every request the package sends, counted where it leaves: the runtime's fetch().
const counted = { requests: 0, sent: 0, received: 0 };
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  counted.requests += 1;
  counted.sent += init?.body ? new Uint8Array(await new Response(init.body).arrayBuffer()).length : 0;
  const response = await realFetch(input, init?.body ? { ...init, body: init.body } : init);
  const body = new Uint8Array(await response.arrayBuffer());
  counted.received += body.length;
  return new Response(body, { status: response.status, headers: response.headers });
};

const server = await serve();
const url = server.url("agent");
const { signature, initial, changesOf } = workload(files);
const store = await Store.open({ adapter: new MemoryAdapter() });
await store.createRepo("agent", { author: signature(0), message: "initial", changes: initial() });
const repo = store.repo("agent");
await repo.push({ url });

const js = { ms: [], requests: [], sent: [], received: [] };
for (let n = 1; n <= pushes; n++) {
  await repo.commit({ author: signature(n), message: `turn ${n}`, changes: changesOf(n, changed) });
  Object.assign(counted, { requests: 0, sent: 0, received: 0 });
  const start = performance.now();
  const pushed = await repo.push({ url });
  js.ms.push(performance.now() - start);
  js.requests.push(counted.requests);
  js.sent.push(counted.sent);
  js.received.push(counted.received);
  if (pushed.upToDate) throw new Error("a push of a new commit found the remote up to date");
}

// git: a clone, the same kind of commit, `git push`.
const work = await mkdtemp(join(tmpdir(), "snapgit-push-bench-"));
git(work, "clone", "-q", url, "clone");
const clone = join(work, "clone");
const gitMs = [];
for (let n = pushes + 1; n <= 2 * pushes; n++) {
  for (const change of changesOf(n, changed)) {
    await mkdir(dirname(join(clone, change.path)), { recursive: true });
    await writeFile(join(clone, change.path), change.content);
  }
  git(clone, "add", "-A");
  git(clone, "commit", "-q", "-m", `turn ${n}`);
  const start = performance.now();
  git(clone, "push", "-q", "origin", "HEAD:main");
  gitMs.push(performance.now() - start);
}
await rm(work, { recursive: true, force: true });
await server.stop();


const jsMs = median(js.ms);
console.log(
  `push of one commit (${changed} of ${files} files changed) to a remote holding the rest; median of ${pushes}\n` +
    `npm package (Node, memory store): ${jsMs.toFixed(1)} ms, ${median(js.requests)} requests, ` +
    `${median(js.sent)} bytes sent, ${median(js.received)} bytes received\n` +
    `git push (a clone):               ${median(gitMs).toFixed(1)} ms\n` +
    `ratio npm/git: ${(jsMs / median(gitMs)).toFixed(2)}x; at 20 ms a request, the package's requests alone take ` +
    `${median(js.requests) * 20} ms`,
);
