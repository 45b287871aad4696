// Work-tree checkpoints from Node, with git as the oracle: a snapshot is the tree `git
// add -A` writes, a diff is `git diff --numstat`, a rollback leaves the folder as it was
// at the checkpoint and its undo point brings the edits back.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { Store } from "../dist/node.js";
import { diffWorktree, rollback, snapshot } from "../dist/worktree.js";
import { author, openRepo, rejectsWith } from "./helpers.mjs";

const dirs = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** git with its repository beside the folder. */
const git = (base, ...args) =>
  execFileSync("git", ["--git-dir", join(base, "git"), "--work-tree", join(base, "folder"), ...args], {
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" },
  });

/** Every file of a folder: kind and content. */
function contents(dir, prefix = "") {
  const out = {};
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(dir, path);
    if (entry.isSymbolicLink()) out[path] = `link ${readlinkSync(full)}`;
    else if (entry.isDirectory()) Object.assign(out, contents(dir, path));
    else out[path] = `${lstatSync(full).mode & 0o111 ? "exec" : "file"} ${readFileSync(full, "utf8")}`;
  }
  return out;
}

const sorted = (text) => text.trim().split("\n").sort();

/** A new folder (removed after the tests) holding `files`, path to content. */
async function folderWith(files) {
  const base = await mkdtemp(join(tmpdir(), "snapgit-wt-"));
  dirs.push(base);
  const folder = join(base, "folder");
  mkdirSync(folder, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(folder, path, ".."), { recursive: true });
    writeFileSync(join(folder, path), text);
  }
  return folder;
}

