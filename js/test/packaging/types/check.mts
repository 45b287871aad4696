// Type-checked against the installed package (ESM resolution): every import resolves to
// real declarations, and misuse is an error.
import { type CommitResult, type ErrorCode, SnapgitError, Store, type StorageAdapter } from "snapgit";
import { MemoryAdapter } from "snapgit/adapters/memory";
import { NodeFsAdapter } from "snapgit/adapters/node-fs";
import { R2Adapter, type R2BucketLike } from "snapgit/adapters/r2";
import { S3Adapter } from "snapgit/adapters/s3";
import { init, type WasmSource } from "snapgit/slim";

const adapter: StorageAdapter = new MemoryAdapter();
const store: Store = await Store.open({ adapter });
const author = { name: "Agent", email: "agent@example.com" };
const out: CommitResult = await store.repo("r").commit({ author, message: "m", files: { "a.md": "a\n", "b.md": null } });
const added: number = out.added;
const text: string = await store.repo("r").readText("a.md");
try {
  await store.repo("r").readFile("../x");
} catch (error) {
  if (error instanceof SnapgitError) {
    const code: ErrorCode = error.code;
    console.log(code, error.value);
  }
}
declare const bucket: R2BucketLike;
const r2: StorageAdapter = new R2Adapter(bucket, { prefix: "agents" });
const s3: StorageAdapter = new S3Adapter({
  endpoint: "http://127.0.0.1:9000",
  bucket: "b",
  credentials: { accessKeyId: "a", secretAccessKey: "s" },
});
const fs: Promise<StorageAdapter> = NodeFsAdapter.open("/tmp/store");
const source: WasmSource = new Uint8Array(8);
await init(source);

// @ts-expect-error: a message is a string
await store.repo("r").commit({ author, message: 1 });
// @ts-expect-error: there is no such method
await store.repo("r").push();
// @ts-expect-error: not an error code
const wrong: ErrorCode = "OOPS";

export { added, text, r2, s3, fs, wrong };
