/**
 * The storage contract every adapter implements: a handful of calls on keys under one
 * store prefix. Core decides every key and every write; an adapter only moves bytes.
 *
 * A store is laid out as a bare git repository:
 *   objects/ab/cdef...                          loose objects (never modified once written)
 *   refs/namespaces/<repo>/refs/heads/<branch>  "<hex id>\n"
 */

/** A ref's value (a commit id in hex) and the backend's version of it (ETag, generation, counter). */
export interface RefState {
  value: string;
  version: string;
}

/** The outcome of a compare-and-swap on a ref. */
export type CasResult =
  | { won: true; version: string }
  | { won: false; current: RefState | null };

/** A listed key. */
export interface Listed {
  key: string;
  /** Stored size in bytes. */
  size: number;
  /** Last modification, milliseconds since the epoch. */
  modifiedMs: number;
}

/** A byte range of a stored value (of a pack). */
export interface ByteRange {
  key: string;
  /** The first byte. */
  start: number;
  /** How many bytes; a range past the end of the value gives what there is. */
  len: number;
}

export interface StorageAdapter {
  /** Stored bytes of each key, `null` where absent, in order. Fetch in parallel. */
  getMany(keys: string[]): Promise<(Uint8Array | null)[]>;
  /**
   * Optional: the bytes of each range, `null` where its key is absent, in order. Without
   * it, packs are read whole (once per read) and cut.
   */
  getRanges?(ranges: ByteRange[]): Promise<(Uint8Array | null)[]>;
  /**
   * Store each object unless its key exists (objects are content-addressed: an existing
   * one is identical). Should refresh the modification time of an object that exists, so a
   * concurrent garbage collection sees it as young.
   */
  putMany(objects: { key: string; bytes: Uint8Array }[]): Promise<void>;
  /** Every key under `prefix`. */
  list(prefix: string): Promise<Listed[]>;
  /** Delete keys; absent keys are fine. */
  delete(keys: string[]): Promise<void>;
  /** The ref at `key`, or `null`. */
  readRef(key: string): Promise<RefState | null>;
  /**
   * Set the ref at `key` to `value` (`null` deletes it) only if it is still `expected`
   * (`null`: only if it does not exist). Never overwrite on a mismatch: report the
   * current state instead.
   */
  casRef(key: string, expected: RefState | null, value: string | null): Promise<CasResult>;
  /**
   * Optional: replace the file at `key` (`shallow` or `config`, files git rewrites whole
   * under `<key>.lock`) with `value` (`null` removes it) only if it holds exactly
   * `expected` (`null`: only if it does not exist). `true` if replaced, `false` (nothing
   * changed) if not. Shallow and partial fetches need it; other operations never call it.
   */
  swap?(key: string, expected: Uint8Array | null, value: Uint8Array | null): Promise<boolean>;
  /** Optional advisory lock: a token, or `null` if held by someone else. */
  acquire?(name: string, ttlMs: number): Promise<string | null>;
  /** Release a lock only if `token` still holds it. */
  release?(name: string, token: string): Promise<void>;
}

/** An adapter failed; `cause` keeps the original error. */
export class StorageError extends Error {
  readonly code = "STORAGE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
  }
}
