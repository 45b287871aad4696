//! Repositories in a store: create, list and delete repos, branches, heads, and commits
//! to a branch that never lose an update.
//!
//! A repo is a git namespace of the store (see [`crate::store`]). Every write is
//! optimistic: read the ref (or use the state the cache remembers), build, `Put` the new
//! objects, then compare-and-swap the ref. A lost swap reloads the head and replays the
//! change set onto it ([`crate::merge`]); retries are bounded. Locks are optional and only
//! reduce contention — the compare-and-swap stays the fence.

use bstr::BString;
use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    commit::{self, Change, Signature},
    diff::FileChange,
    merge::{self, Conflict, ConflictPolicy},
    object, order,
    policy::{Policy, Violation},
    restore,
    step::{Answer, CasOutcome, CasRef, Fetch, Listed, LockRequest, Misuse, Operation, RefState, Step, StorageError},
    store::{self, BranchName, NameError, RepoName},
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
    Build(#[from] commit::Error),
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

/// The default number of attempts a commit makes before giving up the race.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// A commit to a branch.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The repo.
    pub repo: String,
    /// The branch; it must exist.
    pub branch: String,
    /// The changes, as for [`commit::Request`].
    pub changes: Vec<Change>,
    /// Who wrote the change.
    pub author: Signature,
    /// Who committed it.
    pub committer: Signature,
    /// The message.
    pub message: String,
    /// Make a commit even when the tree does not change.
    pub allow_empty: bool,
    /// Count lines added and removed per file.
    pub line_stats: bool,
    /// Fail with [`Error::HeadMoved`] instead of replaying if the branch is not here.
    pub expected_head: Option<ObjectId>,
    /// How to settle a path changed on both sides during a replay.
    pub on_conflict: ConflictPolicy,
    /// Attempts before [`Error::LostRace`] (at least 1).
    pub max_attempts: u32,
    /// Take the branch's advisory lock for this long while committing. A busy lock is
    /// asked for again up to `max_attempts` times (drivers back off in between), then the
    /// commit goes ahead without it: the compare-and-swap stays the fence.
    pub lock_ttl_ms: Option<u64>,
    /// Rules the changes must follow.
    pub policy: Policy,
}

impl CommitRequest {
    /// A commit of `changes` to `repo`/`branch`, with the author as committer, line counts
    /// on, conflicts failing, no lock, and the default number of attempts.
    pub fn new(
        repo: impl Into<String>,
        branch: impl Into<String>,
        changes: Vec<Change>,
        author: Signature,
        message: impl Into<String>,
    ) -> Self {
        CommitRequest {
            repo: repo.into(),
            branch: branch.into(),
            changes,
            committer: author.clone(),
            author,
            message: message.into(),
            allow_empty: false,
            line_stats: true,
            expected_head: None,
            on_conflict: ConflictPolicy::Fail,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            lock_ttl_ms: None,
            policy: Policy::default(),
        }
    }
}

/// A restore on a branch: a new commit on its head whose tree (or one path) equals an
/// earlier commit's. History is never rewritten; a lost race rebuilds on the new head.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The repo.
    pub repo: String,
    /// The branch; it must exist.
    pub branch: String,
    /// The commit whose content comes back.
    pub target: ObjectId,
    /// Only this file or folder; `None` for the whole tree.
    pub path: Option<BString>,
    /// Who restores (also the committer).
    pub author: Signature,
    /// The message; `None` for one naming the path and the restored commit.
    pub message: Option<String>,
    /// Count lines added and removed per restored file.
    pub line_stats: bool,
    /// Fail with [`Error::HeadMoved`] if the branch is not here.
    pub expected_head: Option<ObjectId>,
    /// Attempts before [`Error::LostRace`] (at least 1).
    pub max_attempts: u32,
    /// Take the branch's advisory lock for this long while restoring.
    pub lock_ttl_ms: Option<u64>,
}

impl RestoreRequest {
    /// Restore all of `target` on `repo`/`branch`.
    pub fn new(repo: impl Into<String>, branch: impl Into<String>, target: ObjectId, author: Signature) -> Self {
        RestoreRequest {
            repo: repo.into(),
            branch: branch.into(),
            target,
            path: None,
            author,
            message: None,
            line_stats: true,
            expected_head: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            lock_ttl_ms: None,
        }
    }
}

