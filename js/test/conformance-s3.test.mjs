// The S3 adapter against a real S3-compatible server (ministack, started by
// js/scripts/test-adapters.sh, or by js/scripts/s3-server.sh and the variables it writes),
// then against a small fake server that misbehaves on purpose.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";

import { S3Adapter, S3Error } from "../dist/adapters/s3.js";
// md5 is internal: the per-module build (npm run build) has it.
import { md5 } from "../build/adapters/md5.js";
import { conformance, counter, looseObject, refKey } from "./conformance.mjs";
import { startFakeS3 } from "./fake-s3-server.mjs";

const endpoint = process.env.SNAPGIT_S3_ENDPOINT;
const bucket = process.env.SNAPGIT_S3_BUCKET ?? "snapgit-test";
const credentials = {
  accessKeyId: process.env.SNAPGIT_S3_ACCESS_KEY_ID ?? "test",
  secretAccessKey: process.env.SNAPGIT_S3_SECRET_ACCESS_KEY ?? "test",
};

function ministackStore(options = {}) {
  return async () => {
    // Every test gets its own prefix (a store) in the shared bucket.
    const prefix = `t/${randomBytes(6).toString("hex")}/`;
    const make = () =>
      new S3Adapter({ endpoint, bucket, prefix, credentials, pathStyle: true, listPageSize: 7, deleteBatchSize: 10, ...options });
    return {
      open: async () => make(),
      cleanup: async () => {
        const adapter = make();
        const keys = (await adapter.list("")).map((item) => item.key);
        await adapter.delete(keys);
      },
    };
  };
}

if (endpoint) {
  conformance("s3 (ministack)", { setup: ministackStore(), mtimeStepMs: 50, lockExpiryMs: 2100 });
  conformance("s3 (ministack, one DELETE per key)", {
    setup: ministackStore({ deleteBatchSize: 0 }),
    mtimeStepMs: 50,
    lockExpiryMs: 2100,
    raceIncrements: 2,
  });

  describe("s3 (ministack): the server", () => {
    test("honours conditional writes and deletes (the adapter's check passes)", async () => {
      const store = await ministackStore()();
      const adapter = await store.open();
      const key = refKey("probe", "main");
      await adapter.casRef(key, null, counter(1));
      const state = await adapter.readRef(key);
      assert.equal((await adapter.casRef(key, state, null)).won, true);
      await store.cleanup();
    });

    test("errors carry the HTTP status and S3 code", async () => {
      const adapter = new S3Adapter({ endpoint, bucket: "no-such-bucket-here", credentials, pathStyle: true });
      await assert.rejects(adapter.getMany([looseObject("blob", "x").key]), (error) => {
        assert.ok(error instanceof S3Error);
        assert.equal(error.code, "STORAGE");
        assert.equal(error.status, 404);
        assert.equal(error.s3Code, "NoSuchBucket");
        return true;
      });
      const wrongSecret = new S3Adapter({
        endpoint,
        bucket,
        credentials: { ...credentials, secretAccessKey: "wrong" },
        pathStyle: true,
      });
      await assert.rejects(wrongSecret.readRef(refKey("r", "main")), (error) => {
        assert.equal(error.status, 403);
        assert.equal(error.s3Code, "SignatureDoesNotMatch");
        return true;
      });
    });
  });
} else {
  const why =
    "SNAPGIT_S3_ENDPOINT is not set, so there is no S3 server to test against: run js/scripts/test-adapters.sh, " +
    "or start one with js/scripts/s3-server.sh start DIR and export the variables in DIR/env";
  console.log(`# skipping the S3 conformance suite: ${why}`);
  test("s3 conformance against a real server", { skip: why }, () => {});
}

