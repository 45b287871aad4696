// The CommonJS face of the package, made from the ESM build: every dist/**/*.js and the
// wasm-bindgen glue get a .cjs sibling (one file each, relative imports pointing at .cjs
// siblings, so classes stay one per module), and every .d.ts a .d.cts sibling for
// TypeScript's `require` resolution.
//
//   node scripts/build-cjs.mjs        (after `tsc`; `npm run build` runs both)
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

async function files(dir, suffix) {
  const out = [];
  for (const entry of await readdir(join(root, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) out.push(join(entry.parentPath ?? entry.path, entry.name));
  }
  return out;
}

const toCjs = (path) => path.replace(/\.js$/, ".cjs");
// The entries of runtimes that only load ESM get no CommonJS twin.
const esmOnly = new Set(["browser.js", "deno.js", "workerd.js", "edge-light.js"].map((f) => join(root, "dist", f)));
const sources = [...(await files("dist", ".js")).filter((f) => !esmOnly.has(f)), join(root, "pkg/snapgit_wasm.js")];

await build({
  entryPoints: sources.map((path) => ({ in: path, out: relative(root, path).replace(/\.js$/, "") })),
  outdir: root,
  outExtension: { ".js": ".cjs" },
  allowOverwrite: false,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node18",
  packages: "external",
  logLevel: "warning",
  // `import.meta.url` of a module becomes the URL of its .cjs file.
  define: { "import.meta.url": "__snapgit_module_url" },
  banner: { js: 'const __snapgit_module_url = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [
    {
      name: "one-file-per-module",
      setup(b) {
        // Every relative import stays an import, of the .cjs sibling.
        b.onResolve({ filter: /^\.\.?\// }, (args) =>
          args.kind === "entry-point" ? undefined : { path: toCjs(args.path), external: true },
        );
      },
    },
  ],
});

for (const path of await files("dist", ".d.ts")) {
  const text = await readFile(path, "utf8");
  const cts = text.replace(/((?:from\s+|import\()["'])(\.\.?\/[^"']+)\.js(["'])/g, "$1$2.cjs$3");
  await writeFile(path.replace(/\.d\.ts$/, ".d.cts"), cts);
}
