/**
 * The API: a {@link Store} (one storage prefix, many repos) and its {@link Repo}s.
 *
 * Every method returns a promise and fails with a {@link SnapgitError}. The engine (in
 * WebAssembly) decides everything; this layer fills in defaults, resolves refs and runs
 * the engine's operations through the async driver.
 */

import { Engine } from "../pkg/snapgit_wasm.js";
import type { StorageAdapter } from "./adapter.js";
import {
  type DriverOptions,
  type EngineOp,
  type RunControl,
  type TransferProgress,
  drive,
  engine,
} from "./driver.js";
import { invalidArgument } from "./errors.js";
import { type Packer, pack } from "./pack.js";
import type {
  Change,
  CommitInfo,
  CommitResult,
  FileChange,
  ConflictPolicy,
  CreatedRepo,
  CheckoutPlan,
  DiffResult,
  FolderFile,
  Entry,
  File,
  FileLogPage,
  FileWithPath,
  Files,
  Footprint,
  GcProgress,
  GcResult,
  CompactResult,
  CapResult,
  FetchResult,
  LogPage,
  Policy,
  PruneResult,
  PushResult,
  Ref,
  Signature,
  SignatureInput,
} from "./types.js";
import { type WasmSource, init } from "./wasm.js";

/** How to open a store. */
export interface OpenOptions {
  /** Where the store lives. */
  adapter: StorageAdapter;
  /**
   * The WebAssembly to use instead of the entry's own (required with the `slim` entry,
   * unless `init` was called): a `WebAssembly.Module`, bytes, a URL or a `Response`.
   */
  wasm?: WasmSource;
  /** The branch used when a method is given none. Default `"main"`. */
  defaultBranch?: string;
  /**
   * The approximate bytes of objects kept in memory between operations (default 64 MiB).
   * A warm cache lets a commit on top of the last one read nothing.
   */
  cacheBytes?: number;
  /** The largest object read from storage, inflated, in bytes (default 100 MiB). */
  maxObjectBytes?: number;
  /** The largest file a commit may write, in bytes (default 100 MiB). */
  maxFileBytes?: number;
  /** The most changes one commit may carry (default 100,000). */
  maxChanges?: number;
  /** The most object reads in flight at once (default 16). */
  concurrency?: number;
  /**
   * Headers for the requests the engine makes to a git remote on its own: a read in a
   * partial clone fetches the blobs it needs from the promisor remote the store's config
   * names (see {@link FetchOptions.filter}). Called with the request's URL; its headers
   * are added to a request that has no `Authorization` yet, e.g.
   * `(url) => (url.startsWith("https://git.example.com/") ? { Authorization: "Bearer …" } : undefined)`.
   */
  remoteHeaders?: (url: string) => Record<string, string> | undefined;
}

/** What every operation that reads or writes storage accepts. */
export interface RunOptions {
  /**
   * Cancels the operation: the signal is checked before each storage round and cuts a
   * wait short (the engine's backoff after contention), and the promise rejects with its
   * `reason` (an `AbortError` `DOMException` by default). A storage call already sent is seen through: a commit,
   * restore or prune that rejects this way did not move its branch (objects it wrote
   * stay for {@link Store.gc}), and one whose compare-and-swap won resolves as usual. A
   * lock the call holds is released.
   */
  signal?: AbortSignal;
}

/** Options of {@link Store.footprint}. */
export interface FootprintOptions extends RunOptions {
  /** Called after each step with how far the survey has come. */
  onProgress?: (progress: GcProgress) => void;
}

/** Options of {@link Repo.commit}. */
export interface CommitOptions extends RunOptions {
  /** The branch to commit to; it must exist. Default: the store's default branch. */
  branch?: string;
  /** Changes: puts (with an optional mode), deletes and renames. */
  changes?: Change[];
  /** Path → new content, or `null` to delete. Applied after `changes`. */
  files?: Files;
  author: SignatureInput;
  /** Default: the author. */
  committer?: SignatureInput;
  message: string;
  /**
   * Fail with `HEAD_MOVED` instead of replaying if the branch is not at this commit id.
   * Without it, a commit that loses the race to another writer is replayed on the new
   * head: changes to different paths both survive.
   */
  expectedHead?: string;
  /** A path changed by us and by a concurrent writer: fail (default), keep ours or theirs. */
  onConflict?: ConflictPolicy;
  /**
   * Hold the branch's advisory lock for this long while committing (the adapter must
   * support locks). A busy lock is waited for, up to this long, before the commit goes
   * ahead without it (the compare-and-swap stays the fence).
   */
  lockTtlMs?: number;
  /** Commit even when nothing changes. Default `false` (`EMPTY_COMMIT`). */
  allowEmpty?: boolean;
  /** Count lines added and removed per file. Default `true`. */
  lineStats?: boolean;
  /**
   * Attempts before `LOST_RACE`. Default 100; the engine also gives up after 20 s spent
   * waiting between attempts (jittered exponential backoff, the engine's own).
   */
  maxAttempts?: number;
  /** Rules the changes must follow; default: the repo's policy. */
  policy?: Policy;
}

