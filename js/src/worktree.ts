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
 * Every file is read and hashed on each call (the `snapgit` command keeps a stat cache
 * and reads only files whose stat changed, and takes exclude patterns). `.git` folders
 * are never part of a folder; what is neither a file, a symlink nor a folder is left out
 * and never written over.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readdir, readlink, rename, rm, rmdir, symlink, writeFile } from "node:fs/promises";
import { join, dirname } from "node:path";

import type { Repo } from "./api.js";
import type { CommitResult, DiffResult, FileMode, FolderFile, SignatureInput } from "./types.js";

/** What a folder holds: its files, and the paths left out. */
interface Scan {
  files: (FolderFile & { mode: FileMode; data: Uint8Array })[];
  /** Paths left out (not a file, symlink or folder): never written or deleted. */
  skipped: string[];
}

/** Options every call takes. */
export interface WorktreeOptions {
  /** The branch (default: the store's default branch). */
  branch?: string;
}

/** What a snapshot made. */
export interface SnapshotResult {
  /** The branch's head: the new commit, or the unchanged head when nothing changed. */
  commit: string;
  created: boolean;
  /** The files the commit changed. */
  files: CommitResult["files"];
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

async function scan(dir: string): Promise<Scan> {
  const out: Scan = { files: [], skipped: [] };
  const walk = async (folder: string, prefix: string): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true });
    await Promise.all(
      entries.map(async (entry) => {
        if (entry.name.toLowerCase() === ".git") return;
        const path = prefix ? `${prefix}/${entry.name}` : entry.name;
        const full = join(folder, entry.name);
        if (entry.isDirectory()) {
          await walk(full, path);
        } else if (entry.isSymbolicLink()) {
          const data = new TextEncoder().encode(await readlink(full));
          out.files.push({ path, mode: "symlink", id: blobId(data), data });
        } else if (entry.isFile()) {
          const data = new Uint8Array(await readFile(full));
          const mode = ((await lstat(full)).mode & 0o111) !== 0 ? "executable" : "regular";
          out.files.push({ path, mode, id: blobId(data), data });
        } else {
          out.skipped.push(path);
        }
      }),
    );
  };
  await walk(dir, "");
  out.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/** Ids and modes only: what core compares. */
const idsOnly = (files: Scan["files"]): FolderFile[] => files.map(({ path, mode, id }) => ({ path, mode, id }));

const below = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

async function commitScan(repo: Repo, found: Scan, options: SnapshotOptions): Promise<SnapshotResult> {
  const head = await repo.head(options.branch);
  // Only ids are compared: no blob is read, and the folder's contents need not be stored.
  const diff = await repo.diffFolder({ from: head, files: idsOnly(found.files), renames: false, lineStats: false });
  const byPath = new Map(found.files.map((f) => [f.path, f]));
  const changes = [];
  for (const file of diff.files) {
    const mine = byPath.get(file.path);
    if (mine) changes.push({ type: "put" as const, path: file.path, content: mine.data, mode: mine.mode });
    else if (!found.skipped.some((s) => below(file.path, s))) changes.push({ type: "delete" as const, path: file.path });
  }
  if (changes.length === 0) return { commit: head, created: false, files: [] };
  const out = await repo.commit({ branch: options.branch, author: options.author, message: options.message, changes });
  return { commit: out.commit, created: out.created, files: out.files };
}

/**
 * A snapshot of the folder `dir` as a commit: the branch's tree becomes the folder's.
 * Files it leaves out are never deleted from the branch. A folder with nothing new makes
 * no commit (`created: false`).
 */
export async function snapshot(repo: Repo, dir: string, options: SnapshotOptions): Promise<SnapshotResult> {
  return commitScan(repo, await scan(dir), options);
}

/** A commit (`from`, default: the branch's head) against the folder as it is now, as `git diff <commit>` reports it. */
export async function diffWorktree(
  repo: Repo,
  dir: string,
  options: WorktreeOptions & { from?: string; path?: string; patch?: boolean } = {},
): Promise<DiffResult> {
  const found = await scan(dir);
  const from = options.from ?? (await repo.head(options.branch));
  const names = await repo.diffFolder({ from, files: idsOnly(found.files), path: options.path, lineStats: false });
  // Content only for the files that differ: the others are the commit's own blobs.
  const changed = new Set(names.files.map((f) => f.path));
  const files = found.files.map((f) => (changed.has(f.path) ? f : { path: f.path, mode: f.mode, id: f.id }));
  return repo.diffFolder({ from, files, path: options.path, patch: options.patch });
}

/**
 * Roll the folder back to the commit `to` (or `path` of it): core plans it (refusing,
 * before anything is written, entries that would write through a symlink, collide by
 * case or land on a path the snapshot leaves out), then a snapshot of the folder is
 * committed as the undo point, tracked files the commit lacks are deleted, and each
 * file is written to a temporary name and renamed into place.
 */
export async function rollback(repo: Repo, dir: string, options: RollbackOptions): Promise<RollbackResult> {
  const found = await scan(dir);
  const plan = await repo.checkout({
    commit: options.to,
    path: options.path,
    files: idsOnly(found.files),
    untracked: found.skipped,
  });
  const message = options.message ?? `Checkpoint before rolling back to ${options.to}`;
  const undo = await commitScan(repo, found, { ...options, message });
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
