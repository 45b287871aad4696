// A fake of a Worker's R2Bucket binding for Node tests, following the documented semantics:
// - put(key, value, { onlyIf }) returns the stored object's metadata, or null when a
//   condition fails (nothing is stored); conditions are evaluated and the write applied
//   in one step, as R2 does (strong consistency).
// - onlyIf: { etagMatches, etagDoesNotMatch } take an unquoted ETag or "*" (any object);
//   a quoted ETag is a TypeError. On a missing object etagMatches fails and
//   etagDoesNotMatch passes (so etagDoesNotMatch: "*" means "only if absent").
//   uploadedBefore / uploadedAfter follow R2's rules, including the way a passing ETag
//   condition overrides the date condition paired with it.
// - etag: the hex MD5 of the content (httpEtag: the same, quoted); uploaded: a Date.
// - get returns null for a missing key; delete takes a key or up to 1000 keys;
//   list({ prefix, cursor, limit, startAfter }) pages in key order, at most 1000 a page.
import { createHash, randomBytes } from "node:crypto";

const tick = () => new Promise((resolve) => setImmediate(resolve));

function toBytes(value) {
  if (value === null || value === undefined) return new Uint8Array(0);
  if (typeof value === "string") return new TextEncoder().encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  throw new TypeError(`fake R2: unsupported value type ${Object.prototype.toString.call(value)}`);
}

function checkEtag(etag) {
  if (typeof etag !== "string") throw new TypeError("fake R2: an ETag condition must be a string");
  if (etag.startsWith('"') && etag.endsWith('"')) {
    throw new TypeError(`Conditional ETag should not be wrapped in quotes (${etag}).`);
  }
}

function etagMatches(condition, etag) {
  return condition === "*" || condition === etag;
}

/** Whether `onlyIf` holds for `stored` (undefined when the key is absent). */
export function testConditional(onlyIf, stored) {
  if (onlyIf === undefined) return true;
  if (typeof Headers !== "undefined" && onlyIf instanceof Headers) {
    throw new TypeError("fake R2: Headers conditions are not implemented");
  }
  const { etagMatches: match, etagDoesNotMatch: noMatch, uploadedBefore, uploadedAfter } = onlyIf;
  if (match !== undefined) checkEtag(match);
  if (noMatch !== undefined) checkEtag(noMatch);
  if (stored === undefined) {
    return match === undefined && uploadedAfter === undefined;
  }
  const ifMatch = match === undefined || etagMatches(match, stored.etag);
  const ifNoneMatch = noMatch === undefined || !etagMatches(noMatch, stored.etag);
  const uploaded = stored.uploaded.getTime();
  const ifUnmodified =
    uploadedBefore === undefined || uploaded < uploadedBefore.getTime() || (match !== undefined && ifMatch);
  const ifModified =
    uploadedAfter === undefined || uploaded > uploadedAfter.getTime() || (noMatch !== undefined && ifNoneMatch);
  return ifMatch && ifNoneMatch && ifUnmodified && ifModified;
}

class FakeR2Object {
  constructor(key, entry) {
    this.key = key;
    this.version = entry.version;
    this.size = entry.bytes.length;
    this.etag = entry.etag;
    this.httpEtag = `"${entry.etag}"`;
    this.uploaded = new Date(entry.uploaded.getTime());
    this.checksums = { md5: createHash("md5").update(entry.bytes).digest().buffer };
    this.httpMetadata = {};
    this.customMetadata = {};
    this.storageClass = "Standard";
  }

  writeHttpMetadata() {}
}

class FakeR2ObjectBody extends FakeR2Object {
  #bytes;

  constructor(key, entry, range) {
    super(key, entry);
    // R2's ranged read: the bytes from `offset`, at most `length` of them.
    const offset = range?.offset ?? 0;
    const end = range?.length === undefined ? entry.bytes.length : offset + range.length;
    this.#bytes = entry.bytes.slice(offset, end);
    if (range) this.range = { offset, length: this.#bytes.length };
    this.bodyUsed = false;
  }

  #use() {
    if (this.bodyUsed) throw new TypeError("Body has already been used.");
    this.bodyUsed = true;
    return this.#bytes;
  }

  get body() {
    const bytes = this.#bytes;
    return new ReadableStream({
      start(controller) {
        controller.enqueue(bytes.slice());
        controller.close();
      },
    });
  }

  async arrayBuffer() {
    const bytes = this.#use();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  async bytes() {
    return this.#use().slice();
  }

  async text() {
    return new TextDecoder().decode(this.#use());
  }

  async json() {
    return JSON.parse(await this.text());
  }
}

export class FakeR2Bucket {
  /** key -> { bytes, etag, version, uploaded } */
  #objects = new Map();
  /** Calls by method, for tests. */
  calls = { get: 0, head: 0, put: 0, delete: 0, list: 0 };

  #checkKey(key) {
    if (typeof key !== "string" || key.length === 0 || new TextEncoder().encode(key).length > 1024) {
      throw new TypeError(`fake R2: invalid key ${JSON.stringify(key)}`);
    }
  }

  async head(key) {
    this.calls.head++;
    this.#checkKey(key);
    await tick();
    const entry = this.#objects.get(key);
    return entry ? new FakeR2Object(key, entry) : null;
  }

  async get(key, options = {}) {
    this.calls.get++;
    this.#checkKey(key);
    await tick();
    const entry = this.#objects.get(key);
    if (!entry) return null;
    if (!testConditional(options.onlyIf, entry)) return new FakeR2Object(key, entry);
    return new FakeR2ObjectBody(key, entry, options.range);
  }

  async put(key, value, options = {}) {
    this.calls.put++;
    this.#checkKey(key);
    const bytes = toBytes(value);
    await tick();
    // From here to the end nothing awaits: the condition and the write are one step.
    const stored = this.#objects.get(key);
    if (!testConditional(options.onlyIf, stored)) return null;
    const entry = {
      bytes,
      etag: createHash("md5").update(bytes).digest("hex"),
      version: randomBytes(16).toString("hex"),
      // R2 upload times are strictly increasing per key, even within one millisecond.
      uploaded: new Date(Math.max(Date.now(), (stored?.uploaded.getTime() ?? 0) + 1)),
    };
    this.#objects.set(key, entry);
    return new FakeR2Object(key, entry);
  }

  async delete(keys) {
    this.calls.delete++;
    const list = Array.isArray(keys) ? keys : [keys];
    if (list.length > 1000) throw new Error("delete: at most 1000 keys per call (10001)");
    list.forEach((key) => this.#checkKey(key));
    await tick();
    for (const key of list) this.#objects.delete(key);
  }

  async list(options = {}) {
    this.calls.list++;
    const limit = options.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RangeError(`list: invalid limit ${limit}`);
    await tick();
    const prefix = options.prefix ?? "";
    let after = options.startAfter;
    if (options.cursor !== undefined) after = Buffer.from(options.cursor, "base64url").toString("utf8");
    const keys = [...this.#objects.keys()]
      .filter((key) => key.startsWith(prefix) && (after === undefined || key > after))
      .sort();
    const page = keys.slice(0, limit);
    const truncated = keys.length > limit;
    const result = {
      objects: page.map((key) => new FakeR2Object(key, this.#objects.get(key))),
      truncated,
      delimitedPrefixes: [],
    };
    if (truncated) result.cursor = Buffer.from(page[page.length - 1], "utf8").toString("base64url");
    return result;
  }
}
