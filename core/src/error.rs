//! The causes every error of core falls under, named once for every binding.
//!
//! Each operation has its own error type; bindings (the JS package, the `snapgit`
//! command, the component) report a stable, machine-readable code with it. The codes and
//! their spelling live here so that every face of snapgit says the same thing, and so
//! does the decision of which code each error gets ([`Classify`]).

use bstr::{BStr, BString, ByteSlice};

use crate::{
    ObjectId, commit, diff, gc, history, id, object, path, policy, read, remote, repo, restore, rev,
    step::{Misuse, StorageError},
    store::NameError,
    worktree,
};

/// The cause of an error, as a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A bad argument: invalid path, name, id, signature, message or option.
    InvalidInput,
    /// A repo, branch, commit or path that does not exist.
    NotFound,
    /// A repo or branch that already exists.
    AlreadyExists,
    /// Stored data that is not what it must be: bad bytes, wrong hash, wrong kind, or an
    /// object a commit or tree names that the store lost.
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
    /// The store holds something the operation cannot account for (alternates, a shallow
    /// file, linked worktrees, a promisor pack): it refused, and changed nothing.
    Unsupported,
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
            Code::Unsupported => "UNSUPPORTED",
            Code::Misuse => "MISUSE",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value an error names: the offending value, or a detail beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// A name, an option's value, a cursor, a signature or a pattern.
    Text(&'a str),
    /// A path in a tree.
    Path(&'a BStr),
    /// An object id.
    Id(&'a ObjectId),
    /// A count, a size or a limit.
    Number(u64),
    /// Nothing there (a deleted side of a conflict, a missing head).
    Absent,
}

/// What every error of core tells a binding: its [`Code`], the values it names, and the
/// storage adapter's own error when that is the cause. Bindings report the code, the
/// error's message (`Display`) and, where they can carry data, the fields; they decide
/// nothing themselves.
///
/// ```
/// use snapgit_core::{error::{Classify, Code, Value}, path};
///
/// let err = path::validate(b"a/../b".into(), false).unwrap_err();
/// assert_eq!(err.code(), Code::InvalidInput);
/// assert_eq!(err.fields(), vec![("value", Value::Path(b"a/../b".into()))]);
/// ```
pub trait Classify: std::error::Error {
    /// The cause, as a stable code.
    fn code(&self) -> Code;

    /// The values the error names: `value` first, the offending value, where there is
    /// one; then details named after the core field (`limit`, `repo`, `commit`, `at`,
    /// `expected` and `actual` for a moved head, `ours` and `theirs` for a conflict,
    /// `field` for an option, `pattern` for an excluded path).
    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        Vec::new()
    }

    /// The storage adapter's (or lock service's) error, when the failure is one, so a
    /// binding can report the adapter's own cause.
    fn storage(&self) -> Option<&StorageError> {
        None
    }
}

fn path(p: &BString) -> Value<'_> {
    Value::Path(p.as_bstr())
}

fn number(n: impl TryInto<u64>) -> Value<'static> {
    Value::Number(n.try_into().unwrap_or(u64::MAX))
}

fn side(entry: &Option<(ObjectId, crate::Mode)>) -> Value<'_> {
    entry.as_ref().map_or(Value::Absent, |(id, _)| Value::Id(id))
}

impl Classify for Misuse {
    fn code(&self) -> Code {
        Code::Misuse
    }
}

impl Classify for id::Error {
    fn code(&self) -> Code {
        Code::InvalidInput
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![("value", Value::Text(&self.value))]
    }
}

impl Classify for path::Error {
    fn code(&self) -> Code {
        Code::InvalidInput
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![("value", path(&self.path))]
    }
}

impl Classify for NameError {
    fn code(&self) -> Code {
        Code::InvalidInput
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![("value", Value::Text(&self.name))]
    }
}

impl Classify for policy::PatternError {
    fn code(&self) -> Code {
        Code::InvalidInput
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![("value", Value::Text(&self.pattern))]
    }
}

impl Classify for policy::Violation {
    fn code(&self) -> Code {
        Code::Policy
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use policy::Violation as V;
        match self {
            V::Excluded { path: p, pattern } => vec![("value", path(p)), ("pattern", Value::Text(pattern))],
            V::FileTooLarge { path: p, limit, .. } => vec![("value", path(p)), ("limit", number(*limit))],
            V::TooManyObjects { count, limit } => vec![("value", number(*count)), ("limit", number(*limit))],
        }
    }
}