/// A commit that landed on its branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutput {
    /// The branch's new head (or, when a replay found nothing left to do, its head).
    pub commit: ObjectId,
    /// Its tree.
    pub tree: ObjectId,
    /// The commit it was built on: the branch's previous head.
    pub parent: ObjectId,
    /// `false` when the branch already held every change (a retry after a lost reply, or
    /// another writer made the same change): nothing was written, `commit` is the head.
    pub created: bool,
    /// Every file that changed relative to `parent`, sorted by path.
    pub files: Vec<FileChange>,
    /// Attempts made (1 when no other writer interfered).
    pub attempts: u32,
    /// Conflicts settled by the policy during replays.
    pub settled: Vec<Conflict>,
    /// Objects written by the attempt that landed.
    pub objects_written: usize,
    /// Bytes written by the attempt that landed.
    pub bytes_written: u64,
    /// Whether the advisory lock was held.
    pub locked: bool,
}

/// A built commit waiting to be stored and published.
#[derive(Debug)]
struct Built {
    output: commit::Output,
    base: RefState,
    objects: usize,
    bytes: u64,
}

#[derive(Debug)]
enum Phase {
    Start,
    AwaitLock,
    Head,
    AwaitHead,
    RepoCheck,
    AwaitRepoCheck,
    Build(Builder, RefState),
    AwaitPut(Built),
    Cas(Built),
    AwaitCas(Built),
    Probe { base: RefState, theirs: RefState },
    Finish(Result<CommitOutput, Error>),
    AwaitUnlock(Result<CommitOutput, Error>),
    Finished,
}

/// What an attempt builds: a commit from changes, or a restore.
#[derive(Debug)]
enum Builder {
    Changes(Box<commit::Commit>),
    Restore(Box<restore::Restore>),
}

impl Builder {
    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<commit::Output>, Error> {
        match self {
            Builder::Changes(op) => Ok(op.poll(cache)?),
            Builder::Restore(op) => Ok(op.poll(cache)?),
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        match self {
            Builder::Changes(op) => Ok(op.provide(cache, objects)?),
            Builder::Restore(op) => Ok(op.provide(cache, objects)?),
        }
    }
}

/// Commit to a branch: the operation. Drive it like every [`Operation`]: poll until
/// `Done`, answer `Get` with `provide` and every other step with `answer`.
#[derive(Debug)]
pub struct Commit {
    repo: RepoName,
    branch: BranchName,
    key: String,
    request: CommitRequest,
    changes: Vec<Change>,
    restore: Option<RestoreRequest>,
    phase: Phase,
    attempts: u32,
    token: Option<String>,
    lock_tries: u32,
    /// Swaps retried because the ref changed version but not value.
    cas_retries: u32,
    settled: Vec<Conflict>,
    fetch: Fetch,
    hash_kind: gix_hash::Kind,
}

impl Commit {
    /// Validate names and policy; the changes themselves are validated when the first
    /// attempt is built, before anything is written.
    pub fn new(cache: &ObjectCache, request: CommitRequest) -> Result<Self, Error> {
        let repo = RepoName::new(request.repo.clone())?;
        let branch = BranchName::new(request.branch.clone())?;
        request.policy.check(&request.changes)?;
        // Validate the changes now, so bad input fails before any IO.
        commit::Commit::new(cache, build_request(&request, None, request.changes.clone()))?;
        Ok(Commit {
            key: repo.branch_key(&branch),
            repo,
            branch,
            changes: request.changes.clone(),
            restore: None,
            request,
            phase: Phase::Start,
            attempts: 0,
            token: None,
            lock_tries: 0,
            cas_retries: 0,
            settled: Vec::new(),
            fetch: Fetch::default(),
            hash_kind: cache.hash_kind(),
        })
    }

