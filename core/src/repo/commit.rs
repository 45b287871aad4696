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
    retry::{self, Waits},
    step::{Answer, CasOutcome, CasRef, Fetch, LockRequest, Misuse, Operation, RefState, Step},
    store::{self, BranchName, RepoName},
};

pub use crate::retry::DEFAULT_MAX_ATTEMPTS;

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
    /// Attempts before [`Error::LostRace`] (at least 1); the race is also given up once
    /// [`retry::RACE_BUDGET_MS`] was spent waiting between attempts.
    #[serde(default = "crate::api::wire::default::attempts")]
    pub max_attempts: u32,
    /// Take the branch's advisory lock for this long while committing. A busy lock is
    /// waited for (the operation asks [`Step::Wait`], then for the lock again) until it is
    /// taken or this long has been waited; then the commit goes ahead without it: the
    /// compare-and-swap stays the fence.
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
    /// Attempts before [`Error::LostRace`] (at least 1), as for [`CommitRequest`].
    #[serde(default = "crate::api::wire::default::attempts")]
    pub max_attempts: u32,
    /// Take the branch's advisory lock for this long while restoring, waiting for it as
    /// [`CommitRequest::lock_ttl_ms`] does.
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
    /// Ask the driver to wait this many milliseconds, then go on as `After` says.
    Wait(u64, After),
    AwaitWait(After),
    /// Read the head again (after a wait) to replay onto it what was built on this base.
    Reread(RefState),
    AwaitReread(RefState),
    Probe {
        base: RefState,
        theirs: RefState,
    },
    Finish(Result<CommitOutput, Error>),
    AwaitUnlock(Result<CommitOutput, Error>),
    Finished,
}

/// What follows a wait.
#[derive(Debug)]
enum After {
    /// Ask for the busy lock again.
    Lock,
    /// Read the head, then replay what was built on this base onto it.
    Reread(RefState),
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
    /// Waits for a busy lock, within the lock's ttl.
    lock_waits: Waits,
    /// The seed of those waits, hashed from the request at the first busy answer.
    lock_seed: Option<u64>,
    /// Waits after lost swaps, within [`retry::RACE_BUDGET_MS`].
    race_waits: Waits,
    /// Swaps retried because the ref changed version but not value.
    cas_retries: u32,
    /// Whether the first attempt was built on the head the cache remembered, which
    /// storage has not confirmed and the caller never saw: not a merge base (a lost swap
    /// on it starts over on the head read; see `replay`).
    remembered_base: bool,
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
        let lock_ttl_ms = request.lock_ttl_ms;
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
            lock_waits: lock_waits(lock_ttl_ms),
            lock_seed: None,
            race_waits: Waits::new(retry::RACE, retry::RACE_BUDGET_MS),
            cas_retries: 0,
            remembered_base: false,
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
        let lock_ttl_ms = request.lock_ttl_ms;
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
            lock_waits: lock_waits(lock_ttl_ms),
            lock_seed: None,
            race_waits: Waits::new(retry::RACE, retry::RACE_BUDGET_MS),
            cas_retries: 0,
            remembered_base: false,
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

    /// Try again on `theirs`, the head that won over `base`: rebuild a restore, replay a
    /// commit's changes.
    ///
    /// A replay merges by path from `base`: a path that `theirs` changed since is a
    /// conflict. That holds only for a base read from storage during this commit. A head
    /// the cache remembered may be any number of commits old (a server's cache, a warm
    /// edge isolate, while the caller's own last turn went through another process), so
    /// a swap lost on it starts over on `theirs`, as if that had been read first.
    fn replay(&mut self, cache: &ObjectCache, base: RefState, theirs: RefState) {
        // A restore states an end result: rebuild it on the new head.
        if std::mem::take(&mut self.remembered_base) || self.restore.is_some() {
            self.begin(cache, theirs);
        } else {
            self.phase = Phase::Probe { base, theirs };
        }
    }