/** Options of {@link Repo.restore}. */
export interface RestoreOptions extends RunOptions {
  /** The branch to restore on. Default: the store's default branch. */
  branch?: string;
  /** The commit whose content comes back. */
  from: Ref;
  /** Restore only this file or folder (deleted if `from` lacks it); default the whole tree. */
  path?: string;
  author: SignatureInput;
  /** Default: a message naming the path and the restored commit. */
  message?: string;
  /** Fail with `HEAD_MOVED` if the branch is not at this commit id. */
  expectedHead?: string;
  lockTtlMs?: number;
  lineStats?: boolean;
  maxAttempts?: number;
}

/** Options of {@link Repo.log}. */
export interface LogOptions extends RunOptions {
  /** Where the walk starts. Default: the store's default branch. */
  ref?: Ref;
  /** Only commits that changed this file or folder. */
  path?: string;
  /** The most commits per page. Default 50. */
  limit?: number;
  /**
   * The `next` of the previous page. A cursor belongs to its walk's start: to page a
   * branch that may move meanwhile, pass the first page's `start` as `ref`.
   */
  cursor?: string;
  /** Follow every parent (newest first), not only first parents. */
  allParents?: boolean;
}

/** Options of {@link Repo.diff}. */
export interface DiffOptions extends RunOptions {
  /** The old side. Default: the first parent of `to`. */
  from?: Ref;
  /** The new side. Default: the store's default branch. */
  to?: Ref;
  /** Compare only this file or folder. */
  path?: string;
  /** Pair deleted and added files with identical content as renames. Default `true`. */
  renames?: boolean;
  /** Count lines added and removed (reads the changed blobs). Default `true`, as for commits. */
  lineStats?: boolean;
  /** Write a unified patch (reads the changed blobs). Default `false`. */
  patch?: boolean;
  /** In the patch, write binary files as `GIT binary patch` data. Default `false`. */
  binaryPatch?: boolean;
}

/** Options of {@link Repo.diffFolder}. */
export interface DiffFolderOptions extends Omit<DiffOptions, "to"> {
  /** Every file of the folder. */
  files: FolderFile[];
  /**
   * Paths of the folder its files leave out (excluded or skipped files, excluded
   * folders): what the commit has at and below them is no change, as a snapshot keeps it.
   */
  untracked?: string[];
}

/** Options of {@link Repo.checkout}. */
export interface CheckoutOptions extends RunOptions {
  /** The commit to bring back. Default: the store's default branch. */
  commit?: Ref;
  /** Only this file or folder. */
  path?: string;
  /** The folder's tracked files as they are now (ids only). */
  files: FolderFile[];
  /** Paths of the folder that are not tracked: nothing is written onto or below them. */
  untracked?: string[];
}

/** Options of {@link Repo.prune}. */
export interface PruneOptions extends RunOptions {
  branch?: string;
  /** Keep this many commits, counting the head. */
  keepLast?: number;
  /** Keep the commits committed within this many milliseconds before `now`. */
  keepWithinMs?: number;
  /** What time it is (a `Date` or ms since the epoch). Default: now. */
  now?: Date | number;
  maxAttempts?: number;
  /** Walk the whole dropped history to count it. Default `true`. */
  countDropped?: boolean;
}

/** Options of {@link Store.gc}. */
export interface GcOptions extends RunOptions {
  /** Called after each step with how far the GC has come. */
  onProgress?: (progress: GcProgress) => void;
  /**
   * Unreachable objects younger than this are kept, in ms (default one hour). It must
   * exceed the longest time a writer takes from its first write to its ref update.
   */
  graceMs?: number;
  /** What time it is (a `Date` or ms since the epoch). Default: now. */
  now?: Date | number;
  /** The most keys per delete call. Default 1000. */
  batch?: number;
}

/** Options of {@link Store.compact}. */
export interface CompactOptions extends RunOptions {
  /** Called after each step with how far compaction has come. */
  onProgress?: (progress: GcProgress) => void;
  /**
   * Loose objects and packs that a new pack holds are deleted only once that pack is
   * older than this, in ms (default one hour), so readers that listed the store before
   * it existed still find every object. 0 deletes them in the same run.
   */
  graceMs?: number;
  /** What time it is (a `Date` or ms since the epoch). Default: now. */
  now?: Date | number;
  /** How many objects each is tried against for a delta (default 250; 0: no deltas). */
  window?: number;
  /** The longest delta chain (default 50). */
  depth?: number;
  /** Each pack left holds at least this many times the smaller ones together (default 2). */
  factor?: number;
  /** The most keys per delete call. Default 1000. */
  batch?: number;
  /**
   * Compact only when the store holds at least this many loose objects (or `minPacks`
   * packs): one listing decides, so it is cheap to call after every commit.
   */
  minLoose?: number;
  /** Compact only when the store holds at least this many packs (or `minLoose` loose objects). */
  minPacks?: number;
  /**
   * Give back the space of what no ref reaches any more (what `prune` and branch or repo
   * deletion left) once it is packed: objects nothing reaches, in packs older than
   * `graceMs`, are left out of a new pack, and the old packs go once that pack is as old
   * (a later call). Default `false`: compaction never drops an object.
   */
  dropUnreachable?: boolean;
}