describe("s3: a fake server that misbehaves", () => {
  const servers = [];
  after(() => Promise.all(servers.map((server) => server.close())));
  async function fake(options) {
    const server = await startFakeS3(options);
    servers.push(server);
    const adapter = (extra = {}) =>
      new S3Adapter({ endpoint: server.endpoint, bucket: "b", credentials, pathStyle: true, retries: 2, ...extra });
    return { server, adapter };
  }

  test("the fake, when well-behaved, passes the core of the contract", async () => {
    const { adapter } = await fake();
    const a = adapter();
    const key = refKey("r", "main");
    assert.equal((await a.casRef(key, null, counter(1))).won, true);
    assert.equal((await a.casRef(key, null, counter(2))).won, false);
    const objects = Array.from({ length: 12 }, (_, i) => looseObject("blob", `${i}`));
    await a.putMany(objects);
    await a.delete(objects.map((o) => o.key));
    assert.deepEqual((await a.list("")).map((item) => item.key), [key]);
  });

  test("a server that ignores conditional writes is refused for writing, with the reason", async () => {
    const { server, adapter } = await fake({ conditional: false });
    const a = adapter();
    const refused = (error) => {
      assert.ok(error instanceof S3Error);
      assert.equal(error.s3Code, "snapgit:NoConditionalWrites");
      assert.match(error.message, /ignores If-None-Match.*refusing to write/);
      return true;
    };
    await assert.rejects(a.putMany([looseObject("blob", "x")]), refused);
    await assert.rejects(a.casRef(refKey("r", "main"), null, counter(1)), refused);
    await assert.rejects(a.delete([looseObject("blob", "x").key]), refused);
    await assert.rejects(a.acquire("gc", 1000), refused);
    // Reads still work, and the check is not repeated.
    assert.deepEqual(await a.getMany([looseObject("blob", "x").key]), [null]);
    const puts = server.requests.filter((r) => r.method === "PUT").length;
    await assert.rejects(a.putMany([looseObject("blob", "y")]), refused);
    assert.equal(server.requests.filter((r) => r.method === "PUT").length, puts);
    // Nothing of the store was written; the probe cleaned up after itself.
    assert.deepEqual([...server.objects.keys()], []);
  });

  test("a server whose If-Match is ignored (but If-None-Match honoured) is refused too", async () => {
    const { adapter } = await fake({
      intercept: ({ method, headers }) =>
        method === "PUT" && headers["if-match"] !== undefined ? { status: 200, apply: true } : undefined,
    });
    await assert.rejects(adapter().casRef(refKey("r", "main"), null, counter(1)), /ignores If-Match/);
  });

  test("without conditional deletes, deleting a ref is refused unless allowed", async () => {
    const { adapter } = await fake({ conditionalDelete: false });
    const key = refKey("r", "main");
    const a = adapter();
    await a.casRef(key, null, counter(1));
    const state = await a.readRef(key);
    await assert.rejects(a.casRef(key, state, null), (error) => error.s3Code === "snapgit:NoConditionalDelete");
    assert.deepEqual(await a.readRef(key), state);
    const b = adapter({ unconditionalRefDelete: true });
    assert.deepEqual(await b.casRef(key, { value: counter(9), version: '"x"' }, null), { won: false, current: state });
    assert.equal((await b.casRef(key, state, null)).won, true);
    assert.equal(await b.readRef(key), null);
  });

  test("409 ConditionalRequestConflict is retried while the ref is unchanged", async () => {
    let conflicts = 2;
    const { server, adapter } = await fake({
      intercept: ({ method, key, headers }) =>
        method === "PUT" && key.startsWith("refs/") && headers["if-match"] && conflicts-- > 0
          ? { status: 409, code: "ConditionalRequestConflict" }
          : undefined,
    });
    const a = adapter();
    const key = refKey("r", "main");
    await a.casRef(key, null, counter(1));
    const result = await a.casRef(key, await a.readRef(key), counter(2));
    assert.equal(result.won, true);
    assert.equal((await a.readRef(key)).value, counter(2));
    assert.equal(server.requests.filter((r) => r.method === "PUT" && r.key === key).length, 4);
  });

  test("a 5xx after the write was applied is settled by reading back: won", async () => {
    let fail = true;
    const { adapter } = await fake({
      intercept: ({ method, key, headers }) =>
        method === "PUT" && key.startsWith("refs/") && headers["if-match"] && fail && !(fail = false)
          ? { status: 500, apply: true }
          : undefined,
    });
    const a = adapter();
    const key = refKey("r", "main");
    await a.casRef(key, null, counter(1));
    const result = await a.casRef(key, await a.readRef(key), counter(2));
    assert.equal(result.won, true);
    assert.deepEqual(await a.readRef(key), { value: counter(2), version: result.version });
  });

  test("a 5xx before the write was applied is settled by reading back: lost, with the state", async () => {
    let fail = true;
    const { adapter } = await fake({
      intercept: ({ method, key, headers }) =>
        method === "PUT" && key.startsWith("refs/") && headers["if-match"] && fail && !(fail = false)
          ? { status: 503, code: "SlowDown" }
          : undefined,
    });
    const a = adapter();
    const key = refKey("r", "main");
    await a.casRef(key, null, counter(1));
    const state = await a.readRef(key);
    assert.deepEqual(await a.casRef(key, state, counter(2)), { won: false, current: state });
    assert.equal((await a.casRef(key, state, counter(2))).won, true);
  });

  test("reads are retried after 5xx; other errors are not", async () => {
    let failures = 2;
    const { adapter } = await fake({
      intercept: ({ method }) => (method === "GET" && failures-- > 0 ? { status: 500 } : undefined),
    });
    const object = looseObject("blob", "retry\n");
    const a = adapter();
    await a.putMany([object]);
    assert.deepEqual(await a.getMany([object.key]), [object.bytes]);
    const forbidden = await fake({ intercept: ({ method }) => (method === "GET" ? { status: 403, code: "AccessDenied" } : undefined) });
    await assert.rejects(forbidden.adapter().getMany([object.key]), (error) => error.status === 403 && error.s3Code === "AccessDenied");
    assert.equal(forbidden.server.requests.length, 1);
  });

  test("DeleteObjects carries a correct Content-MD5; a server without it gets single deletes", async () => {
    const objects = Array.from({ length: 5 }, (_, i) => looseObject("blob", `d${i}`));
    const { server, adapter } = await fake();
    await adapter().putMany(objects);
    await adapter().delete(objects.map((o) => o.key));
    assert.equal(server.objects.size, 0);
    assert.ok(server.requests.some((r) => r.method === "POST"));
    const old = await fake({ deleteObjects: false });
    const client = old.adapter();
    await client.putMany(objects);
    await client.delete(objects.map((o) => o.key));
    assert.equal(old.server.objects.size, 0);
    assert.equal(old.server.requests.filter((r) => r.method === "DELETE").length, 5 + 2);
  });

  test("an existing object is refreshed by a copy onto itself, never rewritten", async () => {
    const { server, adapter } = await fake();
    const key = looseObject("blob", "keep\n").key;
    await adapter().putMany([{ key, bytes: new TextEncoder().encode("first") }]);
    await adapter().putMany([{ key, bytes: new TextEncoder().encode("second") }]);
    assert.equal(server.objects.get(key).bytes.toString(), "first");
    const copy = server.requests.find((r) => r.headers["x-amz-copy-source"]);
    assert.equal(copy.headers["x-amz-copy-source"], `/b/${key}`);
    assert.equal(copy.headers["x-amz-metadata-directive"], "REPLACE");
  });

  test("the store prefix and virtual-host addressing build the right URLs", async () => {
    const seen = [];
    const adapter = new S3Adapter({
      endpoint: "https://s3.eu-west-1.amazonaws.com",
      bucket: "my-bucket",
      prefix: "stores/agent one",
      region: "eu-west-1",
      credentials,
      checkConditionalWrites: false,
      fetch: async (request) => {
        seen.push(request);
        return request.url.includes("list-type")
          ? new Response("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
          : new Response(null, { status: 404 });
      },
    });
    await adapter.getMany([refKey("a&b", "main+1")]);
    await adapter.list("refs/");
    assert.equal(seen[0].url, "https://my-bucket.s3.eu-west-1.amazonaws.com/stores/agent%20one/refs/namespaces/a%26b/refs/heads/main%2B1");
    assert.ok(
      seen[0].headers.get("authorization").startsWith(`AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/`),
    );
    assert.match(seen[0].headers.get("authorization"), /\/\d{8}\/eu-west-1\/s3\/aws4_request,/);
    assert.equal(
      seen[1].url,
      "https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2&max-keys=1000&prefix=stores%2Fagent%20one%2Frefs%2F",
    );
  });
});

test("md5 matches node:crypto", () => {
  for (const length of [0, 1, 55, 56, 63, 64, 65, 1000, 4096 + 7]) {
    const data = randomBytes(length);
    assert.equal(Buffer.from(md5(new Uint8Array(data))).toString("hex"), createHash("md5").update(data).digest("hex"), `length ${length}`);
  }
});
