// Git is the oracle: what the package writes through the local-folder adapter is a
// repository `git` reads and verifies, with the same history, files and diffs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { NodeFsAdapter } from "../dist/adapters/node-fs.js";
import { Store, at } from "./helpers.mjs";

const dirs = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function git(dir, ...args) {
  return execFileSync("git", ["--git-dir", dir, ...args], { encoding: "utf8" });
}

const ref = (branch) => `refs/namespaces/agent/refs/heads/${branch}`;

test("commits, restores and branches pass git fsck --strict and read back the same in git", async () => {
  const dir = await mkdtemp(join(tmpdir(), "snapgit-js-"));
  dirs.push(dir);
  const store = await Store.open({ adapter: await NodeFsAdapter.open(dir) });
  await store.createRepo("agent", { author: at(0), files: { "memory.md": "# Memory\n", "notes/a.md": "a\n" } });
  const repo = store.repo("agent");
  const ids = [await repo.head()];
  for (let i = 1; i <= 4; i++) {
    const files = { "memory.md": `# Memory\nturn ${i}\n`, [`notes/t${i}.md`]: `${i}\n` };
    if (i === 3) files["notes/a.md"] = null;
    ids.push((await repo.commit({ author: at(i), message: `turn ${i}`, files })).commit);
  }
  await repo.restore({ from: ids[1], path: "notes", author: at(5) });
  await repo.createBranch("side", { from: ids[2] });

  execFileSync("git", ["--git-dir", dir, "fsck", "--strict", "--no-dangling"], { stdio: "pipe" });
  const log = (await repo.log({ limit: 100 })).commits.map((c) => c.id);
  assert.deepEqual(git(dir, "log", "--format=%H", ref("main")).trim().split("\n"), log);
  const pathLog = (await repo.log({ path: "notes/a.md", limit: 100 })).commits.map((c) => c.id);
  assert.deepEqual(git(dir, "log", "--format=%H", ref("main"), "--", "notes/a.md").trim().split("\n"), pathLog);
  assert.equal(git(dir, "show", `${ref("main")}:memory.md`), await repo.readText("memory.md"));
  assert.equal(git(dir, "rev-parse", ref("side")).trim(), ids[2]);

  const diff = await repo.diff({ from: ids[0], to: ids[4], lineStats: true, patch: true });
  const numstat = git(dir, "diff", "--numstat", ids[0], ids[4])
    .trim()
    .split("\n")
    .map((line) => line.split("\t"));
  assert.deepEqual(
    diff.files.map((f) => [String(f.lines.added), String(f.lines.removed), f.path]),
    numstat,
  );
  assert.equal(diff.patch, git(dir, "diff", "--full-index", ids[0], ids[4]).replace(/^index ([0-9a-f]{7})[0-9a-f]*\.\.([0-9a-f]{7})[0-9a-f]*/gm, "index $1..$2"));
});

test("gc keeps everything git reaches and refuses a store it cannot account for", async () => {
  const dir = await mkdtemp(join(tmpdir(), "snapgit-js-"));
  dirs.push(dir);
  const store = await Store.open({ adapter: await NodeFsAdapter.open(dir) });
  await store.createRepo("agent", { author: at(0), files: { "memory.md": "turn 0\n" } });
  const repo = store.repo("agent");
  for (let i = 1; i <= 3; i++) {
    await repo.commit({ author: at(i), message: `turn ${i}`, files: { "memory.md": `turn ${i}\n` } });
  }
  await repo.prune({ keepLast: 1 });
  const user = ["-c", "user.name=Git User", "-c", "user.email=git@example.com", "-c", "core.logAllRefUpdates=always"];
  const main = ref("main");
  const tree = git(dir, "rev-parse", `${main}^{tree}`).trim();
  const commitOn = (message) => git(dir, ...user, "commit-tree", tree, "-p", main, "-m", message).trim();
  // A detached HEAD, a commit only a reflog reaches, an annotated tag, a ref to a blob.
  git(dir, "update-ref", "--no-deref", "HEAD", commitOn("detached"));
  git(dir, ...user, "update-ref", "-m", "moved", "refs/heads/scratch", commitOn("reflog only"));
  git(dir, ...user, "update-ref", "-m", "back", "refs/heads/scratch", git(dir, "rev-parse", main).trim());
  git(dir, ...user, "tag", "-a", "-m", "v1", "v1", commitOn("tagged"));
  const blob = execFileSync("git", ["--git-dir", dir, "hash-object", "-w", "--stdin"], { input: "blob\n", encoding: "utf8" });
  git(dir, "update-ref", "refs/blobs/one", blob.trim());
  const reachable = () => git(dir, "rev-list", "--objects", "--all", "--reflog").split("\n").sort();
  const before = reachable();

  const collected = await store.gc({ graceMs: 0 });
  assert.ok(collected.deleted > 0, "the pruned history goes");
  assert.deepEqual(reachable(), before);
  execFileSync("git", ["--git-dir", dir, "fsck", "--strict"], { stdio: "pipe" });

  // After git packs the store, the package reads through the packs, and gc keeps them.
  git(dir, "repack", "-d", "-q");
  assert.equal(await repo.readText("memory.md"), "turn 3\n");
  await store.gc({ graceMs: 0 });
  assert.deepEqual(reachable(), before);
  execFileSync("git", ["--git-dir", dir, "fsck", "--strict"], { stdio: "pipe" });

  // A promisor pack (a partial clone) may lack objects by design: gc refuses.
  const pack = readdirSync(join(dir, "objects", "pack")).find((name) => name.endsWith(".pack"));
  writeFileSync(join(dir, "objects", "pack", pack.replace(/\.pack$/, ".promisor")), "");
  await assert.rejects(store.gc({ graceMs: 0 }), (error) => {
    assert.equal(error.code, "UNSUPPORTED");
    assert.match(error.message, /promisor/);
    return true;
  });
  await assert.rejects(store.footprint(), { code: "UNSUPPORTED" });
  assert.deepEqual(reachable(), before);
});