    /// Restore an earlier commit's content on a branch, with the same protocol as a
    /// commit: put the new objects, compare-and-swap the ref, rebuild on a lost race.
    /// If the branch already has that content the result has `created: false`.
    pub fn restore(cache: &ObjectCache, request: RestoreRequest) -> Result<Self, Error> {
        let mut template = CommitRequest::new(
            request.repo.clone(),
            request.branch.clone(),
            Vec::new(),
            request.author.clone(),
            request.message.clone().unwrap_or_default(),
        );
        template.expected_head = request.expected_head;
        template.max_attempts = request.max_attempts;
        template.lock_ttl_ms = request.lock_ttl_ms;
        template.line_stats = request.line_stats;
        let repo = RepoName::new(request.repo.clone())?;
        let branch = BranchName::new(request.branch.clone())?;
        // Validate path, signature and message now, so bad input fails before any IO.
        restore::Restore::new(cache, restore_request(&request, request.target))?;
        Ok(Commit {
            key: repo.branch_key(&branch),
            repo,
            branch,
            changes: Vec::new(),
            restore: Some(request),
            request: template,
            phase: Phase::Start,
            attempts: 0,
            token: None,
            lock_tries: 0,
            cas_retries: 0,
            settled: Vec::new(),
            fetch: Fetch::default(),
            hash_kind: cache.hash_kind(),
        })
    }

    fn begin(&mut self, cache: &ObjectCache, head: RefState) {
        self.attempts += 1;
        let builder = match &self.restore {
            Some(restore) => restore::Restore::new(cache, restore_request(restore, head.value))
                .map(|op| Builder::Restore(Box::new(op)))
                .map_err(Error::from),
            None => {
                let request = build_request(&self.request, Some(head.value), self.changes.clone());
                commit::Commit::new(cache, request)
                    .map(|op| Builder::Changes(Box::new(op)))
                    .map_err(Error::from)
            }
        };
        self.phase = match builder {
            Ok(op) => Phase::Build(op, head),
            Err(err) => Phase::Finish(Err(err)),
        };
    }

    /// The result when the branch already holds every change: no new commit.
    fn unchanged(&mut self, head: ObjectId, tree: ObjectId) -> CommitOutput {
        CommitOutput {
            commit: head,
            tree,
            parent: head,
            created: false,
            files: Vec::new(),
            attempts: self.attempts,
            settled: std::mem::take(&mut self.settled),
            objects_written: 0,
            bytes_written: 0,
            locked: self.token.is_some(),
        }
    }

    fn fail(&mut self, err: Error) {
        self.phase = Phase::Finish(Err(err));
    }