/** Options of {@link Store.cap}. */
export interface CapOptions extends RunOptions {
  /** The most bytes of objects the refs may reach (packed objects count as stored). */
  maxBytes: number;
  /** Commits every branch keeps whatever the cap, counting the head. Default 1. */
  keepLast?: number;
  /** How many times each branch's prune tries its compare-and-swap. */
  maxAttempts?: number;
  /** Called after each step with how far the cap has come. */
  onProgress?: (progress: GcProgress) => void;
}

/** A git remote: where it is and what every request to it carries. */
export interface RemoteOptions extends RunOptions {
  /**
   * The remote's URL, `http://` or `https://` (`https://git.example.com/agent.git`).
   * Credentials in it (`https://user:token@host/…`) are sent as basic auth, never in
   * the URL.
   */
  url: string;
  /** Headers every request carries, e.g. `{ Authorization: "Bearer <token>" }`. */
  headers?: Record<string, string>;
  /**
   * Hears each HTTP transfer as it goes: the request sent, the response's parts as they
   * arrive, and its end (`done`).
   */
  onProgress?: (progress: TransferProgress) => void;
}

/** Options of {@link Repo.push}. */
export interface PushOptions extends RemoteOptions {
  /** The branch pushed. Default: the store's default branch. */
  branch?: string;
  /** The remote's ref to update. Default: `refs/heads/<branch>`. */
  remoteRef?: string;
  /**
   * Push even if the remote's branch is not in this branch's history (`git push
   * --force`). Default `false`: such a push fails with `CONFLICT`.
   */
  force?: boolean;
}

/** Options of {@link Repo.fetch}. */
export interface FetchOptions extends RemoteOptions {
  /**
   * The remote's branches (`"main"`) or refs (`"refs/tags/v1"`) to fetch, each into the
   * repo's ref of the same name. Default: every branch and tag.
   */
  refs?: string[];
  /** With one ref: the branch of the repo it goes to instead. */
  into?: string;
  /**
   * Move a branch even when the fetched commit does not descend from its head, and move
   * existing tags. Default `false`: such a fetch fails with `CONFLICT`.
   */
  force?: boolean;
  /**
   * A shallow fetch: this many commits of each ref's history (`git fetch --depth`). The
   * store's `shallow` file lists the commits kept without their parents. Needs an
   * adapter with `swap()`.
   */
  depth?: number;
  /**
   * A partial fetch: `"blob:none"` or `"blob:limit=<n>"` (`git fetch --filter`). The pack
   * is marked `.promisor` and the store's `config` names the remote a promisor remote;
   * later fetches from it keep the filter. Needs an adapter with `swap()`.
   */
  filter?: string;
}

/** Options of {@link Store.import}. */
export interface ImportOptions extends RemoteOptions {
  /** A shallow import: this many commits of each ref's history (see {@link FetchOptions.depth}). */
  depth?: number;
  /** A partial import: `"blob:none"` or `"blob:limit=<n>"` (see {@link FetchOptions.filter}). */
  filter?: string;
}

/** An operation's request when it has none. */
const NONE = new Uint8Array(0);

const ADAPTER_METHODS = ["getMany", "putMany", "list", "delete", "readRef", "casRef"] as const;

function options<T extends object>(value: T | undefined, name: string): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object") throw invalidArgument(name, "an object", value);
  return value;
}

/** The run controls of a push, fetch or import: `onProgress` hears its HTTP transfers. */
function transferControl(o: { signal?: unknown; onProgress?: unknown }): RunControl {
  const { signal, onProgress } = control(o);
  return { signal, onTransfer: onProgress as RunControl["onTransfer"] };
}

/** The run controls of `o`, checked: `signal` must be an `AbortSignal`, `onProgress` a function. */
function control(o: { signal?: unknown; onProgress?: unknown }): RunControl {
  const { signal, onProgress } = o;
  if (
    signal !== undefined &&
    (signal === null ||
      typeof signal !== "object" ||
      typeof (signal as AbortSignal).aborted !== "boolean" ||
      typeof (signal as AbortSignal).addEventListener !== "function")
  ) {
    throw invalidArgument("signal", "an AbortSignal", signal);
  }
  if (onProgress !== undefined && typeof onProgress !== "function") {
    throw invalidArgument("onProgress", "a function", onProgress);
  }
  return { signal: signal as AbortSignal | undefined, onProgress: onProgress as RunControl["onProgress"] };
}

