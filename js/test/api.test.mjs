// The API end to end on the in-memory adapter: repos, commit, read, log, diff, restore,
// branches, retention, GC and footprint.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MemoryAdapter, Store, at, author, openRepo, rejectsWith } from "./helpers.mjs";

const text = (bytes) => new TextDecoder().decode(bytes);

describe("repos", () => {
  test("create, list and delete repos; a second create is refused", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    const created = await store.createRepo("agent-1", {
      author,
      files: { "memory.md": "# Memory\n", "notes/a.md": "a\nb\n" },
      message: "first",
    });
    assert.match(created.commit, /^[0-9a-f]{40}$/);
    assert.deepEqual(
      created.files.map((f) => [f.path, f.kind]),
      [["memory.md", "added"], ["notes/a.md", "added"]],
    );
    assert.equal(created.added, 3);
    await store.createRepo("agent-2", { author });
    assert.deepEqual(await store.listRepos(), ["agent-1", "agent-2"]);
    await rejectsWith(store.createRepo("agent-1", { author }), "ALREADY_EXISTS", "agent-1");
    assert.deepEqual(await store.deleteRepo("agent-2"), ["refs/namespaces/agent-2/refs/heads/main"]);
    assert.deepEqual(await store.listRepos(), ["agent-1"]);
    await rejectsWith(store.deleteRepo("agent-2"), "NOT_FOUND", "agent-2");
    await rejectsWith(store.repo("agent-2").head(), "NOT_FOUND", "main");
  });

  test("the first commit is what git would write", async () => {
    const store = await Store.open({ adapter: new MemoryAdapter() });
    const date = new Date("2005-04-07T22:13:13Z");
    const who = { name: "A U Thor", email: "author@example.com", date, offsetMinutes: 120 };
    const created = await store.createRepo("r", { author: who, files: { "a.txt": "hello\n" }, message: "msg" });
    // printf 'hello\n' > a.txt; git add a.txt;
    // GIT_AUTHOR_DATE/GIT_COMMITTER_DATE='1112911993 +0200' git commit -m msg
    assert.equal(created.commit, "ddcae06803b29359286bac5e001ac96133cf2517");
    const info = await store.repo("r").readCommit(created.commit);
    assert.equal(info.tree, "2e81171448eb9f2ee3821e3d447aa6b2fe3ddba1");
    assert.deepEqual(info.parents, []);
    assert.equal(info.message, "msg\n");
    assert.deepEqual(info.author, { name: "A U Thor", email: "author@example.com", date, offsetMinutes: 120 });
    const files = await store.repo("r").listTree({ ref: created.commit });
    assert.deepEqual(files, [{ path: "a.txt", mode: "regular", id: "ce013625030ba8dba906f756967f9e9ca394464a" }]);
  });
});

describe("refs", () => {
  test("a ref is resolved by the engine: ~N and ^N steps, abbreviated ids, unknown names", async () => {
    const { repo } = await openRepo({ "memory.md": "one\n" });
    const first = await repo.head();
    await repo.commit({ author: at(1), message: "two", files: { "memory.md": "two\n" } });
    const second = await repo.head();
    await repo.commit({ author: at(2), message: "three", files: { "memory.md": "three\n" } });
    assert.equal(await repo.readText("memory.md", { ref: "main~1" }), "two\n");
    assert.equal(await repo.readText("memory.md", { ref: "main^^" }), "one\n");
    assert.equal((await repo.readCommit("main~2")).id, first);
    assert.equal((await repo.readCommit(second.slice(0, 8))).id, second);
    assert.equal(await repo.readText("memory.md", { ref: `${second.slice(0, 10).toUpperCase()}~1` }), "one\n");
    await rejectsWith(repo.readCommit("main~3"), "NOT_FOUND", "main~3");
    await rejectsWith(repo.readCommit("main^2"), "NOT_FOUND", "main^2");
    await rejectsWith(repo.readCommit("main~x"), "INVALID_INPUT", "main~x");
    await rejectsWith(repo.readCommit("nope"), "NOT_FOUND", "nope");
    assert.equal(await repo.createBranch("back", { from: "main~2" }), first);
    assert.equal(await repo.head("back"), first);
  });
});

