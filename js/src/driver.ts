/**
 * The async driver: one loop that carries out the steps an engine operation asks for
 * against a storage adapter (and, for a push or fetch, against a git remote with
 * `fetch()`). It makes no decisions of its own: which objects, which keys, which
 * requests, what to retry, how long to wait before it (a `wait` step, after a lost
 * compare-and-swap or a busy lock) and when to give up are the engine's.
 */

import type { ByteRange, StorageAdapter } from "./adapter.js";
import { SnapgitError, fromEngine } from "./errors.js";
import { pack } from "./pack.js";
import type { GcProgress } from "./types.js";

/** A running engine operation (the WebAssembly `Op`). */
export interface EngineOp {
  /** The next step, as JSON text. */
  poll(): string;
  /** The bytes of a `put` step's objects or a `done` step's files, end to end. */
  bytes(): Uint8Array;
  /** Answer a `get` step: the objects end to end, each one's length (negative if absent). */
  provide(bytes: Uint8Array, lens: Float64Array): void;
  /** Answer a `readRef` step: the ref's value and version, or neither. */
  answerRef(value?: string, version?: string): void;
  /** Answer a `cas` step that won with the ref's new version. */
  answerWon(version: string): void;
  /** Answer a `cas` step that lost with the ref's current value and version, or neither. */
  answerLost(value?: string, version?: string): void;
  /** Answer a `swap` step: whether the file was replaced. */
  answerSwapped(replaced: boolean): void;
  /** Answer a `list` step with the listing, packed. */
  answerList(listed: Uint8Array): void;
  /** Answer a `lock` step with the token, or none if busy. */
  answerLock(token?: string): void;
  /** Answer an `http` step with the response's status, content type and body. */
  answerHttp(status: number, contentType: string | undefined, body: Uint8Array): void;
  /** Answer a `put`, `delete`, `unlock` or `wait` step that was carried out. */
  answer(): void;
  /** How far the operation has come, as JSON text; `undefined` if it does not report progress. */
  progress(): string | undefined;
  free(): void;
}

/** What the engine asks for, as the WebAssembly reports it. */
type Step =
  | { type: "get"; keys: string[] }
  | { type: "getRanges"; ranges: ByteRange[] }
  | { type: "put"; keys: string[]; ends: number[] }
  | { type: "readRef"; key: string }
  | { type: "cas"; key: string; expected: { value: string; version: string } | null; value: string | null }
  | { type: "swap"; key: string; expected: number | null; new: number | null }
  | { type: "list"; prefix: string }
  | { type: "delete"; keys: string[] }
  | { type: "lock"; name: string; ttlMs: number }
  | { type: "unlock"; name: string; token: string }
  | { type: "wait"; ms: number }
  | { type: "http"; method: "GET" | "POST"; url: string; headers: [string, string][]; maxResponseBytes: number }
  | { type: "done"; value: unknown; ends?: number[] };

/** How the driver runs. */
export interface DriverOptions {
  /** The most object reads in flight at once. */
  concurrency: number;
  /** Headers for a request to a remote that carries no `Authorization` of its own. */
  remoteHeaders?: (url: string) => Record<string, string> | undefined;
}

/**
 * How far one HTTP transfer of a push, fetch or import has come, reported to its
 * `onProgress` as the request goes out, as each part of the response arrives, and at
 * its end.
 */
export interface TransferProgress {
  method: "GET" | "POST";
  /** The URL (never with credentials: they travel as a header). */
  url: string;
  /** Bytes of the request body sent. */
  sent: number;
  /** Bytes of the response body received so far. */
  received: number;
  /** The response's declared length, or `null`. */
  expected: number | null;
  /** The response is whole. */
  done: boolean;
}

/** What one run of an operation takes besides its request. */
export interface RunControl {
  /** Cancels the run: checked before each storage round and during a wait. */
  signal?: AbortSignal;
  /** Called after each step of an operation that reports progress (GC, footprint). */
  onProgress?: (progress: GcProgress) => void;
  /** Called as each HTTP transfer to a git remote goes (push, fetch, import). */
  onTransfer?: (progress: TransferProgress) => void;
}

/** Why `signal` aborted: its reason, or an `AbortError` where the runtime gives none. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** Call into the engine, turning its errors into `SnapgitError`s. */
export function engine<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromEngine(error);
  }
}

/** What the adapter threw, as a `STORAGE` error that keeps it as `cause`. */
function storageFailed(what: string, error: unknown): SnapgitError {
  const message = error instanceof Error ? error.message : String(error);
  return new SnapgitError("STORAGE", `storage failed: ${what}: ${message}`, { cause: error });
}

