//! Which engine carries out the `snapgit` command's operations, and the one place where
//! each engine's results become the command's values.
//!
//! - [`EngineKind::Component`], the default (feature `component`): snapgit-core as the
//!   WebAssembly component, embedded in the binary ([`COMPONENT`]) and run under wasmtime
//!   ([`crate::runtime`]), sandboxed, with a memory limit and a deadline per call. Its
//!   compiled code is kept in a cache folder ([`default_cache_dir`]), so a process loads
//!   it instead of compiling it.
//! - [`EngineKind::Native`]: snapgit-core compiled into the binary, driven by
//!   [`crate::driver`] — the only engine of a build without the `component` feature.
//!
//! Both give the same reports; the tests run the commands under both and compare their
//! JSON. What the command does around an operation (argument checks, resolving refs,
//! which operations to run) is the same code for both; only the operation calls differ.
//! Pure checks that read no storage (names, signatures, ids) run natively in both.
//!
//! The component runs `gc` as one call, so its progress is what the host sees of it: the
//! storage calls made so far ([`GcProgress::Calls`]).

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use bstr::BString;
use snapgit_core::{
    HashKind, ObjectCache, ObjectId, Operation,
    commit::{Change, Signature},
    diff::{FileChange, tree as diff_tree},
    gc, history, read,
    repo::{self, AdminOutput, CommitRequest, RepoOp, RestoreRequest, Start},
    step::Misuse,
};

use super::{
    CommitArgs, Error,
    output::{GcReport, PruneReport, StatusReport},
};
use crate::{driver, lock::Locks, storage::Storage};

/// The environment variable that picks the engine (`component` or `native`).
pub const ENGINE_ENV: &str = "SNAPGIT_ENGINE";

/// The environment variable naming the folder for compiled code (empty: keep none).
pub const CACHE_DIR_ENV: &str = "SNAPGIT_CACHE_DIR";

/// The core component (`wasm/component`), as build.rs built or found it.
#[cfg(feature = "component")]
pub const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/snapgit.wasm"));

/// Which engine runs core's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// snapgit-core as a WebAssembly component under wasmtime.
    Component,
    /// snapgit-core compiled into the binary.
    Native,
}

impl EngineKind {
    /// The component when this build has it (feature `component`), else native.
    pub const DEFAULT: EngineKind = if cfg!(feature = "component") {
        EngineKind::Component
    } else {
        EngineKind::Native
    };

    /// Its name: `component` or `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Component => "component",
            EngineKind::Native => "native",
        }
    }
}

impl Default for EngineKind {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for EngineKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "component" => Ok(EngineKind::Component),
            "native" => Ok(EngineKind::Native),
            _ => Err(Error::invalid(format!(
                "unknown engine {text:?}: expected \"component\" or \"native\""
            ))),
        }
    }
}

/// Where compiled code is kept unless told otherwise: `$SNAPGIT_CACHE_DIR` (empty: no
/// cache), else `$XDG_CACHE_HOME/snapgit/wasmtime`, else `$HOME/.cache/snapgit/wasmtime`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV) {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("snapgit").join("wasmtime"))
}

/// How far a `gc` has got, as far as the engine can tell.
#[derive(Debug, Clone, Copy)]
pub enum GcProgress<'a> {
    /// Core's own account, after every step (native engine).
    Core(&'a gc::Progress),
    /// The storage calls made so far (component engine: the collection is one call).
    Calls(StorageCalls),
}

/// Storage calls a component call made, counted by the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageCalls {
    /// Refs read.
    pub refs_read: u64,
    /// Objects read.
    pub objects_read: u64,
    /// Keys listed.
    pub keys_listed: u64,
    /// Keys deleted.
    pub deleted: u64,
}

/// A commit or restore that landed, from either engine.
#[derive(Debug)]
pub(crate) struct Landed {
    pub commit: ObjectId,
    pub tree: ObjectId,
    pub parent: ObjectId,
    pub created: bool,
    pub files: Vec<FileChange>,
    pub attempts: u32,
    pub settled: Vec<String>,
    pub objects_written: usize,
    pub bytes_written: u64,
    pub locked: bool,
}