test("compact packs the store into packs git verifies, merges them, and reads stay the same", async () => {
  const dir = await mkdtemp(join(tmpdir(), "snapgit-js-"));
  dirs.push(dir);
  const store = await Store.open({ adapter: await NodeFsAdapter.open(dir) });
  await store.createRepo("agent", { author: at(0), files: { "memory.md": "# Memory\n" } });
  const repo = store.repo("agent");
  let memory = "# Memory\n";
  const turn = async (i) => {
    memory += `\n## Turn ${i}\n\nWhat the agent learnt on turn ${i}, written out at some length.\n`;
    await repo.commit({ author: at(i), message: `turn ${i}`, files: { "memory.md": memory, [`turns/${i}.md`]: `${i}\n` } });
  };
  for (let i = 1; i <= 20; i++) await turn(i);
  const objects = () => git(dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split("\n").sort();
  const before = objects();
  const progress = [];
  const first = await store.compact({ graceMs: 0, onProgress: (p) => progress.push(p.phase) });
  assert.ok(first.pack.startsWith("objects/pack/pack-"), first.pack);
  assert.equal(first.packsAfter, 1);
  assert.ok(first.deltas > 0, "memory.md's versions are deltas of each other");
  assert.equal(first.looseDeleted, first.loosePacked);
  assert.ok(progress.includes("pack") && progress.includes("sweep"), progress.join());
  assert.deepEqual(objects(), before);
  const packs = () => readdirSync(join(dir, "objects", "pack")).filter((n) => n.endsWith(".pack"));
  for (const name of packs()) git(dir, "verify-pack", join(dir, "objects", "pack", name.replace(/\.pack$/, ".idx")));
  execFileSync("git", ["--git-dir", dir, "fsck", "--strict"], { stdio: "pipe" });
  assert.equal(await repo.readText("memory.md"), memory);

  // More turns, compacted: a small new pack beside the first, then a factor that makes
  // every pack merge into one.
  for (let i = 21; i <= 24; i++) await turn(i);
  const beside = await store.compact({ graceMs: 0 });
  assert.equal(beside.packsMerged, 0);
  assert.equal(packs().length, 2);
  await turn(25);
  const second = await store.compact({ graceMs: 0, factor: 1000 });
  assert.equal(second.packsMerged, 2);
  assert.equal(second.packsDeleted, 2);
  assert.deepEqual(packs().length, 1);
  execFileSync("git", ["--git-dir", dir, "fsck", "--strict"], { stdio: "pipe" });
  assert.equal(git(dir, "show", `${ref("main")}:memory.md`), memory);
  assert.equal((await repo.log({ limit: 100 })).commits.length, 26);

  // Within the grace period nothing is deleted.
  await turn(26);
  const young = await store.compact();
  assert.equal(young.looseDeleted, 0);
  assert.ok(young.waiting > 0);
  await assert.rejects(store.compact({ factor: 1 }), { code: "INVALID_INPUT" });

  // Retention, then the space back: what the prune dropped leaves the packs.
  await store.compact({ graceMs: 0 });
  await repo.prune({ keepLast: 3 });
  const kept = await store.compact({ graceMs: 0 });
  assert.equal(kept.dropped, 0, "by default nothing is dropped");
  const dropped = await store.compact({ graceMs: 0, dropUnreachable: true });
  assert.ok(dropped.dropped > 0, JSON.stringify(dropped));
  const swept = await store.compact({ graceMs: 0, dropUnreachable: true });
  assert.ok(swept.packsDeleted > 0, JSON.stringify(swept));
  execFileSync("git", ["--git-dir", dir, "fsck", "--strict"], { stdio: "pipe" });
  const unreachable = execFileSync("git", ["--git-dir", dir, "fsck", "--unreachable", "--no-reflogs", "--no-progress"], {
    encoding: "utf8",
  });
  assert.ok(!unreachable.includes("unreachable"), unreachable);
  assert.equal(await repo.readText("memory.md"), memory);
  assert.equal((await repo.log({ limit: 100 })).commits.length, 3);

  // A store-wide cap: one the store fits prunes nothing; a cap of 0 keeps `keepLast`.
  const fits = await store.cap({ maxBytes: 1e12 });
  assert.equal(fits.underCap, true);
  assert.deepEqual(fits.pruned, []);
  const floor = await store.cap({ maxBytes: 0, keepLast: 2 });
  assert.equal(floor.underCap, false);
  assert.deepEqual(floor.pruned.map((p) => [p.repo, p.branch, p.kept]), [["agent", "main", 2]]);
  assert.ok(floor.estimatedBytes < floor.reachableBytes, JSON.stringify(floor));
  assert.equal((await repo.log({ limit: 100 })).commits.length, 2);
  await assert.rejects(store.cap({ maxBytes: 1, keepLast: 0 }), { code: "INVALID_INPUT" });
  await assert.rejects(store.cap({ maxBytes: -1 }), { code: "INVALID_INPUT" });
  execFileSync("git", ["--git-dir", dir, "fsck", "--strict"], { stdio: "pipe" });
});