describe("commit and read", () => {
  test("commit puts, deletes and renames; per-file kinds and line counts", async () => {
    const { repo } = await openRepo({ "memory.md": "one\ntwo\n", "old/x.md": "x\n", "gone.md": "bye\n" });
    const before = await repo.head();
    const out = await repo.commit({
      author: at(1),
      message: "turn 2",
      changes: [
        { type: "rename", from: "old", to: "new" },
        { type: "put", path: "run.sh", content: "#!/bin/sh\n", mode: "executable" },
      ],
      files: { "memory.md": "one\n2\nthree\n", "gone.md": null, "bin/data": new Uint8Array([0, 1, 2]) },
    });
    assert.equal(out.parent, before);
    assert.equal(out.created, true);
    assert.equal(out.attempts, 1);
    assert.deepEqual(
      out.files.map((f) => [f.path, f.kind, f.from, f.lines]),
      [
        ["bin/data", "added", undefined, null],
        ["gone.md", "deleted", undefined, { added: 0, removed: 1 }],
        ["memory.md", "modified", undefined, { added: 2, removed: 1 }],
        ["new/x.md", "renamed", "old/x.md", { added: 0, removed: 0 }],
        ["run.sh", "added", undefined, { added: 1, removed: 0 }],
      ],
    );
    assert.equal(out.added, 3);
    assert.equal(out.removed, 2);
    assert.equal(out.files[0].binary, true);
    assert.equal(await repo.head(), out.commit);

    assert.equal(await repo.readText("memory.md"), "one\n2\nthree\n");
    const bin = await repo.readFile("bin/data");
    assert.deepEqual([...bin.data], [0, 1, 2]);
    assert.equal(bin.mode, "regular");
    assert.equal((await repo.readFile("run.sh")).mode, "executable");
    await rejectsWith(repo.readFile("gone.md"), "NOT_FOUND", "gone.md");
    // The old commit still has it.
    assert.equal(await repo.readText("gone.md", { ref: before }), "bye\n");
  });

  test("every form of a commit's fields arrives intact: signatures, modes, bytes, text", async () => {
    const { repo } = await openRepo({ "old/a.md": "a\n", "gone.md": "x\n" });
    const bytes = new Uint8Array([0xff, 0, 0xfe, 10]);
    const who = { name: "Ägent 🤖", email: "a@example.com", date: new Date("2024-06-01T00:00:07.900Z"), offsetMinutes: -330 };
    const by = { name: "Committer \"q\"", email: "c@example.com", date: 1717200000, offsetMinutes: 60 };
    const long = "line\n".repeat(20000);
    const out = await repo.commit({
      author: who,
      committer: by,
      message: "ünïcode\n\nbody\n",
      changes: [
        { type: "put", path: "bin/raw", content: bytes },
        { type: "put", path: "run.sh", content: "#!/bin/sh\n", mode: "executable" },
        { type: "put", path: "link", content: "run.sh", mode: "symlink" },
        { type: "put", path: "plain.md", content: "p\n", mode: "regular" },
        { type: "rename", from: "old", to: "new" },
        { type: "delete", path: "gone.md" },
      ],
      files: { "dir/ü.md": "über\n", "long.md": long, "bin/b": bytes.subarray(1, 3) },
    });
    const info = await repo.readCommit(out.commit);
    assert.deepEqual(info.author, { ...who, date: new Date("2024-06-01T00:00:07Z") });
    assert.deepEqual(info.committer, { ...by, date: new Date(1717200000 * 1000) });
    assert.equal(info.message, "ünïcode\n\nbody\n");
    const files = Object.fromEntries((await repo.readFiles()).map((f) => [f.path, f]));
    assert.deepEqual(Object.keys(files).sort(), ["bin/b", "bin/raw", "dir/ü.md", "link", "long.md", "new/a.md", "plain.md", "run.sh"]);
    assert.deepEqual([...files["bin/raw"].data], [...bytes]);
    assert.deepEqual([...files["bin/b"].data], [0, 0xfe]);
    assert.equal(text(files["dir/ü.md"].data), "über\n");
    assert.equal(text(files["long.md"].data), long);
    assert.equal(files["run.sh"].mode, "executable");
    assert.equal(files["link"].mode, "symlink");
    assert.equal(text(files["link"].data), "run.sh");
    assert.equal(files["plain.md"].mode, "regular");
  });

  test("a commit started from inside another commit's request gets its own packing", async () => {
    const { repo, store } = await openRepo();
    const other = store.repo("other");
    await store.createRepo("other", { author });
    let inner;
    const change = {
      type: "put",
      path: "outer.md",
      get content() {
        inner ??= other.commit({ author, message: "inner", files: { "inner.md": "inner\n" } });
        return "outer\n";
      },
    };
    await repo.commit({ author, message: "outer", changes: [change] });
    await inner;
    assert.equal(await repo.readText("outer.md"), "outer\n");
    assert.equal(await other.readText("inner.md"), "inner\n");
  });

  test("listTree gives ids and modes; readFiles gives contents", async () => {
    const { repo } = await openRepo({ "a.md": "a", "d/b.md": "b", "d/e/c.md": "c" });
    const all = await repo.listTree();
    assert.deepEqual(
      all.map((e) => [e.path, e.mode]),
      [["a.md", "regular"], ["d/b.md", "regular"], ["d/e/c.md", "regular"]],
    );
    assert.ok(all.every((e) => /^[0-9a-f]{40}$/.test(e.id)));
    const top = await repo.listTree({ recursive: false });
    assert.deepEqual(top.map((e) => [e.path, e.mode]), [["a.md", "regular"], ["d", "tree"]]);
    const below = await repo.readFiles({ path: "d" });
    assert.deepEqual(below.map((f) => [f.path, text(f.data)]), [["d/b.md", "b"], ["d/e/c.md", "c"]]);
    assert.equal((await repo.readFiles()).length, 3);
    // Each file's bytes are its own: keeping or changing one touches no other.
    assert.ok(below.every((f) => f.data.byteOffset === 0 && f.data.buffer.byteLength === f.data.length));
    below[0].data[0] = 0x78;
    assert.equal(text(below[1].data), "c");
    const empty = await openRepo({ "e.md": "" });
    assert.equal((await empty.repo.readFile("e.md")).data.length, 0);
  });

  test("a warm store commits with one put and one compare-and-swap, reading nothing", async () => {
    const { adapter, repo } = await openRepo();
    await repo.commit({ author: at(1), message: "warm up", files: { "a/b/c.md": "1\n" } });
    adapter.resetCounters();
    const out = await repo.commit({ author: at(2), message: "turn", files: { "a/b/c.md": "2\n" } });
    assert.equal(out.objectsWritten, 5); // blob, three trees, commit
    assert.deepEqual(
      { requests: adapter.counters.requests, getMany: adapter.counters.getMany },
      { requests: 2, getMany: 0 },
    );
  });

  test("a cold store reads the head and the touched trees, a level per round", async () => {
    const { adapter, store } = await openRepo({ "a/b/c.md": "1\n", "a/x.md": "x", "y.md": "y" });
    const cold = await Store.open({ adapter });
    adapter.resetCounters();
    await cold.repo("r").commit({ author: at(1), message: "cold", files: { "a/b/c.md": "2\n" } });
    // ref, the packs listed (a cold cache), commit, root, a, a/b, old blob (line counts), put, cas
    assert.equal(adapter.counters.getMany, 5);
    assert.equal(adapter.counters.requests, 9);
    assert.equal(await store.repo("r").readText("a/b/c.md"), "2\n");
  });

  test("an empty commit is refused unless allowed; a repeated commit changes nothing", async () => {
    const { repo } = await openRepo({ "a.md": "a" });
    await rejectsWith(repo.commit({ author, message: "nothing" }), "EMPTY_COMMIT");
    const empty = await repo.commit({ author, message: "nothing", allowEmpty: true });
    assert.equal(empty.files.length, 0);
    assert.equal(empty.created, true);
    const same = await repo.commit({ author, message: "same", files: { "a.md": "a" } });
    assert.equal(same.created, false);
    assert.equal(same.commit, empty.commit);
  });

  test("expectedHead: a moved branch fails with HEAD_MOVED", async () => {
    const { repo } = await openRepo();
    const head = await repo.head();
    const next = await repo.commit({ author, message: "m", files: { "a.md": "1" }, expectedHead: head });
    await rejectsWith(
      repo.commit({ author, message: "m", files: { "a.md": "2" }, expectedHead: head }),
      "HEAD_MOVED",
      head,
    );
    try {
      await repo.commit({ author, message: "m", files: { "a.md": "2" }, expectedHead: head });
    } catch (error) {
      assert.equal(error.expected, head);
      assert.equal(error.actual, next.commit);
    }
  });

  test("policies refuse excluded paths and large files before anything is written", async () => {
    const { adapter, store } = await openRepo();
    const repo = store.repo("r", { policy: { exclude: ["*.log", "node_modules/"], maxFileBytes: 10 } });
    adapter.resetCounters();
    await rejectsWith(repo.commit({ author, message: "m", files: { "x/debug.log": "x" } }), "POLICY", "x/debug.log");
    await rejectsWith(repo.commit({ author, message: "m", files: { "big.md": "0123456789a" } }), "POLICY", "big.md");
    assert.equal(adapter.counters.requests, 0);
    // A policy on the call wins over the repo's.
    await repo.commit({ author, message: "m", files: { "x/debug.log": "x" }, policy: {} });
  });
});