test("snapshots, a diff and a rollback of a folder agree with git", async () => {
  const base = await mkdtemp(join(tmpdir(), "snapgit-wt-"));
  dirs.push(base);
  const folder = join(base, "folder");
  mkdirSync(join(folder, "notes/deep"), { recursive: true });
  writeFileSync(join(folder, "notes/a.md"), "a\nb\n");
  writeFileSync(join(folder, "notes/deep/b.md"), "b\n");
  writeFileSync(join(folder, "run.sh"), "#!/bin/sh\n");
  chmodSync(join(folder, "run.sh"), 0o755);
  symlinkSync("run.sh", join(folder, "link"));
  git(base, "init", "-q");
  const { repo } = await openRepo({});
  const statCache = join(base, "stat");

  const first = await snapshot(repo, folder, { author, message: "checkpoint", statCache });
  git(base, "add", "-A");
  assert.equal((await repo.readCommit(first.commit)).tree, git(base, "write-tree").trim());
  git(base, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x");
  const checkpoint = contents(folder);
  assert.equal((await snapshot(repo, folder, { author, message: "again", statCache })).created, false);

  writeFileSync(join(folder, "notes/a.md"), "a\nB\nc\n");
  rmSync(join(folder, "notes/deep/b.md"));
  writeFileSync(join(folder, "new.md"), "n\n");
  chmodSync(join(folder, "run.sh"), 0o644);
  const diff = await diffWorktree(repo, folder, { from: first.commit, statCache });
  git(base, "add", "-A");
  const numstat = diff.files.map((f) => `${f.lines.added}\t${f.lines.removed}\t${f.path}`).join("\n");
  assert.deepEqual(sorted(numstat), sorted(git(base, "diff", "--cached", "--numstat", "--no-renames", "HEAD")));
  const edited = contents(folder);

  const back = await rollback(repo, folder, { to: first.commit, author, statCache });
  assert.deepEqual(contents(folder), checkpoint);
  assert.deepEqual(back.deleted, ["new.md"]);
  await rollback(repo, folder, { to: back.undo, author, statCache });
  assert.deepEqual(contents(folder), edited);
});

test("a rollback to a hostile commit is refused and writes nothing", async () => {
  const base = await mkdtemp(join(tmpdir(), "snapgit-wt-"));
  dirs.push(base);
  const folder = join(base, "folder");
  mkdirSync(folder);
  writeFileSync(join(folder, "a.md"), "a\n");
  const { repo } = await openRepo({ README: "r\n", readme: "r\n" });
  const hostile = await repo.head();
  const before = contents(folder);
  await rejectsWith(rollback(repo, folder, { to: hostile, author, statCache: false }), "CONFLICT");
  assert.deepEqual(contents(folder), before);
});

test("the stat cache reads only files whose stat changed, and a damaged one costs only speed", async () => {
  const base = await mkdtemp(join(tmpdir(), "snapgit-wt-"));
  dirs.push(base);
  const folder = join(base, "folder");
  mkdirSync(join(folder, "notes"), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(folder, `notes/${i}.md`), `${i}\n`);
  const { repo } = await openRepo({});
  const statCache = join(base, "stat");
  // Stats set by hand, so nothing depends on the clock: every file last modified a minute
  // ago, then one "modified" an hour from now.
  const now = Date.now() / 1000;
  for (let i = 0; i < 20; i++) utimesSync(join(folder, `notes/${i}.md`), now - 60, now - 60);
  assert.equal((await snapshot(repo, folder, { author, message: "1", statCache })).read, 20);
  assert.equal((await snapshot(repo, folder, { author, message: "2", statCache })).read, 0);
  utimesSync(join(folder, "notes/3.md"), now + 3600, now + 3600);
  assert.equal((await snapshot(repo, folder, { author, message: "3", statCache })).read, 1);
  // Its stat is the cached one now, but it was modified after the cache was written
  // (racily clean, as git's index has it): read again, every time.
  for (const message of ["3b", "3c"]) {
    const racy = await snapshot(repo, folder, { author, message, statCache });
    assert.deepEqual([racy.read, racy.files.length], [1, 0]);
  }
  utimesSync(join(folder, "notes/3.md"), now - 60, now - 60);
  writeFileSync(join(folder, "notes/3.md"), "three\n");
  const edited = await snapshot(repo, folder, { author, message: "4", statCache });
  assert.deepEqual([edited.read, edited.files.map((f) => f.path)], [1, ["notes/3.md"]]);
  // A damaged cache: every file read, the same tree.
  const bytes = readFileSync(statCache);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(statCache, bytes);
  writeFileSync(join(folder, "notes/4.md"), "four\n");
  const after = await snapshot(repo, folder, { author, message: "5", statCache });
  assert.deepEqual([after.read, after.files.map((f) => f.path)], [20, ["notes/4.md"]]);
});

test("excludes leave out what git ignores, and a rollback never touches them", async () => {
  const base = await mkdtemp(join(tmpdir(), "snapgit-wt-"));
  dirs.push(base);
  const folder = join(base, "folder");
  mkdirSync(join(folder, "node_modules/pkg"), { recursive: true });
  mkdirSync(join(folder, "logs"), { recursive: true });
  writeFileSync(join(folder, "node_modules/pkg/index.js"), "x\n");
  writeFileSync(join(folder, ".env"), "SECRET=1\n");
  writeFileSync(join(folder, "logs/a.log"), "log\n");
  writeFileSync(join(folder, "app.py"), "v1\n");
  writeFileSync(join(folder, ".gitignore"), "node_modules/\n.env\n*.log\n");
  git(base, "init", "-q");
  git(base, "add", "-A");
  const tree = git(base, "write-tree").trim();
  const { repo } = await openRepo({});
  const statCache = false;
  const first = await snapshot(repo, folder, { author, message: "1", statCache, checkpointExcludes: true, exclude: ["*.log"] });
  assert.equal((await repo.readCommit(first.commit)).tree, tree);
  // The same from a .snapgitignore.
  writeFileSync(join(folder, ".snapgitignore"), "node_modules/\n.env\n*.log\n");
  git(base, "add", "-A");
  const second = await snapshot(repo, folder, { author, message: "2", statCache });
  assert.equal((await repo.readCommit(second.commit)).tree, git(base, "write-tree").trim());
  writeFileSync(join(folder, "app.py"), "v2\n");
  await rollback(repo, folder, { to: second.commit, author, statCache });
  assert.equal(readFileSync(join(folder, "app.py"), "utf8"), "v1\n");
  assert.equal(readFileSync(join(folder, "node_modules/pkg/index.js"), "utf8"), "x\n");
  await rejectsWith(snapshot(repo, folder, { author, message: "3", statCache, exclude: [""] }), "INVALID_INPUT");
});

test("every .gitignore of the folder counts when asked, as git reads them", async () => {
  const base = await mkdtemp(join(tmpdir(), "snapgit-wt-"));
  dirs.push(base);
  const folder = join(base, "folder");
  const files = {
    ".gitignore": "*.log\n!keep.log\n# a comment\n\n/top.txt\nbuild/\n",
    "sub/.gitignore": "dist/\n/local.txt\n!important.log\nnested/*.md\n",
    "sub/deeper/.gitignore": "*.tmp\n!/deeper.log\n",
    "we[ird]*/.gitignore": "x/\n",
    "a.log": "1", "keep.log": "1", "top.txt": "1", "sub/top.txt": "1", "sub/local.txt": "1",
    "sub/deeper/local.txt": "1", "sub/important.log": "1", "sub/deeper/important.log": "1",
    "sub/deeper/deeper.log": "1", "sub/deeper/a.tmp": "1", "sub/dist/x": "1", "other/dist/y": "1",
    "sub/nested/a.md": "1", "sub/nested/n/b.md": "1", "we[ird]*/x/z": "1", "we[ird]*/y": "1",
    "pkg/build/o": "1", "pkg/a/b.txt": "1",
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(folder, path, ".."), { recursive: true });
    writeFileSync(join(folder, path), text);
  }
  git(base, "init", "-q");
  git(base, "add", "-A");
  const tree = git(base, "write-tree").trim();
  const { repo } = await openRepo({});
  const statCache = false;
  const first = await snapshot(repo, folder, { author, message: "1", statCache, gitignore: true });
  assert.equal((await repo.readCommit(first.commit)).tree, tree);
  // A rollback leaves what a .gitignore leaves out alone.
  writeFileSync(join(folder, "sub/dist/x"), "changed");
  writeFileSync(join(folder, "sub/deeper/local.txt"), "2");
  await rollback(repo, folder, { to: first.commit, author, statCache, gitignore: true });
  assert.equal(readFileSync(join(folder, "sub/dist/x"), "utf8"), "changed");
  assert.equal(readFileSync(join(folder, "sub/deeper/local.txt"), "utf8"), "1");
  // Without it, the .gitignore files are only files.
  const all = await snapshot(repo, folder, { author, message: "3", statCache });
  assert.notEqual((await repo.readCommit(all.commit)).tree, tree);
});

