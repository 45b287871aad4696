//! Keeping a store bounded: retention for a branch, the footprint report, and garbage
//! collection.
//!
//! Three sans-IO operations, driven like every other ([`Operation`]):
//!
//! - [`Prune`] applies a [`Retention`] to one branch of one repo: it keeps the newest
//!   commits of the first-parent history and rewrites them as a new chain whose root
//!   carries the tree of the oldest kept commit, then moves the branch with a
//!   compare-and-swap. The old commits stay in storage until [`Collect`] removes them.
//! - [`Footprint`] counts every object in the store and, per repo, the objects its refs
//!   reach, plus the objects no ref reaches.
//! - [`Collect`] is a mark-and-sweep over every ref of every repo in the store. It
//!   deletes an unreachable object only once it is older than a grace period, so the
//!   objects of a commit still in flight (written, ref not yet moved) survive.
//!
//! Reachability reads commits and trees only, one level per round with every unknown id
//! of that level in one [`Step::Get`]; blob ids come from the trees, so no blob is ever
//! read. Submodule entries name commits of another repository and are not followed.
//!
//! ```
//! use snapgit_core::{
//!     ObjectCache, commit::{self, Change, Signature}, drive::{self, MemoryStore, ObjectStore},
//!     gc, step::CasRef,
//! };
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
//! let key = "refs/namespaces/agent-1/refs/heads/main";
//! let mut head = None;
//! for turn in 0..5 {
//!     let me = Signature::new("Agent", "agent@example.com", 1_700_000_000 + turn);
//!     let change = Change::put("memory.md", format!("turn {turn}\n"));
//!     let request = commit::Request::new(head, vec![change], me, format!("turn {turn}"));
//!     let out = drive::run(&mut commit::Commit::new(&cache, request)?, &mut cache, &store)?;
//!     store.put_many(&out.objects)?;
//!     let expected = store.read_ref(key)?;
//!     store.cas_ref(&CasRef { key: key.into(), expected, new: Some(out.id) })?;
//!     head = Some(out.id);
//! }
//!
//! // Keep the last two commits of `main`.
//! let request = gc::PruneRequest::new("agent-1", "main", gc::Retention::last(2));
//! let pruned = drive::run(&mut gc::Prune::new(request)?, &mut cache, &store)?;
//! assert_eq!((pruned.kept, pruned.dropped), (2, Some(3)));
//!
//! // Two hours later, GC deletes the five old commits, and the trees and blobs of the
//! // three dropped turns: nothing reaches them any more.
//! let options = gc::CollectOptions::new(2 * 3_600_000);
//! let collected = drive::run(&mut gc::Collect::new(&cache, options)?, &mut cache, &store)?;
//! assert_eq!(collected.deleted, 11);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use gix_hash::ObjectId;
use gix_object::Kind;

mod roots;

use roots::Found;
pub use roots::{CorruptRef, Unsupported};

use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object::{self, NewObject, Object},
    order,
    step::{Answer, CasOutcome, CasRef, Fetch, Listed, Misuse, Operation, RefState, Step, StorageError},
    store::{self, BranchName, NameError, RepoName},
};

/// How many times [`Prune`] plans and tries its compare-and-swap by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How old an unreachable object must be before [`Collect`] deletes it, by default: one
/// hour, in milliseconds.
pub const DEFAULT_GRACE_MS: u64 = 60 * 60 * 1000;

/// How old a lock file must be before [`Collect`] removes it, whatever the grace period:
/// one minute, in milliseconds. A live lock is held for milliseconds.
pub const STALE_LOCK_MS: u64 = 60 * 1000;

/// How many keys one [`Step::Delete`] of [`Collect`] carries at most, by default (the
/// most one S3 `DeleteObjects` request takes).
pub const DEFAULT_BATCH: usize = 1000;

/// Headers a rewritten commit leaves out: signatures cover the old parents and would no
/// longer verify, and merge tags belong to parents that are dropped.
const DROPPED_HEADERS: [&[u8]; 3] = [b"gpgsig", b"gpgsig-sha256", b"mergetag"];

/// Stored objects: how many, and their stored (compressed) size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of objects.
    pub count: u64,
    /// Stored bytes, as listed by storage.
    pub bytes: u64,
}

impl Usage {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

// ---------------------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------------------

/// Which commits of a branch's first-parent history to keep.
///
/// A commit is kept if any rule keeps it (as restic's `--keep-last` and `--keep-within`
/// combine), and the head is always kept. The kept commits are always the newest ones,
/// without gaps: the walk from the head stops at the first commit no rule keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep this many commits, counting the head. Zero is refused.
    pub keep_last: Option<usize>,
    /// Keep commits committed within this window.
    pub keep_within: Option<Within>,
}

