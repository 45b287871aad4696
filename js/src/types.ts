/**
 * The values the API takes and returns. Ids are full lowercase hex commit, tree or blob
 * ids; paths are relative and `/`-separated (`notes/today.md`).
 */

/**
 * A commit, named as git names it: a branch or tag of the repo (`"main"`), a full or
 * abbreviated (4+ digits) commit id, then any `~N` (N-th first-parent ancestor) and `^N`
 * (N-th parent) steps: `"main~2"`, `"v1^2"`. A full id is always taken as an id; an
 * abbreviated one only when no branch or tag has that name, and it must name one object.
 * Resolved by the engine, the same in every face.
 */
export type Ref = string;

/** A tree entry's mode. */
export type Mode = "regular" | "executable" | "symlink" | "tree" | "submodule";

/** The modes a file written by a commit may have. */
export type FileMode = "regular" | "executable" | "symlink";

/** Who made a change, and when. */
export interface SignatureInput {
  name: string;
  email: string;
  /** When: a `Date` or seconds since the epoch; now if absent. */
  date?: Date | number;
  /**
   * The time zone as git writes it, in minutes east of UTC (`120` for `+0200`; note
   * this is the opposite sign of `Date.prototype.getTimezoneOffset`). UTC if absent.
   */
  offsetMinutes?: number;
}

/** A signature read from a commit. */
export interface Signature {
  name: string;
  email: string;
  date: Date;
  /** Minutes east of UTC, as git writes it. */
  offsetMinutes: number;
}

/** File content: text (stored as UTF-8) or bytes. */
export type Content = string | Uint8Array;

/** One change of a commit. */
export type Change =
  | { type: "put"; path: string; content: Content; mode?: FileMode }
  | { type: "delete"; path: string }
  | { type: "rename"; from: string; to: string };

/** A path's new content, or `null` to delete the file or folder. */
export type Files = Record<string, Content | null>;

/** What commits must respect; checked before anything is read or written. */
export interface Policy {
  /** The largest file a commit may write, in bytes. */
  maxFileBytes?: number;
  /** The most objects one commit may write (blobs, trees and the commit). */
  maxObjectsPerCommit?: number;
  /** gitignore-style patterns of paths that may not be written (`*.log`, `node_modules/`). */
  exclude?: string[];
}

/** How to settle a path changed by us and, concurrently, by another writer. */
export type ConflictPolicy = "fail" | "ours" | "theirs";

/** A blob (or tree, or submodule commit) and its mode. */
export interface EntryId {
  id: string;
  mode: Mode;
}

/** How a file changed. */
export type ChangeKind = "added" | "modified" | "deleted" | "renamed" | "typeChanged";

/** One changed file, as `git diff --name-status --numstat` reports it. */
export interface FileChange {
  /** The path (after the change, for a rename). */
  path: string;
  kind: ChangeKind;
  /** The path before a rename. */
  from?: string;
  /** Before; `null` if added. */
  old: EntryId | null;
  /** After; `null` if deleted. */
  new: EntryId | null;
  /** Either side is binary (a NUL byte in its first 8000 bytes). Known only when line counts or a patch were asked for. */
  binary: boolean;
  /** Lines added and removed; `null` for binary files or when not counted. */
  lines: { added: number; removed: number } | null;
}

/** A path both sides changed during a replay, and what each side has there. */
export interface Conflict {
  path: string;
  ours: EntryId | null;
  theirs: EntryId | null;
}

/** A commit (or restore) that landed on its branch. */
export interface CommitResult {
  /** The branch's new head (or, when nothing was left to do, its head). */
  commit: string;
  /** Its tree. */
  tree: string;
  /** The branch's previous head. */
  parent: string;
  /** `false` when the branch already had every change: nothing was written. */
  created: boolean;
  /** Every file that changed relative to `parent`, sorted by path. */
  files: FileChange[];
  /** Lines added over all files. */
  added: number;
  /** Lines removed over all files. */
  removed: number;
  /** Attempts made: 1 when no other writer interfered. */
  attempts: number;
  /** Conflicts settled by `onConflict: 'ours' | 'theirs'`. */
  settled: Conflict[];
  /** Objects written by the attempt that landed. */
  objectsWritten: number;
  /** Bytes written by the attempt that landed. */
  bytesWritten: number;
  /** Whether the advisory lock was held. */
  locked: boolean;
}

