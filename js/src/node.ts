/** The Node.js entry: the WebAssembly is read from the package's own folder. */

import { setDefaultWasm } from "./wasm.js";

setDefaultWasm(async () => {
  const { readFile } = await import("node:fs/promises");
  return readFile(new URL("../pkg/snapgit_wasm_bg.wasm", import.meta.url));
});

export * from "./index.js";
