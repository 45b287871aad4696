/**
 * Work-tree checkpoints from Node: a folder snapshotted as a commit, compared with a
 * commit, and rolled back to one. Core decides what differs, what to write and what is
 * unsafe (`repo.diffFolder`, `repo.checkout`); this module only walks, hashes and writes
 * the folder.
 *
 * ```ts
 * import { Store } from "snapgit";
 * import { snapshot, diffWorktree, rollback } from "snapgit/worktree";
 *
 * const repo = store.repo("project");
 * const first = await snapshot(repo, "./project", { author, message: "checkpoint" });
 * // ... an agent edits ./project ...
 * const diff = await diffWorktree(repo, "./project", { from: first.commit });
 * const { undo } = await rollback(repo, "./project", { to: first.commit, author });
 * ```
 *
 * A stat cache (core's format and rules, as the `snapgit` command keeps one) records
 * each file's stat and blob id, so a snapshot reads and hashes only the files whose stat
 * changed. `.git` folders are never part of a folder; what is neither a file, a symlink
 * nor a folder is left out and never written over, and so is what `exclude` patterns, a
 * `.snapgitignore` of the folder or `checkpointExcludes` leave out.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readlink, realpath, rename, rm, rmdir, stat, symlink, writeFile } from "node:fs/promises";
import { lstatSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { homedir } from "node:os";
import { join, dirname } from "node:path";

import { Excludes, ignoreFiles, statCacheEncode, statCacheIds } from "../pkg/snapgit_wasm.js";
import type { Repo, RunOptions } from "./api.js";
import { SnapgitError, fromEngine, invalidArgument } from "./errors.js";
import { Packer } from "./pack.js";
import type { CommitResult, DiffResult, FileMode, FolderFile, SignatureInput } from "./types.js";

/** A file's stat, as the stat cache compares it. */
interface Stat {
  size: number;
  mtime: [number, number];
  ctime: [number, number];
  inode: number;
}

/** A file found: its id, its content when it was read (its stat changed), its stat. */
type Found = FolderFile & { mode: FileMode; data?: Uint8Array; stat: Stat; full: string };

/** A path a scan left out, and why (`excluded by ".snapgitignore: *.log"`, `larger than 104857600 bytes (...)`). */
export interface Skipped {
  path: string;
  reason: string;
}

/** What a folder holds: its files, and the paths left out. */
interface Scan {
  files: Found[];
  /** Folders the stat cache knows unchanged: `files[start..end]` are exactly its files. */
  whole: { start: number; end: number; id: string; path: string }[];
  /** Paths left out (excluded, too large, not a file, symlink or folder): never written or deleted. */
  skipped: Skipped[];
  /** Files read and hashed (the others' stat was clean in the cache). */
  hashed: number;
  /** Files the stat cache knew. */
  cached: number;
}

/**
 * Options every call takes. `signal` cancels: the promise rejects with its reason, except
 * once a rollback has begun to write, which stops between two files and resolves with
 * `complete: false`.
 */
export interface WorktreeOptions extends RunOptions {
  /** The branch (default: the store's default branch). */
  branch?: string;
  /**
   * The folder's stat cache file, or `false` for none (every file read and hashed).
   * Default: one per folder and repo in `$SNAPGIT_STAT_CACHE_DIR` (empty: none), else
   * `~/.cache/snapgit/stat`.
   */
  statCache?: string | false;
  /**
   * Files and folders left out: gitignore-style patterns on the folder's paths, matched
   * by core as the `snapgit` command matches them. Every `.snapgitignore` is always
   * read: the root's before these, one in a subfolder below it as a `.gitignore` is
   * (and over that folder's `.gitignore`); a later pattern wins.
   */
  exclude?: string[];
  /** Also leave out what checkpoint tools do: dependency and build folders, caches, `.env*`, archives, audio and video. */
  checkpointExcludes?: boolean;
  /**
   * Leave out files larger than this many bytes (a symlink never). Default: 100 MiB, the
   * largest file a commit may write, so one file too large to commit is left out and
   * listed in `skipped` rather than failing the snapshot.
   */
  maxFileBytes?: number;
  /**
   * Called as the folder is scanned: after each folder listed (`found` grows) and after
   * each file read and hashed because its stat changed (`read` of `toRead`).
   */
  onScan?: (progress: ScanProgress) => void;
  /**
   * Also leave out what the folder's `.gitignore` files do, as git reads them: the one in
   * each folder applies below that folder, a deeper one's patterns winning (over the
   * other excludes too).
   */
  gitignore?: boolean;
}