describe("history and diff", () => {
  async function history() {
    const { repo, store, adapter } = await openRepo({ "memory.md": "0\n", "other.md": "o\n" });
    const ids = [await repo.head()];
    for (let i = 1; i <= 5; i++) {
      const files = i % 2 ? { "memory.md": `${i}\n` } : { "other.md": `${i}\n` };
      ids.push((await repo.commit({ author: at(i), message: `turn ${i}`, files })).commit);
    }
    return { repo, store, adapter, ids };
  }

  test("log pages newest first, with a path filter and a cursor", async () => {
    const { repo, ids } = await history();
    const all = await repo.log();
    assert.deepEqual(
      all.commits.map((c) => c.id),
      [...ids].reverse(),
    );
    assert.equal(all.next, null);
    assert.equal(all.start, ids[5]);
    assert.equal(all.commits[0].message, "turn 5\n");
    assert.ok(all.commits[0].author.date instanceof Date);

    const first = await repo.log({ path: "memory.md", limit: 2 });
    assert.deepEqual(first.commits.map((c) => c.id), [ids[5], ids[3]]);
    assert.equal(typeof first.next, "string");
    const second = await repo.log({ path: "memory.md", limit: 2, cursor: first.next, ref: first.start });
    assert.deepEqual(second.commits.map((c) => c.id), [ids[1], ids[0]]);
    assert.equal(second.next, null);
    await rejectsWith(repo.log({ cursor: first.next }), "INVALID_INPUT");
    await rejectsWith(repo.log({ limit: 0 }), "INVALID_INPUT", 0);
  });

  test("fileLog gives each change of one file with line counts", async () => {
    const { repo, ids } = await history();
    const page = await repo.fileLog({ path: "other.md" });
    assert.deepEqual(
      page.commits.map((c) => [c.commit.id, c.change.kind, c.change.lines]),
      [
        [ids[4], "modified", { added: 1, removed: 1 }],
        [ids[2], "modified", { added: 1, removed: 1 }],
        [ids[0], "added", { added: 1, removed: 0 }],
      ],
    );
  });

  test("diff: against the first parent, between refs, with line counts and a patch", async () => {
    const { repo, ids } = await history();
    const last = await repo.diff();
    assert.equal(last.from, ids[4]);
    assert.equal(last.to, ids[5]);
    // Line counts by default, as a commit reports them; none when not asked for.
    assert.deepEqual(last.files.map((f) => [f.path, f.kind, f.lines]), [["memory.md", "modified", { added: 1, removed: 1 }]]);
    const paths = await repo.diff({ lineStats: false });
    assert.deepEqual(paths.files.map((f) => [f.path, f.kind, f.lines]), [["memory.md", "modified", null]]);
    const span = await repo.diff({ from: ids[0], to: ids[5], lineStats: true, patch: true });
    assert.deepEqual(
      span.files.map((f) => [f.path, f.lines]),
      [["memory.md", { added: 1, removed: 1 }], ["other.md", { added: 1, removed: 1 }]],
    );
    assert.equal(
      span.patch,
      [
        "diff --git a/memory.md b/memory.md",
        `index ${span.files[0].old.id.slice(0, 7)}..${span.files[0].new.id.slice(0, 7)} 100644`,
        "--- a/memory.md",
        "+++ b/memory.md",
        "@@ -1 +1 @@",
        "-0",
        "+5",
        "diff --git a/other.md b/other.md",
        `index ${span.files[1].old.id.slice(0, 7)}..${span.files[1].new.id.slice(0, 7)} 100644`,
        "--- a/other.md",
        "+++ b/other.md",
        "@@ -1 +1 @@",
        "-o",
        "+4",
        "",
      ].join("\n"),
    );
    const one = await repo.diff({ from: "main", to: ids[0], path: "other.md" });
    assert.deepEqual(one.files.map((f) => f.path), ["other.md"]);
  });
});

