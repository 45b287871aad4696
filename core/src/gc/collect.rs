//! Garbage collection: a mark-and-sweep from every root git has.

use super::{
    CorruptRef, DEFAULT_BATCH, DEFAULT_GRACE_MS, Phase, Progress, STALE_LOCK_MS, Unsupported, loose_id, mark::Mark,
    survey::Survey,
};
use crate::{
    cache::ObjectCache,
    object,
    step::{Answer, Misuse, Operation, Step, StorageError},
    store,
};

/// How GC runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectOptions {
    /// The current time, in milliseconds since the Unix epoch (core has no clock).
    pub now_ms: i64,
    /// An unreachable object is deleted only if it was stored more than this many
    /// milliseconds before `now_ms`. It must exceed the longest time a writer takes from
    /// its first `Put` to its compare-and-swap.
    #[serde(default = "crate::api::wire::default::grace_ms")]
    pub grace_ms: u64,
    /// The most keys one [`Step::Delete`] carries; at least 1.
    #[serde(default = "crate::api::wire::default::batch")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
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
    /// index, linked worktrees, or a promisor pack.
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
/// promisor pack) is refused with [`CollectError::Unsupported`] before
/// anything is read or deleted. Packed objects are walked through like loose ones (when
/// driven through [`Packed`](crate::pack::Packed)); packs are never deleted.
///
/// It walks tags, commits (every parent) and trees one level per round, then lists
/// `objects/` and deletes, in [`Step::Delete`] batches of at most
/// [`CollectOptions::batch`] keys, each loose object that nothing reaches and that was
/// stored more than [`CollectOptions::grace_ms`] ago, the temporary files killed
/// writers left under `objects/` past the same grace period, and lock files under
/// `refs/` and `logs/` (and `HEAD.lock`, `packed-refs.lock`) older than both the grace
/// period and [`STALE_LOCK_MS`]. When it deleted anything, it also removes the
/// commit-graph files (`objects/info/commit-graph*`), which may name a deleted commit and
/// which git writes again. Nothing else is ever deleted.
///
/// Safe while writers run: a writer stores its objects before it moves a ref, so an
/// object that is unreachable when the refs are read is either garbage or part of a
/// commit in flight, and a commit in flight is younger than the grace period. An old
/// object a commit reuses (a file set back to a version retention dropped) is refreshed
/// by the writer's put, as storage backends do, so the listing finds it young; and
/// before each batch the refs are read again and what they now reach is kept, so a
/// commit that reused such an object after the listing and landed before its batch
/// keeps it too. What remains is git's own window: a commit that reuses an old object
/// and lands between that last reading of the refs and the batch's delete. Safe to
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
    /// The next batch, held while the refs are read again.
    held: Option<(Vec<String>, u64)>,
    /// What the first reading of the refs found: the count reported, and the lock and
    /// derived files (a second listing finds them again).
    first_roots: Option<(usize, Vec<crate::step::Listed>, Vec<String>)>,
    /// The roots the first reading found, reported.
    first_refs: Option<usize>,
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
            held: None,
            first_roots: None,
            first_refs: None,
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
        if let Some((refs, _, _)) = &self.first_roots {
            // Reading the refs again is part of the sweep, and the counts of the first
            // reading stay.
            progress.phase = Phase::Sweep;
            progress.refs_listed = *refs;
            progress.refs_read = *refs;
        }
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
            refs: self
                .first_roots
                .as_ref()
                .map_or(self.survey.roots.len(), |(refs, _, _)| *refs),
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
            if let Some((_, locks, derived)) = &self.first_roots {
                // Back from reading the refs again: the lock and derived files are the
                // first listing's; what the refs reach now stays.
                self.survey.locks = locks.clone();
                self.survey.derived = derived.clone();
            }
        }
        if let Some((keys, bytes)) = self.held.take() {
            // Refs read again just now: a commit that landed meanwhile may reach what
            // the batch was going to delete (an old object it reused, refreshed too late
            // for the listing). What it reaches now stays.
            let hash_kind = self.hash_kind;
            let reachable = &self.survey.mark.reachable;
            let kept: Vec<String> = keys
                .into_iter()
                .filter(|key| !loose_id(key, hash_kind).is_some_and(|id| reachable.contains(&id)))
                .collect();
            if !kept.is_empty() {
                self.deleting = Some((kept.len() as u64, bytes));
                return Ok(Step::Delete(kept));
            }
        }
        match self.next_batch() {
            Some((keys, bytes)) => {
                // Read the refs again before each batch goes.
                if self.first_roots.is_none() {
                    self.first_refs = Some(self.survey.roots.len());
                    self.first_roots = Some((
                        self.survey.progress().refs_listed,
                        self.survey.locks.clone(),
                        self.survey.derived.clone(),
                    ));
                }
                self.held = Some((keys, bytes));
                self.survey.read_refs_again();
                self.poll(cache)
            }
            // A commit-graph may name a commit just deleted, which git would then fail to
            // verify: it goes too (git writes it again at its next `gc`). Not counted.
            None if self.deleted > 0 && !self.survey.derived.is_empty() => {
                self.deleting = Some((0, 0));
                Ok(Step::Delete(std::mem::take(&mut self.survey.derived)))
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
