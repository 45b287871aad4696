import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, utimes, writeFile, mkdir, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, describe, test } from "node:test";

import { NodeFsAdapter } from "../dist/adapters/node-fs.js";
import { conformance, counter, looseObject, refKey } from "./conformance.mjs";

const run = promisify(execFile);
const self = fileURLToPath(import.meta.url);
const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
// Real git, unaffected by the user's or the system's configuration.
const gitEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", LC_ALL: "C" };

function git(dir, ...args) {
  return run("git", ["--git-dir", dir, ...args], { env: gitEnv, maxBuffer: 64 << 20 }).then((out) => out.stdout);
}

const scratch = [];
async function tempDir() {
  const dir = await mkdtemp(path.join(tmpdir(), "snapgit-fs-"));
  scratch.push(dir);
  return dir;
}
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

/** Increments the counter ref `key` `increments` times from each of `writers` clients. */
async function increment(dir, key, writers, increments, options = {}) {
  const clients = await Promise.all(Array.from({ length: writers }, () => NodeFsAdapter.open(dir, options)));
  let lost = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (let done = 0; done < increments; ) {
        const current = await client.readRef(key);
        const result = await client.casRef(key, current, counter(parseInt(current.value, 16) + 1));
        if (result.won) done++;
        else lost++;
      }
    }),
  );
  return lost;
}

