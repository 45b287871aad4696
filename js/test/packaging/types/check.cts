// Type-checked against the installed package (CommonJS resolution: the .d.cts declarations).
import snapgit = require("snapgit");
import memory = require("snapgit/adapters/memory");

async function main(): Promise<string> {
  const store: snapgit.Store = await snapgit.Store.open({ adapter: new memory.MemoryAdapter() });
  const out: snapgit.CommitResult = await store
    .repo("r")
    .commit({ author: { name: "A", email: "a@example.com" }, message: "m", files: { "a.md": "a" } });
  // @ts-expect-error: a path is a string
  await store.repo("r").readFile(42);
  return out.commit;
}

export = main;
