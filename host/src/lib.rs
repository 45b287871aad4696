//! snapgit-host: where core's operations meet real storage.
//!
//! - [`storage`]: one async, object-safe trait ([`Storage`]) and a backend per module —
//!   [`storage::memory`], [`storage::fs`] (a folder that is a bare git repository, with
//!   git's lock-file protocol for refs), [`storage::object_store`] (S3-compatible, GCS
//!   and Azure through the `object_store` crate). [`storage::open`] picks one from a URL.
//! - [`lock`]: optional advisory locks ([`Locks`]): in-process and Redis. The
//!   compare-and-swap of a ref stays the fence; locks only reduce contention.
//! - [`cli`]: what the `snapgit` command does, one method per command, as a library, on
//!   either engine ([`cli::EngineKind`]): the core component under wasmtime (the
//!   default) or native core.
//! - [`mcp`]: `snapgit mcp`, one repo as the tools of an MCP server on stdio (commit,
//!   read, list, log, diff, restore), each a [`cli::Session`] method as the command runs it.
//! - `runtime` (feature `component`, on by default): the core component under wasmtime,
//!   with limits. build.rs embeds the component (`cli::engine::COMPONENT`): the file named
//!   by `SNAPGIT_COMPONENT`, or one it builds from `wasm/component`. Without the feature
//!   (`--no-default-features`) there is no wasmtime and only the native engine.
//! - [`driver`]: [`driver::run`] carries out any core [`snapgit_core::Operation`]
//!   against a storage and optional locks, fetching and writing each batch in parallel
//!   and backing off when it loses a race.
//!
//! ```
//! use snapgit_core::{ObjectCache, HashKind, commit::{Change, Signature}, repo::{Commit, CommitRequest, RepoOp}};
//! use snapgit_host::{driver, storage::{self, Storage}};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = storage::open("memory:", &storage::Options::default())?;
//! let mut cache = ObjectCache::new(HashKind::Sha1);
//! let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
//!
//! let mut create = RepoOp::create_repo(&cache, "agent-1", "main", vec![], me.clone(), "create")?;
//! driver::run(&mut create, &mut cache, store.as_ref(), None).await?;
//!
//! let request = CommitRequest::new("agent-1", "main", vec![Change::put("memory.md", "# Memory\n")], me, "turn 1");
//! let out = driver::run(&mut Commit::new(&cache, request)?, &mut cache, store.as_ref(), None).await?;
//! let head = store.read_ref("refs/namespaces/agent-1/refs/heads/main").await?;
//! assert_eq!(head.map(|h| h.value), Some(out.commit));
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod driver;
pub mod http;
pub mod lock;
pub mod mcp;
#[cfg(feature = "component")]
pub mod runtime;
pub mod serve;
pub mod storage;
mod util;

pub use lock::Locks;
pub use storage::Storage;
