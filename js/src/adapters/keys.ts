/**
 * Checks shared by every adapter: what a key, a ref value and a lock name may be, and how a
 * ref's value is stored (git's loose ref format).
 *
 * Core builds every key from validated names, so these checks should never fire; they are the
 * last line that keeps a key from escaping its store (`..`, an absolute path) or a ref file from
 * holding something git cannot read.
 */
import { StorageError } from "../adapter.js";

const MAX_KEY_LENGTH = 1024;

/**
 * Throws unless `key` is a relative, `/`-separated path with no empty, `.` or `..` component.
 * One pass over the characters: every stored object's key goes through here.
 */
export function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new StorageError(`invalid key ${JSON.stringify(key)}: empty or longer than ${MAX_KEY_LENGTH}`);
  }
  let badComponent = false;
  // The start of the current component, and how many of its characters are dots (-1 once
  // it holds anything else).
  let start = 0;
  let dots = 0;
  for (let i = 0; i <= key.length; i++) {
    const c = i < key.length ? key.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      if (i === start || dots === 1 || dots === 2) badComponent = true;
      start = i + 1;
      dots = 0;
    } else if (c < 0x20 || c === 0x7f || c === 0x5c) {
      // Control characters cannot appear in XML 1.0 listings, and backslashes are separators on Windows.
      throw new StorageError(`invalid key ${JSON.stringify(key)}: control character or backslash`);
    } else if (c === 0x2e && dots >= 0) {
      dots++;
    } else {
      dots = -1;
    }
  }
  if (badComponent) {
    throw new StorageError(`invalid key ${JSON.stringify(key)}: empty, "." or ".." component`);
  }
}

/** Throws unless `prefix` is empty or a key prefix (it may end with `/`). */
export function checkPrefix(prefix: string): void {
  if (typeof prefix !== "string") throw new StorageError(`invalid prefix ${JSON.stringify(prefix)}`);
  if (prefix === "") return;
  checkKey(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix);
}

const REF_VALUE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** Throws unless `value` is a full lowercase object id (SHA-1 or SHA-256). */
export function checkRefValue(value: string): void {
  if (typeof value !== "string" || !REF_VALUE.test(value)) {
    throw new StorageError(`invalid ref value ${JSON.stringify(value)}: expected a full hex object id`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** A ref's stored bytes: git's loose ref format, `<hex>\n`. */
export function encodeRef(value: string): Uint8Array {
  return encoder.encode(`${value}\n`);
}

/** The value of a stored ref; throws a `StorageError` naming the key if it is not `<hex>\n`. */
export function decodeRef(key: string, bytes: Uint8Array | string): string {
  const text = typeof bytes === "string" ? bytes : decoder.decode(bytes);
  const value = text.endsWith("\n") ? text.slice(0, -1) : text;
  if (!REF_VALUE.test(value)) {
    const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
    throw new StorageError(
      text.startsWith("ref: ")
        ? `ref ${key} is a symbolic ref (${shown}); only direct refs are supported`
        : `ref ${key} holds ${shown}, not an object id`,
    );
  }
  return value;
}

/**
 * A lock name as one file or object name: URL-encoded, with `~` encoded too so adapters can use
 * `~` to build names that never collide with a lock's own.
 */
export function lockKey(name: string): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 200) {
    throw new StorageError(`invalid lock name ${JSON.stringify(name)}`);
  }
  checkKey(name);
  return `locks/${encodeURIComponent(name).replace(/~/g, "%7E")}`;
}

/**
 * A random token (128 bits, hex) for a lock holder or a temporary name. Tokens need to be
 * unique, not secret: without Web Crypto (Node 18 without its flag) `Math.random` serves.
 */
export function newToken(): string {
  const bytes = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Checks `ttlMs` for `acquire`. */
export function checkTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new StorageError(`invalid lock ttl ${ttlMs}: expected a positive number of milliseconds`);
  }
}

/** The stored form of a lock: who holds it and until when (milliseconds since the epoch). */
export interface LockRecord {
  token: string;
  expiresMs: number;
}

export function encodeLock(record: LockRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record));
}

/** A lock record, or `null` when the bytes are not one (treated as expired by every adapter). */
export function decodeLock(bytes: Uint8Array | string): LockRecord | null {
  try {
    const parsed: unknown = JSON.parse(typeof bytes === "string" ? bytes : decoder.decode(bytes));
    if (
      parsed !== null &&
      typeof parsed === "object" &&
      typeof (parsed as LockRecord).token === "string" &&
      typeof (parsed as LockRecord).expiresMs === "number"
    ) {
      return { token: (parsed as LockRecord).token, expiresMs: (parsed as LockRecord).expiresMs };
    }
  } catch {
    // Not JSON: a torn or foreign file; the caller treats it as expired.
  }
  return null;
}

/** Whether a ref's current state satisfies the `expected` argument of `casRef`. */
export function sameRef(
  current: { value: string; version: string } | null,
  expected: { value: string; version: string } | null,
  compare: "value" | "version",
): boolean {
  if (current === null || expected === null) return current === expected;
  return compare === "value" ? current.value === expected.value : current.version === expected.version;
}

/** Checks the arguments of `casRef`, shared so every adapter rejects the same inputs. */
export function checkCas(
  key: string,
  expected: { value: string; version: string } | null,
  value: string | null,
): void {
  checkKey(key);
  if (expected !== null) {
    if (typeof expected !== "object" || typeof expected.version !== "string") {
      throw new StorageError(`invalid expected state for ${key}: ${JSON.stringify(expected)}`);
    }
    checkRefValue(expected.value);
  }
  if (value !== null) checkRefValue(value);
}

/** The files a `swap()` may replace: git's whole-file state, rewritten under `<file>.lock`. */
export function checkSwappable(key: string): void {
  checkKey(key);
  if (key !== "shallow" && key !== "config") {
    throw new StorageError(`${key} is not a file that can be replaced (only shallow and config)`);
  }
}

/** Whether two stored values (`null`: absent) hold the same bytes. */
export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
