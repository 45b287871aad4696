import assert from "node:assert/strict";
import { test } from "node:test";

import { IDBFactory, IDBKeyRange } from "fake-indexeddb";

import { IndexedDbAdapter } from "../dist/adapters/indexeddb.js";
import { conformance, counter, looseObject, refKey } from "./conformance.mjs";

// Each client is its own connection to the same database, as two tabs would be.
conformance("indexeddb", {
  setup: async () => {
    const indexedDB = new IDBFactory();
    const name = `store-${Math.random().toString(36).slice(2)}`;
    const open = [];
    return {
      open: async () => {
        const adapter = await IndexedDbAdapter.open(name, { indexedDB, IDBKeyRange });
        open.push(adapter);
        return adapter;
      },
      cleanup: async () => open.forEach((adapter) => adapter.close()),
    };
  },
  mtimeStepMs: 5,
  lockExpiryMs: 20,
});

test("indexeddb: data outlives the connection", async () => {
  const indexedDB = new IDBFactory();
  const first = await IndexedDbAdapter.open("durable", { indexedDB, IDBKeyRange });
  const object = looseObject("blob", "kept\n");
  await first.putMany([object]);
  await first.casRef(refKey("r", "main"), null, counter(1));
  first.close();
  const second = await IndexedDbAdapter.open("durable", { indexedDB, IDBKeyRange });
  assert.deepEqual(await second.getMany([object.key]), [object.bytes]);
  assert.equal((await second.readRef(refKey("r", "main"))).value, counter(1));
  second.close();
});

test("indexeddb: uses the global IndexedDB when none is given", async () => {
  const saved = { indexedDB: globalThis.indexedDB, IDBKeyRange: globalThis.IDBKeyRange };
  globalThis.indexedDB = new IDBFactory();
  globalThis.IDBKeyRange = IDBKeyRange;
  try {
    const adapter = await IndexedDbAdapter.open("global");
    assert.equal((await adapter.casRef(refKey("r", "main"), null, counter(1))).won, true);
    adapter.close();
  } finally {
    Object.assign(globalThis, saved);
  }
});