describe("restore and branches", () => {
  test("restore the whole tree or one path as a new commit on the branch", async () => {
    const { repo } = await openRepo({ "memory.md": "good\n", "other.md": "o\n" });
    const good = await repo.head();
    await repo.commit({ author: at(1), message: "bad", files: { "memory.md": "bad\n", "other.md": "p\n", "new.md": "n" } });
    const bad = await repo.head();

    const one = await repo.restore({ from: good, path: "memory.md", author: at(2) });
    assert.equal(one.parent, bad);
    assert.deepEqual(one.files.map((f) => [f.path, f.kind]), [["memory.md", "modified"]]);
    assert.equal(await repo.readText("memory.md"), "good\n");
    assert.equal(await repo.readText("other.md"), "p\n");

    const all = await repo.restore({ from: good, author: at(3), message: "back to good" });
    assert.deepEqual(all.files.map((f) => [f.path, f.kind]), [["new.md", "deleted"], ["other.md", "modified"]]);
    assert.deepEqual((await repo.listTree()).map((e) => e.path), ["memory.md", "other.md"]);
    assert.equal((await repo.readCommit()).message, "back to good\n");
    // Nothing left to restore: the branch already has that content.
    const again = await repo.restore({ from: good, author: at(4) });
    assert.equal(again.created, false);
    // History is kept: the bad commit is still there to undo the restore.
    assert.equal(await repo.readText("new.md", { ref: bad }), "n");
    await rejectsWith(repo.restore({ from: "nope", author }), "NOT_FOUND", "nope");
  });

  test("create, list, read and delete branches; commits stay on their branch", async () => {
    const { repo } = await openRepo({ "a.md": "main\n" });
    const main = await repo.head();
    assert.equal(await repo.createBranch("feature/x"), main);
    assert.deepEqual(await repo.listBranches(), ["feature/x", "main"]);
    await repo.commit({ branch: "feature/x", author, message: "on x", files: { "a.md": "x\n" } });
    assert.equal(await repo.readText("a.md"), "main\n");
    assert.equal(await repo.readText("a.md", { ref: "feature/x" }), "x\n");
    assert.equal(await repo.createBranch("from-id", { from: main }), main);
    await rejectsWith(repo.createBranch("main"), "ALREADY_EXISTS", "main");
    await rejectsWith(repo.createBranch("y", { from: "missing" }), "NOT_FOUND", "missing");
    assert.deepEqual(await repo.deleteBranch("from-id"), ["refs/namespaces/r/refs/heads/from-id"]);
    await rejectsWith(repo.head("from-id"), "NOT_FOUND", "from-id");
    await rejectsWith(repo.commit({ branch: "gone", author, message: "m", files: { a: "1" } }), "NOT_FOUND", "gone");
  });
});

