// Type-checked with bundler resolution and one runtime condition at a time (workerd,
// browser, deno, edge-light): each entry declares the same API.
import { Store, type DiffResult, type LogPage, init } from "snapgit";
import { IndexedDbAdapter } from "snapgit/adapters/indexeddb";

export async function check(): Promise<[DiffResult, LogPage]> {
  await init();
  const store = await Store.open({ adapter: await IndexedDbAdapter.open("memory") });
  const repo = store.repo("agent");
  return [await repo.diff({ lineStats: true, patch: true }), await repo.log({ path: "memory.md", limit: 10 })];
}
