/**
 * The browser (and bundler) entry: the WebAssembly is fetched from next to this module;
 * bundlers recognize the `new URL(..., import.meta.url)` form and emit the file.
 */

import { setDefaultWasm } from "./wasm.js";

setDefaultWasm(() => new URL("../pkg/snapgit_wasm_bg.wasm", import.meta.url));

export * from "./index.js";