    /// After a lost race: decide what survives on `theirs`, or ask for what that needs.
    fn probe(
        &mut self,
        cache: &ObjectCache,
        base: &RefState,
        theirs: &RefState,
    ) -> Result<Option<Step<CommitOutput>>, Error> {
        self.fetch.reset_want();
        let paths = merge::all_touched(&self.changes);
        let base_tree = self.fetch.commit(cache, &base.value)?.map(|c| c.tree);
        let their_commit = self.fetch.commit(cache, &theirs.value)?;
        let (Some(base_tree), Some(their_commit)) = (base_tree, their_commit) else {
            return Ok(self.fetch.take_get());
        };
        let base_entries = merge::entries_at(&mut self.fetch, cache, &base_tree, &paths)?;
        let their_entries = merge::entries_at(&mut self.fetch, cache, &their_commit.tree, &paths)?;
        let (Some(base_entries), Some(their_entries)) = (base_entries, their_entries) else {
            return Ok(self.fetch.take_get());
        };
        let replay = merge::replay(
            self.hash_kind,
            &self.changes,
            &base_entries,
            &their_entries,
            self.request.on_conflict,
        )
        .map_err(|source| commit::Error::Collision {
            path: BString::default(),
            source,
        })?;
        match replay {
            Err(conflict) => self.fail(Error::Conflict(Box::new(conflict))),
            Ok(replay) => {
                self.settled.extend(replay.settled);
                if replay.changes.is_empty() && !self.request.allow_empty {
                    // Another writer already made every change: the branch has our intent.
                    self.phase = Phase::Finish(Ok(self.unchanged(theirs.value, their_commit.tree)));
                } else {
                    self.changes = replay.changes;
                    self.begin(cache, theirs.clone());
                }
            }
        }
        Ok(None)
    }
}

fn restore_request(request: &RestoreRequest, head: ObjectId) -> restore::Request {
    restore::Request {
        head,
        target: request.target,
        path: request.path.clone(),
        author: request.author.clone(),
        committer: request.author.clone(),
        message: request.message.clone(),
        allow_empty: false,
        line_stats: request.line_stats,
    }
}

fn build_request(request: &CommitRequest, parent: Option<ObjectId>, changes: Vec<Change>) -> commit::Request {
    commit::Request {
        parent,
        changes,
        author: request.author.clone(),
        committer: request.committer.clone(),
        message: request.message.clone(),
        allow_empty: request.allow_empty,
        line_stats: request.line_stats,
    }
}

impl Operation for Commit {
    type Output = CommitOutput;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<CommitOutput>, Error> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Finished) {
                Phase::Start => match self.request.lock_ttl_ms {
                    Some(ttl_ms) => {
                        self.phase = Phase::AwaitLock;
                        return Ok(Step::Lock(LockRequest {
                            name: self.repo.lock_name(&self.branch),
                            ttl_ms,
                        }));
                    }
                    None => self.phase = Phase::Head,
                },
                Phase::Head => {
                    let known = cache.known_ref(&self.key).cloned();
                    match known {
                        Some(head) if self.request.expected_head.is_none_or(|e| e == head.value) => {
                            self.begin(cache, head)
                        }
                        _ => {
                            self.phase = Phase::AwaitHead;
                            return Ok(Step::ReadRef(self.key.clone()));
                        }
                    }
                }
                Phase::Build(mut op, head) => match op.poll(cache) {
                    Ok(Step::Get(ids)) => {
                        self.phase = Phase::Build(op, head);
                        return Ok(Step::Get(ids));
                    }
                    Ok(Step::Done(mut output)) => {
                        if let Err(violation) = self.request.policy.check_objects(output.objects.len()) {
                            self.fail(violation.into());
                            continue;
                        }
                        let objects = std::mem::take(&mut output.objects);
                        let built = Built {
                            output,
                            base: head,
                            objects: objects.len(),
                            bytes: objects.iter().map(|o| o.loose.len() as u64).sum(),
                        };
                        self.phase = Phase::AwaitPut(built);
                        return Ok(Step::Put(objects));
                    }
                    Ok(_) => self.fail(Misuse("a commit build asks only for objects").into()),
                    Err(
                        Error::Build(commit::Error::EmptyCommit) | Error::Restore(restore::Error::NothingToRestore),
                    ) if !self.changes.is_empty() || self.restore.is_some() => {
                        // The branch already holds exactly these changes (a retry after a
                        // lost reply, or another writer did the same): that is success.
                        let tree = match cache.get(&head.value) {
                            Some(crate::object::Object::Commit(c)) => c.tree,
                            _ => {
                                self.fail(commit::Error::EmptyCommit.into());
                                continue;
                            }
                        };
                        self.phase = Phase::Finish(Ok(self.unchanged(head.value, tree)));
                    }
                    Err(err) => self.fail(err),
                },
                Phase::RepoCheck => {
                    self.phase = Phase::AwaitRepoCheck;
                    return Ok(Step::List(self.repo.refs_prefix()));
                }
                Phase::Cas(built) => {
                    let cas = CasRef {
                        key: self.key.clone(),
                        expected: Some(built.base.clone()),
                        new: Some(built.output.id),
                    };
                    self.phase = Phase::AwaitCas(built);
                    return Ok(Step::CasRef(cas));
                }
                Phase::Probe { base, theirs } => {
                    if let Some(get) = self.probe(cache, &base, &theirs)? {
                        self.phase = Phase::Probe { base, theirs };
                        return Ok(get);
                    }
                }
                Phase::Finish(result) => match self.token.take() {
                    Some(token) => {
                        self.phase = Phase::AwaitUnlock(result);
                        return Ok(Step::Unlock {
                            name: self.repo.lock_name(&self.branch),
                            token,
                        });
                    }
                    None => return result.map(Step::Done),
                },
                Phase::Finished => return Err(Misuse("poll called after Done").into()),
                waiting => {
                    self.phase = waiting;
                    return Err(Misuse("poll called before the last step was answered").into());
                }
            }
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        match &mut self.phase {
            Phase::Build(op, _) => Ok(op.provide(cache, objects)?),
            Phase::Probe { .. } => self.fetch.provide(cache, objects),
            _ => Err(Misuse("provide called without an outstanding Get").into()),
        }
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (std::mem::replace(&mut self.phase, Phase::Finished), answer) {
            (Phase::AwaitLock, Answer::Lock(token)) => {
                self.lock_tries += 1;
                self.token = token;
                self.phase = if self.token.is_none() && self.lock_tries < self.request.max_attempts.max(1) {
                    // Busy: ask again (the driver backs off first). After the last try go
                    // ahead without it: the lock only reduces contention, the CAS is the fence.
                    Phase::Start
                } else {
                    Phase::Head
                };
            }
            (Phase::AwaitHead, Answer::Ref(state)) => {
                cache.remember_ref(&self.key, state.clone());
                match (state, self.request.expected_head) {
                    // Tell a missing repo from a missing branch before failing.
                    (None, _) => self.phase = Phase::RepoCheck,
                    (Some(head), Some(expected)) if head.value != expected => self.fail(Error::HeadMoved {
                        expected,
                        actual: Some(head.value),
                    }),
                    (Some(head), _) => self.begin(cache, head),
                }
            }
            (Phase::AwaitRepoCheck, Answer::List(listed)) => self.fail(if store::without_locks(listed).is_empty() {
                Error::RepoNotFound {
                    repo: self.repo.to_string(),
                }
            } else {
                branch_not_found(&self.repo, &self.branch)
            }),
            (Phase::AwaitPut(built), Answer::Put) => self.phase = Phase::Cas(built),
            (Phase::AwaitCas(built), Answer::Cas(outcome)) => match outcome {
                CasOutcome::Won { version } => {
                    let id = built.output.id;
                    cache.remember_ref(&self.key, Some(RefState { value: id, version }));
                    self.phase = Phase::Finish(Ok(CommitOutput {
                        commit: id,
                        tree: built.output.tree,
                        parent: built.base.value,
                        created: true,
                        files: built.output.files,
                        attempts: self.attempts,
                        settled: std::mem::take(&mut self.settled),
                        objects_written: built.objects,
                        bytes_written: built.bytes,
                        locked: self.token.is_some(),
                    }));
                }
                CasOutcome::Lost { current } => {
                    cache.remember_ref(&self.key, current.clone());
                    match current {
                        None => self.fail(branch_not_found(&self.repo, &self.branch)),
                        // Same commit, new version (rewritten in place): swap again, but
                        // count it, so a store that always answers this way cannot loop us.
                        Some(current)
                            if current.value == built.base.value
                                && self.cas_retries < self.request.max_attempts.max(1) =>
                        {
                            self.cas_retries += 1;
                            self.phase = Phase::Cas(Built { base: current, ..built })
                        }
                        Some(current) if current.value == built.base.value => self.fail(Error::LostRace {
                            attempts: self.attempts + self.cas_retries,
                        }),
                        Some(current) => {
                            if let Some(expected) = self.request.expected_head {
                                self.fail(Error::HeadMoved {
                                    expected,
                                    actual: Some(current.value),
                                });
                            } else if self.attempts >= self.request.max_attempts.max(1) {
                                self.fail(Error::LostRace {
                                    attempts: self.attempts,
                                });
                            } else if self.restore.is_some() {
                                // A restore states an end result: rebuild it on the new head.
                                self.begin(cache, current);
                            } else {
                                self.phase = Phase::Probe {
                                    base: built.base,
                                    theirs: current,
                                };
                            }
                        }
                    }
                }
            },
            (Phase::AwaitUnlock(result), Answer::Unlocked) => self.phase = Phase::Finish(result),
            (phase, _) => {
                self.phase = phase;
                return Err(Misuse("answer does not match the step asked").into());
            }
        }
        Ok(())
    }
}

