/**
 * Loading the WebAssembly. Only this differs between runtimes: each entry of the package
 * (node, deno, browser, workerd, edge-light) registers where its `.wasm` comes from, and
 * the slim entry leaves it to the caller.
 */

import * as glue from "../pkg/snapgit_wasm.js";
import { SnapgitError } from "./errors.js";

// The glue's async init is its default export. In the CommonJS build, Node's interop
// makes the default export the whole namespace, with the function one level down.
const initGlue: typeof glue.default =
  typeof glue.default === "function" ? glue.default : (glue.default as unknown as typeof glue).default;

/**
 * Where the WebAssembly comes from: a compiled `WebAssembly.Module` (what Cloudflare
 * Workers import), its bytes, a URL to fetch, or a `Response` (or a promise of one).
 */
export type WasmSource =
  | WebAssembly.Module
  | BufferSource
  | URL
  | string
  | Response
  | Promise<Response | BufferSource | WebAssembly.Module>;

let defaultSource: (() => WasmSource | Promise<WasmSource>) | undefined;
let loading: Promise<void> | undefined;

/** Set where an entry finds its `.wasm` when the caller does not say. */
export function setDefaultWasm(source: () => WasmSource | Promise<WasmSource>): void {
  defaultSource = source;
}

function isBytes(source: unknown): source is BufferSource {
  return source instanceof ArrayBuffer || ArrayBuffer.isView(source);
}

/**
 * Instantiate from `source`. A module or bytes are compiled (asynchronously) and
 * instantiated here, without touching `fetch` or `Response`: in Node, the first use of
 * either loads the whole fetch implementation, which costs more than the WebAssembly.
 * URLs and responses go to the glue's streaming path.
 */
async function load(source: WasmSource): Promise<void> {
  const settled = await source;
  if (settled instanceof WebAssembly.Module || isBytes(settled)) {
    const module = settled instanceof WebAssembly.Module ? settled : await WebAssembly.compile(settled);
    glue.initSync({ module });
  } else {
    await initGlue({ module_or_path: settled });
  }
}

/**
 * Load the WebAssembly once; later calls return the same promise (a failed load can be
 * retried). Pass `source` to override the entry's default; the slim entry requires it.
 */
export function init(source?: WasmSource): Promise<void> {
  if (loading) return loading;
  const started = (async () => {
    const from = source ?? (defaultSource ? await defaultSource() : undefined);
    if (from === undefined) {
      throw new SnapgitError(
        "MISUSE",
        "no WebAssembly to load: pass it to init(wasm) or Store.open({ wasm }) (a WebAssembly.Module, bytes, a URL or a Response)",
      );
    }
    await load(from);
  })();
  loading = started;
  started.catch(() => {
    if (loading === started) loading = undefined;
  });
  return started;
}
