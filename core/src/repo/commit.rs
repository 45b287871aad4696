//! A commit to a branch that never loses an update: build, `Put`, compare-and-swap, and
//! replay onto the new head after a lost swap.

use bstr::BString;
use gix_hash::ObjectId;

use super::{Error, branch_not_found};
use crate::{
    cache::ObjectCache,
    commit::{self, Change, Signature},
    diff::FileChange,
    merge::{self, Conflict, ConflictPolicy},
    policy::Policy,
    restore,
    step::{Answer, CasOutcome, CasRef, Fetch, LockRequest, Misuse, Operation, RefState, Step},
    store::{self, BranchName, RepoName},
};

/// The default number of attempts a commit makes before giving up the race.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// A commit to a branch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    #[serde(default)]
    pub committer: Option<Signature>,
    /// The message.
    pub message: String,
    /// Make a commit even when the tree does not change.
    #[serde(default)]
    pub allow_empty: bool,
    /// Count lines added and removed per file.
    #[serde(default = "crate::api::wire::default::yes")]
    pub line_stats: bool,
    /// Fail with [`Error::HeadMoved`] instead of replaying if the branch is not here.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_id")]
    #[serde(default)]
    pub expected_head: Option<ObjectId>,
    /// How to settle a path changed on both sides during a replay.
    #[serde(default)]
    pub on_conflict: ConflictPolicy,
    /// Attempts before [`Error::LostRace`] (at least 1).
    #[serde(default = "crate::api::wire::default::attempts")]
    pub max_attempts: u32,
    /// Take the branch's advisory lock for this long while committing. A busy lock is
    /// asked for again up to `max_attempts` times (drivers back off in between), then the
    /// commit goes ahead without it: the compare-and-swap stays the fence.
    #[serde(default)]
    pub lock_ttl_ms: Option<u64>,
    /// Rules the changes must follow.
    #[serde(default)]
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
            committer: None,
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// The repo.
    pub repo: String,
    /// The branch; it must exist.
    pub branch: String,
    /// The commit whose content comes back.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub target: ObjectId,
    /// Only this file or folder; `None` for the whole tree.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_path")]
    #[serde(default)]
    pub path: Option<BString>,
    /// Who restores (also the committer).
    pub author: Signature,
    /// The message; `None` for one naming the path and the restored commit.
    #[serde(default)]
    pub message: Option<String>,
    /// Count lines added and removed per restored file.
    #[serde(default = "crate::api::wire::default::yes")]
    pub line_stats: bool,
    /// Fail with [`Error::HeadMoved`] if the branch is not here.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_id")]
    #[serde(default)]
    pub expected_head: Option<ObjectId>,
    /// Attempts before [`Error::LostRace`] (at least 1).
    #[serde(default = "crate::api::wire::default::attempts")]
    pub max_attempts: u32,
    /// Take the branch's advisory lock for this long while restoring.
    #[serde(default)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CommitOutput {
    /// The branch's new head (or, when a replay found nothing left to do, its head).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub commit: ObjectId,
    /// Its tree.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub tree: ObjectId,
    /// The commit it was built on: the branch's previous head.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
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
        committer: request.committer.clone().unwrap_or_else(|| request.author.clone()),
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
