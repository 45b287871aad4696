/** The Deno entry: the WebAssembly is fetched from the package's own folder. */

import { setDefaultWasm } from "./wasm.js";

setDefaultWasm(() => fetch(new URL("../pkg/snapgit_wasm_bg.wasm", import.meta.url)));

export * from "./index.js";
