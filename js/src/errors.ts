/**
 * The one error type of the package: every failure is a `SnapgitError` with a stable
 * `code` and, where the cause names one, the offending `value`.
 */

/**
 * Why an operation failed. Stable: match on these, not on messages.
 *
 * - `INVALID_INPUT`: a bad argument (wrong type, invalid path, name, id, signature,
 *   message, option, cursor). `value` is the offending value, `field` the argument.
 * - `NOT_FOUND`: a repo, branch, commit or path that does not exist.
 * - `ALREADY_EXISTS`: a repo or branch that exists already.
 * - `CORRUPT`: stored data that is not what it must be (bad bytes, wrong hash, a ref
 *   that is not an id, an object a commit or tree names that the store lost). `value`
 *   names the object id or ref value.
 * - `CONFLICT`: the same path changed on both sides of a concurrent commit (`value` is
 *   the path; `ours` and `theirs` the blob ids, `null` for a delete), or something
 *   stands where a change writes (`at` is where).
 * - `LOST_RACE`: every attempt lost the compare-and-swap to other writers; nothing was
 *   committed. `value` is the number of attempts.
 * - `HEAD_MOVED`: the branch is not at `expectedHead`; `expected` and `actual` say where.
 * - `EMPTY_COMMIT`: the commit or restore would change nothing.
 * - `POLICY`: the changes break the write policy (`value` is the path or count).
 * - `LIMIT`: a size or count limit was exceeded (`limit` is the limit).
 * - `UNSUPPORTED`: the store holds something the operation cannot account for
 *   (alternates, a shallow file, worktrees, a promisor pack); it refused and
 *   changed nothing. `value` is the key in the way.
 * - `STORAGE`: the storage adapter threw (its error is `cause`) or answered with a value
 *   of the wrong shape.
 * - `MISUSE`: the package was used out of order (e.g. the WebAssembly was never loaded).
 */
export type ErrorCode =
  | "INVALID_INPUT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "CORRUPT"
  | "CONFLICT"
  | "LOST_RACE"
  | "HEAD_MOVED"
  | "EMPTY_COMMIT"
  | "POLICY"
  | "LIMIT"
  | "UNSUPPORTED"
  | "STORAGE"
  | "MISUSE";

/** Details some errors carry, named as the engine names them. */
export interface ErrorDetails {
  /** The argument that was refused (`INVALID_INPUT`). */
  field?: string;
  /** The head the caller expected (`HEAD_MOVED`). */
  expected?: string;
  /** The head found, `null` if the branch is gone (`HEAD_MOVED`). */
  actual?: string | null;
  /** Our blob id at the conflicting path, `null` if we delete it (`CONFLICT`). */
  ours?: string | null;
  /** Their blob id at the conflicting path, `null` if absent (`CONFLICT`). */
  theirs?: string | null;
  /** Where something stands in the way of a write (`CONFLICT`). */
  at?: string;
  /** The limit exceeded (`LIMIT`, `POLICY`). */
  limit?: number;
  /** The exclude pattern that matched (`POLICY`). */
  pattern?: string;
  /** The repo, for a branch that is missing or exists. */
  repo?: string;
  /** The commit read, for a missing path. */
  commit?: string;
  /** The storage key, for a corrupt ref. */
  key?: string;
}

/** An error from snapgit: a stable `code`, a message, and the offending `value`. */
export class SnapgitError extends Error implements ErrorDetails {
  /** Why it failed; see {@link ErrorCode}. */
  readonly code: ErrorCode;
  /** The offending value (a path, name, id, count), where the cause names one. */
  declare readonly value?: unknown;
  declare readonly field?: string;
  declare readonly expected?: string;
  declare readonly actual?: string | null;
  declare readonly ours?: string | null;
  declare readonly theirs?: string | null;
  declare readonly at?: string;
  declare readonly limit?: number;
  declare readonly pattern?: string;
  declare readonly repo?: string;
  declare readonly commit?: string;
  declare readonly key?: string;

  constructor(
    code: ErrorCode,
    message: string,
    options: { value?: unknown; cause?: unknown; details?: ErrorDetails } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SnapgitError";
    this.code = code;
    if ("value" in options) this.value = options.value;
    if (options.details) Object.assign(this, options.details);
  }
}

const KNOWN = new Set<string>([
  "INVALID_INPUT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "CORRUPT",
  "CONFLICT",
  "LOST_RACE",
  "HEAD_MOVED",
  "EMPTY_COMMIT",
  "POLICY",
  "LIMIT",
  "UNSUPPORTED",
  "STORAGE",
  "MISUSE",
]);

/**
 * The `SnapgitError` for an error thrown by the WebAssembly (JSON text carrying `code`,
 * `message`, `value` and details, made in one place on the Rust side); anything else is
 * returned as it is.
 */
export function fromEngine(error: unknown): unknown {
  if (typeof error !== "string" || !error.startsWith("{")) return error;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(error) as Record<string, unknown>;
  } catch {
    return error;
  }
  const { code, message, value, ...details } = parsed;
  if (typeof code !== "string" || !KNOWN.has(code)) return error;
  const options: { value?: unknown; details: ErrorDetails } = { details: details as ErrorDetails };
  if ("value" in parsed) options.value = value;
  return new SnapgitError(code as ErrorCode, String(message), options);
}

/** An argument of the wrong type, refused before it reaches the engine. */
export function invalidArgument(field: string, expected: string, value: unknown): SnapgitError {
  return new SnapgitError("INVALID_INPUT", `invalid argument: ${field} must be ${expected}`, {
    value,
    details: { field },
  });
}
