//! Compaction: loose objects into packs with deltas, small packs merged geometrically.

use bstr::BString;
use gix_hash::ObjectId;
use gix_object::Kind;

use super::{
    CorruptRef, DEFAULT_BATCH, DEFAULT_GRACE_MS, Phase, Progress, Unsupported, loose_id, mark::Mark, survey::Survey,
};
use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object,
    pack::{self, PackFile, write},
    step::{Answer, Listed, Misuse, Operation, Range, Step, StorageError, Stored},
};

/// git's list of packs for dumb-HTTP clients, written again when the packs change.
pub const INFO_PACKS: &str = "objects/info/packs";

/// Files beside a pack that pin it: git never repacks a kept pack, a cruft pack (its
/// `.mtimes` date unreachable objects) or a promisor pack, and neither does compaction.
const PINNING: [&str; 3] = [".keep", ".mtimes", ".promisor"];

/// Files beside a pack that git derives from it and that go with it.
const DERIVED: [&str; 2] = [".rev", ".bitmap"];

/// How compaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompactOptions {
    /// The current time, in milliseconds since the Unix epoch (core has no clock).
    pub now_ms: i64,
    /// A loose object or pack whose objects a pack holds is deleted only once that pack
    /// was stored this many milliseconds before `now_ms` (0: at once, in the same run),
    /// so that readers who listed the store before the pack existed still find every
    /// object.
    #[serde(default = "crate::api::wire::default::grace_ms")]
    pub grace_ms: u64,
    /// How many objects before each one a delta is looked for against (git's
    /// `pack.window`); 0 writes no deltas.
    #[serde(default = "default_window")]
    pub window: usize,
    /// The longest delta chain (git's `pack.depth`).
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// The geometric factor: after compaction each pack holds at least this many times
    /// the objects of all smaller packs together, so a store keeps O(log n) packs. At
    /// least 2.
    #[serde(default = "default_factor")]
    pub factor: u64,
    /// The most keys one [`Step::Delete`] carries; at least 1.
    #[serde(default = "crate::api::wire::default::batch")]
    pub batch: usize,
    /// Compact only when the store holds at least this many loose objects (or
    /// [`min_packs`](Self::min_packs) packs): one listing decides, and below both the run
    /// ends there. Cheap enough to run after every commit. `None` with `min_packs` `None`:
    /// always.
    #[serde(default)]
    pub min_loose: Option<u64>,
    /// Compact only when the store holds at least this many packs (or
    /// [`min_loose`](Self::min_loose) loose objects).
    #[serde(default)]
    pub min_packs: Option<u64>,
    /// Leave out of the new pack the objects no root reaches, in packs older than the
    /// grace period (what `prune` and `delete` left behind; git's `repack -a -d` with
    /// `gc --prune`), so that the space they take is given back. When some such pack
    /// holds one, every pack that is not kept, cruft or promisor is merged into one; the
    /// old packs go once that pack is older than the grace period, which a later run
    /// sees (never in the run that writes it).
    #[serde(default)]
    pub drop_unreachable: bool,
    /// Histories of up to this many commits keep their commit-graph as one file, which
    /// a reader gets with the pack indexes; longer ones a split chain of layers updated
    /// incrementally, which takes a reader one more round ([`SINGLE_GRAPH_COMMITS`] by
    /// default).
    #[serde(default = "default_split_graph_at")]
    pub split_graph_at: u64,
}

fn default_split_graph_at() -> u64 {
    SINGLE_GRAPH_COMMITS as u64
}

fn default_window() -> usize {
    write::Options::default().window
}

fn default_depth() -> usize {
    write::Options::default().depth
}

fn default_factor() -> u64 {
    2
}

impl CompactOptions {
    /// Compaction at `now_ms` with the default grace period, window, depth and factor.
    pub fn new(now_ms: i64) -> Self {
        CompactOptions {
            now_ms,
            grace_ms: DEFAULT_GRACE_MS,
            window: default_window(),
            depth: default_depth(),
            factor: default_factor(),
            batch: DEFAULT_BATCH,
            min_loose: None,
            min_packs: None,
            drop_unreachable: false,
            split_graph_at: default_split_graph_at(),
        }
    }
}

/// What a [`Compact`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Compacted {
    /// The pack written, `objects/pack/pack-<hash>.pack`, if any.
    pub pack: Option<String>,
    /// Objects in it.
    pub objects: u64,
    /// How many of them are deltas.
    pub deltas: u64,
    /// Its size in bytes (its index not counted).
    pub pack_bytes: u64,
    /// Loose objects it took in.
    pub loose_packed: u64,
    /// Packs merged into it.
    pub packs_merged: u64,
    /// Loose objects deleted: a settled pack holds them.
    pub loose_deleted: u64,
    /// Packs deleted: a larger settled pack holds all their objects.
    pub packs_deleted: u64,
    /// Stored bytes deleted.
    pub deleted_bytes: u64,
    /// Copies kept for now because the pack holding them is younger than the grace
    /// period: loose objects and packs. A later compaction deletes them.
    pub waiting: u64,
    /// Loose objects listed before, and packs before and after.
    pub loose_before: u64,
    /// Packs listed before.
    pub packs_before: u64,
    /// Packs after.
    pub packs_after: u64,
    /// Unreachable loose objects left for GC.
    pub unreachable_loose: u64,
    /// Objects no root reaches that the new pack left out
    /// ([`CompactOptions::drop_unreachable`]): they are gone once the packs that held
    /// them are deleted.
    #[serde(default)]
    pub dropped: u64,
    /// The store was below [`CompactOptions::min_loose`] and
    /// [`CompactOptions::min_packs`]: nothing was done but one listing.
    pub skipped: bool,
    /// Commits in the commit-graph layer written (`objects/info/commit-graphs/`): the new
    /// ones, and those of the layers merged into it; 0 when the chain was up to date.
    pub graph_commits: u64,
}

/// Why a [`Compact`] failed. A failure before the sweep deletes nothing; one during it
/// leaves only copies a settled pack holds deleted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
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
    /// An object to pack (or one a ref reaches) is missing, corrupt or of the wrong kind.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// A pack or its index cannot be used, or the pack written did not read back as
    /// written. Nothing was deleted.
    #[error(transparent)]
    Pack(#[from] pack::Error),
    /// The store holds something compaction cannot account for (as GC refuses it).
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

impl From<StorageError> for CompactError {
    fn from(err: StorageError) -> Self {
        CompactError::Storage(err)
    }
}

/// A pack as listed, before its index is read.
#[derive(Debug)]
struct Unread {
    key: String,
    size: u64,
    modified_ms: i64,
    pinned: bool,
    derived: Vec<String>,
}

/// The pack files of a listing whose partner is missing: a `pack-*.pack` without its
/// `.idx`, and a `.idx`, `.rev` or `.bitmap` without its `.pack`. Kept, cruft and
/// promisor markers and git's temporary files are not touched.
fn orphans(listed: &[Listed]) -> Vec<Listed> {
    let keys: foldhash::HashSet<&str> = listed.iter().map(|l| l.key.as_str()).collect();
    listed
        .iter()
        .filter(|l| {
            let Some(name) = l.key.strip_prefix(pack::PACK_DIR).filter(|n| n.starts_with("pack-")) else {
                return false;
            };
            let Some((stem, ext)) = name.rsplit_once('.') else {
                return false;
            };
            let partner = match ext {
                "pack" => "idx",
                "idx" | "rev" | "bitmap" => "pack",
                _ => return false,
            };
            !keys.contains(format!("{}{stem}.{partner}", pack::PACK_DIR).as_str())
        })
        .cloned()
        .collect()
}

/// The key of the index of the pack at `key`.
fn index_key(key: &str) -> String {
    format!("{}.idx", key.strip_suffix(".pack").unwrap_or(key))
}

/// A pack of the store, its index read.
#[derive(Debug)]
struct Pack {
    file: PackFile,
    modified_ms: i64,
    /// Kept, cruft or promisor: never merged or deleted.
    pinned: bool,
    /// The derived files beside it.
    derived: Vec<String>,
}

impl Pack {
    fn count(&self) -> usize {
        self.file.index.len()
    }

    /// The strict order in which packs may supersede one another: a pack is deleted only
    /// for one later in it, so two compactions at once never delete each other's copies.
    fn rank(&self) -> (usize, &str) {
        (self.count(), &self.file.key)
    }

    fn holds_all_of(&self, other: &Pack) -> bool {
        other.file.index.ids().all(|id| self.file.index.lookup(&id).is_some())
    }
}

/// What a deleted key was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    Loose,
    Pack,
    Other,
}