impl From<repo::CommitOutput> for Landed {
    fn from(out: repo::CommitOutput) -> Self {
        Landed {
            commit: out.commit,
            tree: out.tree,
            parent: out.parent,
            created: out.created,
            files: out.files,
            attempts: out.attempts,
            settled: out
                .settled
                .iter()
                .map(|c| String::from_utf8_lossy(&c.path).into_owned())
                .collect(),
            objects_written: out.objects_written,
            bytes_written: out.bytes_written,
            locked: out.locked,
        }
    }
}

/// Two commits compared, from either engine.
#[derive(Debug)]
pub(crate) struct Diffed {
    pub from: Option<ObjectId>,
    pub to: ObjectId,
    pub files: Vec<FileChange>,
    pub patch: Option<BString>,
}

/// A store, optional locks, and the engine that runs operations against them.
#[derive(Debug)]
pub(crate) struct Engine {
    storage: Arc<dyn Storage>,
    locks: Option<Arc<dyn Locks>>,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// Core in this process; the cache lives as long as the session.
    Native(ObjectCache),
    /// The component: the runtime, and the storage and locks its imports reach.
    #[cfg(feature = "component")]
    Component {
        runtime: Arc<crate::runtime::Runtime>,
        io: crate::runtime::Io,
    },
}

fn unexpected(op: &'static str) -> Error {
    Misuse(op).into()
}

impl Engine {
    /// `kind` over `storage` and `locks`; the component is loaded from `cache_dir` when
    /// compiled there before.
    pub(crate) fn new(
        kind: EngineKind,
        storage: Arc<dyn Storage>,
        locks: Option<Arc<dyn Locks>>,
        cache_dir: Option<&Path>,
    ) -> Result<Self, Error> {
        let inner = match kind {
            EngineKind::Native => Inner::Native(ObjectCache::new(HashKind::Sha1)),
            #[cfg(feature = "component")]
            EngineKind::Component => Inner::Component {
                runtime: component::runtime(cache_dir)?,
                io: component::io(&storage, &locks),
            },
            #[cfg(not(feature = "component"))]
            EngineKind::Component => {
                let _ = cache_dir;
                return Err(Error::invalid(
                    "this snapgit was built without the component engine (cargo feature `component`); use --engine native",
                ));
            }
        };
        Ok(Engine { storage, locks, inner })
    }

    /// Which engine this is.
    pub(crate) fn kind(&self) -> EngineKind {
        match self.inner {
            Inner::Native(_) => EngineKind::Native,
            #[cfg(feature = "component")]
            Inner::Component { .. } => EngineKind::Component,
        }
    }

    /// The store.
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    async fn run<O: Operation>(
        cache: &mut ObjectCache,
        storage: &dyn Storage,
        locks: Option<&dyn Locks>,
        mut op: O,
    ) -> Result<O::Output, O::Error>
    where
        O::Error: From<snapgit_core::object::Error>,
    {
        driver::run(&mut op, cache, storage, locks).await
    }

    async fn admin(cache: &mut ObjectCache, storage: &dyn Storage, op: RepoOp) -> Result<AdminOutput, Error> {
        Ok(Self::run(cache, storage, None, op).await?)
    }

