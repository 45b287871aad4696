// The storage adapter conformance suite: one set of tests every adapter must pass.
//
//   conformance("name", {
//     setup: async () => ({ open: async () => adapter, cleanup: async () => {} }),
//     ...features,
//   });
//
// `setup` makes a fresh, empty store for one test; `open` returns a client of that store
// (a new adapter instance where the backend allows several, so races are between clients,
// not just between calls). Features:
//   locks         the adapter implements acquire/release (default true)
//   refDelete     "cas" (default): casRef(key, expected, null) deletes conditionally;
//                 "refuses": it throws a StorageError and leaves the ref alone
//   lockExpiryMs  how long after its ttl a lock is surely seen as expired (default 100)
//   mtimeStepMs   a wait after which a refreshed modification time is surely later (default 1100)
//   raceIncrements  increments per writer in the 16-writer race (default 4)
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { deflateSync } from "node:zlib";

import { StorageError } from "../dist/node.js";

const encoder = new TextEncoder();

/** A loose git object: its key (`objects/ab/cdef...`), zlib bytes and id. */
export function looseObject(type, content) {
  const body = typeof content === "string" ? encoder.encode(content) : content;
  const raw = Buffer.concat([Buffer.from(`${type} ${body.length}\0`), Buffer.from(body)]);
  const id = createHash("sha1").update(raw).digest("hex");
  return { id, key: `objects/${id.slice(0, 2)}/${id.slice(2)}`, bytes: new Uint8Array(deflateSync(raw)) };
}

/** A 40-hex ref value standing for the number `n` (a counter, in the races). */
export function counter(n) {
  return n.toString(16).padStart(40, "0");
}

export function refKey(repo, branch) {
  return `refs/namespaces/${repo}/refs/heads/${branch}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const byKey = (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const keysOf = (listed) => listed.map((item) => item.key).sort();

async function rejectsStorage(promise, pattern) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${error?.name}: ${error?.message}`);
    assert.equal(error.code, "STORAGE");
    if (pattern) assert.match(error.message, pattern);
    return true;
  });
}

