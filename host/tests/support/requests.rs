//! Requests of the component for tests and the benchmark (not part of the product):
//! `host/tests/component` and `host/benches/host.rs` include this file.

use snapgit_core::{
    commit::{Change, Signature},
    repo::CommitRequest,
};

/// A commit of `changes` to `agent`'s `main`, with core's defaults.
pub fn commit_request(changes: Vec<Change>, author: Signature, message: &str) -> CommitRequest {
    CommitRequest::new("agent", "main", changes, author, message)
}
