//! Every error the `snapgit` command reports, and its exit code: made here and nowhere
//! else.
//!
//! Each error has a stable [`Code`] (the same names the npm package uses) and a human
//! message; the code decides the exit status:
//!
//! | exit | code | what |
//! |---|---|---|
//! | 0 | | success (also a commit that found nothing to change) |
//! | 1 | `MISUSE` | an internal error: please report it (also: the component cannot be loaded, trapped, or returned a bad value) |
//! | 2 | `INVALID_INPUT`, `POLICY` | bad arguments: names, paths, ids, URLs, options, credentials missing, unreadable files, excluded or oversized files |
//! | 3 | `NOT_FOUND` | no such store, repo, branch, commit or path |
//! | 4 | `CONFLICT`, `ALREADY_EXISTS`, `HEAD_MOVED`, `EMPTY_COMMIT` | the change cannot apply: the same path changed on both sides, something in the way, the repo or branch exists, the branch is not at `--expect-head`, nothing to restore |
//! | 5 | `LOST_RACE` | every attempt lost the compare-and-swap to other writers |
//! | 6 | `STORAGE` | storage or the lock service failed or cannot be reached |
//! | 7 | `CORRUPT` | stored data is not what it must be |
//! | 8 | `LIMIT` | a size or count limit was exceeded (also: a component call went over its memory limit or deadline) |
//!
//! Usage errors found by the argument parser also exit with 2.

use std::path::PathBuf;

use snapgit_core::{
    diff::tree as diff, error::Classify, gc, history, id, read, repo, rev, step::Misuse, store::NameError,
};

use crate::{driver::NoLocks, lock, storage};

/// The cause of an error, as a stable machine-readable code.
pub use snapgit_core::error::Code;

/// The process exit status for a cause (see the module overview).
pub fn exit_code(code: Code) -> u8 {
    match code {
        Code::Misuse => 1,
        Code::InvalidInput | Code::Policy => 2,
        Code::NotFound => 3,
        Code::Conflict | Code::AlreadyExists | Code::HeadMoved | Code::EmptyCommit => 4,
        Code::LostRace => 5,
        Code::Storage => 6,
        Code::Corrupt => 7,
        Code::Limit => 8,
        Code::Unsupported => 9,
    }
}