impl Classify for object::CollisionError {
    fn code(&self) -> Code {
        Code::InvalidInput
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![("value", number(self.size))]
    }
}

impl Classify for object::Error {
    fn code(&self) -> Code {
        use object::Error as E;
        match self {
            // Operations ask for objects that commits and trees name (an unknown start
            // commit is reported as such by each operation), so a missing one is a
            // store that lost it.
            E::NotFound { .. } | E::Corrupt { .. } | E::HashMismatch { .. } | E::WrongKind { .. } => Code::Corrupt,
            E::TooLarge { .. } => Code::Limit,
            E::Unavailable { .. } => Code::Storage,
        }
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use object::Error as E;
        match self {
            E::NotFound { id } | E::Corrupt { id, .. } | E::HashMismatch { id, .. } | E::WrongKind { id, .. } => {
                vec![("value", Value::Id(id))]
            }
            E::TooLarge { id, limit } => vec![("value", Value::Id(id)), ("limit", number(*limit))],
            E::Unavailable { id, .. } => vec![("value", Value::Id(id))],
        }
    }
}

/// Classification of the variants every operation's error shares.
macro_rules! shared {
    ($err:expr, $E:ident, $($rest:tt)*) => {
        match $err {
            $E::Object(e) => e.code(),
            $E::Storage(_) => Code::Storage,
            $E::Misuse(_) => Code::Misuse,
            $($rest)*
        }
    };
}

