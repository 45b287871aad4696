/**
 * The async driver: one loop that carries out the steps an engine operation asks for
 * against a storage adapter. It makes no decisions of its own — which objects, which
 * keys, what to retry and when to give up are the engine's — except how long to wait
 * after contention (a lost compare-and-swap or a busy lock), which is the driver's:
 * jittered exponential backoff, as the engine's blocking driver documents it.
 */

import type { StorageAdapter } from "./adapter.js";
import { SnapgitError, fromEngine } from "./errors.js";

/** A running engine operation (the WebAssembly `Op`). */
export interface EngineOp {
  /** The next step, as JSON text. */
  poll(): string;
  /** The bytes of a `put` step's objects or a `done` step's files, end to end. */
  bytes(): Uint8Array;
  provide(objects: unknown): void;
  answer(value: unknown): void;
  /** Answer a `cas` step that won with the ref's new version. */
  answerWon(version: string): void;
  free(): void;
}

/** What the engine asks for, as the WebAssembly reports it. */
type Step =
  | { type: "get"; keys: string[] }
  | { type: "put"; keys: string[]; ends: number[] }
  | { type: "readRef"; key: string }
  | { type: "cas"; key: string; expected: { value: string; version: string } | null; value: string | null }
  | { type: "list"; prefix: string }
  | { type: "delete"; keys: string[] }
  | { type: "lock"; name: string; ttlMs: number }
  | { type: "unlock"; name: string; token: string }
  | { type: "done"; value: unknown; ends?: number[] };

/** How the driver runs. */
export interface DriverOptions {
  /** The most object reads in flight at once. */
  concurrency: number;
  /** The first backoff window after contention, in milliseconds. */
  backoffBaseMs: number;
  /** The largest backoff window, in milliseconds. */
  backoffMaxMs: number;
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
 * The files of a `done` step, as the `data` of the items of its value (of the value
 * itself when it is not an array). Each file gets its own copy, not a view of the
 * shared buffer: a caller may keep one file's bytes without keeping every file's.
 */
function withData(value: unknown, ends: number[], bytes: Uint8Array): unknown {
  const items = (Array.isArray(value) ? value : [value]) as { data?: Uint8Array }[];
  // One file: the buffer is its own already.
  if (items.length === 1 && ends[0] === bytes.length) {
    (items[0] as { data?: Uint8Array }).data = bytes;
    return value;
  }
  let start = 0;
  for (let i = 0; i < items.length; i++) {
    const end = ends[i] as number;
    (items[i] as { data?: Uint8Array }).data = bytes.slice(start, end);
    start = end;
  }
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Equal jitter: half of base x 2^(n-1) (capped), plus a random part of the other half. */
function backoff(options: DriverOptions, n: number): Promise<void> {
  const window = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** Math.min(n - 1, 30));
  return sleep(window / 2 + (Math.random() * window) / 2);
}

function noLocks(method: "acquire" | "release"): never {
  throw new SnapgitError("STORAGE", `storage failed: this adapter does not support locks (no ${method} method)`);
}

function checkedBatch(result: unknown, count: number): (Uint8Array | null)[] {
  if (!Array.isArray(result) || result.length !== count) {
    throw new SnapgitError(
      "STORAGE",
      `storage adapter answered badly: getMany must return one entry per key (${count})`,
      { value: result },
    );
  }
  return result as (Uint8Array | null)[];
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

/**
 * Run `op` to completion against `adapter` and return its result. The operation is
 * freed whatever happens.
 */
export async function drive<T>(op: EngineOp, adapter: StorageAdapter, options: DriverOptions): Promise<T> {
  let lost = 0;
  let busy = 0;
  try {
    for (;;) {
      const step = JSON.parse(engine(() => op.poll())) as Step;
      // Adapter calls are awaited in place (not through `storage`): a warm commit is a
      // few steps, and each extra async frame costs a turn of the microtask queue.
      switch (step.type) {
        case "done":
          return (step.ends ? withData(step.value, step.ends, op.bytes()) : step.value) as T;
        case "get": {
          const objects = await getAll(adapter, step.keys, options.concurrency);
          engine(() => op.provide(objects));
          break;
        }
        case "put": {
          const objects = putObjects(step.keys, step.ends, op.bytes());
          try {
            await adapter.putMany(objects);
          } catch (error) {
            throw storageFailed("putMany", error);
          }
          engine(() => op.answer(undefined));
          break;
        }
        case "readRef": {
          let state;
          try {
            state = await adapter.readRef(step.key);
          } catch (error) {
            throw storageFailed("readRef", error);
          }
          engine(() => op.answer(state));
          break;
        }
        case "cas": {
          let result;
          try {
            result = await adapter.casRef(step.key, step.expected, step.value);
          } catch (error) {
            throw storageFailed("casRef", error);
          }
          // The usual answer crosses as one string; any other goes as it is, to be checked.
          const version = (result as { won?: unknown; version?: unknown } | null)?.version;
          if (typeof result === "object" && result?.won === true && typeof version === "string") {
            engine(() => op.answerWon(version));
          } else {
            engine(() => op.answer(result));
          }
          if (result && result.won === false) await backoff(options, ++lost);
          break;
        }
        case "list": {
          const listed = await storage("list", () => adapter.list(step.prefix));
          engine(() => op.answer(listed));
          break;
        }
        case "delete":
          await storage("delete", () => adapter.delete(step.keys));
          engine(() => op.answer(undefined));
          break;
        case "lock": {
          const acquire = adapter.acquire?.bind(adapter) ?? noLocks("acquire");
          const token = await storage("acquire", () => acquire(step.name, step.ttlMs));
          engine(() => op.answer(token));
          if (token === null || token === undefined) await backoff(options, ++busy);
          break;
        }
        case "unlock": {
          const release = adapter.release?.bind(adapter) ?? noLocks("release");
          await storage("release", () => release(step.name, step.token));
          engine(() => op.answer(undefined));
          break;
        }
        default:
          throw new SnapgitError("MISUSE", `the engine asked for an unknown step: ${String((step as { type: unknown }).type)}`);
      }
    }
  } finally {
    op.free();
  }
}
