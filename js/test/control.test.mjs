// Progress and cancellation: `onProgress` on GC and footprint, `signal` on every
// operation that reads or writes storage.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { FaultyAdapter, MemoryAdapter, Store, at, author, openRepo, rejectsWith } from "./helpers.mjs";

const PHASES = ["listRefs", "readRefs", "mark", "listObjects", "sweep", "done"];

/**
 * Two repos, several commits each, and unreachable objects after a prune; `store` is a
 * second store on the same adapter, whose cache is cold, so marking reads from storage.
 */
async function storeWithGarbage() {
  let now = Date.parse("2024-05-01T12:00:00Z");
  const adapter = new MemoryAdapter({ now: () => now });
  const { store, repo } = await openRepo({ "a/m.md": "0\n", "b/n.md": "0\n" }, { adapter });
  // (`store` warms its cache with every commit; GC runs on a cold one below.)
  await store.createRepo("other", { author, files: { "x.md": "x\n" } });
  for (let i = 1; i <= 5; i++) {
    await repo.commit({ author: at(i), message: `t${i}`, files: { "a/m.md": `${i}\n`, [`c/${i}.md`]: `${i}\n` } });
  }
  await repo.prune({ keepLast: 1 });
  now += 2 * 3600_000;
  const cold = await Store.open({ adapter });
  return { adapter, store: cold, repo: cold.repo("r"), now };
}

/** The phases of `reports`, each once, in the order first seen. */
function phasesOf(reports) {
  return reports.map((r) => r.phase).filter((phase, i, all) => all.indexOf(phase) === i);
}

describe("progress", () => {
  test("gc reports each phase in order, counts that never go back, and ends with its result", async () => {
    const { store, now } = await storeWithGarbage();
    const reports = [];
    const result = await store.gc({ now, onProgress: (p) => reports.push(p) });
    assert.ok(result.deleted > 0);
    const phases = phasesOf(reports);
    assert.deepEqual(phases, PHASES.filter((p) => phases.includes(p)));
    assert.ok(phases.includes("mark") && phases.includes("sweep"), phases.join(","));
    assert.equal(phases.at(-1), "done");
    for (const key of ["refsRead", "reachable", "rounds", "objectsListed", "examined", "deleted", "deletedBytes"]) {
      for (let i = 1; i < reports.length; i++) assert.ok(reports[i][key] >= reports[i - 1][key], key);
    }
    const last = reports.at(-1);
    assert.equal(last.deleted, result.deleted);
    assert.equal(last.deletedBytes, result.deletedBytes);
    assert.equal(last.reachable, result.reachable);
    assert.equal(last.objectsListed, result.listed);
    assert.equal(last.refsListed, 2);
  });

  test("footprint reports the survey's phases and deletes nothing", async () => {
    const { adapter, store } = await storeWithGarbage();
    const reports = [];
    adapter.resetCounters();
    const report = await store.footprint({ onProgress: (p) => reports.push(p) });
    assert.deepEqual(phasesOf(reports), ["listRefs", "readRefs", "mark", "listObjects", "done"]);
    assert.equal(reports.at(-1).deleted, 0);
    assert.equal(reports.at(-1).objectsListed, report.objects.count);
    assert.equal(adapter.counters.delete, 0);
  });

  test("a callback that throws ends the run with its error, and the store stays usable", async () => {
    const { store, repo, now } = await storeWithGarbage();
    const boom = new Error("progress bar broke");
    await assert.rejects(
      store.gc({
        now,
        onProgress: (p) => {
          if (p.phase === "mark") throw boom;
        },
      }),
      (error) => error === boom,
    );
    assert.equal(await repo.readText("a/m.md"), "5\n");
    assert.ok((await store.gc({ now })).deleted > 0);
  });
});