impl Classify for commit::Error {
    fn code(&self) -> Code {
        use commit::Error as E;
        shared!(self, E,
            E::InvalidPath(_)
            | E::InvalidMode { .. }
            | E::InvalidSignature { .. }
            | E::InvalidMessage
            | E::DuplicatePath { .. }
            | E::OverlappingPaths { .. }
            | E::Collision { .. } => Code::InvalidInput,
            E::EmptyCommit => Code::EmptyCommit,
            E::PathNotFound { .. } => Code::NotFound,
            E::PathConflict { .. } => Code::Conflict,
            E::FileTooLarge { .. } | E::TooManyChanges { .. } => Code::Limit,
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use commit::Error as E;
        match self {
            E::InvalidPath(e) => e.fields(),
            E::InvalidMode { path: p, .. }
            | E::DuplicatePath { path: p }
            | E::OverlappingPaths { path: p, .. }
            | E::Collision { path: p, .. }
            | E::PathNotFound { path: p } => vec![("value", path(p))],
            E::InvalidSignature { value, .. } => vec![("value", Value::Text(value))],
            E::PathConflict { path: p, at, .. } => vec![("value", path(p)), ("at", path(at))],
            E::FileTooLarge { path: p, limit, .. } => vec![("value", path(p)), ("limit", number(*limit))],
            E::TooManyChanges { count, limit } => vec![("value", number(*count)), ("limit", number(*limit))],
            E::Object(e) => e.fields(),
            E::InvalidMessage | E::EmptyCommit | E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            commit::Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for restore::Error {
    fn code(&self) -> Code {
        use restore::Error as E;
        shared!(self, E,
            E::InvalidPath(_) | E::InvalidSignature { .. } | E::InvalidMessage | E::Collision(_) => Code::InvalidInput,
            E::NotACommit { .. } => Code::InvalidInput,
            E::UnknownCommit { .. } | E::PathNotFound { .. } => Code::NotFound,
            E::PathConflict { .. } => Code::Conflict,
            E::NothingToRestore => Code::EmptyCommit,
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use restore::Error as E;
        match self {
            E::InvalidPath(e) => e.fields(),
            E::InvalidSignature { value, .. } => vec![("value", Value::Text(value))],
            E::Collision(e) => e.fields(),
            E::UnknownCommit { id } | E::NotACommit { id, .. } => vec![("value", Value::Id(id))],
            E::PathNotFound { path: p } => vec![("value", path(p))],
            E::PathConflict { path: p, at } => vec![("value", path(p)), ("at", path(at))],
            E::Object(e) => e.fields(),
            E::InvalidMessage | E::NothingToRestore | E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            restore::Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for repo::Error {
    fn code(&self) -> Code {
        use repo::Error as E;
        shared!(self, E,
            E::InvalidName(_) => Code::InvalidInput,
            E::RepoExists { .. } | E::BranchExists { .. } => Code::AlreadyExists,
            E::RepoNotFound { .. } | E::BranchNotFound { .. } => Code::NotFound,
            E::Policy(_) => Code::Policy,
            E::HeadMoved { .. } => Code::HeadMoved,
            E::Conflict(_) => Code::Conflict,
            E::LostRace { .. } => Code::LostRace,
            E::Build(e) => e.code(),
            E::Restore(e) => e.code(),
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use repo::Error as E;
        match self {
            E::InvalidName(e) => e.fields(),
            E::RepoExists { repo } | E::RepoNotFound { repo } => vec![("value", Value::Text(repo.as_str()))],
            E::BranchExists { repo, branch } | E::BranchNotFound { repo, branch } => {
                vec![
                    ("value", Value::Text(branch.as_str())),
                    ("repo", Value::Text(repo.as_str())),
                ]
            }
            E::Policy(e) => e.fields(),
            E::HeadMoved { expected, actual } => vec![
                ("value", Value::Id(expected)),
                ("expected", Value::Id(expected)),
                ("actual", actual.as_ref().map_or(Value::Absent, Value::Id)),
            ],
            E::Conflict(c) => vec![
                ("value", path(&c.path)),
                ("ours", side(&c.ours)),
                ("theirs", side(&c.theirs)),
            ],
            E::LostRace { attempts } => vec![("value", number(*attempts))],
            E::Build(e) => e.fields(),
            E::Restore(e) => e.fields(),
            E::Object(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            repo::Error::Storage(e) => Some(e),
            repo::Error::Build(e) => e.storage(),
            repo::Error::Restore(e) => e.storage(),
            _ => None,
        }
    }
}

impl Classify for read::Error {
    fn code(&self) -> Code {
        use read::Error as E;
        shared!(self, E,
            E::InvalidPath(_) | E::NotAFile { .. } | E::NotAFolder { .. } | E::NotACommit { .. } => Code::InvalidInput,
            E::PathNotFound { .. } | E::UnknownCommit { .. } => Code::NotFound,
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use read::Error as E;
        match self {
            E::InvalidPath(e) => e.fields(),
            E::PathNotFound { path: p, commit } => vec![("value", path(p)), ("commit", Value::Id(commit))],
            E::NotAFile { path: p, .. } | E::NotAFolder { path: p } => vec![("value", path(p))],
            E::UnknownCommit { id } | E::NotACommit { id, .. } => vec![("value", Value::Id(id))],
            E::Object(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            read::Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for history::Error {
    fn code(&self) -> Code {
        use history::Error as E;
        shared!(self, E,
            E::InvalidPath(_)
            | E::InvalidLimit { .. }
            | E::InvalidCursor { .. }
            | E::ForeignCursor { .. }
            | E::NotACommit { .. }
            | E::NotAFile { .. } => Code::InvalidInput,
            E::UnknownCommit { .. } => Code::NotFound,
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use history::Error as E;
        match self {
            E::InvalidPath(e) => e.fields(),
            E::InvalidLimit { limit } => vec![("value", number(*limit))],
            E::InvalidCursor { cursor, .. } | E::ForeignCursor { cursor } => vec![("value", Value::Text(cursor))],
            E::UnknownCommit { id } | E::NotACommit { id, .. } => vec![("value", Value::Id(id))],
            E::NotAFile { path: p, commit } => vec![("value", path(p)), ("commit", Value::Id(commit))],
            E::Object(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            history::Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for diff::tree::Error {
    fn code(&self) -> Code {
        use diff::tree::Error as E;
        shared!(self, E,
            E::InvalidPath(_) | E::NotACommit { .. } => Code::InvalidInput,
            E::UnknownCommit { .. } | E::PathNotFound { .. } => Code::NotFound,
            E::Folder(e) => e.code(),
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use diff::tree::Error as E;
        match self {
            E::InvalidPath(e) => e.fields(),
            E::Folder(e) => e.fields(),
            E::UnknownCommit { id } | E::NotACommit { id, .. } => vec![("value", Value::Id(id))],
            E::PathNotFound { path: p } => vec![("value", path(p))],
            E::Object(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            diff::tree::Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for worktree::FolderError {
    fn code(&self) -> Code {
        Code::InvalidInput
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use worktree::FolderError as E;
        match self {
            E::InvalidPath(e) => e.fields(),
            E::Duplicate { path: p } | E::NotAFile { path: p, .. } => vec![("value", path(p))],
            E::WrongId { path: p, id, actual } => {
                vec![
                    ("value", path(p)),
                    ("expected", Value::Id(id)),
                    ("actual", Value::Id(actual)),
                ]
            }
            E::Collision(e) => e.fields(),
        }
    }
}

impl Classify for worktree::Error {
    fn code(&self) -> Code {
        use worktree::Error as E;
        match self {
            E::Folder(e) => e.code(),
            E::Unsafe { .. } | E::Untracked { .. } => Code::Conflict,
            E::Read(e) => e.code(),
            E::Misuse(e) => e.code(),
        }
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use worktree::Error as E;
        match self {
            E::Folder(e) => e.fields(),
            E::Unsafe { path: p, .. } => vec![("value", path(p))],
            E::Untracked { path: p, kept } => vec![("value", path(p)), ("at", path(kept))],
            E::Read(e) => e.fields(),
            E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            worktree::Error::Read(e) => e.storage(),
            _ => None,
        }
    }
}

impl Classify for gc::PruneError {
    fn code(&self) -> Code {
        use gc::PruneError as E;
        shared!(self, E,
            E::InvalidName(_) | E::ZeroKeepCount | E::NoRule | E::InvalidOption { .. } => Code::InvalidInput,
            E::BranchNotFound { .. } => Code::NotFound,
            E::Contention { .. } => Code::LostRace,
            E::Unrewritable { .. } => Code::Corrupt,
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use gc::PruneError as E;
        match self {
            E::InvalidName(e) => e.fields(),
            E::ZeroKeepCount => vec![("value", Value::Number(0))],
            E::InvalidOption { option, value, .. } => {
                vec![("value", Value::Text(value)), ("field", Value::Text(option))]
            }
            E::BranchNotFound { repo, branch } => {
                vec![
                    ("value", Value::Text(branch.as_str())),
                    ("repo", Value::Text(repo.as_str())),
                ]
            }
            E::Contention { attempts, .. } => vec![("value", number(*attempts))],
            E::Unrewritable { commit, .. } => vec![("value", Value::Id(commit))],
            E::Object(e) => e.fields(),
            E::NoRule | E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            gc::PruneError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for gc::Unsupported {
    fn code(&self) -> Code {
        Code::Unsupported
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![("value", Value::Text(&self.key))]
    }
}

impl Classify for gc::CorruptRef {
    fn code(&self) -> Code {
        Code::Corrupt
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![("value", Value::Text(&self.key))]
    }
}

impl Classify for gc::FootprintError {
    fn code(&self) -> Code {
        use gc::FootprintError as E;
        shared!(self, E,
            E::Unsupported(e) => e.code(),
            E::CorruptRef(e) => e.code(),
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use gc::FootprintError as E;
        match self {
            E::Object(e) => e.fields(),
            E::Unsupported(e) => e.fields(),
            E::CorruptRef(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            gc::FootprintError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for gc::CollectError {
    fn code(&self) -> Code {
        use gc::CollectError as E;
        shared!(self, E,
            E::InvalidOption { .. } => Code::InvalidInput,
            E::Unsupported(e) => e.code(),
            E::CorruptRef(e) => e.code(),
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use gc::CollectError as E;
        match self {
            E::InvalidOption { option, value, .. } => {
                vec![("value", Value::Text(value)), ("field", Value::Text(option))]
            }
            E::Object(e) => e.fields(),
            E::Unsupported(e) => e.fields(),
            E::CorruptRef(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            gc::CollectError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for gc::CompactError {
    fn code(&self) -> Code {
        use gc::CompactError as E;
        shared!(self, E,
            E::InvalidOption { .. } => Code::InvalidInput,
            E::Pack(_) => Code::Corrupt,
            E::Unsupported(e) => e.code(),
            E::CorruptRef(e) => e.code(),
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use gc::CompactError as E;
        match self {
            E::InvalidOption { option, value, .. } => {
                vec![("value", Value::Text(value)), ("field", Value::Text(option))]
            }
            E::Pack(e) => vec![("key", Value::Text(&e.key))],
            E::Object(e) => e.fields(),
            E::Unsupported(e) => e.fields(),
            E::CorruptRef(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            gc::CompactError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for gc::CapError {
    fn code(&self) -> Code {
        use gc::CapError as E;
        shared!(self, E,
            E::ZeroKeepLast => Code::InvalidInput,
            E::Prune(e) => e.code(),
            E::Unsupported(e) => e.code(),
            E::CorruptRef(e) => e.code(),
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use gc::CapError as E;
        match self {
            E::ZeroKeepLast => vec![("value", Value::Number(0)), ("field", Value::Text("keep_last"))],
            E::Prune(e) => e.fields(),
            E::Object(e) => e.fields(),
            E::Unsupported(e) => e.fields(),
            E::CorruptRef(e) => e.fields(),
            E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            gc::CapError::Storage(e) => Some(e),
            gc::CapError::Prune(e) => e.storage(),
            _ => None,
        }
    }
}

impl Classify for rev::Error {
    fn code(&self) -> Code {
        use rev::Error as E;
        shared!(self, E,
            E::Name(_) | E::Invalid { .. } | E::Ambiguous { .. } | E::NotACommit { .. } => Code::InvalidInput,
            E::Unknown { .. } | E::UnknownRepo { .. } | E::NoParent { .. } => Code::NotFound,
            E::Pack(_) => Code::Corrupt,
        )
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use rev::Error as E;
        match self {
            E::Name(e) => e.fields(),
            E::Invalid { text, .. } | E::Unknown { text, .. } => vec![("value", Value::Text(text))],
            E::Ambiguous { prefix, .. } => vec![("value", Value::Text(prefix))],
            E::UnknownRepo { repo } => vec![("repo", Value::Text(repo))],
            E::NoParent { text, commit, .. } => vec![("value", Value::Text(text)), ("commit", Value::Id(commit))],
            E::NotACommit { text, id, .. } => vec![("value", Value::Text(text)), ("id", Value::Id(id))],
            E::Object(e) => e.fields(),
            E::Pack(_) | E::Storage(_) | E::Misuse(_) => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            rev::Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl Classify for remote::Error {
    fn code(&self) -> Code {
        use remote::Error as E;
        match self {
            // A remote's refusal is reported against the request it refused.
            E::Malformed { .. }
            | E::TooLong { .. }
            | E::Truncated { .. }
            | E::Unexpected { .. }
            | E::InvalidId { .. }
            | E::InvalidRefName { .. }
            | E::UnknownCommand { .. }
            | E::UnknownCapability { .. }
            | E::UnknownArgument { .. }
            | E::InvalidValue { .. }
            | E::Remote { .. } => Code::InvalidInput,
            E::UnsupportedFilter { .. } | E::UnsupportedObjectFormat { .. } | E::UnsupportedVersion { .. } => {
                Code::Unsupported
            }
            E::LimitExceeded { .. } => Code::Limit,
        }
    }

    fn fields(&self) -> Vec<(&'static str, Value<'_>)> {
        use remote::Error as E;
        match self {
            E::Malformed { at, .. } | E::Truncated { at, .. } => vec![("at", number(*at))],
            E::TooLong { at, len } => {
                let mut fields = vec![("value", number(*len)), ("limit", number(remote::pkt::MAX_DATA_BYTES))];
                fields.extend(at.map(|at| ("at", number(at))));
                fields
            }
            E::Unexpected { at, found, .. } => vec![("value", Value::Text(found)), ("at", number(*at))],
            E::InvalidId { at, value } => vec![("value", Value::Text(value)), ("at", number(*at))],
            E::InvalidRefName { name: value, .. }
            | E::UnknownCommand { command: value }
            | E::UnknownCapability { capability: value }
            | E::UnknownArgument { argument: value, .. }
            | E::UnsupportedFilter { spec: value }
            | E::UnsupportedObjectFormat { format: value }
            | E::UnsupportedVersion { found: value, .. }
            | E::InvalidValue { value, .. }
            | E::Remote { message: value } => vec![("value", Value::Text(value))],
            E::LimitExceeded { limit, .. } => vec![("limit", number(*limit))],
        }
    }
}
