//! Every operation a face exposes, behind one type: a [`Request`] names any of them
//! with its input, [`Op::new`] checks it and starts it, [`Output`] holds any result and
//! [`Error`] any failure.
//!
//! This is the list of operations the component, the npm package and the `snapgit`
//! command share: each face turns its own input into a [`Request`] and runs the [`Op`]
//! with one driver loop, one conversion of steps and one of errors, whatever the
//! operation — and in the `.wasm`, one copy of the generic code around an operation
//! ([`Packed`](crate::pack::Packed), the driver) instead of one per operation.
//!
//! ```
//! use snapgit_core::{HashKind, ObjectCache, ObjectId, api::{Op, Request}, commit::Change, drive::{self, MemoryStore}, repo::AdminOutput};
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(HashKind::Sha1);
//! let author = snapgit_core::commit::Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let files = vec![Change::put("a.md", "a\n")];
//! let request = Request::CreateRepo { repo: "agent".into(), branch: "main".into(), files, author, message: "first".into() };
//! let output = drive::run(&mut Op::new(&cache, request)?, &mut cache, &store)?;
//! let AdminOutput::Created { commit, .. } = AdminOutput::try_from(output).expect("create-repo's output") else { unreachable!() };
//! // Each operation's output comes back as its own type.
//! let request = Request::Resolve { repo: "agent".into(), rev: "main".into() };
//! let output = drive::run(&mut Op::new(&cache, request)?, &mut cache, &store)?;
//! assert_eq!(ObjectId::try_from(output).expect("resolve's output"), commit);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use bstr::BString;
use gix_hash::ObjectId;

#[cfg(feature = "openapi")]
pub mod schema;
pub(crate) mod wire;

use crate::{
    cache::ObjectCache,
    commit::{Change, Signature},
    diff, error, gc, history, object, read, remote, repo, rev,
    step::{Answer, Misuse, Operation, Step, StorageError},
    worktree,
};

/// Every operation's request as plain data: what a face receives and hands to
/// [`Op::new`], which checks it and starts the operation. Each field keeps core's
/// meaning and defaults (the request types' `new`).
///
/// Its serde form (JSON, for example: the npm package's results cross in it) is externally
/// tagged by the operation's camelCase name: `{ "commit": { "repo": …, "branch": …,
/// "changes": [{ "type": "put", "path": "a.md", "data": … }], … } }`, `"listRepos"`.
/// Ids are hex, paths text, file contents bytes; fields core defaults may be left out, and
/// a field core does not know is refused (a misspelt `expectedHead` must not pass unseen).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// Create `repo` with a first commit of `files` (puts only) on `branch`.
    CreateRepo {
        /// The new repo.
        repo: String,
        /// Its first branch.
        branch: String,
        /// The first commit's files.
        files: Vec<Change>,
        /// Author and committer of the first commit.
        author: Signature,
        /// Its message.
        message: String,
    },
    /// Every repo of the store, sorted.
    ListRepos,
    /// Delete every ref of a repo (its objects go at the next GC).
    DeleteRepo {
        /// The repo.
        repo: String,
    },
    /// Create `branch` at `start`.
    CreateBranch {
        /// The repo.
        repo: String,
        /// The new branch.
        branch: String,
        /// Where it starts.
        start: repo::Start,
    },
    /// The branches of a repo, sorted.
    ListBranches {
        /// The repo.
        repo: String,
    },
    /// Delete a branch.
    DeleteBranch {
        /// The repo.
        repo: String,
        /// The branch.
        branch: String,
    },
    /// A branch's head.
    ReadHead {
        /// The repo.
        repo: String,
        /// The branch.
        branch: String,
    },
    /// The commit a revision of a repo names ([`rev`]).
    Resolve {
        /// The repo.
        repo: String,
        /// The revision: `main`, `main~2`, `v1^2`, an abbreviated id...
        rev: String,
    },
    /// A commit to a branch.
    Commit(repo::CommitRequest),
    /// A restore of an earlier tree or path as a new commit on a branch.
    Restore(repo::RestoreRequest),
    /// One file at a commit.
    ReadFile {
        /// The commit.
        #[serde(with = "wire::id")]
        commit: ObjectId,
        /// The file.
        #[serde(with = "wire::path")]
        path: BString,
    },
    /// A folder at a commit, without reading blobs.
    ListTree {
        /// The commit.
        #[serde(with = "wire::id")]
        commit: ObjectId,
        /// The folder (empty: the root).
        #[serde(default, with = "wire::path")]
        path: BString,
        /// Every file and submodule below, or one level.
        #[serde(default = "wire::default::yes")]
        recursive: bool,
    },
    /// Every file below a folder at a commit.
    ReadFiles {
        /// The commit.
        #[serde(with = "wire::id")]
        commit: ObjectId,
        /// The folder (empty: the root).
        #[serde(default, with = "wire::path")]
        path: BString,
    },
    /// A commit's metadata.
    ReadCommit {
        /// The commit.
        #[serde(with = "wire::id")]
        commit: ObjectId,
    },
    /// A page of history.
    Log(history::Request),
    /// A page of one file's history (the request's path names the file).
    FileLog(history::Request),
    /// The difference between two commits.
    Diff(diff::tree::Request),
    /// The difference between a commit and a folder on disk ([`worktree`]).
    DiffFolder(worktree::DiffRequest),
    /// What to write into a folder and delete from it to bring back a commit's tree
    /// ([`worktree`]).
    Checkout(worktree::CheckoutRequest),
    /// A retention applied to a branch.
    Prune(gc::PruneRequest),
    /// The size of the store.
    Footprint,
    /// Garbage collection.
    #[serde(rename = "gc")]
    Collect(gc::CollectOptions),
    /// Compaction: loose objects into packs with deltas, small packs merged.
    Compact(gc::CompactOptions),
    /// A size cap for the whole store: the oldest history pruned first, round-robin over
    /// repos.
    Cap(gc::CapRequest),
    /// A branch pushed to a git remote ([`remote::client`]).
    Push(remote::client::PushRequest),
    /// Branches fetched from a git remote, or all of them imported ([`remote::client`]).
    Fetch(remote::client::FetchRequest),
}

