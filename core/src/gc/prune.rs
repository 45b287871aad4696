//! Retention for one branch: [`Prune`] keeps the newest commits and writes them again
//! as a new chain.

use std::sync::Arc;

use gix_hash::ObjectId;
use gix_object::Kind;

use super::DEFAULT_MAX_ATTEMPTS;
use crate::{
    cache::ObjectCache,
    object::{self, NewObject, Object},
    retry::{self, Waits},
    step::{Answer, CasOutcome, CasRef, Fetch, Misuse, Operation, RefState, Step, StorageError},
    store::{BranchName, NameError, RepoName},
};

/// Headers a rewritten commit leaves out: signatures cover the old parents and would no
/// longer verify, and merge tags belong to parents that are dropped.
const DROPPED_HEADERS: [&[u8]; 3] = [b"gpgsig", b"gpgsig-sha256", b"mergetag"];

/// Which commits of a branch's first-parent history to keep.
///
/// A commit is kept if any rule keeps it (as restic's `--keep-last` and `--keep-within`
/// combine), and the head is always kept. The kept commits are always the newest ones,
/// without gaps: the walk from the head stops at the first commit no rule keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Keep this many commits, counting the head. Zero is refused.
    #[serde(default)]
    pub keep_last: Option<usize>,
    /// Keep commits committed within this window.
    #[serde(default)]
    pub keep_within: Option<Within>,
}

/// A time window ending now, for [`Retention::keep_within`]: a commit is in it if its
/// committer time is at or after `now_ms - duration_ms`. Core has no clock: the caller
/// says what time it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Within {
    /// The window's length, in milliseconds.
    pub duration_ms: u64,
    /// The current time, in milliseconds since the Unix epoch.
    pub now_ms: i64,
}

impl Retention {
    /// Keep the last `count` commits.
    pub fn last(count: usize) -> Self {
        Retention {
            keep_last: Some(count),
            keep_within: None,
        }
    }

    /// Keep the commits whose committer time is at most `duration_ms` before `now_ms`.
    pub fn within(duration_ms: u64, now_ms: i64) -> Self {
        Retention {
            keep_last: None,
            keep_within: Some(Within { duration_ms, now_ms }),
        }
    }

    /// Also keep the last `count` commits.
    pub fn and_last(mut self, count: usize) -> Self {
        self.keep_last = Some(count);
        self
    }

    /// Also keep the commits of the last `duration_ms` before `now_ms`.
    pub fn and_within(mut self, duration_ms: u64, now_ms: i64) -> Self {
        self.keep_within = Some(Within { duration_ms, now_ms });
        self
    }

    /// Whether the commit at `position` in the history (0 for the head) is kept, if its
    /// position decides it; `None` if its time must be looked at.
    fn keeps_by_position(&self, position: usize) -> Option<bool> {
        if position == 0 || self.keep_last.is_some_and(|n| position < n) {
            return Some(true);
        }
        self.keep_within.is_none().then_some(false)
    }

    fn keeps_by_time(&self, commit: &gix_object::Commit) -> bool {
        self.keep_within.is_some_and(|within| {
            let duration = i64::try_from(within.duration_ms).unwrap_or(i64::MAX);
            let cutoff = within.now_ms.saturating_sub(duration);
            commit.committer.time.seconds.saturating_mul(1000) >= cutoff
        })
    }
}

/// What to prune: a branch of a repo, and the retention to apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PruneRequest {
    /// The repo (git namespace).
    pub repo: String,
    /// The branch.
    pub branch: String,
    /// Which commits to keep.
    pub retention: Retention,
    /// How many times to plan and try the compare-and-swap before giving up when other
    /// writers keep moving the branch; at least 1. The race is also given up once
    /// [`retry::RACE_BUDGET_MS`] was spent waiting between attempts.
    #[serde(default = "crate::api::wire::default::attempts")]
    pub max_attempts: u32,
    /// Walk the whole dropped history to count it ([`Pruned::dropped`]). That takes one
    /// round per dropped commit; without it, pruning reads only the kept commits (and,
    /// for [`Retention::keep_within`], the newest dropped one).
    #[serde(default)]
    pub count_dropped: bool,
}

impl PruneRequest {
    /// Prune `branch` of `repo` to what `retention` keeps, counting what is dropped, with
    /// [`DEFAULT_MAX_ATTEMPTS`].
    pub fn new(repo: impl Into<String>, branch: impl Into<String>, retention: Retention) -> Self {
        PruneRequest {
            repo: repo.into(),
            branch: branch.into(),
            retention,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            count_dropped: true,
        }
    }
}

