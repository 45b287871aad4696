// Run by `npm pack` and `npm publish` before they collect the files: the license texts
// are copied from the repository's root (package.json's `files` names them), and a
// package without its build is refused rather than packed empty. Prints nothing on
// stdout, which `npm pack --json` shares with this script.
import { access, copyFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

for (const file of ["dist/index.js", "dist/node.cjs", "pkg/snapgit_wasm_bg.wasm", "pkg/snapgit_wasm.cjs"]) {
  try {
    await access(path.join(root, file));
  } catch {
    console.error(`prepack: ${file} is missing; build the package first (bash ../scripts/pack.sh builds and packs it)`);
    process.exit(1);
  }
}
for (const license of ["LICENSE-MIT", "LICENSE-APACHE"]) {
  await copyFile(path.join(root, "..", license), path.join(root, license));
}
