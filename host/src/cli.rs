//! What the `snapgit` command does, as a library: open a store by URL, then one method
//! per command, each returning a [`Report`] the binary prints as text or JSON.
//!
//! The binary (`src/bin/snapgit.rs`) only parses arguments and prints; everything here
//! is callable from tests and other programs.
//!
//! - A store is named by URL ([`crate::storage::open`]): a folder (the default,
//!   [`DEFAULT_STORE`] in the current directory), `file:///abs/path`, `s3://bucket/prefix`,
//!   `gs://…`, `az://…`, or `memory:`.
//! - Every command works on one repo of the store ([`DEFAULT_REPO`] unless named).
//! - A ref is a branch of that repo or a full commit id.
//! - Errors carry a stable [`Code`] and exit status ([`error`]).
//! - Core's operations run on the engine [`Config::engine`] names ([`engine`]): the core
//!   component under wasmtime (the default with the `component` feature), its compiled
//!   code cached in [`Config::cache_dir`], or native core. Both give the same reports.
//!
//! ```
//! use snapgit_host::cli::{CommitArgs, Config, Session};
//! use snapgit_core::commit::{Change, Signature};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), snapgit_host::cli::Error> {
//! let config = Config::new("memory:");
//! let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let (mut session, _) = Session::init(&config, "main", me.clone()).await?;
//! let mut args = CommitArgs::new("main", me, "turn 1");
//! args.changes.push(Change::put("memory.md", "# Memory\n"));
//! let report = session.commit(args).await?;
//! assert_eq!(report.changes.files_changed, 1);
//! let head = session.resolve("main").await?;
//! let log = session.log(&head, None, 10, None, false).await?;
//! assert_eq!(log.commits.len(), 2); // the commit, and the repo's first (empty) commit
//! # Ok(())
//! # }
//! ```

pub mod engine;
pub mod error;
pub mod input;
pub mod output;
pub mod worktree;

use std::{path::PathBuf, sync::Arc, time::Duration};

use bstr::{BString, ByteSlice};
use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    api::Request,
    commit::{Change, Signature},
    diff::tree as diff_tree,
    gc, history,
    merge::ConflictPolicy,
    read,
    remote::client::{self, Remote},
    repo::{self, AdminOutput, CommitOutput, CommitRequest, RepoOp, RestoreRequest, Start},
    step::Misuse,
    worktree::{CheckoutPlan, CheckoutRequest, DiffRequest as FolderDiffRequest, Skip},
};

use engine::Engine;
pub use engine::{EngineKind, GcProgress};
pub use error::{Code, Error, exit_code};
pub use input::Inputs;
pub use output::Report;
use output::{
    BranchCreated, BranchJson, BranchList, CapReport, CatAllReport, CatReport, Changes, CommitJson, CommitReport,
    CompactReport, Deleted, DiffFormat, DiffReport, EntryJson, FetchReport, GcReport, InitReport, LogEntry, LogReport,
    LsReport, PruneReport, PushReport, RepoCreated, RepoList, RollbackReport, ShowReport, Skipped, StatusReport,
};

use crate::{
    lock::{Locks, redis::RedisLocks},
    storage::{self, Storage},
};

/// The store used when none is named: this folder in the current directory.
pub const DEFAULT_STORE: &str = ".snapgit";

/// The repo used when none is named.
pub const DEFAULT_REPO: &str = "default";

/// The branch used when none is named.
pub const DEFAULT_BRANCH: &str = "main";

/// How long a commit holds the branch's advisory lock, by default, when a lock service
/// is configured.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(30);

/// Where and how to open a store.
#[derive(Debug, Clone)]
pub struct Config {
    /// The store's URL, or a folder.
    pub store: String,
    /// The repo commands work on.
    pub repo: String,
    /// A Redis server for advisory locks (`redis://host:port/db`); `None` for none.
    pub redis_url: Option<String>,
    /// How long a commit holds the branch's lock.
    pub lock_ttl: Duration,
    /// Backend options (credentials, limits).
    pub storage: storage::Options,
    /// What runs core's operations: the component under wasmtime (the default when
    /// built with the `component` feature) or core compiled in.
    pub engine: EngineKind,
    /// Where the component's compiled code is kept between processes; `None` compiles
    /// it in every process.
    pub cache_dir: Option<PathBuf>,
}

impl Config {
    /// The store at `store`, repo [`DEFAULT_REPO`], no locks, the default engine,
    /// storage options and cache folder from the environment
    /// ([`engine::default_cache_dir`]).
    pub fn new(store: impl Into<String>) -> Self {
        Config {
            store: store.into(),
            repo: DEFAULT_REPO.into(),
            redis_url: None,
            lock_ttl: DEFAULT_LOCK_TTL,
            storage: storage::Options::from_env(),
            engine: EngineKind::DEFAULT,
            cache_dir: engine::default_cache_dir(),
        }
    }
}

/// The folder a store URL names, if it names one.
pub fn local_folder(url: &str) -> Result<Option<PathBuf>, Error> {
    crate::storage::check_url(url).map_err(|err| Error::invalid(err.to_string()))?;
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|s| s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)));
    match scheme {
        None => Ok(Some(PathBuf::from(url))),
        Some("file") => {
            let parsed =
                url::Url::parse(url).map_err(|err| Error::invalid(format!("invalid store URL {url:?}: {err}")))?;
            let path = parsed.to_file_path().map_err(|()| {
                Error::invalid(format!(
                    "{url:?} does not name a local folder (use file:///absolute/path)"
                ))
            })?;
            Ok(Some(path))
        }
        Some(_) => Ok(None),
    }
}

