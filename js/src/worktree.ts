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
 * `.snapgitignore` at the folder's root or `checkpointExcludes` leave out.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readdir, readlink, realpath, rename, rm, rmdir, stat, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, dirname } from "node:path";

import { Excludes, checkpointExcludes, ignoreFilePatterns, statCacheEncode, statCacheIds } from "../pkg/snapgit_wasm.js";
import type { Repo } from "./api.js";
import { fromEngine } from "./errors.js";
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

/** What a folder holds: its files, and the paths left out. */
interface Scan {
  files: Found[];
  /** Paths left out (not a file, symlink or folder): never written or deleted. */
  skipped: string[];
  /** Files read and hashed (the others' stat was clean in the cache). */
  hashed: number;
  /** Files the stat cache knew. */
  cached: number;
}

/** Options every call takes. */
export interface WorktreeOptions {
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
   * by core as the `snapgit` command matches them. A `.snapgitignore` at the folder's
   * root is always read; a later pattern wins.
   */
  exclude?: string[];
  /** Also leave out what checkpoint tools do: dependency and build folders, caches, `.env*`, archives, audio and video. */
  checkpointExcludes?: boolean;
  /**
   * Also leave out what the folder's `.gitignore` files do, as git reads them: the one in
   * each folder applies below that folder, a deeper one's patterns winning (over the
   * other excludes too).
   */
  gitignore?: boolean;
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
}

/** What a rollback did. */
export interface RollbackResult {
  /** The snapshot taken first: roll back to it to undo. */
  undo: string;
  written: string[];
  deleted: string[];
  unchanged: number;
}

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

/** What leaves files out: the patterns `options` name with the folder's own `.snapgitignore` (packed, or `null` for none), and whether each `.gitignore` counts. */
interface Leaving {
  patterns: Uint8Array | null;
  gitignore: boolean;
}

async function excludes(dir: string, options: WorktreeOptions): Promise<Leaving> {
  const patterns = options.checkpointExcludes ? checkpointExcludes().split("\n") : [];
  const own = await readFile(join(dir, ".snapgitignore"), "utf8").catch(() => "");
  const read = ignoreFilePatterns("", own);
  if (read) patterns.push(...read.split("\n"));
  patterns.push(...(options.exclude ?? []));
  const gitignore = options.gitignore === true;
  if (patterns.length === 0) return { patterns: null, gitignore };
  const p = new Packer().u32(patterns.length);
  patterns.forEach((pattern, i) => p.str(pattern, `exclude[${i}]`));
  return { patterns: p.buf.slice(0, p.pos), gitignore };
}

/** Every file of `dir`: stat'ed, known by the stat cache in `cache` or read and hashed. */
async function scan(dir: string, cache: string | null, leaving: Leaving = { patterns: null, gitignore: false }): Promise<Scan> {
  let excluded: Excludes | null = null;
  try {
    const none = new Packer().u32(0);
    excluded = leaving.patterns || leaving.gitignore ? new Excludes(leaving.patterns ?? none.buf.subarray(0, none.pos)) : null;
  } catch (error) {
    throw fromEngine(error);
  }
  try {
    return await scanWith(dir, cache, excluded, leaving.gitignore);
  } finally {
    excluded?.free();
  }
}

