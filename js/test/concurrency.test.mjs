// Concurrent writers on one store: several clients (each a Store with its own cache)
// commit at once through one adapter, and no acknowledged commit is lost.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { FaultyAdapter, MemoryAdapter, Store, at, author, openRepo, rejectsWith } from "./helpers.mjs";

async function clients(adapter, n) {
  return Promise.all(Array.from({ length: n }, () => Store.open({ adapter })));
}

describe("concurrent commits", () => {
  // Writers that commit back to back starve each other for a while (one keeps winning
  // while the others back off), so they may take many attempts; none may be lost.
  test("8 clients x 5 commits to different files all survive", async () => {
    const adapter = new MemoryAdapter({ latencyMs: 1 });
    const { repo } = await openRepo({ "shared.md": "s\n" }, { adapter });
    const stores = await clients(adapter, 8);
    const results = await Promise.all(
      stores.map(async (store, c) => {
        const mine = store.repo("r");
        const out = [];
        for (let i = 0; i < 5; i++) {
          const files = { [`agent-${c}.md`]: `${i}\n` };
          out.push(await mine.commit({ author: at(c * 10 + i), message: `c${c} t${i}`, files, maxAttempts: 100 }));
        }
        return out;
      }),
    );
    const acknowledged = results.flat();
    assert.equal(acknowledged.length, 40);
    assert.ok(acknowledged.some((r) => r.attempts > 1), "some commit had to replay");

    const files = await repo.readFiles();
    assert.deepEqual(
      files.map((f) => [f.path, new TextDecoder().decode(f.data)]),
      [
        ...Array.from({ length: 8 }, (_, c) => [`agent-${c}.md`, "4\n"]),
        ["shared.md", "s\n"],
      ],
    );
    // Every acknowledged commit is in the history, which is one line of 41 commits.
    const log = await repo.log({ limit: 100 });
    assert.equal(log.commits.length, 41);
    const ids = new Set(log.commits.map((c) => c.id));
    for (const r of acknowledged) assert.ok(ids.has(r.commit), `commit ${r.commit} lost`);
  });

  test("two clients on one path: the default policy fails and reports both sides", async () => {
    const adapter = new FaultyAdapter();
    const { repo } = await openRepo({ "m.md": "base\n" }, { adapter });
    // Our client reads the head (a cache that only remembers it would start over on a lost
    // swap instead: a remembered head is no merge base); the other commits to the same
    // path just before our compare-and-swap.
    const [other, mine] = await clients(adapter, 2);
    adapter.beforeCas = async () => {
      adapter.beforeCas = undefined;
      await other.repo("r").commit({ author: at(1), message: "theirs", files: { "m.md": "theirs\n" } });
    };
    await assert.rejects(mine.repo("r").commit({ author: at(2), message: "ours", files: { "m.md": "ours\n" } }), (error) => {
      assert.equal(error.code, "CONFLICT");
      assert.equal(error.value, "m.md");
      assert.match(error.ours, /^[0-9a-f]{40}$/);
      assert.match(error.theirs, /^[0-9a-f]{40}$/);
      return true;
    });
    assert.equal(await repo.readText("m.md"), "theirs\n");
  });

  test("onConflict 'ours' and 'theirs' settle a conflict; other paths survive", async () => {
    for (const policy of ["ours", "theirs"]) {
      const adapter = new FaultyAdapter();
      const { repo } = await openRepo({ "m.md": "base\n" }, { adapter });
      const [other, mine] = await clients(adapter, 2);
      adapter.beforeCas = async () => {
        adapter.beforeCas = undefined;
        await other
          .repo("r")
          .commit({ author: at(1), message: "theirs", files: { "m.md": "theirs\n", "t.md": "t\n" } });
      };
      const out = await mine.repo("r").commit({
        author: at(2),
        message: "ours",
        files: { "m.md": "ours\n", "o.md": "o\n" },
        onConflict: policy,
      });
      assert.equal(out.attempts, 2);
      assert.deepEqual(out.settled.map((c) => c.path), ["m.md"]);
      assert.equal(await repo.readText("m.md"), `${policy}\n`);
      assert.equal(await repo.readText("t.md"), "t\n");
      assert.equal(await repo.readText("o.md"), "o\n");
    }
  });

  test("a turn made elsewhere is no conflict for a cache that only remembered the head", async () => {
    // A warm isolate remembers the head of its last commit; the agent's next turn went
    // through another one. That head is no merge base: the commit starts over on the new
    // head and lands, instead of conflicting with the agent's own turn.
    const adapter = new FaultyAdapter();
    const { repo } = await openRepo({ "m.md": "base\n" }, { adapter });
    const [other] = await clients(adapter, 1);
    adapter.beforeCas = async () => {
      adapter.beforeCas = undefined;
      await other.repo("r").commit({ author: at(1), message: "turn 1", files: { "m.md": "turn 1\n" } });
    };
    const out = await repo.commit({ author: at(2), message: "turn 2", files: { "m.md": "turn 2\n" } });
    assert.deepEqual([out.attempts, out.settled], [2, []]);
    assert.equal(await repo.readText("m.md"), "turn 2\n");
  });

  test("a writer that loses every race gives up with LOST_RACE and writes no ref", async () => {
    const adapter = new FaultyAdapter();
    const { repo } = await openRepo({ "m.md": "base\n" }, { adapter });
    const [other] = await clients(adapter, 1);
    let n = 0;
    let inside = false;
    adapter.beforeCas = async () => {
      if (inside || n >= 3) return;
      inside = true;
      n++;
      try {
        await other.repo("r").commit({ author: at(n), message: `theirs ${n}`, files: { [`t${n}.md`]: "t" } });
      } finally {
        inside = false;
      }
    };
    await rejectsWith(
      repo.commit({ author: at(9), message: "ours", files: { "o.md": "o" }, maxAttempts: 3 }),
      "LOST_RACE",
      3,
    );
    assert.deepEqual((await repo.listTree()).map((e) => e.path), ["m.md", "t1.md", "t2.md", "t3.md"]);
  });

  test("a compare-and-swap reported lost with the ref unchanged is tried again", async () => {
    const adapter = new FaultyAdapter();
    const { repo } = await openRepo({ "m.md": "base\n" }, { adapter });
    adapter.failNext("casRef", "lose");
    const out = await repo.commit({ author, message: "m", files: { "m.md": "new\n" } });
    assert.equal(out.attempts, 1);
    assert.equal(await repo.readText("m.md"), "new\n");
  });

  test("advisory locks: taken and released around the commit; a busy lock is waited for", async () => {
    const adapter = new MemoryAdapter();
    const { repo } = await openRepo({}, { adapter });
    const out = await repo.commit({ author, message: "m", files: { "a.md": "1" }, lockTtlMs: 5000 });
    assert.equal(out.locked, true);
    assert.equal(adapter.counters.acquire, 1);
    assert.equal(adapter.counters.release, 1);

    // Someone holds the lock; it is released while our third try is on its way.
    const token = await adapter.acquire("locks/r/main", 5000);
    const acquire = adapter.acquire.bind(adapter);
    let tries = 0;
    adapter.acquire = async (name, ttlMs) => {
      if (++tries === 3) await adapter.release(name, token);
      return acquire(name, ttlMs);
    };
    const waited = await repo.commit({ author, message: "m", files: { "a.md": "2" }, lockTtlMs: 5000 });
    assert.equal(waited.locked, true);
    assert.equal(tries, 3);

    // Held longer than our lease: after waiting one lease (its own ttl) the commit goes
    // ahead without it (the CAS is the fence).
    await acquire("locks/r/main", 60_000);
    tries = 0;
    const without = await repo.commit({ author, message: "m", files: { "a.md": "3" }, lockTtlMs: 200 });
    assert.equal(without.locked, false);
    assert.ok(tries > 2, `queued for the lock, asking ${tries} times`);
    assert.equal(await repo.readText("a.md"), "3");
  });

  test("an adapter without locks: a commit asking for one fails with STORAGE", async () => {
    const base = new MemoryAdapter();
    const adapter = {
      getMany: (k) => base.getMany(k),
      putMany: (o) => base.putMany(o),
      list: (p) => base.list(p),
      delete: (k) => base.delete(k),
      readRef: (k) => base.readRef(k),
      casRef: (k, e, v) => base.casRef(k, e, v),
    };
    const store = await Store.open({ adapter });
    await store.createRepo("r", { author });
    await rejectsWith(
      store.repo("r").commit({ author, message: "m", files: { a: "1" }, lockTtlMs: 100 }),
      "STORAGE",
    );
    await store.repo("r").commit({ author, message: "m", files: { a: "1" } });
  });
});
