/**
 * A store under a prefix of a Cloudflare R2 bucket, through a Worker's R2 binding.
 *
 * - Packs: `getRanges` reads each range with the binding's ranged `get`.
 * - Objects: `put` with `onlyIf: { etagDoesNotMatch: "*" }` (only if absent); `put` returns
 *   `null` when the object exists, which is fine (content-addressed, never rewritten); its
 *   own bytes are then read and written back (conditional on its ETag), which refreshes its
 *   upload time for a concurrent garbage collection.
 * - Refs: the version is the object's ETag (R2's, unquoted; the MD5 of the content for a
 *   plain put, so the version behaves like the value). The compare-and-swap is `put` with
 *   `onlyIf: { etagMatches }` (or `etagDoesNotMatch: "*"` to create); `null` means lost,
 *   and the current state is read and returned.
 * - Deleting a ref: the binding's `delete` takes no condition, so a conditional delete
 *   cannot be expressed; it fails with a `StorageError` unless `unconditionalRefDelete` is
 *   set (read, compare, delete: a commit landing in between is lost).
 */
import type { ByteRange, CasResult, Listed, RefState, StorageAdapter } from "../adapter.js";
import { StorageError } from "../adapter.js";
import { chunks, mapLimit } from "./concurrency.js";
import {
  checkCas,
  checkKey,
  checkPrefix,
  checkTtl,
  decodeLock,
  decodeRef,
  encodeLock,
  encodeRef,
  lockKey,
  newToken,
  sameRef,
  checkSwappable,
  sameBytes,
} from "./keys.js";

/** The conditions of an R2 operation; ETags unquoted, `"*"` for any object. */
export interface R2ConditionalLike {
  etagMatches?: string;
  etagDoesNotMatch?: string;
}

/** The parts of R2's `R2Object` this adapter reads. */
export interface R2ObjectLike {
  key: string;
  size: number;
  etag: string;
  uploaded: Date;
}