export function conformance(name, spec) {
  const features = {
    locks: true,
    refDelete: "cas",
    lockExpiryMs: 100,
    mtimeStepMs: 1100,
    raceIncrements: 4,
    ...spec,
  };

  /** Runs `fn(open)` on a fresh store, cleaning up afterwards. */
  async function withStore(fn) {
    const store = await features.setup();
    try {
      await fn(() => store.open());
    } finally {
      await store.cleanup?.();
    }
  }

  const it = (title, fn) => test(title, () => withStore(fn));

  describe(`${name}: swap of shallow and config`, () => {
    const bytes = (text) => encoder.encode(text);
    const read = async (a) => (await a.getMany(["shallow"]))[0];

    it("replaces only from exactly what the file holds, and removes it", async (open) => {
      const a = await open();
      assert.equal(await a.swap("shallow", bytes("x\n"), bytes("y\n")), false);
      assert.equal(await read(a), null, "a lost swap writes nothing");
      assert.equal(await a.swap("shallow", null, bytes("a\n")), true);
      assert.equal(await a.swap("shallow", null, bytes("b\n")), false, "it exists now");
      assert.equal(await a.swap("shallow", bytes("a"), bytes("b\n")), false, "bytes, not a prefix");
      assert.deepEqual(await read(a), bytes("a\n"));
      assert.equal(await a.swap("shallow", bytes("a\n"), bytes("a\nb\n")), true);
      assert.deepEqual(await read(a), bytes("a\nb\n"));
      if (features.refDelete === "cas") {
        assert.equal(await a.swap("shallow", bytes("a\nb\n"), null), true);
        assert.equal(await read(a), null, "a swap to nothing removes it");
      } else {
        await rejectsStorage(a.swap("shallow", bytes("a\nb\n"), null), /remove/);
        assert.deepEqual(await read(a), bytes("a\nb\n"));
      }
    });

    it("refuses every other key", async (open) => {
      const a = await open();
      for (const key of ["HEAD", refKey("r", "main"), "objects/pack/pack-1.promisor"]) {
        await rejectsStorage(a.swap(key, null, bytes("z")));
      }
    });

    it("four clients each add their lines by read and swap: none is lost", async (open) => {
      const rounds = 3;
      const clients = await Promise.all([open(), open(), open(), open()]);
      await Promise.all(
        clients.map(async (a, writer) => {
          for (let round = 0; round < rounds; round++) {
            for (;;) {
              const current = await read(a);
              const line = bytes(`${writer} ${round}\n`);
              const next = new Uint8Array([...(current ?? []), ...line]);
              if (await a.swap("shallow", current, next)) break;
            }
          }
        }),
      );
      const end = new TextDecoder().decode(await read(clients[0]));
      assert.equal(end.split("\n").filter(Boolean).length, clients.length * rounds);
    });
  });

  describe(`${name}: objects`, () => {
    it("getMany answers null for absent keys, in order", async (open) => {
      const a = await open();
      assert.deepEqual(await a.getMany([]), []);
      const one = looseObject("blob", "one\n");
      await a.putMany([one]);
      const got = await a.getMany([looseObject("blob", "absent").key, one.key, looseObject("blob", "x").key]);
      assert.equal(got.length, 3);
      assert.equal(got[0], null);
      assert.deepEqual(got[1], one.bytes);
      assert.equal(got[2], null);
    });

    it("getRanges, where the adapter has it, answers the bytes of each range, null for absent keys", async (open) => {
      const a = await open();
      if (!a.getRanges) return;
      const all = new Uint8Array(3000).map((_, i) => (i * 7) % 256);
      const pack = { key: "objects/pack/pack-0001.pack", bytes: all };
      await a.putMany([pack]);
      const got = await a.getRanges([
        { key: pack.key, start: 0, len: 12 },
        { key: pack.key, start: 1000, len: 1500 },
        { key: "objects/pack/pack-absent.pack", start: 0, len: 10 },
        { key: pack.key, start: 2990, len: 100 },
        { key: pack.key, start: 0, len: 3000 },
      ]);
      assert.deepEqual(got[0], all.slice(0, 12));
      assert.deepEqual(got[1], all.slice(1000, 2500));
      assert.equal(got[2], null);
      assert.deepEqual(got[3], all.slice(2990), "a range past the end gives what there is");
      assert.deepEqual(got[4], all);
    });

    it("putMany stores bytes exactly, binary and empty included", async (open) => {
      const a = await open();
      const all = new Uint8Array(1024).map((_, i) => i % 256);
      const objects = [
        looseObject("blob", "hello\n"),
        { key: "objects/pack/pack-0000.pack", bytes: all },
        { key: "objects/info/packs", bytes: new Uint8Array(0) },
      ];
      await a.putMany(objects);
      await a.putMany([]);
      const got = await a.getMany(objects.map((o) => o.key));
      objects.forEach((o, i) => assert.deepEqual(got[i], o.bytes, o.key));
      assert.ok(got[0] instanceof Uint8Array);
    });

    it("many objects in one call, read back from another client", async (open) => {
      const a = await open();
      const objects = Array.from({ length: 40 }, (_, i) => looseObject("blob", `file ${i}\n`));
      await a.putMany(objects);
      const b = await open();
      const got = await b.getMany(objects.map((o) => o.key));
      objects.forEach((o, i) => assert.deepEqual(got[i], o.bytes));
    });

    it("objects are immutable: a second put of a key keeps the first bytes", async (open) => {
      const a = await open();
      const key = looseObject("blob", "immutable\n").key;
      await a.putMany([{ key, bytes: encoder.encode("first") }]);
      await a.putMany([{ key, bytes: encoder.encode("second") }]);
      assert.deepEqual(await a.getMany([key]), [encoder.encode("first")]);
    });

    it("stored bytes do not change when the caller's arrays do", async (open) => {
      const a = await open();
      const bytes = encoder.encode("stable");
      const key = looseObject("blob", "stable\n").key;
      await a.putMany([{ key, bytes }]);
      bytes[0] = 0;
      const [got] = await a.getMany([key]);
      assert.deepEqual(got, encoder.encode("stable"));
      got[0] = 0;
      assert.deepEqual(await a.getMany([key]), [encoder.encode("stable")]);
    });

    it("putting an existing object refreshes its modification time", async (open) => {
      const a = await open();
      const object = looseObject("blob", "old\n");
      await a.putMany([object]);
      const [before] = await a.list(object.key);
      await sleep(features.mtimeStepMs);
      await a.putMany([object]);
      const [after] = await a.list(object.key);
      assert.ok(after.modifiedMs > before.modifiedMs, `${after.modifiedMs} should be after ${before.modifiedMs}`);
    });

    it("concurrent puts of the same objects all succeed", async (open) => {
      const clients = await Promise.all(Array.from({ length: 8 }, () => open()));
      const objects = Array.from({ length: 5 }, (_, i) => looseObject("blob", `shared ${i}\n`));
      await Promise.all(clients.map((client) => client.putMany(objects)));
      const got = await clients[0].getMany(objects.map((o) => o.key));
      objects.forEach((o, i) => assert.deepEqual(got[i], o.bytes));
    });
  });

  describe(`${name}: list and delete`, () => {
    it("list returns every key under a prefix with size and time", async (open) => {
      const a = await open();
      const start = Date.now();
      const objects = Array.from({ length: 25 }, (_, i) => looseObject("blob", `listed ${i}\n`));
      await a.putMany(objects);
      await a.casRef(refKey("r", "main"), null, counter(1));
      const listed = await a.list("objects/");
      assert.deepEqual(keysOf(listed), objects.map((o) => o.key).sort());
      for (const item of listed) {
        const object = objects.find((o) => o.key === item.key);
        assert.equal(item.size, object.bytes.length, item.key);
        assert.ok(Number.isFinite(item.modifiedMs));
        assert.ok(Math.abs(item.modifiedMs - start) < 10 * 60_000, `modifiedMs ${item.modifiedMs} is not about now`);
      }
      assert.deepEqual(keysOf(await a.list("refs/")), [refKey("r", "main")]);
      const [ref] = await a.list("refs/");
      assert.equal(ref.size, 41);
    });

    it("a prefix is a string prefix, not a folder", async (open) => {
      const a = await open();
      await a.casRef(refKey("a", "main"), null, counter(1));
      await a.casRef(refKey("ab", "main"), null, counter(2));
      await a.casRef(refKey("b", "main"), null, counter(3));
      assert.deepEqual(keysOf(await a.list("refs/namespaces/a")), [refKey("a", "main"), refKey("ab", "main")]);
      assert.deepEqual(keysOf(await a.list("refs/namespaces/a/")), [refKey("a", "main")]);
      assert.deepEqual(await a.list("refs/namespaces/c/"), []);
      assert.deepEqual(await a.list("objects/zz/"), []);
      assert.deepEqual(keysOf(await a.list(refKey("b", "main"))), [refKey("b", "main")]);
    });

    it("keys with XML, URL and non-ASCII characters", async (open) => {
      const a = await open();
      const key = refKey("tëst&co<1>", `fix+1%2'"=!$()@`);
      await a.casRef(key, null, counter(7));
      assert.equal((await a.readRef(key)).value, counter(7));
      assert.deepEqual(keysOf(await a.list("refs/namespaces/tëst&co")), [key]);
      const object = { key: "objects/info/a&b<c>+d%20é", bytes: encoder.encode("x") };
      await a.putMany([object]);
      assert.deepEqual(await a.getMany([object.key]), [object.bytes]);
      assert.deepEqual(keysOf(await a.list("objects/info/a&b")), [object.key]);
      await a.delete([object.key]);
      assert.deepEqual(await a.getMany([object.key]), [null]);
    });

    it("delete removes the keys, ignores absent ones, leaves the rest", async (open) => {
      const a = await open();
      const objects = Array.from({ length: 25 }, (_, i) => looseObject("blob", `doomed ${i}\n`));
      await a.putMany(objects);
      const doomed = objects.slice(0, 20).map((o) => o.key);
      await a.delete([...doomed, looseObject("blob", "never written").key]);
      await a.delete([]);
      assert.deepEqual(keysOf(await a.list("objects/")), objects.slice(20).map((o) => o.key).sort());
      assert.deepEqual(await a.getMany(doomed.slice(0, 2)), [null, null]);
      await a.delete(doomed);
    });

    it("a deleted object can be written again", async (open) => {
      const a = await open();
      const object = looseObject("blob", "phoenix\n");
      await a.putMany([object]);
      await a.delete([object.key]);
      await a.putMany([object]);
      assert.deepEqual(await a.getMany([object.key]), [object.bytes]);
    });
  });

  describe(`${name}: refs`, () => {
    const key = refKey("repo", "main");

    it("an absent ref reads as null", async (open) => {
      const a = await open();
      assert.equal(await a.readRef(key), null);
    });

    it("create if absent: the first create wins, the second loses and sees the first", async (open) => {
      const a = await open();
      const created = await a.casRef(key, null, counter(1));
      assert.equal(created.won, true);
      assert.equal(typeof created.version, "string");
      const read = await a.readRef(key);
      assert.deepEqual(read, { value: counter(1), version: created.version });
      const again = await a.casRef(key, null, counter(2));
      assert.deepEqual(again, { won: false, current: read });
      assert.deepEqual(await a.readRef(key), read);
    });

    it("a ref reads back in git's format through getMany", async (open) => {
      const a = await open();
      await a.casRef(key, null, counter(1));
      const [bytes] = await a.getMany([key]);
      assert.equal(new TextDecoder().decode(bytes), `${counter(1)}\n`);
    });

    it("update with the current state wins; with a stale one loses and reports the current", async (open) => {
      const a = await open();
      const b = await open();
      await a.casRef(key, null, counter(1));
      const first = await a.readRef(key);
      const updated = await a.casRef(key, first, counter(2));
      assert.equal(updated.won, true);
      const second = await b.readRef(key);
      assert.deepEqual(second, { value: counter(2), version: updated.version });
      const stale = await b.casRef(key, first, counter(3));
      assert.deepEqual(stale, { won: false, current: second });
      assert.deepEqual(await a.readRef(key), second);
      const next = await b.casRef(key, stale.current, counter(3));
      assert.equal(next.won, true);
      assert.equal((await a.readRef(key)).value, counter(3));
    });

    it("the version a win returns is the one to compare with next", async (open) => {
      const a = await open();
      let state = null;
      for (let i = 1; i <= 5; i++) {
        const result = await a.casRef(key, state, counter(i));
        assert.equal(result.won, true, `step ${i}`);
        state = { value: counter(i), version: result.version };
      }
      assert.deepEqual(await a.readRef(key), state);
    });

    it("update of an absent ref loses and reports null", async (open) => {
      const a = await open();
      const result = await a.casRef(key, { value: counter(1), version: "1" }, counter(2));
      assert.deepEqual(result, { won: false, current: null });
      assert.equal(await a.readRef(key), null);
    });

    if (features.refDelete === "cas") {
      it("delete via compare-and-swap; a stale delete loses; delete of an absent ref loses", async (open) => {
        const a = await open();
        await a.casRef(key, null, counter(1));
        const first = await a.readRef(key);
        await a.casRef(key, first, counter(2));
        const second = await a.readRef(key);
        assert.deepEqual(await a.casRef(key, first, null), { won: false, current: second });
        assert.deepEqual(await a.readRef(key), second);
        const deleted = await a.casRef(key, second, null);
        assert.equal(deleted.won, true);
        assert.equal(await a.readRef(key), null);
        assert.deepEqual(await a.casRef(key, second, null), { won: false, current: null });
        assert.deepEqual(keysOf(await a.list("refs/")), []);
        const recreated = await a.casRef(key, null, counter(3));
        assert.equal(recreated.won, true);
        assert.equal((await a.readRef(key)).value, counter(3));
      });
    } else {
      it("delete via compare-and-swap is refused and leaves the ref", async (open) => {
        const a = await open();
        await a.casRef(key, null, counter(1));
        const first = await a.readRef(key);
        await rejectsStorage(a.casRef(key, first, null), /delete/);
        assert.deepEqual(await a.readRef(key), first);
      });
    }

    it("refs and objects do not interfere", async (open) => {
      const a = await open();
      const object = looseObject("blob", "neighbour\n");
      await a.putMany([object]);
      await a.casRef(key, null, counter(1));
      await a.casRef(refKey("repo", "dev"), null, counter(2));
      assert.deepEqual(keysOf(await a.list("objects/")), [object.key]);
      assert.deepEqual(keysOf(await a.list("refs/")), [refKey("repo", "dev"), key]);
      assert.equal((await a.readRef(refKey("repo", "dev"))).value, counter(2));
    });

    it("SHA-256 ids are accepted as values", async (open) => {
      const a = await open();
      const value = "ab".repeat(32);
      assert.equal((await a.casRef(key, null, value)).won, true);
      assert.equal((await a.readRef(key)).value, value);
    });

    it("16 clients creating the same ref at once: exactly one wins", async (open) => {
      const clients = await Promise.all(Array.from({ length: 16 }, () => open()));
      const results = await Promise.all(clients.map((client, i) => client.casRef(key, null, counter(100 + i))));
      const winners = results.flatMap((result, i) => (result.won ? [i] : []));
      assert.equal(winners.length, 1, `winners: ${winners}`);
      const final = await clients[0].readRef(key);
      assert.equal(final.value, counter(100 + winners[0]));
      for (const result of results) {
        if (!result.won) assert.equal(result.current?.value, final.value);
      }
    });

    it("16 concurrent writers: one winner per round, no update lost", async (open) => {
      const writers = 16;
      const each = features.raceIncrements;
      const clients = await Promise.all(Array.from({ length: writers }, () => open()));
      assert.equal((await clients[0].casRef(key, null, counter(0))).won, true);
      const winnerFrom = new Map();
      let lost = 0;
      await Promise.all(
        clients.map(async (client, writer) => {
          for (let done = 0; done < each; ) {
            const current = await client.readRef(key);
            const n = parseInt(current.value, 16);
            const result = await client.casRef(key, current, counter(n + 1));
            if (result.won) {
              assert.ok(!winnerFrom.has(n), `writers ${winnerFrom.get(n)} and ${writer} both won from ${n}`);
              winnerFrom.set(n, writer);
              done++;
            } else {
              lost++;
              assert.notDeepEqual(result.current, current, "a lost compare-and-swap reports a changed state");
            }
          }
        }),
      );
      const total = writers * each;
      assert.equal(parseInt((await clients[0].readRef(key)).value, 16), total);
      assert.deepEqual([...winnerFrom.keys()].sort((x, y) => x - y), Array.from({ length: total }, (_, i) => i));
      assert.ok(lost > 0, "the writers should have raced");
    });
  });

  if (features.locks) {
    describe(`${name}: locks`, () => {
      it("one holder at a time; release needs the holder's token", async (open) => {
        const a = await open();
        const b = await open();
        const token = await a.acquire("gc", 60_000);
        assert.equal(typeof token, "string");
        assert.equal(await b.acquire("gc", 60_000), null);
        const other = await b.acquire("repo/agent-1", 60_000);
        assert.equal(typeof other, "string");
        await b.release("gc", "not-the-token");
        assert.equal(await b.acquire("gc", 60_000), null);
        await a.release("gc", token);
        const next = await b.acquire("gc", 60_000);
        assert.equal(typeof next, "string");
        assert.notEqual(next, token);
        await a.release("gc", token);
        assert.equal(await a.acquire("gc", 60_000), null, "a stale token must not release the new holder");
        await b.release("gc", next);
        await b.release("repo/agent-1", other);
      });

      it("an expired lock can be taken", async (open) => {
        const a = await open();
        const b = await open();
        const token = await a.acquire("expiring", 50);
        assert.equal(typeof token, "string");
        await sleep(50 + features.lockExpiryMs);
        const taken = await b.acquire("expiring", 60_000);
        assert.equal(typeof taken, "string");
        await a.release("expiring", token);
        assert.equal(await a.acquire("expiring", 60_000), null, "the old holder's release must not free it");
      });

      it("16 clients acquiring at once: exactly one gets it", async (open) => {
        const clients = await Promise.all(Array.from({ length: 16 }, () => open()));
        const tokens = await Promise.all(clients.map((client) => client.acquire("contended", 60_000)));
        assert.equal(tokens.filter((token) => token !== null).length, 1);
      });

      it("bad lock arguments are refused", async (open) => {
        const a = await open();
        await rejectsStorage(a.acquire("", 1000));
        await rejectsStorage(a.acquire("../escape", 1000));
        await rejectsStorage(a.acquire("ok", 0));
      });
    });
  }

  describe(`${name}: bad input`, () => {
    it("keys that could escape the store, or are not keys, are refused", async (open) => {
      const a = await open();
      for (const key of ["", "../x", "objects/../../x", "/abs", "a//b", "a/./b", "trailing/", "back\\slash", "nul\0"]) {
        await rejectsStorage(a.getMany([key]), undefined);
        await rejectsStorage(a.putMany([{ key, bytes: new Uint8Array(1) }]), undefined);
        await rejectsStorage(a.readRef(key), undefined);
        await rejectsStorage(a.delete([key]), undefined);
      }
      await rejectsStorage(a.list("../"));
    });

    it("ref values that are not object ids are refused, and nothing is written", async (open) => {
      const a = await open();
      const key = refKey("repo", "main");
      for (const value of ["", "xyz", "AB".repeat(20), `${counter(1)}\n`, "ref: refs/heads/main", counter(1).slice(1)]) {
        await rejectsStorage(a.casRef(key, null, value));
      }
      assert.equal(await a.readRef(key), null);
      await a.casRef(key, null, counter(1));
      await rejectsStorage(a.casRef(key, { value: "nope", version: "1" }, counter(2)));
      assert.equal((await a.readRef(key)).value, counter(1));
    });

    it("bytes must be a Uint8Array", async (open) => {
      const a = await open();
      await rejectsStorage(a.putMany([{ key: looseObject("blob", "s").key, bytes: "a string" }]));
    });
  });
}

export { byKey, rejectsStorage, sleep };