async function scanWith(dir: string, cache: string | null, excluded: Excludes | null, gitignore: boolean): Promise<Scan> {
  const out: Scan = { files: [], skipped: [], hashed: 0, cached: 0 };
  const walk = async (folder: string, prefix: string): Promise<void> => {
    let entries = (await readdir(folder, { withFileTypes: true })).filter((e) => e.name.toLowerCase() !== ".git");
    // This folder's `.gitignore` first: its patterns decide its entries and all below.
    if (excluded && gitignore && entries.some((e) => e.name === ".gitignore" && e.isFile())) {
      const text = await readFile(join(folder, ".gitignore"), "utf8");
      try {
        excluded.addIgnoreFile(prefix, text);
      } catch (error) {
        throw fromEngine(error);
      }
    }
    if (excluded) {
      // One question to core per folder: which of its entries a pattern leaves out.
      const p = new Packer().u32(entries.length);
      for (const e of entries) p.text(prefix ? `${prefix}/${e.name}` : e.name).u8(e.isDirectory() ? 1 : 0);
      const flags = excluded.check(p.buf.subarray(0, p.pos));
      entries = entries.filter((e, i) => {
        if (flags[i] === 1) out.skipped.push(prefix ? `${prefix}/${e.name}` : e.name);
        return flags[i] !== 1;
      });
    }
    await Promise.all(
      entries.map(async (entry) => {
        const path = prefix ? `${prefix}/${entry.name}` : entry.name;
        const full = join(folder, entry.name);
        if (entry.isDirectory()) return walk(full, path);
        if (!entry.isSymbolicLink() && !entry.isFile()) return void out.skipped.push(path);
        const info = await lstat(full, { bigint: true });
        const mode: FileMode = entry.isSymbolicLink() ? "symlink" : (info.mode & 0o111n) !== 0n ? "executable" : "regular";
        const stat = { size: Number(info.size), mtime: split(info.mtimeNs), ctime: split(info.ctimeNs), inode: Number(info.ino) };
        out.files.push({ path, mode, id: "", stat, full });
      }),
    );
  };
  await walk(dir, "");
  out.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // Core's stat cache says which files are unchanged since the last snapshot.
  const [bytes, written] = await loadCache(cache);
  const p = new Packer().u32(out.files.length);
  for (const f of out.files) packStat(p, f);
  const known = statCacheIds(bytes, written, p.buf.subarray(0, p.pos));
  let at = 0;
  for (const file of out.files) {
    if (known[at] === 1) {
      file.id = Buffer.from(known.subarray(at + 1, at + 21)).toString("hex");
      out.cached++;
      at += 21;
    } else {
      at += 1;
      const data =
        file.mode === "symlink" ? new TextEncoder().encode(await readlink(file.full)) : new Uint8Array(await readFile(file.full));
      file.id = blobId(data);
      file.data = data;
      out.hashed++;
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

async function commitScan(
  repo: Repo,
  found: Scan,
  cache: string | null,
  options: SnapshotOptions,
): Promise<SnapshotResult> {
  const head = await repo.head(options.branch);
  // Only ids are compared: no blob is read, and the folder's contents need not be stored.
  // What the scan skipped is no change to core: the branch keeps it.
  const diff = await repo.diffFolder({
    from: head,
    files: idsOnly(found.files),
    renames: false,
    lineStats: false,
    untracked: found.skipped,
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
      : await repo.commit({ branch: options.branch, author: options.author, message: options.message, changes });
  if (found.hashed > 0 || found.cached !== found.files.length) await saveCache(cache, found.files);
  return { commit: out.commit, created: out.created, files: out.files, read: found.hashed };
}

/**
 * A snapshot of the folder `dir` as a commit: the branch's tree becomes the folder's.
 * Files it leaves out are never deleted from the branch. A folder with nothing new makes
 * no commit (`created: false`).
 */
export async function snapshot(repo: Repo, dir: string, options: SnapshotOptions): Promise<SnapshotResult> {
  const cache = await cacheFile(repo, dir, options.statCache);
  return commitScan(repo, await scan(dir, cache, await excludes(dir, options)), cache, options);
}

/** A commit (`from`, default: the branch's head) against the folder as it is now, as `git diff <commit>` reports it. */
export async function diffWorktree(
  repo: Repo,
  dir: string,
  options: WorktreeOptions & { from?: string; path?: string; patch?: boolean } = {},
): Promise<DiffResult> {
  const excluded = await excludes(dir, options);
  let found = await scan(dir, await cacheFile(repo, dir, options.statCache), excluded);
  const from = options.from ?? (await repo.head(options.branch));
  // Files read for this call go with their content; the others are blobs earlier
  // snapshots stored. If storage lost one of those (a prune and gc), hash them all.
  const request = (scan: Scan) => ({
    from,
    files: scan.files.map(({ path, mode, id, data }) => (data ? { path, mode, id, data } : { path, mode, id })),
    path: options.path,
    patch: options.patch,
    untracked: scan.skipped,
  });
  try {
    return await repo.diffFolder(request(found));
  } catch (error) {
    if ((error as { code?: string }).code !== "CORRUPT" || found.cached === 0) throw error;
    found = await scan(dir, null, excluded);
    return repo.diffFolder(request(found));
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
  const found = await scan(dir, cache, await excludes(dir, options));
  const plan = await repo.checkout({
    commit: options.to,
    path: options.path,
    files: idsOnly(found.files),
    untracked: found.skipped,
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
        throw new Error(`refusing to write ${write.path}: ${prefix} is not a folder the rollback tracks`);
      }
    }
  }
  for (const path of plan.deletes) {
    await rm(join(dir, path), { force: true });
    // Folders left empty go too.
    for (let parent = dirname(path); parent !== "."; parent = dirname(parent)) {
      if (!(await rmdir(join(dir, parent)).then(() => true, () => false))) break;
    }
  }
  let n = 0;
  for (const write of plan.writes) {
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
  }
  return {
    undo: undo.commit,
    written: plan.writes.map((w) => w.path),
    deleted: plan.deletes,
    unchanged: plan.unchanged,
  };
}
