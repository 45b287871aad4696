// Push, fetch and import against `snapgit serve` (the Rust binary, spawned on a free
// loopback port: snapgit-serve.mjs): what the package pushes, real `git` clones; what git
// pushes, the package fetches; errors carry the engine's codes. Without a binary these
// tests are skipped, saying how to build one.
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { NodeFsAdapter } from "../dist/adapters/node-fs.js";
import { MemoryAdapter, SnapgitError, Store, at, rejectsWith } from "./helpers.mjs";
import { git, noServer, serve as startServer } from "./snapgit-serve.mjs";

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function scratch() {
  const dir = await mkdtemp(join(tmpdir(), "snapgit-remote-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `snapgit serve` on a new store, stopped after the tests. */
async function serve(env) {
  const server = await startServer(env);
  cleanups.push(server.stop);
  return server;
}

/** A plain HTTP server on a free loopback port answering every request with `handle`. */
async function httpServer(handle) {
  const server = createServer(handle);
  await new Promise((listening) => server.listen(0, "127.0.0.1", listening));
  const close = () => {
    server.closeAllConnections();
    return new Promise((closed) => server.close(() => closed()));
  };
  cleanups.push(close);
  return { url: `http://127.0.0.1:${server.address().port}`, close };
}

describe("git remotes", { skip: noServer }, () => {
  let server;
  before(async () => {
    server = await serve();
  });

  test("a push reaches git, an import and a fetch bring git's commits back", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    await store.createRepo("agent", { author: at(0), files: { "memory.md": "# Memory\n" } });
    const repo = store.repo("agent");
    const turn = await repo.commit({ author: at(1), message: "turn 1", files: { "memory.md": "# Memory\n- tea\n" } });
    const head = turn.commit;
    const url = server.url("agent");

    const pushed = await repo.push({ url });
    assert.deepEqual(pushed, {
      remoteRef: "refs/heads/main",
      old: null,
      new: head,
      upToDate: false,
      objects: 6,
      packBytes: pushed.packBytes,
      requests: 2,
    });
    assert.ok(pushed.packBytes > 0);
    const again = await repo.push({ url });
    assert.equal(again.upToDate, true);
    assert.equal(again.old, head);
    assert.equal(again.objects, 0);

    // git clones what was pushed, and pushes a commit of its own.
    const work = await scratch();
    git(work, "clone", "--quiet", url, "clone");
    const clone = join(work, "clone");
    assert.equal(git(clone, "rev-parse", "HEAD"), head);
    assert.equal(git(clone, "rev-list", "--count", "HEAD"), "2");
    assert.equal(await readFile(join(clone, "memory.md"), "utf8"), "# Memory\n- tea\n");
    git(clone, "fsck", "--strict");
    await writeFile(join(clone, "notes.md"), "from git\n");
    git(clone, "add", "notes.md");
    git(clone, "commit", "--quiet", "-m", "from git");
    git(clone, "push", "--quiet", "origin", "HEAD:main");
    const fromGit = git(clone, "rev-parse", "HEAD");

    // An import into a folder store: every branch, the repo created; git reads it.
    const dir = join(await scratch(), "mirror.git");
    const mirror = await Store.open({ adapter: await NodeFsAdapter.open(dir) });
    const imported = await mirror.import("agent", { url });
    assert.deepEqual(imported.refs, [
      { remoteRef: "refs/heads/main", localRef: "refs/heads/main", old: null, new: fromGit },
    ]);
    assert.equal(imported.objects, 9);
    assert.equal(await mirror.repo("agent").readText("notes.md"), "from git\n");
    git(dir, "--git-dir", dir, "fsck", "--strict", "--no-dangling");
    assert.equal(git(dir, "--git-dir", dir, "rev-parse", "refs/namespaces/agent/refs/heads/main"), fromGit);

    // The first store fetches git's commit: only what it lacks, a fast-forward.
    const fetched = await repo.fetch({ url, refs: ["main"] });
    assert.deepEqual(fetched.refs, [
      { remoteRef: "refs/heads/main", localRef: "refs/heads/main", old: head, new: fromGit },
    ]);
    assert.equal(fetched.objects, 3);
    assert.equal(await repo.head(), fromGit);
    const upToDate = await repo.fetch({ url });
    assert.equal(upToDate.objects, 0);
    assert.deepEqual(upToDate.refs, [
      { remoteRef: "refs/heads/main", localRef: "refs/heads/main", old: fromGit, new: fromGit },
    ]);

    // `into` and `remoteRef`: another branch on each side.
    await repo.createBranch("side", { from: head });
    const side = await repo.push({ url, branch: "side", remoteRef: "refs/heads/experiment" });
    assert.equal(side.remoteRef, "refs/heads/experiment");
    assert.equal(git(clone, "ls-remote", "origin", "refs/heads/experiment").split("\t")[0], head);
    const into = await mirror.repo("agent").fetch({ url, refs: ["experiment"], into: "from-experiment" });
    assert.equal(into.refs[0].localRef, "refs/heads/from-experiment");
    assert.equal(await mirror.repo("agent").head("from-experiment"), head);
  });

  test("shallow and partial imports keep the store a git repository", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    await store.createRepo("agent", { author: at(0), files: { "memory.md": "0\n", "old.md": "old\n" } });
    const repo = store.repo("agent");
    for (let turn = 1; turn <= 3; turn++) {
      await repo.commit({ author: at(turn), message: `turn ${turn}`, files: { "memory.md": `${turn}\n` } });
    }
    const head = await repo.head();
    const url = server.url("shallow-src");
    await repo.push({ url });

    const dir = join(await scratch(), "mirror.git");
    const mirror = await Store.open({ adapter: await NodeFsAdapter.open(dir) });
    // One commit: git's shallow file names it, and git reads the store.
    const heard = [];
    const shallow = await mirror.import("tip", { url, depth: 1, onProgress: (p) => heard.push(p) });
    // Each transfer is heard going out, arriving and done.
    const last = heard.at(-1);
    assert.equal(last.done, true);
    assert.equal(last.method, "POST");
    assert.ok(last.url.endsWith("/git-upload-pack") && last.received > 0, JSON.stringify(last));
    assert.ok(heard.some((p) => p.method === "GET" && p.done));
    assert.deepEqual(shallow.shallow, [head]);
    assert.equal(shallow.filter, null);
    assert.equal((await readFile(join(dir, "shallow"), "utf8")).trim(), head);
    const log = await mirror.repo("tip").log();
    assert.deepEqual(
      log.commits.map((c) => c.id),
      [head],
    );
    git(dir, "--git-dir", dir, "fsck", "--strict");
    // Trees and commits only: the pack is a promisor pack and the config names the remote.
    const partial = await mirror.import("lazy", { url, filter: "blob:none" });
    assert.equal(partial.filter, "blob:none");
    assert.equal(partial.objects, 8);
    assert.deepEqual(partial.shallow, [], "the whole history arrived: no commit lacks its parents");
    const config = await readFile(join(dir, "config"), "utf8");
    assert.match(config, /promisor = true/);
    git(dir, "--git-dir", dir, "fsck", "--strict");
    // A blob left out is fetched from the remote when a read needs it: the root
    // commit's memory.md is in no commit the shallow import brought.
    const root = (await mirror.repo("lazy").log()).commits.at(-1).id;
    const before = (await readdir(join(dir, "objects", "pack"))).length;
    assert.equal(await mirror.repo("lazy").readText("memory.md", { ref: root }), "0\n");
    assert.equal((await readdir(join(dir, "objects", "pack"))).length, before + 3, "a promisor pack more");
    git(dir, "--git-dir", dir, "fsck", "--strict");
    // A memory adapter has swap() too; bad options are refused before any request.
    await rejectsWith(store.import("bad", { url, filter: "tree:0" }), "INVALID_INPUT");
    await rejectsWith(store.import("bad", { url, depth: 0 }), "INVALID_INPUT");
  });

  test("failures carry the engine's codes", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    await store.createRepo("agent", { author: at(0), files: { "a.md": "a\n" } });
    const repo = store.repo("agent");
    const url = server.url("failures");
    await repo.push({ url });

    // Another history: not a fast-forward, refused by the engine before anything is sent.
    const other = await Store.open({ adapter: new MemoryAdapter() });
    await other.createRepo("agent", { author: at(5), files: { "b.md": "b\n" } });
    await rejectsWith(other.repo("agent").push({ url }), "CONFLICT");
    // Fetched onto a branch that went elsewhere: refused unless forced.
    await rejectsWith(other.repo("agent").fetch({ url }), "CONFLICT");
    const forced = await other.repo("agent").fetch({ url, force: true });
    assert.equal(forced.refs[0].new, await repo.head());

    // No such repository on the server.
    await assert.rejects(repo.fetch({ url: server.url("absent") }), (error) => {
      assert.ok(error instanceof SnapgitError);
      assert.equal(error.code, "STORAGE");
      assert.match(error.message, /HTTP 404/);
      return true;
    });
    // Nothing listening: the runtime's error is the cause.
    const gone = await httpServer(() => {});
    await gone.close();
    await assert.rejects(repo.push({ url: `${gone.url}/agent.git` }), (error) => {
      assert.ok(error instanceof SnapgitError);
      assert.equal(error.code, "STORAGE");
      assert.match(error.message, /^storage failed: HTTP GET http:\/\/127\.0\.0\.1:\d+\/agent\.git\/info\/refs/);
      assert.ok(error.cause instanceof Error);
      return true;
    });

    // Checked before anything is sent: the engine's rules, and the package's types.
    await rejectsWith(repo.push({ url: "ftp://example.com/agent.git" }), "INVALID_INPUT");
    await rejectsWith(repo.push({ url: "http://example.com/a.git?x=1" }), "INVALID_INPUT");
    await rejectsWith(repo.push({ url, remoteRef: "main" }), "INVALID_INPUT");
    await rejectsWith(repo.push({ url, branch: "missing" }), "NOT_FOUND");
    await rejectsWith(repo.push({ url, headers: ["Authorization", "x"] }), "INVALID_INPUT");
    await rejectsWith(repo.push({ url, headers: { Authorization: 1 } }), "INVALID_INPUT");
    await rejectsWith(repo.push({}), "INVALID_INPUT");
    await rejectsWith(repo.fetch({ url, refs: "main" }), "INVALID_INPUT");
    await rejectsWith(repo.fetch({ url, refs: ["a", "b"], into: "c" }), "INVALID_INPUT");
    await rejectsWith(store.import("agent", { url, headers: "x" }), "INVALID_INPUT");
    await rejectsWith(store.import("bad name", { url }), "INVALID_INPUT");
  });

  test("tokens travel as headers or in the URL", async () => {
    const tokens = JSON.stringify({ tokens: [{ token: "s3cret-0123456789abcdef", repos: ["*"], access: "write" }] });
    const guarded = await serve({ SNAPGIT_TOKENS: tokens });
    const store = await Store.open({ adapter: new MemoryAdapter() });
    await store.createRepo("agent", { author: at(0), files: { "a.md": "a\n" } });
    const repo = store.repo("agent");
    const url = guarded.url("agent");
    await assert.rejects(repo.push({ url }), (error) => {
      assert.equal(error.code, "STORAGE");
      assert.match(error.message, /HTTP 401/);
      return true;
    });
    const pushed = await repo.push({ url, headers: { Authorization: "Bearer s3cret-0123456789abcdef" } });
    assert.equal(pushed.new, await repo.head());
    const basic = url.replace("http://", "http://agent:s3cret-0123456789abcdef@");
    const mirror = await Store.open({ adapter: new MemoryAdapter() });
    const imported = await mirror.import("copy", { url: basic });
    assert.equal(imported.refs[0].new, pushed.new);

    // A partial clone's reads fetch what they need with the store's remoteHeaders.
    const authorization = { Authorization: "Bearer s3cret-0123456789abcdef" };
    const shared = new MemoryAdapter();
    const bare = await Store.open({ adapter: shared });
    await bare.import("lazy", { url, headers: authorization, filter: "blob:none" });
    await assert.rejects(bare.repo("lazy").readText("a.md"), (error) => {
      assert.equal(error.code, "STORAGE");
      assert.match(error.message, /partial fetch left it out.*HTTP 401/);
      return true;
    });
    const keyed = await Store.open({
      adapter: shared,
      remoteHeaders: (to) => (to.startsWith(url) ? authorization : undefined),
    });
    assert.equal(await keyed.repo("lazy").readText("a.md"), "a\n");
  });

  test("a response over the engine's limit is refused while it arrives", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    await store.createRepo("agent", { author: at(0), files: { "a.md": "a\n" } });
    const limit = 64 * 2 ** 20; // the engine's largest advertisement
    // A declared length over the limit: refused before the body is read.
    const { url: declared } = await httpServer((request, response) => {
      response.writeHead(200, {
        "content-type": "application/x-git-receive-pack-advertisement",
        "content-length": limit + 1,
      });
      response.write("0000");
    });
    await assert.rejects(store.repo("agent").push({ url: `${declared}/agent.git` }), (error) => {
      assert.equal(error.code, "LIMIT");
      assert.equal(error.limit, limit);
      return true;
    });
    // No declared length: refused once more than the limit has arrived.
    const chunk = new Uint8Array(1 << 20);
    const { url: streamed } = await httpServer(async (request, response) => {
      response.writeHead(200, { "content-type": "application/x-git-receive-pack-advertisement" });
      for (let sent = 0; sent <= limit && !response.destroyed; sent += chunk.length) {
        if (!response.write(chunk)) await new Promise((drained) => response.once("drain", drained));
      }
      response.end();
    });
    await assert.rejects(store.repo("agent").push({ url: `${streamed}/agent.git` }), (error) => {
      assert.equal(error.code, "LIMIT");
      assert.match(error.message, /over the limit of 67108864 bytes/);
      return true;
    });
  });

  test("a signal aborts a request in flight", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    await store.createRepo("agent", { author: at(0), files: { "a.md": "a\n" } });
    const { url: silent } = await httpServer(() => {}); // never answers
    await assert.rejects(
      store.repo("agent").push({ url: `${silent}/agent.git`, signal: AbortSignal.timeout(100) }),
      (error) => error.name === "TimeoutError",
    );
  });
});
