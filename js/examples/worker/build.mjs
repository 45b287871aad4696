// Bundles the Worker the way wrangler does, for running it under plain `workerd`
// (`workerd.capnp`): esbuild resolves packages with the `workerd`, `worker` and `browser`
// conditions, and every imported `.wasm` stays a separate module (wrangler's default
// `CompiledWasm` rule), since Workers refuse to compile WebAssembly from bytes.
//
//   node build.mjs        ->  dist/worker.js, dist/snapgit_wasm_bg.wasm
//
// `wrangler dev` and `wrangler deploy` do all this themselves from `wrangler.toml`.
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Bundle `entry` into `outdir`/worker.js, with each `.wasm` it imports copied next to it.
 * `conditions` are wrangler's; Vercel Edge resolves `edge-light` first instead.
 */
export async function bundle({
  entry = path.join(here, "worker.js"),
  outdir = path.join(here, "dist"),
  conditions = ["workerd", "worker", "browser"],
} = {}) {
  await mkdir(outdir, { recursive: true });
  const wasm = {
    name: "compiled-wasm",
    setup(b) {
      b.onResolve({ filter: /\.wasm(\?module)?$/ }, async (args) => {
        const file = path.resolve(args.resolveDir, args.path.replace(/\?module$/, ""));
        const name = path.basename(file);
        await copyFile(file, path.join(outdir, name));
        return { path: `./${name}`, external: true };
      });
    },
  };
  return build({
    entryPoints: [entry],
    outfile: path.join(outdir, "worker.js"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions,
    mainFields: ["module", "main"],
    metafile: true,
    logLevel: "warning",
    plugins: [wasm],
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await bundle();
}
