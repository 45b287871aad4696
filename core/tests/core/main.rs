//! Tests of snapgit-core through its public API.

mod commit;
mod diff_tree;
mod gc;
mod history;
mod object;
mod path;
mod read;
mod repo;
mod restore;
mod support;