test("a diff takes what excludes leave out as a snapshot keeps it", async () => {
  const folder = await folderWith({
    "a.txt": "1\n", "logs/x.log": "the same text\n", "notes/b.md": "b\n", "notes/c.md": "c\n",
  });
  const { repo } = await openRepo({});
  const statCache = false;
  const first = await snapshot(repo, folder, { author, message: "1", statCache });
  // A tracked edit, and a new file with an excluded file's content: no rename from it.
  writeFileSync(join(folder, "a.txt"), "2\n");
  writeFileSync(join(folder, "copy.txt"), "the same text\n");
  const exclude = ["logs/", "notes/b.md"];
  const diff = await diffWorktree(repo, folder, { from: first.commit, statCache, exclude });
  const changes = diff.files.map((f) => `${f.kind} ${f.path}`).sort();
  assert.deepEqual(changes, ["added copy.txt", "modified a.txt"]);
  // The same as the snapshot with those excludes commits.
  const next = await snapshot(repo, folder, { author, message: "2", statCache, exclude });
  const committed = await repo.diff({ from: first.commit, to: next.commit });
  assert.deepEqual(committed.files.map((f) => `${f.kind} ${f.path}`).sort(), changes);
});

test("what a scan leaves out is listed with why, files over maxFileBytes too, as the snapgit command says it", async () => {
  const folder = await folderWith({
    "a.txt": "a\n", "data/mid.bin": "m".repeat(3000), ".env": "SECRET=1\n", ".snapgitignore": "# secrets\n.env\n",
  });
  execFileSync("mkfifo", [join(folder, "pipe")]);
  const { repo } = await openRepo({});
  const statCache = false;
  const seen = [];
  const first = await snapshot(repo, folder, { author, message: "1", statCache, onScan: (p) => seen.push(p) });
  // Progress: the folders listed, then each file read (no stat cache: all three).
  assert.deepEqual(seen.filter((p) => p.read > 0), [1, 2, 3].map((read) => ({ found: 3, read, toRead: 3 })));
  assert.equal(first.read, 3);
  assert.deepEqual(first.skipped, [
    { path: ".env", reason: 'excluded by ".snapgitignore: .env"' },
    { path: "pipe", reason: "not a regular file, folder or symlink" },
  ]);
  // A smaller cap: mid.bin is left out, and the branch keeps it as it was, even edited.
  writeFileSync(join(folder, "data/mid.bin"), "n".repeat(3000));
  writeFileSync(join(folder, "a.txt"), "b\n");
  const capped = { author, message: "2", statCache, maxFileBytes: 2048 };
  const second = await snapshot(repo, folder, capped);
  assert.deepEqual(second.skipped[1], { path: "data/mid.bin", reason: "larger than 2048 bytes (3000 bytes)" });
  assert.equal(new TextDecoder().decode((await repo.readFile("data/mid.bin", { at: second.commit })).data), "m".repeat(3000));
  // A diff with the same cap shows no change there, and says what it left out.
  const diff = await diffWorktree(repo, folder, { from: first.commit, statCache, maxFileBytes: 2048 });
  assert.deepEqual(diff.files.map((f) => `${f.kind} ${f.path}`), ["modified a.txt"]);
  assert.deepEqual(diff.skipped.map((s) => s.path), [".env", "data/mid.bin", "pipe"]);
  // A rollback of another path leaves it alone, and lists it.
  const back = await rollback(repo, folder, { to: first.commit, path: "a.txt", author, statCache, maxFileBytes: 2048 });
  assert.equal(readFileSync(join(folder, "a.txt"), "utf8"), "a\n");
  assert.equal(readFileSync(join(folder, "data/mid.bin"), "utf8"), "n".repeat(3000));
  assert.deepEqual(back.skipped.map((s) => s.path), [".env", "data/mid.bin", "pipe"]);
  await rejectsWith(snapshot(repo, folder, { ...capped, maxFileBytes: -1 }), "INVALID_INPUT");
  await rejectsWith(snapshot(repo, folder, { ...capped, exclude: "*.log" }), "INVALID_INPUT");
  await rejectsWith(snapshot(repo, folder, { ...capped, exclude: [7] }), "INVALID_INPUT");
});