    /// The head of `branch` of `repo`.
    pub(crate) async fn read_head(&mut self, repo: &str, branch: &str) -> Result<ObjectId, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                match Self::admin(cache, self.storage.as_ref(), RepoOp::read_head(repo, branch)?).await? {
                    AdminOutput::Head(id) => Ok(id),
                    _ => Err(unexpected("read_head returned something else")),
                }
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => component::oid(&rt.read_head(io, repo, branch).await?),
        }
    }

    /// The commit a revision of `repo` names, by core's rules: a branch or tag, a full or
    /// abbreviated id, then `~N` and `^N` steps.
    pub(crate) async fn resolve(&mut self, repo: &str, rev: &str) -> Result<ObjectId, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = snapgit_core::rev::Resolve::new(cache, repo, rev)?;
                Ok(Self::run(cache, self.storage.as_ref(), None, op).await?)
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => component::oid(&rt.resolve(io, repo, rev).await?),
        }
    }

    /// The branches of `repo`, sorted.
    pub(crate) async fn list_branches(&mut self, repo: &str) -> Result<Vec<String>, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                match Self::admin(cache, self.storage.as_ref(), RepoOp::list_branches(repo)?).await? {
                    AdminOutput::Branches(names) => Ok(names),
                    _ => Err(unexpected("list_branches returned something else")),
                }
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => Ok(rt.list_branches(io, repo).await?),
        }
    }

    /// Every repo of the store, sorted.
    pub(crate) async fn list_repos(&mut self) -> Result<Vec<String>, Error> {
        match &mut self.inner {
            Inner::Native(cache) => match Self::admin(cache, self.storage.as_ref(), RepoOp::list_repos()).await? {
                AdminOutput::Repos(repos) => Ok(repos),
                _ => Err(unexpected("list_repos returned something else")),
            },
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => Ok(rt.list_repos(io).await?),
        }
    }

    /// Create `repo` with a first commit of `files` on `branch`.
    pub(crate) async fn create_repo(
        &mut self,
        repo: &str,
        branch: &str,
        files: Vec<Change>,
        author: Signature,
        message: &str,
    ) -> Result<(ObjectId, Vec<FileChange>), Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = RepoOp::create_repo(cache, repo, branch, files, author, message)?;
                match Self::admin(cache, self.storage.as_ref(), op).await? {
                    AdminOutput::Created { commit, files } => Ok((commit, files)),
                    _ => Err(unexpected("create_repo returned something else")),
                }
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let files = files
                    .into_iter()
                    .map(component::change)
                    .collect::<Result<Vec<_>, _>>()?;
                let created = rt
                    .create_repo(io, repo, branch, &files, &component::signature(&author), message)
                    .await?;
                Ok((
                    component::oid(&created.commit)?,
                    component::file_changes(created.files)?,
                ))
            }
        }
    }

    /// Delete every ref of `repo`; the refs removed.
    pub(crate) async fn delete_repo(&mut self, repo: &str) -> Result<Vec<String>, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                match Self::admin(cache, self.storage.as_ref(), RepoOp::delete_repo(repo)?).await? {
                    AdminOutput::Deleted(refs) => Ok(refs),
                    _ => Err(unexpected("delete_repo returned something else")),
                }
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => Ok(rt.delete_repo(io, repo).await?),
        }
    }

    /// Create `branch` of `repo` at `start`; its head.
    pub(crate) async fn create_branch(&mut self, repo: &str, branch: &str, start: ObjectId) -> Result<ObjectId, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = RepoOp::create_branch(repo, branch, Start::Commit(start))?;
                match Self::admin(cache, self.storage.as_ref(), op).await? {
                    AdminOutput::BranchCreated(commit) => Ok(commit),
                    _ => Err(unexpected("create_branch returned something else")),
                }
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let head = rt.create_branch(io, repo, branch, &start.to_string()).await?;
                component::oid(&head)
            }
        }
    }

    /// Delete `branch` of `repo`; the ref removed.
    pub(crate) async fn delete_branch(&mut self, repo: &str, branch: &str) -> Result<Vec<String>, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                match Self::admin(cache, self.storage.as_ref(), RepoOp::delete_branch(repo, branch)?).await? {
                    AdminOutput::Deleted(refs) => Ok(refs),
                    _ => Err(unexpected("delete_branch returned something else")),
                }
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                rt.delete_branch(io, repo, branch).await?;
                // The component reports no key; it deleted the one core names so.
                let repo = snapgit_core::store::RepoName::new(repo)?;
                Ok(vec![repo.branch_key(&snapgit_core::store::BranchName::new(branch)?)])
            }
        }
    }

    /// Commit `args` (its changes final) to `repo`.
    pub(crate) async fn commit(
        &mut self,
        repo: &str,
        args: CommitArgs,
        lock_ttl_ms: Option<u64>,
    ) -> Result<Landed, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let mut request = CommitRequest::new(repo, args.branch, args.changes, args.author, args.message);
                request.expected_head = args.expect_head;
                request.on_conflict = args.on_conflict;
                request.allow_empty = args.allow_empty;
                request.max_attempts = args.max_attempts;
                request.lock_ttl_ms = lock_ttl_ms;
                let op = repo::Commit::new(cache, request)?;
                let out = Self::run(cache, self.storage.as_ref(), self.locks.as_deref(), op).await?;
                Ok(out.into())
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let request = component::commit_request(repo, args, lock_ttl_ms)?;
                let out = rt.commit(io, &request).await?;
                component::landed(out)
            }
        }
    }

    /// Carry out a restore.
    pub(crate) async fn restore(&mut self, request: RestoreRequest) -> Result<Landed, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = repo::Commit::restore(cache, request)?;
                let out = Self::run(cache, self.storage.as_ref(), self.locks.as_deref(), op).await?;
                Ok(out.into())
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let request = component::restore_request(request)?;
                let out = rt.restore(io, &request).await?;
                component::landed(out)
            }
        }
    }

    /// A commit's metadata.
    pub(crate) async fn read_commit(&mut self, commit: ObjectId) -> Result<read::CommitInfo, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                Ok(Self::run(cache, self.storage.as_ref(), None, read::ReadCommit::new(commit)).await?)
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                component::commit_info(rt.read_commit(io, &commit.to_string()).await?)
            }
        }
    }

    /// A page of history: the commits and the cursor of the next page.
    pub(crate) async fn log(
        &mut self,
        request: history::Request,
    ) -> Result<(Vec<read::CommitInfo>, Option<String>), Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = history::Log::new(request)?;
                let page = Self::run(cache, self.storage.as_ref(), None, op).await?;
                Ok((page.commits, page.next.map(|c| c.to_string())))
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let page = rt.log(io, &component::log_request(request)?).await?;
                let commits = page
                    .commits
                    .into_iter()
                    .map(component::commit_info)
                    .collect::<Result<_, _>>()?;
                Ok((commits, page.next))
            }
        }
    }

    /// A page of one file's history: the commits that changed it, each with the file's
    /// change and line counts.
    pub(crate) async fn file_log(
        &mut self,
        request: history::Request,
    ) -> Result<(Vec<history::FileCommit>, Option<String>), Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = history::FileLog::new(request)?;
                let page = Self::run(cache, self.storage.as_ref(), None, op).await?;
                Ok((page.commits, page.next.map(|c| c.to_string())))
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let page = rt.file_log(io, &component::log_request(request)?).await?;
                let mut commits = Vec::with_capacity(page.commits.len());
                for c in page.commits {
                    let change = component::file_changes(vec![c.change])?.pop();
                    commits.push(history::FileCommit {
                        commit: component::commit_info(c.commit)?,
                        change: change.ok_or_else(|| unexpected("file_log returned no change"))?,
                    });
                }
                Ok((commits, page.next))
            }
        }
    }

    /// One file at a commit.
    pub(crate) async fn read_file(&mut self, commit: ObjectId, path: &str) -> Result<read::File, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = read::ReadFile::new(commit, path)?;
                Ok(Self::run(cache, self.storage.as_ref(), None, op).await?)
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let file = rt.read_file(io, &commit.to_string(), path).await?;
                Ok(read::File {
                    id: component::oid(&file.id)?,
                    mode: component::mode_in(file.mode),
                    data: file.data,
                })
            }
        }
    }

    /// Every file below a folder at a commit (the root when `path` is empty), with its
    /// content.
    pub(crate) async fn read_files(&mut self, commit: ObjectId, path: &str) -> Result<Vec<read::FileWithPath>, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = read::ReadFiles::new(commit, path)?;
                Ok(Self::run(cache, self.storage.as_ref(), None, op).await?)
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => rt
                .read_files(io, &commit.to_string(), path)
                .await?
                .into_iter()
                .map(|f| {
                    Ok(read::FileWithPath {
                        path: f.path.into(),
                        file: read::File {
                            id: component::oid(&f.file.id)?,
                            mode: component::mode_in(f.file.mode),
                            data: f.file.data,
                        },
                    })
                })
                .collect(),
        }
    }

    /// A folder at a commit, without reading blobs.
    pub(crate) async fn list_tree(
        &mut self,
        commit: ObjectId,
        path: &BString,
        recursive: bool,
    ) -> Result<Vec<read::Entry>, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = read::ListTree::new(commit, path.clone(), recursive)?;
                Ok(Self::run(cache, self.storage.as_ref(), None, op).await?)
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let path = component::utf8(path.as_ref())?;
                let entries = rt.list_tree(io, &commit.to_string(), path, recursive).await?;
                entries
                    .into_iter()
                    .map(|e| {
                        Ok(read::Entry {
                            path: e.path.into(),
                            mode: component::mode_in(e.mode),
                            id: component::oid(&e.id)?,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Compare two commits.
    pub(crate) async fn diff(&mut self, request: diff_tree::Request) -> Result<Diffed, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = diff_tree::Diff::new(request)?;
                let out = Self::run(cache, self.storage.as_ref(), None, op).await?;
                Ok(Diffed {
                    from: out.from,
                    to: out.to,
                    files: out.files,
                    patch: out.patch,
                })
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let out = rt.diff(io, &component::diff_request(request)?).await?;
                Ok(Diffed {
                    from: out.from.as_deref().map(component::oid).transpose()?,
                    to: component::oid(&out.to)?,
                    files: component::file_changes(out.files)?,
                    patch: out.patch.map(BString::from),
                })
            }
        }
    }

    /// Apply a retention to a branch.
    pub(crate) async fn prune(&mut self, request: gc::PruneRequest) -> Result<PruneReport, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = gc::Prune::new(request)?;
                let pruned = Self::run(cache, self.storage.as_ref(), None, op).await?;
                Ok(PruneReport::from(&pruned))
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let (repo, branch) = (request.repo.to_string(), request.branch.to_string());
                let pruned = rt.prune(io, &component::prune_request(&request)).await?;
                Ok(PruneReport {
                    repo,
                    branch,
                    old_head: component::oid(&pruned.old_head)?.to_string(),
                    new_head: component::oid(&pruned.new_head)?.to_string(),
                    rewritten: pruned.rewritten,
                    kept: component::count(pruned.kept),
                    dropped: pruned.dropped,
                })
            }
        }
    }

    /// Objects and bytes in the store.
    pub(crate) async fn footprint(&mut self) -> Result<StatusReport, Error> {
        let location = self.storage.location();
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = gc::Footprint::new(cache);
                let report = Self::run(cache, self.storage.as_ref(), None, op).await?;
                Ok(StatusReport::new(location, &report))
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, io } => {
                let report = rt.footprint(io).await?;
                Ok(component::status(location, report))
            }
        }
    }

    /// Delete unreachable objects older than `options.grace_ms`, calling `on_progress`.
    pub(crate) async fn gc(
        &mut self,
        options: gc::CollectOptions,
        mut on_progress: impl FnMut(GcProgress<'_>),
    ) -> Result<GcReport, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let op = gc::Collect::new(cache, options)?;
                let observed = Observed {
                    op,
                    on_step: |op: &gc::Collect| on_progress(GcProgress::Core(&op.progress())),
                };
                let collected = Self::run(cache, self.storage.as_ref(), None, observed).await?;
                Ok(GcReport::from(&collected))
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime: rt, .. } => {
                let collected = component::gc(rt, self.storage.clone(), options, on_progress).await?;
                Ok(GcReport {
                    refs: component::count(collected.refs),
                    reachable: collected.reachable,
                    listed: collected.listed,
                    deleted: collected.deleted,
                    deleted_bytes: collected.deleted_bytes,
                    young: collected.young,
                    young_bytes: collected.young_bytes,
                })
            }
        }
    }
}

