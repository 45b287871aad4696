//! Requests of the component's interface for tests and the benchmark (not part of the
//! product): `host/tests/component` and `host/benches/host.rs` include this file.

use snapgit_host::runtime::{Change, CommitRequest, ConflictPolicy, Signature};

/// A commit of `changes` to `agent`'s `main`, with core's defaults.
pub fn commit_request(changes: Vec<Change>, author: Signature, message: &str) -> CommitRequest {
    CommitRequest {
        repo: "agent".into(),
        branch: "main".into(),
        changes,
        committer: author.clone(),
        author,
        message: message.into(),
        allow_empty: false,
        line_stats: true,
        expected_head: None,
        on_conflict: ConflictPolicy::Fail,
        max_attempts: 10,
        lock_ttl_ms: None,
        max_file_bytes: None,
        exclude: Vec::new(),
    }
}
