/**
 * An in-memory store: for tests, benchmarks and short-lived caches.
 *
 * Every method does its work synchronously after one optional artificial delay, so a
 * compare-and-swap is atomic without a mutex (JS runs one task at a time per isolate).
 * Versions are counters from one sequence per adapter, so a version is never reused, even
 * after a ref is deleted and created again.
 */
import type { ByteRange, CasResult, Listed, RefState, StorageAdapter } from "../adapter.js";
import { StorageError } from "../adapter.js";
import {
  checkCas,
  checkKey,
  checkPrefix,
  checkTtl,
  decodeRef,
  encodeRef,
  lockKey,
  newToken,
  checkSwappable,
  sameBytes,
} from "./keys.js";
import { sleep } from "./concurrency.js";

export interface MemoryAdapterOptions {
  /**
   * Delay added once to every call, in milliseconds, standing for one storage round trip
   * (a batched call counts as one round, as a parallel fetch would). Default 0: no delay.
   */
  latencyMs?: number;
  /** Clock for modification times and lock expiry. Default `Date.now`. */
  now?: () => number;
}

/** Calls and keys seen by a `MemoryAdapter`, for benchmarks and tests. */
export interface MemoryCounters {
  /** Every call (one storage round each). */
  requests: number;
  getMany: number;
  putMany: number;
  list: number;
  delete: number;
  readRef: number;
  casRef: number;
  swap: number;
  acquire: number;
  release: number;
  /** Keys asked for by `getMany`. */
  keysRead: number;
  /** Objects passed to `putMany`. */
  keysWritten: number;
  /** `casRef` calls that lost. */
  casLost: number;
}

interface Entry {
  /** The stored bytes; for a ref written by `casRef`, made from `ref` when first needed. */
  bytes?: Uint8Array;
  /** A ref's value, kept as written so a compare-and-swap encodes and decodes nothing. */
  ref?: string;
  modifiedMs: number;
  version: number;
}

interface Lock {
  token: string;
  expiresMs: number;
}

function bytesOf(entry: Entry): Uint8Array {
  entry.bytes ??= encodeRef(entry.ref ?? "");
  return entry.bytes;
}

function zeroCounters(): MemoryCounters {
  return {
    requests: 0,
    getMany: 0,
    putMany: 0,
    list: 0,
    delete: 0,
    readRef: 0,
    casRef: 0,
    swap: 0,
    acquire: 0,
    release: 0,
    keysRead: 0,
    keysWritten: 0,
    casLost: 0,
  };
}

export class MemoryAdapter implements StorageAdapter {
  /** Counts since construction or the last `resetCounters()`. */
  counters: MemoryCounters = zeroCounters();
  /** Artificial delay per call in milliseconds; may be changed at any time. */
  latencyMs: number;

  readonly #entries = new Map<string, Entry>();
  readonly #locks = new Map<string, Lock>();
  readonly #now: () => number;
  #nextVersion = 1;

  constructor(options: MemoryAdapterOptions = {}) {
    this.latencyMs = options.latencyMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  resetCounters(): void {
    this.counters = zeroCounters();
  }

  /** Count a call; the artificial delay to await, if there is one. */
  #round(method: keyof MemoryCounters): Promise<void> | undefined {
    this.counters.requests++;
    this.counters[method]++;
    return this.latencyMs > 0 ? sleep(this.latencyMs) : undefined;
  }

  async getMany(keys: string[]): Promise<(Uint8Array | null)[]> {
    keys.forEach(checkKey);
    const wait = this.#round("getMany");
    if (wait) await wait;
    this.counters.keysRead += keys.length;
    return keys.map((key) => {
      const entry = this.#entries.get(key);
      return entry ? bytesOf(entry).slice() : null;
    });
  }

