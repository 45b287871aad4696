//! The causes every error of core falls under, named once for every binding.
//!
//! Each operation has its own error type; bindings (the JS package, the `snapgit`
//! command, the component) report a stable, machine-readable code with it. The codes and
//! their spelling live here so that every face of snapgit says the same thing.

/// The cause of an error, as a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A bad argument: invalid path, name, id, signature, message or option.
    InvalidInput,
    /// A repo, branch, commit, path or object that does not exist.
    NotFound,
    /// A repo or branch that already exists.
    AlreadyExists,
    /// Stored data that is not what it must be: bad bytes, wrong hash, wrong kind.
    Corrupt,
    /// A path changed on both sides of a replay, or something stands where a change writes.
    Conflict,
    /// Every attempt lost the compare-and-swap to other writers.
    LostRace,
    /// The branch is not at the head the caller expected.
    HeadMoved,
    /// The commit would change nothing and empty commits were not allowed.
    EmptyCommit,
    /// The changes break the repo's write policy.
    Policy,
    /// A size or count limit was exceeded.
    Limit,
    /// Storage (or the lock service) failed.
    Storage,
    /// The operation was driven out of order.
    Misuse,
}

impl Code {
    /// The code as text: `INVALID_INPUT`, `NOT_FOUND`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidInput => "INVALID_INPUT",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::Corrupt => "CORRUPT",
            Code::Conflict => "CONFLICT",
            Code::LostRace => "LOST_RACE",
            Code::HeadMoved => "HEAD_MOVED",
            Code::EmptyCommit => "EMPTY_COMMIT",
            Code::Policy => "POLICY",
            Code::Limit => "LIMIT",
            Code::Storage => "STORAGE",
            Code::Misuse => "MISUSE",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