/// Why a command failed. Core's errors are kept whole; [`Error::code`] classifies them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// A local file or folder to commit cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder of a work tree cannot be written or removed.
    #[error("cannot write {}: {source}", path.display())]
    Unwritable {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A rollback found something on disk it must not write through or over: a symlink
    /// or file where a folder goes, a folder that is not empty where a file goes.
    #[error("refusing to write {}: {reason}", path.display())]
    Unsafe {
        /// Where.
        path: PathBuf,
        /// What is in the way.
        reason: String,
    },
    /// A local folder store does not exist yet.
    #[error("no store at {location} (create one with `snapgit init`, or name another with --store)")]
    NoStore {
        /// Where it was looked for.
        location: String,
    },
    /// The store cannot be opened.
    #[error(transparent)]
    Storage(#[from] storage::Error),
    /// The lock service cannot be reached.
    #[error(transparent)]
    Lock(#[from] lock::Error),
    /// A text that is not a full object id.
    #[error(transparent)]
    Id(#[from] id::Error),
    /// A repo or branch name refused by git's rules.
    #[error(transparent)]
    Name(#[from] NameError),
    /// An operation failed.
    #[error(transparent)]
    Op(#[from] snapgit_core::api::Error),
    /// A repo operation failed (create, list, branches, commit, restore).
    #[error(transparent)]
    Repo(#[from] repo::Error),
    /// A revision names no commit.
    #[error(transparent)]
    Rev(#[from] rev::Error),
    /// A read failed.
    #[error(transparent)]
    Read(#[from] read::Error),
    /// A history walk failed.
    #[error(transparent)]
    History(#[from] history::Error),
    /// A diff failed.
    #[error(transparent)]
    Diff(#[from] diff::Error),
    /// A prune failed.
    #[error(transparent)]
    Prune(#[from] gc::PruneError),
    /// The footprint report failed.
    #[error(transparent)]
    Footprint(#[from] gc::FootprintError),
    /// Garbage collection failed.
    #[error(transparent)]
    Collect(#[from] gc::CollectError),
    /// An operation of the core component failed, or the component could not run it.
    #[cfg(feature = "component")]
    #[error(transparent)]
    Component(#[from] crate::runtime::Error),
    /// The component returned something that is not what its interface promises.
    #[cfg(feature = "component")]
    #[error("the snapgit component returned a bad value: {0}")]
    ComponentOutput(String),
}

impl Error {
    /// An invalid argument, with a message naming it.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// The cause: core's own decision for core's errors ([`Classify`]), refined by the
    /// storage or lock error inside one.
    pub fn code(&self) -> Code {
        match self {
            Error::Invalid(_) | Error::Unreadable { .. } | Error::Id(_) | Error::Name(_) => Code::InvalidInput,
            Error::NoStore { .. } => Code::NotFound,
            Error::Unwritable { .. } => Code::Storage,
            Error::Unsafe { .. } => Code::Conflict,
            Error::Storage(err) => err.code(),
            Error::Lock(err) => err.code(),
            Error::Op(err) => classified(err),
            Error::Repo(err) => classified(err),
            Error::Rev(err) => classified(err),
            Error::Read(err) => classified(err),
            Error::History(err) => classified(err),
            Error::Diff(err) => classified(err),
            Error::Prune(err) => classified(err),
            Error::Footprint(err) => classified(err),
            Error::Collect(err) => classified(err),
            #[cfg(feature = "component")]
            Error::Component(err) => component_code(err),
            #[cfg(feature = "component")]
            Error::ComponentOutput(_) => Code::Misuse,
        }
    }

    /// The message, with every underlying cause that is not already part of it.
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        message
    }
}

/// The code of a component call's failure: the operation's own code, carried through the
/// WIT `code` enum unchanged.
#[cfg(feature = "component")]
fn component_code(err: &crate::runtime::Error) -> Code {
    use crate::runtime::Error as E;
    match err {
        E::Failed(failure) => crate::runtime::core_code(failure.code),
        E::Deadline { .. } | E::Memory { .. } => Code::Limit,
        _ => Code::Misuse,
    }
}

/// A storage or lock error as core carries it (boxed whole by the driver).
fn boxed_code(err: &(dyn std::error::Error + Send + Sync + 'static)) -> Code {
    if let Some(err) = err.downcast_ref::<storage::Error>() {
        err.code()
    } else if let Some(err) = err.downcast_ref::<lock::Error>() {
        err.code()
    } else if err.downcast_ref::<NoLocks>().is_some() {
        Code::Misuse
    } else {
        Code::Storage
    }
}

/// A core error's code; a storage failure inside it is classified by what failed.
pub(crate) fn classified(err: &dyn Classify) -> Code {
    match err.storage() {
        Some(source) => boxed_code(source.as_ref()),
        None => err.code(),
    }
}

impl From<Misuse> for Error {
    fn from(err: Misuse) -> Self {
        Error::Repo(repo::Error::Misuse(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_name_and_a_nonzero_exit() {
        let codes = [
            Code::InvalidInput,
            Code::NotFound,
            Code::AlreadyExists,
            Code::Corrupt,
            Code::Conflict,
            Code::LostRace,
            Code::HeadMoved,
            Code::EmptyCommit,
            Code::Policy,
            Code::Limit,
            Code::Unsupported,
            Code::Storage,
            Code::Misuse,
        ];
        let mut names: Vec<_> = codes.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), codes.len());
        assert!(codes.iter().all(|c| exit_code(*c) != 0));
        assert_eq!(exit_code(Code::LostRace), 5);
        assert_eq!(Code::InvalidInput.as_str(), "INVALID_INPUT");
    }

    #[test]
    fn storage_errors_inside_core_errors_keep_their_cause() {
        let config = storage::Error::Config {
            reason: "no credentials".into(),
            source: None,
        };
        let err = Error::Repo(repo::Error::Storage(config.boxed()));
        assert_eq!(err.code(), Code::InvalidInput);
        let io = storage::Error::Io {
            op: "read",
            path: "x".into(),
            source: std::io::Error::other("down"),
        };
        let err = Error::Read(read::Error::Storage(io.boxed()));
        assert_eq!(err.code(), Code::Storage);
        assert!(err.message().contains("down"));
    }
}
