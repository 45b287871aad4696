// Work-tree checkpoints through the Node face (`snapgit/worktree`) against git with its
// index, on one folder, in one run:
//
//   npm run build && node bench/worktree.mjs [--files 10000] [--runs 7]
//
// The folder has 100 files per folder, two levels deep, about 200 bytes each (the
// layout of the `snapgit` command's bench-worktree). git keeps its repository outside
// the folder; snapgit keeps a folder store (the node-fs adapter) and a stat cache of
// its own. Each row is timed in turns, git then snapgit then the other way round, and
// prints the medians of `--runs` and their ratio:
//
// - snapshot with nothing changed: `git add -A && git commit` vs `snapshot`;
// - snapshot after 1 and after 100 changed files (the same edits for both);
// - diff against the folder after 100 changed files: `git diff --numstat HEAD` vs
//   `diffWorktree`;
// - rollback of the whole tree after 100 changes: `git add -A; git commit; git checkout
//   BASE -- .` vs `rollback`.
//
// git runs as a process (a few ms of each of its times is starting it); snapgit runs in
// this process, its WebAssembly loaded once. Timings are printed, never asserted.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { Store } from "../dist/node.js";
import { NodeFsAdapter } from "../dist/adapters/node-fs.js";
import { diffWorktree, rollback, snapshot } from "../dist/worktree.js";
import { option } from "./args.mjs";

const FILES = option("--files", 10_000);
const RUNS = option("--runs", 7);
const EDITS = Math.min(100, FILES);

const root = mkdtempSync(join(tmpdir(), "snapgit-worktree-bench-"));
const folder = join(root, "folder");
const file = (i) => join(folder, `d${Math.floor(i / 1000)}`, `e${Math.floor(i / 100) % 10}`, `f${i}.txt`);
const content = (i, version) => `file ${i}, version ${version}\n${"agent memory line ".repeat(10)}\n`;
for (let i = 0; i < FILES; i++) {
  mkdirSync(join(file(i), ".."), { recursive: true });
  writeFileSync(file(i), content(i, 0));
}

const env = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
const git = (...args) =>
  execFileSync("git", ["--git-dir", join(root, "git"), "--work-tree", folder, "-c", "user.name=B", "-c", "user.email=b@e", ...args], {
    env,
    stdio: ["ignore", "pipe", "ignore"],
  });
const gitTry = (...args) => {
  try {
    git(...args);
  } catch {
    // `git commit` with nothing to commit exits 1.
  }
};
git("init", "-q");
git("add", "-A");
git("commit", "-qm", "base");
const gitBase = git("rev-parse", "HEAD").toString().trim();

const store = await Store.open({ adapter: new NodeFsAdapter(join(root, "store")) });
const author = { name: "B", email: "b@e" };
await store.createRepo("bench", { author });
const repo = store.repo("bench");
const options = { statCache: join(root, "stat") };
const base = (await snapshot(repo, folder, { ...options, author, message: "base" })).commit;

let version = 1;
/** Change `count` files spread over the folder, the same way for both tools. */
const edit = (count) => {
  const step = Math.max(1, Math.floor(FILES / count));
  for (let k = 0; k < count; k++) {
    const i = (k * step + 1) % FILES;
    writeFileSync(file(i), content(i, version));
  }
  version++;
};
// Past the second a cache was written in, so neither tool re-hashes a racily clean file.
const settle = () => new Promise((resolve) => setTimeout(resolve, 1100));

const median = (times) => [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
async function row(name, prepare, gitSide, snapgitSide) {
  const times = { git: [], snapgit: [] };
  for (let run = 0; run < RUNS; run++) {
    await prepare?.();
    const sides = [
      ["git", gitSide],
      ["snapgit", snapgitSide],
    ];
    for (const [who, side] of run % 2 ? sides.reverse() : sides) {
      const start = performance.now();
      await side();
      times[who].push(performance.now() - start);
    }
  }
  const [g, s] = [median(times.git), median(times.snapgit)];
  console.log(`${name.padEnd(34)} git ${g.toFixed(1).padStart(8)} ms   snapgit ${s.toFixed(1).padStart(8)} ms   ${(s / g).toFixed(2)}x`);
}

console.log(`${FILES} files, median of ${RUNS} runs, node ${process.version}`);
await settle();
const commitGit = () => {
  git("add", "-A");
  gitTry("commit", "-qm", "snapshot");
};
const commitSnapgit = () => snapshot(repo, folder, { ...options, author, message: "snapshot" });
await row("snapshot, nothing changed", null, commitGit, commitSnapgit);
for (const count of [1, EDITS]) {
  await row(`snapshot after ${count} changed`, async () => (edit(count), await settle()), commitGit, commitSnapgit);
}
await row(
  `diff after ${EDITS} changed`,
  async () => {
    edit(EDITS);
    await settle();
  },
  () => git("diff", "--numstat", "HEAD"),
  () => diffWorktree(repo, folder, options),
);
await row(
  `rollback after ${EDITS} changed`,
  async () => (edit(EDITS), await settle()),
  () => {
    commitGit();
    git("checkout", gitBase, "--", ".");
  },
  () => rollback(repo, folder, { ...options, to: base, author }),
);
rmSync(root, { recursive: true, force: true });
