//! snapgit-core: a sans-IO engine that builds git commits in memory and reads them back.
//!
//! Every snapshot is an ordinary git object, byte-identical to what `git` would write.
//! Core performs no IO: each operation is a state machine ([`Operation`]) that says which
//! objects it needs ([`Step::Get`]) and takes them back ([`Operation::provide`]), so the
//! same engine runs under a blocking Rust driver, an async JS driver or a wasm component.
//!
//! Objects that enter are verified (hash equals id, size within [`Limits`], canonical
//! form) and kept in an [`ObjectCache`] that can outlive one operation: a commit on top
//! of the last one asks for nothing.
//!
//! The operations:
//!
//! | module | operations |
//! |---|---|
//! | [`commit`] | build a commit from a parent and changes (put, delete, rename) |
//! | [`read`] | one file, a tree listing, all files, a commit's metadata |
//! | [`history`] | paged history with a path filter; one file's history with line counts |
//! | [`diff::tree`] | diff two commits: kinds, renames, line counts, unified patches |
//! | [`restore`] | a new commit whose tree (or one path) equals an earlier commit's |
//! | [`repo`] | repos and branches in a store; commit to a branch with compare-and-swap |
//! | [`gc`] | retention (prune a branch's history), footprint, garbage collection |
//!
//! Drive any of them with [`drive::run`] over an [`drive::ObjectStore`], or answer
//! their [`Step`]s yourself.
//!
//! ```
//! use snapgit_core::{
//!     ObjectCache, commit::{self, Change, Signature}, drive::{self, MemoryStore, ObjectStore}, read,
//! };
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
//! let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
//!
//! // Commit two files on top of nothing.
//! let request = commit::Request::new(
//!     None,
//!     vec![Change::put("notes/today.md", "# Today\n"), Change::put("memory.json", "{}\n")],
//!     me.clone(),
//!     "first turn",
//! );
//! let mut op = commit::Commit::new(&cache, request)?;
//! let first = drive::run(&mut op, &mut cache, &store)?;
//! store.put_many(&first.objects)?; // objects first; a ref update would follow
//! assert_eq!(first.files.len(), 2);
//!
//! // Change one file; the cache already holds every tree it needs.
//! let request = commit::Request::new(
//!     Some(first.id),
//!     vec![Change::put("notes/today.md", "# Today\nlearned a thing\n")],
//!     me,
//!     "second turn",
//! );
//! let mut op = commit::Commit::new(&cache, request)?;
//! let second = drive::run(&mut op, &mut cache, &store)?;
//! assert_eq!(op.rounds(), 0);
//! assert_eq!(second.objects.len(), 4); // 1 blob, 2 trees, 1 commit
//! store.put_many(&second.objects)?;
//!
//! // Read it back with a cold cache, as another process would.
//! let mut cold = ObjectCache::new(gix_hash::Kind::Sha1);
//! let mut op = read::ReadFile::new(second.id, "notes/today.md")?;
//! let file = drive::run(&mut op, &mut cold, &store)?;
//! assert_eq!(file.data, b"# Today\nlearned a thing\n");
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
pub mod commit;
pub mod diff;
pub mod drive;
pub mod error;
pub mod gc;
pub mod history;
pub mod id;
pub mod limits;
pub mod merge;
pub mod object;
mod order;
pub mod pack;
pub mod path;
pub mod policy;
pub mod read;
pub mod repo;
pub mod restore;
pub mod step;
pub mod store;
pub mod tree;

pub use cache::ObjectCache;
pub use gix_hash::{Kind as HashKind, ObjectId};
pub use limits::Limits;
pub use step::{Operation, Step, StorageError};
pub use tree::Mode;
