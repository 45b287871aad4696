//! Repositories in a store: create, list and delete repos, branches, heads, and commits
//! to a branch that never lose an update.
//!
//! A repo is a git namespace of the store (see [`crate::store`]). Every write is
//! optimistic: read the ref (or use the state the cache remembers), build, `Put` the new
//! objects, then compare-and-swap the ref. A lost swap reloads the head and replays the
//! change set onto it ([`crate::merge`]); retries are bounded. Locks are optional and only
//! reduce contention — the compare-and-swap stays the fence.

mod admin;
mod commit;

pub use admin::{AdminOutput, RepoOp, Start};
pub use commit::{Commit, CommitOutput, CommitRequest, DEFAULT_MAX_ATTEMPTS, RestoreRequest};

use gix_hash::ObjectId;

use crate::{
    commit as build,
    merge::Conflict,
    object,
    policy::Violation,
    restore,
    step::{Misuse, StorageError},
    store::{BranchName, NameError, RepoName},
};

/// Why a repo operation failed. Nothing visible changes on any error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A repo or branch name breaks git's ref-name rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The repo already exists.
    #[error("repo {repo:?} already exists")]
    RepoExists {
        /// The repo.
        repo: String,
    },
    /// The repo does not exist (it has no branch).
    #[error("repo {repo:?} does not exist")]
    RepoNotFound {
        /// The repo.
        repo: String,
    },
    /// The branch already exists.
    #[error("branch {branch:?} already exists in repo {repo:?}")]
    BranchExists {
        /// The repo.
        repo: String,
        /// The branch.
        branch: String,
    },
    /// The branch does not exist.
    #[error("branch {branch:?} does not exist in repo {repo:?}")]
    BranchNotFound {
        /// The repo.
        repo: String,
        /// The branch.
        branch: String,
    },
    /// The changes break the repo's policy.
    #[error(transparent)]
    Policy(#[from] Violation),
    /// The branch is not at the head the caller expected.
    #[error("branch moved: expected {expected}, found {}", actual.map_or("no branch".to_string(), |a| a.to_string()))]
    HeadMoved {
        /// The head the caller expected.
        expected: ObjectId,
        /// The head found.
        actual: Option<ObjectId>,
    },
    /// A path changed on both sides and the policy is to fail.
    #[error("conflict at {:?}: changed by us and by {}", .0.path, .0.theirs.map_or("a delete".to_string(), |t| t.0.to_string()))]
    Conflict(Box<Conflict>),
    /// Every attempt lost the race to other writers.
    #[error("lost the race to other writers {attempts} times; nothing was committed")]
    LostRace {
        /// Attempts made.
        attempts: u32,
    },
    /// The commit could not be built (invalid changes, missing paths, ...).
    #[error(transparent)]
    Build(#[from] build::Error),
    /// The restore could not be built (unknown target, missing path, ...).
    #[error(transparent)]
    Restore(#[from] restore::Error),
    /// An object from storage is missing, corrupt or of the wrong kind.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// The storage adapter failed.
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        Error::Storage(err)
    }
}

fn branch_not_found(repo: &RepoName, branch: &BranchName) -> Error {
    Error::BranchNotFound {
        repo: repo.to_string(),
        branch: branch.to_string(),
    }
}