/** Call the adapter; anything it throws becomes a `STORAGE` error that keeps it as `cause`. */
async function storage<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw storageFailed(what, error);
  }
}

/**
 * The byte strings of a `done` step's value (core's serde form writes each file's
 * `data` and a diff's `patch` as an index into `ends`), each replaced by its bytes. Each
 * gets its own copy, not a view of the shared buffer: a caller may keep one file's bytes
 * without keeping every file's.
 */
function withBytes(value: unknown, ends: number[], bytes: Uint8Array): unknown {
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) return node.forEach(walk);
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      if ((key === "data" || key === "patch") && typeof item === "number") {
        const start = item === 0 ? 0 : (ends[item - 1] as number);
        const end = ends[item] as number;
        record[key] = start === 0 && end === bytes.length ? bytes : bytes.slice(start, end);
      } else {
        walk(item);
      }
    }
  };
  walk(value);
  return value;
}

/** The objects of a `put` step: each key with its own copy of its bytes. */
function putObjects(keys: string[], ends: number[], bytes: Uint8Array): { key: string; bytes: Uint8Array }[] {
  const objects = new Array<{ key: string; bytes: Uint8Array }>(keys.length);
  let start = 0;
  for (let i = 0; i < keys.length; i++) {
    const end = ends[i] as number;
    objects[i] = { key: keys[i] as string, bytes: bytes.slice(start, end) };
    start = end;
  }
  return objects;
}

/** Wait `ms`, or reject with `signal`'s reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const aborted = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }, ms);
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

function noLocks(method: "acquire" | "release"): never {
  throw new SnapgitError("STORAGE", `storage failed: this adapter does not support locks (no ${method} method)`);
}

/** A storage adapter answered with a value of the wrong shape. */
function badAnswer(what: string, value: unknown): SnapgitError {
  return new SnapgitError("STORAGE", `storage adapter answered badly: ${what}`, { value });
}

function checkedBatch(result: unknown, count: number): (Uint8Array | null)[] {
  if (!Array.isArray(result) || result.length !== count) {
    throw badAnswer(`getMany must return one entry per key (${count})`, result);
  }
  for (const item of result) {
    if (item !== null && item !== undefined && !(item instanceof Uint8Array)) {
      throw badAnswer("get must answer an array with one Uint8Array or null per key", item);
    }
  }
  return result as (Uint8Array | null)[];
}

/** Hand a `get` step's objects to the engine: their bytes end to end and each one's length. */
function provide(op: EngineOp, objects: (Uint8Array | null | undefined)[]): void {
  const lens = new Float64Array(objects.length);
  let total = 0;
  objects.forEach((o, i) => {
    lens[i] = o ? o.length : -1;
    total += o ? o.length : 0;
  });
  let bytes: Uint8Array;
  const only = objects.length === 1 ? objects[0] : undefined;
  if (only) {
    bytes = only;
  } else {
    bytes = new Uint8Array(total);
    let at = 0;
    for (const o of objects) {
      if (!o) continue;
      bytes.set(o, at);
      at += o.length;
    }
  }
  engine(() => op.provide(bytes, lens));
}

type RefState = { value: string; version: string } | null;

/** A ref state from the adapter: `{ value, version }` or `null`, checked. */
function refState(state: unknown): RefState {
  if (state === null || state === undefined) return null;
  const s = state as { value?: unknown; version?: unknown };
  if (typeof s !== "object" || typeof s.value !== "string" || typeof s.version !== "string") {
    throw badAnswer("a ref must be null or { value: string, version: string }", state);
  }
  return s as RefState;
}

/** A listing from the adapter, checked and packed. */
function listing(listed: unknown): Uint8Array {
  const shape = "a listing must be an array of { key: string, size: number, modifiedMs: number }";
  if (!Array.isArray(listed)) throw badAnswer(shape, listed);
  return pack((p) => {
    p.u32(listed.length);
    for (const item of listed) {
      const { key, size, modifiedMs } = (item ?? {}) as { key?: unknown; size?: unknown; modifiedMs?: unknown };
      if (typeof key !== "string" || typeof size !== "number" || !(size >= 0) || typeof modifiedMs !== "number") {
        throw badAnswer(shape, item);
      }
      p.text(key).f64(size).f64(modifiedMs);
    }
  });
}

/**
 * Read byte ranges (of packs): with the adapter's `getRanges` where it has one, otherwise
 * by reading each key whole once and cutting it.
 */