/// What a commit takes.
#[derive(Debug, Clone)]
pub struct CommitArgs {
    /// The branch; it must exist.
    pub branch: String,
    /// Changes given directly (files from stdin, deletes, renames, files read with
    /// [`Inputs::collect`]).
    pub changes: Vec<Change>,
    /// Folders (repo paths; empty for the root) to mirror: files on the branch below
    /// them that are not among `changes` are deleted.
    pub sync: Vec<BString>,
    /// Local files passed over, reported back.
    pub skipped: Vec<(BString, Skip)>,
    /// Who.
    pub author: Signature,
    /// The message.
    pub message: String,
    /// Fail with `HEAD_MOVED` instead of replaying onto a branch that is not here.
    pub expect_head: Option<ObjectId>,
    /// How to settle a path changed on both sides during a replay.
    pub on_conflict: ConflictPolicy,
    /// Commit even when nothing changes.
    pub allow_empty: bool,
    /// Attempts before giving up the race.
    pub max_attempts: u32,
}

impl CommitArgs {
    /// A commit to `branch`, no changes yet, conflicts failing.
    pub fn new(branch: impl Into<String>, author: Signature, message: impl Into<String>) -> Self {
        CommitArgs {
            branch: branch.into(),
            changes: Vec::new(),
            sync: Vec::new(),
            skipped: Vec::new(),
            author,
            message: message.into(),
            expect_head: None,
            on_conflict: ConflictPolicy::Fail,
            allow_empty: false,
            max_attempts: repo::DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// What a rollback takes besides the folder.
#[derive(Debug, Clone)]
pub struct Rollback {
    /// The commit to bring back.
    pub target: ObjectId,
    /// Only this file or folder of it.
    pub path: Option<BString>,
    /// The undo snapshot: branch, author, message.
    pub undo: CommitArgs,
    /// Set to stop between two files.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// The lock service of `config` (Redis), if it names one, with its locks kept apart from
/// other stores'.
pub async fn open_locks(config: &Config, storage: &dyn Storage) -> Result<Option<Arc<dyn Locks>>, Error> {
    Ok(match &config.redis_url {
        Some(url) => {
            let locks = RedisLocks::connect(url).await?;
            // Core names locks by repo and branch only; keep stores apart.
            Some(Arc::new(locks.with_prefix(format!("snapgit:{}:", storage.location()))))
        }
        None => None,
    })
}

/// The store of `config` opened for a server: a folder store must exist already.
pub fn open_store(config: &Config) -> Result<Arc<dyn Storage>, Error> {
    require_folder_store(config)?;
    Ok(storage::open(&config.store, &config.storage)?)
}

/// A folder store must exist: opening a folder creates it, and a typo must not leave a
/// new store behind.
fn require_folder_store(config: &Config) -> Result<(), Error> {
    if let Some(folder) = local_folder(&config.store)?
        && (!folder.join("HEAD").is_file() || !folder.join("objects").is_dir())
    {
        return Err(Error::NoStore {
            location: folder.display().to_string(),
        });
    }
    Ok(())
}

/// An open store and the repo commands work on, with the engine that runs core's
/// operations (the native engine keeps a cache as long as the session, so a second
/// operation reads only what the first did not).
#[derive(Debug)]
pub struct Session {
    engine: Engine,
    repo: String,
    lock_ttl_ms: Option<u64>,
}

impl Session {
    /// Open an existing store. A folder store must exist already (nothing is created);
    /// an object-storage store is not contacted until the first command.
    pub async fn open(config: &Config) -> Result<Self, Error> {
        require_folder_store(config)?;
        Self::connect(config).await
    }

    /// Open a store, creating it if it is a folder that does not exist yet (`import`).
    pub async fn create(config: &Config) -> Result<Self, Error> {
        Self::connect(config).await
    }

    async fn connect(config: &Config) -> Result<Self, Error> {
        repo::RepoOp::list_branches(&config.repo)?;
        let storage = storage::open(&config.store, &config.storage)?;
        let locks = open_locks(config, storage.as_ref()).await?;
        let lock_ttl_ms = locks
            .as_ref()
            .map(|_| u64::try_from(config.lock_ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        let engine = Engine::new(config.engine, storage, locks, config.cache_dir.as_deref())?;
        Ok(Session {
            engine,
            repo: config.repo.clone(),
            lock_ttl_ms,
        })
    }

    /// Create the store if missing, and its repo with an empty first commit on `branch`
    /// if missing. Running it again changes nothing.
    pub async fn init(config: &Config, branch: &str, author: Signature) -> Result<(Self, InitReport), Error> {
        // Refuse bad names and signatures before the store's folder is created.
        let probe = ObjectCache::new(HashKind::Sha1);
        RepoOp::create_repo(&probe, &config.repo, branch, Vec::new(), author.clone(), "init")?;
        let mut session = Self::connect(config).await?;
        let (commit, created) = match session.read_head(branch).await {
            Ok(head) => (head.to_string(), false),
            // No such branch: the repo must not exist either (or the branch is a typo).
            Err(err) if err.code() == Code::NotFound => match session.branch_names().await {
                Ok(_) => {
                    return Err(Error::Repo(repo::Error::RepoExists {
                        repo: session.repo.clone(),
                    }));
                }
                Err(err) if err.code() == Code::NotFound => {
                    let repo = session.repo.clone();
                    let created = session.create_repo(&repo, branch, Vec::new(), author, "init").await?;
                    (created.commit, true)
                }
                Err(err) => return Err(err),
            },
            Err(err) => return Err(err),
        };
        let report = InitReport {
            store: session.engine.storage().location(),
            repo: session.repo.clone(),
            branch: branch.to_owned(),
            commit,
            created,
        };
        Ok((session, report))
    }

    /// The store.
    pub fn storage(&self) -> &dyn Storage {
        self.engine.storage().as_ref()
    }

    /// The repo commands work on.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The engine that runs the operations.
    pub fn engine(&self) -> EngineKind {
        self.engine.kind()
    }

    /// One of the small repo operations, and what it gave.
    async fn admin(&mut self, request: Request) -> Result<AdminOutput, Error> {
        self.engine.call(request).await
    }

    async fn read_head(&mut self, branch: &str) -> Result<ObjectId, Error> {
        let request = Request::ReadHead {
            repo: self.repo.clone(),
            branch: branch.to_owned(),
        };
        match self.admin(request).await? {
            AdminOutput::Head(head) => Ok(head),
            _ => Err(Misuse("read-head").into()),
        }
    }

    async fn read_commit(&mut self, commit: ObjectId) -> Result<read::CommitInfo, Error> {
        self.engine.call(Request::ReadCommit { commit }).await
    }

    /// The commit a ref names, by core's rules ([`snapgit_core::rev`]): a branch or tag of
    /// the repo, a full or abbreviated commit id, then `~N` and `^N` steps, as in git.
    pub async fn resolve(&mut self, name: &str) -> Result<ObjectId, Error> {
        let request = Request::Resolve {
            repo: self.repo.clone(),
            rev: name.to_owned(),
        };
        self.engine.call(request).await
    }

    async fn branch_names(&mut self) -> Result<Vec<String>, Error> {
        match self
            .admin(Request::ListBranches {
                repo: self.repo.clone(),
            })
            .await?
        {
            AdminOutput::Branches(names) => Ok(names),
            _ => Err(Misuse("list-branches").into()),
        }
    }

    /// `repo create`: a new repo with a first commit of `files` on `branch`.
    pub async fn create_repo(
        &mut self,
        name: &str,
        branch: &str,
        files: Vec<Change>,
        author: Signature,
        message: &str,
    ) -> Result<RepoCreated, Error> {
        let request = Request::CreateRepo {
            repo: name.to_owned(),
            branch: branch.to_owned(),
            files,
            author,
            message: message.to_owned(),
        };
        let AdminOutput::Created { commit, files } = self.admin(request).await? else {
            return Err(Misuse("create-repo").into());
        };
        Ok(RepoCreated {
            repo: name.to_owned(),
            branch: branch.to_owned(),
            commit: commit.to_string(),
            changes: Changes::new(&files),
        })
    }

    /// `repo list`.
    pub async fn list_repos(&mut self) -> Result<RepoList, Error> {
        match self.admin(Request::ListRepos).await? {
            AdminOutput::Repos(repos) => Ok(RepoList { repos }),
            _ => Err(Misuse("list-repos").into()),
        }
    }

    /// `repo delete`: every ref of the repo (its objects go at the next GC).
    pub async fn delete_repo(&mut self, name: &str) -> Result<Deleted, Error> {
        match self.admin(Request::DeleteRepo { repo: name.to_owned() }).await? {
            AdminOutput::Deleted(refs) => Ok(Deleted { refs }),
            _ => Err(Misuse("delete-repo").into()),
        }
    }

    /// `branch list`: each branch with its head.
    pub async fn list_branches(&mut self) -> Result<BranchList, Error> {
        let mut branches = Vec::new();
        for name in self.branch_names().await? {
            match self.read_head(&name).await {
                Ok(head) => branches.push(BranchJson {
                    name,
                    head: head.to_string(),
                }),
                // Deleted between the listing and the read.
                Err(err) if err.code() == Code::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(BranchList {
            repo: self.repo.clone(),
            branches,
        })
    }

    /// `branch create`: `branch` at `start` (a ref).
    pub async fn create_branch(&mut self, branch: &str, start: &str) -> Result<BranchCreated, Error> {
        let start = self.resolve(start).await?;
        let request = Request::CreateBranch {
            repo: self.repo.clone(),
            branch: branch.to_owned(),
            start: Start::Commit(start),
        };
        let AdminOutput::BranchCreated(commit) = self.admin(request).await? else {
            return Err(Misuse("create-branch").into());
        };
        Ok(BranchCreated {
            branch: branch.to_owned(),
            commit: commit.to_string(),
        })
    }

    /// `branch delete`.
    pub async fn delete_branch(&mut self, branch: &str) -> Result<Deleted, Error> {
        let request = Request::DeleteBranch {
            repo: self.repo.clone(),
            branch: branch.to_owned(),
        };
        match self.admin(request).await? {
            AdminOutput::Deleted(refs) => Ok(Deleted { refs }),
            _ => Err(Misuse("delete-branch").into()),
        }
    }

    /// `commit`: the changes onto the branch, with compare-and-swap and replay.
    pub async fn commit(&mut self, mut args: CommitArgs) -> Result<CommitReport, Error> {
        if !args.sync.is_empty() {
            let deletes = self.sync_deletes(&args).await?;
            args.changes.extend(deletes);
        }
        if args.changes.is_empty() && !args.allow_empty {
            return Err(Error::invalid(
                "nothing to commit: name files or folders, or use --stdin, --delete or --rename",
            ));
        }
        let skipped = skipped(&args.skipped);
        let (branch, message, author) = (args.branch.clone(), args.message.clone(), args.author.clone());
        let mut request = CommitRequest::new(self.repo.clone(), args.branch, args.changes, args.author, args.message);
        request.allow_empty = args.allow_empty;
        request.expected_head = args.expect_head;
        request.on_conflict = args.on_conflict;
        request.max_attempts = args.max_attempts;
        request.lock_ttl_ms = self.lock_ttl_ms;
        match self.engine.call(Request::Commit(request)).await {
            Ok(out) => Ok(commit_report(&self.repo, &branch, &message, &author, out, skipped)),
            Err(err) if err.code() == Code::EmptyCommit => {
                let head = self.read_head(&branch).await?;
                self.unchanged(head, branch, message, &author, skipped).await
            }
            Err(err) => Err(err),
        }
    }

    /// The report of a commit that found nothing to change: the branch stays at `head`.
    async fn unchanged(
        &mut self,
        head: ObjectId,
        branch: String,
        message: String,
        author: &Signature,
        skipped: Vec<Skipped>,
    ) -> Result<CommitReport, Error> {
        let info = self.read_commit(head).await?;
        Ok(CommitReport {
            repo: self.repo.clone(),
            branch,
            commit: head.to_string(),
            parent: info.parents.first().map(ToString::to_string),
            tree: info.tree.to_string(),
            created: false,
            message,
            author: author.into(),
            attempts: 1,
            objects_written: 0,
            bytes_written: 0,
            locked: false,
            settled: Vec::new(),
            skipped,
            changes: Changes::new(&[]),
        })
    }

    /// A snapshot of a folder (`scope` of it: a repo path, empty for all) as a commit on
    /// `args.branch`: the branch's tree below `scope` becomes the folder's. Only files
    /// whose stat changed since the last snapshot are read and hashed ([`worktree`]);
    /// core compares the folder with the head reading only folders that differ; the
    /// commit carries only what changed. What the scan skipped is no change to core, so
    /// never deleted. Saves the stat cache once the commit landed. Returns the scan as
    /// well.
    pub async fn snapshot(
        &mut self,
        folder: &worktree::Folder,
        scope: &bstr::BStr,
        cache: &worktree::CacheFile,
        args: CommitArgs,
    ) -> Result<(CommitReport, worktree::Scan), Error> {
        if !scope.is_empty() {
            snapgit_core::path::validate(scope, false).map_err(|err| Error::invalid(err.to_string()))?;
        }
        let kind = HashKind::Sha1;
        let (known, scan) = folder.scan_loading(scope, || cache.load(kind), kind)?;
        let report = self.commit_scan(folder, scope, cache, &known, &scan, args).await?;
        Ok((report, scan))
    }

    /// Commit what a scan found (see [`Session::snapshot`]).
    async fn commit_scan(
        &mut self,
        folder: &worktree::Folder,
        scope: &bstr::BStr,
        cache: &worktree::CacheFile,
        known: &snapgit_core::worktree::StatCache,
        scan: &worktree::Scan,
        mut args: CommitArgs,
    ) -> Result<CommitReport, Error> {
        let kind = HashKind::Sha1;
        let head = self.read_head(&args.branch).await?;
        // Folders the stat cache knows unchanged go whole: only what changed is compared.
        // A folder's tree that storage lacks (a replay merged other writers' changes into
        // it) fails the comparison as corrupt: then every file goes.
        let mut whole = true;
        let changed: Vec<snapgit_core::diff::FileChange> = loop {
            let files = if whole {
                let files = scan.collapsed(known, false);
                // The head's trees the cache can vouch for (it was most likely written
                // for the head) need not be read, by this comparison or the commit.
                self.engine.keep(|| known.known_trees(&files));
                files
            } else {
                scan.files(false)
            };
            let mut request = FolderDiffRequest::new(head, files);
            request.path = (!scope.is_empty()).then(|| scope.to_owned());
            request.renames = false;
            request.line_stats = false;
            // What the scan skipped is no change: the branch keeps it.
            request.untracked = scan.untracked();
            match self.engine.call(Request::DiffFolder(request)).await {
                Ok(out) => {
                    let out: diff_tree::Output = out;
                    break out.files;
                }
                // Neither the branch nor the folder has the path: nothing to do.
                Err(err) if err.code() == Code::NotFound && !scope.is_empty() && scan.files.is_empty() => {
                    break Vec::new();
                }
                Err(err) if whole && err.code() == Code::Corrupt => whole = false,
                Err(err) => return Err(err),
            }
        };
        let found: std::collections::HashMap<&BString, &worktree::Found> =
            scan.files.iter().map(|f| (&f.file.path, f)).collect();
        let mut stale = std::collections::HashSet::new();
        for file in changed {
            match (file.new, found.get(&file.path)) {
                (Some(_), Some(found)) => {
                    let data = match &found.file.data {
                        Some(data) => data.clone(),
                        None => {
                            // Known by its stat but not on the branch (another writer moved
                            // it): read now, and cache it only if it still hashes the same.
                            let data = folder.read(file.path.as_bstr(), found.file.mode)?;
                            let id = snapgit_core::object::blob_id(kind, &data).ok();
                            if id != Some(found.file.id) {
                                stale.insert(file.path.clone());
                            }
                            data
                        }
                    };
                    args.changes.push(Change::Put {
                        path: file.path,
                        data,
                        mode: found.file.mode,
                    });
                }
                (None, _) => args.changes.push(Change::delete(file.path)),
                (Some(_), None) => {}
            }
        }
        args.skipped.extend(scan.skipped.iter().cloned());
        let report = if args.changes.is_empty() && !args.allow_empty {
            let skipped = skipped(&args.skipped);
            self.unchanged(head, args.branch, args.message, &args.author, skipped)
                .await?
        } else {
            self.commit(args).await?
        };
        // Rewritten (with every folder's tree worked out again) only when it learnt
        // something. A cache that cannot be written costs only speed on the next snapshot.
        if scan.hashed > 0 || !stale.is_empty() || scan.cached != scan.files.len() {
            let _ = cache.save(&scan.cache(kind, &stale));
        }
        Ok(report)
    }

    /// `diff --worktree`: the commit against the folder as it is now (`path` of it), as
    /// `git diff <commit>` in a work tree of the folder reports it.
    pub async fn diff_worktree(
        &mut self,
        commit: &ObjectId,
        folder: &worktree::Folder,
        cache: &worktree::CacheFile,
        path: Option<BString>,
        format: DiffFormat,
    ) -> Result<DiffReport, Error> {
        let scope = path.clone().unwrap_or_default();
        if !scope.is_empty() {
            snapgit_core::path::validate(scope.as_bstr(), false).map_err(|err| Error::invalid(err.to_string()))?;
        }
        let kind = HashKind::Sha1;
        let (mut stat_cache, mut scan) = folder.scan_loading(scope.as_bstr(), || cache.load(kind), kind)?;
        let mut cached = !stat_cache.is_empty();

        loop {
            // What the scan leaves out is no change: a snapshot keeps the commit's.
            let untracked = scan.untracked();
            let left_out = skipped(&scan.skipped);
            let mut request = FolderDiffRequest::new(*commit, scan.into_collapsed(&stat_cache));
            // The commit's trees the cache can vouch for (it was most likely written for
            // this commit) need not be read.
            self.engine.keep(|| stat_cache.known_trees(&request.files));
            request.path = path.clone().filter(|p| !p.is_empty());
            request.patch = format.patch;
            request.untracked = untracked;
            match self.engine.call(Request::DiffFolder(request)).await {
                Ok(out) => {
                    let out: diff_tree::Output = out;
                    return Ok(DiffReport {
                        from: out.from.map(|id| id.to_string()),
                        to: out.to.to_string(),
                        changes: Changes::new(&out.files),
                        patch: out.patch.as_ref().map(|p| p.to_str_lossy().into_owned()),
                        skipped: Some(left_out),
                        patch_bytes: out.patch,
                        format,
                    });
                }
                // A file the stat cache knew whose blob storage no longer has (gc after a
                // prune): hash the whole folder once more, with content.
                Err(err) if cached && err.code() == Code::Corrupt => {
                    cached = false;
                    stat_cache = snapgit_core::worktree::StatCache::new(kind);
                    scan = folder.scan(scope.as_bstr(), &stat_cache, kind)?;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// `rollback`: plan it, take a snapshot of the folder (the undo checkpoint, on
    /// `args.branch`), then bring `target`'s tree (or `path` of it) into the folder:
    /// tracked files the target lacks are deleted, files it has are written (to a
    /// temporary name, then renamed), untracked and excluded files are never touched.
    /// Core refuses unsafe entries before anything is written.
    pub async fn rollback(
        &mut self,
        folder: &worktree::Folder,
        cache: &worktree::CacheFile,
        rollback: Rollback,
        on_file: impl FnMut(&bstr::BStr) + Send + 'static,
    ) -> Result<RollbackReport, Error> {
        let Rollback {
            target,
            path,
            undo: args,
            cancel,
        } = rollback;
        let target = &target;
        let kind = HashKind::Sha1;
        let root = bstr::BStr::new("");
        let (known, scan) = folder.scan_loading(root, || cache.load(kind), kind)?;
        // Planned first: a refused rollback leaves the branch and the folder as they were.
        let mut request = CheckoutRequest::new(*target, scan.files(false));
        request.path = path.filter(|p| !p.is_empty());
        request.untracked = scan.untracked();
        let plan: CheckoutPlan = self.engine.call(Request::Checkout(request)).await?;
        let undo = self.commit_scan(folder, root, cache, &known, &scan, args).await?;
        let (unchanged, submodules, planned) = (
            plan.unchanged,
            plan.submodules.iter().map(|p| p.to_str_lossy().into_owned()).collect(),
            plan.deletes.len() + plan.writes.len(),
        );
        // The folder's IO off the async thread, so that a cancellation is seen between files.
        let applier = folder.clone();
        let (plan, applied) = tokio::task::spawn_blocking(move || {
            let applied = applier.apply(&plan, &cancel, on_file);
            (plan, applied)
        })
        .await
        .map_err(|err| Error::invalid(format!("the rollback's writer failed: {err}")))?;
        let applied = applied?;
        // The stat cache now: what the scan found, less what went, plus what was written.
        let gone: std::collections::HashSet<&BString> =
            plan.deletes.iter().chain(plan.writes.iter().map(|w| &w.path)).collect();
        let mut entries: Vec<_> = scan
            .files
            .iter()
            .filter(|f| !gone.contains(&f.file.path))
            .map(|f| (f.file.path.clone(), f.stat, f.file.id))
            .collect();
        let written: Vec<String> = applied
            .written
            .iter()
            .map(|w| w.0.to_str_lossy().into_owned())
            .collect();
        entries.extend(applied.written);
        let _ = cache.save(&snapgit_core::worktree::StatCache::from_files(HashKind::Sha1, entries).with_folder_trees());
        Ok(RollbackReport {
            target: target.to_string(),
            undo: undo.commit,
            undo_created: undo.created,
            complete: applied.complete,
            planned,
            written,
            deleted: applied.deleted.iter().map(|p| p.to_str_lossy().into_owned()).collect(),
            unchanged,
            submodules,
            skipped: undo.skipped,
        })
    }

    /// The deletes that make each synced folder on the branch hold only the files put.
    async fn sync_deletes(&mut self, args: &CommitArgs) -> Result<Vec<Change>, Error> {
        let head = self.read_head(&args.branch).await?;
        let named: std::collections::HashSet<&BString> = args
            .changes
            .iter()
            .map(|c| match c {
                Change::Put { path, .. } | Change::Delete { path } => path,
                Change::Rename { to, .. } => to,
            })
            .collect();
        let renamed_from: std::collections::HashSet<&BString> = args
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Rename { from, .. } => Some(from),
                _ => None,
            })
            .collect();
        let skipped: std::collections::HashSet<&BString> = args.skipped.iter().map(|(p, _)| p).collect();
        let mut deletes = Vec::new();
        for folder in &args.sync {
            let request = Request::ListTree {
                commit: head,
                path: folder.clone(),
                recursive: true,
            };
            let entries: Vec<read::Entry> = match self.engine.call(request).await {
                Ok(entries) => entries,
                // Not on the branch yet: nothing to delete below it.
                Err(err) if err.code() == Code::NotFound => continue,
                Err(err) => return Err(err),
            };
            for entry in entries {
                let gone = !named.contains(&entry.path)
                    && !renamed_from.contains(&entry.path)
                    && !skipped.contains(&entry.path);
                if gone && entry.mode.is_file() {
                    deletes.push(Change::delete(entry.path));
                }
            }
        }
        Ok(deletes)
    }

    /// `restore`: a new commit on the branch whose tree (or `path`) equals `target`'s.
    pub async fn restore(
        &mut self,
        branch: &str,
        target: &str,
        path: Option<BString>,
        author: Signature,
        message: Option<String>,
        expect_head: Option<ObjectId>,
    ) -> Result<CommitReport, Error> {
        let target = self.resolve(target).await?;
        let mut request = RestoreRequest::new(self.repo.clone(), branch, target, author.clone());
        request.path = path.filter(|p| !p.is_empty());
        request.message = message;
        request.expected_head = expect_head;
        request.lock_ttl_ms = self.lock_ttl_ms;
        let out: CommitOutput = self.engine.call(Request::Restore(request)).await?;
        let info = self.read_commit(out.commit).await?;
        Ok(commit_report(
            &self.repo,
            branch,
            &info.message,
            &author,
            out,
            Vec::new(),
        ))
    }

    /// `log`: a page of history from `start`, newest first.
    pub async fn log(
        &mut self,
        start: &ObjectId,
        path: Option<BString>,
        limit: usize,
        cursor: Option<String>,
        all_parents: bool,
    ) -> Result<LogReport, Error> {
        let mut request = history::Request::new(*start, limit);
        request.path = path.filter(|p| !p.is_empty());
        request.cursor = cursor.map(history::Cursor::from);
        if all_parents {
            request = request.all_parents();
        }
        let page: history::Page = self.engine.call(Request::Log(request)).await?;
        Ok(LogReport {
            commits: page.commits.iter().map(|c| LogEntry::new(c, None)).collect(),
            next: page.next.map(|c| c.to_string()),
            oneline: false,
        })
    }

    /// `log --path FILE --numstat`: the commits that changed the file, newest first, each
    /// with the file's change and line counts.
    pub async fn file_log(
        &mut self,
        start: &ObjectId,
        path: BString,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<LogReport, Error> {
        let mut request = history::Request::new(*start, limit);
        request.path = Some(path);
        request.cursor = cursor.map(history::Cursor::from);
        let page: history::FilePage = self.engine.call(Request::FileLog(request)).await?;
        Ok(LogReport {
            commits: page
                .commits
                .iter()
                .map(|c| LogEntry::new(&c.commit, Some(&c.change)))
                .collect(),
            next: page.next.map(|c| c.to_string()),
            oneline: false,
        })
    }

    /// `show`: a commit's metadata and what it changed against its first parent.
    pub async fn show(&mut self, commit: &ObjectId, patch: bool) -> Result<ShowReport, Error> {
        let info = self.read_commit(*commit).await?;
        let mut request = diff_tree::Request::new(None, *commit);
        request.patch = patch;
        let out: diff_tree::Output = self.engine.call(Request::Diff(request)).await?;
        Ok(ShowReport {
            commit: CommitJson::from(&info),
            changes: Changes::new(&out.files),
            patch: out.patch.as_ref().map(|p| p.to_str_lossy().into_owned()),
            patch_bytes: out.patch,
        })
    }

    /// `cat`: one file at a commit.
    pub async fn cat(&mut self, commit: &ObjectId, path: &str) -> Result<CatReport, Error> {
        let request = Request::ReadFile {
            commit: *commit,
            path: path.into(),
        };
        let file: read::File = self.engine.call(request).await?;
        Ok(CatReport::new(path.to_owned(), file.id, file.mode, file.data))
    }

    /// `cat -r`: every file below a folder at a commit (the root when `path` is empty).
    pub async fn cat_all(&mut self, commit: &ObjectId, path: &str) -> Result<CatAllReport, Error> {
        let request = Request::ReadFiles {
            commit: *commit,
            path: path.into(),
        };
        let files: Vec<read::FileWithPath> = self.engine.call(request).await?;
        Ok(CatAllReport {
            files: files
                .into_iter()
                .map(|f| CatReport::new(f.path.to_string(), f.file.id, f.file.mode, f.file.data))
                .collect(),
        })
    }

    /// `ls`: a folder at a commit (the root when `path` is empty), without reading blobs.
    pub async fn ls(&mut self, commit: &ObjectId, path: &str, recursive: bool) -> Result<LsReport, Error> {
        let request = Request::ListTree {
            commit: *commit,
            path: path.into(),
            recursive,
        };
        let entries: Vec<read::Entry> = self.engine.call(request).await?;
        Ok(LsReport {
            commit: commit.to_string(),
            entries: entries.iter().map(EntryJson::from).collect(),
        })
    }

    /// `diff`: `from` (or the first parent of `to`) against `to`.
    pub async fn diff(
        &mut self,
        from: Option<ObjectId>,
        to: &ObjectId,
        path: Option<BString>,
        format: DiffFormat,
    ) -> Result<DiffReport, Error> {
        let mut request = diff_tree::Request::new(from, *to);
        request.path = path.filter(|p| !p.is_empty());
        request.patch = format.patch;
        let out: diff_tree::Output = self.engine.call(Request::Diff(request)).await?;
        Ok(DiffReport {
            from: out.from.map(|id| id.to_string()),
            to: out.to.to_string(),
            changes: Changes::new(&out.files),
            patch: out.patch.as_ref().map(|p| p.to_str_lossy().into_owned()),
            skipped: None,
            patch_bytes: out.patch,
            format,
        })
    }

    /// `prune`: keep the last `keep_last` commits and/or those of the last `keep_within`
    /// on `branch`, rewriting older history away.
    pub async fn prune(
        &mut self,
        branch: &str,
        keep_last: Option<usize>,
        keep_within: Option<Duration>,
    ) -> Result<PruneReport, Error> {
        let retention = gc::Retention {
            keep_last,
            keep_within: keep_within.map(|d| gc::Within {
                duration_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                now_ms: crate::util::now_ms(),
            }),
        };
        let request = gc::PruneRequest::new(self.repo.clone(), branch, retention);
        let pruned: gc::Pruned = self.engine.call(Request::Prune(request)).await?;
        Ok(PruneReport::from(&pruned))
    }

    /// `gc`: delete the objects no ref of any repo reaches and that are older than
    /// `grace`, calling `on_progress` as it goes.
    pub async fn gc(
        &mut self,
        grace: Duration,
        mut on_progress: impl FnMut(GcProgress<'_>) + Send,
    ) -> Result<GcReport, Error> {
        let mut options = gc::CollectOptions::new(crate::util::now_ms());
        options.grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let output = self.engine.run(Request::Collect(options), &mut on_progress).await?;
        let collected = gc::Collected::try_from(output).map_err(|_| Error::from(Misuse("gc")))?;
        Ok(GcReport::from(&collected))
    }

    /// `compact`: pack the reachable loose objects with deltas, merge small packs, and
    /// delete the copies a pack older than `grace` holds, calling `on_progress` as it goes;
    /// `tune` sets the rest of core's options (thresholds, window, depth, factor).
    pub async fn compact(
        &mut self,
        grace: Duration,
        tune: impl FnOnce(&mut gc::CompactOptions),
        mut on_progress: impl FnMut(GcProgress<'_>) + Send,
    ) -> Result<CompactReport, Error> {
        let mut options = gc::CompactOptions::new(crate::util::now_ms());
        options.grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        tune(&mut options);
        let output = self.engine.run(Request::Compact(options), &mut on_progress).await?;
        let compacted = gc::Compacted::try_from(output).map_err(|_| Error::from(Misuse("compact")))?;
        Ok(CompactReport(compacted))
    }

    /// `cap`: keep the whole store under `max_bytes` reachable, the oldest history
    /// pruned first, one commit per repo in turn, every branch keeping `keep_last`.
    pub async fn cap(
        &mut self,
        max_bytes: u64,
        keep_last: usize,
        mut on_progress: impl FnMut(GcProgress<'_>) + Send,
    ) -> Result<CapReport, Error> {
        let request = gc::CapRequest {
            keep_last,
            ..gc::CapRequest::new(max_bytes)
        };
        let output = self.engine.run(Request::Cap(request), &mut on_progress).await?;
        let capped = gc::Capped::try_from(output).map_err(|_| Error::from(Misuse("cap")))?;
        Ok(CapReport(capped))
    }

    /// `push`: send `branch` to the git remote at `url` (its `remote_ref`, by default the
    /// branch of the same name), fast-forward only unless `force`.
    pub async fn push(
        &mut self,
        remote: Remote,
        branch: &str,
        remote_ref: Option<String>,
        force: bool,
    ) -> Result<PushReport, Error> {
        let request = client::PushRequest {
            repo: self.repo.clone(),
            branch: branch.to_owned(),
            remote,
            remote_ref,
            force,
        };
        Ok(PushReport(self.engine.call(Request::Push(request)).await?))
    }

    /// `fetch` and `import`: bring `refs` of the git remote at `url` (every branch and
    /// tag when empty) into the repo, fast-forward only unless `force`; with `into`, the
    /// one ref goes to that branch; `cut` makes it shallow or partial.
    pub async fn fetch(
        &mut self,
        remote: Remote,
        refs: Vec<String>,
        into: Option<String>,
        force: bool,
        cut: Cut,
    ) -> Result<FetchReport, Error> {
        let request = client::FetchRequest {
            repo: self.repo.clone(),
            remote,
            refs,
            into,
            force,
            depth: cut.depth,
            filter: cut.filter,
        };
        Ok(FetchReport(self.engine.call(Request::Fetch(request)).await?))
    }

    /// `status`: objects and bytes in the store, per repo, and unreachable.
    pub async fn status(&mut self) -> Result<StatusReport, Error> {
        let report: gc::FootprintReport = self.engine.call(Request::Footprint).await?;
        Ok(StatusReport::new(self.storage().location(), &report))
    }
}

/// How `fetch` and `import` cut what they bring (`--depth`, `--filter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cut {
    /// A shallow fetch: this many commits of each ref's history.
    pub depth: Option<u32>,
    /// A partial fetch: `blob:none` or `blob:limit=<n>`.
    pub filter: Option<String>,
}

fn skipped(list: &[(BString, Skip)]) -> Vec<Skipped> {
    let mut out: Vec<Skipped> = list
        .iter()
        .map(|(path, reason)| Skipped {
            path: path.to_str_lossy().into_owned(),
            reason: reason.to_string(),
            excluded: matches!(reason, Skip::Excluded { .. }),
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn commit_report(
    repo: &str,
    branch: &str,
    message: &str,
    author: &Signature,
    out: CommitOutput,
    skipped: Vec<Skipped>,
) -> CommitReport {
    CommitReport {
        repo: repo.to_owned(),
        branch: branch.to_owned(),
        commit: out.commit.to_string(),
        parent: Some(out.parent.to_string()),
        tree: out.tree.to_string(),
        created: out.created,
        message: message.to_owned(),
        author: author.into(),
        attempts: out.attempts,
        objects_written: out.objects_written,
        bytes_written: out.bytes_written,
        locked: out.locked,
        settled: out.settled.iter().map(|c| c.path.to_str_lossy().into_owned()).collect(),
        skipped,
        changes: Changes::new(&out.files),
    }
}

/// Parse `Name <email>` into a signature at `seconds` (UTC).
pub fn parse_author(text: &str, seconds: i64) -> Result<Signature, Error> {
    let invalid = || Error::invalid(format!("invalid author {text:?}: expected \"Name <email>\""));
    let (name, rest) = text.split_once('<').ok_or_else(invalid)?;
    let email = rest.strip_suffix('>').ok_or_else(invalid)?;
    let name = name.trim();
    if name.is_empty() || email.contains(['<', '>']) {
        return Err(invalid());
    }
    Ok(Signature::new(name, email.trim(), seconds))
}

/// Parse a duration: a number with a unit, `s`, `m`, `h`, `d` or `w` (`90s`, `12h`,
/// `7d`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let invalid = || {
        Error::invalid(format!(
            "invalid duration {text:?}: expected e.g. 90s, 15m, 12h, 7d or 2w"
        ))
    };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(invalid()),
    };
    number.checked_mul(seconds).map(Duration::from_secs).ok_or_else(invalid)
}

/// Parse a size in bytes: a number with an optional unit, as git reads sizes (`k`, `m`,
/// `g`, `t` are powers of 1024), with `KiB`..`TiB` the same and `kB`..`TB` powers of 1000
/// (`500m`, `2GiB`, `500MB`, `1048576`).
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let invalid = || {
        Error::invalid(format!(
            "invalid size {text:?}: expected bytes, or e.g. 500m, 2GiB or 500MB"
        ))
    };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim();
    let (power, base) = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => (0, 1024u64),
        "k" | "kib" => (1, 1024),
        "m" | "mib" => (2, 1024),
        "g" | "gib" => (3, 1024),
        "t" | "tib" => (4, 1024),
        "kb" => (1, 1000),
        "mb" => (2, 1000),
        "gb" => (3, 1000),
        "tb" => (4, 1000),
        _ => return Err(invalid()),
    };
    number.checked_mul(base.pow(power)).ok_or_else(invalid)
}

/// The current time in seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    crate::util::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_and_durations_parse() {
        let sig = parse_author("Agent Smith <agent@example.com>", 5).expect("valid");
        assert_eq!(
            (sig.name.as_str(), sig.email.as_str()),
            ("Agent Smith", "agent@example.com")
        );
        assert!(parse_author("no email", 0).is_err());
        assert!(parse_author("<a@b>", 0).is_err());
        assert_eq!(parse_duration("90").expect("valid"), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").expect("valid"), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").expect("valid"), Duration::from_secs(604_800));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn sizes_parse_as_git_reads_them() {
        assert_eq!(parse_size("1048576").expect("valid"), 1 << 20);
        assert_eq!(parse_size("500m").expect("valid"), 500 << 20);
        assert_eq!(parse_size("2GiB").expect("valid"), 2 << 30);
        assert_eq!(parse_size("500MB").expect("valid"), 500_000_000);
        assert_eq!(parse_size("1k").expect("valid"), 1024);
        for bad in ["", "big", "5 pb", "-1", "1.5g", "99999999999999999999", "20000000t"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_stores_are_recognised() {
        assert_eq!(
            local_folder(".snapgit").expect("valid"),
            Some(PathBuf::from(".snapgit"))
        );
        assert_eq!(
            local_folder("file:///tmp/x").expect("valid"),
            Some(PathBuf::from("/tmp/x"))
        );
        assert_eq!(local_folder("s3://bucket/p").expect("valid"), None);
        assert_eq!(local_folder("memory:").expect("valid"), None);
        assert!(local_folder("file://host/x").is_err());
    }
}