/// What a [`Prune`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    /// The repo.
    pub repo: RepoName,
    /// The branch.
    pub branch: BranchName,
    /// The head the retention was applied to (the last one read, after any retries).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub old_head: ObjectId,
    /// The head now; equal to `old_head` if nothing was dropped.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub new_head: ObjectId,
    /// `false` if the history already fit the retention: nothing was written.
    pub rewritten: bool,
    /// Commits kept, counting the head.
    pub kept: usize,
    /// First-parent commits dropped from the branch's history; `None` if not counted
    /// ([`PruneRequest::count_dropped`]). Commits reachable only through the second
    /// parent of a merge are dropped too, but not counted.
    pub dropped: Option<u64>,
    /// The commits written, oldest first (the new root first). Already stored.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(with = "crate::api::wire::ids")]
    pub written: Vec<ObjectId>,
    /// How many times the history was planned: 1 plus one per lost compare-and-swap.
    pub attempts: u32,
}

/// Why a [`Prune`] failed. Nothing visible changed on any error: the branch still points
/// where it did (new commits may have been stored, unreferenced, for GC to remove).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// The repo or branch name is refused by git's ref-name rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// `keep_last` is 0; the head is always kept, so keep at least 1.
    #[error("invalid retention: keep_last is 0, keep at least 1 commit")]
    ZeroKeepCount,
    /// The retention has no rule at all.
    #[error("invalid retention: set keep_last, keep_within or both")]
    NoRule,
    /// An option has a value that cannot work.
    #[error("invalid option {option} = {value}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The branch does not exist (or was deleted while pruning).
    #[error("branch {branch:?} of repo {repo:?} not found")]
    BranchNotFound {
        /// The repo.
        repo: RepoName,
        /// The branch.
        branch: BranchName,
    },
    /// Other writers moved the branch on every attempt.
    #[error("branch {branch:?} of repo {repo:?} kept moving: gave up after {attempts} attempts")]
    Contention {
        /// The repo.
        repo: RepoName,
        /// The branch.
        branch: BranchName,
        /// Attempts made.
        attempts: u32,
    },
    /// A kept commit cannot be written again (its metadata does not encode).
    #[error("commit {commit} cannot be rewritten: {reason}")]
    Unrewritable {
        /// The kept commit.
        commit: ObjectId,
        /// Why.
        reason: String,
    },
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

impl From<StorageError> for PruneError {
    fn from(err: StorageError) -> Self {
        PruneError::Storage(err)
    }
}

/// Applies a [`Retention`] to a branch. Create it with [`Prune::new`], then call
/// [`poll`](Operation::poll) until it returns [`Step::Done`], answering [`Step::Get`]
/// with [`provide`](Operation::provide) and every other step with
/// [`answer`](Operation::answer).
///
/// It reads the ref, walks the first-parent history from the head (one round per commit:
/// each names the next), and if some commit falls outside the retention, it writes the
/// kept commits again as a new chain: the oldest kept one becomes a root commit with its
/// own tree, author, committer and message, and each newer one is re-created on top with
/// its own tree and metadata. Merge commits in the kept range keep only their first
/// parent. Then it `Put`s the new commits and compare-and-swaps the ref from the state it
/// read; if another writer moved the branch first, it waits ([`Step::Wait`], as
/// [`crate::retry`] decides), reads the ref again and starts over from that head (the
/// commits already read are not read again), at most [`PruneRequest::max_attempts`]
/// times.
///
/// Trees and blobs are shared with the old commits, so nothing but commits is written.
/// The old commits stay in storage until [`Collect`](super::Collect) removes them.
#[derive(Debug)]
pub struct Prune {
    repo: RepoName,
    branch: BranchName,
    key: String,
    retention: Retention,
    max_attempts: u32,
    count_dropped: bool,
    fetch: Fetch,
    attempts: u32,
    waits: Waits,
    state: PruneState,
}

#[derive(Debug)]
enum PruneState {
    /// Ask for the ref.
    Start,
    /// A `ReadRef` is out.
    ReadingRef,
    /// Walking the history; a `Get` may be out.
    Walking(Walk),
    /// A `Put` is out.
    Putting(Plan),
    /// The objects are stored; ask for the compare-and-swap.
    Stored(Plan),
    /// A `CasRef` is out.
    Swapping(Plan),
    /// The swap was lost: ask to wait this many milliseconds, then read the ref again.
    Backoff(u64),
    /// A `Wait` is out.
    Waiting,
    /// The result is ready.
    Ready(Pruned),
    /// `Done` was returned, or the operation failed.
    Finished,
}

#[derive(Debug)]
struct Walk {
    head: RefState,
    kept: Vec<(ObjectId, Arc<gix_object::Commit>)>,
    /// The next first-parent commit to look at.
    next: Option<ObjectId>,
    /// The newest commit that is dropped, once found.
    first_dropped: Option<ObjectId>,
    dropped: u64,
}

