//! The host's tests, in one binary: the storage conformance suite on every backend, locks,
//! the fs backend next to real git, configuration of the cloud backends, writers racing on
//! one branch, and `snapgit serve` against hostile clients.
//!
//! Tests that need the S3 and Redis servers run when `SNAPGIT_SERVICES=1` (set by
//! `host/scripts/test.sh`); without it they return at once and a notice says so.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod api;
mod cloud;
mod conformance;
mod contention;
mod fs;
mod locks;
#[path = "../support/race.rs"]
mod race;
mod serve;
mod support;
