/**
 * A store in a local folder that is a bare git repository, for Node (and runtimes with
 * Node's `fs`). Real `git` can read the folder and work on it at the same time:
 *
 * - Objects are written the way git writes loose objects: a temporary file in the same
 *   folder, fsync, then `link` into place, which fails if the object exists (so nothing is
 *   ever overwritten); an existing object gets its modification time refreshed instead, so
 *   a concurrent garbage collection sees it as young.
 * - Refs use git's own lock-file protocol: `<ref>.lock` created with O_CREAT|O_EXCL, the
 *   ref re-read under the lock and compared with the expected value, the new value written
 *   into the lock file, fsync, and `rename` over the ref. `git update-ref` takes the same
 *   lock, so a git process and this adapter never interleave inside an update.
 *   The version of a ref is its value: the compare-and-swap is on the value, exactly as
 *   `git update-ref <ref> <new> <old>` does. Refs packed by `git pack-refs` are read from
 *   `packed-refs`, and deleting one rewrites `packed-refs` under `packed-refs.lock`, as git does.
 *
 * Stale locks. Git never breaks a lock; a lock left by a crashed process blocks every
 * writer until someone deletes it. Here a lock file older than `staleLockMs` (default 10 s)
 * is treated as abandoned and removed. Git holds a ref lock only for the milliseconds
 * between creating and renaming it, and so does this adapter, so a lock that old belongs
 * to a process that died, or that has been stopped for that long. A writer of this adapter
 * whose lock was removed finds out before it renames (it checks by inode that the lock
 * file is still the one it created) and fails without writing; the check and the rename
 * are two steps, and a git process does not check at all, so the bound must stay far
 * above any real hold time. Two writers may find the same stale lock at once: removal is
 * serialized through a second exclusive file, `<ref>..lock` (no valid ref name ends in
 * `.`, so this is never another ref's lock, and git skips names ending in `.lock`), and
 * under it the lock is removed only if it is still the same file (same inode) and still
 * stale, so a fresh lock taken meanwhile by a third writer is never removed.
 *
 * Advisory locks (`acquire`/`release`) are files `locks/<name>` holding a token and an
 * expiry; an expired one is replaced under the same kind of exclusive `~break` file.
 */