function ms(value: Date | number | undefined, name: string): number {
  if (value === undefined) return Date.now();
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value;
  throw invalidArgument(name, "a Date or milliseconds since the epoch", value);
}

// Results arrive in core's serde form (`api::Output`); these give them the package's
// shapes: `Date`s for signatures, a rename's old path as `from`, and line totals.

/** A signature as core sends it: time in seconds since the epoch. */
interface WireSignature {
  name: string;
  email: string;
  time: { seconds: number; offsetMinutes: number };
}

/** A result (or part of one) in core's serde form, before it is shaped. */
type Wire = Record<string, any>;

/** A signature with its time as a `Date`. */
function signature(sig: WireSignature): Signature {
  const { name, email, time } = sig;
  return { name, email, date: new Date(time.seconds * 1000), offsetMinutes: time.offsetMinutes };
}

/** A commit's metadata with its signatures' times as `Date`s. */
function info(commit: Wire): CommitInfo {
  return { ...commit, author: signature(commit.author), committer: signature(commit.committer) } as CommitInfo;
}

/** A changed file, in place: core's `kind` is a name, or `{ renamed: { from } }`. */
function change(file: Wire): FileChange {
  if (typeof file.kind === "object") {
    file.from = file.kind.renamed.from;
    file.kind = "renamed";
  }
  return file as FileChange;
}

/** What both diffs ask besides their sides: the path, renames, line counts and patch. */
function diffFlags(p: Packer, o: Omit<DiffOptions, "to" | "from">): Packer {
  return p
    .optStr(o.path, "path")
    .flag(o.renames, "renames")
    .flag(o.lineStats, "lineStats")
    .flag(o.patch, "patch")
    .flag(o.binaryPatch, "binaryPatch");
}

/** A diff's result: its files with their totals, and the patch as text. */
function diffResult(result: Wire): DiffResult {
  const { patch, ...rest } = withFiles<Wire>(result);
  return (patch ? { ...rest, patch: new TextDecoder().decode(patch) } : rest) as DiffResult;
}

/** `result` with its files shaped and their line counts summed, in place. */
function withFiles<T>(result: Wire): T {
  let added = 0;
  let removed = 0;
  for (const file of result.files as Wire[]) {
    change(file);
    added += file.lines?.added ?? 0;
    removed += file.lines?.removed ?? 0;
  }
  result.added = added;
  result.removed = removed;
  return result as T;
}

/** A repo operation's result: core tags it by what it is (`{ head: id }`). */
function admin<T>(result: Wire): T {
  const [tag, value] = Object.entries(result)[0] as [string, Wire];
  return (tag === "created" ? withFiles(value) : value) as T;
}

/** A packed history request: `start, limit, path?, allParents?, cursor?`. */
function history(start: string, limit: unknown, path: unknown, allParents: unknown, cursor: unknown): Uint8Array {
  return pack((p) =>
    p
      .str(start, "ref")
      .count(limit ?? 50, "limit")
      .optStr(path, "path")
      .flag(allParents, "allParents")
      .optStr(cursor, "cursor"),
  );
}

/**
 * A store: one storage prefix laid out as a bare git repository, holding many repos (git
 * namespaces) that share objects. Keep one `Store` per adapter for as long as the
 * process or isolate lives: its cache makes a commit on top of the last one read
 * nothing.
 */
export class Store {
  readonly #engine: Engine;
  readonly #adapter: StorageAdapter;
  readonly #driver: DriverOptions;
  /** The branch used when a method is given none. */
  readonly defaultBranch: string;

  private constructor(engine: Engine, adapter: StorageAdapter, driver: DriverOptions, defaultBranch: string) {
    this.#engine = engine;
    this.#adapter = adapter;
    this.#driver = driver;
    this.defaultBranch = defaultBranch;
  }

