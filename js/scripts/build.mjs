// The package's JavaScript, from src/ and the wasm-bindgen glue in pkg/ (made by
// `bash ../scripts/build-wasm.sh`):
//
//   node scripts/build.mjs            (`npm run build`)
//
// 1. `tsc` checks the sources and emits one .js per module into build/ (not shipped)
//    and the declarations into dist/.
// 2. ESM: esbuild bundles each entry of package.json's `exports` into dist/, with the
//    modules entries share split into chunks (so a class stays one per process). Loading
//    `snapgit` reads a few files instead of one per module, which is most of what an
//    import costs in Node.
// 3. CommonJS: every module and the glue get a .cjs file in dist/ (pkg/ for the glue),
//    relative requires pointing at .cjs siblings so classes stay one per module; every
//    .d.ts gets a .d.cts sibling for TypeScript's `require` resolution.
import { spawnSync } from "node:child_process";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const tscOut = join(root, "build");
const dist = join(root, "dist");

// The entries of `exports` (every runtime's, the slim one, the adapters), and `index`,
// which package.json's top-level `types` names.
const ENTRIES = ["node", "deno", "browser", "workerd", "edge-light", "slim", "index", "worktree"].concat(
  ["memory", "node-fs", "s3", "r2", "indexeddb"].map((a) => `adapters/${a}`),
);
// The entries of runtimes that only load ESM get no CommonJS twin.
const ESM_ONLY = new Set(["browser", "deno", "workerd", "edge-light"]);

async function files(dir, suffix) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) out.push(join(entry.parentPath ?? entry.path, entry.name));
  }
  return out;
}

await rm(dist, { recursive: true, force: true });
await rm(tscOut, { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const checked = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: root, stdio: "inherit" });
if (checked.status !== 0) process.exit(checked.status ?? 1);

await build({
  entryPoints: ENTRIES.map((name) => ({ in: join(tscOut, `${name}.js`), out: name })),
  outdir: dist,
  bundle: true,
  splitting: true,
  chunkNames: "chunk-[hash]",
  format: "esm",
  platform: "neutral",
  target: "es2022",
  // Dependencies and Node's modules stay imports; so does the .wasm that the workerd and
  // edge-light entries import (`../pkg/...` from dist/ as from src/).
  packages: "external",
  external: ["node:*", "*.wasm", "*.wasm?module"],
  logLevel: "warning",
});

const toCjs = (path) => path.replace(/\.js$/, ".cjs");
const modules = (await files(tscOut, ".js")).filter((f) => !ESM_ONLY.has(relative(tscOut, f).replace(/\.js$/, "")));
const glue = join(root, "pkg", "snapgit_wasm.js");
await build({
  entryPoints: [
    ...modules.map((path) => ({ in: path, out: join("dist", relative(tscOut, path)).replace(/\.js$/, "") })),
    { in: glue, out: "pkg/snapgit_wasm" },
  ],
  outdir: root,
  outExtension: { ".js": ".cjs" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  packages: "external",
  logLevel: "warning",
  // `import.meta.url` of a module becomes the URL of its .cjs file.
  define: { "import.meta.url": "__snapgit_module_url" },
  banner: { js: 'const __snapgit_module_url = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [
    {
      name: "one-file-per-module",
      setup(b) {
        // Every relative import stays an import, of the .cjs sibling: build/x.js and
        // dist/x.cjs sit at the same depth below the package, so `../pkg/...` holds too.
        b.onResolve({ filter: /^\.\.?\// }, (args) =>
          args.kind === "entry-point" ? undefined : { path: toCjs(args.path), external: true },
        );
      },
    },
  ],
});

for (const path of await files(dist, ".d.ts")) {
  const text = await readFile(path, "utf8");
  const cts = text.replace(/((?:from\s+|import\()["'])(\.\.?\/[^"']+)\.js(["'])/g, "$1$2.cjs$3");
  await writeFile(path.replace(/\.d\.ts$/, ".d.cts"), cts);
}