/** How far a scan of a folder has come. */
export interface ScanProgress {
  /** Files found so far. */
  found: number;
  /** Files read and hashed so far. */
  read: number;
  /** Files to read and hash (their stat changed, or no stat cache knew them); 0 while listing. */
  toRead: number;
}

/** What a snapshot made. */
export interface SnapshotResult {
  /** The branch's head: the new commit, or the unchanged head when nothing changed. */
  commit: string;
  created: boolean;
  /** The files the commit changed. */
  files: CommitResult["files"];
  /** Files read and hashed: those whose stat changed since the stat cache was written. */
  read: number;
  /** What the snapshot left out, and why: the branch keeps what it has there. */
  skipped: Skipped[];
}

/** Options of {@link snapshot}. */
export interface SnapshotOptions extends WorktreeOptions {
  author: SignatureInput;
  message: string;
}

/** Options of {@link rollback}. */
export interface RollbackOptions extends WorktreeOptions {
  /** The commit to bring back. */
  to: string;
  /** Only this file or folder of it. */
  path?: string;
  /** Author of the undo snapshot. */
  author: SignatureInput;
  /** Its message (default: one naming the target). */
  message?: string;
  /** Called after each file written or deleted. */
  onProgress?: (progress: RollbackProgress) => void;
}

/** How far a rollback has come. */
export interface RollbackProgress {
  /** Files written or deleted so far. */
  done: number;
  /** Files the rollback is to write or delete. */
  planned: number;
  /** The file just done. */
  path: string;
}

/** What a rollback did. */
export interface RollbackResult {
  /** The snapshot taken first: roll back to it to undo. */
  undo: string;
  /**
   * `false` if `signal` stopped it: only the files in `written` and `deleted` were done,
   * every other file is as it was.
   */
  complete: boolean;
  written: string[];
  deleted: string[];
  unchanged: number;
  /** What the rollback left alone, and why (as the snapshots leave it out). */
  skipped: Skipped[];
}

/** A commit against the folder, and what the comparison left out (no change there). */
export type WorktreeDiff = DiffResult & { skipped: Skipped[] };

function blobId(data: Uint8Array): string {
  return createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

const NS = 1_000_000_000n;
const split = (ns: bigint): [number, number] => [Number(ns / NS), Number(ns % NS)];

/** The stat cache file of `dir` for `repo`, or `null` for none. */
async function cacheFile(repo: Repo, dir: string, option: string | false | undefined): Promise<string | null> {
  if (option === false) return null;
  if (typeof option === "string") return option;
  const env = process.env.SNAPGIT_STAT_CACHE_DIR;
  if (env === "") return null;
  const base = env ?? join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "snapgit", "stat");
  const key = createHash("sha1").update(`${await realpath(dir)}\0${repo.name}\0node`).digest("hex");
  return join(base, `${key}.stat`);
}

/** The cache's bytes and when it was written (seconds), or none. */
async function loadCache(file: string | null): Promise<[Uint8Array, number]> {
  if (!file) return [new Uint8Array(), 0];
  try {
    const [bytes, info] = await Promise.all([readFile(file), stat(file)]);
    return [new Uint8Array(bytes), Math.floor(info.mtimeMs / 1000)];
  } catch {
    return [new Uint8Array(), 0];
  }
}

