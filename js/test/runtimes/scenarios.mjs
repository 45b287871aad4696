// The scenarios every runtime runs, unchanged: commit, read, log, diff, restore,
// concurrent commits from several clients that all survive, and bad input answered with a
// stable error `code`. Plain ECMAScript, no imports, so the same file runs in Node, Deno,
// workerd and a browser page; each runtime passes in the package it imported and a way to
// make a fresh storage adapter.
//
//   const results = await runScenarios({ snapgit, adapter: (name) => new MemoryAdapter() });
//   // [{ name: "commit", ok: true }, { name: "read", ok: false, error: "..." }, ...]

const author = { name: "Agent", email: "agent@example.com", date: new Date("2024-05-01T12:00:00Z") };

/** `author`, `n` seconds later. */
function at(n) {
  return { ...author, date: author.date.getTime() / 1000 + n };
}

class AssertionError extends Error {}

function ok(value, message) {
  if (!value) throw new AssertionError(message);
}

function equal(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError(`${what}: expected ${e}, got ${a}`);
}

const text = (bytes) => new TextDecoder().decode(bytes);

/** The error `promise` rejects with; fails if it resolves. */
async function rejection(promise, what) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new AssertionError(`${what}: expected a rejection`);
}

/** A store on a fresh adapter, with repo `r` holding `files`. */
async function open(ctx, name, files) {
  const { Store } = ctx.snapgit;
  const adapter = await ctx.adapter(name);
  const store = await Store.open({ adapter });
  await store.createRepo("r", { author, files, message: "first" });
  return { adapter, store, repo: store.repo("r") };
}

