/**
 * The slim entry: nothing is loaded by itself. Pass the WebAssembly (a
 * `WebAssembly.Module`, its bytes, a URL or a `Response`) to `init(wasm)` or to
 * `Store.open({ wasm })`; the `.wasm` ships as `snapgit/snapgit.wasm`.
 */

export * from "./index.js";