test("a rollback reports each file done, and a cancelled one stops between two files and says which", async () => {
  const names = ["a.txt", "b.txt", "c.txt", "d.txt"];
  const folder = await folderWith(Object.fromEntries(names.map((name) => [name, `${name} 1\n`])));
  const { repo } = await openRepo({});
  const statCache = false;
  const first = await snapshot(repo, folder, { author, message: "1", statCache });
  for (const name of names) writeFileSync(join(folder, name), `${name} 2\n`);
  writeFileSync(join(folder, "new.txt"), "new\n");
  // Cancelled after the second file: those two are as the commit has them, the rest as they were.
  const controller = new AbortController();
  const seen = [];
  const stopped = await rollback(repo, folder, {
    to: first.commit,
    author,
    statCache,
    signal: controller.signal,
    onProgress: (p) => {
      seen.push(p);
      if (p.done === 2) controller.abort();
    },
  });
  assert.equal(stopped.complete, false);
  assert.deepEqual(seen.map((p) => [p.done, p.planned]), [[1, 5], [2, 5]]);
  const done = [...stopped.deleted, ...stopped.written];
  assert.deepEqual(done, seen.map((p) => p.path));
  for (const name of names) {
    const expected = done.includes(name) ? `${name} 1\n` : `${name} 2\n`;
    assert.equal(readFileSync(join(folder, name), "utf8"), expected, name);
  }
  assert.equal(done.includes("new.txt"), !readdirSync(folder).includes("new.txt"));
  // Run again to the end; an abort before anything is planned rejects, nothing written.
  const whole = await rollback(repo, folder, { to: first.commit, author, statCache });
  assert.equal(whole.complete, true);
  assert.deepEqual(contents(folder), Object.fromEntries(names.map((n) => [n, `file ${n} 1\n`])));
  writeFileSync(join(folder, "a.txt"), "edited\n");
  await assert.rejects(rollback(repo, folder, { to: first.commit, author, statCache, signal: AbortSignal.abort() }), { name: "AbortError" });
  assert.equal(readFileSync(join(folder, "a.txt"), "utf8"), "edited\n");
});