/// Where a new branch starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At this commit.
    Commit(ObjectId),
    /// At the head of this branch of the same repo.
    Branch(String),
}

/// The small repo operations, each a few steps of IO.
#[derive(Debug)]
enum Admin {
    CreateRepo {
        build: Option<Box<commit::Commit>>,
        out: Option<commit::Output>,
    },
    ListRepos,
    DeleteRepo,
    CreateBranch {
        start: Start,
        from: Option<ObjectId>,
    },
    ListBranches,
    DeleteBranch,
    ReadHead,
}

/// What a repo operation returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminOutput {
    /// A repo was created with its first commit.
    Created {
        /// The first commit.
        commit: ObjectId,
        /// Files in it.
        files: Vec<FileChange>,
    },
    /// Repo names, sorted.
    Repos(Vec<String>),
    /// Branch names of a repo, sorted.
    Branches(Vec<String>),
    /// A branch's head.
    Head(ObjectId),
    /// A repo or branch was deleted; the refs that were removed.
    Deleted(Vec<String>),
    /// A branch was created at this commit.
    BranchCreated(ObjectId),
}

#[derive(Debug)]
enum Wait {
    Nothing,
    List,
    Ref,
    Put,
    Cas,
    Delete(Vec<String>),
    Get,
    Done,
}