#[derive(Debug)]
struct Plan {
    head: RefState,
    new_head: ObjectId,
    objects: Vec<NewObject>,
    kept: usize,
    dropped: Option<u64>,
}

impl Prune {
    /// Validate `request`. Every input error is reported here, before any step.
    pub fn new(request: PruneRequest) -> Result<Self, PruneError> {
        let repo = RepoName::new(request.repo)?;
        let branch = BranchName::new(request.branch)?;
        let retention = request.retention;
        if retention.keep_last == Some(0) {
            return Err(PruneError::ZeroKeepCount);
        }
        if retention.keep_last.is_none() && retention.keep_within.is_none() {
            return Err(PruneError::NoRule);
        }
        if request.max_attempts == 0 {
            return Err(PruneError::InvalidOption {
                option: "max_attempts",
                value: "0".into(),
                reason: "at least one attempt is needed",
            });
        }
        Ok(Prune {
            key: repo.branch_key(&branch),
            repo,
            branch,
            retention,
            max_attempts: request.max_attempts,
            count_dropped: request.count_dropped,
            fetch: Fetch::default(),
            attempts: 0,
            waits: Waits::new(retry::RACE, retry::RACE_BUDGET_MS),
            state: PruneState::Start,
        })
    }

    /// The number of `Get` rounds asked for so far.
    pub fn rounds(&self) -> u32 {
        self.fetch.rounds()
    }

    /// Start a walk from `head`.
    fn begin(&mut self, cache: &mut ObjectCache, head: RefState) {
        cache.remember_ref(&self.key, Some(head.clone()));
        self.attempts += 1;
        self.state = PruneState::Walking(Walk {
            next: Some(head.value),
            head,
            kept: Vec::new(),
            first_dropped: None,
            dropped: 0,
        });
    }

    /// Walk as far as the objects at hand allow. `Ok(None)` once the walk is complete.
    fn walk(&mut self, cache: &ObjectCache, walk: &mut Walk) -> Result<Option<Step<Pruned>>, PruneError> {
        self.fetch.reset_want();
        while let Some(id) = walk.next {
            if walk.first_dropped.is_none() {
                let by_position = self.retention.keeps_by_position(walk.kept.len());
                if by_position != Some(false) {
                    let Some(commit) = self.fetch.commit(cache, &id)? else {
                        return Ok(Some(self.need()));
                    };
                    if by_position == Some(true) || self.retention.keeps_by_time(&commit) {
                        walk.next = commit.parents.first().copied();
                        walk.kept.push((id, commit));
                        continue;
                    }
                }
                walk.first_dropped = Some(id);
                if !self.count_dropped {
                    break;
                }
            }
            let Some(commit) = self.fetch.commit(cache, &id)? else {
                return Ok(Some(self.need()));
            };
            walk.dropped += 1;
            walk.next = commit.parents.first().copied();
        }
        Ok(None)
    }

    /// The `Get` for the commit the walk is missing.
    fn need(&mut self) -> Step<Pruned> {
        // A pass that found a commit missing always wants it; an empty `Get` would only
        // be refused by `provide`, never taken for a finished walk.
        self.fetch.take_get().unwrap_or(Step::Get(Vec::new()))
    }

    /// Write the kept commits again as a new chain, oldest first.
    fn rewrite(&self, cache: &mut ObjectCache, walk: Walk) -> Result<Plan, PruneError> {
        let hash_kind = cache.hash_kind();
        let mut parent: Option<ObjectId> = None;
        let mut objects = Vec::with_capacity(walk.kept.len());
        for (old_id, old) in walk.kept.iter().rev() {
            let commit = gix_object::Commit {
                tree: old.tree,
                parents: parent.into_iter().collect(),
                author: old.author.clone(),
                committer: old.committer.clone(),
                encoding: old.encoding.clone(),
                message: old.message.clone(),
                extra_headers: old
                    .extra_headers
                    .iter()
                    .filter(|(name, _)| !DROPPED_HEADERS.contains(&name.as_slice()))
                    .cloned()
                    .collect(),
            };
            let unrewritable = |reason: String| PruneError::Unrewritable {
                commit: *old_id,
                reason,
            };
            let content =
                object::commit::encode(&commit).map_err(|problem| unrewritable(problem.reason().to_owned()))?;
            let encoded =
                object::encode_loose(hash_kind, Kind::Commit, &content).map_err(|err| unrewritable(err.to_string()))?;
            parent = Some(encoded.id);
            cache.insert(encoded.id, Object::Commit(Arc::new(commit)));
            objects.push(encoded);
        }
        let new_head = parent.unwrap_or(walk.head.value);
        Ok(Plan {
            head: walk.head,
            new_head,
            objects,
            kept: walk.kept.len(),
            dropped: self.count_dropped.then_some(walk.dropped),
        })
    }