async function getRanges(
  adapter: StorageAdapter,
  ranges: ByteRange[],
  limit: number,
): Promise<(Uint8Array | null)[]> {
  if (adapter.getRanges) {
    const read = adapter.getRanges.bind(adapter);
    return checkedBatch(await storage("getRanges", () => read(ranges)), ranges.length);
  }
  const keys = [...new Set(ranges.map((r) => r.key))];
  const whole = new Map<string, Uint8Array | null>();
  (await getAll(adapter, keys, limit)).forEach((bytes, i) => whole.set(keys[i] as string, bytes));
  return ranges.map(({ key, start, len }) => whole.get(key)?.slice(start, start + len) ?? null);
}

/**
 * Read `keys` with at most `limit` reads in flight: one `getMany` call when the batch
 * fits, otherwise a pool of `limit` workers reading one key each.
 */
async function getAll(adapter: StorageAdapter, keys: string[], limit: number): Promise<(Uint8Array | null)[]> {
  if (keys.length <= limit) {
    return checkedBatch(await storage("getMany", () => adapter.getMany(keys)), keys.length);
  }
  const out: (Uint8Array | null)[] = new Array(keys.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < keys.length) {
      const index = next++;
      const key = keys[index] as string;
      try {
        const [bytes] = checkedBatch(await storage("getMany", () => adapter.getMany([key])), 1);
        out[index] = bytes ?? null;
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

/** What an `http` step's request got back. */
interface HttpResponse {
  status: number;
  contentType: string | undefined;
  body: Uint8Array;
}

/**
 * Send an `http` step's request with `fetch()` (redirects followed) and read the whole
 * response, whatever its status. No response at all is a `STORAGE` error that keeps
 * `fetch`'s as `cause`, as the native driver reports it; a body over the step's
 * `maxResponseBytes` is a `LIMIT` error, found before more than that is read.
 */
/** `step` with the store's headers for its URL, where it carries no credentials. */
function withRemoteHeaders(
  step: Extract<Step, { type: "http" }>,
  remoteHeaders: DriverOptions["remoteHeaders"],
): Extract<Step, { type: "http" }> {
  if (!remoteHeaders || step.headers.some(([name]) => name.toLowerCase() === "authorization")) return step;
  const extra = remoteHeaders(step.url);
  if (!extra) return step;
  return { ...step, headers: [...step.headers, ...Object.entries(extra)] };
}

async function http(
  step: Extract<Step, { type: "http" }>,
  body: Uint8Array,
  signal: AbortSignal | undefined,
  onTransfer?: (progress: TransferProgress) => void,
): Promise<HttpResponse> {
  const { method, url, maxResponseBytes: limit } = step;
  const transfer: TransferProgress = { method, url, sent: body.length, received: 0, expected: null, done: false };
  const report = () => onTransfer?.({ ...transfer });
  report();
  const failed = (error: unknown): unknown => {
    if (signal?.aborted) return abortReason(signal);
    const message = error instanceof Error ? error.message : String(error);
    return new SnapgitError("STORAGE", `storage failed: HTTP ${method} ${url} failed: ${message}`, { cause: error });
  };
  const tooLarge = () =>
    new SnapgitError("LIMIT", `the response to ${url} is over the limit of ${limit} bytes`, {
      value: limit,
      details: { limit },
    });
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: step.headers,
      // Bodies are never backed by a SharedArrayBuffer here.
      body: method === "POST" ? (body as Uint8Array<ArrayBuffer>) : undefined,
      redirect: "follow",
      signal,
    });
  } catch (error) {
    throw failed(error);
  }
  const status = response.status;
  const contentType = response.headers.get("content-type") ?? undefined;
  const stream = response.body;
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (response.headers.has("content-length")) transfer.expected = declared;
  report();
  if (declared > limit) {
    await stream?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!stream) {
    transfer.done = true;
    report();
    return { status, contentType, body: new Uint8Array(0) };
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
      transfer.received = total;
      report();
    }
  } catch (error) {
    if (error instanceof SnapgitError) throw error;
    throw failed(error);
  }
  transfer.done = true;
  report();
  if (chunks.length === 1) return { status, contentType, body: chunks[0] as Uint8Array };
  const whole = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return { status, contentType, body: whole };
}

/**
 * Run `op` to completion against `adapter` and return its result. The operation is
 * freed whatever happens. With `control.signal`, an abort stops the run before its next
 * storage round (or during a wait) and rejects with the signal's reason; `control.onProgress`
 * hears how far the operation has come after each of its steps.
 */