/// A time window ending now, for [`Retention::keep_within`]: a commit is in it if its
/// committer time is at or after `now_ms - duration_ms`. Core has no clock: the caller
/// says what time it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRequest {
    /// The repo (git namespace).
    pub repo: String,
    /// The branch.
    pub branch: String,
    /// Which commits to keep.
    pub retention: Retention,
    /// How many times to plan and try the compare-and-swap before giving up when other
    /// writers keep moving the branch; at least 1.
    pub max_attempts: u32,
    /// Walk the whole dropped history to count it ([`Pruned::dropped`]). That takes one
    /// round per dropped commit; without it, pruning reads only the kept commits (and,
    /// for [`Retention::keep_within`], the newest dropped one).
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// The repo.
    pub repo: RepoName,
    /// The branch.
    pub branch: BranchName,
    /// The head the retention was applied to (the last one read, after any retries).
    pub old_head: ObjectId,
    /// The head now; equal to `old_head` if nothing was dropped.
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
/// read; if another writer moved the branch first, it starts over from the new head (the
/// commits already read are not read again), at most [`PruneRequest::max_attempts`]
/// times.
///
/// Trees and blobs are shared with the old commits, so nothing but commits is written.
/// The old commits stay in storage until [`Collect`] removes them.
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
            PruneState::Ready(output) => Ok(Step::Done(output)),
            state @ (PruneState::ReadingRef | PruneState::Putting(_) | PruneState::Swapping(_)) => {
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
                    if self.attempts >= self.max_attempts {
                        cache.remember_ref(&self.key, Some(current));
                        return Err(PruneError::Contention {
                            repo: self.repo.clone(),
                            branch: self.branch.clone(),
                            attempts: self.attempts,
                        });
                    }
                    self.begin(cache, current);
                    Ok(())
                }
            },
            (state, _) => {
                self.state = state;
                Err(Misuse("answer does not match the step asked for").into())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reachability, shared by the footprint report and GC
// ---------------------------------------------------------------------------------------

/// A walk from roots through tags, commits (every parent) and trees, fetching one level
/// per round. Blobs are reached by id only, unless a ref names one.
#[derive(Debug, Default)]
struct Mark {
    /// Every object found reachable, blobs included.
    reachable: IdSet,
    /// Objects found but not yet looked into, with the kind they must have (`None`: a
    /// root, which may be of any kind).
    queue: Vec<(ObjectId, Option<Kind>)>,
    /// The ids of the `Get` that is out.
    asked: Vec<(ObjectId, Option<Kind>)>,
    /// Roots that may be absent (reflog entries: git skips those it cannot find).
    optional: IdSet,
    /// Children of every commit and tree looked into, if recorded.
    edges: Option<IdMap<Vec<ObjectId>>>,
    rounds: u32,
}

impl Mark {
    fn recording_edges() -> Self {
        Mark {
            edges: Some(IdMap::default()),
            ..Mark::default()
        }
    }

    /// A root that must exist: a ref or a detached `HEAD`, of any kind.
    fn root(&mut self, id: ObjectId) {
        if self.reachable.insert(id) {
            self.queue.push((id, None));
        }
    }

    /// A root that may be absent: an entry of a reflog.
    fn optional_root(&mut self, id: ObjectId) {
        if self.reachable.insert(id) {
            self.optional.insert(id);
            self.queue.push((id, None));
        }
    }

    fn reach(&mut self, id: ObjectId, kind: Kind) {
        if self.reachable.insert(id) && kind != Kind::Blob {
            self.queue.push((id, Some(kind)));
        }
    }

    /// Look into everything the cache holds; the ids still needed, all in one batch
    /// (empty once the walk is complete).
    fn advance(&mut self, cache: &ObjectCache) -> Result<Vec<ObjectId>, object::Error> {
        while let Some((id, kind)) = self.queue.pop() {
            match cache.get(&id) {
                Some(object) => {
                    let object = object.clone();
                    self.expand(id, kind, &object)?;
                }
                None => self.asked.push((id, kind)),
            }
        }
        if !self.asked.is_empty() {
            self.rounds += 1;
        }
        Ok(self.asked.iter().map(|(id, _)| *id).collect())
    }

    fn provide<E: From<object::Error> + From<Misuse>>(
        &mut self,
        cache: &mut ObjectCache,
        answers: Vec<Option<Vec<u8>>>,
    ) -> Result<(), E> {
        let asked = std::mem::take(&mut self.asked);
        if asked.is_empty() {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        if answers.len() != asked.len() {
            return Err(Misuse("provide must answer every id of the Get, in order").into());
        }
        let max = cache.limits().max_object_bytes;
        for ((id, kind), answer) in asked.into_iter().zip(answers) {
            let stored = match answer {
                Some(stored) => stored,
                None if self.optional.contains(&id) => {
                    // Nothing to keep, and nothing to count.
                    self.reachable.remove(&id);
                    continue;
                }
                None => return Err(object::Error::NotFound { id }.into()),
            };
            let object = object::decode_loose(&id, &stored, max)?;
            self.expand(id, kind, &object)?;
            cache.insert(id, object);
        }
        Ok(())
    }

    fn expand(&mut self, id: ObjectId, expected: Option<Kind>, object: &Object) -> Result<(), object::Error> {
        if let Some(expected) = expected.filter(|kind| *kind != object.kind()) {
            return Err(object::Error::WrongKind {
                id,
                expected,
                actual: object.kind(),
            });
        }
        let mut children = Vec::new();
        match object {
            Object::Commit(commit) => {
                children.push(commit.tree);
                self.reach(commit.tree, Kind::Tree);
                for parent in &commit.parents {
                    children.push(*parent);
                    self.reach(*parent, Kind::Commit);
                }
            }
            Object::Tree(tree) => {
                for entry in &tree.entries {
                    // A submodule names a commit of another repository: not ours to keep.
                    if entry.mode.is_commit() {
                        continue;
                    }
                    children.push(entry.oid);
                    let kind = if entry.mode.is_tree() { Kind::Tree } else { Kind::Blob };
                    self.reach(entry.oid, kind);
                }
            }
            Object::Tag(tag) => {
                children.push(tag.target);
                self.reach(tag.target, tag.target_kind);
            }
            Object::Blob(_) => {}
        }
        if let Some(edges) = &mut self.edges {
            edges.insert(id, children);
        }
        Ok(())
    }
}

/// Where a survey or GC is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Listing the refs of the store.
    ListRefs,
    /// Reading each ref.
    ReadRefs,
    /// Walking commits and trees from the refs.
    Mark,
    /// Listing the objects of the store.
    ListObjects,
    /// Deleting unreachable objects (GC only).
    Sweep,
    /// Finished.
    Done,
}

/// How far a [`Footprint`] or [`Collect`] has come, for drivers that show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// Refs listed.
    pub refs_listed: usize,
    /// Refs read so far.
    pub refs_read: usize,
    /// Objects found reachable so far (commits, trees and blobs).
    pub reachable: u64,
    /// `Get` rounds so far.
    pub rounds: u32,
    /// Object keys listed.
    pub objects_listed: u64,
    /// Listed objects looked at by the sweep so far.
    pub examined: u64,
    /// Objects deleted so far.
    pub deleted: u64,
    /// Stored bytes deleted so far.
    pub deleted_bytes: u64,
    /// Unreachable objects kept so far because they are younger than the grace period.
    pub young: u64,
}