describe("cancellation", () => {
  test("an aborted signal stops any operation before its first storage call", async () => {
    const { adapter, store, repo } = await openRepo();
    const controller = new AbortController();
    const reason = new Error("user went away");
    controller.abort(reason);
    const signal = controller.signal;
    adapter.resetCounters();
    const calls = [
      repo.commit({ author, message: "m", files: { "x.md": "x\n" }, signal }),
      repo.restore({ author, from: "main", signal }),
      repo.readFiles({ signal }),
      repo.log({ signal }),
      repo.fileLog({ path: "memory.md", signal }),
      repo.diff({ signal }),
      repo.prune({ keepLast: 1, signal }),
      store.gc({ signal }),
      store.footprint({ signal }),
    ];
    for (const call of calls) await assert.rejects(call, (error) => error === reason);
    assert.equal(adapter.counters.requests, 0);
    assert.equal(await repo.readText("memory.md"), "# Memory\n");
  });

  test("without a reason, the rejection is an AbortError", async () => {
    const { repo } = await openRepo();
    await assert.rejects(repo.readFiles({ signal: AbortSignal.abort() }), { name: "AbortError" });
  });

  test("aborting mid-GC stops before the sweep deletes anything", async () => {
    const { adapter, store, now } = await storeWithGarbage();
    const controller = new AbortController();
    adapter.resetCounters();
    await assert.rejects(
      store.gc({
        now,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === "mark") controller.abort();
        },
      }),
      { name: "AbortError" },
    );
    assert.equal(adapter.counters.delete, 0);
    // Nothing was lost: a later GC still finds all of it.
    assert.ok((await store.gc({ now })).deleted > 0);
  });

  test("an abort wakes a commit waiting for a busy lock; the branch is untouched", async (t) => {
    const adapter = new MemoryAdapter();
    const store = await Store.open({ adapter });
    await store.createRepo("r", { author, files: { "m.md": "0\n" } });
    const repo = store.repo("r");
    const head = await repo.head();
    // Someone else holds the branch's lock for ten minutes: the commit queues for it.
    await adapter.acquire("locks/r/main", 600_000);
    const controller = new AbortController();
    const acquire = adapter.acquire.bind(adapter);
    adapter.acquire = async (name, ttlMs) => {
      // Abort once the driver sleeps through the engine's first wait.
      setImmediate(() => controller.abort());
      return acquire(name, ttlMs);
    };
    // From here timers never fire: the test only ends if the abort cuts the wait short.
    t.mock.timers.enable({ apis: ["setTimeout"] });
    await assert.rejects(
      repo.commit({ author, message: "m", files: { "m.md": "1\n" }, lockTtlMs: 600_000, signal: controller.signal }),
      { name: "AbortError" },
    );
    t.mock.timers.reset();
    assert.equal(adapter.counters.acquire, 2, "our first try, and nothing after the wait");
    assert.equal(await repo.head(), head);
    assert.equal(await repo.readText("m.md"), "0\n");
  });

  test("a lock held by an aborted commit is released, not left to its TTL", async () => {
    const adapter = new FaultyAdapter();
    const store = await Store.open({ adapter });
    await store.createRepo("r", { author, files: { "m.md": "0\n" } });
    const repo = store.repo("r");
    const controller = new AbortController();
    // The swap is reported lost with the ref unchanged, so the engine swaps again; the
    // abort comes first.
    adapter.failNext("casRef", "lose");
    adapter.beforeCas = async () => {
      adapter.beforeCas = undefined;
      controller.abort();
    };
    await assert.rejects(
      repo.commit({ author, message: "m", files: { "m.md": "1\n" }, lockTtlMs: 600_000, signal: controller.signal }),
      { name: "AbortError" },
    );
    assert.equal(adapter.counters.release, 1);
    // With the lock free, the next locked commit lands without waiting.
    const out = await repo.commit({ author, message: "m", files: { "m.md": "2\n" }, lockTtlMs: 600_000 });
    assert.equal(out.attempts, 1);
  });

  test("an abort after a locked commit's compare-and-swap won still releases the lock and returns the commit", async () => {
    const controller = new AbortController();
    let armed = false;
    class AbortAfterCas extends MemoryAdapter {
      async casRef(key, expected, value) {
        const result = await super.casRef(key, expected, value);
        if (armed) controller.abort();
        return result;
      }
    }
    const adapter = new AbortAfterCas();
    const store = await Store.open({ adapter });
    await store.createRepo("r", { author, files: { "m.md": "0\n" } });
    const repo = store.repo("r");
    armed = true;
    const out = await repo.commit({
      author,
      message: "m",
      files: { "m.md": "1\n" },
      lockTtlMs: 600_000,
      signal: controller.signal,
    });
    assert.equal(out.created, true);
    assert.equal(await repo.head(), out.commit);
    assert.equal(adapter.counters.release, 1);
  });

  test("a signal that never aborts changes nothing", async () => {
    const { repo } = await openRepo();
    const { signal } = new AbortController();
    const out = await repo.commit({ author, message: "m", files: { "memory.md": "# Memory\nmore\n" }, signal });
    assert.equal(out.created, true);
    assert.equal((await repo.log({ signal })).commits.length, 2);
  });
});

describe("bad controls", () => {
  test("a signal that is not an AbortSignal or a callback that is not a function is refused, nothing read", async () => {
    const { adapter, store, repo } = await openRepo();
    adapter.resetCounters();
    await rejectsWith(store.gc({ signal: { aborted: "no" } }), "INVALID_INPUT");
    await rejectsWith(store.gc({ onProgress: "loud" }), "INVALID_INPUT", "loud");
    await rejectsWith(store.footprint({ signal: null }), "INVALID_INPUT", null);
    await rejectsWith(store.footprint(42), "INVALID_INPUT", 42);
    await rejectsWith(repo.commit({ author, message: "m", files: { "x.md": "x" }, signal: 1 }), "INVALID_INPUT", 1);
    await rejectsWith(repo.readFiles({ signal: {} }), "INVALID_INPUT");
    assert.equal(adapter.counters.requests, 0);
  });
});