/// What is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    None,
    Check,
    Survey,
    Indexes,
    Objects,
    Write,
    Verify,
    Delete(u64, u64),
    InfoDelete,
    InfoWrite,
    GraphLayers,
    GraphTrees,
    GraphIo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Counting loose objects and packs against the thresholds.
    Check,
    Survey,
    Indexes,
    Gather,
    Write,
    Verify,
    /// Writing the commit-graph.
    Graph,
    /// Reading the refs again before packs with unreachable objects go.
    Recheck,
    Sweep,
    Info,
    Done,
}

/// Compaction: every reachable loose object into a new pack with deltas, merged with the
/// smallest packs so that each pack left holds at least [`CompactOptions::factor`] times
/// the objects of all smaller ones; then the copies a settled pack holds are deleted.
///
/// Call [`poll`](Operation::poll) until [`Step::Done`], answering [`Step::Get`] with
/// [`provide`](Operation::provide) and every other step with
/// [`answer`](Operation::answer); drive it through [`Packed`](crate::pack::Packed) (the
/// drivers do) so packed objects are read.
///
/// 1. It finds the roots and walks what they reach as [`Collect`](super::Collect) does,
///    refusing the same stores, then lists `objects/` and reads every pack's index.
/// 2. The new pack holds the reachable loose objects no pack holds, and every object of
///    the packs it merges, reachable or not: by default compaction never drops an
///    object, which is GC's decision. Unreachable loose objects stay for GC, and so do
///    loose objects over the cache's [`Limits::max_object_bytes`](crate::Limits). Kept
///    (`.keep`), cruft (`.mtimes`) and promisor packs are never merged. With
///    [`CompactOptions::drop_unreachable`], when a pack older than the grace period holds
///    an object no root reaches (history `prune` dropped), every other pack is merged
///    into one that leaves such objects out.
/// 3. The pack and its index are written ([`Step::Write`]) and read back: the index
///    whole, the pack's trailer; a mismatch stops it before anything is deleted. The
///    commit-graph chain gains a layer of the reachable commits it lacks, merged with the
///    layers below while it would hold more than half of theirs ([`crate::graph`]).
/// 4. It deletes each loose object that a pack holds, once the holding pack was stored
///    more than [`CompactOptions::grace_ms`] ago (the pack just written counts as
///    settled only with a grace period of 0) and the loose copy is as old (a writer that
///    reused an object only an old pack holds wrote it again loose). It deletes each
///    pack that a later and larger settled pack holds whole; with
///    [`CompactOptions::drop_unreachable`], also each pack older than the grace period
///    whose reachable objects later settled packs of the listing hold, after reading the
///    refs again (what a commit that landed meanwhile reaches stays). "Later" is the
///    order storage stored the packs in, then size, then name: one order every run sees
///    the same, so no two runs delete each other's copies. With a pack go the files git
///    derives from it (`.rev`, `.bitmap`), any `multi-pack-index`, which names it, and,
///    when a pack with unreachable objects goes, any commit-graph that may name one.
/// 5. It writes `objects/info/packs` again when the packs changed.
///
/// Safe with writers, GC and other compactions at any point: nothing is deleted that a
/// pack does not hold, unless no root reaches it and it is older than the grace period
/// (GC's rule); a pack is deleted only for packs after it; and a stopped compaction
/// leaves a store that reads the same (run it again to finish). A grace period of 0
/// is for one maintainer at a time, with no reader that listed the packs before.
#[derive(Debug)]
pub struct Compact {
    survey: Survey,
    options: CompactOptions,
    hash_kind: gix_hash::Kind,
    stage: Stage,
    out: Out,
    unread: Vec<Unread>,
    packs: Vec<Pack>,
    /// The keys of the listing, for siblings and ages.
    listed: foldhash::HashMap<String, (u64, i64)>,
    /// Loose objects listed: key, id, size, stored at.
    loose: Vec<(Listed, ObjectId)>,
    /// Stored bytes of loose objects the walk read, kept for packing.
    kept: IdMap<Vec<u8>>,
    /// The objects to pack and their content once read.
    wanted: Vec<ObjectId>,
    merged: Vec<usize>,
    loose_packed: u64,
    content: IdMap<(Kind, Vec<u8>)>,
    asked: Vec<ObjectId>,
    written: Option<write::Written>,
    /// The pack written, as a pack of the store.
    new_pack: Option<Pack>,
    /// Keys to delete, their size, and whether each is a loose object, a pack or neither.
    deletions: Vec<(String, u64, Gone)>,
    /// The packs left, for `objects/info/packs`.
    remaining: Vec<String>,
    /// Packs to delete for holding only unreachable objects beyond later packs, once the
    /// refs are read again.
    drops: Vec<String>,
    /// The single-file commit-graph stored (git reads it rather than a chain), as stored.
    old_single: Option<Vec<u8>>,
    /// The layers the chain file names, base first, as listed at the start; and the
    /// chain they make, once read.
    chain_layers: Option<Vec<(String, ObjectId)>>,
    chain_read: bool,
    old_chain: Option<crate::graph::Chain>,
    /// The commit-graph is written whole, on no base: packs with unreachable objects
    /// (whose commits a layer may name) are to go.
    whole_graph: bool,
    cursor: usize,
    report: Compacted,
    info_changed: bool,
    info_deleted: bool,
    done: bool,
    /// Pack files without their partner (a pack whose index was never written, an index
    /// whose pack is gone): key, size, stored at.
    orphans: Vec<Listed>,
    /// The commit-graph being made: the commits, the tree walks still going, the trees
    /// read for them, and the file once written.
    graph: Option<GraphWork>,
}

/// Where the commit-graph stands.
#[derive(Debug, Default)]
struct GraphWork {
    /// The commits of the layer to write, the new ones first.
    commits: Vec<crate::graph::Commit>,
    walks: Vec<Paths>,
    fetch: crate::step::Fetch,
    /// The layers it goes on top of.
    base: Option<crate::graph::Chain>,
    /// The writes and deletes still to do, last first.
    steps: Vec<Step<Compacted>>,
    /// The keys written: the layer and the chain file.
    written: Vec<String>,
    /// The layer holds every reachable commit, on no base.
    whole: bool,
    /// It is written as the single file `objects/info/commit-graph`.
    single: bool,
}

/// The files a commit changed against its first parent (against nothing for a root),
/// found by walking the two trees where their ids differ.
#[derive(Debug)]
struct Paths {
    commit: usize,
    /// Folders still to compare: path, the commit's tree there, the parent's.
    stack: Vec<(BString, Option<ObjectId>, Option<ObjectId>)>,
    found: Vec<BString>,
}

