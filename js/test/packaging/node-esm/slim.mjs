// The slim entry in a fresh process: nothing loads until the WebAssembly is given, here
// compiled from the file the package exports as `snapgit/snapgit.wasm`.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

import { SnapgitError, Store, init } from "snapgit/slim";
import { MemoryAdapter } from "snapgit/adapters/memory";

let before;
try {
  await Store.open({ adapter: new MemoryAdapter() });
} catch (error) {
  before = error instanceof SnapgitError ? error.code : String(error);
}
const wasm = fileURLToPath(import.meta.resolve("snapgit/snapgit.wasm"));
await init(await WebAssembly.compile(await readFile(wasm)));
const store = await Store.open({ adapter: new MemoryAdapter() });
const author = { name: "A", email: "a@example.com", date: 1700000000 };
const created = await store.createRepo("r", { author, files: { "m.md": "1\n" } });
console.log(JSON.stringify({ entry: import.meta.resolve("snapgit/slim"), before, commit: created.commit }));
