//! The `snapgit` binary's tests: each runs the built binary as a user would.
//!
//! Tests that need the S3 and Redis servers run when `SNAPGIT_SERVICES=1` (set by
//! `host/scripts/test.sh`); without it they return at once and a notice says so.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod bad_input;
mod concurrent;
mod demo;
mod flow;
mod support;