    fn output(
        &self,
        head: ObjectId,
        new_head: ObjectId,
        kept: usize,
        dropped: Option<u64>,
        written: Vec<ObjectId>,
    ) -> Pruned {
        Pruned {
            repo: self.repo.clone(),
            branch: self.branch.clone(),
            old_head: head,
            new_head,
            rewritten: !written.is_empty(),
            kept,
            dropped,
            written,
            attempts: self.attempts,
        }
    }
}

impl Operation for Prune {
    type Output = Pruned;
    type Error = PruneError;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Pruned>, PruneError> {
        match std::mem::replace(&mut self.state, PruneState::Finished) {
            PruneState::Start => {
                self.state = PruneState::ReadingRef;
                Ok(Step::ReadRef(self.key.clone()))
            }
            PruneState::Walking(mut walk) => {
                let step = self.walk(cache, &mut walk)?;
                if let Some(step) = step {
                    self.state = PruneState::Walking(walk);
                    return Ok(step);
                }
                if walk.first_dropped.is_none() {
                    let head = walk.head.value;
                    return Ok(Step::Done(self.output(
                        head,
                        head,
                        walk.kept.len(),
                        Some(0),
                        Vec::new(),
                    )));
                }
                let plan = self.rewrite(cache, walk)?;
                let objects = plan.objects.clone();
                self.state = PruneState::Putting(plan);
                Ok(Step::Put(objects))
            }
            PruneState::Stored(plan) => {
                let cas = CasRef {
                    key: self.key.clone(),
                    expected: Some(plan.head.clone()),
                    new: Some(plan.new_head),
                };
                self.state = PruneState::Swapping(plan);
                Ok(Step::CasRef(cas))
            }
            PruneState::Backoff(ms) => {
                self.state = PruneState::Waiting;
                Ok(Step::Wait { ms })
            }
            PruneState::Ready(output) => Ok(Step::Done(output)),
            state @ (PruneState::ReadingRef
            | PruneState::Putting(_)
            | PruneState::Swapping(_)
            | PruneState::Waiting) => {
                self.state = state;
                Err(Misuse("poll called before the last step was answered").into())
            }
            PruneState::Finished => Err(Misuse("poll called after Done or an error").into()),
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), PruneError> {
        if !matches!(self.state, PruneState::Walking(_)) {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        self.fetch.provide(cache, objects)
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), PruneError> {
        match (std::mem::replace(&mut self.state, PruneState::Finished), answer) {
            (PruneState::ReadingRef, Answer::Ref(state)) => match state {
                Some(head) => {
                    self.begin(cache, head);
                    Ok(())
                }
                None => {
                    cache.remember_ref(&self.key, None);
                    Err(PruneError::BranchNotFound {
                        repo: self.repo.clone(),
                        branch: self.branch.clone(),
                    })
                }
            },
            (PruneState::Putting(plan), Answer::Put) => {
                self.state = PruneState::Stored(plan);
                Ok(())
            }
            (PruneState::Swapping(plan), Answer::Cas(outcome)) => match outcome {
                CasOutcome::Won { version } => {
                    cache.remember_ref(
                        &self.key,
                        Some(RefState {
                            value: plan.new_head,
                            version,
                        }),
                    );
                    let written = plan.objects.iter().map(|o| o.id).collect();
                    let output = self.output(plan.head.value, plan.new_head, plan.kept, plan.dropped, written);
                    self.state = PruneState::Ready(output);
                    Ok(())
                }
                CasOutcome::Lost { current: None } => {
                    cache.remember_ref(&self.key, None);
                    Err(PruneError::BranchNotFound {
                        repo: self.repo.clone(),
                        branch: self.branch.clone(),
                    })
                }
                CasOutcome::Lost { current: Some(current) } => {
                    cache.remember_ref(&self.key, Some(current));
                    let wait = if self.attempts < self.max_attempts {
                        self.waits.next(retry::seed([plan.new_head.as_bytes()]))
                    } else {
                        None
                    };
                    let Some(ms) = wait else {
                        return Err(PruneError::Contention {
                            repo: self.repo.clone(),
                            branch: self.branch.clone(),
                            attempts: self.attempts,
                        });
                    };
                    // `current` will be stale after the wait: the ref is read again.
                    self.state = PruneState::Backoff(ms);
                    Ok(())
                }
            },
            (PruneState::Waiting, Answer::Waited) => {
                self.state = PruneState::Start;
                Ok(())
            }
            (state, _) => {
                self.state = state;
                Err(Misuse("answer does not match the step asked for").into())
            }
        }
    }
}
