/** The Vercel Edge entry: the `.wasm` is imported as a module with the `?module` suffix. */

import wasm from "../pkg/snapgit_wasm_bg.wasm?module";
import { setDefaultWasm } from "./wasm.js";

setDefaultWasm(() => wasm);

export * from "./index.js";