export async function drive<T>(
  op: EngineOp,
  adapter: StorageAdapter,
  options: DriverOptions,
  control: RunControl = {},
  shape: (result: any) => T = (result) => result,
): Promise<T> {
  const { signal, onProgress, onTransfer } = control;
  // The lock this run holds, released (best effort) if the run ends before the engine
  // releases it: an abort or a failure must not leave it to its TTL.
  let held: { name: string; token: string } | undefined;
  try {
    for (;;) {
      const step = JSON.parse(engine(() => op.poll())) as Step;
      if (onProgress) {
        const progress = op.progress();
        if (progress !== undefined) onProgress(JSON.parse(progress) as GcProgress);
      }
      // An abort stops the run before its next storage round, except releasing a lock:
      // that is cleanup, and after a compare-and-swap won it is all that is left.
      if (step.type !== "done" && step.type !== "unlock" && signal?.aborted) throw abortReason(signal);
      // Adapter calls are awaited in place (not through `storage`): a warm commit is a
      // few steps, and each extra async frame costs a turn of the microtask queue.
      switch (step.type) {
        case "done":
          return shape(step.ends ? withBytes(step.value, step.ends, op.bytes()) : step.value);
        case "get": {
          provide(op, await getAll(adapter, step.keys, options.concurrency));
          break;
        }
        case "getRanges": {
          provide(op, await getRanges(adapter, step.ranges, options.concurrency));
          break;
        }
        case "put": {
          const objects = putObjects(step.keys, step.ends, op.bytes());
          try {
            await adapter.putMany(objects);
          } catch (error) {
            throw storageFailed("putMany", error);
          }
          engine(() => op.answer());
          break;
        }
        case "readRef": {
          let state;
          try {
            state = await adapter.readRef(step.key);
          } catch (error) {
            throw storageFailed("readRef", error);
          }
          const ref = refState(state);
          engine(() => op.answerRef(ref?.value, ref?.version));
          break;
        }
        case "cas": {
          let result;
          try {
            result = await adapter.casRef(step.key, step.expected, step.value);
          } catch (error) {
            throw storageFailed("casRef", error);
          }
          const r = result as { won?: unknown; version?: unknown; current?: unknown } | null;
          if (r?.won === true) {
            if (typeof r.version !== "string") {
              throw badAnswer("a won compare-and-swap must carry a string version", result);
            }
            const version = r.version;
            engine(() => op.answerWon(version));
          } else if (r?.won === false) {
            const current = refState(r.current);
            engine(() => op.answerLost(current?.value, current?.version));
          } else {
            throw badAnswer("a compare-and-swap result must be { won: boolean, ... }", result);
          }
          break;
        }
        case "swap": {
          if (!adapter.swap) {
            throw storageFailed(
              "swap",
              new Error(`this storage adapter cannot replace the file ${step.key} (it has no swap()); a shallow or partial fetch needs it`),
            );
          }
          const bytes = op.bytes();
          const expectedLen = step.expected ?? 0;
          const expected = step.expected === null ? null : bytes.subarray(0, expectedLen);
          const value = step.new === null ? null : bytes.subarray(expectedLen, expectedLen + step.new);
          let replaced;
          try {
            replaced = await adapter.swap(step.key, expected, value);
          } catch (error) {
            throw storageFailed("swap", error);
          }
          if (typeof replaced !== "boolean") throw badAnswer("swap must resolve to a boolean", replaced);
          engine(() => op.answerSwapped(replaced));
          break;
        }
        case "list": {
          const listed = await storage("list", () => adapter.list(step.prefix));
          const packed = listing(listed);
          engine(() => op.answerList(packed));
          break;
        }
        case "delete":
          await storage("delete", () => adapter.delete(step.keys));
          engine(() => op.answer());
          break;
        case "lock": {
          const acquire = adapter.acquire?.bind(adapter) ?? noLocks("acquire");
          const token = await storage("acquire", () => acquire(step.name, step.ttlMs));
          if (token === null || token === undefined) {
            engine(() => op.answerLock(undefined));
          } else if (typeof token === "string") {
            held = { name: step.name, token };
            engine(() => op.answerLock(token));
          } else {
            throw badAnswer("a lock must answer a string token or null", token);
          }
          break;
        }
        case "unlock": {
          const release = adapter.release?.bind(adapter) ?? noLocks("release");
          await storage("release", () => release(step.name, step.token));
          held = undefined;
          engine(() => op.answer());
          break;
        }
        case "wait":
          await sleep(step.ms, signal);
          engine(() => op.answer());
          break;
        case "http": {
          const response = await http(withRemoteHeaders(step, options.remoteHeaders), op.bytes(), signal, onTransfer);
          engine(() => op.answerHttp(response.status, response.contentType, response.body));
          break;
        }
        default:
          throw new SnapgitError(
            "MISUSE",
            `the engine asked for an unknown step: ${String((step as { type: unknown }).type)}`,
          );
      }
    }
  } catch (error) {
    if (held) {
      const { name, token } = held;
      await Promise.resolve()
        .then(() => adapter.release?.(name, token))
        .catch(() => undefined);
    }
    throw error;
  } finally {
    op.free();
  }
}
