/** A `.wasm` file imported as a compiled module (Cloudflare Workers, Vercel Edge). */
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

declare module "*.wasm?module" {
  const module: WebAssembly.Module;
  export default module;
}