/// A repo operation: create, list or delete repos; create, list or delete branches;
/// read a head. Build one with the constructors, then drive it.
#[derive(Debug)]
pub struct RepoOp {
    repo: Option<RepoName>,
    branch: Option<BranchName>,
    op: Admin,
    wait: Wait,
    listed: Option<Vec<Listed>>,
    head: Option<Option<RefState>>,
    cas: Option<CasOutcome>,
    fetch: Fetch,
    result: Option<AdminOutput>,
}

impl RepoOp {
    fn new(repo: Option<RepoName>, branch: Option<BranchName>, op: Admin) -> Self {
        RepoOp {
            repo,
            branch,
            op,
            wait: Wait::Nothing,
            listed: None,
            head: None,
            cas: None,
            fetch: Fetch::default(),
            result: None,
        }
    }

    /// Create `repo` with a first commit on `branch` holding `files` (puts only; may be
    /// empty, giving an empty tree).
    pub fn create_repo(
        cache: &ObjectCache,
        repo: &str,
        branch: &str,
        files: Vec<Change>,
        author: Signature,
        message: &str,
    ) -> Result<Self, Error> {
        let repo = RepoName::new(repo)?;
        let branch = BranchName::new(branch)?;
        let mut request = commit::Request::new(None, files, author, message);
        request.allow_empty = true;
        let build = commit::Commit::new(cache, request)?;
        Ok(Self::new(
            Some(repo),
            Some(branch),
            Admin::CreateRepo {
                build: Some(Box::new(build)),
                out: None,
            },
        ))
    }

    /// List every repo of the store.
    pub fn list_repos() -> Self {
        Self::new(None, None, Admin::ListRepos)
    }

    /// Delete `repo`: every ref of it. Its objects go at the next GC.
    pub fn delete_repo(repo: &str) -> Result<Self, Error> {
        Ok(Self::new(Some(RepoName::new(repo)?), None, Admin::DeleteRepo))
    }

    /// Create `branch` in `repo` at `start`.
    pub fn create_branch(repo: &str, branch: &str, start: Start) -> Result<Self, Error> {
        if let Start::Branch(name) = &start {
            BranchName::new(name.clone())?;
        }
        Ok(Self::new(
            Some(RepoName::new(repo)?),
            Some(BranchName::new(branch)?),
            Admin::CreateBranch { start, from: None },
        ))
    }

    /// List the branches of `repo`.
    pub fn list_branches(repo: &str) -> Result<Self, Error> {
        Ok(Self::new(Some(RepoName::new(repo)?), None, Admin::ListBranches))
    }

    /// Delete `branch` of `repo`.
    pub fn delete_branch(repo: &str, branch: &str) -> Result<Self, Error> {
        Ok(Self::new(
            Some(RepoName::new(repo)?),
            Some(BranchName::new(branch)?),
            Admin::DeleteBranch,
        ))
    }

    /// Read the head of `branch` in `repo`.
    pub fn read_head(repo: &str, branch: &str) -> Result<Self, Error> {
        Ok(Self::new(
            Some(RepoName::new(repo)?),
            Some(BranchName::new(branch)?),
            Admin::ReadHead,
        ))
    }

    fn repo(&self) -> Result<&RepoName, Error> {
        self.repo
            .as_ref()
            .ok_or(Error::Misuse(Misuse("this operation names no repo")))
    }