/// A tree entry's mode and id.
type Slot = (gix_object::tree::EntryMode, ObjectId);

/// By default, histories of up to this many commits keep their commit-graph as one file,
/// written again whole when it changes (the filters it had are reused, so only new
/// commits' changed paths are found; 50,000 commits make a file of about 5 MB): a reader
/// gets it with the pack indexes, in the same round. Longer ones keep a split chain of
/// layers updated incrementally, which a reader gets in one more round (the chain file
/// names the layers). [`CompactOptions::split_graph_at`] changes it.
pub const SINGLE_GRAPH_COMMITS: usize = 50_000;

/// More changed paths than this make git's "too large" filter; the walk stops there.
const MAX_CHANGED_PATHS: usize = 512;

impl Paths {
    /// Walk as far as the trees at hand allow; `true` when done.
    fn advance(&mut self, fetch: &mut crate::step::Fetch, cache: &ObjectCache) -> Result<bool, object::Error> {
        while let Some((prefix, a, b)) = self.stack.last().cloned() {
            if self.found.len() > MAX_CHANGED_PATHS {
                self.stack.clear();
                break;
            }
            let ta = a.map(|id| fetch.tree(cache, &id)).transpose()?;
            let tb = b.map(|id| fetch.tree(cache, &id)).transpose()?;
            if matches!(ta, Some(None)) || matches!(tb, Some(None)) {
                return Ok(false);
            }
            self.stack.pop();
            let entries = |t: Option<Option<std::sync::Arc<gix_object::Tree>>>| -> Vec<(BString, Slot)> {
                t.flatten().map_or_else(Vec::new, |t| {
                    t.entries
                        .iter()
                        .map(|e| (e.filename.clone(), (e.mode, e.oid)))
                        .collect()
                })
            };
            let ours = entries(ta);
            let mut theirs = entries(tb);
            let mut both: Vec<(BString, Option<Slot>, Option<Slot>)> = Vec::with_capacity(ours.len() + 1);
            for (name, e) in ours {
                // Names are unique within a tree; a linear search keeps the .wasm small
                // and trees are small.
                let t = theirs
                    .iter()
                    .position(|(n, _)| *n == name)
                    .map(|at| theirs.swap_remove(at).1);
                both.push((name, Some(e), t));
            }
            both.extend(theirs.into_iter().map(|(name, e)| (name, None, Some(e))));
            for (name, ea, eb) in both {
                if ea == eb {
                    continue;
                }
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(&name);
                let tree = |e: Option<Slot>| e.filter(|(m, _)| m.is_tree()).map(|(_, id)| id);
                let file = |e: Option<Slot>| e.is_some_and(|(m, _)| !m.is_tree());
                if file(ea) || file(eb) {
                    self.found.push(path.clone());
                }
                if tree(ea).is_some() || tree(eb).is_some() {
                    self.stack.push((path, tree(ea), tree(eb)));
                }
            }
        }
        Ok(true)
    }
}

impl Compact {
    /// Prepare compaction of the store whose objects `cache` holds.
    pub fn new(cache: &ObjectCache, options: CompactOptions) -> Result<Self, CompactError> {
        let invalid = |option, value: String, reason| CompactError::InvalidOption { option, value, reason };
        if options.batch == 0 {
            return Err(invalid(
                "batch",
                "0".into(),
                "a delete batch must hold at least one key",
            ));
        }
        if options.factor < 2 {
            return Err(invalid(
                "factor",
                options.factor.to_string(),
                "each pack must hold at least twice the smaller ones together",
            ));
        }
        if options.window > 0 && options.depth == 0 {
            return Err(invalid("depth", "0".into(), "deltas need a depth of at least 1"));
        }
        Ok(Compact {
            survey: Survey::new(Mark::recording_order(), cache.hash_kind()),
            options,
            hash_kind: cache.hash_kind(),
            stage: if options.min_loose.is_some() || options.min_packs.is_some() {
                Stage::Check
            } else {
                Stage::Survey
            },
            out: Out::None,
            unread: Vec::new(),
            packs: Vec::new(),
            listed: Default::default(),
            loose: Vec::new(),
            kept: IdMap::default(),
            wanted: Vec::new(),
            merged: Vec::new(),
            loose_packed: 0,
            content: IdMap::default(),
            asked: Vec::new(),
            written: None,
            new_pack: None,
            deletions: Vec::new(),
            remaining: Vec::new(),
            drops: Vec::new(),
            old_single: None,
            chain_layers: None,
            chain_read: false,
            old_chain: None,
            whole_graph: false,
            cursor: 0,
            report: Compacted {
                pack: None,
                objects: 0,
                deltas: 0,
                pack_bytes: 0,
                loose_packed: 0,
                packs_merged: 0,
                loose_deleted: 0,
                packs_deleted: 0,
                deleted_bytes: 0,
                waiting: 0,
                loose_before: 0,
                packs_before: 0,
                packs_after: 0,
                unreachable_loose: 0,
                dropped: 0,
                skipped: false,
                graph_commits: 0,
            },
            info_changed: false,
            info_deleted: false,
            done: false,
            graph: None,
            orphans: Vec::new(),
        })
    }

    /// How far compaction has come.
    pub fn progress(&self) -> Progress {
        let mut progress = self.survey.progress();
        progress.phase = match self.stage {
            Stage::Check => Phase::ListObjects,
            Stage::Survey => progress.phase,
            Stage::Indexes => Phase::ListObjects,
            Stage::Gather | Stage::Write | Stage::Verify | Stage::Graph => Phase::Pack,
            Stage::Recheck | Stage::Sweep | Stage::Info => Phase::Sweep,
            Stage::Done => Phase::Done,
        };
        progress.examined = self.content.len() as u64;
        progress.deleted = self.report.loose_deleted + self.report.packs_deleted;
        progress.deleted_bytes = self.report.deleted_bytes;
        progress.young = self.report.waiting;
        progress
    }

    /// The listing is in: the loose objects, and the index of every pack to read.
    fn take_listing(&mut self) {
        let objects = std::mem::take(&mut self.survey.objects);
        for listed in &objects {
            self.listed
                .insert(listed.key.clone(), (listed.size, listed.modified_ms));
        }
        self.orphans = orphans(&objects);
        for (_, key, size) in pack::paired(&objects) {
            let stem = key.strip_suffix(".pack").unwrap_or(&key).to_owned();
            let sibling = |suffix: &str| self.listed.contains_key(&format!("{stem}{suffix}"));
            let pinned = PINNING.iter().any(|suffix| sibling(suffix));
            let derived = DERIVED
                .iter()
                .map(|suffix| format!("{stem}{suffix}"))
                .filter(|k| self.listed.contains_key(k))
                .collect();
            let modified_ms = self.listed.get(&key).map_or(i64::MAX, |(_, at)| *at);
            self.unread.push(Unread {
                key,
                size,
                modified_ms,
                pinned,
                derived,
            });
        }
        for listed in objects {
            if let Some(id) = loose_id(&listed.key, self.hash_kind) {
                self.loose.push((listed, id));
            }
        }
        self.report.loose_before = self.loose.len() as u64;
        self.report.packs_before = self.unread.len() as u64;
    }