impl Request {
    /// The operation's name, as the faces spell it (`commit`, `read-file`...).
    pub fn name(&self) -> &'static str {
        match self {
            Request::CreateRepo { .. } => "create-repo",
            Request::ListRepos => "list-repos",
            Request::DeleteRepo { .. } => "delete-repo",
            Request::CreateBranch { .. } => "create-branch",
            Request::ListBranches { .. } => "list-branches",
            Request::DeleteBranch { .. } => "delete-branch",
            Request::ReadHead { .. } => "read-head",
            Request::Resolve { .. } => "resolve",
            Request::Commit(_) => "commit",
            Request::Restore(_) => "restore",
            Request::ReadFile { .. } => "read-file",
            Request::ListTree { .. } => "list-tree",
            Request::ReadFiles { .. } => "read-files",
            Request::ReadCommit { .. } => "read-commit",
            Request::Log(_) => "log",
            Request::FileLog(_) => "file-log",
            Request::Diff(_) => "diff",
            Request::DiffFolder(_) => "diff-folder",
            Request::Checkout(_) => "checkout",
            Request::Prune(_) => "prune",
            Request::Footprint => "footprint",
            Request::Collect(_) => "gc",
            Request::Compact(_) => "compact",
            Request::Cap(_) => "cap",
            Request::Push(_) => "push",
            Request::Fetch(_) => "fetch",
        }
    }

    /// Whether the operation moves a branch (a commit or restore): such a request's
    /// driver may remember ref versions across calls.
    pub fn writes_branch(&self) -> bool {
        matches!(self, Request::Commit(_) | Request::Restore(_))
    }
}

/// How an output is serialized: by its own `Serialize`, or by the function named.
macro_rules! serializer {
    ($out:expr, $s:expr) => {
        serde::Serialize::serialize($out, $s)
    };
    ($out:expr, $s:expr, $ser:path) => {
        $ser($out, $s)
    };
}