  async getRanges(ranges: ByteRange[]): Promise<(Uint8Array | null)[]> {
    ranges.forEach(({ key }) => checkKey(key));
    const wait = this.#round("getMany");
    if (wait) await wait;
    this.counters.keysRead += ranges.length;
    return ranges.map(({ key, start, len }) => {
      const entry = this.#entries.get(key);
      return entry ? bytesOf(entry).slice(start, start + len) : null;
    });
  }

  async putMany(objects: { key: string; bytes: Uint8Array }[]): Promise<void> {
    for (const { key, bytes } of objects) {
      checkKey(key);
      if (!(bytes instanceof Uint8Array)) throw new StorageError(`bytes of ${key} are not a Uint8Array`);
    }
    const wait = this.#round("putMany");
    if (wait) await wait;
    this.counters.keysWritten += objects.length;
    const now = this.#now();
    for (const { key, bytes } of objects) {
      const entry = this.#entries.get(key);
      if (entry) entry.modifiedMs = now;
      else this.#entries.set(key, { bytes: bytes.slice(), modifiedMs: now, version: this.#nextVersion++ });
    }
  }

  async list(prefix: string): Promise<Listed[]> {
    checkPrefix(prefix);
    const wait = this.#round("list");
    if (wait) await wait;
    const out: Listed[] = [];
    for (const [key, entry] of this.#entries) {
      if (key.startsWith(prefix)) out.push({ key, size: bytesOf(entry).length, modifiedMs: entry.modifiedMs });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(keys: string[]): Promise<void> {
    keys.forEach(checkKey);
    const wait = this.#round("delete");
    if (wait) await wait;
    for (const key of keys) this.#entries.delete(key);
  }

  async readRef(key: string): Promise<RefState | null> {
    checkKey(key);
    const wait = this.#round("readRef");
    if (wait) await wait;
    return this.#ref(key);
  }

  #ref(key: string): RefState | null {
    const entry = this.#entries.get(key);
    return entry ? { value: entry.ref ?? decodeRef(key, bytesOf(entry)), version: String(entry.version) } : null;
  }

  async casRef(key: string, expected: RefState | null, value: string | null): Promise<CasResult> {
    checkCas(key, expected, value);
    const wait = this.#round("casRef");
    if (wait) await wait;
    // From here to the return nothing awaits: the check and the write are one step.
    const current = this.#ref(key);
    const matches =
      current === null || expected === null
        ? current === expected
        : current.version === expected.version && current.value === expected.value;
    if (!matches) {
      this.counters.casLost++;
      return { won: false, current };
    }
    if (value === null) {
      this.#entries.delete(key);
      return { won: true, version: "" };
    }
    const version = this.#nextVersion++;
    this.#entries.set(key, { ref: value, modifiedMs: this.#now(), version });
    return { won: true, version: String(version) };
  }

  async swap(key: string, expected: Uint8Array | null, value: Uint8Array | null): Promise<boolean> {
    checkSwappable(key);
    const wait = this.#round("swap");
    if (wait) await wait;
    // From here to the return nothing awaits: the check and the write are one step.
    const entry = this.#entries.get(key);
    const current = entry ? bytesOf(entry) : null;
    if (!sameBytes(current, expected)) return false;
    if (value === null) this.#entries.delete(key);
    else this.#entries.set(key, { bytes: value.slice(), modifiedMs: this.#now(), version: this.#nextVersion++ });
    return true;
  }

  async acquire(name: string, ttlMs: number): Promise<string | null> {
    const key = lockKey(name);
    checkTtl(ttlMs);
    const wait = this.#round("acquire");
    if (wait) await wait;
    const now = this.#now();
    const held = this.#locks.get(key);
    if (held && held.expiresMs > now) return null;
    const token = newToken();
    this.#locks.set(key, { token, expiresMs: now + ttlMs });
    return token;
  }

  async release(name: string, token: string): Promise<void> {
    const key = lockKey(name);
    const wait = this.#round("release");
    if (wait) await wait;
    if (this.#locks.get(key)?.token === token) this.#locks.delete(key);
  }
}