const scenarios = {
  async commit(ctx) {
    const { repo } = await open(ctx, "commit", { "memory.md": "one\ntwo\n", "old.md": "bye\n" });
    const before = await repo.head();
    const out = await repo.commit({
      author: at(1),
      message: "turn 2",
      files: { "memory.md": "one\n2\nthree\n", "old.md": null, "notes/a.md": "a\n", "bin/x": new Uint8Array([0, 1, 2]) },
    });
    equal(out.parent, before, "parent");
    equal(out.created, true, "created");
    equal(
      out.files.map((f) => [f.path, f.kind, f.lines]),
      [
        ["bin/x", "added", null],
        ["memory.md", "modified", { added: 2, removed: 1 }],
        ["notes/a.md", "added", { added: 1, removed: 0 }],
        ["old.md", "deleted", { added: 0, removed: 1 }],
      ],
      "changed files",
    );
    equal([out.added, out.removed], [3, 2], "line totals");
    ok(/^[0-9a-f]{40}$/.test(out.commit), `commit id ${out.commit}`);
    equal(await repo.head(), out.commit, "head after commit");
    const info = await repo.readCommit(out.commit);
    equal([info.parents, info.message, info.author.email], [[before], "turn 2\n", author.email], "commit metadata");
  },

  async read(ctx) {
    const { repo } = await open(ctx, "read", { "memory.md": "v1\n", "notes/a.md": "a\n" });
    const first = await repo.head();
    await repo.commit({ author: at(1), message: "m", files: { "memory.md": "v2\n", "data.bin": new Uint8Array([255, 0, 7]) } });
    equal(await repo.readText("memory.md"), "v2\n", "readText at head");
    equal(await repo.readText("memory.md", { ref: first }), "v1\n", "readText at the first commit");
    const file = await repo.readFile("data.bin");
    ok(file.data instanceof Uint8Array, "readFile returns bytes");
    equal([Array.from(file.data), file.mode], [[255, 0, 7], "regular"], "binary content");
    const listed = await repo.listTree();
    equal(listed.map((e) => e.path), ["data.bin", "memory.md", "notes/a.md"], "listTree");
    ok(listed.every((e) => /^[0-9a-f]{40}$/.test(e.id)), "listTree ids");
    const all = await repo.readFiles({ path: "notes" });
    equal(all.map((f) => [f.path, text(f.data)]), [["notes/a.md", "a\n"]], "readFiles below a folder");
  },

  async log(ctx) {
    const { repo } = await open(ctx, "log", { "memory.md": "0\n" });
    const ids = [await repo.head()];
    for (let i = 1; i <= 4; i++) {
      const files = i % 2 ? { "memory.md": `${i}\n` } : { [`notes/${i}.md`]: `${i}\n` };
      ids.push((await repo.commit({ author: at(i), message: `turn ${i}`, files })).commit);
    }
    const whole = await repo.log();
    equal(whole.commits.map((c) => c.id), [...ids].reverse(), "log, newest first");
    equal(whole.next, null, "one page");
    const filtered = await repo.log({ path: "memory.md" });
    equal(filtered.commits.map((c) => c.message), ["turn 3\n", "turn 1\n", "first\n"], "log -- memory.md");
    const page1 = await repo.log({ limit: 2 });
    const page2 = await repo.log({ limit: 2, ref: page1.start, cursor: page1.next });
    const page3 = await repo.log({ limit: 2, ref: page1.start, cursor: page2.next });
    equal(
      [...page1.commits, ...page2.commits, ...page3.commits].map((c) => c.id),
      [...ids].reverse(),
      "paged log",
    );
    equal(page3.next, null, "last page");
  },

  async diff(ctx) {
    const { repo } = await open(ctx, "diff", { "memory.md": "a\nb\nc\n", "gone.md": "x\n" });
    const from = await repo.head();
    const to = (
      await repo.commit({
        author: at(1),
        message: "edit",
        files: { "memory.md": "a\nB\nc\nd\n", "gone.md": null, "new.md": "n\n" },
      })
    ).commit;
    const d = await repo.diff({ from, to, lineStats: true, patch: true });
    equal([d.from, d.to], [from, to], "sides");
    equal(
      d.files.map((f) => [f.path, f.kind, f.lines]),
      [
        ["gone.md", "deleted", { added: 0, removed: 1 }],
        ["memory.md", "modified", { added: 2, removed: 1 }],
        ["new.md", "added", { added: 1, removed: 0 }],
      ],
      "diff files",
    );
    equal([d.added, d.removed], [3, 2], "diff totals");
    ok(d.patch.includes("diff --git a/memory.md b/memory.md\n"), "patch header");
    ok(d.patch.includes("\n-b\n+B\n c\n+d\n"), `patch hunk in:\n${d.patch}`);
    const againstParent = await repo.diff();
    equal(againstParent.files.length, 3, "diff of the head against its parent");
  },

  async restore(ctx) {
    const { repo } = await open(ctx, "restore", { "memory.md": "good\n", "notes/a.md": "a\n" });
    const good = await repo.head();
    await repo.commit({ author: at(1), message: "oops", files: { "memory.md": "bad\n", "notes/a.md": null, "junk.md": "j\n" } });
    const one = await repo.restore({ from: good, path: "memory.md", author: at(2) });
    equal(one.files.map((f) => [f.path, f.kind]), [["memory.md", "modified"]], "restore one path");
    equal(await repo.readText("memory.md"), "good\n", "restored file");
    equal((await repo.listTree()).map((e) => e.path), ["junk.md", "memory.md"], "other paths untouched");
    const all = await repo.restore({ from: good, author: at(3), message: "back to good" });
    equal(all.files.map((f) => [f.path, f.kind]), [["junk.md", "deleted"], ["notes/a.md", "added"]], "restore the tree");
    equal((await repo.readCommit(all.commit)).tree, (await repo.readCommit(good)).tree, "same tree as the restored commit");
    equal((await repo.log()).commits.length, 4, "history kept");
  },

  async "concurrent commits"(ctx) {
    const { Store } = ctx.snapgit;
    const { adapter, repo } = await open(ctx, "concurrent", { "shared.md": "s\n" });
    const clients = 4;
    const turns = 3;
    const stores = await Promise.all(
      Array.from({ length: clients }, () => Store.open({ adapter })),
    );
    const results = await Promise.all(
      stores.map(async (store, c) => {
        const mine = store.repo("r");
        const out = [];
        for (let i = 0; i < turns; i++) {
          const files = { [`agent-${c}.md`]: `${i}\n` };
          out.push(await mine.commit({ author: at(c * 10 + i), message: `c${c} t${i}`, files, maxAttempts: 100 }));
        }
        return out;
      }),
    );
    const acknowledged = results.flat();
    equal(acknowledged.length, clients * turns, "acknowledged commits");
    const files = await repo.readFiles();
    equal(
      files.map((f) => [f.path, text(f.data)]),
      [...Array.from({ length: clients }, (_, c) => [`agent-${c}.md`, `${turns - 1}\n`]), ["shared.md", "s\n"]],
      "every client's last write survives",
    );
    const log = await repo.log({ limit: 100 });
    equal(log.commits.length, clients * turns + 1, "one line of history");
    const ids = new Set(log.commits.map((c) => c.id));
    for (const r of acknowledged) ok(ids.has(r.commit), `acknowledged commit ${r.commit} is in the history`);
    return { attempts: acknowledged.reduce((n, r) => n + r.attempts, 0) };
  },

  async "bad input"(ctx) {
    const { SnapgitError } = ctx.snapgit;
    const { repo } = await open(ctx, "bad-input", { "memory.md": "m\n" });
    const head = await repo.head();
    const bad = await rejection(repo.readFile("../memory.md"), "a path escaping the repo");
    ok(bad instanceof SnapgitError, `a SnapgitError, got ${bad?.name}: ${bad?.message}`);
    ok(bad instanceof Error, "an Error");
    equal([bad.code, bad.value], ["INVALID_INPUT", "../memory.md"], "code and value");
    const write = await rejection(
      repo.commit({ author, message: "m", files: { "a/.git/config": "x" } }),
      "a commit writing into .git",
    );
    equal(write.code, "INVALID_INPUT", "code of a bad commit path");
    const type = await rejection(repo.commit({ author, message: 42, files: { "a.md": "a" } }), "a message of the wrong type");
    equal(type.code, "INVALID_INPUT", "code of a wrong argument type");
    const missing = await rejection(repo.readText("nope.md"), "a missing file");
    equal(missing.code, "NOT_FOUND", "code of a missing file");
    equal(await repo.head(), head, "nothing was written");
  },
};

/** Every scenario's name, in the order they run. */
export const scenarioNames = Object.keys(scenarios);

/**
 * Run the scenarios (all, or those named in `only`) one after another and report each:
 * `{ name, ok, error?, detail? }`. Never throws.
 *
 * - `snapgit`: the package's module namespace (`Store`, `SnapgitError`, ...).
 * - `adapter(name)`: a fresh, empty storage adapter (or a promise of one) for scenario `name`.
 */
export async function runScenarios({ snapgit, adapter, only }) {
  const results = [];
  for (const name of only ?? scenarioNames) {
    const scenario = scenarios[name];
    if (!scenario) {
      results.push({ name, ok: false, error: `no scenario named ${name}` });
      continue;
    }
    try {
      const detail = await scenario({ snapgit, adapter });
      results.push(detail === undefined ? { name, ok: true } : { name, ok: true, detail });
    } catch (error) {
      const message = error instanceof AssertionError ? error.message : `${error?.name}: ${error?.message}`;
      const code = error?.code === undefined ? "" : ` (code ${error.code})`;
      results.push({ name, ok: false, error: `${message}${code}\n${error?.stack ?? ""}` });
    }
  }
  return results;
}
