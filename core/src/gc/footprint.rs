//! The footprint report: what a store holds, per repo, and what nothing reaches.

use std::collections::BTreeMap;

use gix_hash::ObjectId;

use super::{CorruptRef, Phase, Progress, Unsupported, Usage, loose_id, mark::Mark, packed_sizes, survey::Survey};
use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object,
    step::{Answer, Misuse, Operation, Step, StorageError},
    store::{self, RepoName},
};

/// The objects one repo's refs reach.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
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
/// Counts cover loose objects as storage lists them (`objects/ab/cdef...`) and packed
/// ones as their entries in the packs (a delta is small); a reachable object that is
/// neither (a blob lost) counts with 0 bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FootprintReport {
    /// Every object stored: each loose copy, and each entry of every pack.
    pub objects: Usage,
    /// Per repo, sorted by name: the objects its refs reach.
    pub repos: Vec<RepoUsage>,
    /// The objects reached from refs outside any repo's namespace (e.g. `refs/heads/x`).
    pub other_refs: Usage,
    /// Objects no ref reaches: loose ones, which GC deletes once they are old enough, and
    /// packed ones, which compaction with `drop_unreachable` leaves out.
    pub unreachable: Usage,
    /// Keys under `objects/` that are neither loose objects nor packs (pack indexes, the
    /// commit-graph, `info/packs`).
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
    /// file, an index, worktrees, a promisor pack).
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

    fn report(&self, cache: &ObjectCache) -> FootprintReport {
        let mut sizes: IdMap<u64> = IdMap::with_capacity_and_hasher(self.survey.objects.len(), Default::default());
        let mut objects = Usage::default();
        let mut other_keys = Usage::default();
        let mut unreachable = Usage::default();
        let packed = packed_sizes(cache);
        // A pack's bytes count as its objects' entries; a pack whose index was never
        // read (nothing the refs reach is in it, in a cache that never listed the packs)
        // stays one of `other_keys`.
        let packs = cache.packs().unwrap_or_default();
        let known: foldhash::HashSet<&str> = packs.iter().map(|p| p.key.as_str()).collect();
        for listed in &self.survey.objects {
            match loose_id(&listed.key, self.hash_kind) {
                Some(id) => {
                    objects.add(listed.size);
                    sizes.insert(id, listed.size);
                    if !self.survey.mark.reachable.contains(&id) {
                        unreachable.add(listed.size);
                    }
                }
                None if known.contains(listed.key.as_str()) => {}
                None => other_keys.add(listed.size),
            }
        }
        let mut dropped = IdSet::default();
        for (id, size) in packed {
            objects.add(size);
            sizes.entry(id).or_insert(size);
            if !self.survey.mark.reachable.contains(&id) && dropped.insert(id) {
                unreachable.add(size);
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
                Ok(Step::Done(self.report(cache)))
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