/// What a survey needs next.
#[derive(Debug)]
enum Need {
    List(String),
    Read(Vec<String>),
    Get(Vec<ObjectId>),
    Done,
}

impl Need {
    fn into_step<T>(self) -> Option<Step<T>> {
        match self {
            Need::List(prefix) => Some(Step::List(prefix)),
            Need::Read(keys) => Some(Step::Read(keys)),
            Need::Get(ids) => Some(Step::Get(ids)),
            Need::Done => None,
        }
    }
}

/// Why a survey stopped: the first half of the errors of [`Footprint`] and [`Collect`].
trait SurveyError: From<object::Error> + From<Misuse> + From<Unsupported> + From<CorruptRef> {}

impl<E: From<object::Error> + From<Misuse> + From<Unsupported> + From<CorruptRef>> SurveyError for E {}

/// Finding every root git has, walking what they reach, then listing the objects: the
/// first half of both the footprint report and GC.
///
/// The roots are read as git reads them ([`roots`]): the listings of `refs/`, `logs/` and
/// the places that make a store one GC refuses, then one `Read` of `HEAD`, every loose
/// ref and every reflog, then `packed-refs` (after the loose refs, so a ref that `git
/// pack-refs` moves meanwhile is found in one or the other).
#[derive(Debug)]
struct Survey {
    phase: Phase,
    hash_kind: gix_hash::Kind,
    /// A step is out and not answered yet.
    waiting: bool,
    /// How many of [`roots::LISTINGS`] are answered.
    listings: usize,
    /// Loose refs found, then read.
    refs: Vec<String>,
    /// Reflogs found.
    reflogs: Vec<String>,
    /// Lock files found, for the sweep.
    locks: Vec<Listed>,
    /// The loose refs that held a value when read.
    loose: std::collections::HashSet<String>,
    /// `Read` rounds answered: the loose files, then `packed-refs`.
    reads: u8,
    /// Refs (loose, packed) and a detached `HEAD`, with what each points at.
    roots: Vec<(String, ObjectId)>,
    /// Reflog entries, under the reflog's key.
    reflog_roots: Vec<(String, ObjectId)>,
    mark: Mark,
    objects: Vec<Listed>,
    /// The objects are listed: the survey is complete.
    listed: bool,
}

