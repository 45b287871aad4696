/**
 * A store under a prefix of an S3-compatible bucket, over `fetch` with SigV4 signing
 * (`aws4fetch`), so it runs in Node, Deno, browsers and Workers alike.
 *
 * - Objects: `PUT` with `If-None-Match: *`; 412 means the object exists, which is fine
 *   (objects are content-addressed and never rewritten); it is then copied onto itself,
 *   which refreshes its modification time for a concurrent garbage collection.
 * - Refs: `GET` returns the value and its ETag, which is the version. The compare-and-swap
 *   is `PUT` with `If-Match: <etag>` (or `If-None-Match: *` to create); 412 (or 404, which
 *   AWS returns for `If-Match` on a missing key) means lost, and the current state is read
 *   and returned. 409 (`ConditionalRequestConflict`, a concurrent conditional write) is
 *   retried while the ref still holds the expected version. When a write's outcome is
 *   unknown (a network error or a 5xx after sending it), the ref is read back: it won if
 *   the ref now holds the new value (the value is the whole state), else it lost.
 *   For plain PUTs S3's ETag is the MD5 of the content, so the version behaves like the value.
 * - Deleting a ref is `DELETE` with `If-Match`, where the server supports it (checked).
 * - Before the first write the adapter checks, once, that the server honours conditional
 *   writes: a second `If-None-Match: *` PUT to the same new key must fail, and so must an
 *   `If-Match` with a wrong ETag. A server that ignores them is refused for every write,
 *   since concurrent commits on it could silently overwrite each other.
 *
 * In browsers, the bucket's CORS rules must expose the `ETag` header.
 */
import { AwsClient } from "aws4fetch";

import type { ByteRange, CasResult, Listed, RefState, StorageAdapter } from "../adapter.js";
import { StorageError } from "../adapter.js";
import { backoff, chunks, mapLimit } from "./concurrency.js";
import {
  checkCas,
  checkKey,
  checkSwappable,
  checkPrefix,
  checkTtl,
  decodeLock,
  decodeRef,
  encodeLock,
  encodeRef,
  lockKey,
  newToken,
  sameRef,
  sameBytes,
} from "./keys.js";
import { base64, md5 } from "./md5.js";
import { elements, escape, text } from "./xml.js";

export interface S3AdapterOptions {
  /** Service URL without the bucket, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`. */
  endpoint: string;
  bucket: string;
  /** The store's prefix inside the bucket (`""`: the whole bucket). A `/` is added if missing. */
  prefix?: string;
  /** Signing region. Default `us-east-1` (`auto` for R2's S3 API). */
  region?: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Address the bucket in the path (`endpoint/bucket/key`) rather than the host name. Needed by most local servers. */
  pathStyle?: boolean;
  /** Requests in flight at once per call. Default 16. */
  concurrency?: number;
  /** Retries of a request that is safe to repeat, after a network error, 5xx or 429. Default 3. */
  retries?: number;
  /** Time limit per request in milliseconds. Default 30 000. */
  timeoutMs?: number;
  /** Keys per ListObjectsV2 page (1 to 1000). Default 1000. */
  listPageSize?: number;
  /** Keys per DeleteObjects request (1 to 1000); 0 deletes with one DELETE per key. Default 1000. */
  deleteBatchSize?: number;
  /**
   * Check once, before the first write, that the server honours conditional writes (5 small
   * requests). Default true. Set false only for a server known to (AWS S3, R2): then deleting
   * a ref assumes `DELETE` honours `If-Match`.
   */
  checkConditionalWrites?: boolean;
  /**
   * Where the server ignores `If-Match` on `DELETE`, delete a ref by reading, comparing and
   * deleting unconditionally. A commit that lands between the read and the delete is lost, so
   * this is off by default (deleting a ref then fails with a `StorageError`).
   */
  unconditionalRefDelete?: boolean;
  /** `fetch` to send signed requests with. Default `globalThis.fetch`. */
  fetch?: (request: Request) => Promise<Response>;
}

/** An S3 request failed: the HTTP status and S3's error code, where there was a response. */
export class S3Error extends StorageError {
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number;
  /** S3's `<Code>` (`NoSuchBucket`, `AccessDenied`, `SlowDown`...), if the server sent one. */
  readonly s3Code: string | undefined;
  /** The key (relative to the store) the request was about, if any. */
  readonly key: string | undefined;

