# The example under plain workerd, without wrangler or a Cloudflare account:
#
#   node build.mjs && npx workerd serve workerd.capnp     # then http://127.0.0.1:8787
#
# build.mjs bundles worker.js into dist/ as wrangler would. workerd has no R2 storage of
# its own: the `MEMORY` binding is served by local-r2.js, an in-memory bucket that lives
# as long as the process.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "agent-memory", worker = .agentMemory),
    (name = "local-r2", worker = .localR2),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "agent-memory") ],
);

const agentMemory :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "dist/worker.js"),
    (name = "snapgit_wasm_bg.wasm", wasm = embed "dist/snapgit_wasm_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
  bindings = [ (name = "MEMORY", r2Bucket = "local-r2") ],
);

const localR2 :Workerd.Worker = (
  modules = [ (name = "local-r2.js", esModule = embed "local-r2.js") ],
  compatibilityDate = "2025-09-01",
);