impl Survey {
    fn new(mark: Mark, hash_kind: gix_hash::Kind) -> Self {
        Survey {
            phase: Phase::ListRefs,
            hash_kind,
            waiting: false,
            listings: 0,
            refs: Vec::new(),
            reflogs: Vec::new(),
            locks: Vec::new(),
            loose: Default::default(),
            reads: 0,
            roots: Vec::new(),
            reflog_roots: Vec::new(),
            mark,
            objects: Vec::new(),
            listed: false,
        }
    }

    fn poll(&mut self, cache: &ObjectCache) -> Result<Need, object::Error> {
        loop {
            match self.phase {
                Phase::ListRefs => match roots::LISTINGS.get(self.listings) {
                    Some(prefix) => {
                        self.waiting = true;
                        return Ok(Need::List((*prefix).to_owned()));
                    }
                    None => self.phase = Phase::ReadRefs,
                },
                Phase::ReadRefs => {
                    let keys: Vec<String> = match self.reads {
                        0 => roots::FILES
                            .iter()
                            .map(|key| (*key).to_owned())
                            .chain(self.refs.iter().cloned())
                            .chain(self.reflogs.iter().cloned())
                            .collect(),
                        1 => vec![roots::PACKED_REFS.to_owned()],
                        _ => {
                            self.phase = Phase::Mark;
                            continue;
                        }
                    };
                    self.waiting = true;
                    return Ok(Need::Read(keys));
                }
                Phase::Mark => {
                    let ids = self.mark.advance(cache)?;
                    if !ids.is_empty() {
                        self.waiting = true;
                        return Ok(Need::Get(ids));
                    }
                    self.phase = Phase::ListObjects;
                }
                Phase::ListObjects if self.listed => return Ok(Need::Done),
                Phase::ListObjects => {
                    self.waiting = true;
                    return Ok(Need::List(store::OBJECTS.into()));
                }
                Phase::Sweep | Phase::Done => return Ok(Need::Done),
            }
        }
    }