macro_rules! operations {
    ($( $(#[$doc:meta])* $name:ident($op:ty) -> $out:ty $([$ser:path])?, $err:ty; )*) => {
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

        /// The inner operation's output in its serde form.
        impl serde::Serialize for Output {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Output::$name(out) => serializer!(out, s $(, $ser)?), )*
                }
            }
        }

        $(
            /// The output of this operation, out of an [`Output`]; the output back if it
            /// is another operation's.
            impl TryFrom<Output> for $out {
                type Error = Output;

                fn try_from(output: Output) -> Result<Self, Output> {
                    match output {
                        Output::$name(out) => Ok(out),
                        #[allow(unreachable_patterns)]
                        other => Err(other),
                    }
                }
            }

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

            fn wants_graph(&self) -> bool {
                matches!(self, Op::Log(_) | Op::FileLog(_))
            }

            fn fetches_promised(&self) -> bool {
                match self {
                    Op::ReadFile(_) | Op::ReadFiles(_) | Op::Diff(_) | Op::Checkout(_) | Op::Commit(_) => true,
                    Op::Push(op) => op.fetches_promised(),
                    _ => false,
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
    Resolve(rev::Resolve) -> gix_hash::ObjectId [wire::id::serialize], rev::Error;
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
    /// A commit's tree planned into a folder.
    Checkout(worktree::Checkout) -> worktree::CheckoutPlan, worktree::Error;
    /// A retention applied to a branch.
    Prune(gc::Prune) -> gc::Pruned, gc::PruneError;
    /// The size of a store.
    Footprint(gc::Footprint) -> gc::FootprintReport, gc::FootprintError;
    /// Garbage collection.
    Collect(gc::Collect) -> gc::Collected, gc::CollectError;
    /// Compaction.
    Compact(gc::Compact) -> gc::Compacted, gc::CompactError;
    /// A size cap for the whole store.
    Cap(gc::Cap) -> gc::Capped, gc::CapError;
    /// A push to a git remote.
    Push(remote::client::Push) -> remote::client::Pushed, remote::OpError;
    /// A fetch from a git remote.
    Fetch(remote::client::Fetch) -> remote::client::Fetched, remote::OpError;
}

impl Op {
    /// Check `request` and start its operation. Nothing is read or written until the
    /// first poll.
    pub fn new(cache: &ObjectCache, request: Request) -> Result<Op, Error> {
        use repo::RepoOp;
        Ok(match request {
            Request::CreateRepo {
                repo,
                branch,
                files,
                author,
                message,
            } => RepoOp::create_repo(cache, &repo, &branch, files, author, &message)
                .map_err(Error::Admin)?
                .into(),
            Request::ListRepos => RepoOp::list_repos().into(),
            Request::DeleteRepo { repo } => RepoOp::delete_repo(&repo).map_err(Error::Admin)?.into(),
            Request::CreateBranch { repo, branch, start } => RepoOp::create_branch(&repo, &branch, start)
                .map_err(Error::Admin)?
                .into(),
            Request::ListBranches { repo } => RepoOp::list_branches(&repo).map_err(Error::Admin)?.into(),
            Request::DeleteBranch { repo, branch } => {
                RepoOp::delete_branch(&repo, &branch).map_err(Error::Admin)?.into()
            }
            Request::ReadHead { repo, branch } => RepoOp::read_head(&repo, &branch).map_err(Error::Admin)?.into(),
            Request::Resolve { repo, rev } => rev::Resolve::new(cache, &repo, &rev).map_err(Error::Resolve)?.into(),
            Request::Commit(request) => repo::Commit::new(cache, request).map_err(Error::Commit)?.into(),
            Request::Restore(request) => repo::Commit::restore(cache, request).map_err(Error::Commit)?.into(),
            Request::ReadFile { commit, path } => read::ReadFile::new(commit, path).map_err(Error::ReadFile)?.into(),
            Request::ListTree {
                commit,
                path,
                recursive,
            } => read::ListTree::new(commit, path, recursive)
                .map_err(Error::ListTree)?
                .into(),
            Request::ReadFiles { commit, path } => read::ReadFiles::new(commit, path).map_err(Error::ReadFiles)?.into(),
            Request::ReadCommit { commit } => read::ReadCommit::new(commit).into(),
            Request::Log(request) => history::Log::new(request).map_err(Error::Log)?.into(),
            Request::FileLog(request) => history::FileLog::new(request).map_err(Error::FileLog)?.into(),
            Request::Diff(request) => diff::tree::Diff::new(request).map_err(Error::Diff)?.into(),
            Request::DiffFolder(request) => worktree::diff(cache, request).map_err(Error::Diff)?.into(),
            Request::Checkout(request) => worktree::Checkout::new(cache, request).map_err(Error::Checkout)?.into(),
            Request::Prune(request) => gc::Prune::new(request).map_err(Error::Prune)?.into(),
            Request::Footprint => gc::Footprint::new(cache).into(),
            Request::Collect(options) => gc::Collect::new(cache, options).map_err(Error::Collect)?.into(),
            Request::Compact(options) => gc::Compact::new(cache, options).map_err(Error::Compact)?.into(),
            Request::Cap(request) => gc::Cap::new(cache, request).map_err(Error::Cap)?.into(),
            Request::Push(request) => remote::client::Push::new(request).map_err(Error::Push)?.into(),
            Request::Fetch(request) => remote::client::Fetch::new(request).map_err(Error::Fetch)?.into(),
        })
    }

    /// How far a long operation (footprint, GC, compaction) has come; `None` for the others.
    pub fn progress(&self) -> Option<gc::Progress> {
        match self {
            Op::Footprint(op) => Some(op.progress()),
            Op::Collect(op) => Some(op.progress()),
            Op::Compact(op) => Some(op.progress()),
            Op::Cap(op) => Some(op.progress()),
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
