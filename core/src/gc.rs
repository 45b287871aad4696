//! Keeping a store bounded: retention for a branch, the footprint report, and garbage
//! collection.
//!
//! Three sans-IO operations, driven like every other ([`Operation`](crate::Operation)):
//!
//! - [`Prune`] applies a [`Retention`] to one branch of one repo: it keeps the newest
//!   commits of the first-parent history and rewrites them as a new chain whose root
//!   carries the tree of the oldest kept commit, then moves the branch with a
//!   compare-and-swap. The old commits stay in storage until [`Collect`] removes them.
//! - [`Footprint`] counts every object in the store and, per repo, the objects its refs
//!   reach, plus the objects no ref reaches.
//! - [`Collect`] is a mark-and-sweep from every root git has: every ref of every repo
//!   (and outside any), a detached `HEAD`, every reflog entry. It deletes an unreachable
//!   object only once it is older than a grace period, so the objects of a commit still
//!   in flight (written, ref not yet moved) survive. A store it cannot account for is
//!   refused ([`Unsupported`]).
//!
//! Reachability reads tags, commits and trees, one level per round with every unknown id
//! of that level in one [`Step::Get`](crate::Step::Get); blob ids come from the trees, so no blob is read
//! unless a ref names one. Submodule entries name commits of another repository and are
//! not followed.
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

use gix_hash::ObjectId;

mod cap;
mod collect;
mod compact;
mod footprint;
mod mark;
mod prune;
mod roots;
mod survey;

pub use cap::{Cap, CapError, CapRequest, Capped};
pub use collect::{Collect, CollectError, CollectOptions, Collected};
pub use compact::{Compact, CompactError, CompactOptions, Compacted, INFO_PACKS, SINGLE_GRAPH_COMMITS};
pub use footprint::{Footprint, FootprintError, FootprintReport, RepoUsage};
pub use prune::{Prune, PruneError, PruneRequest, Pruned, Retention, Within};
pub use roots::{CorruptRef, Unsupported};

use crate::{object, store};

/// How many times [`Prune`] plans and tries its compare-and-swap by default: as often as
/// a commit ([`crate::retry`]).
pub use crate::retry::DEFAULT_MAX_ATTEMPTS;

/// How old an unreachable object must be before [`Collect`] deletes it, by default: one
/// hour, in milliseconds.
pub const DEFAULT_GRACE_MS: u64 = 60 * 60 * 1000;

/// How old a lock file must be before [`Collect`] removes it, whatever the grace period:
/// one minute, in milliseconds. A live lock is held for milliseconds.
pub const STALE_LOCK_MS: u64 = 60 * 1000;

/// How many keys one [`Step::Delete`](crate::Step::Delete) of [`Collect`] carries at most, by default (the
/// most one S3 `DeleteObjects` request takes).
pub const DEFAULT_BATCH: usize = 1000;

/// Stored objects: how many, and their stored (compressed) size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
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

/// Where a survey or GC is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
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
    /// Reading the objects to pack, finding deltas and writing the pack (compaction only).
    Pack,
    /// Deleting unreachable objects (GC), or copies a settled pack holds (compaction).
    Sweep,
    /// Finished.
    Done,
}

/// How far a [`Footprint`] or [`Collect`] has come, for drivers that show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
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

/// The id of the loose object stored at `key`, if `key` is exactly the key core builds
/// for it (anything else under `objects/` is left alone).
fn loose_id(key: &str, hash_kind: gix_hash::Kind) -> Option<ObjectId> {
    store::parse_object_key(key, hash_kind).filter(|id| object::loose_key(id) == key)
}

/// Every entry of the packs `cache` listed, with its size in its pack: from its offset
/// to the next entry's, or to the pack's trailer.
fn packed_sizes(cache: &crate::ObjectCache) -> Vec<(ObjectId, u64)> {
    let trailer = cache.hash_kind().len_in_bytes() as u64;
    let mut out = Vec::new();
    for pack in cache.packs().iter().flat_map(|packs| packs.iter()) {
        let mut entries: Vec<(u64, ObjectId)> = pack
            .index
            .ids()
            .filter_map(|id| pack.index.lookup(&id).map(|offset| (offset, id)))
            .collect();
        crate::order::sort(&mut entries);
        let end = pack.size.saturating_sub(trailer);
        for (i, (offset, id)) in entries.iter().enumerate() {
            let next = entries.get(i + 1).map_or(end, |(next, _)| *next);
            out.push((*id, next.saturating_sub(*offset)));
        }
    }
    out
}
