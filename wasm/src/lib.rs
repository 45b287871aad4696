//! snapgit-wasm: the WebAssembly face of [`snapgit_core`] for the npm package `snapgit`.
//!
//! Thin by design: conversions between JS values and core's requests and results, JS
//! names, and the one error mapping ([`js::error`]). Every decision stays in core; the
//! package's async driver only carries out the steps an operation asks for.
//!
//! One route each way: a request comes in packed into one buffer (the package's
//! `js/src/pack.ts` checks every field's type and writes it); a result goes out as JSON
//! text, with file contents beside it as one buffer and their end offsets.
//!
//! An [`js::Engine`] holds the object cache of one store; each of its methods reads a
//! request and returns an [`js::Op`] to drive. From JavaScript (the package does this
//! for you):
//!
//! ```text
//! const engine = new Engine(pack((p) => p.optCount(...)));       // limits, packed
//! const op = engine.readFile(pack((p) => p.str(commitId, "ref").str("notes/today.md", "path")));
//! for (;;) {
//!   const step = JSON.parse(op.poll());                     // one string per step
//!   if (step.type === "done") return step.value;  // { id, mode }; with step.ends, op.bytes() holds the files
//!   if (step.type === "get") op.provide(bytes, lens);       // the objects end to end
//!   // put: op.bytes() holds the objects end to end, object i ending at step.ends[i]
//!   // readRef: op.answerRef(value, version); cas: answerWon / answerLost; list:
//!   // answerList(packed); lock: answerLock(token); put, delete, unlock: op.answer();
//!   // http: op.bytes() holds the body, op.answerHttp(status, contentType, body)
//! }
//! ```
//!
//! Build it with `scripts/build-wasm.sh`, which runs `wasm-bindgen --target web`.

pub mod js;
