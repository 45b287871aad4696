// The CommonJS build, required directly: the same API and error classes as the ESM one.
const assert = require("node:assert/strict");
const { test } = require("node:test");

const { Store, SnapgitError, StorageError } = require("snapgit");
const { MemoryAdapter } = require("snapgit/adapters/memory");

test("CommonJS: commit, read, log, diff and a typed error", async () => {
  const store = await Store.open({ adapter: new MemoryAdapter() });
  const author = { name: "A", email: "a@example.com", date: new Date("2024-01-01T00:00:00Z") };
  await store.createRepo("r", { author, files: { "m.md": "1\n" } });
  const repo = store.repo("r");
  const out = await repo.commit({ author, message: "m", files: { "m.md": "1\n2\n" } });
  assert.deepEqual(out.files[0].lines, { added: 1, removed: 0 });
  assert.equal(await repo.readText("m.md"), "1\n2\n");
  assert.equal((await repo.log()).commits.length, 2);
  assert.equal((await repo.diff({ lineStats: true })).added, 1);
  await assert.rejects(repo.readFile("m.md", { ref: "nope" }), (e) => e instanceof SnapgitError && e.code === "NOT_FOUND");
  assert.equal(new StorageError("x").code, "STORAGE");
});