test("a .snapgitignore in a subfolder applies below it, as the snapgit command reads it", async () => {
  const folder = await folderWith({
    "a.txt": "a\n", "x.tmp": "top\n", "sub/.snapgitignore": "# scratch\n*.tmp\n!keep.tmp\n", "sub/x.tmp": "x\n",
    "sub/keep.tmp": "keep\n", "sub/deeper/y.tmp": "y\n", "sub/deeper/b.md": "b\n",
  });
  const { repo } = await openRepo({});
  const out = await snapshot(repo, folder, { author, message: "1", statCache: false });
  const listed = (await repo.listTree({ ref: out.commit })).map((f) => f.path);
  assert.deepEqual(listed.sort(), ["a.txt", "sub/.snapgitignore", "sub/deeper/b.md", "sub/keep.tmp", "x.tmp"]);
  assert.deepEqual(out.skipped, [
    { path: "sub/deeper/y.tmp", reason: 'excluded by "sub/.snapgitignore: *.tmp"' },
    { path: "sub/x.tmp", reason: 'excluded by "sub/.snapgitignore: *.tmp"' },
  ]);
});

test("a large scan gives the event loop turns, and an abort stops it while it lists", async () => {
  // 60 folders of 100 files: more entries than the scan lists between two turns.
  const files = {};
  for (let i = 0; i < 6000; i++) files[`d${Math.floor(i / 100)}/f${i}.txt`] = `${i}\n`;
  const folder = await folderWith(files);
  const { repo } = await openRepo({});
  const head = await repo.head();
  const controller = new AbortController();
  let found = 0;
  let turnAt = -1;
  // Once the first folder is listed, the next turn of the event loop aborts.
  const onScan = (p) => {
    if (found === 0) {
      setImmediate(() => {
        turnAt = found;
        controller.abort();
      });
    }
    found = p.found;
  };
  await assert.rejects(snapshot(repo, folder, { author, message: "cancelled", statCache: false, signal: controller.signal, onScan }), {
    name: "AbortError",
  });
  // That turn came while the folder was being listed, and the listing stopped there.
  assert.ok(turnAt > 0 && turnAt < 6000, `the event loop's turn came after ${turnAt} files`);
  assert.equal(found, turnAt);
  assert.equal(await repo.head(), head);
  // Without a signal the same scan goes through.
  const whole = await snapshot(repo, folder, { author, message: "all", statCache: false });
  assert.equal(whole.read, 6000);
});