    fn take_indexes(&mut self, mut read: Vec<Option<Vec<u8>>>) -> Result<(), CompactError> {
        if read.len() != self.unread.len() + crate::graph::FILES.len() {
            return Err(Misuse("a Read must answer every key").into());
        }
        // The commit-graph there: a chain's layers are built on, a single file replaced.
        let chain = read.pop().flatten();
        self.old_single = read.pop().flatten();
        if let crate::graph::Loaded::Layers(layers) = crate::graph::load(None, chain, self.hash_kind) {
            self.chain_layers = Some(layers);
        }
        let mut packs = Vec::new();
        for (unread, bytes) in std::mem::take(&mut self.unread).into_iter().zip(read) {
            // Gone since the listing: another compaction or `git repack` replaced it.
            let Some(bytes) = bytes else { continue };
            let reading = vec![(index_key(&unread.key), unread.key, unread.size)];
            let Some(file) = pack::loaded(reading, vec![Some(bytes)], self.hash_kind)?.pop() else {
                continue;
            };
            packs.push(Pack {
                file,
                modified_ms: unread.modified_ms,
                pinned: unread.pinned,
                derived: unread.derived,
            });
        }
        crate::order::sort_by(&mut packs, |a, b| a.rank().cmp(&b.rank()));
        self.packs = packs;
        Ok(())
    }

    /// `true` if some pack holds `id`.
    fn packed(&self, id: &ObjectId) -> bool {
        self.packs.iter().any(|p| p.file.index.lookup(id).is_some())
    }

    /// Whether pack `i` is superseded: a pack later in rank order, and stored after it,
    /// holds all its objects (the sweep deletes it for that one; a pack an older one
    /// holds is merged instead, since nothing may be deleted for an older pack).
    fn superseded(&self, i: usize) -> bool {
        let pack = &self.packs[i];
        self.packs[i + 1..]
            .iter()
            .any(|q| (q.modified_ms, q.rank()) > (pack.modified_ms, pack.rank()) && q.holds_all_of(pack))
    }

    /// `true` if a key stored at `modified_ms` is older than the grace period.
    fn settled(&self, modified_ms: i64) -> bool {
        i128::from(self.options.now_ms) - i128::from(modified_ms) >= i128::from(self.options.grace_ms)
    }

    /// With [`CompactOptions::drop_unreachable`], when some settled pack that may be
    /// merged holds an object no root reaches: merge every such pack, keeping only what
    /// is reachable (and everything of packs younger than the grace period, whose
    /// objects may belong to a push in flight). `false` when there is nothing to drop.
    fn plan_drop(&mut self) -> bool {
        let reachable = &self.survey.mark.reachable;
        let ready = self.drop_ready();
        let droppable = (0..self.packs.len()).any(|i| {
            let p = &self.packs[i];
            !p.pinned
                && !ready.contains(&i)
                && self.settled(p.modified_ms)
                && p.file.index.ids().any(|id| !reachable.contains(&id))
        });
        if !droppable {
            return false;
        }
        let mut fresh: Vec<ObjectId> = Vec::new();
        let mut seen = IdSet::default();
        let mut unreachable_loose = 0;
        for (_, id) in &self.loose {
            if !reachable.contains(id) {
                unreachable_loose += 1;
            } else if !self.packed(id) && seen.insert(*id) {
                fresh.push(*id);
            }
        }
        self.report.unreachable_loose += unreachable_loose;
        self.loose_packed = fresh.len() as u64;
        self.merged = (0..self.packs.len()).filter(|&i| !self.packs[i].pinned).collect();
        self.wanted = fresh;
        self.take_merged(seen);
        true
    }

    /// With [`CompactOptions::drop_unreachable`]: the settled packs with unreachable
    /// objects whose reachable objects later packs of the listing hold already. They go
    /// in the sweep once those are settled, and are never merged.
    fn drop_ready(&self) -> Vec<usize> {
        if !self.options.drop_unreachable {
            return Vec::new();
        }
        let reachable = &self.survey.mark.reachable;
        let order = self.time_order();
        let mut ready = Vec::new();
        for (at, &i) in order.iter().enumerate() {
            let p = &self.packs[i];
            if p.pinned || !self.settled(p.modified_ms) || p.file.index.ids().all(|id| reachable.contains(&id)) {
                continue;
            }
            let later: Vec<(&Pack, bool, bool)> =
                order[at + 1..].iter().map(|&j| (&self.packs[j], true, true)).collect();
            if self.later_hold_reachable(p, &later) {
                ready.push(i);
            }
        }
        ready
    }

    /// Add the objects of the packs to merge to those wanted; with
    /// [`CompactOptions::drop_unreachable`], without what no root reaches in packs older
    /// than the grace period (younger ones may hold a push in flight: all of theirs stays).
    fn take_merged(&mut self, mut seen: IdSet) {
        let reachable = &self.survey.mark.reachable;
        let mut dropped = IdSet::default();
        for &p in &self.merged {
            let pack = &self.packs[p];
            let keep_all = !self.options.drop_unreachable || !self.settled(pack.modified_ms);
            for id in pack.file.index.ids() {
                if keep_all || reachable.contains(&id) {
                    if seen.insert(id) {
                        self.wanted.push(id);
                    }
                } else {
                    dropped.insert(id);
                }
            }
        }
        self.report.dropped = dropped.iter().filter(|id| !seen.contains(*id)).count() as u64;
    }

    /// Choose what to pack: the reachable loose objects no pack holds, and the smallest
    /// packs that keep the rest geometric.
    fn plan(&mut self) {
        if self.options.drop_unreachable && self.plan_drop() {
            self.whole_graph = true;
            return;
        }
        let reachable = &self.survey.mark.reachable;
        let mut fresh: Vec<ObjectId> = Vec::new();
        let mut seen = IdSet::default();
        for (_, id) in &self.loose {
            if !reachable.contains(id) {
                self.report.unreachable_loose += 1;
            } else if !self.packed(id) && seen.insert(*id) {
                fresh.push(*id);
            }
        }
        let ready = self.drop_ready();
        self.whole_graph = !ready.is_empty();
        let candidates: Vec<usize> = (0..self.packs.len())
            .filter(|&i| !self.packs[i].pinned && !self.superseded(i) && !ready.contains(&i))
            .collect();
        let new = fresh.len() as u64;
        let counts: Vec<u64> = candidates.iter().map(|&i| self.packs[i].count() as u64).collect();
        // The fewest smallest packs to merge so that every pack left is at least `factor`
        // times everything smaller (the merged pack included) put together.
        let factor = self.options.factor;
        let merge = (0..=counts.len())
            .find(|&k| {
                let mut below = new + counts[..k].iter().sum::<u64>();
                counts[k..].iter().all(|&count| {
                    let fits = count >= factor.saturating_mul(below);
                    below += count;
                    fits
                })
            })
            .unwrap_or(counts.len());
        // Rewriting one pack alone gains nothing.
        let merge = if new == 0 && merge < 2 { 0 } else { merge };
        self.merged = candidates[..merge].to_vec();
        self.loose_packed = new;
        self.wanted = fresh;
        self.take_merged(seen);
    }

    /// The ids still to read: those the walk did not read loose.
    fn still_to_read(&mut self) -> Result<Vec<ObjectId>, CompactError> {
        let max = u64::MAX;
        let mut asked = Vec::new();
        for id in &self.wanted {
            if self.content.contains_key(id) {
                continue;
            }
            match self.kept.remove(id) {
                Some(stored) => {
                    let content = object::decode_content(id, &stored, max)?;
                    self.content.insert(*id, content);
                }
                None => asked.push(*id),
            }
        }
        self.kept = IdMap::default();
        Ok(asked)
    }