import { constants as fsConstants, promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import * as path from "node:path";

import type { ByteRange, CasResult, Listed, RefState, StorageAdapter } from "../adapter.js";
import { StorageError } from "../adapter.js";
import { backoff, mapLimit } from "./concurrency.js";
import {
  checkCas,
  checkKey,
  checkPrefix,
  checkTtl,
  decodeLock,
  decodeRef,
  encodeLock,
  encodeRef,
  lockKey,
  newToken,
  sameRef,
  checkSwappable,
  sameBytes,
} from "./keys.js";

export interface NodeFsAdapterOptions {
  /** A ref lock or lock file older than this is abandoned and may be removed. Default 10 000 ms. */
  staleLockMs?: number;
  /** How long a ref update waits for another writer's lock before failing. Default 30 000 ms. */
  lockTimeoutMs?: number;
  /** fsync files and folders before acknowledging a write. Default true. */
  fsync?: boolean;
  /** Files read, written or examined at once. Default 32. */
  concurrency?: number;
}

const HEAD = "ref: refs/heads/main\n";
const CONFIG = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n";
/** Folders git needs to recognize a repository. */
const LAYOUT = ["objects", "objects/info", "objects/pack", "refs", "refs/heads", "refs/tags"];
/** Errors after which git falls back from `link` to `rename` (filesystems without hard links). */
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV", "EMLINK"]);

interface HeldLock {
  path: string;
  handle: FileHandle | null;
  ino: number;
  dev: number;
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

function wrap(what: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StorageError(`node-fs: ${what}: ${message}`, { cause: error });
}

/**
 * Whether a file is this adapter's own guard for breaking a stale lock (`<lock>~break`),
 * never a key. Git's lock files (`*.lock`) and temporary objects (`tmp_obj_*`) are listed:
 * the engine leaves locks out of every listing of refs, and its GC removes the ones a
 * killed writer left behind.
 */
function isScratch(name: string): boolean {
  return name.includes("~");
}

export class NodeFsAdapter implements StorageAdapter {
  /** Absolute path of the repository folder. */
  readonly root: string;
  readonly #staleLockMs: number;
  readonly #lockTimeoutMs: number;
  readonly #fsync: boolean;
  readonly #concurrency: number;
  #ready: Promise<void> | null = null;

  /** Opens `dir` (created with a bare repository layout if needed) lazily, on first use. */
  constructor(dir: string, options: NodeFsAdapterOptions = {}) {
    this.root = path.resolve(dir);
    this.#staleLockMs = options.staleLockMs ?? 10_000;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.#fsync = options.fsync ?? true;
    this.#concurrency = options.concurrency ?? 32;
  }

  /** Opens `dir`, creating `HEAD`, `config`, `objects/` and `refs/` where missing. */
  static async open(dir: string, options: NodeFsAdapterOptions = {}): Promise<NodeFsAdapter> {
    const adapter = new NodeFsAdapter(dir, options);
    await adapter.#init();
    return adapter;
  }

  #init(): Promise<void> {
    this.#ready ??= this.#createLayout().catch((error: unknown) => {
      this.#ready = null;
      throw wrap(`cannot open ${this.root}`, error);
    });
    return this.#ready;
  }

  async #createLayout(): Promise<void> {
    const dotGit = await fs.lstat(path.join(this.root, ".git")).catch(() => null);
    if (dotGit) {
      throw new StorageError(
        `node-fs: ${this.root} is a work tree; open its git folder (${path.join(this.root, ".git")}) instead`,
      );
    }
    await fs.mkdir(this.root, { recursive: true });
    for (const dir of LAYOUT) await fs.mkdir(this.#file(dir), { recursive: true });
    await this.#createFile("HEAD", HEAD);
    await this.#createFile("config", CONFIG);
    const config = await fs.readFile(this.#file("config"), "utf8");
    if (/^\s*refstorage\s*=\s*reftable\s*$/im.test(config)) {
      throw new StorageError(`node-fs: ${this.root} keeps refs in reftable format; only loose refs are supported`);
    }
  }

  /** Creates a small file with its full content at once, unless it exists. */
  async #createFile(key: string, text: string): Promise<void> {
    const file = this.#file(key);
    const tmp = path.join(path.dirname(file), `tmp_${newToken()}`);
    await fs.writeFile(tmp, text, { flag: "wx" });
    try {
      await fs.link(tmp, file);
    } catch (error) {
      if (code(error) === "EEXIST") return;
      if (!NO_HARD_LINKS.has(code(error) ?? "")) throw error;
      if (!(await exists(file))) await fs.rename(tmp, file);
    } finally {
      await fs.unlink(tmp).catch(() => undefined);
    }
  }

  #file(key: string): string {
    return `${this.root}/${key}`;
  }

  async getMany(keys: string[]): Promise<(Uint8Array | null)[]> {
    keys.forEach(checkKey);
    await this.#init();
    return mapLimit(keys, this.#concurrency, async (key) => {
      try {
        return new Uint8Array(await fs.readFile(this.#file(key)));
      } catch (error) {
        if (["ENOENT", "ENOTDIR", "EISDIR"].includes(code(error) ?? "")) return null;
        throw wrap(`cannot read ${key}`, error);
      }
    });
  }

  async getRanges(ranges: ByteRange[]): Promise<(Uint8Array | null)[]> {
    ranges.forEach(({ key }) => checkKey(key));
    await this.#init();
    return mapLimit(ranges, this.#concurrency, async ({ key, start, len }) => {
      let handle: FileHandle | undefined;
      try {
        handle = await fs.open(this.#file(key), "r");
        const buffer = new Uint8Array(len);
        let filled = 0;
        while (filled < len) {
          const { bytesRead } = await handle.read(buffer, filled, len - filled, start + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return filled === len ? buffer : buffer.slice(0, filled);
      } catch (error) {
        if (["ENOENT", "ENOTDIR", "EISDIR"].includes(code(error) ?? "")) return null;
        throw wrap(`cannot read ${key}`, error);
      } finally {
        await handle?.close();
      }
    });
  }

  async putMany(objects: { key: string; bytes: Uint8Array }[]): Promise<void> {
    for (const { key, bytes } of objects) {
      checkKey(key);
      if (!(bytes instanceof Uint8Array)) throw new StorageError(`bytes of ${key} are not a Uint8Array`);
    }
    await this.#init();
    const touched = new Set<string>();
    await mapLimit(objects, this.#concurrency, async ({ key, bytes }) => {
      try {
        for (const dir of await this.#writeObject(key, bytes)) touched.add(dir);
      } catch (error) {
        throw wrap(`cannot write ${key}`, error);
      }
    });
    if (this.#fsync) await mapLimit([...touched], this.#concurrency, (dir) => fsyncDir(dir));
  }

  /** Writes one object unless it exists; returns the folders whose entries changed. */
  async #writeObject(key: string, bytes: Uint8Array): Promise<string[]> {
    const file = this.#file(key);
    const dir = path.dirname(file);
    const changed: string[] = [];
    const made = await fs.mkdir(dir, { recursive: true });
    if (made !== undefined) changed.push(path.dirname(made));
    // Named like git's own temporary objects, so `git gc` cleans up after a crash.
    const tmp = path.join(dir, `tmp_obj_${newToken()}`);
    const handle = await fs.open(tmp, "wx", 0o444);
    try {
      await handle.writeFile(bytes);
      if (this.#fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    let kept = false;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await fs.link(tmp, file);
          changed.push(dir);
          return changed;
        } catch (error) {
          if (code(error) === "EEXIST") {
            if (await refresh(file)) return changed;
            if (attempt < 3) continue; // removed by a concurrent collection: write it again
            throw error;
          }
          if (!NO_HARD_LINKS.has(code(error) ?? "")) throw error;
          // Without hard links there is no exclusive create of a whole file; like git, rename.
          // An existing object has the same content, so replacing it loses nothing.
          if (await refresh(file)) return changed;
          await fs.rename(tmp, file);
          kept = true;
          changed.push(dir);
          return changed;
        }
      }
    } finally {
      if (!kept) await fs.unlink(tmp).catch(() => undefined);
    }
  }

  async list(prefix: string): Promise<Listed[]> {
    checkPrefix(prefix);
    await this.#init();
    try {
      const slash = prefix.lastIndexOf("/");
      const base = slash < 0 ? "" : prefix.slice(0, slash);
      const out = (await this.#walk(base)).filter((item) => item.key.startsWith(prefix));
      if (prefix.startsWith("refs/") || "refs/".startsWith(prefix)) {
        const packed = await this.#packedRefs();
        if (packed) {
          const loose = new Set(out.map((item) => item.key));
          for (const [key, value] of packed.refs) {
            if (key.startsWith(prefix) && !loose.has(key)) {
              out.push({ key, size: value.length + 1, modifiedMs: packed.modifiedMs });
            }
          }
        }
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    } catch (error) {
      throw wrap(`cannot list ${JSON.stringify(prefix)}`, error);
    }
  }

  /** Every regular file under the folder `base` (a key prefix without trailing `/`). */
  async #walk(base: string): Promise<Listed[]> {
    const out: Listed[] = [];
    let dirs = [base];
    while (dirs.length > 0) {
      const next: string[] = [];
      await mapLimit(dirs, this.#concurrency, async (dir) => {
        let entries;
        try {
          entries = await fs.readdir(dir === "" ? this.root : this.#file(dir), { withFileTypes: true });
        } catch (error) {
          if (["ENOENT", "ENOTDIR"].includes(code(error) ?? "")) return;
          throw error;
        }
        const files: string[] = [];
        for (const entry of entries) {
          const key = dir === "" ? entry.name : `${dir}/${entry.name}`;
          if (entry.isDirectory()) next.push(key);
          else if (entry.isFile() && !isScratch(entry.name)) files.push(key);
        }
        await mapLimit(files, this.#concurrency, async (key) => {
          const stat = await fs.lstat(this.#file(key)).catch(() => null);
          if (stat?.isFile()) out.push({ key, size: stat.size, modifiedMs: stat.mtimeMs });
        });
      });
      dirs = next;
    }
    return out;
  }

  async delete(keys: string[]): Promise<void> {
    keys.forEach(checkKey);
    await this.#init();
    await mapLimit(keys, this.#concurrency, async (key) => {
      try {
        await fs.unlink(this.#file(key));
      } catch (error) {
        if (["ENOENT", "ENOTDIR"].includes(code(error) ?? "")) return;
        throw wrap(`cannot delete ${key}`, error);
      }
    });
  }

  async readRef(key: string): Promise<RefState | null> {
    checkKey(key);
    await this.#init();
    try {
      return await this.#readRef(key);
    } catch (error) {
      throw wrap(`cannot read ref ${key}`, error);
    }
  }

  /** The loose ref, else the packed one; the version of a ref is its value. */
  async #readRef(key: string): Promise<RefState | null> {
    let value: string | null = null;
    try {
      value = decodeRef(key, await fs.readFile(this.#file(key), "utf8"));
    } catch (error) {
      if (!["ENOENT", "ENOTDIR", "EISDIR"].includes(code(error) ?? "")) throw error;
      value = (await this.#packedRefs())?.refs.get(key) ?? null;
    }
    return value === null ? null : { value, version: value };
  }

  async casRef(key: string, expected: RefState | null, value: string | null): Promise<CasResult> {
    checkCas(key, expected, value);
    await this.#init();
    try {
      return await this.#casRef(key, expected, value);
    } catch (error) {
      throw wrap(`cannot update ref ${key}`, error);
    }
  }

  async swap(key: string, expected: Uint8Array | null, value: Uint8Array | null): Promise<boolean> {
    checkSwappable(key);
    await this.#init();
    try {
      return await this.#swap(key, expected, value);
    } catch (error) {
      throw wrap(`cannot replace ${key}`, error);
    }
  }

  /** Under git's own `<key>.lock`: read, compare, then rename the lock into place or unlink. */
  async #swap(key: string, expected: Uint8Array | null, value: Uint8Array | null): Promise<boolean> {
    const file = this.#file(key);
    const lock = await this.#lock(`${file}.lock`);
    let committed = false;
    try {
      let current: Uint8Array | null = null;
      try {
        current = await fs.readFile(file);
      } catch (error) {
        if (code(error) !== "ENOENT") throw error;
      }
      if (!sameBytes(current, expected)) return false;
      if (value !== null) {
        const handle = lock.handle as FileHandle;
        await handle.writeFile(value);
        if (this.#fsync) await handle.sync();
        await this.#commit(lock, file);
        committed = true;
      } else {
        await fs.unlink(file).catch((error: unknown) => {
          if (code(error) !== "ENOENT") throw error;
        });
      }
      if (this.#fsync) await fsyncDir(path.dirname(file));
      return true;
    } finally {
      if (!committed) await this.#unlock(lock);
    }
  }

  async #casRef(key: string, expected: RefState | null, value: string | null): Promise<CasResult> {
    const file = this.#file(key);
    const lock = await this.#lock(`${file}.lock`);
    let committed = false;
    try {
      const current = await this.#readRef(key);
      if (!sameRef(current, expected, "value")) return { won: false, current };
      if (value !== null) {
        const handle = lock.handle as FileHandle;
        await handle.writeFile(encodeRef(value));
        if (this.#fsync) await handle.sync();
        await this.#commit(lock, file);
        committed = true;
        if (this.#fsync) await fsyncDir(path.dirname(file));
        return { won: true, version: value };
      }
      if (current !== null) {
        if ((await this.#packedRefs())?.refs.has(key)) await this.#deletePacked(key);
        await fs.unlink(file).catch((error: unknown) => {
          if (code(error) !== "ENOENT") throw error;
        });
        if (this.#fsync) await fsyncDir(path.dirname(file));
      }
      await this.#unlock(lock);
      committed = true;
      await this.#pruneEmptyDirs(path.dirname(key));
      return { won: true, version: "" };
    } finally {
      if (!committed) await this.#unlock(lock);
    }
  }

  /**
   * Creates `lockPath` exclusively, waiting while another writer holds it and removing it
   * once it is stale (see the module comment). Creates missing parent folders.
   */
  async #lock(lockPath: string): Promise<HeldLock> {
    const deadline = Date.now() + this.#lockTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await fs.open(
          lockPath,
          fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY,
          0o666,
        );
        const stat = await handle.stat();
        return { path: lockPath, handle, ino: stat.ino, dev: stat.dev };
      } catch (error) {
        const failure = code(error);
        if (failure === "ENOENT" && Date.now() <= deadline) {
          // The folder is missing, or was pruned after a delete between our mkdir and open.
          await fs.mkdir(path.dirname(lockPath), { recursive: true }).catch((mkdirError: unknown) => {
            throw refConflict(lockPath, mkdirError);
          });
          continue;
        }
        if (failure === "ENOTDIR") throw refConflict(lockPath, error);
        if (failure !== "EEXIST") throw error;
      }
      if (await this.#breakIfStale(lockPath)) continue;
      if (Date.now() > deadline) {
        throw new StorageError(
          `node-fs: ${lockPath} has been held by another writer for over ${this.#lockTimeoutMs} ms`,
        );
      }
      await backoff(Math.min(attempt, 6), 1, 50);
    }
  }

  /** Removes `lockPath` if it is stale; true if it is gone (so the caller should retry at once). */
  async #breakIfStale(lockPath: string): Promise<boolean> {
    const seen = await fs.lstat(lockPath).catch(() => null);
    if (seen === null) return true;
    if (Date.now() - seen.mtimeMs < this.#staleLockMs) return false;
    const breaker = lockPath.replace(/\.lock$/, "..lock");
    return this.#withBreaker(breaker, async () => {
      const now = await fs.lstat(lockPath).catch(() => null);
      if (now !== null && now.ino === seen.ino && now.dev === seen.dev && Date.now() - now.mtimeMs >= this.#staleLockMs) {
        await fs.unlink(lockPath).catch(() => undefined);
      }
      return true;
    });
  }

  /**
   * Runs `fn` holding the exclusive file `breaker`; false without running it when another
   * process holds it (a breaker left by a crash is itself removed once stale).
   */
  async #withBreaker(breaker: string, fn: () => Promise<boolean>): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await fs.open(breaker, "wx");
    } catch (error) {
      if (code(error) !== "EEXIST") throw error;
      const stat = await fs.lstat(breaker).catch(() => null);
      if (stat !== null && Date.now() - stat.mtimeMs >= this.#staleLockMs) {
        await fs.unlink(breaker).catch(() => undefined);
      }
      return false;
    }
    try {
      return await fn();
    } finally {
      await handle.close();
      await fs.unlink(breaker).catch(() => undefined);
    }
  }

  /** Renames our lock over `file`, after checking the lock file is still ours. */
  async #commit(lock: HeldLock, file: string): Promise<void> {
    await lock.handle?.close();
    lock.handle = null;
    await this.#checkOwned(lock);
    try {
      await fs.rename(lock.path, file);
    } catch (error) {
      // An empty folder left where the ref goes (a deleted `a/b` before creating `a`): git
      // removes it too. A folder with refs in it is a name conflict.
      if (code(error) !== "EISDIR" && code(error) !== "ENOTEMPTY") throw error;
      await fs.rmdir(file).catch((rmdirError: unknown) => {
        throw refConflict(file, rmdirError);
      });
      await fs.rename(lock.path, file);
    }
  }

  async #checkOwned(lock: HeldLock): Promise<void> {
    const stat = await fs.lstat(lock.path).catch(() => null);
    if (stat === null || stat.ino !== lock.ino || stat.dev !== lock.dev) {
      throw new StorageError(
        `node-fs: ${lock.path} was removed as stale while this writer held it (stalled over ${this.#staleLockMs} ms); nothing was written`,
      );
    }
  }

  /** Releases a lock that was not committed: removes the file only if it is still ours. */
  async #unlock(lock: HeldLock): Promise<void> {
    await lock.handle?.close().catch(() => undefined);
    lock.handle = null;
    const stat = await fs.lstat(lock.path).catch(() => null);
    if (stat !== null && stat.ino === lock.ino && stat.dev === lock.dev) {
      await fs.unlink(lock.path).catch(() => undefined);
    }
  }

  /** Removes folders left empty by a deleted ref, as git does, keeping git's own folders. */
  async #pruneEmptyDirs(dirKey: string): Promise<void> {
    let dir = dirKey;
    while (dir.split("/").length > 2) {
      try {
        await fs.rmdir(this.#file(dir));
      } catch {
        return; // not empty (or already gone): stop
      }
      dir = path.posix.dirname(dir);
    }
  }

  async #packedRefs(): Promise<{ refs: Map<string, string>; text: string; modifiedMs: number } | null> {
    let text: string;
    let modifiedMs: number;
    try {
      const file = this.#file("packed-refs");
      [text, modifiedMs] = await Promise.all([
        fs.readFile(file, "utf8"),
        fs.stat(file).then((stat) => stat.mtimeMs),
      ]);
    } catch (error) {
      if (code(error) === "ENOENT") return null;
      throw error;
    }
    const refs = new Map<string, string>();
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#") || line.startsWith("^")) continue;
      const space = line.indexOf(" ");
      const name = line.slice(space + 1);
      refs.set(name, decodeRef(`packed-refs:${name}`, line.slice(0, space)));
    }
    return { refs, text, modifiedMs };
  }

  /** Rewrites `packed-refs` without `key`, under `packed-refs.lock` (git's order: packed first). */
  async #deletePacked(key: string): Promise<void> {
    const file = this.#file("packed-refs");
    const lock = await this.#lock(`${file}.lock`);
    let committed = false;
    try {
      const packed = await this.#packedRefs();
      if (!packed?.refs.has(key)) return;
      const kept: string[] = [];
      let skipPeel = false;
      for (const line of packed.text.split("\n")) {
        if (line === "") continue;
        if (line.startsWith("^")) {
          if (!skipPeel) kept.push(line);
          continue;
        }
        skipPeel = !line.startsWith("#") && line.slice(line.indexOf(" ") + 1) === key;
        if (!skipPeel) kept.push(line);
      }
      const handle = lock.handle as FileHandle;
      await handle.writeFile(kept.map((line) => `${line}\n`).join(""));
      if (this.#fsync) await handle.sync();
      await this.#commit(lock, file);
      committed = true;
    } finally {
      if (!committed) await this.#unlock(lock);
    }
  }

  /**
   * An advisory lock: the file `locks/<name>` holding a token and an expiry, created with its
   * content at once (temporary file, then `link`, which fails if the lock exists).
   */
  async acquire(name: string, ttlMs: number): Promise<string | null> {
    const file = this.#file(lockKey(name));
    checkTtl(ttlMs);
    await this.#init();
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      for (let attempt = 0; attempt < 3; attempt++) {
        const token = newToken();
        const tmp = path.join(path.dirname(file), `tmp_${token}`);
        await fs.writeFile(tmp, encodeLock({ token, expiresMs: Date.now() + ttlMs }), { flag: "wx" });
        try {
          await fs.link(tmp, file);
          return token;
        } catch (error) {
          if (code(error) !== "EEXIST") throw error;
        } finally {
          await fs.unlink(tmp).catch(() => undefined);
        }
        const held = await readLock(file);
        if (held !== undefined && held !== null && held.expiresMs > Date.now()) return null;
        // Expired (or unreadable): remove it only if it is still that same expired lock.
        await this.#whileBreaking(file, async () => {
          const again = await readLock(file);
          if (again === undefined) return;
          if (again === null || (again.token === held?.token && again.expiresMs <= Date.now())) {
            await fs.unlink(file).catch(() => undefined);
          }
        });
      }
      return null;
    } catch (error) {
      throw wrap(`cannot acquire lock ${name}`, error);
    }
  }

  async release(name: string, token: string): Promise<void> {
    const file = this.#file(lockKey(name));
    await this.#init();
    try {
      await this.#whileBreaking(file, async () => {
        if ((await readLock(file))?.token === token) await fs.unlink(file).catch(() => undefined);
      });
    } catch (error) {
      throw wrap(`cannot release lock ${name}`, error);
    }
  }

  /** Runs `fn` holding `<lock file>~break`, waiting for it up to the lock timeout. */
  async #whileBreaking(file: string, fn: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + this.#lockTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const ran = await this.#withBreaker(`${file}~break`, async () => {
        await fn();
        return true;
      });
      if (ran) return;
      if (Date.now() > deadline) throw new StorageError(`node-fs: ${file}~break is held by another process`);
      await backoff(Math.min(attempt, 6), 1, 50);
    }
  }
}

/** `undefined`: no lock file; `null`: unreadable. */
async function readLock(file: string) {
  try {
    return decodeLock(await fs.readFile(file));
  } catch (error) {
    if (code(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** Sets an existing file's modification time to now; false if the file does not exist. */
async function refresh(file: string): Promise<boolean> {
  const now = new Date();
  try {
    await fs.utimes(file, now, now);
    return true;
  } catch (error) {
    if (code(error) === "ENOENT") return false;
    throw error;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fs.open(dir, "r");
    await handle.sync();
  } catch (error) {
    // Some platforms (Windows) cannot open or sync a folder; the file itself was synced.
    if (!["EISDIR", "EPERM", "EINVAL", "EACCES", "EBADF"].includes(code(error) ?? "")) throw error;
  } finally {
    await handle?.close();
  }
}

function refConflict(file: string, cause: unknown): StorageError {
  return new StorageError(
    `node-fs: ref name conflict at ${file}: a ref is in the way of a folder, or a folder of refs in the way of a ref`,
    { cause },
  );
}
