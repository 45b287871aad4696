# workerd config of the runtime test: the scenarios Worker and an in-memory R2 bucket
# service for its `BUCKET` binding. The test copies this file next to the bundle it
# builds (worker.js, snapgit_wasm_bg.wasm) and the bucket service (local-r2.js, from
# examples/worker), then serves it on a free loopback port:
#
#   workerd serve config.capnp --socket-addr http=127.0.0.1:0 --control-fd 3
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "scenarios", worker = .scenarios),
    (name = "r2", worker = .localR2),
    # Every Worker's default outbound, redefined so that its `fetch()` reaches loopback
    # too: the Worker pushes to a `snapgit serve` the test starts there.
    (name = "internet", network = (allow = ["public", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "scenarios") ],
);

const scenarios :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "snapgit_wasm_bg.wasm", wasm = embed "snapgit_wasm_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
  bindings = [ (name = "BUCKET", r2Bucket = "r2") ],
);

const localR2 :Workerd.Worker = (
  modules = [ (name = "local-r2.js", esModule = embed "local-r2.js") ],
  compatibilityDate = "2025-09-01",
);