  constructor(
    message: string,
    details: { status: number; s3Code?: string | undefined; key?: string | undefined; cause?: unknown },
  ) {
    super(message, { cause: details.cause });
    this.name = "S3Error";
    this.status = details.status;
    this.s3Code = details.s3Code;
    this.key = details.key;
  }
}

interface Capabilities {
  /** `DELETE` honours `If-Match`. */
  conditionalDelete: boolean;
}

interface Send {
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Safe to send again after a network error or 5xx. */
  idempotent: boolean;
  /** Bypass HTTP caches (ref reads in browsers). */
  noStore?: boolean;
}

const encoder = new TextEncoder();
const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";
/** Never an ETag S3 computes (they are hex), so `If-Match` with it must fail. */
const WRONG_ETAG = '"snapgit-probe-never-matches"';

/** One path segment, encoded as S3 and SigV4 expect (RFC 3986 unreserved characters only). */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function encodeKeyPath(key: string): string {
  return key.split("/").map(encodeSegment).join("/");
}

async function drain(response: Response): Promise<void> {
  await response.arrayBuffer().catch(() => undefined);
}

/** Whether this runtime's `Request` accepts a cache mode (Workers historically did not). */
const CACHE_MODE = (() => {
  try {
    return new Request("http://localhost/", { cache: "no-store" }).cache === "no-store";
  } catch {
    return false;
  }
})();

export class S3Adapter implements StorageAdapter {
  readonly #client: AwsClient;
  readonly #fetch: (request: Request) => Promise<Response>;
  readonly #objectBase: string;
  readonly #bucketUrl: string;
  readonly #prefix: string;
  readonly #bucket: string;
  readonly #concurrency: number;
  readonly #retries: number;
  readonly #timeoutMs: number;
  readonly #pageSize: number;
  readonly #deleteBatch: number;
  readonly #check: boolean;
  readonly #unconditionalRefDelete: boolean;
  #capabilities: Promise<Capabilities> | null = null;