describe("retention, GC and footprint", () => {
  test("prune keeps the last commits; GC removes what nothing reaches", async () => {
    let now = Date.parse("2024-05-01T12:00:00Z");
    const adapter = new MemoryAdapter({ now: () => now });
    const { store, repo } = await openRepo({ "m.md": "0\n" }, { adapter });
    for (let i = 1; i <= 4; i++) await repo.commit({ author: at(i), message: `t${i}`, files: { "m.md": `${i}\n` } });

    const pruned = await repo.prune({ keepLast: 2 });
    assert.equal(pruned.kept, 2);
    assert.equal(pruned.dropped, 3);
    assert.equal(pruned.rewritten, true);
    assert.equal((await repo.log()).commits.length, 2);
    assert.equal(await repo.readText("m.md"), "4\n");

    const before = await store.footprint();
    assert.equal(before.repos.length, 1);
    assert.ok(before.unreachable.count > 0);
    // Within the grace period nothing is deleted.
    const young = await store.gc({ now });
    assert.equal(young.deleted, 0);
    now += 2 * 3600_000;
    const collected = await store.gc({ now: new Date(now) });
    assert.equal(collected.deleted, before.unreachable.count);
    const after = await store.footprint();
    assert.equal(after.unreachable.count, 0);
    assert.equal(after.objects.count, before.objects.count - collected.deleted);
    assert.equal(await repo.readText("m.md"), "4\n");
  });
});

