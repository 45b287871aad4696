// Shared by the API tests: a store on the in-memory adapter, a fixed author, and
// adapters that misbehave on purpose.
import assert from "node:assert/strict";

import { MemoryAdapter } from "../dist/adapters/memory.js";
import { SnapgitError, Store } from "../dist/node.js";

export { MemoryAdapter, SnapgitError, Store };

export const author = { name: "Agent", email: "agent@example.com", date: new Date("2024-05-01T12:00:00Z") };

/** An author `n` seconds after `author`. */
export function at(n) {
  return { ...author, date: author.date.getTime() / 1000 + n };
}

/** A store on a fresh (or the given) memory adapter, with a repo `r` holding `files`. */
export async function openRepo(files = { "memory.md": "# Memory\n" }, options = {}) {
  const adapter = options.adapter ?? new MemoryAdapter();
  const store = await Store.open({ adapter, ...options.open });
  await store.createRepo("r", { author, files });
  return { adapter, store, repo: store.repo("r") };
}

/** Assert that `promise` rejects with a SnapgitError of `code` (and `value`, if given). */
export async function rejectsWith(promise, code, value) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof SnapgitError, `expected a SnapgitError, got ${error?.name}: ${error?.message}`);
    assert.equal(error.code, code, error.message);
    if (value !== undefined) assert.deepEqual(error.value, value);
    return true;
  });
}

/**
 * A memory adapter whose calls can be made to fail: `failNext(method, how)` makes the
 * next call of `method` throw (`how: "throw"`), or for `getMany` return corrupt bytes
 * (`"corrupt"`) or a malformed answer (`"shape"`), or for `casRef` report a loss while
 * the ref is unchanged (`"lose"`). `beforeCas`, if set, runs before every `casRef`
 * (a competing writer can commit there, so the swap loses for real).
 */
export class FaultyAdapter extends MemoryAdapter {
  faults = [];
  beforeCas = undefined;

  failNext(method, how = "throw", times = 1) {
    for (let i = 0; i < times; i++) this.faults.push({ method, how });
  }

  #take(method) {
    const index = this.faults.findIndex((f) => f.method === method);
    return index < 0 ? undefined : this.faults.splice(index, 1)[0].how;
  }

  async getMany(keys) {
    const how = this.#take("getMany");
    if (how === "throw") throw new Error("disk on fire");
    const out = await super.getMany(keys);
    if (how === "corrupt") return out.map((bytes) => (bytes ? Uint8Array.from(bytes.map((b, i) => (i > 4 ? b ^ 1 : b))) : bytes));
    if (how === "shape") return out.map((bytes) => (bytes ? Array.from(bytes) : bytes));
    return out;
  }

  async putMany(objects) {
    if (this.#take("putMany") === "throw") throw new Error("quota exceeded");
    return super.putMany(objects);
  }

  async readRef(key) {
    if (this.#take("readRef") === "throw") throw new Error("network down");
    return super.readRef(key);
  }

  async casRef(key, expected, value) {
    const how = this.#take("casRef");
    if (this.beforeCas) await this.beforeCas(key);
    if (how === "throw") throw new Error("precondition service down");
    if (how === "lose") return { won: false, current: await super.readRef(key) };
    return super.casRef(key, expected, value);
  }
}
