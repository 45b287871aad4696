#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The examples of the repository's README.md, run as doc-tests (`cargo test -p
/// snapgit-core --doc`); its shell and JavaScript examples run from `scripts/examples.mjs`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

pub mod api;
pub mod cache;
pub mod commit;
pub mod diff;
pub mod drive;
pub mod error;
pub mod gc;
pub mod graph;
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
pub mod remote;
pub mod repo;
pub mod restore;
pub mod retry;
pub mod rev;
pub mod step;
pub mod store;
pub mod tree;
pub mod worktree;

pub use cache::ObjectCache;
pub use gix_hash::{Kind as HashKind, ObjectId};
pub use limits::Limits;
pub use step::{Operation, Step, StorageError};
pub use tree::Mode;