function packStat(p: Packer, file: Found): Packer {
  return p
    .text(file.path)
    .u8(file.mode === "regular" ? 0 : file.mode === "executable" ? 1 : 2)
    .f64(file.stat.size)
    .f64(file.stat.mtime[0])
    .f64(file.stat.mtime[1])
    .f64(file.stat.ctime[0])
    .f64(file.stat.ctime[1])
    .f64(file.stat.inode);
}

/** Write the stat cache of `files` (whose blobs a snapshot committed). */
async function saveCache(file: string | null, files: Found[]): Promise<void> {
  if (!file) return;
  const p = new Packer().u32(files.length);
  for (const f of files) packStat(p, f).text(f.id);
  const bytes = statCacheEncode(p.buf.subarray(0, p.pos));
  try {
    await mkdir(dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}`;
    await writeFile(temp, bytes);
    await rename(temp, file);
  } catch {
    // A cache that cannot be written costs only speed on the next snapshot.
  }
}

/** What leaves files out, as core decides it. Free it after use. */
async function excludes(dir: string, options: WorktreeOptions): Promise<{ rules: Excludes; gitignore: boolean }> {
  const max = options.maxFileBytes;
  if (max !== undefined && !(Number.isSafeInteger(max) && max >= 0)) {
    throw invalidArgument("maxFileBytes", "a whole number of bytes", max);
  }
  if (options.exclude !== undefined && !Array.isArray(options.exclude)) {
    throw invalidArgument("exclude", "an array of patterns", options.exclude);
  }
  const own = await readFile(join(dir, ".snapgitignore"), "utf8").catch(() => undefined);
  let rules: Excludes;
  try {
    rules = new Excludes(options.checkpointExcludes === true, own, packed(options.exclude ?? []), max);
  } catch (error) {
    throw fromEngine(error);
  }
  return { rules, gitignore: options.gitignore === true };
}

/** Patterns, packed. */
function packed(patterns: unknown[]): Uint8Array {
  const p = new Packer().u32(patterns.length);
  patterns.forEach((pattern, i) => p.str(pattern, `exclude[${i}]`));
  return p.buf.subarray(0, p.pos);
}

/** Every file of `dir`: stat'ed, known by the stat cache in `cache` or read and hashed. */
async function scan(dir: string, cache: string | null, options: WorktreeOptions): Promise<Scan> {
  const { rules, gitignore } = await excludes(dir, options);
  try {
    return await scanWith(dir, cache, rules, gitignore, options);
  } finally {
    rules.free();
  }
}

async function scanWith(
  dir: string,
  cache: string | null,
  rules: Excludes,
  gitignore: boolean,
  { signal, onScan }: WorktreeOptions,
): Promise<Scan> {
  const out: Scan = { files: [], whole: [], skipped: [], hashed: 0, cached: 0 };
  const ignores = (root: boolean) => ignoreFiles(root, gitignore).split("\n").filter(Boolean);
  const [rootIgnores, nestedIgnores] = [ignores(true), ignores(false)];
  // Listed and stat'ed with Node's synchronous calls (several times faster than a promise
  // per file), giving the event loop a turn every few thousand entries.
  let sinceTurn = 0;
  const turn = async (entries: number) => {
    sinceTurn += entries;
    if (sinceTurn < 4096) return;
    sinceTurn = 0;
    await new Promise((resolve) => setImmediate(resolve));
    signal?.throwIfAborted();
  };
  const folders: [string, string][] = [[dir, ""]];
  for (let next = folders.pop(); next; next = folders.pop()) {
    const [folder, prefix] = next;
    const entries = readdirSync(folder, { withFileTypes: true }).filter((e) => e.name.toLowerCase() !== ".git");
    // This folder's ignore files first (those core reads, in its order): their patterns
    // decide its entries and all below.
    for (const name of prefix === "" ? rootIgnores : nestedIgnores) {
      if (!entries.some((e) => e.name === name && e.isFile())) continue;
      const text = readFileSync(join(folder, name), "utf8");
      try {
        rules.addIgnoreFile(prefix ? `${prefix}/${name}` : name, text);
      } catch (error) {
        throw fromEngine(error);
      }
    }
    // Every entry but a folder stat'ed, then one question to core per folder: which
    // entries a pattern, the size cap or their type leave out, and why.
    const found = entries.map((entry) => ({
      entry,
      path: prefix ? `${prefix}/${entry.name}` : entry.name,
      info: entry.isDirectory() ? null : lstatSync(join(folder, entry.name), { bigint: true }),
    }));
    const p = new Packer().u32(found.length);
    for (const { entry, path, info } of found) {
      const kind = entry.isDirectory() ? 0 : entry.isSymbolicLink() ? 2 : entry.isFile() ? 1 : 3;
      p.text(path).u8(kind).f64(Number(info?.size ?? 0n));
    }
    let reasons: (string | null)[];
    try {
      reasons = JSON.parse(rules.skips(p.buf.subarray(0, p.pos)));
    } catch (error) {
      throw fromEngine(error);
    }
    found.forEach(({ entry, path, info }, i) => {
      const reason = reasons[i] ?? null;
      if (reason !== null) return void out.skipped.push({ path, reason });
      if (!info) return void folders.push([join(folder, entry.name), path]);
      const mode: FileMode = entry.isSymbolicLink() ? "symlink" : (info.mode & 0o111n) !== 0n ? "executable" : "regular";
      const stat = { size: Number(info.size), mtime: split(info.mtimeNs), ctime: split(info.ctimeNs), inode: Number(info.ino) };
      out.files.push({ path, mode, id: "", stat, full: join(folder, entry.name) });
    });
    onScan?.({ found: out.files.length, read: 0, toRead: 0 });
    await turn(found.length);
  }
  const byPath = <T extends { path: string }>(a: T, b: T) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  out.files.sort(byPath);
  out.skipped.sort(byPath);
  // Core's stat cache says which files are unchanged since the last snapshot.
  const [bytes, written] = await loadCache(cache);
  const p = new Packer().u32(out.files.length);
  for (const f of out.files) packStat(p, f);
  const known = statCacheIds(bytes, written, p.buf.subarray(0, p.pos));
  const view = new DataView(known.buffer, known.byteOffset, known.byteLength);
  const hex = (from: number) => Buffer.from(known.subarray(from, from + 20)).toString("hex");
  // Each file's id (a byte 1 and 20 bytes) or none (a byte 0).
  let at = 0;
  const ids: string[] = out.files.map(() => (known[at] === 1 ? ((at += 21), hex(at - 20)) : ((at += 1), "")));
  // Then the folders to give whole: a count, then each one's first file, the file after
  // its last, its tree id and its path.
  const folderCount = view.getUint32(at, true);
  at += 4;
  for (let i = 0; i < folderCount; i++) {
    const length = view.getUint32(at + 28, true);
    const path = Buffer.from(known.subarray(at + 32, at + 32 + length)).toString("utf8");
    out.whole.push({ start: view.getUint32(at, true), end: view.getUint32(at + 4, true), id: hex(at + 8), path });
    at += 32 + length;
  }
  const toRead = ids.filter((id) => id === "").length;
  for (const [i, file] of out.files.entries()) {
    const id = ids[i] ?? "";
    if (id !== "") {
      file.id = id;
      out.cached++;
    } else {
      signal?.throwIfAborted();
      const data = file.mode === "symlink" ? new TextEncoder().encode(readlinkSync(file.full)) : new Uint8Array(readFileSync(file.full));
      file.id = blobId(data);
      file.data = data;
      out.hashed++;
      onScan?.({ found: out.files.length, read: out.hashed, toRead });
      await turn(Math.ceil(data.length / 4096));
    }
  }
  return out;
}

/** A file's content: read with the scan, or now. */
async function content(file: Found): Promise<Uint8Array> {
  if (file.data) return file.data;
  return file.mode === "symlink"
    ? new TextEncoder().encode(await readlink(file.full))
    : new Uint8Array(await readFile(file.full));
}

/** Ids and modes only: what core compares. */
const idsOnly = (files: Scan["files"]): FolderFile[] => files.map(({ path, mode, id }) => ({ path, mode, id }));

/**
 * The scan's files for core, each folder the stat cache knows unchanged given whole by
 * its tree id (only what changed is compared), content kept when `withData`.
 */
function collapsed(scan: Scan, withData: boolean): FolderFile[] {
  const out: FolderFile[] = [];
  for (let i = 0, next = 0; i < scan.files.length; ) {
    const whole = scan.whole[next];
    if (whole?.start === i) {
      out.push({ path: whole.path, mode: "tree", id: whole.id });
      [i, next] = [whole.end, next + 1];
      continue;
    }
    const file = scan.files[i++];
    if (!file) break;
    const { path, mode, id, data } = file;
    out.push(withData && data ? { path, mode, id, data } : { path, mode, id });
  }
  return out;
}

/** `true` for core's error for an object storage lacks (a folder's tree a gc removed). */
const corrupt = (error: unknown) => (error as { code?: string }).code === "CORRUPT";

async function commitScan(
  repo: Repo,
  found: Scan,
  cache: string | null,
  options: SnapshotOptions,
): Promise<SnapshotResult> {
  const head = await repo.head(options.branch);
  // Only ids are compared: no blob is read, and the folder's contents need not be stored.
  // What the scan skipped is no change to core: the branch keeps it. Folders the stat
  // cache knows unchanged go whole; if storage lacks one's tree (a replay merged other
  // writers' changes into it), every file goes.
  const compare = (files: FolderFile[]) =>
    repo.diffFolder({
      from: head,
      files,
      renames: false,
      lineStats: false,
      untracked: found.skipped.map((s) => s.path),
      signal: options.signal,
    });
  const diff = await compare(collapsed(found, false)).catch((error) => {
    if (found.whole.length === 0 || !corrupt(error)) throw error;
    return compare(idsOnly(found.files));
  });
  const byPath = new Map(found.files.map((f) => [f.path, f]));
  const changes = [];
  for (const file of diff.files) {
    const mine = byPath.get(file.path);
    if (mine) changes.push({ type: "put" as const, path: file.path, content: await content(mine), mode: mine.mode });
    else changes.push({ type: "delete" as const, path: file.path });
  }
  const out =
    changes.length === 0
      ? { commit: head, created: false, files: [] }
      : await repo.commit({ branch: options.branch, author: options.author, message: options.message, changes, signal: options.signal });
  if (found.hashed > 0 || found.cached !== found.files.length) await saveCache(cache, found.files);
  return { commit: out.commit, created: out.created, files: out.files, read: found.hashed, skipped: found.skipped };
}

/**
 * A snapshot of the folder `dir` as a commit: the branch's tree becomes the folder's.
 * Files it leaves out are never deleted from the branch. A folder with nothing new makes
 * no commit (`created: false`).
 */
export async function snapshot(repo: Repo, dir: string, options: SnapshotOptions): Promise<SnapshotResult> {
  const cache = await cacheFile(repo, dir, options.statCache);
  return commitScan(repo, await scan(dir, cache, options), cache, options);
}

/** A commit (`from`, default: the branch's head) against the folder as it is now, as `git diff <commit>` reports it. */
export async function diffWorktree(
  repo: Repo,
  dir: string,
  options: WorktreeOptions & { from?: string; path?: string; patch?: boolean } = {},
): Promise<WorktreeDiff> {
  let found = await scan(dir, await cacheFile(repo, dir, options.statCache), options);
  const from = options.from ?? (await repo.head(options.branch));
  // Files read for this call go with their content; the others are blobs earlier
  // snapshots stored. If storage lost one of those (a prune and gc), hash them all.
  const compare = async (scan: Scan): Promise<WorktreeDiff> => {
    const diff = await repo.diffFolder({
      from,
      files: collapsed(scan, true),
      path: options.path,
      patch: options.patch,
      untracked: scan.skipped.map((s) => s.path),
      signal: options.signal,
    });
    return { ...diff, skipped: scan.skipped };
  };
  try {
    return await compare(found);
  } catch (error) {
    if (!corrupt(error) || found.cached === 0) throw error;
    found = await scan(dir, null, options);
    return compare(found);
  }
}

/**
 * Roll the folder back to the commit `to` (or `path` of it): core plans it (refusing,
 * before anything is written, entries that would write through a symlink, collide by
 * case or land on a path the snapshot leaves out), then a snapshot of the folder is
 * committed as the undo point, tracked files the commit lacks are deleted, and each
 * file is written to a temporary name and renamed into place.
 */
export async function rollback(repo: Repo, dir: string, options: RollbackOptions): Promise<RollbackResult> {
  const cache = await cacheFile(repo, dir, options.statCache);
  const found = await scan(dir, cache, options);
  const plan = await repo.checkout({
    commit: options.to,
    path: options.path,
    files: idsOnly(found.files),
    untracked: found.skipped.map((s) => s.path),
    signal: options.signal,
  });
  const message = options.message ?? `Checkpoint before rolling back to ${options.to}`;
  const undo = await commitScan(repo, found, cache, { ...options, message });
  // Every folder on the way of a write must be a real folder, or something deleted first.
  const deleted = new Set(plan.deletes);
  for (const write of plan.writes) {
    const parts = write.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      const stat = await lstat(join(dir, prefix)).catch(() => null);
      if (!stat) break;
      if (!stat.isDirectory() && !deleted.has(prefix)) {
        const what = stat.isSymbolicLink() ? "a symlink" : "a file";
        throw new SnapgitError("CONFLICT", `refusing to write ${write.path}: ${what} the rollback does not track stands where a folder goes`, {
          value: prefix,
        });
      }
    }
  }
  // Each file is either as it was or as the commit has it: a cancellation stops between
  // two files and says which were done.
  const planned = plan.deletes.length + plan.writes.length;
  const done = { written: [] as string[], deleted: [] as string[] };
  const step = (path: string): boolean => {
    options.onProgress?.({ done: done.written.length + done.deleted.length, planned, path });
    return options.signal?.aborted !== true;
  };
  let going = options.signal?.aborted !== true;
  for (const path of going ? plan.deletes : []) {
    await rm(join(dir, path), { force: true });
    // Folders left empty go too.
    for (let parent = dirname(path); parent !== "."; parent = dirname(parent)) {
      if (!(await rmdir(join(dir, parent)).then(() => true, () => false))) break;
    }
    done.deleted.push(path);
    if (!(going = step(path))) break;
  }
  let n = 0;
  for (const write of going ? plan.writes : []) {
    const full = join(dir, write.path);
    await mkdir(dirname(full), { recursive: true });
    const existing = await lstat(full).catch(() => null);
    if (existing?.isDirectory()) await rmdir(full);
    const temp = join(dirname(full), `.${write.path.split("/").pop()}.snapgit-${process.pid}-${n++}`);
    if (write.mode === "symlink") await symlink(new TextDecoder().decode(write.data), temp);
    else {
      await writeFile(temp, write.data);
      await chmod(temp, write.mode === "executable" ? 0o755 : 0o644);
    }
    await rename(temp, full);
    done.written.push(write.path);
    if (!(going = step(write.path))) break;
  }
  return {
    undo: undo.commit,
    complete: done.written.length + done.deleted.length === planned,
    written: done.written,
    deleted: done.deleted,
    unchanged: plan.unchanged,
    skipped: found.skipped,
  };
}
