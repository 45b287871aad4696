// An R2 bucket in memory, for running Workers under plain `workerd`.
//
// workerd has no R2 storage of its own: its config binds an R2 bucket to a service
// (`r2Bucket = "<service>"`) and the binding sends every call to that service as an HTTP
// request. On Cloudflare that service is R2; under `wrangler dev` it is Miniflare's
// simulator. This Worker is that service, small enough to read: the binding's real code
// (argument checks, `onlyIf` conditions, `null` on a failed condition, list paging) runs
// unchanged in front of it.
//
// The protocol, as workerd's R2 binding speaks it:
// - `head`, `get`, `list`: GET with the request as JSON in the `cf-r2-request` header.
// - `put`, `delete`: PUT whose body is the request's JSON (its length in
//   `cf-r2-metadata-size`) followed by the value.
// - Answers: JSON metadata, its length in `cf-r2-metadata-size`, then the value (for `get`).
//   Failures: an HTTP status and `cf-r2-error: {"version":1,"v4code":...,"message":...}`;
//   10007 (no such key) makes `get` and `head` return `null`, 10031 (precondition failed)
//   makes `put` return `null`.
//
// Conditional writes are atomic: a request's body is read first, then the condition is
// checked and the object stored with no `await` in between, and the service runs in one
// isolate, so no other request can interleave. State lives as long as the process.

const NO_SUCH_KEY = 10007;
const INVALID_ARGUMENT = 10029;
const PRECONDITION_FAILED = 10031;
const INTERNAL_ERROR = 10001;
const MAX_LIST = 1000;

/** key -> { value: Uint8Array, etag, version, uploaded } */
const objects = new Map();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

class R2Failure extends Error {
  constructor(status, v4code, message) {
    super(message);
    this.status = status;
    this.v4code = v4code;
  }
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomHex(n) {
  return hex(crypto.getRandomValues(new Uint8Array(n)));
}

/** What the binding reads about an object (R2's `R2Object`). */
function describe(key, stored) {
  return {
    name: key,
    version: stored.version,
    size: stored.value.byteLength,
    etag: stored.etag,
    uploaded: stored.uploaded,
    httpFields: {},
    customFields: [],
    checksums: { 0: stored.etag },
  };
}

function includesEtag(conditions, etag, weakComparison) {
  return conditions.some(
    (c) => c.type === "wildcard" || (c.value === etag && (c.type === "strong" || weakComparison)),
  );
}

/** Whether `onlyIf` holds for `stored` (`undefined`: no such object), as R2 evaluates it. */
function holds(onlyIf, stored) {
  if (!onlyIf) return true;
  const { etagMatches, etagDoesNotMatch } = onlyIf;
  const before = onlyIf.uploadedBefore === undefined ? undefined : Number(onlyIf.uploadedBefore);
  const after = onlyIf.uploadedAfter === undefined ? undefined : Number(onlyIf.uploadedAfter);
  if (stored === undefined) return etagMatches === undefined && after === undefined;
  const ifMatch = etagMatches === undefined || includesEtag(etagMatches, stored.etag, false);
  const ifNoneMatch = etagDoesNotMatch === undefined || !includesEtag(etagDoesNotMatch, stored.etag, true);
  const ifModifiedSince =
    after === undefined || after < stored.uploaded || (etagDoesNotMatch !== undefined && ifNoneMatch);
  const ifUnmodifiedSince =
    before === undefined || stored.uploaded < before || (etagMatches !== undefined && ifMatch);
  return ifMatch && ifNoneMatch && ifModifiedSince && ifUnmodifiedSince;
}

/** A response of JSON metadata followed by `value`. */
function answer(metadata, value = new Uint8Array(0)) {
  const json = encoder.encode(JSON.stringify(metadata));
  const body = new Uint8Array(json.byteLength + value.byteLength);
  body.set(json);
  body.set(value, json.byteLength);
  return new Response(body, {
    headers: { "cf-r2-metadata-size": String(json.byteLength), "content-type": "application/json" },
  });
}

function found(key) {
  const stored = objects.get(key);
  if (stored === undefined) throw new R2Failure(404, NO_SUCH_KEY, "The specified key does not exist.");
  return stored;
}

function list(request) {
  const prefix = request.prefix ?? "";
  const limit = request.limit ?? MAX_LIST;
  if (!(limit >= 1 && limit <= MAX_LIST)) {
    throw new R2Failure(400, INVALID_ARGUMENT, `MaxKeys params must be positive integer <= ${MAX_LIST}.`);
  }
  let startAfter = request.startAfter;
  if (request.cursor !== undefined && (startAfter === undefined || request.cursor > startAfter)) {
    startAfter = request.cursor;
  }
  const keys = [...objects.keys()]
    .filter((key) => key.startsWith(prefix) && (startAfter === undefined || key > startAfter))
    .sort();
  const page = keys.slice(0, limit);
  const truncated = keys.length > limit;
  return {
    objects: page.map((key) => describe(key, objects.get(key))),
    truncated,
    ...(truncated ? { cursor: page[page.length - 1] } : {}),
    delimitedPrefixes: [],
  };
}

async function handle(request) {
  if (request.method === "GET") {
    const call = JSON.parse(request.headers.get("cf-r2-request") ?? "null");
    switch (call?.method) {
      case "head":
        return answer(describe(call.object, found(call.object)));
      case "get": {
        const stored = found(call.object);
        if (!holds(call.onlyIf, stored)) {
          throw new R2Failure(412, PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold.");
        }
        return answer(describe(call.object, stored), stored.value);
      }
      case "list":
        return answer(list(call));
    }
  } else if (request.method === "PUT") {
    const size = Number(request.headers.get("cf-r2-metadata-size"));
    const body = new Uint8Array(await request.arrayBuffer());
    if (!Number.isInteger(size) || size < 0 || size > body.byteLength) {
      throw new R2Failure(400, INVALID_ARGUMENT, "Metadata missing or invalid");
    }
    const call = JSON.parse(decoder.decode(body.subarray(0, size)));
    if (call.method === "put") {
      const value = body.slice(size);
      const etag = hex(await crypto.subtle.digest("MD5", value));
      // From here to the write nothing awaits: the check and the write are one step.
      if (!holds(call.onlyIf, objects.get(call.object))) {
        throw new R2Failure(412, PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold.");
      }
      const stored = { value, etag, version: randomHex(16), uploaded: Date.now() };
      objects.set(call.object, stored);
      return new Response(JSON.stringify(describe(call.object, stored)), {
        headers: { "content-type": "application/json" },
      });
    }
    if (call.method === "delete") {
      for (const key of "objects" in call ? call.objects : [call.object]) objects.delete(key);
      return new Response(null);
    }
  }
  throw new R2Failure(501, INTERNAL_ERROR, `this local bucket does not implement ${request.method} ${request.url}`);
}

export default {
  async fetch(request) {
    try {
      return await handle(request);
    } catch (error) {
      const failure =
        error instanceof R2Failure ? error : new R2Failure(500, INTERNAL_ERROR, `internal error: ${error?.message ?? error}`);
      return new Response(null, {
        status: failure.status,
        headers: {
          "cf-r2-error": JSON.stringify({ version: 1, v4code: failure.v4code, message: failure.message }),
        },
      });
    }
  },
};