/** A new repo's first commit. */
export interface CreatedRepo {
  commit: string;
  files: FileChange[];
  added: number;
  removed: number;
}

/** A file's content at a commit. */
export interface File {
  /** The blob id. */
  id: string;
  mode: FileMode;
  /** The content (a symlink's target). */
  data: Uint8Array;
}

/** A file with its path. */
export interface FileWithPath extends File {
  path: string;
}

/** An entry of a listing: no content is read to produce it. */
export interface Entry {
  path: string;
  mode: Mode;
  /** The blob, tree or submodule commit id. */
  id: string;
}

/** A commit's metadata. */
export interface CommitInfo {
  id: string;
  tree: string;
  /** First parent first. */
  parents: string[];
  author: Signature;
  committer: Signature;
  message: string;
}

/** A page of history. */
export interface LogPage {
  /** Newest first. */
  commits: CommitInfo[];
  /** Pass it as `cursor` to the same query for the next page; `null` at the end. */
  next: string | null;
}

/** A page of a file's history. */
export interface FileLogPage {
  /** The commits that changed the file, newest first, each with the change. */
  commits: { commit: CommitInfo; change: FileChange }[];
  next: string | null;
}

/** The difference between two commits. */
export interface DiffResult {
  /** The commit compared from; `null` when `to` is a root commit compared with nothing. */
  from: string | null;
  to: string;
  /** Sorted by path. */
  files: FileChange[];
  /** Lines added over all files (0 unless line counts or a patch were asked for). */
  added: number;
  removed: number;
  /** The unified patch, when asked for, as `git diff` prints it. */
  patch?: string;
}

/**
 * A file found in a folder on disk: its blob id (known from a stat cache, or hashed),
 * and its content when it was read for this call (storage may not have it).
 */
export interface FolderFile {
  path: string;
  /**
   * Default `regular`. In `diffFolder` also `tree`: a folder given whole, `id` its tree
   * (a folder a stat cache knows unchanged, compared without looking inside).
   */
  mode?: FileMode | "tree";
  id: string;
  data?: Content;
}

/** What to delete from a folder (first, deepest first) and write into it to bring back a commit's tree. */
export interface CheckoutPlan {
  commit: string;
  deletes: string[];
  writes: FileWithPath[];
  /** Files already as the commit has them. */
  unchanged: number;
  /** Submodules of the commit, which a checkout does not write. */
  submodules: string[];
}

/** What a prune did. */
export interface PruneResult {
  oldHead: string;
  /** Equal to `oldHead` when the history already fit. */
  newHead: string;
  rewritten: boolean;
  /** Commits kept, counting the head. */
  kept: number;
  /** First-parent commits dropped; `null` if not counted. */
  dropped: number | null;
  /** The commits written, oldest first. */
  written: string[];
  attempts: number;
}

/** What a store-wide size cap found and did. */
export interface CapResult {
  maxBytes: number;
  /** Every key under `objects/`, including what GC and compaction have yet to delete. */
  storedBytes: number;
  /** What the refs reached before. */
  reachableBytes: number;
  /** What the refs reach after the prunes, estimated. */
  estimatedBytes: number;
  /** `estimatedBytes` fits the cap. */
  underCap: boolean;
  /** Each branch pruned, with its repo and branch. */
  pruned: (PruneResult & { repo: string; branch: string })[];
}

/** A count of stored objects and their stored size. */
export interface Usage {
  count: number;
  bytes: number;
}

/** The size of a store. */
export interface Footprint {
  /** Every loose object. */
  objects: Usage;
  /** Per repo: the objects its refs reach (shared objects count in each). */
  repos: { repo: string; refs: number; reachable: Usage }[];
  /** Objects reached from refs outside any repo. */
  otherRefs: Usage;
  /** Objects no ref reaches: what GC deletes once they are old enough. */
  unreachable: Usage;
  /** Keys under `objects/` that are not loose objects (packs). */
  otherKeys: Usage;
}