  /** Load the WebAssembly (once per process) and open a store on `adapter`. */
  static async open(openOptions: OpenOptions): Promise<Store> {
    const o = options(openOptions, "options");
    const adapter = o.adapter;
    if (!adapter || typeof adapter !== "object" || ADAPTER_METHODS.some((m) => typeof adapter[m] !== "function")) {
      throw invalidArgument("adapter", `a StorageAdapter (${ADAPTER_METHODS.join(", ")})`, adapter);
    }
    const count = (value: number | undefined, name: string, fallback: number, min: number) => {
      if (value === undefined) return fallback;
      if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
        throw invalidArgument(name, `a whole number of at least ${min}`, value);
      }
      return value;
    };
    if (o.remoteHeaders !== undefined && typeof o.remoteHeaders !== "function") {
      throw invalidArgument("remoteHeaders", "a function", o.remoteHeaders);
    }
    const driver: DriverOptions = {
      concurrency: count(o.concurrency, "concurrency", 16, 1),
      remoteHeaders: o.remoteHeaders,
    };
    const defaultBranch = o.defaultBranch ?? "main";
    if (typeof defaultBranch !== "string") throw invalidArgument("defaultBranch", "a string", defaultBranch);
    await init(o.wasm);
    const limits = pack((p) =>
      p
        .optCount(o.maxObjectBytes, "maxObjectBytes")
        .optCount(o.maxFileBytes, "maxFileBytes")
        .optCount(o.maxChanges, "maxChanges")
        .optCount(o.cacheBytes, "cacheBytes"),
    );
    const e = engine(() => new Engine(limits));
    return new Store(e, adapter, driver, defaultBranch);
  }

  /** @internal Run one engine operation to completion. */
  run<T>(make: (engine: Engine) => EngineOp, runControl?: RunControl, shape?: (result: Wire) => T): Promise<T> {
    let op: EngineOp;
    try {
      op = engine(() => make(this.#engine));
    } catch (error) {
      return Promise.reject(error);
    }
    return drive<T>(op, this.#adapter, this.#driver, runControl, shape);
  }

  /**
   * @internal `ref` as a commit id, by the engine's rules: a branch or tag of `repo`, a
   * full or abbreviated id, then `~N` and `^N` steps (`main~2`).
   */
  async resolve(repo: string, ref: Ref | undefined, runControl?: RunControl): Promise<string> {
    const name = ref ?? this.defaultBranch;
    if (typeof name !== "string") throw invalidArgument("ref", "a string", name);
    return this.run<string>((e) => e.run("resolve", pack((p) => p.str(repo, "repo").str(name, "ref"))), runControl);
  }

  /** A handle on the repo `name` (nothing is read until it is used). */
  repo(name: string, repoOptions?: { policy?: Policy }): Repo {
    if (typeof name !== "string") throw invalidArgument("repo", "a string", name);
    return new Repo(this, name, options(repoOptions, "options").policy);
  }

  /**
   * Create a repo with a first commit on `branch` holding `files` (may be empty). Fails
   * with `ALREADY_EXISTS` if the repo has any ref.
   */
  async createRepo(
    name: string,
    createOptions: {
      branch?: string;
      files?: Record<string, string | Uint8Array>;
      changes?: Change[];
      author: SignatureInput;
      message?: string;
    },
  ): Promise<CreatedRepo> {
    const o = options(createOptions, "options");
    return this.run((e) =>
      e.run("create-repo", 
        pack((p) =>
          p
            .str(name, "repo")
            .str(o.branch ?? this.defaultBranch, "branch")
            .str(o.message ?? "initial commit", "message")
            .signature(o.author, "author")
            .changes(o.changes, o.files),
        ),
      ),
      undefined,
      admin<CreatedRepo>,
    );
  }

  /** Every repo of the store, sorted. */
  listRepos(): Promise<string[]> {
    return this.run((e) => e.run("list-repos", NONE), undefined, admin<string[]>);
  }

  /** Delete a repo: every ref of it (its objects go at the next GC). Returns the refs removed. */
  deleteRepo(name: string): Promise<string[]> {
    return this.run((e) => e.run("delete-repo", pack((p) => p.str(name, "repo"))), undefined, admin<string[]>);
  }

  /**
   * Garbage collection: delete the objects no ref of any repo reaches that are older
   * than `graceMs`. Safe while writers run; never reads a blob.
   */
  gc(gcOptions?: GcOptions): Promise<GcResult> {
    try {
      const o = options(gcOptions, "options");
      const nowMs = ms(o.now, "now");
      const run = control(o);
      return this.run(
        (e) => e.run("gc", pack((p) => p.time(nowMs, "nowMs").optCount(o.graceMs, "graceMs").optCount(o.batch, "batch"))),
        run,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Compaction: the reachable loose objects into a pack with deltas, the smallest packs
   * merged into it so the store keeps few packs, then the copies a pack older than
   * `graceMs` holds deleted. The store stays a git repository; safe while writers, GC
   * and other compactions run.
   */
  compact(compactOptions?: CompactOptions): Promise<CompactResult> {
    try {
      const o = options(compactOptions, "options");
      const nowMs = ms(o.now, "now");
      const run = control(o);
      const request = pack((p) =>
        p
          .time(nowMs, "nowMs")
          .optCount(o.graceMs, "graceMs")
          .optCount(o.window, "window")
          .optCount(o.depth, "depth")
          .optCount(o.factor, "factor")
          .optCount(o.batch, "batch")
          .optCount(o.minLoose, "minLoose")
          .optCount(o.minPacks, "minPacks")
          .flag(o.dropUnreachable, "dropUnreachable"),
      );
      return this.run((e) => e.run("compact", request), run);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A size cap for the whole store: the oldest history goes first, one commit per repo
   * in turn, until what the refs reach fits `maxBytes` (every branch keeping `keepLast`
   * commits); then each branch it took from is pruned. The space comes back with
   * {@link Store.gc} and {@link Store.compact} with `dropUnreachable`, past their grace
   * periods. `underCap` is `false` when the cap cannot be met.
   */
  cap(capOptions: CapOptions): Promise<CapResult> {
    try {
      const o = options(capOptions, "options");
      const run = control(o);
      const request = pack((p) =>
        p.count(o.maxBytes, "maxBytes").optCount(o.keepLast, "keepLast").optU32(o.maxAttempts, "maxAttempts"),
      );
      return this.run((e) => e.run("cap", request), run);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Create the repo `name` from a git remote: every branch and tag of the remote at
   * `url`, the repo created if it does not exist (a fetch of every ref into an existing
   * repo moves its branches only forward). The objects arrive as one pack, each
   * checked; then each ref is set with a compare-and-swap.
   */
  import(name: string, importOptions: ImportOptions): Promise<FetchResult> {
    try {
      const o = options(importOptions, "options");
      const run = transferControl(o);
      const request = pack((p) =>
        p
          .str(name, "repo")
          .remote(o.url, o.headers)
          .strs([], "refs")
          .optStr(undefined, "into")
          .flag(undefined, "force")
          .optU32(o.depth, "depth")
          .optStr(o.filter, "filter"),
      );
      return this.run((e) => e.run("fetch", request), run);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The store's size: every object, what each repo reaches, what is unreachable. */
  footprint(footprintOptions?: FootprintOptions): Promise<Footprint> {
    try {
      const run = control(options(footprintOptions, "options"));
      return this.run((e) => e.run("footprint", NONE), run);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The number of objects in the cache. */
  get cachedObjects(): number {
    return this.#engine.cachedObjects;
  }

  /** Drop every cached object and remembered head. */
  clearCache(): void {
    this.#engine.clearCache();
  }

  /** Release the engine's memory; the store cannot be used afterwards. */
  close(): void {
    this.#engine.free();
  }
}

/** One repo of a store. Get it with {@link Store.repo}. */
export class Repo {
  readonly #store: Store;
  readonly #policy: Policy | undefined;
  /** The repo's name. */
  readonly name: string;

  /** @internal */
  constructor(store: Store, name: string, policy: Policy | undefined) {
    this.#store = store;
    this.name = name;
    this.#policy = policy;
  }

  #branch(branch: string | undefined): string {
    return branch ?? this.#store.defaultBranch;
  }

  /**
   * Commit changes to a branch, never losing a concurrent writer's update: the new
   * objects are written, then the branch is moved with a compare-and-swap; if another
   * writer moved it first, the changes are replayed on its head (changes to different
   * paths both survive; the same path changed on both sides follows `onConflict`).
   */
  async commit(commitOptions: CommitOptions): Promise<CommitResult> {
    const o = options(commitOptions, "options");
    const policy = o.policy ?? this.#policy;
    const branch = this.#branch(o.branch);
    const run = control(o);
    return this.#store.run(
      (e) =>
        e.run("commit", 
          pack((p) => {
            p.str(this.name, "repo").str(branch, "branch").str(o.message, "message").signature(o.author, "author");
            if (o.committer === undefined || o.committer === null) p.u8(0);
            else p.u8(1).signature(o.committer, "committer");
            p.changes(o.changes, o.files)
              .flag(o.allowEmpty, "allowEmpty")
              .flag(o.lineStats, "lineStats")
              .optStr(o.expectedHead, "expectedHead")
              .conflict(o.onConflict)
              .optU32(o.maxAttempts, "maxAttempts")
              .optCount(o.lockTtlMs, "lockTtlMs")
              .policy(policy);
          }),
        ),
      run,
      withFiles<CommitResult>,
    );
  }

  /**
   * Restore an earlier commit's content — the whole tree or one path — as a new commit on
   * the branch. History is kept: the current head is the new commit's parent.
   */
  async restore(restoreOptions: RestoreOptions): Promise<CommitResult> {
    const o = options(restoreOptions, "options");
    if (o.from === undefined) throw invalidArgument("from", "a branch name or commit id", o.from);
    const run = control(o);
    const target = await this.#store.resolve(this.name, o.from, run);
    return this.#store.run(
      (e) =>
        e.run("restore", 
          pack((p) =>
            p
              .str(this.name, "repo")
              .str(this.#branch(o.branch), "branch")
              .str(target, "target")
              .optStr(o.path, "path")
              .signature(o.author, "author")
              .optStr(o.message, "message")
              .flag(o.lineStats, "lineStats")
              .optStr(o.expectedHead, "expectedHead")
              .optU32(o.maxAttempts, "maxAttempts")
              .optCount(o.lockTtlMs, "lockTtlMs"),
          ),
        ),
      run,
      withFiles<CommitResult>,
    );
  }

  /** One file at a ref (default: the default branch). */
  async readFile(path: string, readOptions?: { ref?: Ref }): Promise<File> {
    const commit = await this.#store.resolve(this.name, options(readOptions, "options").ref);
    return this.#store.run((e) => e.run("read-file", pack((p) => p.str(commit, "ref").str(path, "path"))));
  }

  /** One file as text (UTF-8). */
  async readText(path: string, readOptions?: { ref?: Ref }): Promise<string> {
    const file = await this.readFile(path, readOptions);
    return new TextDecoder().decode(file.data);
  }

  /**
   * The files (and submodules) below `path` (default: all) with their ids and modes,
   * without reading any file's content. With `recursive: false`, one level, folders included.
   */
  async listTree(listOptions?: { ref?: Ref; path?: string; recursive?: boolean }): Promise<Entry[]> {
    const o = options(listOptions, "options");
    const commit = await this.#store.resolve(this.name, o.ref);
    return this.#store.run((e) =>
      e.run("list-tree", pack((p) => p.str(commit, "ref").optStr(o.path, "path").flag(o.recursive, "recursive"))),
    );
  }

  /** Every file below `path` (default: all) with its content. */
  async readFiles(readOptions?: { ref?: Ref; path?: string } & RunOptions): Promise<FileWithPath[]> {
    const o = options(readOptions, "options");
    const run = control(o);
    const commit = await this.#store.resolve(this.name, o.ref, run);
    return this.#store.run(
      (e) => e.run("read-files", pack((p) => p.str(commit, "ref").optStr(o.path, "path"))),
      run,
      (files) => (files as Wire[]).map((f) => ({ path: f.path, ...f.file }) as FileWithPath),
    );
  }

  /** A commit's metadata. */
  async readCommit(ref?: Ref): Promise<CommitInfo> {
    const commit = await this.#store.resolve(this.name, ref);
    return this.#store.run((e) => e.run("read-commit", pack((p) => p.str(commit, "ref"))), undefined, info);
  }

  /**
   * A page of history, newest first, optionally only the commits that changed `path`
   * (git's answer to `git log -- path`). `start` is the commit the walk started from.
   */
  async log(logOptions?: LogOptions): Promise<LogPage & { start: string }> {
    const o = options(logOptions, "options");
    const run = control(o);
    const start = await this.#store.resolve(this.name, o.ref, run);
    const page = await this.#store.run(
      (e) => e.run("log", history(start, o.limit, o.path, o.allParents, o.cursor)),
      run,
      (page): LogPage => ({ commits: page.commits.map(info), next: page.next }),
    );
    return { ...page, start };
  }

  /** A page of one file's history: the commits that changed it, each with its change and line counts. */
  async fileLog(
    logOptions: Omit<LogOptions, "path" | "allParents"> & { path: string },
  ): Promise<FileLogPage & { start: string }> {
    const o = options(logOptions, "options");
    const run = control(o);
    const start = await this.#store.resolve(this.name, o.ref, run);
    const page = await this.#store.run(
      (e) => e.run("file-log", history(start, o.limit, o.path, undefined, o.cursor)),
      run,
      (page): FileLogPage => ({
        commits: page.commits.map((c: Wire) => ({ commit: info(c.commit), change: change(c.change) })),
        next: page.next,
      }),
    );
    return { ...page, start };
  }

  /** The difference between two commits: kinds, renames, and on request line counts and a patch. */
  async diff(diffOptions?: DiffOptions): Promise<DiffResult> {
    const o = options(diffOptions, "options");
    const run = control(o);
    const to = await this.#store.resolve(this.name, o.to, run);
    const from = o.from === undefined ? undefined : await this.#store.resolve(this.name, o.from, run);
    return this.#store.run(
      (e) =>
        e.run("diff", 
          pack((p) =>
            p
              .optStr(from, "from")
              .str(to, "to")
              .also((p) => diffFlags(p, o)),
          ),
        ),
      run,
      diffResult,
    );
  }

  /**
   * The difference between a commit (`from`, default: the default branch) and a folder's
   * files, as `git diff <commit>` in a work tree reports it. `to` is the id the folder's
   * tree would have. Only the commit's folders that differ are read.
   */
  async diffFolder(diffOptions: DiffFolderOptions): Promise<DiffResult> {
    const o = options(diffOptions, "options");
    const run = control(o);
    const from = await this.#store.resolve(this.name, o.from, run);
    return this.#store.run(
      (e) =>
        e.run("diff-folder",
          pack((p) =>
            p
              .str(from, "from")
              .folderFiles(o.files, "files")
              .also((p) => diffFlags(p, o))
              .strs(o.untracked, "untracked"),
          ),
        ),
      run,
      diffResult,
    );
  }

  /**
   * Plan bringing a commit's tree (or `path` of it) into a folder whose tracked files are
   * `files`: the files to delete and to write, with their content. Entries that would
   * write through a symlink, collide by case or land on an untracked path are refused
   * before anything is planned.
   */
  async checkout(checkoutOptions: CheckoutOptions): Promise<CheckoutPlan> {
    const o = options(checkoutOptions, "options");
    const run = control(o);
    const commit = await this.#store.resolve(this.name, o.commit, run);
    return this.#store.run(
      (e) =>
        e.run("checkout",
          pack((p) =>
            p.str(commit, "commit").optStr(o.path, "path").folderFiles(o.files, "files").strs(o.untracked, "untracked"),
          ),
        ),
      run,
      (plan) => ({
        ...(plan as CheckoutPlan),
        writes: ((plan as Wire).writes as Wire[]).map((f) => ({ path: f.path, ...f.file }) as FileWithPath),
      }),
    );
  }

  /** The head of a branch (default: the default branch). */
  head(branch?: string): Promise<string> {
    return this.#store.run((e) =>
      e.run("read-head", pack((p) => p.str(this.name, "repo").str(this.#branch(branch), "branch"))),
      undefined,
      admin<string>,
    );
  }

  /** Every branch, sorted. */
  listBranches(): Promise<string[]> {
    return this.#store.run((e) => e.run("list-branches", pack((p) => p.str(this.name, "repo"))), undefined, admin<string[]>);
  }

  /** Create a branch at `from` (any {@link Ref}, e.g. `"main~2"`; default: the default branch). Returns its head. */
  async createBranch(name: string, branchOptions?: { from?: Ref }): Promise<string> {
    const id = await this.#store.resolve(this.name, options(branchOptions, "options").from);
    return this.#store.run((e) =>
      e.run("create-branch", pack((p) => p.str(this.name, "repo").str(name, "branch").u8(1).str(id, "fromCommit"))),
      undefined,
      admin<string>,
    );
  }

  /** Delete a branch. Returns the refs removed. */
  deleteBranch(name: string): Promise<string[]> {
    return this.#store.run(
      (e) => e.run("delete-branch", pack((p) => p.str(this.name, "repo").str(name, "branch"))),
      undefined,
      admin<string[]>,
    );
  }

  /**
   * Push a branch to a git remote over HTTP(S), as `git push <url> <branch>` does: the
   * remote's refs are read, the objects it lacks are sent as one pack, and its ref is
   * moved if it is in the branch's history (fast-forward only, unless `force`). Any git
   * server speaking smart HTTP takes it (`snapgit serve`, GitHub, GitLab, `git
   * http-backend`). Uses the runtime's `fetch()`.
   */
  push(pushOptions: PushOptions): Promise<PushResult> {
    try {
      const o = options(pushOptions, "options");
      const run = transferControl(o);
      const request = pack((p) =>
        p
          .str(this.name, "repo")
          .str(this.#branch(o.branch), "branch")
          .remote(o.url, o.headers)
          .optStr(o.remoteRef, "remoteRef")
          .flag(o.force, "force"),
      );
      return this.#store.run((e) => e.run("push", request), run);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Fetch branches and tags of a git remote into this repo (created if it does not
   * exist), as `git fetch <url> <refs>` does: only the objects the repo lacks are sent,
   * each is checked, and each ref is moved with a compare-and-swap, forward only unless
   * `force`. Uses the runtime's `fetch()`.
   */
  fetch(fetchOptions: FetchOptions): Promise<FetchResult> {
    try {
      const o = options(fetchOptions, "options");
      const run = transferControl(o);
      const request = pack((p) =>
        p
          .str(this.name, "repo")
          .remote(o.url, o.headers)
          .strs(o.refs, "refs")
          .optStr(o.into, "into")
          .flag(o.force, "force")
          .optU32(o.depth, "depth")
          .optStr(o.filter, "filter"),
      );
      return this.#store.run((e) => e.run("fetch", request), run);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Keep only the newest commits of a branch (`keepLast`, `keepWithinMs` or both): the
   * kept commits are rewritten as a new history and the branch moved with a
   * compare-and-swap. Old objects stay until {@link Store.gc}.
   */
  prune(pruneOptions: PruneOptions): Promise<PruneResult> {
    try {
      const o = options(pruneOptions, "options");
      const nowMs = ms(o.now, "now");
      const run = control(o);
      return this.#store.run(
        (e) =>
          e.run("prune", 
            pack((p) =>
              p
                .str(this.name, "repo")
                .str(this.#branch(o.branch), "branch")
                .optCount(o.keepLast, "keepLast")
                .optCount(o.keepWithinMs, "keepWithinMs")
                .time(nowMs, "nowMs")
                .optU32(o.maxAttempts, "maxAttempts")
                .flag(o.countDropped, "countDropped"),
            ),
          ),
        run,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