/// Drives an operation and reports its progress after every step.
struct Observed<O, F> {
    op: O,
    on_step: F,
}

impl<O: Operation, F: FnMut(&O)> Operation for Observed<O, F> {
    type Output = O::Output;
    type Error = O::Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<snapgit_core::Step<O::Output>, O::Error> {
        let step = self.op.poll(cache);
        (self.on_step)(&self.op);
        step
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), O::Error> {
        self.op.provide(cache, objects)
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: snapgit_core::step::Answer) -> Result<(), O::Error> {
        self.op.answer(cache, answer)
    }
}

/// The component's side: the runtime, and WIT values to and from core's.
#[cfg(feature = "component")]
mod component {
    use std::{
        collections::HashMap,
        path::{Path, PathBuf},
        sync::{
            Arc, Mutex, OnceLock,
            atomic::{AtomicU64, Ordering},
        },
        time::Duration,
    };

    use bstr::{BStr, ByteSlice};
    use snapgit_core::{
        HashKind, Mode, ObjectId,
        commit::{Change, Signature, Time},
        diff::{ChangeKind, FileChange, LineStats, tree as diff_tree},
        gc, history,
        merge::ConflictPolicy,
        read,
        repo::RestoreRequest,
        step::{CasOutcome, CasRef, Listed, RefState},
    };