    fn branch(&self) -> Result<&BranchName, Error> {
        self.branch
            .as_ref()
            .ok_or(Error::Misuse(Misuse("this operation names no branch")))
    }

    fn key(&self) -> Result<String, Error> {
        Ok(self.repo()?.branch_key(self.branch()?))
    }

    fn list(&mut self, prefix: String) -> Step<AdminOutput> {
        self.wait = Wait::List;
        Step::List(prefix)
    }

    fn read_ref(&mut self) -> Result<Step<AdminOutput>, Error> {
        self.wait = Wait::Ref;
        Ok(Step::ReadRef(self.key()?))
    }

    fn cas(&mut self, expected: Option<RefState>, new: Option<ObjectId>) -> Result<Step<AdminOutput>, Error> {
        self.wait = Wait::Cas;
        Ok(Step::CasRef(CasRef {
            key: self.key()?,
            expected,
            new,
        }))
    }

    fn step(&mut self, cache: &mut ObjectCache) -> Result<Step<AdminOutput>, Error> {
        if let Some(result) = self.result.take() {
            self.wait = Wait::Done;
            return Ok(Step::Done(result));
        }
        let repo = self.repo.clone();
        let not_found = || Error::RepoNotFound {
            repo: repo.as_ref().map(ToString::to_string).unwrap_or_default(),
        };
        match &mut self.op {
            Admin::CreateRepo { build, out } => {
                if self.listed.is_none() {
                    let prefix = self.repo()?.refs_prefix();
                    return Ok(self.list(prefix));
                }
                if self.listed.as_ref().is_some_and(|l| !l.is_empty()) {
                    return Err(Error::RepoExists {
                        repo: self.repo()?.to_string(),
                    });
                }
                if let Some(op) = build {
                    match op.poll(cache)? {
                        Step::Get(ids) => {
                            self.wait = Wait::Get;
                            return Ok(Step::Get(ids));
                        }
                        Step::Done(mut output) => {
                            let objects = std::mem::take(&mut output.objects);
                            *out = Some(output);
                            *build = None;
                            self.wait = Wait::Put;
                            return Ok(Step::Put(objects));
                        }
                        _ => return Err(Misuse("a commit build asks only for objects").into()),
                    }
                }
                let Some(output) = out.clone() else {
                    return Err(Misuse("create_repo lost its commit").into());
                };
                match self.cas.take() {
                    None => self.cas(None, Some(output.id)),
                    Some(CasOutcome::Won { version }) => {
                        let key = self.key()?;
                        cache.remember_ref(
                            &key,
                            Some(RefState {
                                value: output.id,
                                version,
                            }),
                        );
                        self.wait = Wait::Done;
                        Ok(Step::Done(AdminOutput::Created {
                            commit: output.id,
                            files: output.files,
                        }))
                    }
                    Some(CasOutcome::Lost { .. }) => Err(Error::RepoExists {
                        repo: self.repo()?.to_string(),
                    }),
                }
            }
            Admin::ListRepos => match self.listed.take() {
                None => Ok(self.list(store::NAMESPACES.to_owned())),
                Some(listed) => {
                    let mut repos: Vec<String> = listed
                        .iter()
                        .filter_map(|l| store::parse_branch_key(&l.key))
                        .map(|(repo, _)| repo.to_string())
                        .collect();
                    order::sort(&mut repos);
                    repos.dedup();
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Repos(repos)))
                }
            },
            Admin::ListBranches => match self.listed.take() {
                None => {
                    let prefix = self.repo()?.branches_prefix();
                    Ok(self.list(prefix))
                }
                Some(listed) => {
                    let repo = self.repo()?.clone();
                    let mut branches: Vec<String> = listed
                        .iter()
                        .filter_map(|l| store::parse_branch_key(&l.key))
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, b)| b.to_string())
                        .collect();
                    if branches.is_empty() {
                        return Err(not_found());
                    }
                    order::sort(&mut branches);
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Branches(branches)))
                }
            },
            Admin::DeleteRepo => match self.listed.take() {
                None => {
                    let prefix = self.repo()?.refs_prefix();
                    Ok(self.list(prefix))
                }
                Some(listed) => {
                    let keys: Vec<String> = listed.into_iter().map(|l| l.key).collect();
                    if keys.is_empty() {
                        return Err(not_found());
                    }
                    for key in &keys {
                        cache.remember_ref(key, None);
                    }
                    self.wait = Wait::Delete(keys.clone());
                    Ok(Step::Delete(keys))
                }
            },
            Admin::ReadHead => match self.head.take() {
                None => self.read_ref(),
                Some(None) => Err(branch_not_found(self.repo()?, self.branch()?)),
                Some(Some(state)) => {
                    let key = self.key()?;
                    let head = state.value;
                    cache.remember_ref(&key, Some(state));
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Head(head)))
                }
            },
            Admin::DeleteBranch => match (self.head.clone(), self.cas.take()) {
                (None, _) => self.read_ref(),
                (Some(None), _) => Err(branch_not_found(self.repo()?, self.branch()?)),
                (Some(Some(state)), None) => self.cas(Some(state), None),
                (Some(Some(_)), Some(CasOutcome::Won { .. })) => {
                    let key = self.key()?;
                    cache.remember_ref(&key, None);
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Deleted(vec![key])))
                }
                // It moved meanwhile: look again, and delete what is there now.
                (Some(Some(_)), Some(CasOutcome::Lost { current })) => {
                    self.head = Some(current);
                    self.step(cache)
                }
            },
            Admin::CreateBranch { start, from } => {
                let target = match (start.clone(), *from) {
                    (_, Some(id)) => id,
                    (Start::Commit(id), None) => {
                        *from = Some(id);
                        id
                    }
                    (Start::Branch(name), None) => match self.head.take() {
                        None => {
                            let repo = self.repo()?.clone();
                            self.wait = Wait::Ref;
                            return Ok(Step::ReadRef(repo.branch_key(&BranchName::new(name)?)));
                        }
                        Some(None) => {
                            return Err(Error::BranchNotFound {
                                repo: self.repo()?.to_string(),
                                branch: name,
                            });
                        }
                        Some(Some(state)) => {
                            *from = Some(state.value);
                            state.value
                        }
                    },
                };
                // The start must be a commit the store has.
                self.fetch.reset_want();
                if self.fetch.commit(cache, &target)?.is_none() {
                    self.wait = Wait::Get;
                    return Ok(self.fetch.take_get().unwrap_or(Step::Get(vec![target])));
                }
                match self.cas.take() {
                    None => self.cas(None, Some(target)),
                    Some(CasOutcome::Won { version }) => {
                        let key = self.key()?;
                        cache.remember_ref(&key, Some(RefState { value: target, version }));
                        self.wait = Wait::Done;
                        Ok(Step::Done(AdminOutput::BranchCreated(target)))
                    }
                    Some(CasOutcome::Lost { .. }) => Err(Error::BranchExists {
                        repo: self.repo()?.to_string(),
                        branch: self.branch()?.to_string(),
                    }),
                }
            }
        }
    }
}

