import assert from "node:assert/strict";
import { test } from "node:test";

import { MemoryAdapter } from "../dist/adapters/memory.js";
import { conformance, counter, looseObject, refKey } from "./conformance.mjs";

// One adapter is one store: every "client" of a store is the same instance.
conformance("memory", {
  setup: async () => {
    const adapter = new MemoryAdapter();
    return { open: async () => adapter };
  },
  mtimeStepMs: 5,
  lockExpiryMs: 20,
});

conformance("memory with latency", {
  setup: async () => {
    const adapter = new MemoryAdapter({ latencyMs: 2 });
    return { open: async () => adapter };
  },
  mtimeStepMs: 5,
  lockExpiryMs: 20,
  raceIncrements: 2,
});

test("memory: counters count calls and keys; latency applies once per call", async () => {
  const adapter = new MemoryAdapter({ latencyMs: 30 });
  const objects = Array.from({ length: 10 }, (_, i) => looseObject("blob", `${i}`));
  const start = performance.now();
  await adapter.putMany(objects);
  await adapter.getMany(objects.map((o) => o.key));
  const elapsed = performance.now() - start;
  // Two calls, two rounds: far less than one round per key.
  assert.ok(elapsed >= 55 && elapsed < 30 * 10, `elapsed ${elapsed} ms`);
  const key = refKey("r", "main");
  adapter.latencyMs = 0;
  await adapter.casRef(key, null, counter(1));
  await adapter.casRef(key, null, counter(2));
  assert.deepEqual(
    { ...adapter.counters },
    {
      requests: 4,
      getMany: 1,
      putMany: 1,
      list: 0,
      delete: 0,
      readRef: 0,
      casRef: 2,
      swap: 0,
      acquire: 0,
      release: 0,
      keysRead: 10,
      keysWritten: 10,
      casLost: 1,
    },
  );
  adapter.resetCounters();
  assert.equal(adapter.counters.requests, 0);
});

test("memory: swap replaces shallow and config only from exactly what they hold", async () => {
  const adapter = new MemoryAdapter();
  const bytes = (text) => new TextEncoder().encode(text);
  const read = async () => (await adapter.getMany(["shallow"]))[0];
  assert.equal(await adapter.swap("shallow", bytes("x\n"), bytes("y\n")), false);
  assert.equal(await read(), null);
  assert.equal(await adapter.swap("shallow", null, bytes("a\n")), true);
  assert.equal(await adapter.swap("shallow", null, bytes("b\n")), false, "it exists now");
  assert.equal(await adapter.swap("shallow", bytes("a"), bytes("b\n")), false, "bytes, not a prefix");
  assert.equal(await adapter.swap("shallow", bytes("a\n"), bytes("a\nb\n")), true);
  assert.deepEqual(await read(), bytes("a\nb\n"));
  assert.equal(await adapter.swap("shallow", bytes("a\nb\n"), null), true);
  assert.equal(await read(), null, "a swap to nothing removes it");
  assert.equal(adapter.counters.swap, 6);
});

test("memory: versions are never reused, even after delete and re-create", async () => {
  const adapter = new MemoryAdapter();
  const key = refKey("r", "main");
  const first = await adapter.casRef(key, null, counter(1));
  await adapter.casRef(key, { value: counter(1), version: first.version }, null);
  const second = await adapter.casRef(key, null, counter(1));
  assert.notEqual(second.version, first.version);
  const stale = await adapter.casRef(key, { value: counter(1), version: first.version }, counter(2));
  assert.equal(stale.won, false);
});
