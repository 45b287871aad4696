//! Every operation a face exposes, behind one type: [`Op`] runs any of them, [`Output`]
//! holds any result and [`Error`] any failure.
//!
//! This is the list of operations the component, the npm package and the `snapgit`
//! command share. A face that drives an [`Op`] needs one driver loop, one conversion of
//! steps and one of errors, whatever the operation — and in the `.wasm`, one copy of the
//! generic code around an operation ([`Packed`](crate::pack::Packed), the driver)
//! instead of one per operation.
//!
//! ```
//! use snapgit_core::{HashKind, ObjectCache, api, commit::Change, drive::{self, MemoryStore}, repo::RepoOp};
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(HashKind::Sha1);
//! let me = snapgit_core::commit::Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let mut op = api::Op::from(RepoOp::create_repo(&cache, "agent", "main", vec![Change::put("a.md", "a\n")], me, "first")?);
//! let api::Output::Admin(_) = drive::run(&mut op, &mut cache, &store)? else { unreachable!() };
//! let mut op = api::Op::from(RepoOp::list_repos());
//! let api::Output::Admin(repos) = drive::run(&mut op, &mut cache, &store)? else { unreachable!() };
//! assert_eq!(repos, snapgit_core::repo::AdminOutput::Repos(vec!["agent".into()]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::{
    cache::ObjectCache,
    diff, error, gc, history, object, read, repo, rev,
    step::{Answer, Misuse, Operation, Step, StorageError},
};

macro_rules! operations {
    ($( $(#[$doc:meta])* $name:ident($op:ty) -> $out:ty, $err:ty; )*) => {
        /// Any operation of [`crate::api`]. Drive it like the operation inside.
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum Op {
            $( $(#[$doc])* $name(Box<$op>), )*
        }

        /// The result of an [`Op`]: the inner operation's output.
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum Output {
            $( $(#[$doc])* $name($out), )*
        }

        /// Why an [`Op`] failed: the inner operation's error, kept whole.
        #[derive(Debug, thiserror::Error)]
        #[non_exhaustive]
        pub enum Error {
            $( $(#[$doc])* #[error(transparent)] $name($err), )*
            /// An object provided was missing, corrupt or of the wrong kind.
            #[error(transparent)]
            Object(object::Error),
            /// The storage adapter failed.
            #[error("storage failed: {0}")]
            Storage(#[source] StorageError),
            /// The driver broke the protocol.
            #[error(transparent)]
            Misuse(Misuse),
        }

        $(
            impl From<$op> for Op {
                fn from(op: $op) -> Self {
                    Op::$name(Box::new(op))
                }
            }
        )*

        impl Operation for Op {
            type Output = Output;
            type Error = Error;

            fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Output>, Error> {
                match self {
                    $( Op::$name(op) => op.poll(cache).map(|step| step.map(Output::$name)).map_err(Error::$name), )*
                }
            }

            fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
                match self {
                    $( Op::$name(op) => op.provide(cache, objects).map_err(Error::$name), )*
                }
            }

            fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
                match self {
                    $( Op::$name(op) => op.answer(cache, answer).map_err(Error::$name), )*
                }
            }
        }

        impl error::Classify for Error {
            fn code(&self) -> error::Code {
                match self {
                    $( Error::$name(err) => err.code(), )*
                    Error::Object(err) => err.code(),
                    Error::Storage(_) => error::Code::Storage,
                    Error::Misuse(err) => err.code(),
                }
            }

            fn fields(&self) -> Vec<(&'static str, error::Value<'_>)> {
                match self {
                    $( Error::$name(err) => err.fields(), )*
                    Error::Object(err) => err.fields(),
                    Error::Storage(_) | Error::Misuse(_) => Vec::new(),
                }
            }

            fn storage(&self) -> Option<&StorageError> {
                match self {
                    $( Error::$name(err) => err.storage(), )*
                    Error::Storage(err) => Some(err),
                    Error::Object(_) | Error::Misuse(_) => None,
                }
            }
        }
    };
}

operations! {
    /// Repos and branches: create, list, delete; read a head.
    Admin(repo::RepoOp) -> repo::AdminOutput, repo::Error;
    /// A commit or a restore on a branch, with compare-and-swap.
    Commit(repo::Commit) -> repo::CommitOutput, repo::Error;
    /// What a revision names.
    Resolve(rev::Resolve) -> gix_hash::ObjectId, rev::Error;
    /// One file at a commit.
    ReadFile(read::ReadFile) -> read::File, read::Error;
    /// A folder at a commit, without reading blobs.
    ListTree(read::ListTree) -> Vec<read::Entry>, read::Error;
    /// Every file below a folder at a commit.
    ReadFiles(read::ReadFiles) -> Vec<read::FileWithPath>, read::Error;
    /// A commit's metadata.
    ReadCommit(read::ReadCommit) -> read::CommitInfo, read::Error;
    /// A page of history.
    Log(history::Log) -> history::Page, history::Error;
    /// A page of one file's history.
    FileLog(history::FileLog) -> history::FilePage, history::Error;
    /// The difference between two commits.
    Diff(diff::tree::Diff) -> diff::tree::Output, diff::tree::Error;
    /// A retention applied to a branch.
    Prune(gc::Prune) -> gc::Pruned, gc::PruneError;
    /// The size of a store.
    Footprint(gc::Footprint) -> gc::FootprintReport, gc::FootprintError;
    /// Garbage collection.
    Collect(gc::Collect) -> gc::Collected, gc::CollectError;
}

impl Op {
    /// How far a long operation (footprint, GC) has come; `None` for the others.
    pub fn progress(&self) -> Option<gc::Progress> {
        match self {
            Op::Footprint(op) => Some(op.progress()),
            Op::Collect(op) => Some(op.progress()),
            _ => None,
        }
    }
}

impl From<object::Error> for Error {
    fn from(err: object::Error) -> Self {
        Error::Object(err)
    }
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        Error::Storage(err)
    }
}

impl From<Misuse> for Error {
    fn from(err: Misuse) -> Self {
        Error::Misuse(err)
    }
}
