/**
 * snapgit: git-compatible snapshots of agent memory, from any JS runtime.
 *
 * ```ts
 * import { Store } from "snapgit";
 *
 * const store = await Store.open({ adapter });           // keep it: its cache makes commits cheap
 * await store.createRepo("agent-1", { author, files: { "memory.md": "# Memory\n" } });
 * const repo = store.repo("agent-1");
 * const out = await repo.commit({ author, message: "turn 2", files: { "memory.md": "# Memory\nlearned\n" } });
 * const text = await repo.readText("memory.md");
 * const { commits } = await repo.log({ path: "memory.md", limit: 10 });
 * ```
 *
 * Every entry of the package (Node, Deno, browsers, Cloudflare Workers, Vercel Edge)
 * exports this same API; they differ only in how the WebAssembly is loaded. The `slim`
 * entry loads nothing by itself: pass the module to `init(wasm)` or `Store.open({ wasm })`.
 *
 * @module
 */

export { Store, Repo } from "./api.js";
export type {
  OpenOptions,
  CommitOptions,
  RestoreOptions,
  LogOptions,
  DiffOptions,
  DiffFolderOptions,
  CheckoutOptions,
  PruneOptions,
  GcOptions,
  CompactOptions,
  CapOptions,
  FootprintOptions,
  RemoteOptions,
  PushOptions,
  FetchOptions,
  ImportOptions,
  RunOptions,
} from "./api.js";
export { SnapgitError } from "./errors.js";
export type { ErrorCode, ErrorDetails } from "./errors.js";
export { init } from "./wasm.js";
export type { WasmSource } from "./wasm.js";
export { StorageError } from "./adapter.js";
export type { StorageAdapter, ByteRange, RefState, CasResult, Listed } from "./adapter.js";
export type * from "./types.js";
export type { TransferProgress } from "./driver.js";
