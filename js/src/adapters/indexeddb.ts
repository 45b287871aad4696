/**
 * A store in a browser's IndexedDB database: one object store for objects, one for refs
 * (and one for advisory locks). Every call is one transaction; a compare-and-swap reads,
 * compares and writes the ref inside a single readwrite transaction, which IndexedDB runs
 * alone against any other transaction on the refs store, in this tab or another.
 *
 * A ref's version is a counter kept with it, increased by each write; a compare-and-swap
 * checks the value and the version. Keys form one namespace across the stores, as in every
 * other adapter: `getMany`, `list` and `delete` see refs too (a ref's bytes are `<hex>\n`).
 */
import type { ByteRange, CasResult, Listed, RefState, StorageAdapter } from "../adapter.js";
import { StorageError } from "../adapter.js";
import { checkCas, checkKey, checkPrefix, checkSwappable, checkTtl, encodeRef, lockKey, newToken, sameBytes } from "./keys.js";

export interface IndexedDbAdapterOptions {
  /** The IndexedDB factory. Default `globalThis.indexedDB`. */
  indexedDB?: IDBFactory;
  /** The key range class of the same implementation. Default `globalThis.IDBKeyRange`. */
  IDBKeyRange?: typeof IDBKeyRange;
  /** Clock for modification times and lock expiry. Default `Date.now`. */
  now?: () => number;
}

interface ObjectRecord {
  bytes: Uint8Array;
  modifiedMs: number;
}

interface RefRecord {
  value: string;
  version: number;
  modifiedMs: number;
}

interface LockRecord {
  token: string;
  expiresMs: number;
}

const OBJECTS = "objects";
const REFS = "refs";
const LOCKS = "locks";
const SCHEMA_VERSION = 1;

function wrap(what: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const message = (error as Error | null)?.message ?? String(error);
  return new StorageError(`indexeddb: ${what}: ${message}`, { cause: error });
}

/**
 * Runs `body` in one transaction and resolves with what it passed to `done` once the
 * transaction has committed. `body` must use request callbacks only (no `await` inside),
 * so the transaction stays active until its last request.
 */
function transact<T>(
  db: IDBDatabase,
  stores: string[],
  mode: IDBTransactionMode,
  body: (tx: IDBTransaction, done: (result: T) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let result: T | undefined;
    let tx: IDBTransaction;
    try {
      tx = db.transaction(stores, mode);
    } catch (error) {
      reject(error);
      return;
    }
    tx.oncomplete = () => resolve(result as T);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
    try {
      body(tx, (value) => {
        result = value;
      });
    } catch (error) {
      tx.abort();
      reject(error);
    }
  });
}

export class IndexedDbAdapter implements StorageAdapter {
  readonly #db: IDBDatabase;
  readonly #keyRange: typeof IDBKeyRange;
  readonly #now: () => number;

  private constructor(db: IDBDatabase, keyRange: typeof IDBKeyRange, now: () => number) {
    this.#db = db;
    this.#keyRange = keyRange;
    this.#now = now;
  }

