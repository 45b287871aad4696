// Bad input gets a SnapgitError with a stable code and the offending value; a storage
// adapter that throws, corrupts bytes or answers nonsense gets one too, and nothing
// visible changes.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { FaultyAdapter, MemoryAdapter, SnapgitError, Store, author, openRepo, rejectsWith } from "./helpers.mjs";

describe("wrong argument types", () => {
  test("Store.open checks its options and the adapter", async () => {
    await rejectsWith(Store.open(), "INVALID_INPUT");
    await rejectsWith(Store.open({ adapter: {} }), "INVALID_INPUT");
    await rejectsWith(Store.open({ adapter: new MemoryAdapter(), concurrency: 0 }), "INVALID_INPUT", 0);
    await rejectsWith(Store.open({ adapter: new MemoryAdapter(), cacheBytes: -1 }), "INVALID_INPUT", -1);
    await rejectsWith(Store.open({ adapter: new MemoryAdapter(), maxFileBytes: "big" }), "INVALID_INPUT", "big");
  });

  test("commit checks every field and names it", async () => {
    const { repo } = await openRepo();
    const bad = async (options, field, value) => {
      await assert.rejects(repo.commit(options), (error) => {
        assert.ok(error instanceof SnapgitError);
        assert.equal(error.code, "INVALID_INPUT", error.message);
        assert.equal(error.field, field);
        if (typeof value === "function") assert.ok(value(error.value));
        else assert.deepEqual(error.value, value);
        return true;
      });
    };
    const ok = { author, message: "m", files: { "a.md": "a" } };
    await bad({ ...ok, message: 42 }, "message", 42);
    await bad({ ...ok, author: "me" }, "author", "me");
    await bad({ ...ok, author: { name: "A" } }, "author.email", undefined);
    await bad({ ...ok, author: { ...author, date: "yesterday" } }, "author.date", "yesterday");
    await bad({ ...ok, author: { ...author, date: new Date("nope") } }, "author.date", (v) => Number.isNaN(v.getTime()));
    await bad({ ...ok, files: { "a.md": 7 } }, 'files["a.md"]', 7);
    await bad({ ...ok, files: [] , changes: "x" }, "changes", "x");
    await bad({ ...ok, changes: [{ type: "move", path: "a" }] }, "changes[0].type", "move");
    await bad({ ...ok, changes: [{ type: "put", path: "a", content: "x", mode: "rwx" }] }, "changes[0].mode", "rwx");
    await bad({ ...ok, onConflict: "merge" }, "onConflict", "merge");
    await bad({ ...ok, lineStats: "yes" }, "lineStats", "yes");
    await bad({ ...ok, maxAttempts: 1.5 }, "maxAttempts", 1.5);
    await bad({ ...ok, policy: { exclude: "*.log" } }, "policy.exclude", "*.log");
    await rejectsWith(repo.commit(null), "INVALID_INPUT", null);
    await rejectsWith(repo.commit({ ...ok, expectedHead: "abc" }), "INVALID_INPUT", "abc");
  });

  test("reads check refs, paths and options", async () => {
    const { repo, store } = await openRepo();
    await rejectsWith(repo.readFile(42), "INVALID_INPUT", 42);
    await rejectsWith(repo.readFile("memory.md", { ref: 7 }), "INVALID_INPUT", 7);
    await rejectsWith(repo.readFile("memory.md", "main"), "INVALID_INPUT", "main");
    await rejectsWith(repo.log({ limit: -1 }), "INVALID_INPUT", -1);
    await rejectsWith(repo.log({ cursor: "zz" }), "INVALID_INPUT", "zz");
    await rejectsWith(repo.diff({ patch: 1 }), "INVALID_INPUT", 1);
    await rejectsWith(store.gc({ now: "now" }), "INVALID_INPUT", "now");
    assert.throws(() => store.repo(5), (e) => e instanceof SnapgitError && e.code === "INVALID_INPUT");
  });
});