describe("folders", () => {
  // git hash-object of each content.
  const ids = {
    "one\n": "5626abf0f72e58d7a153368ba57db4c673c0e171",
    "one\ntwo\n": "814f4a422927b82f5f8a43f8fab6d3839e3983f2",
  };

  test("a folder compared with a commit, and a checkout planned back to it", async () => {
    const { repo } = await openRepo({ "a.md": "one\n", "old.md": "one\n" });
    const head = await repo.head();
    // The folder: a.md edited (read, so its content is given), old.md gone.
    const files = [{ path: "a.md", id: ids["one\ntwo\n"], data: "one\ntwo\n" }];
    const diff = await repo.diffFolder({ files });
    assert.equal(diff.from, head);
    assert.deepEqual(
      diff.files.map((f) => [f.path, f.kind]),
      [["a.md", "modified"], ["old.md", "deleted"]],
    );
    assert.equal(diff.added, 1);
    const plan = await repo.checkout({ files: files.map(({ path, id }) => ({ path, id })) });
    assert.equal(plan.commit, head);
    assert.deepEqual(plan.deletes, []);
    assert.deepEqual(
      plan.writes.map((w) => [w.path, text(w.data)]),
      [["a.md", "one\n"], ["old.md", "one\n"]],
    );
    // Never onto an untracked path; bad folders are refused naming the file.
    await rejectsWith(repo.checkout({ files: [], untracked: ["old.md"] }), "CONFLICT", "old.md");
    await rejectsWith(repo.diffFolder({ files: [{ path: "../x", id: ids["one\n"] }] }), "INVALID_INPUT", "../x");
    await rejectsWith(repo.diffFolder({ files: [{ path: "a.md", id: ids["one\n"], data: "two\n" }] }), "INVALID_INPUT", "a.md");
  });
});