    /// Pack what was read, in the order a history walk reads: commits, tags, trees, then
    /// blobs, each kind in the order the walk first reached it.
    fn pack(&mut self) -> write::Written {
        let seen = self.survey.mark.seen.take().unwrap_or_default();
        let rank = |kind: Kind| match kind {
            Kind::Commit => 0u8,
            Kind::Tag => 1,
            Kind::Tree => 2,
            Kind::Blob => 3,
        };
        let mut objects: Vec<write::Object> = Vec::with_capacity(self.wanted.len());
        // Ordered by what the objects are, never by where they came from: the same objects
        // make the same pack (the same name), however they were split across packs.
        let mut order: Vec<(u8, u32, ObjectId, usize)> = Vec::with_capacity(self.wanted.len());
        for id in std::mem::take(&mut self.wanted) {
            let Some((kind, data)) = self.content.remove(&id) else {
                continue;
            };
            let (first, name) = seen.get(&id).copied().unwrap_or((u32::MAX, 0));
            order.push((rank(kind), first, id, objects.len()));
            objects.push(write::Object { id, kind, data, name });
        }
        crate::order::sort(&mut order);
        let mut slots: Vec<Option<write::Object>> = objects.into_iter().map(Some).collect();
        let objects: Vec<write::Object> = order.into_iter().filter_map(|(_, _, _, i)| slots[i].take()).collect();
        let options = write::Options {
            window: self.options.window,
            depth: self.options.depth.max(1),
            level: 6,
        };
        write::write(self.hash_kind, &objects, &options)
    }

    /// The sweep's plan, once the commit-graph is written: the refs are read again first
    /// when packs are to go for holding only unreachable objects.
    fn after_graph(&mut self) {
        self.plan_sweep();
        if self.drops.is_empty() {
            self.stage = Stage::Sweep;
        } else {
            self.survey.read_refs_again();
            self.stage = Stage::Recheck;
        }
    }

    /// The listed packs in the order deletions follow: by the time storage stored them,
    /// then object count, then key. A pack is deleted only for packs after it, so no two
    /// runs (which see the same listing) can delete each other's copies.
    fn time_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.packs.len()).collect();
        crate::order::sort_by(&mut order, |&a, &b| {
            let (a, b) = (&self.packs[a], &self.packs[b]);
            (a.modified_ms, a.rank()).cmp(&(b.modified_ms, b.rank()))
        });
        order
    }

    /// `true` if every object of `pack` that a root reaches is held by a settled pack of
    /// the listing in `later` stored strictly after it (never the pack this run wrote:
    /// another run orders that one by the time storage gives it, which this run does not
    /// know). Packs stored at the same time wait: size, which orders them otherwise,
    /// says nothing of which came first when objects were left out.
    fn later_hold_reachable(&self, pack: &Pack, later: &[(&Pack, bool, bool)]) -> bool {
        let reachable = &self.survey.mark.reachable;
        pack.file.index.ids().filter(|id| reachable.contains(id)).all(|id| {
            later.iter().any(|(q, settled, listed)| {
                *settled && *listed && q.modified_ms > pack.modified_ms && q.file.index.lookup(&id).is_some()
            })
        })
    }

    /// The pack deletions and the name left in `objects/info/packs` for pack `pack`.
    fn pack_deletions(&self, pack: &Pack) -> Vec<(String, u64, Gone)> {
        let idx = index_key(&pack.file.key);
        let size = |key: &str| self.listed.get(key).map_or(0, |(size, _)| *size);
        let mut out = vec![
            (idx.clone(), size(&idx), Gone::Other),
            (pack.file.key.clone(), size(&pack.file.key), Gone::Pack),
        ];
        out.extend(pack.derived.iter().map(|key| (key.clone(), size(key), Gone::Other)));
        out
    }

    /// What the sweep deletes, and how many copies wait for their pack to settle. Packs
    /// that go only because what they hold beyond a later pack is unreachable are
    /// decided after the refs are read again ([`Self::settle_drops`]).
    fn plan_sweep(&mut self) {
        let now = i128::from(self.options.now_ms);
        let grace = i128::from(self.options.grace_ms);
        // Listed packs in time order, then the pack just written, settled only without
        // grace: (pack, settled, listed).
        let mut packs: Vec<(&Pack, bool, bool)> = self
            .time_order()
            .into_iter()
            .map(|i| (&self.packs[i], self.settled(self.packs[i].modified_ms), true))
            .collect();
        // A pack written again as it was (the same objects, so the same name) is the
        // listed one.
        let new = self
            .new_pack
            .as_ref()
            .filter(|new| !self.packs.iter().any(|p| p.file.key == new.file.key));
        if let Some(new) = new {
            packs.push((new, grace <= 0, false));
        }
        let mut deletions = Vec::new();
        // What an interrupted write left: git sees no pack without its index, and an
        // index without its pack names nothing. Gone once older than the grace period
        // and an hour: `git index-pack` renames a pack into place (keeping the time its
        // last byte was written) a moment before its index, and may take minutes
        // between the two on a large pack.
        for orphan in &self.orphans {
            if now - i128::from(orphan.modified_ms) > grace.max(i128::from(DEFAULT_GRACE_MS)) {
                deletions.push((orphan.key.clone(), orphan.size, Gone::Other));
            }
        }
        let mut remaining = Vec::new();
        let mut drops = Vec::new();
        let mut waiting = 0;
        for (i, &(pack, settled, _)) in packs.iter().enumerate() {
            let name = pack.file.key.rsplit('/').next().unwrap_or_default().to_owned();
            if pack.pinned || self.new_pack.as_ref().is_some_and(|new| new.file.key == pack.file.key) {
                remaining.push(name);
                continue;
            }
            let later = &packs[i + 1..];
            // Superseded: a later and larger pack holds all of it.
            let holders: Vec<bool> = later
                .iter()
                .filter(|(q, _, _)| q.rank() > pack.rank() && q.holds_all_of(pack))
                .map(|(_, settled, _)| *settled)
                .collect();
            if holders.contains(&true) {
                deletions.extend(self.pack_deletions(pack));
                continue;
            }
            if self.options.drop_unreachable && settled && self.later_hold_reachable(pack, later) {
                drops.push(pack.file.key.clone());
                continue;
            }
            waiting += u64::from(!holders.is_empty());
            remaining.push(name);
        }
        // Layers of a split commit-graph that the chain file no longer names go once that
        // chain file is older than the grace period: a writer that read a chain naming
        // them has finished since (a writer builds on the layers of the chain it read).
        // Without a chain file none goes: a writer may be between replacing it and
        // writing it again.
        let replaced_at = match (
            self.listed.get(crate::graph::CHAIN),
            self.listed.get(crate::graph::GRAPH),
        ) {
            (Some((_, chain_ms)), _) => Some(*chain_ms),
            // A single file took the chain's place (written after the chain went).
            (None, Some((_, graph_ms))) => Some(*graph_ms),
            (None, None) => None,
        };
        if let Some(replaced_ms) = replaced_at
            && self.settled(replaced_ms)
        {
            let named: Vec<&str> = self
                .chain_layers
                .iter()
                .flatten()
                .map(|(key, _)| key.as_str())
                .collect();
            for (key, (size, _)) in &self.listed {
                if key.starts_with(crate::graph::LAYERS) && key.ends_with(".graph") && !named.contains(&key.as_str()) {
                    deletions.push((key.clone(), *size, Gone::Other));
                }
            }
        }
        for (listed, id) in &self.loose {
            let holders: Vec<bool> = packs
                .iter()
                .filter(|(p, _, _)| p.file.index.lookup(id).is_some())
                .map(|(_, settled, _)| *settled)
                .collect();
            if holders.is_empty() {
                continue;
            }
            // A loose copy younger than the grace period stays even so: a writer that
            // reused an object only an old pack holds (a file set back to a version
            // retention dropped) wrote it again loose, and that copy is what keeps it
            // when the old pack goes.
            if holders.contains(&true) && self.settled(listed.modified_ms) {
                deletions.push((listed.key.clone(), listed.size, Gone::Loose));
            } else {
                waiting += 1;
            }
        }
        self.report.waiting = waiting;
        self.info_changed = new.is_some();
        self.deletions = deletions;
        self.remaining = remaining;
        self.drops = drops;
        self.after_pack_deletions();
    }

    /// Once the refs were read again: each pack planned to go for holding only
    /// unreachable objects beyond later packs goes if that is still so, with what the
    /// refs reach now (a commit that landed meanwhile keeps what it reaches); and with
    /// them any commit-graph that may name a commit they held.
    fn settle_drops(&mut self) {
        let order = self.time_order();
        let mut gone = Vec::new();
        for key in std::mem::take(&mut self.drops) {
            let Some(at) = order.iter().position(|&i| self.packs[i].file.key == key) else {
                continue;
            };
            let pack = &self.packs[order[at]];
            let later: Vec<(&Pack, bool, bool)> = order[at + 1..]
                .iter()
                .map(|&i| (&self.packs[i], self.settled(self.packs[i].modified_ms), true))
                .collect();
            if self.later_hold_reachable(pack, &later) {
                gone.extend(self.pack_deletions(pack));
            } else {
                self.remaining
                    .push(pack.file.key.rsplit('/').next().unwrap_or_default().to_owned());
            }
        }
        if gone.is_empty() {
            return;
        }
        self.deletions.extend(gone);
        // A commit-graph written before this run may name a commit that goes now; one this
        // run wrote whole, of the commits reachable now, stays.
        let keep: Vec<String> = match &self.graph {
            Some(graph) if graph.whole && graph.steps.is_empty() => graph.written.clone(),
            _ => Vec::new(),
        };
        for key in std::mem::take(&mut self.survey.derived) {
            if !keep.contains(&key) {
                let size = self.listed.get(&key).map_or(0, |(size, _)| *size);
                self.deletions.push((key, size, Gone::Other));
            }
        }
        self.after_pack_deletions();
    }

    /// When a pack goes: `objects/info/packs` changes, and a `multi-pack-index`, which
    /// names the packs it covers, goes with it (git writes it again with `git
    /// multi-pack-index write`).
    fn after_pack_deletions(&mut self) {
        if !self.deletions.iter().any(|(_, _, gone)| *gone == Gone::Pack) {
            return;
        }
        self.info_changed = true;
        let mpi = format!("{}multi-pack-index", pack::PACK_DIR);
        let planned: foldhash::HashSet<String> = self.deletions.iter().map(|(key, _, _)| key.clone()).collect();
        let mut extra = Vec::new();
        for (key, (size, _)) in &self.listed {
            if key.starts_with(&mpi) && !planned.contains(key) {
                extra.push((key.clone(), *size, Gone::Other));
            }
        }
        crate::order::sort_by(&mut extra, |a, b| a.0.cmp(&b.0));
        self.deletions.extend(extra);
    }
}

