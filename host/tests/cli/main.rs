//! The `snapgit` binary's tests: each runs the built binary as a user would, with its
//! default engine (the core component under wasmtime, when built with the `component`
//! feature); `engines` compares that engine's output with native core's.
//!
//! Tests that need the S3 and Redis servers run when `SNAPGIT_SERVICES=1` (set by
//! `host/scripts/test.sh`); without it they return at once and a notice says so.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod api;
mod bad_input;
mod concurrent;
mod demo;
#[cfg(feature = "component")]
mod engines;
mod flow;
mod gc_roots;
mod mcp;
mod remote;
mod serve;
mod support;
mod worktree;