    /// The seed of this writer's waits for the lock: a hash of its request, which is
    /// all that tells it from other writers before it has built anything.
    fn request_seed(&self) -> u64 {
        let request = &self.request;
        let signatures: Vec<&Signature> = [Some(&request.author), request.committer.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        let times: Vec<[u8; 8]> = signatures.iter().map(|s| s.time.seconds.to_le_bytes()).collect();
        let mut parts: Vec<&[u8]> = vec![
            request.repo.as_bytes(),
            request.branch.as_bytes(),
            request.message.as_bytes(),
        ];
        for (signature, time) in signatures.iter().zip(&times) {
            parts.extend([signature.name.as_bytes(), signature.email.as_bytes(), time.as_slice()]);
        }
        for change in &self.changes {
            match change {
                Change::Put { path, data, .. } => parts.extend([path.as_slice(), data.as_slice()]),
                Change::Delete { path } => parts.push(path.as_slice()),
                Change::Rename { from, to } => parts.extend([from.as_slice(), to.as_slice()]),
            }
        }
        if let Some(restore) = &self.restore {
            parts.push(restore.target.as_bytes());
            parts.extend(restore.path.as_ref().map(|p| p.as_slice()));
        }
        retry::seed(parts)
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

fn lock_waits(lock_ttl_ms: Option<u64>) -> Waits {
    Waits::new(retry::LOCK, lock_ttl_ms.unwrap_or(0))
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
                    // After queueing for the lock, the head the cache remembers has most
                    // likely moved (the holders committed): read it rather than lose a swap.
                    let queued = self.lock_waits.count() > 0;
                    let known = cache.known_ref(&self.key).cloned().filter(|_| !queued);
                    match known {
                        Some(head) if self.request.expected_head.is_none_or(|e| e == head.value) => {
                            self.remembered_base = true;
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
                Phase::Wait(ms, after) => {
                    self.phase = Phase::AwaitWait(after);
                    return Ok(Step::Wait { ms });
                }
                Phase::Reread(base) => {
                    self.phase = Phase::AwaitReread(base);
                    return Ok(Step::ReadRef(self.key.clone()));
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
            (Phase::AwaitLock, Answer::Lock(Some(token))) => {
                self.token = Some(token);
                self.phase = Phase::Head;
            }
            (Phase::AwaitLock, Answer::Lock(None)) => {
                let seed = match self.lock_seed {
                    Some(seed) => seed,
                    None => *self.lock_seed.insert(self.request_seed()),
                };
                self.phase = match self.lock_waits.next(seed) {
                    // Busy: wait in the queue, then ask again.
                    Some(ms) => Phase::Wait(ms, After::Lock),
                    // Waited a whole lease: the one first met is over and later writers
                    // hold the lock now. Go ahead without it: the CAS is the fence.
                    None => Phase::Head,
                };
            }
            (Phase::AwaitWait(after), Answer::Waited) => {
                self.phase = match after {
                    After::Lock => Phase::Start,
                    After::Reread(base) => Phase::Reread(base),
                }
            }
            (Phase::AwaitReread(base), Answer::Ref(state)) => {
                cache.remember_ref(&self.key, state.clone());
                match state {
                    None => self.fail(branch_not_found(&self.repo, &self.branch)),
                    Some(head) => self.replay(cache, base, head),
                }
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
                            } else if self.token.is_some() {
                                // The lock holder retries at once: the writers queued
                                // behind it wait as long as it does.
                                self.replay(cache, built.base, current);
                            } else {
                                let seed = retry::seed([built.output.id.as_bytes()]);
                                match self.race_waits.next(seed) {
                                    // `current` will be stale after the wait: read again.
                                    Some(ms) => self.phase = Phase::Wait(ms, After::Reread(built.base)),
                                    None => self.fail(Error::LostRace {
                                        attempts: self.attempts,
                                    }),
                                }
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
