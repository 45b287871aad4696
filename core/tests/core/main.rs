//! Tests of snapgit-core through its public API.

mod commit;
mod gc;
mod object;
mod path;
mod read;
mod repo;
mod support;