impl Operation for RepoOp {
    type Output = AdminOutput;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<AdminOutput>, Error> {
        match self.wait {
            Wait::Nothing => self.step(cache),
            Wait::Done => Err(Misuse("poll called after Done").into()),
            _ => Err(Misuse("poll called before the last step was answered").into()),
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if !matches!(self.wait, Wait::Get) {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        self.wait = Wait::Nothing;
        match &mut self.op {
            Admin::CreateRepo { build: Some(op), .. } => Ok(op.provide(cache, objects)?),
            _ => self.fetch.provide(cache, objects),
        }
    }

    fn answer(&mut self, _cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (std::mem::replace(&mut self.wait, Wait::Nothing), answer) {
            (Wait::List, Answer::List(listed)) => self.listed = Some(store::without_locks(listed)),
            (Wait::Ref, Answer::Ref(state)) => self.head = Some(state),
            (Wait::Put, Answer::Put) => {}
            (Wait::Cas, Answer::Cas(outcome)) => self.cas = Some(outcome),
            (Wait::Delete(keys), Answer::Deleted) => self.result = Some(AdminOutput::Deleted(keys)),
            (wait, _) => {
                self.wait = wait;
                return Err(Misuse("answer does not match the step asked").into());
            }
        }
        Ok(())
    }
}