/**
 * How far a GC or footprint has come, reported to `onProgress` after each step. The
 * phases run in this order: `listRefs`, `readRefs`, `mark` (walking commits and trees
 * from every ref), `listObjects`, `pack` (compaction only: reading, deltas, writing),
 * `sweep` (deleting), then `done`.
 */
export interface GcProgress {
  phase: "listRefs" | "readRefs" | "mark" | "listObjects" | "pack" | "sweep" | "done";
  /** Refs listed. */
  refsListed: number;
  /** Refs read so far. */
  refsRead: number;
  /** Objects found reachable so far (commits, trees and blobs). */
  reachable: number;
  /** Rounds of object reads so far. */
  rounds: number;
  /** Object keys listed. */
  objectsListed: number;
  /** Listed objects the sweep has looked at so far. */
  examined: number;
  /** Objects deleted so far. */
  deleted: number;
  /** Stored bytes deleted so far. */
  deletedBytes: number;
  /** Unreachable objects kept so far because they are younger than the grace period. */
  young: number;
}

/** What a compaction did. */
export interface CompactResult {
  /** The pack written (`objects/pack/pack-<hash>.pack`), or null when there was nothing to pack. */
  pack: string | null;
  /** Objects in it. */
  objects: number;
  /** How many of them are deltas. */
  deltas: number;
  /** Its size in bytes. */
  packBytes: number;
  /** Loose objects it took in. */
  loosePacked: number;
  /** Packs merged into it. */
  packsMerged: number;
  /** Loose copies deleted (a settled pack holds them). */
  looseDeleted: number;
  /** Packs deleted (a larger settled pack holds all their objects). */
  packsDeleted: number;
  deletedBytes: number;
  /** Copies kept until the pack holding them is older than the grace period. */
  waiting: number;
  looseBefore: number;
  packsBefore: number;
  packsAfter: number;
  /** Unreachable loose objects, left for GC. */
  unreachableLoose: number;
  /** Objects no ref reaches that the new pack left out (`dropUnreachable`). */
  dropped: number;
  /** Below `minLoose` and `minPacks`: nothing was done but one listing. */
  skipped: boolean;
  /** Commits in the commit-graph layer written (new ones and merged layers'); 0 when it was up to date. */
  graphCommits: number;
}

/** What a GC did. */
export interface GcResult {
  refs: number;
  reachable: number;
  listed: number;
  deleted: number;
  deletedBytes: number;
  /** Unreachable objects kept because they are younger than the grace period. */
  young: number;
  youngBytes: number;
  rounds: number;
}

/** What a push did (`repo.push()`). */
export interface PushResult {
  /** The remote's ref (`refs/heads/main`). */
  remoteRef: string;
  /** What it held before; `null` if it did not exist. */
  old: string | null;
  /** What it holds now: the branch's head. */
  new: string;
  /** It held the branch's head already: nothing was sent. */
  upToDate: boolean;
  /** Objects sent. */
  objects: number;
  /** The size of the pack sent, in bytes. */
  packBytes: number;
  /** HTTP requests made. */
  requests: number;
}

/** One ref a fetch brought. */
export interface FetchedRef {
  /** The remote's ref (`refs/heads/main`, `refs/tags/v1`). */
  remoteRef: string;
  /** The repo's ref it went to. */
  localRef: string;
  /** What the repo's ref held before; `null` if it did not exist. */
  old: string | null;
  /** What it holds now. */
  new: string;
}

/** What a fetch or an import did (`repo.fetch()`, `store.import()`). */
export interface FetchResult {
  /** Every ref fetched, sorted by the repo's ref, whether it moved or was up to date. */
  refs: FetchedRef[];
  /** Objects in the pack received (0 when every ref was up to date). */
  objects: number;
  /** The size of the pack received, in bytes. */
  packBytes: number;
  /** HTTP requests made. */
  requests: number;
  /** Commits the store holds without their parents (its shallow boundary), sorted. */
  shallow: string[];
  /** The filter the remote applied (the store is a partial clone of it), or `null`. */
  filter: string | null;
}
