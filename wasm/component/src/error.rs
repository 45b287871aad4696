//! Every failure the component returns, made here and nowhere else: core's errors as the
//! WIT `failure` (a stable code and a message).

use snapgit_core::{
    StorageError, commit, diff::tree as diff, gc, history, id, object, policy, read, repo, restore, step::Misuse,
};

use crate::bindings::snapgit::core::types::{Code, Failure};

/// A failure the host's storage or lock import returned, carried through core as its
/// storage error and handed back with its code unchanged.
#[derive(Debug)]
pub struct HostFailure(pub Failure);

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for HostFailure {}

/// Turn an error into the WIT failure.
pub trait Fail<T> {
    /// The value, or the failure.
    fn fail(self) -> Result<T, Failure>;
}

impl<T, E: Classify + std::fmt::Display> Fail<T> for Result<T, E> {
    fn fail(self) -> Result<T, Failure> {
        self.map_err(|err| match err.host() {
            Some(failure) => Failure {
                code: failure.code,
                message: format!("storage failed: {}", failure.message),
            },
            None => Failure {
                code: err.code(),
                message: err.to_string(),
            },
        })
    }
}

/// A core error's code, and the host failure inside it, if any.
pub trait Classify {
    /// The code.
    fn code(&self) -> Code;
    /// The host's own failure, when the error is one.
    fn host(&self) -> Option<&Failure> {
        None
    }
}

fn storage_host(err: &StorageError) -> Option<&Failure> {
    err.downcast_ref::<HostFailure>().map(|h| &h.0)
}

fn storage_code(err: &StorageError) -> Code {
    storage_host(err).map_or(Code::Storage, |f| f.code)
}

impl Classify for id::Error {
    fn code(&self) -> Code {
        Code::InvalidInput
    }
}

impl Classify for policy::PatternError {
    fn code(&self) -> Code {
        Code::InvalidInput
    }
}

impl Classify for Misuse {
    fn code(&self) -> Code {
        Code::Misuse
    }
}

impl Classify for object::Error {
    fn code(&self) -> Code {
        match self {
            // An object a commit or tree names is missing: the store lost it.
            object::Error::TooLarge { .. } => Code::Limit,
            _ => Code::Corrupt,
        }
    }
}

impl Classify for commit::Error {
    fn code(&self) -> Code {
        use commit::Error as E;
        match self {
            E::EmptyCommit => Code::EmptyCommit,
            E::PathNotFound { .. } => Code::NotFound,
            E::PathConflict { .. } => Code::Conflict,
            E::FileTooLarge { .. } | E::TooManyChanges { .. } => Code::Limit,
            E::Object(e) => e.code(),
            E::Storage(e) => storage_code(e),
            E::Misuse(_) => Code::Misuse,
            _ => Code::InvalidInput,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            commit::Error::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}

impl Classify for restore::Error {
    fn code(&self) -> Code {
        use restore::Error as E;
        match self {
            E::UnknownCommit { .. } | E::PathNotFound { .. } => Code::NotFound,
            E::PathConflict { .. } => Code::Conflict,
            E::NothingToRestore => Code::EmptyCommit,
            E::Object(e) => e.code(),
            E::Storage(e) => storage_code(e),
            E::Misuse(_) => Code::Misuse,
            _ => Code::InvalidInput,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            restore::Error::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}

impl Classify for repo::Error {
    fn code(&self) -> Code {
        use repo::Error as E;
        match self {
            E::RepoExists { .. } | E::BranchExists { .. } => Code::AlreadyExists,
            E::RepoNotFound { .. } | E::BranchNotFound { .. } => Code::NotFound,
            E::Policy(_) => Code::Policy,
            E::HeadMoved { .. } => Code::HeadMoved,
            E::Conflict(_) => Code::Conflict,
            E::LostRace { .. } => Code::LostRace,
            E::Build(e) => e.code(),
            E::Restore(e) => e.code(),
            E::Object(e) => e.code(),
            E::Storage(e) => storage_code(e),
            E::Misuse(_) => Code::Misuse,
            _ => Code::InvalidInput,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            repo::Error::Storage(e) => storage_host(e),
            repo::Error::Build(e) => e.host(),
            repo::Error::Restore(e) => e.host(),
            _ => None,
        }
    }
}

impl Classify for read::Error {
    fn code(&self) -> Code {
        use read::Error as E;
        match self {
            E::PathNotFound { .. } | E::UnknownCommit { .. } => Code::NotFound,
            E::Object(e) => e.code(),
            E::Storage(e) => storage_code(e),
            E::Misuse(_) => Code::Misuse,
            _ => Code::InvalidInput,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            read::Error::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}

impl Classify for history::Error {
    fn code(&self) -> Code {
        use history::Error as E;
        match self {
            E::UnknownCommit { .. } => Code::NotFound,
            E::Object(e) => e.code(),
            E::Storage(e) => storage_code(e),
            E::Misuse(_) => Code::Misuse,
            _ => Code::InvalidInput,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            history::Error::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}

impl Classify for diff::Error {
    fn code(&self) -> Code {
        use diff::Error as E;
        match self {
            E::UnknownCommit { .. } | E::PathNotFound { .. } => Code::NotFound,
            E::Object(e) => e.code(),
            E::Storage(e) => storage_code(e),
            E::Misuse(_) => Code::Misuse,
            _ => Code::InvalidInput,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            diff::Error::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}

impl Classify for gc::PruneError {
    fn code(&self) -> Code {
        use gc::PruneError as E;
        match self {
            E::BranchNotFound { .. } => Code::NotFound,
            E::Contention { .. } => Code::LostRace,
            E::Unrewritable { .. } => Code::Corrupt,
            E::Object(e) => e.code(),
            E::Storage(e) => storage_code(e),
            E::Misuse(_) => Code::Misuse,
            _ => Code::InvalidInput,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            gc::PruneError::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}

impl Classify for gc::FootprintError {
    fn code(&self) -> Code {
        match self {
            gc::FootprintError::Object(e) => e.code(),
            gc::FootprintError::Storage(e) => storage_code(e),
            gc::FootprintError::Misuse(_) => Code::Misuse,
            _ => Code::Corrupt,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            gc::FootprintError::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}

impl Classify for gc::CollectError {
    fn code(&self) -> Code {
        match self {
            gc::CollectError::InvalidOption { .. } => Code::InvalidInput,
            gc::CollectError::Object(e) => e.code(),
            gc::CollectError::Storage(e) => storage_code(e),
            gc::CollectError::Misuse(_) => Code::Misuse,
            _ => Code::Corrupt,
        }
    }

    fn host(&self) -> Option<&Failure> {
        match self {
            gc::CollectError::Storage(e) => storage_host(e),
            _ => None,
        }
    }
}