  /** Opens (creating if needed) the database `name`. */
  static async open(name: string, options: IndexedDbAdapterOptions = {}): Promise<IndexedDbAdapter> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    const keyRange = options.IDBKeyRange ?? globalThis.IDBKeyRange;
    if (!factory || !keyRange) throw new StorageError("indexeddb: no IndexedDB in this runtime");
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = factory.open(name, SCHEMA_VERSION);
      request.onupgradeneeded = () => {
        const created = request.result;
        for (const store of [OBJECTS, REFS, LOCKS]) {
          if (!created.objectStoreNames.contains(store)) created.createObjectStore(store);
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(wrap(`cannot open database ${name}`, request.error));
    });
    // Let another tab upgrade the schema instead of blocking it forever.
    db.onversionchange = () => db.close();
    return new IndexedDbAdapter(db, keyRange, options.now ?? Date.now);
  }

  /** Closes the database connection. */
  close(): void {
    this.#db.close();
  }

  async getMany(keys: string[]): Promise<(Uint8Array | null)[]> {
    keys.forEach(checkKey);
    try {
      return await transact<(Uint8Array | null)[]>(this.#db, [OBJECTS, REFS], "readonly", (tx, done) => {
        const out: (Uint8Array | null)[] = new Array(keys.length).fill(null);
        done(out);
        const objects = tx.objectStore(OBJECTS);
        const refs = tx.objectStore(REFS);
        keys.forEach((key, index) => {
          const request = objects.get(key);
          request.onsuccess = () => {
            const found = request.result as ObjectRecord | undefined;
            if (found) {
              out[index] = new Uint8Array(found.bytes);
              return;
            }
            const ref = refs.get(key);
            ref.onsuccess = () => {
              const record = ref.result as RefRecord | undefined;
              if (record) out[index] = encodeRef(record.value);
            };
          };
        });
      });
    } catch (error) {
      throw wrap("reading objects", error);
    }
  }

  async getRanges(ranges: ByteRange[]): Promise<(Uint8Array | null)[]> {
    // Values are held whole in the database: each range is cut from its value, read once.
    const keys = [...new Set(ranges.map(({ key }) => key))];
    const read = await this.getMany(keys);
    const values = new Map(keys.map((key, i) => [key, read[i]]));
    return ranges.map(({ key, start, len }) => values.get(key)?.slice(start, start + len) ?? null);
  }

  async putMany(objects: { key: string; bytes: Uint8Array }[]): Promise<void> {
    for (const { key, bytes } of objects) {
      checkKey(key);
      if (!(bytes instanceof Uint8Array)) throw new StorageError(`bytes of ${key} are not a Uint8Array`);
    }
    const now = this.#now();
    try {
      await transact<void>(this.#db, [OBJECTS], "readwrite", (tx) => {
        const store = tx.objectStore(OBJECTS);
        for (const { key, bytes } of objects) {
          const request = store.get(key);
          request.onsuccess = () => {
            const found = request.result as ObjectRecord | undefined;
            // An existing object keeps its bytes (content-addressed) and gets a fresh time.
            const record: ObjectRecord = found ? { ...found, modifiedMs: now } : { bytes: bytes.slice(), modifiedMs: now };
            store.put(record, key);
          };
        }
      });
    } catch (error) {
      throw wrap("writing objects", error);
    }
  }

  async list(prefix: string): Promise<Listed[]> {
    checkPrefix(prefix);
    try {
      const out = await transact<Listed[]>(this.#db, [OBJECTS, REFS], "readonly", (tx, done) => {
        const found: Listed[] = [];
        done(found);
        const range = prefix === "" ? undefined : this.#keyRange.lowerBound(prefix);
        for (const name of [OBJECTS, REFS]) {
          const cursorRequest = tx.objectStore(name).openCursor(range);
          cursorRequest.onsuccess = () => {
            const cursor = cursorRequest.result;
            if (!cursor) return;
            const key = String(cursor.key);
            if (!key.startsWith(prefix)) return;
            if (name === OBJECTS) {
              const record = cursor.value as ObjectRecord;
              found.push({ key, size: record.bytes.byteLength, modifiedMs: record.modifiedMs });
            } else {
              const record = cursor.value as RefRecord;
              found.push({ key, size: record.value.length + 1, modifiedMs: record.modifiedMs });
            }
            cursor.continue();
          };
        }
      });
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    } catch (error) {
      throw wrap(`listing ${JSON.stringify(prefix)}`, error);
    }
  }

  async delete(keys: string[]): Promise<void> {
    keys.forEach(checkKey);
    try {
      await transact<void>(this.#db, [OBJECTS, REFS], "readwrite", (tx) => {
        const objects = tx.objectStore(OBJECTS);
        const refs = tx.objectStore(REFS);
        for (const key of keys) {
          objects.delete(key);
          refs.delete(key);
        }
      });
    } catch (error) {
      throw wrap("deleting", error);
    }
  }

  async readRef(key: string): Promise<RefState | null> {
    checkKey(key);
    try {
      return await transact<RefState | null>(this.#db, [REFS], "readonly", (tx, done) => {
        done(null);
        const request = tx.objectStore(REFS).get(key);
        request.onsuccess = () => {
          const record = request.result as RefRecord | undefined;
          if (record) done({ value: record.value, version: String(record.version) });
        };
      });
    } catch (error) {
      throw wrap(`reading ref ${key}`, error);
    }
  }

  async casRef(key: string, expected: RefState | null, value: string | null): Promise<CasResult> {
    checkCas(key, expected, value);
    const now = this.#now();
    try {
      return await transact<CasResult>(this.#db, [REFS], "readwrite", (tx, done) => {
        const store = tx.objectStore(REFS);
        const request = store.get(key);
        request.onsuccess = () => {
          const record = request.result as RefRecord | undefined;
          const current = record ? { value: record.value, version: String(record.version) } : null;
          const matches =
            current === null || expected === null
              ? current === expected
              : current.value === expected.value && current.version === expected.version;
          if (!matches) {
            done({ won: false, current });
            return;
          }
          if (value === null) {
            if (record) store.delete(key);
            done({ won: true, version: "" });
            return;
          }
          const version = (record?.version ?? 0) + 1;
          store.put({ value, version, modifiedMs: now } satisfies RefRecord, key);
          done({ won: true, version: String(version) });
        };
      });
    } catch (error) {
      throw wrap(`updating ref ${key}`, error);
    }
  }

  /** Replace `shallow` or `config` only if it holds exactly `expected`: one readwrite transaction. */
  async swap(key: string, expected: Uint8Array | null, value: Uint8Array | null): Promise<boolean> {
    checkSwappable(key);
    const now = this.#now();
    try {
      return await transact<boolean>(this.#db, [OBJECTS], "readwrite", (tx, done) => {
        const store = tx.objectStore(OBJECTS);
        const request = store.get(key);
        request.onsuccess = () => {
          const found = request.result as ObjectRecord | undefined;
          if (!sameBytes(found ? new Uint8Array(found.bytes) : null, expected)) {
            done(false);
            return;
          }
          if (value === null) store.delete(key);
          else store.put({ bytes: value.slice(), modifiedMs: now } satisfies ObjectRecord, key);
          done(true);
        };
      });
    } catch (error) {
      throw wrap(`replacing ${key}`, error);
    }
  }

  async acquire(name: string, ttlMs: number): Promise<string | null> {
    const key = lockKey(name);
    checkTtl(ttlMs);
    const now = this.#now();
    const token = newToken();
    try {
      return await transact<string | null>(this.#db, [LOCKS], "readwrite", (tx, done) => {
        const store = tx.objectStore(LOCKS);
        const request = store.get(key);
        request.onsuccess = () => {
          const held = request.result as LockRecord | undefined;
          if (held && held.expiresMs > now) {
            done(null);
            return;
          }
          store.put({ token, expiresMs: now + ttlMs } satisfies LockRecord, key);
          done(token);
        };
      });
    } catch (error) {
      throw wrap(`acquiring lock ${name}`, error);
    }
  }

  async release(name: string, token: string): Promise<void> {
    const key = lockKey(name);
    try {
      await transact<void>(this.#db, [LOCKS], "readwrite", (tx) => {
        const store = tx.objectStore(LOCKS);
        const request = store.get(key);
        request.onsuccess = () => {
          if ((request.result as LockRecord | undefined)?.token === token) store.delete(key);
        };
      });
    } catch (error) {
      throw wrap(`releasing lock ${name}`, error);
    }
  }
}