impl Compact {
    fn report(&self) -> Compacted {
        let mut report = self.report.clone();
        report.packs_after = if report.skipped {
            report.packs_before
        } else {
            self.remaining.len() as u64
        };
        report
    }

    fn info_packs(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for name in &self.remaining {
            out.extend_from_slice(b"P ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out
    }

    /// The next step after the survey, or `None` when done.
    fn next(&mut self, cache: &ObjectCache) -> Result<Option<Step<Compacted>>, CompactError> {
        loop {
            match self.stage {
                Stage::Check | Stage::Survey => return Err(Misuse("compaction's survey is not finished").into()),
                Stage::Indexes => {
                    // The indexes, and the commit-graph to bring up to date.
                    let mut keys: Vec<String> = self.unread.iter().map(|p| index_key(&p.key)).collect();
                    keys.extend(crate::graph::FILES.map(str::to_owned));
                    self.out = Out::Indexes;
                    return Ok(Some(Step::Read(keys)));
                }
                Stage::Gather => {
                    let asked = self.still_to_read()?;
                    if !asked.is_empty() {
                        self.asked = asked.clone();
                        self.out = Out::Objects;
                        return Ok(Some(Step::Get(asked)));
                    }
                    if self.wanted.is_empty() {
                        self.stage = Stage::Graph;
                        continue;
                    }
                    let merged = self.merged.len() as u64;
                    let written = self.pack();
                    let index = pack::Index::from_bytes(&written.index_key(), written.index.clone(), self.hash_kind)?;
                    self.report.pack = Some(written.pack_key());
                    self.report.objects = written.objects as u64;
                    self.report.deltas = written.deltas as u64;
                    self.report.pack_bytes = written.pack.len() as u64;
                    self.report.loose_packed = self.loose_packed;
                    self.report.packs_merged = merged;
                    self.new_pack = Some(Pack {
                        file: PackFile {
                            key: written.pack_key(),
                            size: written.pack.len() as u64,
                            index: std::sync::Arc::new(index),
                        },
                        modified_ms: self.options.now_ms,
                        pinned: false,
                        derived: Vec::new(),
                    });
                    self.written = Some(written);
                    self.stage = Stage::Write;
                }
                Stage::Write => {
                    let Some(written) = &self.written else {
                        self.stage = Stage::Sweep;
                        continue;
                    };
                    self.out = Out::Write;
                    return Ok(Some(Step::Write(written.files())));
                }
                Stage::Verify => {
                    let Some(written) = &self.written else {
                        self.stage = Stage::Sweep;
                        continue;
                    };
                    let hash_len = self.hash_kind.len_in_bytes() as u64;
                    let size = written.pack.len() as u64;
                    self.out = Out::Verify;
                    return Ok(Some(Step::ReadRanges(vec![
                        Range {
                            key: written.index_key(),
                            start: 0,
                            len: written.index.len() as u64,
                        },
                        Range {
                            key: written.pack_key(),
                            start: size - hash_len,
                            len: hash_len,
                        },
                    ])));
                }
                Stage::Graph => {
                    if let Some(step) = self.graph_step(cache)? {
                        return Ok(Some(step));
                    }
                    self.after_graph();
                }
                Stage::Recheck => {
                    if let Some(step) = self.survey.poll(cache)?.into_step() {
                        self.out = Out::Survey;
                        return Ok(Some(step));
                    }
                    self.settle_drops();
                    self.stage = Stage::Sweep;
                }
                Stage::Sweep => {
                    let mut keys = Vec::new();
                    let (mut loose, mut packs, mut bytes) = (0, 0, 0u64);
                    while keys.len() < self.options.batch
                        && let Some((key, size, gone)) = self.deletions.get(self.cursor)
                    {
                        self.cursor += 1;
                        keys.push(key.clone());
                        bytes = bytes.saturating_add(*size);
                        match gone {
                            Gone::Loose => loose += 1,
                            Gone::Pack => packs += 1,
                            Gone::Other => {}
                        }
                    }
                    if keys.is_empty() {
                        self.stage = Stage::Info;
                        continue;
                    }
                    self.out = Out::Delete(loose, packs);
                    self.report.deleted_bytes = self.report.deleted_bytes.saturating_add(bytes);
                    return Ok(Some(Step::Delete(keys)));
                }
                Stage::Info => {
                    if !self.info_changed {
                        self.stage = Stage::Done;
                        continue;
                    }
                    // Not a compare-and-swap: the file is a hint for dumb-HTTP clients,
                    // which git itself never reads, and the next compaction rewrites it.
                    if !self.info_deleted {
                        self.out = Out::InfoDelete;
                        return Ok(Some(Step::Delete(vec![INFO_PACKS.to_owned()])));
                    }
                    self.out = Out::InfoWrite;
                    return Ok(Some(Step::Write(vec![Stored {
                        key: INFO_PACKS.to_owned(),
                        bytes: self.info_packs(),
                    }])));
                }
                Stage::Done => return Ok(None),
            }
        }
    }
}

impl Compact {
    /// The commit-graph's next step: trees to read, the old file to delete, the new one
    /// to write; `None` once it is written, or when the old one already holds exactly the
    /// reachable commits.
    fn graph_step(&mut self, cache: &ObjectCache) -> Result<Option<Step<Compacted>>, CompactError> {
        // A split graph's layers, to build on.
        if let Some(layers) = &self.chain_layers
            && self.old_chain.is_none()
            && !self.chain_read
            && !self.whole_graph
        {
            self.out = Out::GraphLayers;
            return Ok(Some(Step::Read(layers.iter().map(|(key, _)| key.clone()).collect())));
        }
        if self.graph.is_none() {
            self.graph = Some(self.plan_graph());
        }
        let Some(graph) = &mut self.graph else {
            return Ok(None);
        };
        if !graph.commits.is_empty() {
            graph.fetch.reset_want();
            let mut pending = Vec::new();
            for mut walk in std::mem::take(&mut graph.walks) {
                if walk.advance(&mut graph.fetch, cache)? {
                    graph.commits[walk.commit].changed = Some(std::mem::take(&mut walk.found));
                } else {
                    pending.push(walk);
                }
            }
            graph.walks = pending;
            if let Some(step) = graph.fetch.take_get() {
                self.out = Out::GraphTrees;
                return Ok(Some(step));
            }
            let commits = std::mem::take(&mut graph.commits);
            let base = graph.base.take();
            match crate::graph::write(self.hash_kind, &commits, base.as_ref()) {
                // Small enough to be one file: written again whole, only when it changed.
                Ok(bytes) if graph.single => {
                    if self.old_single.as_ref() != Some(&bytes) {
                        // Not a compare-and-swap: a reader in between finds no graph and
                        // walks the commits; of two compactions at once the first to
                        // write wins, and either file is a graph of commits that exist.
                        graph.steps.push(Step::Delete(vec![crate::graph::GRAPH.to_owned()]));
                        graph.steps.push(Step::Write(vec![Stored {
                            key: crate::graph::GRAPH.to_owned(),
                            bytes,
                        }]));
                        self.report.graph_commits = commits.len() as u64;
                    }
                    // A chain git would no longer read goes (its layers once the file is
                    // older than the grace period).
                    if self.listed.contains_key(crate::graph::CHAIN) {
                        graph.steps.push(Step::Delete(vec![crate::graph::CHAIN.to_owned()]));
                    }
                    graph.steps.reverse();
                    graph.written = vec![crate::graph::GRAPH.to_owned()];
                    graph.whole = true;
                }
                Ok(bytes) => {
                    // A written layer ends with its checksum (the length is the hash's, so
                    // the id reads without a fallible conversion, which the .wasm would
                    // pay for in formatting code).
                    let hash_len = self.hash_kind.len_in_bytes();
                    let checksum = ObjectId::from_bytes_or_panic(&bytes[bytes.len().saturating_sub(hash_len)..]);
                    let layer = crate::graph::layer_key(&checksum);
                    let mut chain: Vec<ObjectId> = base
                        .iter()
                        .flat_map(|b| b.layers().iter().map(|l| l.checksum()))
                        .collect();
                    chain.push(checksum);
                    // The layer, then the chain file replaced (not a compare-and-swap: a
                    // reader in between finds no graph and walks the commits; of two
                    // compactions at once the first to write wins, and either chain names
                    // layers that exist), then a single-file graph, which git would read
                    // instead of the chain.
                    graph.steps.push(Step::Write(vec![Stored {
                        key: layer.clone(),
                        bytes,
                    }]));
                    graph.steps.push(Step::Delete(vec![crate::graph::CHAIN.to_owned()]));
                    graph.steps.push(Step::Write(vec![Stored {
                        key: crate::graph::CHAIN.to_owned(),
                        bytes: crate::graph::format_chain(&chain).into_bytes(),
                    }]));
                    if self.old_single.is_some() {
                        graph.steps.push(Step::Delete(vec![crate::graph::GRAPH.to_owned()]));
                    }
                    graph.steps.reverse();
                    graph.written = vec![layer, crate::graph::CHAIN.to_owned()];
                    graph.whole = base.is_none();
                    self.report.graph_commits = commits.len() as u64;
                }
                // A history the format cannot hold (dates before 1970 or past 2514) has
                // no commit-graph: reads walk the objects, as without compaction.
                Err(_) => return Ok(None),
            }
        }
        match graph.steps.pop() {
            Some(step) => {
                self.out = Out::GraphIo;
                Ok(Some(step))
            }
            None => Ok(None),
        }
    }

    /// The commit-graph of a history of at most [`SINGLE_GRAPH_COMMITS`] commits: one file
    /// of every reachable commit, whose changed paths are found only for the commits no
    /// graph there (a single file or a chain) has a filter for.
    fn plan_single_graph(&mut self, mut commits: Vec<crate::graph::Commit>) -> GraphWork {
        let single = self.old_single.clone().and_then(|bytes| {
            let graph = crate::graph::Graph::from_bytes(crate::graph::GRAPH, bytes, self.hash_kind).ok()?;
            crate::graph::Chain::new(vec![graph]).ok()
        });
        let olds: Vec<&crate::graph::Chain> = single.iter().chain(self.old_chain.iter()).collect();
        let mut walked = Vec::new();
        for (i, commit) in commits.iter_mut().enumerate() {
            // A filter depends only on the commit and its first parent: reused as it is.
            let filter = olds
                .iter()
                .find_map(|old| old.find(&commit.id).and_then(|pos| old.filter(pos)));
            match filter {
                Some(filter) => commit.filter = Some(filter),
                None => walked.push(i),
            }
        }
        let trees: IdMap<ObjectId> = commits.iter().map(|c| (c.id, c.tree)).collect();
        let walks = walked
            .into_iter()
            .map(|i| Paths {
                commit: i,
                stack: vec![(
                    BString::default(),
                    Some(commits[i].tree),
                    commits[i].parents.first().and_then(|p| trees.get(p).copied()),
                )],
                found: Vec::new(),
            })
            .collect();
        GraphWork {
            commits,
            walks,
            single: true,
            ..GraphWork::default()
        }
    }

    /// The commit-graph to write: a layer of the reachable commits the store's chain
    /// lacks, on top of it. While the new layer would hold more than half the commits of
    /// the layer below, that layer is merged into it (git's split strategy), so a chain
    /// keeps O(log n) layers and a compaction writes only what is new. Without a chain
    /// (or dropping unreachable objects, whose commits a layer may name) it is one layer
    /// of every reachable commit. Changed paths are found for the new commits only; the
    /// merged layers' commits keep their filters.
    fn plan_graph(&mut self) -> GraphWork {
        let commits = std::mem::take(&mut self.survey.mark.commits);
        if commits.is_empty() || commits.len() > crate::graph::MAX_COMMITS as usize {
            return GraphWork::default();
        }
        if commits.len() as u64 <= self.options.split_graph_at {
            return self.plan_single_graph(commits);
        }
        let old = if self.whole_graph { None } else { self.old_chain.take() };
        let mut all: Vec<crate::graph::Commit> = commits
            .into_iter()
            .filter(|c| old.as_ref().is_none_or(|o| o.find(&c.id).is_none()))
            .collect();
        if all.is_empty() {
            // The chain holds every reachable commit already.
            return GraphWork::default();
        }
        let new = all.len();
        let mut layers: Vec<crate::graph::Graph> = old.as_ref().map(|o| o.layers().to_vec()).unwrap_or_default();
        let mut count = new as u64;
        while let Some(top) = layers.last() {
            if count * 2 <= u64::from(top.len()) {
                break;
            }
            count += u64::from(top.len());
            layers.pop();
        }
        if let Some(old) = &old {
            let kept: u32 = layers.iter().map(crate::graph::Graph::len).sum();
            for pos in kept..old.len() {
                let (Some(id), Some(entry)) = (old.id(pos), old.commit(pos)) else {
                    continue;
                };
                all.push(crate::graph::Commit {
                    id,
                    tree: entry.tree,
                    parents: entry.parents.iter().filter_map(|&p| old.id(p)).collect(),
                    time: entry.time,
                    changed: None,
                    filter: old.filter(pos),
                });
            }
        }
        let base = if layers.is_empty() {
            None
        } else {
            crate::graph::Chain::new(layers).ok()
        };
        // The first parent's tree of each new commit: written with it, or in the chain.
        let trees: IdMap<ObjectId> = all.iter().map(|c| (c.id, c.tree)).collect();
        let tree_of = |id: &ObjectId| {
            trees.get(id).copied().or_else(|| {
                let old = old.as_ref()?;
                Some(old.commit(old.find(id)?)?.tree)
            })
        };
        let walks = all[..new]
            .iter()
            .enumerate()
            .map(|(i, commit)| Paths {
                commit: i,
                stack: vec![(
                    BString::default(),
                    Some(commit.tree),
                    commit.parents.first().and_then(tree_of),
                )],
                found: Vec::new(),
            })
            .collect();
        GraphWork {
            commits: all,
            walks,
            base,
            ..GraphWork::default()
        }
    }
}

impl Operation for Compact {
    type Output = Compacted;
    type Error = CompactError;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Compacted>, CompactError> {
        if self.out != Out::None {
            return Err(Misuse("poll called before the last step was answered").into());
        }
        if self.stage == Stage::Check {
            self.out = Out::Check;
            return Ok(Step::List(crate::store::OBJECTS.to_owned()));
        }
        if self.stage == Stage::Survey {
            if let Some(step) = self.survey.poll(cache)?.into_step() {
                self.out = Out::Survey;
                return Ok(step);
            }
            self.stage = Stage::Indexes;
            self.take_listing();
        }
        match self.next(cache)? {
            Some(step) => Ok(step),
            None if self.done => Err(Misuse("poll called after Done").into()),
            None => {
                self.done = true;
                Ok(Step::Done(self.report()))
            }
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), CompactError> {
        match self.out {
            Out::Survey => {
                // Loose commits and trees the walk reads are packed later: keep their bytes.
                if objects.len() == self.survey.mark.asked.len() {
                    for ((id, _), stored) in self.survey.mark.asked.iter().zip(&objects) {
                        if let Some(stored) = stored
                            && stored.first().is_some_and(|b| b & 0x0f == 8)
                        {
                            self.kept.insert(*id, stored.clone());
                        }
                    }
                }
                self.survey.provide::<CompactError>(cache, objects)?;
            }
            Out::Objects => {
                let asked = std::mem::take(&mut self.asked);
                if asked.len() != objects.len() {
                    return Err(Misuse("provide must answer every id of the Get, in order").into());
                }
                let max = cache.limits().max_object_bytes;
                let mut too_large = IdSet::default();
                for (id, stored) in asked.into_iter().zip(objects) {
                    let stored = stored.ok_or(object::Error::NotFound { id })?;
                    match object::decode_content(&id, &stored, max) {
                        Ok(content) => {
                            self.content.insert(id, content);
                        }
                        // Over the cache's object limit: it stays as it is (loose), and
                        // is never taken for packed.
                        Err(object::Error::TooLarge { .. }) => {
                            too_large.insert(id);
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
                if !too_large.is_empty() {
                    self.wanted.retain(|id| !too_large.contains(id));
                }
            }
            Out::GraphTrees => match &mut self.graph {
                Some(graph) => graph.fetch.provide::<CompactError>(cache, objects)?,
                None => return Err(Misuse("provide called without an outstanding Get").into()),
            },
            _ => return Err(Misuse("provide called without an outstanding Get").into()),
        }
        self.out = Out::None;
        Ok(())
    }

    fn answer(&mut self, _cache: &mut ObjectCache, answer: Answer) -> Result<(), CompactError> {
        let out = std::mem::replace(&mut self.out, Out::None);
        let wrong = || Misuse("answer does not match the step asked for");
        match (out, answer) {
            (Out::Check, Answer::List(listed)) => {
                let loose = listed
                    .iter()
                    .filter(|l| loose_id(&l.key, self.hash_kind).is_some())
                    .count() as u64;
                let packs = pack::paired(&listed).len() as u64;
                let due = self.options.min_loose.is_some_and(|n| loose >= n)
                    || self.options.min_packs.is_some_and(|n| packs >= n);
                if due {
                    self.stage = Stage::Survey;
                } else {
                    self.report.skipped = true;
                    self.report.loose_before = loose;
                    self.report.packs_before = packs;
                    self.stage = Stage::Done;
                }
            }
            (Out::Survey, answer) => {
                if self.survey.answer::<CompactError>(answer)?.is_err() {
                    return Err(wrong().into());
                }
            }
            (Out::Indexes, Answer::Read(read)) => {
                self.take_indexes(read)?;
                self.plan();
                self.stage = Stage::Gather;
            }
            (Out::Write, Answer::Put) => self.stage = Stage::Verify,
            (Out::Verify, Answer::Ranges(read)) => {
                let Some(written) = &self.written else {
                    return Err(wrong().into());
                };
                let hash_len = self.hash_kind.len_in_bytes();
                let trailer = &written.pack[written.pack.len() - hash_len..];
                let fail = |key: String, what: &str| {
                    pack::Error::corrupt(
                        &key,
                        None,
                        format!("{what} did not read back as written; nothing deleted"),
                    )
                };
                match read.as_slice() {
                    [Some(index), Some(tail)] => {
                        if *index != written.index {
                            return Err(fail(written.index_key(), "the index").into());
                        }
                        if tail.as_slice() != trailer {
                            return Err(fail(written.pack_key(), "the pack").into());
                        }
                    }
                    _ => return Err(fail(written.pack_key(), "the pack or its index").into()),
                }
                self.stage = Stage::Graph;
            }
            (Out::Delete(loose, packs), Answer::Deleted) => {
                self.report.loose_deleted += loose;
                self.report.packs_deleted += packs;
            }
            (Out::InfoDelete, Answer::Deleted) => self.info_deleted = true,
            (Out::GraphLayers, Answer::Read(read)) => {
                self.chain_read = true;
                if let Some(layers) = &self.chain_layers {
                    self.old_chain = crate::graph::load_layers(layers, read, self.hash_kind);
                }
            }
            (Out::GraphIo, Answer::Put | Answer::Deleted) => {}
            (Out::InfoWrite, Answer::Put) => self.stage = Stage::Done,
            (out, _) => {
                self.out = out;
                return Err(wrong().into());
            }
        }
        Ok(())
    }
}