    fn provide<E: SurveyError>(&mut self, cache: &mut ObjectCache, answers: Vec<Option<Vec<u8>>>) -> Result<(), E> {
        if self.phase != Phase::Mark || !self.waiting {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        self.mark.provide::<E>(cache, answers)?;
        self.waiting = false;
        Ok(())
    }

    /// Take an answer; `Ok(Err(answer))` gives it back if the survey did not ask for it.
    fn answer<E: SurveyError>(&mut self, answer: Answer) -> Result<Result<(), Answer>, E> {
        if !self.waiting {
            return Ok(Err(answer));
        }
        match (self.phase, answer) {
            (Phase::ListRefs, Answer::List(listed)) => {
                let prefix = roots::LISTINGS.get(self.listings).copied().unwrap_or_default();
                for listed in listed.into_iter().filter(|l| l.key.starts_with(prefix)) {
                    match roots::classify(prefix, &listed.key)? {
                        Found::Ref => self.refs.push(listed.key),
                        Found::Reflog => self.reflogs.push(listed.key),
                        Found::Lock => self.locks.push(listed),
                        Found::Other => {}
                    }
                }
                self.listings += 1;
                if self.listings == roots::LISTINGS.len() {
                    order::sort(&mut self.refs);
                    self.refs.dedup();
                }
            }
            (Phase::ReadRefs, Answer::Read(contents)) => {
                self.read::<E>(contents)?;
                self.reads += 1;
            }
            (Phase::ListObjects, Answer::List(listed)) => {
                self.objects = listed
                    .into_iter()
                    .filter(|l| l.key.starts_with(store::OBJECTS))
                    .collect();
                self.listed = true;
            }
            (_, answer) => return Ok(Err(answer)),
        }
        self.waiting = false;
        Ok(Ok(()))
    }

    /// Take the roots out of the files read.
    fn read<E: SurveyError>(&mut self, contents: Vec<Option<Vec<u8>>>) -> Result<(), E> {
        let hash_kind = self.hash_kind;
        if self.reads == 1 {
            let [packed] = <[_; 1]>::try_from(contents).map_err(|_| Misuse("a Read must answer every key"))?;
            for (name, id) in packed.map_or(Ok(Vec::new()), |bytes| roots::parse_packed_refs(&bytes, hash_kind))? {
                // A loose ref shadows its packed value, which git no longer reaches.
                if !self.loose.contains(&name) {
                    self.mark.root(id);
                    self.roots.push((name, id));
                }
            }
            return Ok(());
        }
        if contents.len() != roots::FILES.len() + self.refs.len() + self.reflogs.len() {
            return Err(Misuse("a Read must answer every key").into());
        }
        let mut contents = contents.into_iter();
        for (key, content) in roots::FILES.iter().zip(contents.by_ref()) {
            let Some(bytes) = content else { continue };
            roots::check_file(key)?;
            if let Some(id) = roots::parse_ref(key, &bytes, hash_kind)? {
                self.mark.root(id);
                self.roots.push(((*key).to_owned(), id));
            }
        }
        for (key, content) in self.refs.iter().zip(contents.by_ref()) {
            // Absent: deleted since the listing, or only in `packed-refs`.
            let Some(bytes) = content else { continue };
            self.loose.insert(key.clone());
            if let Some(id) = roots::parse_ref(key, &bytes, hash_kind)? {
                self.mark.root(id);
                self.roots.push((key.clone(), id));
            }
        }
        for (key, content) in self.reflogs.iter().zip(contents) {
            let Some(bytes) = content else { continue };
            for id in roots::parse_reflog(key, &bytes, hash_kind)? {
                self.mark.optional_root(id);
                self.reflog_roots.push((key.clone(), id));
            }
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            phase: self.phase,
            refs_listed: self.refs.len(),
            refs_read: if self.reads > 0 { self.refs.len() } else { 0 },
            reachable: self.mark.reachable.len() as u64,
            rounds: self.mark.rounds,
            objects_listed: self.objects.len() as u64,
            examined: 0,
            deleted: 0,
            deleted_bytes: 0,
            young: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Footprint
// ---------------------------------------------------------------------------------------

/// The objects one repo's refs reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoUsage {
    /// The repo.
    pub repo: RepoName,
    /// How many refs it has.
    pub refs: usize,
    /// The objects its refs reach. An object shared with other repos counts in each.
    pub reachable: Usage,
}

/// The size of a store, from a [`Footprint`].
///
/// Counts cover loose objects as storage lists them (`objects/ab/cdef...`); a reachable
/// object that is not listed (a blob lost, or an object in a pack) counts with 0 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FootprintReport {
    /// Every loose object in the store.
    pub objects: Usage,
    /// Per repo, sorted by name: the objects its refs reach.
    pub repos: Vec<RepoUsage>,
    /// The objects reached from refs outside any repo's namespace (e.g. `refs/heads/x`).
    pub other_refs: Usage,
    /// Loose objects no ref reaches: what GC would delete once they are old enough.
    pub unreachable: Usage,
    /// Keys under `objects/` that are not loose objects (packs, `info/packs`).
    pub other_keys: Usage,
}

/// Why a [`Footprint`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FootprintError {
    /// A commit or tree a ref reaches is missing, corrupt or of the wrong kind.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// The store holds something the report cannot account for (alternates, a shallow
    /// file, worktrees, packs).
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// A ref, `HEAD`, `packed-refs` or reflog does not read as git writes it.
    #[error(transparent)]
    CorruptRef(#[from] CorruptRef),
    /// The storage adapter failed.
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl From<StorageError> for FootprintError {
    fn from(err: StorageError) -> Self {
        FootprintError::Storage(err)
    }
}

/// The footprint report: lists the refs, reads each, walks what they reach (commits and
/// trees, one level per round; never blobs), then lists the objects. Call
/// [`poll`](Operation::poll) until it returns [`Step::Done`], answering [`Step::Get`]
/// with [`provide`](Operation::provide) and every other step with
/// [`answer`](Operation::answer). It writes nothing.
#[derive(Debug)]
pub struct Footprint {
    survey: Survey,
    hash_kind: gix_hash::Kind,
    done: bool,
}

impl Footprint {
    /// A report for the store whose objects `cache` holds.
    pub fn new(cache: &ObjectCache) -> Self {
        Footprint {
            survey: Survey::new(Mark::recording_edges(), cache.hash_kind()),
            hash_kind: cache.hash_kind(),
            done: false,
        }
    }

    /// How far the report has come.
    pub fn progress(&self) -> Progress {
        self.survey.progress()
    }

    fn report(&self) -> FootprintReport {
        let mut sizes: IdMap<u64> = IdMap::with_capacity_and_hasher(self.survey.objects.len(), Default::default());
        let mut objects = Usage::default();
        let mut other_keys = Usage::default();
        let mut unreachable = Usage::default();
        for listed in &self.survey.objects {
            match loose_id(&listed.key, self.hash_kind) {
                Some(id) => {
                    objects.add(listed.size);
                    sizes.insert(id, listed.size);
                    if !self.survey.mark.reachable.contains(&id) {
                        unreachable.add(listed.size);
                    }
                }
                None => other_keys.add(listed.size),
            }
        }

        let mut by_repo: BTreeMap<RepoName, (usize, Vec<ObjectId>)> = BTreeMap::new();
        let mut others = Vec::new();
        let reflogs = self.survey.reflog_roots.iter().map(|(key, id)| (key, id, false));
        for (key, id, is_ref) in self.survey.roots.iter().map(|(key, id)| (key, id, true)).chain(reflogs) {
            // A reflog counts for the repo of its ref, but is not a ref of its own.
            match repo_of(key.strip_prefix("logs/").unwrap_or(key)) {
                Some(repo) => {
                    let entry = by_repo.entry(repo).or_default();
                    entry.0 += usize::from(is_ref);
                    entry.1.push(*id);
                }
                None => others.push(*id),
            }
        }
        let edges = self.survey.mark.edges.as_ref();
        let usage = |roots: &[ObjectId]| {
            let mut usage = Usage::default();
            let mut seen = IdSet::default();
            let mut stack: Vec<ObjectId> = roots.to_vec();
            while let Some(id) = stack.pop() {
                // A reflog entry whose object is gone reaches nothing.
                if !seen.insert(id) || !self.survey.mark.reachable.contains(&id) {
                    continue;
                }
                usage.add(sizes.get(&id).copied().unwrap_or(0));
                if let Some(children) = edges.and_then(|e| e.get(&id)) {
                    stack.extend(children.iter().filter(|c| !seen.contains(*c)));
                }
            }
            usage
        };
        let repos = by_repo
            .into_iter()
            .map(|(repo, (refs, roots))| RepoUsage {
                reachable: usage(&roots),
                repo,
                refs,
            })
            .collect();
        FootprintReport {
            objects,
            repos,
            other_refs: usage(&others),
            unreachable,
            other_keys,
        }
    }
}

/// The id of the loose object stored at `key`, if `key` is exactly the key core builds
/// for it (anything else under `objects/` is left alone).
fn loose_id(key: &str, hash_kind: gix_hash::Kind) -> Option<ObjectId> {
    store::parse_object_key(key, hash_kind).filter(|id| object::loose_key(id) == key)
}

/// `true` for a temporary file a writer makes before it links its result into place,
/// as `git prune` knows them: `tmp_obj_*` below `objects/`, and `tmp_*` directly in
/// `objects/` or `objects/pack/`.
fn is_temporary(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(store::OBJECTS) else {
        return false;
    };
    let (folder, name) = rest.rsplit_once('/').unwrap_or(("", rest));
    name.starts_with("tmp_obj_") || (name.starts_with("tmp_") && (folder.is_empty() || folder == "pack"))
}

/// The repo whose namespace holds the ref `key`, if any.
fn repo_of(key: &str) -> Option<RepoName> {
    let rest = key.strip_prefix(store::NAMESPACES)?;
    let (name, _) = rest.split_once('/')?;
    RepoName::new(name).ok()
}

impl Operation for Footprint {
    type Output = FootprintReport;
    type Error = FootprintError;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<FootprintReport>, FootprintError> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        if self.survey.waiting {
            return Err(Misuse("poll called before the last step was answered").into());
        }
        match self.survey.poll(cache)?.into_step() {
            Some(step) => Ok(step),
            None => {
                self.done = true;
                self.survey.phase = Phase::Done;
                Ok(Step::Done(self.report()))
            }
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), FootprintError> {
        self.survey.provide::<FootprintError>(cache, objects)
    }

    fn answer(&mut self, _cache: &mut ObjectCache, answer: Answer) -> Result<(), FootprintError> {
        self.survey
            .answer::<FootprintError>(answer)?
            .map_err(|_| Misuse("answer does not match the step asked for").into())
    }
}

// ---------------------------------------------------------------------------------------
// Garbage collection
// ---------------------------------------------------------------------------------------

/// How GC runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectOptions {
    /// The current time, in milliseconds since the Unix epoch (core has no clock).
    pub now_ms: i64,
    /// An unreachable object is deleted only if it was stored more than this many
    /// milliseconds before `now_ms`. It must exceed the longest time a writer takes from
    /// its first `Put` to its compare-and-swap.
    pub grace_ms: u64,
    /// The most keys one [`Step::Delete`] carries; at least 1.
    pub batch: usize,
}

impl CollectOptions {
    /// GC at `now_ms` with [`DEFAULT_GRACE_MS`] and [`DEFAULT_BATCH`].
    pub fn new(now_ms: i64) -> Self {
        CollectOptions {
            now_ms,
            grace_ms: DEFAULT_GRACE_MS,
            batch: DEFAULT_BATCH,
        }
    }
}

/// What a [`Collect`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Refs read (the roots of the mark).
    pub refs: usize,
    /// Objects reachable from them: commits, trees and blobs.
    pub reachable: u64,
    /// Loose objects listed.
    pub listed: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// Their stored bytes.
    pub deleted_bytes: u64,
    /// Unreachable objects kept because they are younger than the grace period.
    pub young: u64,
    /// Their stored bytes.
    pub young_bytes: u64,
    /// `Get` rounds the mark took.
    pub rounds: u32,
}

/// Why a [`Collect`] failed. A failure before the sweep deletes nothing; a failure during
/// it leaves only unreachable objects deleted, and running GC again finishes the job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
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
    /// A commit or tree a ref reaches is missing, corrupt or of the wrong kind. GC stops
    /// before deleting anything: what lies below it cannot be known to be unreachable.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// The store holds something GC cannot account for: alternates, a shallow file, an
    /// index, linked worktrees, a commit-graph, or packs (which snapgit cannot read yet).
    /// Nothing was deleted.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// A ref, `HEAD`, `packed-refs` or reflog does not read as git writes it. Nothing was
    /// deleted.
    #[error(transparent)]
    CorruptRef(#[from] CorruptRef),
    /// The storage adapter failed.
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl From<StorageError> for CollectError {
    fn from(err: StorageError) -> Self {
        CollectError::Storage(err)
    }
}

/// Garbage collection: a mark-and-sweep from every root git has.
///
/// Call [`poll`](Operation::poll) until it returns [`Step::Done`], answering
/// [`Step::Get`] with [`provide`](Operation::provide) and every other step with
/// [`answer`](Operation::answer). The roots are every ref (loose or packed, in any
/// namespace or none, pointing at any kind of object; annotated tags are followed), a
/// detached `HEAD`, and every entry of every reflog under `logs/`. A store holding what
/// GC cannot account for (alternates, a shallow file, an index, linked worktrees, a
/// commit-graph, or packs, which snapgit cannot read yet) is refused with
/// [`CollectError::Unsupported`] before anything is read or deleted.
///
/// It walks tags, commits (every parent) and trees one level per round, then lists
/// `objects/` and deletes, in [`Step::Delete`] batches of at most
/// [`CollectOptions::batch`] keys, each loose object that nothing reaches and that was
/// stored more than [`CollectOptions::grace_ms`] ago, the temporary files killed
/// writers left under `objects/` past the same grace period, and lock files under
/// `refs/` and `logs/` (and `HEAD.lock`, `packed-refs.lock`) older than both the grace
/// period and [`STALE_LOCK_MS`]. Nothing else is ever deleted.
///
/// Safe while writers run: a writer stores its objects before it moves a ref, so an
/// object that is unreachable when the refs are read is either garbage or part of a
/// commit in flight, and a commit in flight is younger than the grace period. Safe to
/// stop at any point and run again: a new run marks afresh and deletes what is left.
/// Two GCs at once are safe too; one may stop with a not-found error when the other
/// deleted what a ref it read a moment earlier pointed to.
#[derive(Debug)]
pub struct Collect {
    survey: Survey,
    options: CollectOptions,
    hash_kind: gix_hash::Kind,
    /// The next listed object the sweep looks at.
    cursor: usize,
    /// The batch out for deletion, with its stored bytes.
    deleting: Option<(u64, u64)>,
    examined: u64,
    deleted: u64,
    deleted_bytes: u64,
    young: u64,
    young_bytes: u64,
    done: bool,
}

impl Collect {
    /// Prepare GC for the store whose objects `cache` holds.
    pub fn new(cache: &ObjectCache, options: CollectOptions) -> Result<Self, CollectError> {
        if options.batch == 0 {
            return Err(CollectError::InvalidOption {
                option: "batch",
                value: "0".into(),
                reason: "a delete batch must hold at least one key",
            });
        }
        Ok(Collect {
            survey: Survey::new(Mark::default(), cache.hash_kind()),
            options,
            hash_kind: cache.hash_kind(),
            cursor: 0,
            deleting: None,
            examined: 0,
            deleted: 0,
            deleted_bytes: 0,
            young: 0,
            young_bytes: 0,
            done: false,
        })
    }

    /// How far GC has come.
    pub fn progress(&self) -> Progress {
        let mut progress = self.survey.progress();
        if self.done {
            progress.phase = Phase::Done;
        }
        progress.examined = self.examined;
        progress.deleted = self.deleted;
        progress.deleted_bytes = self.deleted_bytes;
        progress.young = self.young;
        progress
    }

    /// `true` if a key stored at `modified_ms` is past the grace period, and at least
    /// `at_least` milliseconds old.
    fn old_enough(&self, modified_ms: i64, at_least: u64) -> bool {
        let age = i128::from(self.options.now_ms) - i128::from(modified_ms);
        age > i128::from(self.options.grace_ms.max(at_least))
    }

    /// The next batch of keys to delete, or `None` once every listed object and lock file
    /// was looked at.
    fn next_batch(&mut self) -> Option<(Vec<String>, u64)> {
        let mut keys = Vec::new();
        let mut bytes = 0u64;
        let objects = self.survey.objects.len();
        while keys.len() < self.options.batch {
            let listed = match self.cursor.checked_sub(objects) {
                None => self.survey.objects.get(self.cursor),
                Some(lock) => self.survey.locks.get(lock),
            };
            let Some(listed) = listed else { break };
            self.cursor += 1;
            let deletable = match loose_id(&listed.key, self.hash_kind) {
                Some(id) => {
                    self.examined += 1;
                    if self.survey.mark.reachable.contains(&id) {
                        continue;
                    }
                    if !self.old_enough(listed.modified_ms, 0) {
                        self.young += 1;
                        self.young_bytes = self.young_bytes.saturating_add(listed.size);
                        continue;
                    }
                    true
                }
                // What a killed writer left: `git prune` removes these after the same expiry.
                None if is_temporary(&listed.key) => self.old_enough(listed.modified_ms, 0),
                // A lock is held for milliseconds; one older than this is abandoned, and
                // the storage backends themselves break it after 10 seconds.
                None if store::is_lock(&listed.key) => self.old_enough(listed.modified_ms, STALE_LOCK_MS),
                None => false,
            };
            if deletable {
                keys.push(listed.key.clone());
                bytes = bytes.saturating_add(listed.size);
            }
        }
        (!keys.is_empty()).then_some((keys, bytes))
    }

    fn output(&self) -> Collected {
        Collected {
            refs: self.survey.roots.len(),
            reachable: self.survey.mark.reachable.len() as u64,
            listed: self.survey.objects.len() as u64,
            deleted: self.deleted,
            deleted_bytes: self.deleted_bytes,
            young: self.young,
            young_bytes: self.young_bytes,
            rounds: self.survey.mark.rounds,
        }
    }
}

impl Operation for Collect {
    type Output = Collected;
    type Error = CollectError;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Collected>, CollectError> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        if self.survey.waiting || self.deleting.is_some() {
            return Err(Misuse("poll called before the last step was answered").into());
        }
        if self.survey.phase != Phase::Sweep {
            if let Some(step) = self.survey.poll(cache)?.into_step() {
                return Ok(step);
            }
            self.survey.phase = Phase::Sweep;
        }
        match self.next_batch() {
            Some((keys, bytes)) => {
                self.deleting = Some((keys.len() as u64, bytes));
                Ok(Step::Delete(keys))
            }
            None => {
                self.done = true;
                self.survey.phase = Phase::Done;
                Ok(Step::Done(self.output()))
            }
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), CollectError> {
        self.survey.provide::<CollectError>(cache, objects)
    }

    fn answer(&mut self, _cache: &mut ObjectCache, answer: Answer) -> Result<(), CollectError> {
        if let Some((count, bytes)) = self.deleting {
            if answer != Answer::Deleted {
                return Err(Misuse("answer does not match the step asked for").into());
            }
            self.deleting = None;
            self.deleted += count;
            self.deleted_bytes = self.deleted_bytes.saturating_add(bytes);
            return Ok(());
        }
        self.survey
            .answer::<CollectError>(answer)?
            .map_err(|_| Misuse("answer does not match the step asked for").into())
    }
}