export interface R2ObjectBodyLike extends R2ObjectLike {
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface R2ObjectsLike {
  objects: R2ObjectLike[];
  truncated: boolean;
  cursor?: string;
}

/** The parts of a Worker's `R2Bucket` binding this adapter calls. */
export interface R2BucketLike {
  get(key: string, options?: { range?: { offset: number; length: number } }): Promise<R2ObjectBodyLike | null>;
  put(
    key: string,
    value: ArrayBuffer | ArrayBufferView | string,
    options?: { onlyIf?: R2ConditionalLike },
  ): Promise<R2ObjectLike | null>;
  delete(keys: string | string[]): Promise<void>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<R2ObjectsLike>;
}

export interface R2AdapterOptions {
  /** The store's prefix inside the bucket (`""`: the whole bucket). A `/` is added if missing. */
  prefix?: string;
  /** Binding calls in flight at once per call. Default 16. */
  concurrency?: number;
  /** Delete refs by read, compare, delete (not atomic: see the module comment). Default false. */
  unconditionalRefDelete?: boolean;
}

/** Most keys the binding's `delete` takes in one call. */
const DELETE_BATCH = 1000;

function wrap(what: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  return new StorageError(`r2: ${what}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

export class R2Adapter implements StorageAdapter {
  readonly #bucket: R2BucketLike;
  readonly #prefix: string;
  readonly #concurrency: number;
  readonly #unconditionalRefDelete: boolean;

  constructor(bucket: R2BucketLike, options: R2AdapterOptions = {}) {
    if (!bucket || typeof bucket.put !== "function") throw new StorageError("r2: an R2 bucket binding is required");
    this.#bucket = bucket;
    const prefix = options.prefix ?? "";
    if (prefix !== "") checkPrefix(prefix);
    this.#prefix = prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
    this.#concurrency = options.concurrency ?? 16;
    this.#unconditionalRefDelete = options.unconditionalRefDelete ?? false;
  }

  async #guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw wrap(what, error);
    }
  }

  async getMany(keys: string[]): Promise<(Uint8Array | null)[]> {
    keys.forEach(checkKey);
    return this.#guard("reading objects", () =>
      mapLimit(keys, this.#concurrency, async (key) => {
        const object = await this.#bucket.get(this.#prefix + key);
        return object === null ? null : new Uint8Array(await object.arrayBuffer());
      }),
    );
  }

  async getRanges(ranges: ByteRange[]): Promise<(Uint8Array | null)[]> {
    ranges.forEach(({ key }) => checkKey(key));
    return this.#guard("reading ranges", () =>
      mapLimit(ranges, this.#concurrency, async ({ key, start, len }) => {
        const object = await this.#bucket.get(this.#prefix + key, { range: { offset: start, length: len } });
        if (object === null) return null;
        const bytes = new Uint8Array(await object.arrayBuffer());
        // `size` is the whole value's: a binding that answered the whole value (one that
        // ignores ranges) is cut here; for a true range this cut changes nothing.
        return bytes.length === object.size ? bytes.slice(start, start + len) : bytes;
      }),
    );
  }

  async putMany(objects: { key: string; bytes: Uint8Array }[]): Promise<void> {
    for (const { key, bytes } of objects) {
      checkKey(key);
      if (!(bytes instanceof Uint8Array)) throw new StorageError(`bytes of ${key} are not a Uint8Array`);
    }
    await this.#guard("writing objects", () =>
      mapLimit(objects, this.#concurrency, async ({ key, bytes }) => {
        for (let attempt = 0; attempt < 3; attempt++) {
          const stored = await this.#bucket.put(this.#prefix + key, bytes, { onlyIf: { etagDoesNotMatch: "*" } });
          if (stored !== null) return;
          // It exists. Write its own bytes back (never ours: objects are never rewritten),
          // which refreshes its upload time; if it changed meanwhile, that refreshed it too.
          const existing = await this.#bucket.get(this.#prefix + key);
          if (existing === null) continue; // deleted by a collection meanwhile: create it again
          await this.#bucket.put(this.#prefix + key, await existing.arrayBuffer(), {
            onlyIf: { etagMatches: existing.etag },
          });
          return;
        }
        throw new StorageError(`r2: writing ${key}: it keeps disappearing`);
      }),
    );
  }

  async list(prefix: string): Promise<Listed[]> {
    checkPrefix(prefix);
    return this.#guard(`listing ${JSON.stringify(prefix)}`, async () => {
      const out: Listed[] = [];
      let cursor: string | undefined;
      do {
        const page = await this.#bucket.list({
          prefix: this.#prefix + prefix,
          limit: 1000,
          ...(cursor !== undefined ? { cursor } : {}),
        });
        for (const object of page.objects) {
          out.push({
            key: object.key.slice(this.#prefix.length),
            size: object.size,
            modifiedMs: object.uploaded.getTime(),
          });
        }
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor !== undefined);
      return out;
    });
  }

  async delete(keys: string[]): Promise<void> {
    keys.forEach(checkKey);
    await this.#guard("deleting", () =>
      mapLimit(chunks(keys, DELETE_BATCH), this.#concurrency, (batch) =>
        this.#bucket.delete(batch.map((key) => this.#prefix + key)),
      ),
    );
  }

  async readRef(key: string): Promise<RefState | null> {
    checkKey(key);
    return this.#guard(`reading ref ${key}`, () => this.#readRef(key));
  }

  async #readRef(key: string): Promise<RefState | null> {
    const object = await this.#bucket.get(this.#prefix + key);
    if (object === null) return null;
    return { value: decodeRef(key, new Uint8Array(await object.arrayBuffer())), version: object.etag };
  }

  async casRef(key: string, expected: RefState | null, value: string | null): Promise<CasResult> {
    checkCas(key, expected, value);
    return this.#guard(`updating ref ${key}`, async () => {
      if (value === null) return this.#casDelete(key, expected);
      const onlyIf = expected === null ? { etagDoesNotMatch: "*" } : { etagMatches: expected.version };
      const stored = await this.#bucket.put(this.#prefix + key, encodeRef(value), { onlyIf });
      if (stored !== null) return { won: true, version: stored.etag };
      return { won: false, current: await this.#readRef(key) };
    });
  }

  /**
   * Replace `shallow` or `config` only if it holds exactly `expected`: read with its ETag,
   * compare, then `put` with `onlyIf`. The binding has no conditional delete, so removing
   * the file needs `unconditionalRefDelete`, as deleting a ref does.
   */
  async swap(key: string, expected: Uint8Array | null, value: Uint8Array | null): Promise<boolean> {
    checkSwappable(key);
    return this.#guard(`replacing ${key}`, async () => {
      const object = await this.#bucket.get(this.#prefix + key);
      const current = object === null ? null : new Uint8Array(await object.arrayBuffer());
      if (!sameBytes(current, expected)) return false;
      if (value === null) {
        if (object === null) return true;
        if (!this.#unconditionalRefDelete) {
          throw new StorageError(
            `r2: cannot remove ${key}: the R2 binding has no conditional delete (set unconditionalRefDelete to accept that)`,
          );
        }
        await this.#bucket.delete(this.#prefix + key);
        return true;
      }
      const onlyIf = object === null ? { etagDoesNotMatch: "*" } : { etagMatches: object.etag };
      return (await this.#bucket.put(this.#prefix + key, value, { onlyIf })) !== null;
    });
  }

  async #casDelete(key: string, expected: RefState | null): Promise<CasResult> {
    const current = await this.#readRef(key);
    if (!sameRef(current, expected, "version")) return { won: false, current };
    if (current === null) return { won: true, version: "" };
    if (!this.#unconditionalRefDelete) {
      throw new StorageError(
        `r2: cannot delete ref ${key}: the R2 binding has no conditional delete, so a commit landing at the same time could be lost (set unconditionalRefDelete to accept that)`,
      );
    }
    await this.#bucket.delete(this.#prefix + key);
    return { won: true, version: "" };
  }

  /**
   * An advisory lock: the object `locks/<name>` holding a token and an expiry (this
   * isolate's clock), created only if absent; an expired one is taken over with
   * `etagMatches`, so two takers cannot both win. Release marks it free the same way, since
   * the binding cannot delete conditionally.
   */
  async acquire(name: string, ttlMs: number): Promise<string | null> {
    const key = this.#prefix + lockKey(name);
    checkTtl(ttlMs);
    return this.#guard(`acquiring lock ${name}`, async () => {
      const token = newToken();
      const body = encodeLock({ token, expiresMs: Date.now() + ttlMs });
      if ((await this.#bucket.put(key, body, { onlyIf: { etagDoesNotMatch: "*" } })) !== null) return token;
      const held = await this.#bucket.get(key);
      if (held === null) return null;
      const record = decodeLock(new Uint8Array(await held.arrayBuffer()));
      if (record !== null && record.token !== "" && record.expiresMs > Date.now()) return null;
      const taken = await this.#bucket.put(key, body, { onlyIf: { etagMatches: held.etag } });
      return taken === null ? null : token;
    });
  }

  async release(name: string, token: string): Promise<void> {
    const key = this.#prefix + lockKey(name);
    await this.#guard(`releasing lock ${name}`, async () => {
      const held = await this.#bucket.get(key);
      if (held === null) return;
      if (decodeLock(new Uint8Array(await held.arrayBuffer()))?.token !== token) return;
      await this.#bucket.put(key, encodeLock({ token: "", expiresMs: 0 }), { onlyIf: { etagMatches: held.etag } });
    });
  }
}