test("folders the stat cache knows unchanged are compared whole, and one whose tree storage lacks costs only speed", async () => {
  const folder = await folderWith({ "keep/a.md": "a\n", "keep/deep/b.md": "b\n", "work/c.md": "c\n", "top.md": "top\n" });
  const base = join(folder, "..");
  const past = Date.now() / 1000 - 60;
  const age = (path, seconds = past) => utimesSync(join(folder, path), seconds, seconds);
  for (const path of ["keep/a.md", "keep/deep/b.md", "work/c.md", "top.md"]) age(path);
  const { adapter, repo } = await openRepo({});
  const statCache = join(base, "stat");
  const first = await snapshot(repo, folder, { author, message: "1", statCache });
  assert.equal(first.read, 4);
  const keepTree = (await repo.listTree({ ref: first.commit, recursive: false })).find((e) => e.path === "keep").id;
  const treeKey = `objects/${keepTree.slice(0, 2)}/${keepTree.slice(2)}`;
  // A repo of its own each time (no object cached), whose `diffFolder` calls are seen.
  const sent = [];
  const fresh = async () => {
    const repo = (await Store.open({ adapter })).repo("r");
    const diffFolder = repo.diffFolder.bind(repo);
    repo.diffFolder = (options) => (sent.push(options.files.map((f) => `${f.mode} ${f.path}`)), diffFolder(options));
    return repo;
  };
  // One file changed: the folders around it go whole, by their trees.
  writeFileSync(join(folder, "top.md"), "top 2\n");
  age("top.md", past + 1);
  const diff = await diffWorktree(await fresh(), folder, { from: first.commit, statCache });
  assert.deepEqual(diff.files.map((f) => `${f.kind} ${f.path}`), ["modified top.md"]);
  const second = await snapshot(await fresh(), folder, { author, message: "2", statCache });
  assert.deepEqual([second.read, second.files.map((f) => f.path)], [1, ["top.md"]]);
  assert.deepEqual(sent, [["tree keep", "regular top.md", "tree work"], ["tree keep", "regular top.md", "tree work"]]);
  // `keep`'s tree gone from storage: while the branch has the same tree, it is not needed.
  await adapter.delete([treeKey]);
  assert.deepEqual((await diffWorktree(await fresh(), folder, { statCache })).files, []);
  // Another writer changes `keep` on the branch: the folder's `keep` (its tree still
  // missing) differs from the branch's, so every file is compared instead.
  await repo.commit({ author, message: "elsewhere", changes: [{ type: "put", path: "keep/a.md", content: "theirs\n" }] });
  const back = await diffWorktree(await fresh(), folder, { statCache });
  assert.deepEqual(back.files.map((f) => `${f.kind} ${f.path}`), ["modified keep/a.md"]);
  const third = await snapshot(await fresh(), folder, { author, message: "3", statCache });
  assert.deepEqual(third.files.map((f) => f.path), ["keep/a.md"]);
  git(base, "init", "-q");
  git(base, "add", "-A");
  assert.equal((await repo.readCommit(third.commit)).tree, git(base, "write-tree").trim());
});

test("names that JS sorts otherwise than git (beyond U+FFFF) snapshot and diff as git has them", async () => {
  // UTF-16 puts "\u{1F600}" (a surrogate pair) before "\uE000"; git's byte order puts it after.
  const files = { "a/\uE000.md": "private use\n", "a/\u{1F600}.md": "smile\n", "a/z.md": "z\n", "b/c.md": "c\n" };
  const folder = await folderWith(files);
  const base = join(folder, "..");
  const past = Date.now() / 1000 - 60;
  for (const path of Object.keys(files)) utimesSync(join(folder, path), past, past);
  const { repo } = await openRepo({});
  const statCache = join(base, "stat");
  const first = await snapshot(repo, folder, { author, message: "1", statCache });
  git(base, "init", "-q");
  git(base, "add", "-A");
  assert.equal((await repo.readCommit(first.commit)).tree, git(base, "write-tree").trim());
  // Warm cache: one file changed, the rest known by their stats.
  writeFileSync(join(folder, "a/\u{1F600}.md"), "grin\n");
  utimesSync(join(folder, "a/\u{1F600}.md"), past + 1, past + 1);
  const diff = await diffWorktree(repo, folder, { from: first.commit, statCache });
  assert.deepEqual(diff.files.map((f) => `${f.kind} ${f.path}`), ["modified a/\u{1F600}.md"]);
  const second = await snapshot(repo, folder, { author, message: "2", statCache });
  assert.deepEqual([second.read, second.files.map((f) => f.path)], [1, ["a/\u{1F600}.md"]]);
  git(base, "add", "-A");
  assert.equal((await repo.readCommit(second.commit)).tree, git(base, "write-tree").trim());
});
