//! Tests of snapgit-core through its public API.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod api;
mod commit;
mod deep;
mod diff_tree;
mod error;
mod gc;
mod gc_roots;
mod graph;
mod history;
mod id;
mod object;
mod pack;
mod path;
mod read;
mod remote;
mod repo;
mod restore;
mod support;
mod wire;
mod worktree;
