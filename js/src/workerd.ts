/**
 * The Cloudflare Workers entry: Workers refuse to compile WebAssembly from bytes, so the
 * `.wasm` is imported as a module (wrangler's default rule for `*.wasm`).
 */

import wasm from "../pkg/snapgit_wasm_bg.wasm";
import { setDefaultWasm } from "./wasm.js";

setDefaultWasm(() => wasm);

export * from "./index.js";