    use super::{CommitArgs, Error, GcProgress, Landed, StorageCalls};
    use crate::{
        cli::output::{RepoUsageJson, StatusReport, UsageJson},
        lock::Locks,
        runtime::{self as rt, Io, Runtime},
        storage::{self, Object, Storage},
    };

    /// One runtime per cache folder for the whole process: compiled (or loaded) once.
    pub(super) fn runtime(cache_dir: Option<&Path>) -> Result<Arc<Runtime>, Error> {
        static RUNTIMES: OnceLock<Mutex<HashMap<Option<PathBuf>, Arc<Runtime>>>> = OnceLock::new();
        let runtimes = RUNTIMES.get_or_init(Default::default);
        let key = cache_dir.map(Path::to_owned);
        let mut runtimes = runtimes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(runtime) = runtimes.get(&key) {
            return Ok(runtime.clone());
        }
        let config = rt::Config {
            cache_dir: key.clone(),
            ..rt::Config::default()
        };
        let runtime = Arc::new(Runtime::new(super::COMPONENT, config)?);
        runtimes.insert(key, runtime.clone());
        Ok(runtime)
    }

    pub(super) fn io(storage: &Arc<dyn Storage>, locks: &Option<Arc<dyn Locks>>) -> Io {
        let mut io = Io::new(storage.clone());
        io.locks = locks.clone();
        io
    }