  constructor(options: S3AdapterOptions) {
    const endpoint = new URL(options.endpoint);
    if (!options.bucket) throw new StorageError("s3: a bucket name is required");
    this.#bucket = options.bucket;
    const base = `${endpoint.protocol}//${endpoint.host}${endpoint.pathname.replace(/\/+$/, "")}`;
    if (options.pathStyle) {
      this.#bucketUrl = `${base}/${encodeSegment(options.bucket)}`;
    } else {
      this.#bucketUrl = `${endpoint.protocol}//${options.bucket}.${endpoint.host}${endpoint.pathname.replace(/\/+$/, "")}`;
    }
    this.#objectBase = `${this.#bucketUrl}/`;
    const prefix = options.prefix ?? "";
    if (prefix !== "") checkPrefix(prefix);
    this.#prefix = prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
    this.#concurrency = options.concurrency ?? 16;
    this.#retries = options.retries ?? 3;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#pageSize = Math.min(1000, Math.max(1, options.listPageSize ?? 1000));
    this.#deleteBatch = Math.min(1000, Math.max(0, options.deleteBatchSize ?? 1000));
    this.#check = options.checkConditionalWrites ?? true;
    this.#unconditionalRefDelete = options.unconditionalRefDelete ?? false;
    this.#fetch = options.fetch ?? ((request) => globalThis.fetch(request));
    this.#client = new AwsClient({
      accessKeyId: options.credentials.accessKeyId,
      secretAccessKey: options.credentials.secretAccessKey,
      ...(options.credentials.sessionToken ? { sessionToken: options.credentials.sessionToken } : {}),
      service: "s3",
      region: options.region ?? "us-east-1",
      // Retries are decided here: a conditional write must not be sent twice blindly.
      retries: 0,
    });
  }

  #url(key: string): string {
    return this.#objectBase + encodeKeyPath(this.#prefix + key);
  }

  /** Sends one signed request, retrying network errors, 5xx and 429 if `idempotent`. */
  async #send(method: string, url: string, init: Send, key?: string): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        const request = await this.#client.sign(url, {
          method,
          headers: init.headers ?? {},
          // Bodies are never backed by a SharedArrayBuffer here.
          ...(init.body !== undefined ? { body: init.body as Uint8Array<ArrayBuffer> } : {}),
          ...(init.noStore && CACHE_MODE ? { cache: "no-store" as const } : {}),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        response = await this.#fetch(request);
      } catch (error) {
        if (init.idempotent && attempt < this.#retries) {
          await backoff(attempt, 50, 2000);
          continue;
        }
        throw new S3Error(`s3: ${method} ${key ?? url} failed: ${(error as Error)?.message ?? error}`, {
          status: 0,
          key,
          cause: error,
        });
      }
      if (init.idempotent && (response.status >= 500 || response.status === 429) && attempt < this.#retries) {
        await drain(response);
        await backoff(attempt, 50, 2000);
        continue;
      }
      return response;
    }
  }

  /** A typed error from a failed response (consumes the body). */
  async #error(response: Response, what: string, key?: string): Promise<S3Error> {
    const body = await response.text().catch(() => "");
    const s3Code = text(body, "Code");
    const message = text(body, "Message");
    return new S3Error(
      `s3: ${what}: HTTP ${response.status}${s3Code ? ` ${s3Code}` : ""}${message ? `: ${message}` : ""}`,
      { status: response.status, s3Code, key },
    );
  }

  /**
   * Whether a response means "no such key". A 404 for a missing bucket is an error, so a
   * misconfigured store never reads as an empty one.
   */
  async #absent(response: Response, what: string, key: string): Promise<boolean> {
    if (response.status !== 404) return false;
    const body = await response.text().catch(() => "");
    const s3Code = text(body, "Code");
    if (s3Code === "NoSuchBucket") {
      throw new S3Error(`s3: ${what}: HTTP 404 NoSuchBucket: ${text(body, "Message") ?? this.#bucketUrl}`, {
        status: 404,
        s3Code,
        key,
      });
    }
    return true;
  }

  /** Runs `fn`, turning any error that is not already a `StorageError` into an `S3Error`. */
  async #guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw new S3Error(`s3: ${what}: ${(error as Error)?.message ?? String(error)}`, { status: 0, cause: error });
    }
  }

  /** Checks once that the server honours conditional writes; rejects every write if not. */
  #writable(): Promise<Capabilities> {
    if (!this.#check) return Promise.resolve({ conditionalDelete: true });
    this.#capabilities ??= this.#probe().catch((error: unknown) => {
      // A refusal is final; a failed probe (network, permissions) is tried again next time.
      if (!(error instanceof S3Error && error.s3Code === "snapgit:NoConditionalWrites")) this.#capabilities = null;
      throw error;
    });
    return this.#capabilities;
  }

  async #probe(): Promise<Capabilities> {
    // `~` is never in an object or ref key, so the probe cannot collide with store content.
    const key = `snapgit-probe~${newToken()}`;
    const url = this.#url(key);
    const body = encoder.encode("probe\n");
    const refuse = (why: string) =>
      new S3Error(
        `s3: ${this.#bucketUrl} ${why}; refusing to write there, since concurrent commits could overwrite each other. Use a server that honours If-None-Match and If-Match on PUT`,
        { status: 0, s3Code: "snapgit:NoConditionalWrites" },
      );
    const put = async (headers: Record<string, string>) => {
      const response = await this.#send("PUT", url, { headers, body, idempotent: false }, key);
      if (response.status >= 500 || (!response.ok && ![409, 412, 404].includes(response.status))) {
        throw await this.#error(response, "checking conditional writes", key);
      }
      await drain(response);
      return response.status;
    };
    try {
      const created = await put({ "if-none-match": "*" });
      if (created < 200 || created >= 300) {
        throw new S3Error(`s3: checking conditional writes: creating ${key} answered ${created}`, {
          status: created,
          key,
        });
      }
      if ((await put({ "if-none-match": "*" })) < 300) throw refuse("ignores If-None-Match: * (an existing key was overwritten)");
      if ((await put({ "if-match": WRONG_ETAG })) < 300) throw refuse("ignores If-Match (a write with a wrong ETag succeeded)");
      const deleted = await this.#send("DELETE", url, { headers: { "if-match": WRONG_ETAG }, idempotent: true }, key);
      await drain(deleted);
      return { conditionalDelete: deleted.status === 412 };
    } finally {
      await this.#send("DELETE", url, { idempotent: true }, key).then(drain, () => undefined);
    }
  }

  async getMany(keys: string[]): Promise<(Uint8Array | null)[]> {
    return this.#guard("reading objects", async () => {
      keys.forEach(checkKey);
      return mapLimit(keys, this.#concurrency, async (key) => {
        const response = await this.#send("GET", this.#url(key), { idempotent: true }, key);
        if (await this.#absent(response, `reading ${key}`, key)) return null;
        if (!response.ok) throw await this.#error(response, `reading ${key}`, key);
        return new Uint8Array(await response.arrayBuffer());
      });
    });
  }

  /** One ranged GET per range (`Range: bytes=a-b`); a range past the end gives what there is. */
  async getRanges(ranges: ByteRange[]): Promise<(Uint8Array | null)[]> {
    return this.#guard("reading ranges", async () => {
      ranges.forEach(({ key }) => checkKey(key));
      return mapLimit(ranges, this.#concurrency, async ({ key, start, len }) => {
        if (len <= 0) return (await this.getMany([key]))[0] === null ? null : new Uint8Array(0);
        const headers = { range: `bytes=${start}-${start + len - 1}` };
        const response = await this.#send("GET", this.#url(key), { idempotent: true, headers }, key);
        if (await this.#absent(response, `reading ${key}`, key)) return null;
        // Not satisfiable: the range starts past the end.
        if (response.status === 416) {
          await drain(response);
          return new Uint8Array(0);
        }
        if (!response.ok) throw await this.#error(response, `reading ${key}`, key);
        const bytes = new Uint8Array(await response.arrayBuffer());
        // A server that ignores Range answers the whole value (200): cut it here.
        return response.status === 206 ? bytes : bytes.slice(start, start + len);
      });
    });
  }

  async putMany(objects: { key: string; bytes: Uint8Array }[]): Promise<void> {
    return this.#guard("writing objects", async () => {
      for (const { key, bytes } of objects) {
        checkKey(key);
        if (!(bytes instanceof Uint8Array)) throw new StorageError(`bytes of ${key} are not a Uint8Array`);
      }
      if (objects.length === 0) return;
      await this.#writable();
      await mapLimit(objects, this.#concurrency, ({ key, bytes }) => this.#putObject(key, bytes));
    });
  }

  async #putObject(key: string, bytes: Uint8Array): Promise<void> {
    const url = this.#url(key);
    const headers = { "content-type": "application/octet-stream" };
    for (let attempt = 0; ; attempt++) {
      const response = await this.#send(
        "PUT",
        url,
        { headers: { ...headers, "if-none-match": "*" }, body: bytes, idempotent: true },
        key,
      );
      if (response.ok) return drain(response);
      if (response.status === 409 && attempt < this.#retries) {
        // Another writer is creating the same object right now.
        await drain(response);
        await backoff(attempt, 50, 1000);
        continue;
      }
      if (response.status !== 412) throw await this.#error(response, `writing ${key}`, key);
      await drain(response);
      if (await this.#refresh(key)) return;
      // Deleted (by a collection) between the two requests: write it again.
      if (attempt >= this.#retries) throw new S3Error(`s3: writing ${key}: it keeps disappearing`, { status: 404, key });
    }
  }

  /**
   * Sets an existing object's modification time to now without touching its bytes: a copy
   * onto itself, replacing its metadata (S3 refuses a copy that changes nothing). False if
   * the object no longer exists.
   */
  async #refresh(key: string): Promise<boolean> {
    const response = await this.#send(
      "PUT",
      this.#url(key),
      {
        headers: {
          "content-type": "application/octet-stream",
          "x-amz-copy-source": `/${encodeSegment(this.#bucket)}/${encodeKeyPath(this.#prefix + key)}`,
          "x-amz-metadata-directive": "REPLACE",
        },
        idempotent: true,
      },
      key,
    );
    if (response.status === 404) {
      await drain(response);
      return false;
    }
    if (!response.ok) throw await this.#error(response, `refreshing ${key}`, key);
    // A copy can fail after its 200 has been sent: the error is then in the body.
    const body = await response.text();
    if (elements(body, "Error").length > 0) {
      throw new S3Error(`s3: refreshing ${key}: ${text(body, "Code") ?? "error"}: ${text(body, "Message") ?? ""}`, {
        status: response.status,
        s3Code: text(body, "Code"),
        key,
      });
    }
    return true;
  }

  async list(prefix: string): Promise<Listed[]> {
    return this.#guard(`listing ${JSON.stringify(prefix)}`, async () => {
      checkPrefix(prefix);
      const out: Listed[] = [];
      let token: string | undefined;
      do {
        let query = `list-type=2&max-keys=${this.#pageSize}&prefix=${encodeSegment(this.#prefix + prefix)}`;
        if (token !== undefined) query += `&continuation-token=${encodeSegment(token)}`;
        const response = await this.#send("GET", `${this.#bucketUrl}?${query}`, { idempotent: true });
        if (!response.ok) throw await this.#error(response, `listing ${JSON.stringify(prefix)}`);
        const xml = await response.text();
        for (const item of elements(xml, "Contents")) {
          const key = text(item, "Key");
          if (key === undefined || !key.startsWith(this.#prefix)) continue;
          out.push({
            key: key.slice(this.#prefix.length),
            size: Number(text(item, "Size") ?? 0),
            modifiedMs: Date.parse(text(item, "LastModified") ?? ""),
          });
        }
        token = text(xml, "IsTruncated") === "true" ? text(xml, "NextContinuationToken") : undefined;
      } while (token !== undefined);
      return out;
    });
  }

  async delete(keys: string[]): Promise<void> {
    return this.#guard("deleting", async () => {
      keys.forEach(checkKey);
      if (keys.length === 0) return;
      await this.#writable();
      if (this.#deleteBatch === 0) {
        await mapLimit(keys, this.#concurrency, (key) => this.#deleteOne(key));
        return;
      }
      await mapLimit(chunks(keys, this.#deleteBatch), this.#concurrency, (batch) => this.#deleteBatchOf(batch));
    });
  }

  async #deleteOne(key: string): Promise<void> {
    const response = await this.#send("DELETE", this.#url(key), { idempotent: true }, key);
    if (!response.ok && response.status !== 404) throw await this.#error(response, `deleting ${key}`, key);
    await drain(response);
  }

  /** DeleteObjects, with the `Content-MD5` AWS requires on it. */
  async #deleteBatchOf(keys: string[]): Promise<void> {
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="${S3_NS}"><Quiet>true</Quiet>` +
      keys.map((key) => `<Object><Key>${escape(this.#prefix + key)}</Key></Object>`).join("") +
      `</Delete>`;
    const body = encoder.encode(xml);
    const response = await this.#send(
      "POST",
      `${this.#bucketUrl}?delete`,
      { headers: { "content-type": "application/xml", "content-md5": base64(md5(body)) }, body, idempotent: true },
    );
    if (response.status === 501) {
      // No DeleteObjects on this server: one request per key.
      await drain(response);
      await mapLimit(keys, this.#concurrency, (key) => this.#deleteOne(key));
      return;
    }
    if (!response.ok) throw await this.#error(response, `deleting ${keys.length} keys`);
    const result = await response.text();
    for (const failure of elements(result, "Error")) {
      const s3Code = text(failure, "Code");
      if (s3Code === "NoSuchKey") continue;
      const key = text(failure, "Key")?.slice(this.#prefix.length);
      throw new S3Error(`s3: deleting ${key}: ${s3Code ?? "error"}: ${text(failure, "Message") ?? ""}`, {
        status: response.status,
        s3Code,
        key,
      });
    }
  }

  async readRef(key: string): Promise<RefState | null> {
    return this.#guard(`reading ref ${key}`, async () => {
      checkKey(key);
      return this.#readRef(key);
    });
  }

  async #readRef(key: string): Promise<RefState | null> {
    const response = await this.#send("GET", this.#url(key), { idempotent: true, noStore: true }, key);
    if (await this.#absent(response, `reading ref ${key}`, key)) return null;
    if (!response.ok) throw await this.#error(response, `reading ref ${key}`, key);
    const etag = response.headers.get("etag");
    const value = decodeRef(key, await response.text());
    if (!etag) {
      throw new S3Error(`s3: reading ref ${key}: the response has no ETag (in a browser, expose it in the bucket's CORS rules)`, {
        status: response.status,
        key,
      });
    }
    return { value, version: etag };
  }

  async casRef(key: string, expected: RefState | null, value: string | null): Promise<CasResult> {
    return this.#guard(`updating ref ${key}`, async () => {
      checkCas(key, expected, value);
      const capabilities = await this.#writable();
      if (expected !== null && expected.version === "") {
        // A version this adapter could not learn (no ETag on a write): never matches.
        return { won: false, current: await this.#readRef(key) };
      }
      return value === null
        ? this.#casDelete(key, expected, capabilities)
        : this.#casPut(key, expected, value);
    });
  }

  /**
   * Replace `shallow` or `config` only if it holds exactly `expected`: read with its ETag,
   * compare, then a conditional `PUT` (`If-Match`, or `If-None-Match: *` to create) or
   * `DELETE` (`If-Match`). A precondition that fails is `false`.
   */
  async swap(key: string, expected: Uint8Array | null, value: Uint8Array | null): Promise<boolean> {
    return this.#guard(`replacing ${key}`, async () => {
      checkSwappable(key);
      const capabilities = await this.#writable();
      const url = this.#url(key);
      const read = await this.#send("GET", url, { idempotent: true, noStore: true }, key);
      let current: Uint8Array | null = null;
      let etag: string | null = null;
      if (!(await this.#absent(read, `reading ${key}`, key))) {
        if (!read.ok) throw await this.#error(read, `reading ${key}`, key);
        etag = read.headers.get("etag");
        current = new Uint8Array(await read.arrayBuffer());
      }
      if (!sameBytes(current, expected)) return false;
      if (current !== null && !etag) return false;
      let response: Response;
      if (value === null) {
        if (current === null) return true;
        if (!capabilities.conditionalDelete) {
          throw new S3Error(`s3: cannot remove ${key}: ${this.#bucketUrl} ignores If-Match on DELETE`, {
            status: 0,
            s3Code: "snapgit:NoConditionalDelete",
            key,
          });
        }
        response = await this.#send("DELETE", url, { headers: { "if-match": etag as string }, idempotent: false }, key);
      } else {
        const condition: Record<string, string> = current === null ? { "if-none-match": "*" } : { "if-match": etag as string };
        response = await this.#send(
          "PUT",
          url,
          { headers: { "content-type": "application/octet-stream", ...condition }, body: value, idempotent: false },
          key,
        );
      }
      if (response.ok) {
        await drain(response);
        return true;
      }
      if (response.status === 412 || response.status === 404 || response.status === 409) {
        await drain(response);
        return false;
      }
      throw await this.#error(response, `replacing ${key}`, key);
    });
  }

  async #casPut(key: string, expected: RefState | null, value: string): Promise<CasResult> {
    const url = this.#url(key);
    const body = encodeRef(value);
    const condition: Record<string, string> =
      expected === null ? { "if-none-match": "*" } : { "if-match": expected.version };
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#send(
          "PUT",
          url,
          { headers: { "content-type": "text/plain", ...condition }, body, idempotent: false },
          key,
        );
      } catch (error) {
        return this.#settle(key, value, error);
      }
      if (response.ok) {
        await drain(response);
        // Without an ETag the version is unknown: "" makes the next compare-and-swap re-read.
        return { won: true, version: response.headers.get("etag") ?? "" };
      }
      if (response.status === 412 || response.status === 404) {
        await drain(response);
        return { won: false, current: await this.#readRef(key) };
      }
      if (response.status === 409) {
        await drain(response);
        const current = await this.#readRef(key);
        if (attempt < this.#retries && sameRef(current, expected, "version")) {
          await backoff(attempt, 20, 500);
          continue;
        }
        return { won: false, current };
      }
      if (response.status >= 500 || response.status === 429) {
        await drain(response);
        return this.#settle(key, value, new S3Error(`s3: HTTP ${response.status}`, { status: response.status, key }));
      }
      throw await this.#error(response, `updating ref ${key}`, key);
    }
  }

  /** A write whose outcome is unknown: read the ref back; it won if the ref holds our value. */
  async #settle(key: string, value: string | null, cause: unknown): Promise<CasResult> {
    let current: RefState | null;
    try {
      current = await this.#readRef(key);
    } catch (error) {
      throw new S3Error(`s3: updating ref ${key}: outcome unknown (${(cause as Error)?.message ?? cause}), and reading it back failed`, {
        status: 0,
        key,
        cause: error,
      });
    }
    if (value === null ? current === null : current?.value === value) {
      return { won: true, version: current?.version ?? "" };
    }
    return { won: false, current };
  }

  async #casDelete(key: string, expected: RefState | null, capabilities: Capabilities): Promise<CasResult> {
    if (expected === null) {
      const current = await this.#readRef(key);
      return current === null ? { won: true, version: "" } : { won: false, current };
    }
    const url = this.#url(key);
    if (!capabilities.conditionalDelete) {
      if (!this.#unconditionalRefDelete) {
        throw new S3Error(
          `s3: cannot delete ref ${key}: ${this.#bucketUrl} ignores If-Match on DELETE, so a commit landing at the same time could be lost (set unconditionalRefDelete to accept that)`,
          { status: 0, s3Code: "snapgit:NoConditionalDelete", key },
        );
      }
      const current = await this.#readRef(key);
      if (!sameRef(current, expected, "version")) return { won: false, current };
      await this.#deleteOne(key);
      return { won: true, version: "" };
    }
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#send("DELETE", url, { headers: { "if-match": expected.version }, idempotent: false }, key);
      } catch (error) {
        return this.#settle(key, null, error);
      }
      if (response.ok) {
        await drain(response);
        return { won: true, version: "" };
      }
      if (response.status === 412 || response.status === 404) {
        await drain(response);
        return { won: false, current: await this.#readRef(key) };
      }
      if (response.status === 409) {
        await drain(response);
        const current = await this.#readRef(key);
        if (attempt < this.#retries && sameRef(current, expected, "version")) {
          await backoff(attempt, 20, 500);
          continue;
        }
        return { won: false, current };
      }
      if (response.status >= 500 || response.status === 429) {
        await drain(response);
        return this.#settle(key, null, new S3Error(`s3: HTTP ${response.status}`, { status: response.status, key }));
      }
      throw await this.#error(response, `deleting ref ${key}`, key);
    }
  }

  /**
   * An advisory lock: the object `locks/<name>` holding a token and its ttl, created with
   * `If-None-Match: *`. Expiry is judged on the server's clock where the response shows it
   * (`Last-Modified` + ttl against `Date`, one second of margin for their resolution), and
   * an expired lock is taken over with `If-Match` on its ETag, so two takers cannot both win.
   */
  async acquire(name: string, ttlMs: number): Promise<string | null> {
    return this.#guard(`acquiring lock ${name}`, async () => {
      const key = lockKey(name);
      checkTtl(ttlMs);
      await this.#writable();
      const url = this.#url(key);
      const token = newToken();
      const body = encoder.encode(
        JSON.stringify({ token, expiresMs: Date.now() + ttlMs, ttlMs }),
      );
      const created = await this.#send("PUT", url, { headers: { "if-none-match": "*" }, body, idempotent: false }, key);
      await drain(created);
      if (created.ok) return token;
      if (![412, 409].includes(created.status)) {
        throw new S3Error(`s3: acquiring lock ${name}: HTTP ${created.status}`, { status: created.status, key });
      }
      const held = await this.#readLock(key);
      if (held === null) return null; // released meanwhile; the caller may try again
      if (!held.expired) return null;
      const taken = await this.#send("PUT", url, { headers: { "if-match": held.etag }, body, idempotent: false }, key);
      await drain(taken);
      return taken.ok ? token : null;
    });
  }

  async release(name: string, token: string): Promise<void> {
    return this.#guard(`releasing lock ${name}`, async () => {
      const key = lockKey(name);
      const capabilities = await this.#writable();
      const held = await this.#readLock(key);
      if (held === null || held.token !== token) return;
      const url = this.#url(key);
      const response = capabilities.conditionalDelete
        ? await this.#send("DELETE", url, { headers: { "if-match": held.etag }, idempotent: false }, key)
        : // Without conditional deletes, mark it free with a compare-and-swap instead.
          await this.#send(
            "PUT",
            url,
            { headers: { "if-match": held.etag }, body: encodeLock({ token: "", expiresMs: 0 }), idempotent: false },
            key,
          );
      await drain(response);
    });
  }

  async #readLock(key: string): Promise<{ token: string; etag: string; expired: boolean } | null> {
    const response = await this.#send("GET", this.#url(key), { idempotent: true, noStore: true }, key);
    if (await this.#absent(response, `reading lock ${key}`, key)) return null;
    if (!response.ok) throw await this.#error(response, `reading lock ${key}`, key);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const etag = response.headers.get("etag") ?? "";
    const record = decodeLock(bytes);
    if (record === null || record.token === "") return { token: "", etag, expired: true };
    const ttlMs = (JSON.parse(new TextDecoder().decode(bytes)) as { ttlMs?: unknown }).ttlMs;
    const serverNow = Date.parse(response.headers.get("date") ?? "");
    const written = Date.parse(response.headers.get("last-modified") ?? "");
    const expired =
      typeof ttlMs === "number" && Number.isFinite(serverNow) && Number.isFinite(written)
        ? serverNow >= written + ttlMs + 1000
        : Date.now() >= record.expiresMs;
    return { token: record.token, etag, expired };
  }
}
