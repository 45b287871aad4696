// The package as users import it: by name, through its `exports` (ESM, CommonJS, the
// slim entry, adapters), each in a fresh Node process.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

async function node(file, source) {
  const { stdout } = await run(process.execPath, [`--input-type=${file}`, "-e", source], { cwd: root });
  return stdout.trim();
}

const scenario = `
  const store = await Store.open({ adapter: new MemoryAdapter() });
  const author = { name: "A", email: "a@example.com", date: 1700000000 };
  await store.createRepo("r", { author, files: { "m.md": "1\\n" } });
  const out = await store.repo("r").commit({ author, message: "m", files: { "m.md": "2\\n" } });
  let code;
  try { await store.repo("r").readFile("../m.md"); } catch (e) { code = e instanceof SnapgitError && e.code; }
  console.log(out.files[0].kind, await store.repo("r").readText("m.md") === "2\\n", code);
`;

test("ESM: import 'snapgit' and 'snapgit/adapters/memory'", async () => {
  const out = await node(
    "module",
    `import { Store, SnapgitError } from "snapgit";
     import { MemoryAdapter } from "snapgit/adapters/memory";
     ${scenario}`,
  );
  assert.equal(out, "modified true INVALID_INPUT");
});

test("CommonJS: require('snapgit') and require('snapgit/adapters/memory')", async () => {
  const out = await node(
    "commonjs",
    `const { Store, SnapgitError } = require("snapgit");
     const { MemoryAdapter } = require("snapgit/adapters/memory");
     (async () => { ${scenario} })().catch((e) => { console.error(e); process.exit(1); });`,
  );
  assert.equal(out, "modified true INVALID_INPUT");
});

test("slim: nothing loads until the WebAssembly is given", async () => {
  const out = await node(
    "module",
    `import { readFile } from "node:fs/promises";
     import { createRequire } from "node:module";
     import { Store, SnapgitError, init } from "snapgit/slim";
     import { MemoryAdapter } from "snapgit/adapters/memory";
     const codes = [];
     try { await Store.open({ adapter: new MemoryAdapter() }); } catch (e) { codes.push(e.code); }
     const path = createRequire(import.meta.url).resolve("snapgit/snapgit.wasm");
     const module = await WebAssembly.compile(await readFile(path));
     await Store.open({ adapter: new MemoryAdapter(), wasm: module });
     await init(); // loaded once: later calls need no source
     ${scenario}
     console.log(codes.join());`,
  );
  assert.equal(out, "modified true INVALID_INPUT\nMISUSE");
});