    /// An id the component returned.
    pub(super) fn oid(text: &str) -> Result<ObjectId, Error> {
        snapgit_core::id::parse(HashKind::Sha1, text).map_err(|err| Error::ComponentOutput(err.to_string()))
    }

    /// A count the component returned.
    pub(super) fn count(n: u32) -> usize {
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// A path for the component, which takes UTF-8 only.
    pub(super) fn utf8(path: &BStr) -> Result<&str, Error> {
        path.to_str().map_err(|_| {
            Error::invalid(format!(
                "path {path:?} is not UTF-8: the component engine takes UTF-8 paths only (use --engine native)"
            ))
        })
    }

    pub(super) fn signature(sig: &Signature) -> rt::Signature {
        rt::Signature {
            name: sig.name.clone(),
            email: sig.email.clone(),
            time: sig.time.seconds,
            offset_minutes: sig.time.offset_minutes,
        }
    }

    fn signature_in(sig: rt::Signature) -> Signature {
        Signature {
            name: sig.name,
            email: sig.email,
            time: Time {
                seconds: sig.time,
                offset_minutes: sig.offset_minutes,
            },
        }
    }

    fn mode_out(mode: Mode) -> rt::Mode {
        match mode {
            Mode::Regular => rt::Mode::Regular,
            Mode::Executable => rt::Mode::Executable,
            Mode::Symlink => rt::Mode::Symlink,
            Mode::Tree => rt::Mode::Tree,
            Mode::Submodule => rt::Mode::Submodule,
        }
    }

    pub(super) fn mode_in(mode: rt::Mode) -> Mode {
        match mode {
            rt::Mode::Regular => Mode::Regular,
            rt::Mode::Executable => Mode::Executable,
            rt::Mode::Symlink => Mode::Symlink,
            rt::Mode::Tree => Mode::Tree,
            rt::Mode::Submodule => Mode::Submodule,
        }
    }

    pub(super) fn change(change: Change) -> Result<rt::Change, Error> {
        Ok(match change {
            Change::Put { path, data, mode } => rt::Change::Put(rt::Put {
                path: utf8(path.as_bstr())?.to_owned(),
                data,
                mode: mode_out(mode),
            }),
            Change::Delete { path } => rt::Change::Delete(utf8(path.as_bstr())?.to_owned()),
            Change::Rename { from, to } => rt::Change::Rename(rt::Rename {
                from: utf8(from.as_bstr())?.to_owned(),
                to: utf8(to.as_bstr())?.to_owned(),
            }),
        })
    }

    fn side(side: Option<rt::Side>) -> Result<Option<(ObjectId, Mode)>, Error> {
        side.map(|s| Ok((oid(&s.id)?, mode_in(s.mode)))).transpose()
    }

    pub(super) fn file_changes(files: Vec<rt::FileChange>) -> Result<Vec<FileChange>, Error> {
        files
            .into_iter()
            .map(|f| {
                let kind = match f.kind {
                    rt::ChangeKind::Added => ChangeKind::Added,
                    rt::ChangeKind::Modified => ChangeKind::Modified,
                    rt::ChangeKind::Deleted => ChangeKind::Deleted,
                    rt::ChangeKind::TypeChanged => ChangeKind::TypeChanged,
                    rt::ChangeKind::Renamed => ChangeKind::Renamed {
                        from: f.renamed_from.unwrap_or_default().into(),
                    },
                };
                Ok(FileChange {
                    path: f.path.into(),
                    kind,
                    old: side(f.old)?,
                    new: side(f.new)?,
                    binary: f.binary,
                    lines: f.lines.map(|l| LineStats {
                        added: l.added,
                        removed: l.removed,
                    }),
                })
            })
            .collect()
    }

    pub(super) fn commit_info(info: rt::CommitInfo) -> Result<read::CommitInfo, Error> {
        Ok(read::CommitInfo {
            id: oid(&info.id)?,
            tree: oid(&info.tree)?,
            parents: info.parents.iter().map(|p| oid(p)).collect::<Result<_, _>>()?,
            author: signature_in(info.author),
            committer: signature_in(info.committer),
            message: info.message,
        })
    }

    fn conflict(policy: ConflictPolicy) -> rt::ConflictPolicy {
        match policy {
            ConflictPolicy::Fail => rt::ConflictPolicy::Fail,
            ConflictPolicy::Ours => rt::ConflictPolicy::Ours,
            ConflictPolicy::Theirs => rt::ConflictPolicy::Theirs,
        }
    }

    /// A commit as the command makes it: line counts on, no policy of core's (the
    /// command applies `--exclude` when it reads the files).
    pub(super) fn commit_request(
        repo: &str,
        args: CommitArgs,
        lock_ttl_ms: Option<u64>,
    ) -> Result<rt::CommitRequest, Error> {
        let author = signature(&args.author);
        Ok(rt::CommitRequest {
            repo: repo.to_owned(),
            branch: args.branch,
            changes: args.changes.into_iter().map(change).collect::<Result<_, _>>()?,
            committer: author.clone(),
            author,
            message: args.message,
            allow_empty: args.allow_empty,
            line_stats: true,
            expected_head: args.expect_head.map(|id| id.to_string()),
            on_conflict: conflict(args.on_conflict),
            max_attempts: args.max_attempts,
            lock_ttl_ms,
            max_file_bytes: None,
            exclude: Vec::new(),
        })
    }

    pub(super) fn restore_request(request: RestoreRequest) -> Result<rt::RestoreRequest, Error> {
        Ok(rt::RestoreRequest {
            path: request
                .path
                .as_deref()
                .map(|p| utf8(p.as_bstr()).map(str::to_owned))
                .transpose()?,
            repo: request.repo,
            branch: request.branch,
            target: request.target.to_string(),
            author: signature(&request.author),
            message: request.message,
            line_stats: request.line_stats,
            expected_head: request.expected_head.map(|id| id.to_string()),
            max_attempts: request.max_attempts,
            lock_ttl_ms: request.lock_ttl_ms,
        })
    }

    pub(super) fn landed(out: rt::CommitOutput) -> Result<Landed, Error> {
        Ok(Landed {
            commit: oid(&out.commit)?,
            tree: oid(&out.tree)?,
            parent: oid(&out.parent)?,
            created: out.created,
            files: file_changes(out.files)?,
            attempts: out.attempts,
            settled: out.settled,
            objects_written: usize::try_from(out.objects_written).unwrap_or(usize::MAX),
            bytes_written: out.bytes_written,
            locked: out.locked,
        })
    }

    pub(super) fn log_request(request: history::Request) -> Result<rt::LogRequest, Error> {
        Ok(rt::LogRequest {
            start: request.start.to_string(),
            path: request
                .path
                .as_deref()
                .map(|p| utf8(p.as_bstr()).map(str::to_owned))
                .transpose()?,
            first_parent: request.first_parent,
            limit: u32::try_from(request.limit).unwrap_or(u32::MAX),
            cursor: request.cursor.map(|c| c.as_str().to_owned()),
        })
    }

    pub(super) fn diff_request(request: diff_tree::Request) -> Result<rt::DiffRequest, Error> {
        Ok(rt::DiffRequest {
            from: request.from.map(|id| id.to_string()),
            to: request.to.to_string(),
            path: request
                .path
                .as_deref()
                .map(|p| utf8(p.as_bstr()).map(str::to_owned))
                .transpose()?,
            renames: request.renames,
            line_stats: request.line_stats,
            patch: request.patch,
        })
    }

    pub(super) fn prune_request(request: &gc::PruneRequest) -> rt::PruneRequest {
        rt::PruneRequest {
            repo: request.repo.to_string(),
            branch: request.branch.to_string(),
            keep_last: request
                .retention
                .keep_last
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            keep_within_ms: request.retention.keep_within.as_ref().map(|w| w.duration_ms),
            now_ms: request.retention.keep_within.as_ref().map_or(0, |w| w.now_ms),
            max_attempts: request.max_attempts,
        }
    }

    fn usage(u: rt::Usage) -> UsageJson {
        UsageJson {
            objects: u.count,
            bytes: u.bytes,
        }
    }

    pub(super) fn status(store: String, report: rt::FootprintReport) -> StatusReport {
        StatusReport {
            store,
            objects: usage(report.objects),
            repos: report
                .repos
                .into_iter()
                .map(|r| RepoUsageJson {
                    repo: r.repo,
                    refs: count(r.refs),
                    reachable: usage(r.reachable),
                })
                .collect(),
            other_refs: usage(report.other_refs),
            unreachable: usage(report.unreachable),
            other_keys: usage(report.other_keys),
        }
    }

    /// The collection, as one call, with the storage calls it makes reported every
    /// tenth of a second.
    pub(super) async fn gc(
        runtime: &Runtime,
        storage: Arc<dyn Storage>,
        options: gc::CollectOptions,
        mut on_progress: impl FnMut(GcProgress<'_>),
    ) -> Result<rt::Collected, Error> {
        let counted = Arc::new(Counted {
            inner: storage,
            counts: Counts::default(),
        });
        let io = Io::new(counted.clone());
        let mut call = std::pin::pin!(runtime.gc(&io, options.now_ms, options.grace_ms));
        loop {
            match tokio::time::timeout(Duration::from_millis(100), &mut call).await {
                Ok(result) => return Ok(result?),
                Err(_) => on_progress(GcProgress::Calls(counted.counts.get())),
            }
        }
    }

    #[derive(Debug, Default)]
    struct Counts {
        refs_read: AtomicU64,
        objects_read: AtomicU64,
        keys_listed: AtomicU64,
        deleted: AtomicU64,
    }

    impl Counts {
        fn get(&self) -> StorageCalls {
            StorageCalls {
                refs_read: self.refs_read.load(Ordering::Relaxed),
                objects_read: self.objects_read.load(Ordering::Relaxed),
                keys_listed: self.keys_listed.load(Ordering::Relaxed),
                deleted: self.deleted.load(Ordering::Relaxed),
            }
        }
    }

    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A store that counts what is asked of it.
    #[derive(Debug)]
    struct Counted {
        inner: Arc<dyn Storage>,
        counts: Counts,
    }

    #[async_trait::async_trait]
    impl Storage for Counted {
        fn location(&self) -> String {
            self.inner.location()
        }

        async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, storage::Error> {
            let found = self.inner.get_many(keys).await?;
            add(&self.counts.objects_read, keys.len());
            Ok(found)
        }

        async fn put_many(&self, objects: Vec<Object>) -> Result<(), storage::Error> {
            self.inner.put_many(objects).await
        }

        async fn list(&self, prefix: &str) -> Result<Vec<Listed>, storage::Error> {
            let listed = self.inner.list(prefix).await?;
            add(&self.counts.keys_listed, listed.len());
            Ok(listed)
        }

        async fn delete(&self, keys: &[String]) -> Result<(), storage::Error> {
            self.inner.delete(keys).await?;
            add(&self.counts.deleted, keys.len());
            Ok(())
        }

        async fn read_ref(&self, key: &str) -> Result<Option<RefState>, storage::Error> {
            let state = self.inner.read_ref(key).await?;
            add(&self.counts.refs_read, 1);
            Ok(state)
        }

        async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, storage::Error> {
            self.inner.cas_ref(cas).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_named() {
        for kind in [EngineKind::Component, EngineKind::Native] {
            assert_eq!(kind.as_str().parse::<EngineKind>().expect("a name"), kind);
        }
        let err = "jit".parse::<EngineKind>().expect_err("not an engine");
        assert!(err.to_string().contains("\"jit\""), "{err}");
        assert_eq!(
            EngineKind::default() == EngineKind::Component,
            cfg!(feature = "component")
        );
    }
}