// A child process of the multi-process race (see below) runs this file with this variable set.
if (process.env.SNAPGIT_FS_WRITER) {
  const { dir, key, writers, increments } = JSON.parse(process.env.SNAPGIT_FS_WRITER);
  const lost = await increment(dir, key, writers, increments);
  // The test runner may print its own summary on stdout too: mark the answer.
  process.stdout.write(`\nRESULT ${JSON.stringify({ lost })}\n`);
} else {
  conformance("node-fs", {
    setup: async () => {
      const dir = await tempDir();
      return { open: () => NodeFsAdapter.open(dir) };
    },
    mtimeStepMs: 20,
    lockExpiryMs: 20,
  });

  describe("node-fs: a folder git can read and write", () => {
    test("open lays out a bare repository that git recognizes", async () => {
      const dir = path.join(await tempDir(), "store.git");
      await NodeFsAdapter.open(dir);
      assert.equal(await readFile(path.join(dir, "HEAD"), "utf8"), "ref: refs/heads/main\n");
      for (const sub of ["objects", "refs", "refs/heads", "refs/tags"]) assert.ok((await stat(path.join(dir, sub))).isDirectory());
      assert.equal((await git(dir, "rev-parse", "--is-bare-repository")).trim(), "true");
      await git(dir, "fsck", "--strict");
      // Opening again changes nothing.
      await NodeFsAdapter.open(dir);
      assert.equal(await readFile(path.join(dir, "HEAD"), "utf8"), "ref: refs/heads/main\n");
    });

    test("a repository made by git init opens, and a work tree is refused", async () => {
      const dir = await tempDir();
      await run("git", ["init", "-q", "--bare", path.join(dir, "bare.git")], { env: gitEnv });
      const adapter = await NodeFsAdapter.open(path.join(dir, "bare.git"));
      assert.equal(await adapter.readRef(refKey("r", "main")), null);
      await run("git", ["init", "-q", path.join(dir, "work")], { env: gitEnv });
      await assert.rejects(NodeFsAdapter.open(path.join(dir, "work")), /work tree/);
    });

    test("objects written by git read back; objects written here pass git fsck --strict", async () => {
      const dir = await tempDir();
      const source = path.join(dir, "source.git");
      await run("git", ["init", "-q", "--bare", source], { env: gitEnv });
      // Objects made by real git: a blob, a tree holding it, a commit of that tree.
      const file = path.join(dir, "memory.md");
      await writeFile(file, "# Memory\n\nThe user prefers short answers.\n");
      const blobId = (await git(source, "hash-object", "-w", file)).trim();
      const treeId = (
        await new Promise((resolve, reject) => {
          const child = spawn("git", ["--git-dir", source, "mktree"], { env: gitEnv });
          let out = "";
          child.stdout.on("data", (chunk) => (out += chunk));
          child.on("error", reject);
          child.on("close", (status) => (status === 0 ? resolve(out) : reject(new Error(`mktree: ${status}`))));
          child.stdin.end(`100644 blob ${blobId}\tmemory.md\n`);
        })
      ).trim();
      const commitId = (
        await run("git", ["--git-dir", source, "commit-tree", treeId, "-m", "remember"], {
          env: { ...gitEnv, GIT_AUTHOR_NAME: "Agent", GIT_AUTHOR_EMAIL: "agent@example.com", GIT_COMMITTER_NAME: "Agent", GIT_COMMITTER_EMAIL: "agent@example.com", GIT_AUTHOR_DATE: "1700000000 +0000", GIT_COMMITTER_DATE: "1700000000 +0000" },
        })
      ).stdout.trim();
      const ids = [blobId, treeId, commitId];
      const keys = ids.map((id) => `objects/${id.slice(0, 2)}/${id.slice(2)}`);
      const bytes = await Promise.all(keys.map((key) => readFile(path.join(source, key))));

      const adapter = await NodeFsAdapter.open(path.join(dir, "store.git"));
      await adapter.putMany(keys.map((key, i) => ({ key, bytes: new Uint8Array(bytes[i]) })));
      const ref = refKey("agent-1", "main");
      assert.equal((await adapter.casRef(ref, null, commitId)).won, true);
      const store = path.join(dir, "store.git");
      assert.equal(await readFile(path.join(store, ref), "utf8"), `${commitId}\n`);
      // `git --namespace` only scopes transport (clone, fetch, push); locally a namespaced
      // branch is named in full.
      assert.equal((await git(store, "rev-parse", ref)).trim(), commitId);
      assert.equal(await git(store, "show", `${ref}:memory.md`), "# Memory\n\nThe user prefers short answers.\n");
      assert.equal((await git(store, "cat-file", "-t", commitId)).trim(), "commit");
      await git(store, "fsck", "--strict", "--no-dangling");

      // Git's objects, read back through the adapter, are byte for byte what git wrote.
      const readBack = await adapter.getMany(keys);
      readBack.forEach((got, i) => assert.deepEqual(got, new Uint8Array(bytes[i])));
      // Loose objects are read-only, as git writes them.
      const written = await stat(path.join(store, keys[0]));
      assert.equal(written.mode & 0o222, 0);
    });

    test("16 writers commit concurrently: git log shows every commit, fsck --strict passes", async () => {
      const store = path.join(await tempDir(), "store.git");
      const ref = refKey("team", "main");
      const writers = 16;
      const each = 3;
      const clients = await Promise.all(Array.from({ length: writers }, () => NodeFsAdapter.open(store)));
      await clients[0].putMany([looseObject("tree", new Uint8Array(0))]);
      await Promise.all(
        clients.map(async (client, writer) => {
          for (let i = 0; i < each; ) {
            const head = await client.readRef(ref);
            const when = 1_700_000_000 + writer * 100 + i;
            const commit = looseObject(
              "commit",
              `tree ${EMPTY_TREE}\n` +
                (head ? `parent ${head.value}\n` : "") +
                `author Writer ${writer} <w${writer}@example.com> ${when} +0000\n` +
                `committer Writer ${writer} <w${writer}@example.com> ${when} +0000\n` +
                `\nwriter ${writer} commit ${i}\n`,
            );
            await client.putMany([commit]);
            if ((await client.casRef(ref, head, commit.id)).won) i++;
          }
        }),
      );
      const subjects = (await git(store, "log", "--format=%s", ref)).trim().split("\n");
      assert.equal(subjects.length, writers * each);
      for (let writer = 0; writer < writers; writer++) {
        for (let i = 0; i < each; i++) assert.ok(subjects.includes(`writer ${writer} commit ${i}`));
      }
      await git(store, "fsck", "--strict", "--no-dangling");
      const leftovers = (await readdir(path.dirname(path.join(store, ref)))).filter((name) => name !== "main");
      assert.deepEqual(leftovers, [], "no lock or temporary files are left");
    });

    test("git update-ref and this adapter interleave without losing an update", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      const ref = refKey("shared", "counter");
      // Counter values must be objects git knows: blob i stands for the number i.
      const total = 2 * 15 + 8 * 4;
      const blobs = Array.from({ length: total + 1 }, (_, i) => looseObject("blob", `count ${i}\n`));
      await adapter.putMany(blobs);
      const ids = blobs.map((b) => b.id);
      const index = new Map(ids.map((id, i) => [id, i]));
      assert.equal((await adapter.casRef(ref, null, ids[0])).won, true);

      // Each git process: read, then `git update-ref <ref> <new> <old>`, retrying when it loses.
      const idsFile = path.join(path.dirname(store), "ids");
      await writeFile(idsFile, `${ids.join("\n")}\n`);
      const script = `
        mapfile -t ids < "$IDS"
        declare -A at
        for i in "\${!ids[@]}"; do at[\${ids[$i]}]=$i; done
        for ((k = 0; k < 15; k++)); do
          while true; do
            cur=$(git --git-dir "$STORE" rev-parse --verify -q "$REF") || continue
            next=\${ids[$(( \${at[$cur]} + 1 ))]}
            git --git-dir "$STORE" update-ref "$REF" "$next" "$cur" 2>/dev/null && break
          done
        done`;
      const gitWriter = () =>
        new Promise((resolve, reject) => {
          const child = spawn("bash", ["-c", script], { env: { ...gitEnv, IDS: idsFile, STORE: store, REF: ref }, stdio: "inherit" });
          child.on("error", reject);
          child.on("close", (status) => (status === 0 ? resolve() : reject(new Error(`git writer exited with ${status}`))));
        });
      const ours = async () => {
        const clients = await Promise.all(Array.from({ length: 8 }, () => NodeFsAdapter.open(store)));
        await Promise.all(
          clients.map(async (client) => {
            for (let done = 0; done < 4; ) {
              const current = await client.readRef(ref);
              const next = ids[index.get(current.value) + 1];
              if ((await client.casRef(ref, current, next)).won) done++;
            }
          }),
        );
      };
      await Promise.all([gitWriter(), gitWriter(), ours()]);
      assert.equal(index.get((await adapter.readRef(ref)).value), total);
      assert.equal((await git(store, "rev-parse", ref)).trim(), ids[total]);
      await git(store, "fsck", "--strict", "--no-dangling");
    });

    test("refs packed by git pack-refs read, update and delete like loose ones", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      const a = looseObject("blob", "a\n");
      const b = looseObject("blob", "b\n");
      await adapter.putMany([a, b]);
      const main = refKey("p", "main");
      const dev = refKey("p", "dev");
      await git(store, "update-ref", main, a.id);
      await git(store, "update-ref", dev, a.id);
      await git(store, "pack-refs", "--all", "--prune");
      assert.match(await readFile(path.join(store, "packed-refs"), "utf8"), new RegExp(`${a.id} ${main}`));
      await assert.rejects(stat(path.join(store, main)));

      assert.deepEqual(await adapter.readRef(main), { value: a.id, version: a.id });
      assert.deepEqual(
        (await adapter.list("refs/")).map((item) => item.key),
        [dev, main],
      );
      assert.equal((await adapter.casRef(main, null, b.id)).won, false);
      assert.equal((await adapter.casRef(main, { value: a.id, version: a.id }, b.id)).won, true);
      assert.equal((await git(store, "rev-parse", main)).trim(), b.id);
      assert.equal((await adapter.casRef(dev, { value: a.id, version: a.id }, null)).won, true);
      assert.equal(await adapter.readRef(dev), null);
      assert.doesNotMatch(await readFile(path.join(store, "packed-refs"), "utf8"), new RegExp(dev));
      assert.equal((await git(store, "for-each-ref", "--format=%(refname)")).trim(), main);
      await git(store, "fsck", "--strict", "--no-dangling");
    });

    test("deleting a ref removes the folders it leaves empty, as git does", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      const nested = refKey("gone", "feature/x");
      assert.equal((await adapter.casRef(nested, null, counter(1))).won, true);
      assert.equal((await adapter.casRef(nested, { value: counter(1), version: counter(1) }, null)).won, true);
      await assert.rejects(stat(path.join(store, "refs/namespaces/gone")));
      assert.ok((await stat(path.join(store, "refs/heads"))).isDirectory());
      // A ref where an empty folder was left by someone else still goes in.
      await mkdir(path.join(store, refKey("dir", "main"), "empty"), { recursive: true });
      await rm(path.join(store, refKey("dir", "main"), "empty"), { recursive: true });
      assert.equal((await adapter.casRef(refKey("dir", "main"), null, counter(2))).won, true);
      // A ref in the way of a folder of refs is a name conflict, reported as a StorageError.
      await assert.rejects(adapter.casRef(refKey("dir", "main/sub"), null, counter(3)), (error) => error.code === "STORAGE" && /conflict/.test(error.message));
    });
  });

  describe("node-fs: lock files", () => {
    const ref = refKey("locked", "main");

    test("a stale lock left by a crashed writer is broken", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store, { staleLockMs: 10_000 });
      await adapter.casRef(ref, null, counter(1));
      const lock = path.join(store, `${ref}.lock`);
      await writeFile(lock, "");
      const old = new Date(Date.now() - 60_000);
      await utimes(lock, old, old);
      const result = await adapter.casRef(ref, { value: counter(1), version: counter(1) }, counter(2));
      assert.equal(result.won, true);
      assert.equal((await git(store, "rev-parse", ref)).trim(), counter(2));
      await assert.rejects(stat(lock));
    });

    test("16 writers finding the same stale lock break it once and lose no update", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      await adapter.casRef(ref, null, counter(0));
      const lock = path.join(store, `${ref}.lock`);
      await writeFile(lock, "");
      const old = new Date(Date.now() - 60_000);
      await utimes(lock, old, old);
      await increment(store, ref, 16, 3);
      assert.equal(parseInt((await adapter.readRef(ref)).value, 16), 48);
      assert.deepEqual(await readdir(path.dirname(path.join(store, ref))), ["main"]);
    });

    test("a fresh lock is waited for, then the update goes through", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      await adapter.casRef(ref, null, counter(1));
      const lock = path.join(store, `${ref}.lock`);
      await writeFile(lock, "");
      setTimeout(() => rm(lock), 150);
      const result = await adapter.casRef(ref, { value: counter(1), version: counter(1) }, counter(2));
      assert.equal(result.won, true);
    });

    test("a lock held past the timeout fails the update and is left alone", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store, { lockTimeoutMs: 150 });
      await adapter.casRef(ref, null, counter(1));
      const lock = path.join(store, `${ref}.lock`);
      await writeFile(lock, "held by git");
      await assert.rejects(
        adapter.casRef(ref, { value: counter(1), version: counter(1) }, counter(2)),
        (error) => error.code === "STORAGE" && /held by another writer/.test(error.message),
      );
      assert.equal(await readFile(lock, "utf8"), "held by git");
      assert.equal((await adapter.readRef(ref)).value, counter(1));
    });

    test("git update-ref waits on our lock like on its own", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      const blob = looseObject("blob", "x\n");
      await adapter.putMany([blob]);
      await adapter.casRef(ref, null, counter(1));
      await writeFile(path.join(store, `${ref}.lock`), "");
      await assert.rejects(git(store, "update-ref", ref, blob.id), /File exists|Unable to create/);
      await rm(path.join(store, `${ref}.lock`));
      await git(store, "update-ref", ref, blob.id);
      assert.deepEqual(await adapter.readRef(ref), { value: blob.id, version: blob.id });
    });

    test("lost and refused updates leave no lock behind", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      await adapter.casRef(ref, null, counter(1));
      assert.equal((await adapter.casRef(ref, null, counter(2))).won, false);
      await assert.rejects(adapter.casRef(ref, null, "nope"));
      await assert.rejects(stat(path.join(store, `${ref}.lock`)));
      assert.deepEqual(await readdir(path.dirname(path.join(store, ref))), ["main"]);
    });

    test("an expired lock file of acquire is taken over", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      await mkdir(path.join(store, "locks"), { recursive: true });
      await writeFile(path.join(store, "locks", "gc"), JSON.stringify({ token: "dead", expiresMs: Date.now() - 1 }));
      const token = await adapter.acquire("gc", 60_000);
      assert.equal(typeof token, "string");
      assert.equal(JSON.parse(await readFile(path.join(store, "locks", "gc"), "utf8")).token, token);
    });

    test("4 processes x 4 writers race on one ref: no update lost", async () => {
      const store = path.join(await tempDir(), "store.git");
      const adapter = await NodeFsAdapter.open(store);
      await adapter.casRef(ref, null, counter(0));
      const config = { dir: store, key: ref, writers: 4, increments: 4 };
      const results = await Promise.all(
        Array.from(
          { length: 4 },
          () =>
            new Promise((resolve, reject) => {
              const child = spawn(process.execPath, [self], {
                env: { ...process.env, SNAPGIT_FS_WRITER: JSON.stringify(config) },
                stdio: ["ignore", "pipe", "inherit"],
              });
              let out = "";
              child.stdout.on("data", (chunk) => (out += chunk));
              child.on("error", reject);
              child.on("close", (status) => (status === 0 ? resolve(JSON.parse(/^RESULT (.*)$/m.exec(out)[1])) : reject(new Error(`writer exited with ${status}`))));
            }),
        ),
      );
      assert.equal(parseInt((await adapter.readRef(ref)).value, 16), 4 * 4 * 4);
      assert.ok(results.every((result) => typeof result.lost === "number"));
    });
  });
}
