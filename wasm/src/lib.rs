//! snapgit-wasm: the WebAssembly face of [`snapgit_core`] for the npm package `snapgit`.
//!
//! Thin by design: conversions between JS values and core's requests and results, JS
//! names, and the one error mapping ([`js::error`]). Every decision stays in core; the
//! package's async driver only carries out the steps an operation asks for.
//!
//! An [`js::Engine`] holds the object cache of one store; each of its methods validates
//! a request and returns an [`js::Op`] to drive. From JavaScript (the package does this
//! for you):
//!
//! ```text
//! const engine = new Engine({});
//! const op = engine.readFile({ commit: commitId, path: "notes/today.md" });
//! for (;;) {
//!   const step = JSON.parse(op.poll());                     // one string per step
//!   if (step.type === "done") return "value" in step ? step.value : op.value(); // { id, mode, data }
//!   if (step.type === "get") op.provide(await adapter.getMany(step.keys));
//!   // put: op.putBytes() holds the objects end to end, object i ending at step.ends[i]
//!   // ... put, readRef, cas, list, delete, lock, unlock: op.answer(result)
//! }
//! ```
//!
//! Build it with `scripts/build-wasm.sh`, which runs `wasm-bindgen --target web`.

pub mod js;
