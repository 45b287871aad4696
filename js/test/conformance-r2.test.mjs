import assert from "node:assert/strict";
import { test } from "node:test";

import { R2Adapter } from "../dist/adapters/r2.js";
import { conformance, counter, looseObject, refKey } from "./conformance.mjs";
import { FakeR2Bucket, testConditional } from "./fake-r2.mjs";

function r2Store(options) {
  return async () => {
    const bucket = new FakeR2Bucket();
    return { open: async () => new R2Adapter(bucket, options) };
  };
}

// The binding has no conditional delete: deleting a ref is refused by default.
conformance("r2", { setup: r2Store({ prefix: "stores/one" }), refDelete: "refuses", mtimeStepMs: 5, lockExpiryMs: 20 });
conformance("r2 with unconditional ref deletes", {
  setup: r2Store({ unconditionalRefDelete: true }),
  mtimeStepMs: 5,
  lockExpiryMs: 20,
  raceIncrements: 2,
});

test("fake R2 follows the documented condition rules", () => {
  const stored = { etag: "abc", uploaded: new Date("2024-01-01T00:00:00.500Z") };
  const past = new Date(stored.uploaded.getTime() - 30_000);
  const future = new Date(stored.uploaded.getTime() + 30_000);
  assert.equal(testConditional({ etagDoesNotMatch: "*" }, undefined), true);
  assert.equal(testConditional({ etagDoesNotMatch: "*" }, stored), false);
  assert.equal(testConditional({ etagMatches: "*" }, stored), true);
  assert.equal(testConditional({ etagMatches: "*" }, undefined), false);
  assert.equal(testConditional({ etagMatches: "abc" }, stored), true);
  assert.equal(testConditional({ etagMatches: "abd" }, stored), false);
  assert.equal(testConditional({ etagMatches: "abc" }, undefined), false);
  assert.equal(testConditional({ uploadedBefore: past }, stored), false);
  assert.equal(testConditional({ etagMatches: "abc", uploadedBefore: past }, stored), true);
  assert.equal(testConditional({ etagDoesNotMatch: "x", uploadedAfter: future }, stored), true);
  assert.equal(testConditional({ uploadedAfter: past }, undefined), false);
  assert.throws(() => testConditional({ etagMatches: '"abc"' }, stored), TypeError);
});

test("r2: the store stays under its prefix", async () => {
  const bucket = new FakeR2Bucket();
  const one = new R2Adapter(bucket, { prefix: "tenant/one/" });
  const two = new R2Adapter(bucket, { prefix: "tenant/two" });
  const object = looseObject("blob", "mine\n");
  await one.putMany([object]);
  await one.casRef(refKey("r", "main"), null, counter(1));
  assert.deepEqual(await two.getMany([object.key]), [null]);
  assert.equal(await two.readRef(refKey("r", "main")), null);
  assert.deepEqual((await bucket.list({ prefix: "tenant/one/" })).objects.map((o) => o.key).sort(), [
    `tenant/one/${object.key}`,
    `tenant/one/${refKey("r", "main")}`,
  ]);
  assert.deepEqual((await one.list("")).map((item) => item.key).sort(), [object.key, refKey("r", "main")].sort());
});

test("r2: lists past one page and deletes past one batch", async () => {
  const bucket = new FakeR2Bucket();
  const adapter = new R2Adapter(bucket);
  const objects = Array.from({ length: 2100 }, (_, i) => looseObject("blob", `many ${i}\n`));
  await adapter.putMany(objects);
  assert.equal((await adapter.list("objects/")).length, 2100);
  assert.ok(bucket.calls.list >= 3);
  await adapter.delete(objects.map((o) => o.key));
  assert.equal((await adapter.list("objects/")).length, 0);
});

test("r2: a binding that throws becomes a StorageError", async () => {
  const bucket = new FakeR2Bucket();
  bucket.get = async () => {
    throw new Error("get: We encountered an internal error. (10001)");
  };
  const adapter = new R2Adapter(bucket);
  await assert.rejects(adapter.readRef(refKey("r", "main")), (error) => error.code === "STORAGE" && /10001/.test(error.message));
});