describe("invalid paths, names and ids", () => {
  test("paths that could escape the tree are refused, naming the path", async () => {
    const { repo, adapter } = await openRepo();
    adapter.resetCounters();
    for (const path of ["../x", "/abs", "a//b", "a/", ".git/config", "a/.GIT/x", "x\0y", "", "a/./b"]) {
      await rejectsWith(repo.commit({ author, message: "m", files: { [path]: "x" } }), "INVALID_INPUT", path);
    }
    await rejectsWith(repo.commit({ author, message: "m", files: { "a/b": "1", a: "2" } }), "INVALID_INPUT");
    assert.equal(adapter.counters.putMany + adapter.counters.casRef, 0);
    await rejectsWith(repo.readFile("../memory.md"), "INVALID_INPUT", "../memory.md");
    await rejectsWith(repo.readFile("memory.md/x"), "NOT_FOUND");
    await rejectsWith(repo.readFile("nope.md"), "NOT_FOUND", "nope.md");
  });

  test("repo and branch names follow git's rules", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    for (const name of ["a/b", "..", "a..b", "-x", "x.lock", "a b", "", "x~1", "x^", "x:y", "@{x}"]) {
      await rejectsWith(store.createRepo(name, { author }), "INVALID_INPUT", name);
    }
    await store.createRepo("ok", { author });
    const repo = store.repo("ok");
    for (const name of ["a..b", "/x", "x/", "x.lock", "HEAD^"]) {
      await rejectsWith(repo.createBranch(name), "INVALID_INPUT", name);
    }
    await rejectsWith(store.repo("a/b").head(), "INVALID_INPUT", "a/b");
  });

  test("signatures that cannot be written into a commit are refused", async () => {
    const { repo } = await openRepo();
    await rejectsWith(repo.commit({ author: { ...author, name: "a <b>" }, message: "m", files: { a: "1" } }), "INVALID_INPUT", "a <b>");
    await rejectsWith(repo.commit({ author, message: "a\0b", files: { a: "1" } }), "INVALID_INPUT");
  });

  test("limits: a file over maxFileBytes", async () => {
    const { repo } = await openRepo({}, { open: { maxFileBytes: 4 } });
    await assert.rejects(repo.commit({ author, message: "m", files: { "a.md": "12345" } }), (error) => {
      assert.equal(error.code, "LIMIT");
      assert.equal(error.value, "a.md");
      assert.equal(error.limit, 4);
      return true;
    });
  });
});

describe("a misbehaving storage adapter", () => {
  test("an adapter that throws: STORAGE, with its error as cause; nothing changes", async () => {
    const adapter = new FaultyAdapter();
    const { repo, store } = await openRepo({ "m.md": "1\n" }, { adapter });
    const head = await repo.head();
    for (const method of ["putMany", "casRef", "readRef"]) {
      adapter.failNext(method);
      const fresh = method === "readRef" ? (await Store.open({ adapter })).repo("r") : repo;
      await assert.rejects(fresh.commit({ author, message: "m", files: { "m.md": "2\n" } }), (error) => {
        assert.ok(error instanceof SnapgitError);
        assert.equal(error.code, "STORAGE");
        assert.ok(error.cause instanceof Error);
        assert.match(error.message, new RegExp(method));
        return true;
      });
      assert.equal(await repo.head(), head);
    }
    adapter.failNext("getMany");
    store.clearCache();
    await rejectsWith(repo.readText("m.md"), "STORAGE");
    assert.equal(await repo.readText("m.md"), "1\n");
  });

  test("corrupt bytes: CORRUPT, naming the object", async () => {
    const adapter = new FaultyAdapter();
    const { repo, store } = await openRepo({ "m.md": "1\n" }, { adapter });
    store.clearCache();
    const head = await repo.head();
    adapter.failNext("getMany", "corrupt");
    await rejectsWith(repo.readCommit(head), "CORRUPT", head);
    // The store is fine; the next read succeeds.
    assert.equal((await repo.readCommit(head)).id, head);
  });

  // Not NOT_FOUND: the file exists, the store lost its content; a caller that creates
  // what is not found must not take this for a missing file.
  test("an object a tree names that the adapter does not have: CORRUPT, naming it", async () => {
    const adapter = new MemoryAdapter();
    const { repo, store } = await openRepo({ "m.md": "1\n" }, { adapter });
    const blob = (await repo.listTree())[0].id;
    await adapter.delete([`objects/${blob.slice(0, 2)}/${blob.slice(2)}`]);
    store.clearCache();
    await rejectsWith(repo.readFile("m.md"), "CORRUPT", blob);
  });

  test("answers of the wrong shape: STORAGE", async () => {
    const adapter = new FaultyAdapter();
    const { repo, store } = await openRepo({ "m.md": "1\n" }, { adapter });
    store.clearCache();
    adapter.failNext("getMany", "shape");
    await rejectsWith(repo.readText("m.md"), "STORAGE");

    const liar = new MemoryAdapter();
    const s = await Store.open({ adapter: liar });
    await s.createRepo("r", { author });
    liar.readRef = async () => ({ value: "not a commit id", version: "1" });
    await rejectsWith(s.repo("r").head(), "CORRUPT", "not a commit id");
    liar.readRef = async () => 42;
    await rejectsWith(s.repo("r").head(), "STORAGE", 42);
    liar.getMany = async () => [];
    await rejectsWith(s.repo("r").readFile("x", { ref: "0".repeat(40) }), "STORAGE");
    liar.list = async () => [{ key: 1 }];
    await rejectsWith(s.listRepos(), "STORAGE");
    liar.casRef = async () => ({ maybe: true });
    liar.readRef = MemoryAdapter.prototype.readRef.bind(liar);
    await rejectsWith(s.repo("r").commit({ author, message: "m", files: { a: "1" } }), "STORAGE");
  });
});
