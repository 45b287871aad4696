//! Reading packs: the objects `git gc`, `git repack` or a push left in `objects/pack/`,
//! read beside the loose ones as git looks them up (loose first, then every pack).
//!
//! [`Packed`] wraps any [`Operation`]: it passes the operation's steps through, and when
//! storage has no loose copy of an object the operation asked for, it finds the object in
//! the packs — listing `objects/pack/`, reading each pack's index once (kept in the
//! [`ObjectCache`] with the list), then reading only the byte ranges of the entries it
//! needs ([`Step::ReadRanges`]), with every delta base, until the object is rebuilt. The
//! rebuilt object reaches the operation as an uncompressed loose object, which it hashes
//! and checks like every other: an object read from a pack is trusted no more than a
//! loose one. A cache that never listed the packs lists them before its first read: a
//! store git or compaction packed is then read in three rounds (the listing, the
//! indexes, the packs), and a loose store pays one listing per cache. For an operation
//! that walks history ([`Operation::wants_graph`]) the store's commit-graph is read with
//! the indexes, and kept in the cache.
//!
//! Work on hostile packs is bounded: delta chains by [`MAX_DELTA_DEPTH`], every inflated
//! entry and every rebuilt object by [`crate::Limits::max_object_bytes`], the bases kept
//! for reuse by [`BASE_CACHE_BYTES`]. A broken pack is a corrupt-object error naming the
//! pack and the offset.

use foldhash::HashMap;
use std::sync::Arc;

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    cache::ObjectCache,
    object,
    step::{Answer, Listed, Misuse, Operation, Range, Step},
};

pub mod delta;
pub mod entry;
mod error;
pub mod index;
pub mod ingest;
pub mod write;

pub use error::Error;
pub use index::{Index, PackFile, Packs};

/// The folder of packs.
pub const PACK_DIR: &str = "objects/pack/";

/// The longest delta chain followed; git's own repacks stay at 50 (250 aggressive).
pub const MAX_DELTA_DEPTH: usize = 4096;

/// How many bytes of rebuilt bases one read keeps for reuse.
pub const BASE_CACHE_BYTES: usize = 64 << 20;

/// A pack no larger than this is read whole the first time an object in it is needed:
/// one request instead of one per delta level. Agent memory packs are far smaller.
pub const SMALL_PACK_BYTES: u64 = 16 << 20;

/// In a larger pack, an entry is read with this much of what comes before it: a delta's
/// base (`OFS_DELTA`) always lies earlier in the pack, and git writes it close by, so
/// most chains arrive in the same request.
pub const BASE_WINDOW_BYTES: u64 = 1 << 20;

/// Ranges of one pack closer than this are read as one.
pub const MERGE_GAP_BYTES: u64 = 64 << 10;

/// An entry of a pack: which pack (its position in the list), and where.
type Node = (usize, u64);

/// A rebuilt object: its kind and content.
type Rebuilt = (Kind, Arc<[u8]>);

/// Where an object the operation asked for is being rebuilt.
#[derive(Debug)]
struct Resolve {
    /// The operation's `Get`, and the answers: loose ones, then packed ones filled in.
    ids: Vec<ObjectId>,
    answers: Vec<Option<Vec<u8>>>,
    /// The positions not found loose.
    missing: Vec<usize>,
    /// The packs were listed during this resolution (a second listing finds nothing new).
    listed: bool,
    packs: Packs,
    /// Index keys being read, with the pack key and size each belongs to.
    reading: Vec<(String, String, u64)>,
    /// What the last step was.
    out: Out,
    /// Bytes read, by pack position: (start, bytes).
    chunks: HashMap<usize, Vec<(u64, Vec<u8>)>>,
    /// Rebuilt entries, for reuse as bases.
    bases: HashMap<Node, Rebuilt>,
    base_bytes: usize,
    /// Ranges asked for, by pack position and start, with their length.
    asked: Vec<(usize, u64, u64)>,
    /// Index keys to read next.
    pending_read: Option<Vec<String>>,
    /// Positions to ask storage for as loose objects first (no known pack holds them).
    loose: Vec<usize>,
    /// The packs are being listed before any loose object was asked for (a cold cache):
    /// what no pack holds is asked for loose afterwards.
    loose_untried: bool,
    /// The packs were listed before the loose objects were asked for: one absent now may
    /// have been packed (and its loose copy deleted) in between, so they are listed again.
    relist_after_loose: bool,
    /// The operation walks history: read the commit-graph with the indexes of the next
    /// listing if the cache has none yet (`graph_known` false) or the packs changed.
    want_graph: bool,
    graph_known: bool,
    /// The commit-graph's files ([`crate::graph::FILES`]) end the index read out.
    graph_asked: bool,
    /// The layers of a split commit-graph, being read.
    graph_layers: Option<Vec<(String, ObjectId)>>,
    /// The commit-graph read, for the cache: `Some(None)` if absent or unusable.
    graph: Option<Option<Arc<crate::graph::Chain>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Nothing,
    /// A `Get` of the objects no known pack holds.
    Loose,
    List,
    Indexes,
    Ranges,
}

#[derive(Debug)]
enum State {
    /// The operation's own step, if any, is out.
    Inner { get: Option<Vec<ObjectId>> },
    /// Finding objects in the packs.
    Resolving(Box<Resolve>),
    /// Fetching objects that are neither loose nor packed from the store's promisor
    /// remote ([`crate::remote::promised`]): the `Get`'s ids and answers so far.
    Promised {
        promise: Box<crate::remote::promised::Promise>,
        ids: Vec<ObjectId>,
        answers: Vec<Option<Vec<u8>>>,
    },
}

/// Any operation, reading packed objects as well as loose ones. Drive it like the
/// operation itself; it adds [`Step::List`], [`Step::Read`] and [`Step::ReadRanges`]
/// steps when an object is not loose.
#[derive(Debug)]
pub struct Packed<O> {
    op: O,
    state: State,
    /// What the last resolution read and rebuilt, for the next one of this operation.
    kept: Option<Box<Resolve>>,
    /// The store's config names no promisor remote: missing objects stay missing.
    no_promisor: bool,
}

impl<O> Packed<O> {
    /// Wrap `op`.
    pub fn new(op: O) -> Self {
        Packed {
            op,
            state: State::Inner { get: None },
            kept: None,
            no_promisor: false,
        }
    }

    /// The operation inside.
    pub fn inner(&self) -> &O {
        &self.op
    }

    /// The operation inside, to read its progress or take it back.
    pub fn into_inner(self) -> O {
        self.op
    }
}

/// What resolving needs next.
enum Need {
    Step(Step<()>),
    Done,
}

impl Resolve {
    fn new(ids: Vec<ObjectId>, answers: Vec<Option<Vec<u8>>>, packs: Option<Packs>) -> Self {
        let missing = answers
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.is_none().then_some(i))
            .collect();
        Resolve {
            ids,
            answers,
            missing,
            listed: false,
            // No list yet: treat as empty, which makes the first pass list them.
            packs: packs.unwrap_or_default(),
            reading: Vec::new(),
            out: Out::Nothing,
            chunks: HashMap::default(),
            bases: HashMap::default(),
            base_bytes: 0,
            asked: Vec::new(),
            pending_read: None,
            loose: Vec::new(),
            loose_untried: false,
            relist_after_loose: false,
            want_graph: false,
            graph_known: false,
            graph_asked: false,
            graph_layers: None,
            graph: None,
        }
    }

    /// A `Get` of `ids` when the packs were never listed: list them first, read what they
    /// hold from them, and ask for the rest as loose objects. A store git or compaction
    /// packed is read in three rounds (list, indexes, packs) instead of four.
    fn cold(ids: &[ObjectId]) -> Self {
        let mut resolve = Resolve::new(ids.to_vec(), vec![None; ids.len()], None);
        resolve.loose_untried = true;
        resolve
    }

    /// A `Get` of `ids` when the packs are known: what they hold is read from them, and
    /// only the rest is asked for as loose objects, as git looks in its packs first.
    /// `None` if no known pack holds any of them.
    fn packs_first(ids: &[ObjectId], packs: Packs) -> Option<Self> {
        let mut resolve = Resolve::new(ids.to_vec(), vec![None; ids.len()], Some(packs));
        let (packed, loose): (Vec<usize>, Vec<usize>) =
            (0..ids.len()).partition(|&i| resolve.locate(&ids[i]).is_some());
        if packed.is_empty() {
            return None;
        }
        resolve.missing = packed;
        resolve.loose = loose;
        Some(resolve)
    }

    /// Packs known from an earlier operation that did not want the commit-graph, and an
    /// operation that does: read it before the packs (once per cache).
    fn graph_first(&mut self) {
        if self.want_graph && !self.graph_known && !self.packs.is_empty() && self.pending_read.is_none() {
            self.graph_asked = true;
            self.pending_read = Some(crate::graph::FILES.map(str::to_owned).to_vec());
        }
    }

    /// The answers to the loose `Get`; objects still absent are looked for in the packs.
    fn loose_read(&mut self, answers: Vec<Option<Vec<u8>>>) -> bool {
        let loose = std::mem::take(&mut self.loose);
        if answers.len() != loose.len() {
            return false;
        }
        let mut absent = false;
        for (i, answer) in loose.into_iter().zip(answers) {
            match answer {
                Some(bytes) => self.answers[i] = Some(bytes),
                None => {
                    absent = true;
                    self.missing.push(i);
                }
            }
        }
        if absent && std::mem::take(&mut self.relist_after_loose) {
            self.listed = false;
        }
        true
    }

    fn locate(&self, id: &ObjectId) -> Option<Node> {
        self.packs
            .iter()
            .enumerate()
            .find_map(|(p, pack)| pack.index.lookup(id).map(|offset| (p, offset)))
    }

    /// Advance as far as the bytes at hand allow.
    fn poll(&mut self, hash_kind: gix_hash::Kind, max: u64) -> Result<Need, (ObjectId, Error)> {
        if let Some(keys) = self.pending_read.take() {
            self.out = Out::Indexes;
            return Ok(Need::Step(Step::Read(keys)));
        }
        if !self.loose.is_empty() {
            self.out = Out::Loose;
            return Ok(Need::Step(Step::Get(self.loose.iter().map(|&i| self.ids[i]).collect())));
        }
        let unlocated = self.missing.iter().any(|&i| self.locate(&self.ids[i]).is_none());
        if unlocated && !self.listed {
            self.out = Out::List;
            return Ok(Need::Step(Step::List(PACK_DIR.to_owned())));
        }
        if std::mem::take(&mut self.loose_untried) && unlocated {
            let (loose, packed): (Vec<usize>, Vec<usize>) =
                self.missing.iter().partition(|&&i| self.locate(&self.ids[i]).is_none());
            self.missing = packed;
            self.loose = loose;
            self.relist_after_loose = true;
            self.out = Out::Loose;
            return Ok(Need::Step(Step::Get(self.loose.iter().map(|&i| self.ids[i]).collect())));
        }
        let mut wanted: Vec<Node> = Vec::new();
        let missing = std::mem::take(&mut self.missing);
        let mut still = Vec::new();
        for i in missing {
            let id = self.ids[i];
            let Some(node) = self.locate(&id) else {
                // Neither loose nor packed: the operation reports it missing.
                continue;
            };
            match self.rebuild(node, hash_kind, max, &mut wanted) {
                Ok(Some((kind, data))) => self.answers[i] = Some(raw_loose(kind, &data)),
                Ok(None) => still.push(i),
                Err(err) => return Err((id, err)),
            }
        }
        self.missing = still;
        if self.missing.is_empty() {
            return Ok(Need::Done);
        }
        let ranges = self.ranges(wanted, hash_kind);
        if ranges.is_empty() {
            // Every entry is in hand but nothing resolved: the chain cannot be completed.
            let id = self.ids[self.missing[0]];
            return Err((
                id,
                Error::corrupt(PACK_DIR, None, "a delta chain cannot be completed".into()),
            ));
        }
        self.out = Out::Ranges;
        Ok(Need::Step(Step::ReadRanges(ranges)))
    }

    /// The bytes of the entry at `node`, if read.
    fn entry(&self, node: Node, hash_kind: gix_hash::Kind) -> Option<&[u8]> {
        let pack = self.packs.get(node.0)?;
        let end = pack
            .index
            .entry_end(node.1, pack.size.saturating_sub(hash_kind.len_in_bytes() as u64))?;
        self.chunks.get(&node.0)?.iter().find_map(|(start, bytes)| {
            let from = usize::try_from(node.1.checked_sub(*start)?).ok()?;
            let to = usize::try_from(end.checked_sub(*start)?).ok()?;
            bytes.get(from..to)
        })
    }

    /// Rebuild the object at `node`, or note in `wanted` the entries still to read.
    fn rebuild(
        &mut self,
        node: Node,
        hash_kind: gix_hash::Kind,
        max: u64,
        wanted: &mut Vec<Node>,
    ) -> Result<Option<Rebuilt>, Error> {
        let packs = self.packs.clone();
        let pack_key = |p: usize| packs.get(p).map_or(PACK_DIR, |pack| pack.key.as_str()).to_owned();
        let mut chain: Vec<(Node, entry::Header)> = Vec::new();
        let mut at = node;
        let (kind, mut data) = loop {
            if let Some((kind, data)) = self.bases.get(&at) {
                break (*kind, data.clone());
            }
            if chain.len() > MAX_DELTA_DEPTH {
                return Err(Error::corrupt(
                    &pack_key(node.0),
                    Some(node.1),
                    format!("a delta chain longer than {MAX_DELTA_DEPTH} (or a cycle)"),
                ));
            }
            let Some(bytes) = self.entry(at, hash_kind) else {
                if self
                    .packs
                    .get(at.0)
                    .is_some_and(|p| p.index.entry_end(at.1, p.size).is_none())
                {
                    return Err(Error::corrupt(
                        &pack_key(at.0),
                        Some(at.1),
                        "a delta base points where no entry starts".into(),
                    ));
                }
                wanted.push(at);
                return Ok(None);
            };
            let corrupt = |reason: String| Error::corrupt(&pack_key(at.0), Some(at.1), reason);
            // The index's CRC of the entry as stored: a flipped byte, or an index of
            // another pack, is caught before anything is inflated.
            if let Some(expected) = self.packs.get(at.0).and_then(|p| p.index.entry_crc(at.1)) {
                let actual = entry::crc32(bytes);
                if actual != expected {
                    return Err(corrupt(format!(
                        "the entry's CRC-32 is {actual:08x}, its index says {expected:08x}"
                    )));
                }
            }
            let header = entry::parse_header(bytes, at.1, hash_kind).map_err(corrupt)?;
            let data = bytes.get(header.data_start..).unwrap_or_default();
            match header.kind {
                entry::EntryKind::Object(kind) => {
                    let data: Arc<[u8]> = entry::inflate(data, header.size, max).map_err(corrupt)?.into();
                    self.keep(at, kind, &data);
                    break (kind, data);
                }
                entry::EntryKind::Delta(base) => {
                    chain.push((at, header));
                    at = match base {
                        entry::Base::Offset(offset) => (at.0, offset),
                        entry::Base::Id(id) => self
                            .locate(&id)
                            .ok_or_else(|| corrupt(format!("the delta base {id} is in no pack")))?,
                    };
                }
            }
        };
        while let Some((at, header)) = chain.pop() {
            let corrupt = |reason: String| Error::corrupt(&pack_key(at.0), Some(at.1), reason);
            let bytes = self
                .entry(at, hash_kind)
                .ok_or_else(|| corrupt("an entry read a moment ago is gone".into()))?;
            let delta = entry::inflate(
                bytes.get(header.data_start..).unwrap_or_default(),
                header.size,
                entry::max_delta_bytes(max),
            )
            .map_err(corrupt)?;
            data = entry::apply_delta(&data, &delta, max).map_err(corrupt)?.into();
            self.keep(at, kind, &data);
        }
        Ok(Some((kind, data)))
    }

    fn keep(&mut self, node: Node, kind: Kind, data: &Arc<[u8]>) {
        if self.base_bytes.saturating_add(data.len()) <= BASE_CACHE_BYTES {
            self.base_bytes += data.len();
            self.bases.insert(node, (kind, data.clone()));
        }
    }

    /// The ranges that hold `wanted`, merged per pack; small packs are read whole.
    fn ranges(&mut self, mut wanted: Vec<Node>, hash_kind: gix_hash::Kind) -> Vec<Range> {
        crate::order::sort(&mut wanted);
        wanted.dedup();
        let mut spans: Vec<(usize, u64, u64)> = Vec::new();
        for (p, offset) in wanted {
            let Some(pack) = self.packs.get(p) else { continue };
            let trailer = pack.size.saturating_sub(hash_kind.len_in_bytes() as u64);
            let (start, end) = if pack.size <= SMALL_PACK_BYTES {
                (0, pack.size)
            } else {
                let end = pack.index.entry_end(offset, trailer).unwrap_or(trailer);
                (offset.saturating_sub(BASE_WINDOW_BYTES), end)
            };
            match spans.last_mut() {
                Some((lp, _, last_end)) if *lp == p && start <= last_end.saturating_add(MERGE_GAP_BYTES) => {
                    *last_end = (*last_end).max(end);
                }
                _ => spans.push((p, start, end)),
            }
        }
        self.asked = spans
            .iter()
            .map(|&(p, start, end)| (p, start, end.saturating_sub(start)))
            .collect();
        self.asked
            .iter()
            .filter_map(|&(p, start, len)| {
                Some(Range {
                    key: self.packs.get(p)?.key.clone(),
                    start,
                    len,
                })
            })
            .collect()
    }

    /// The packs listed: the index keys to read (those not held already).
    fn listed(&mut self, listed: Vec<Listed>) -> Option<Vec<String>> {
        self.listed = true;
        let mut kept = Vec::new();
        self.reading.clear();
        for (idx, key, size) in paired(&listed) {
            match self.packs.iter().find(|p| p.key == key && p.size == size) {
                Some(known) => kept.push(known.clone()),
                None => self.reading.push((idx, key, size)),
            }
        }
        self.packs = Arc::new(kept);
        self.chunks.clear();
        self.bases.clear();
        self.base_bytes = 0;
        let mut keys: Vec<String> = self.reading.iter().map(|(idx, _, _)| idx.clone()).collect();
        // A store with packs may have a commit-graph: read in the same round, unless the
        // cache has it and no pack is new (a compaction writes both).
        self.graph_asked = self.want_graph
            && !kept_or_read_empty(&self.packs, &self.reading)
            && (!self.graph_known || !self.reading.is_empty());
        if self.graph_asked {
            keys.extend(crate::graph::FILES.map(str::to_owned));
        }
        (!keys.is_empty()).then_some(keys)
    }

    fn indexes(&mut self, mut read: Vec<Option<Vec<u8>>>, hash_kind: gix_hash::Kind) -> Result<(), (ObjectId, Error)> {
        if let Some(layers) = self.graph_layers.take() {
            let chain = crate::graph::load_layers(&layers, read, hash_kind);
            self.graph = Some(chain.map(Arc::new));
            return Ok(());
        }
        if std::mem::take(&mut self.graph_asked) {
            let chain = read.pop().flatten();
            let graph = read.pop().flatten();
            match crate::graph::load(graph, chain, hash_kind) {
                crate::graph::Loaded::Graph(graph) => self.graph = Some(graph.map(Arc::new)),
                // A split graph: its layers next (before the packs' ranges).
                crate::graph::Loaded::Layers(layers) => {
                    self.pending_read = Some(layers.iter().map(|(key, _)| key.clone()).collect());
                    self.graph_layers = Some(layers);
                }
            }
        }
        let mut packs: Vec<PackFile> = self.packs.as_ref().clone();
        let reading = std::mem::take(&mut self.reading);
        packs.extend(loaded(reading, read, hash_kind).map_err(|err| (self.first_missing(), err))?);
        // git's order is by recency; any fixed order finds the same objects.
        crate::order::sort_by(&mut packs, |a, b| a.key.cmp(&b.key));
        self.packs = Arc::new(packs);
        Ok(())
    }

    fn first_missing(&self) -> ObjectId {
        self.missing.first().map_or_else(|| self.ids[0], |&i| self.ids[i])
    }

    /// Keep the ranges read; `Ok(true)` if a pack has vanished since it was listed.
    fn ranges_read(
        &mut self,
        read: Vec<Option<Vec<u8>>>,
        hash_kind: gix_hash::Kind,
    ) -> Result<bool, (ObjectId, Error)> {
        let mut vanished = false;
        for ((p, start, _), bytes) in std::mem::take(&mut self.asked).into_iter().zip(read) {
            let Some(bytes) = bytes else {
                vanished = true;
                continue;
            };
            // A read that reaches the pack's end carries its trailer: the checksum its
            // index was made for.
            if let Some(pack) = self.packs.get(p)
                && start.saturating_add(bytes.len() as u64) == pack.size
            {
                let trailer = bytes
                    .len()
                    .checked_sub(hash_kind.len_in_bytes())
                    .and_then(|at| bytes.get(at..));
                if trailer != Some(pack.index.pack_checksum()) {
                    let reason = "its trailer is not the checksum its index names".to_owned();
                    return Err((self.first_missing(), Error::corrupt(&pack.key, None, reason)));
                }
            }
            self.chunks.entry(p).or_default().push((start, bytes));
        }
        Ok(vanished)
    }
}

/// The packs of a listing of [`PACK_DIR`] that have their index beside them, as (index
/// key, pack key, pack size), by key. A pack without its index is being written, or
/// broken: git ignores it too.
pub(crate) fn paired(listed: &[Listed]) -> Vec<(String, String, u64)> {
    let keys: std::collections::BTreeMap<&str, u64> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
    keys.iter()
        .filter_map(|(key, size)| {
            let idx = format!("{}.idx", key.strip_suffix(".pack")?);
            keys.contains_key(idx.as_str()).then(|| (idx, (*key).to_owned(), *size))
        })
        .collect()
}

/// The packs whose indexes were read (`reading` as [`paired`] gives them, `read` their
/// bytes in order), each index parsed and checked against its pack's size. An index gone
/// since the listing (a repack replaced it) is skipped.
pub(crate) fn loaded(
    reading: Vec<(String, String, u64)>,
    read: Vec<Option<Vec<u8>>>,
    hash_kind: gix_hash::Kind,
) -> Result<Vec<PackFile>, Error> {
    let mut packs = Vec::new();
    for ((idx, key, size), bytes) in reading.into_iter().zip(read) {
        let Some(bytes) = bytes else { continue };
        let index = Index::from_bytes(&idx, bytes, hash_kind)?;
        // Every entry must start before the pack's trailer: a truncated pack, or an index
        // of another pack, is caught here.
        let trailer = size.saturating_sub(hash_kind.len_in_bytes() as u64);
        if index.last_offset().is_some_and(|last| last >= trailer) {
            let reason = format!("its index names entries past its end ({size} bytes)");
            return Err(Error::corrupt(&key, None, reason));
        }
        packs.push(PackFile {
            key,
            size,
            index: Arc::new(index),
        });
    }
    Ok(packs)
}

/// `true` when a listing found no pack at all: no commit-graph to look for then.
fn kept_or_read_empty(kept: &[PackFile], reading: &[(String, String, u64)]) -> bool {
    kept.is_empty() && reading.is_empty()
}

/// An object as its uncompressed loose form: `<kind> <size>\0<content>`.
pub(crate) fn raw_loose(kind: Kind, data: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(data.len() + 32);
    raw.extend_from_slice(kind.as_bytes());
    raw.push(b' ');
    object::push_decimal(&mut raw, data.len() as u64);
    raw.push(0);
    raw.extend_from_slice(data);
    raw
}

/// What a resolution needs next, for [`Packed`]'s generic part to hand out.
enum Next {
    /// A storage step.
    Step(Need),
    /// Every object is found (or known absent): the answers to the operation's `Get`.
    Done(Vec<Option<Vec<u8>>>),
}

/// Why an answer was refused, before it becomes the operation's error type.
enum Refused {
    Object(object::Error),
    Misuse(Misuse),
}

fn corrupt_object((id, err): (ObjectId, Error)) -> object::Error {
    object::Error::Corrupt {
        id,
        reason: format!("in {err}"),
    }
}

impl Resolve {
    /// The next step, or the answers once complete. Not generic: one copy for every
    /// operation (this matters in the `.wasm`).
    #[inline(never)]
    fn next(&mut self, cache: &mut ObjectCache) -> Result<Next, Refused> {
        if self.out != Out::Nothing {
            return Err(Refused::Misuse(Misuse("poll called before the last step was answered")));
        }
        let max = cache.limits().max_object_bytes;
        match self
            .poll(cache.hash_kind(), max)
            .map_err(|e| Refused::Object(corrupt_object(e)))?
        {
            Need::Step(step) => Ok(Next::Step(Need::Step(step))),
            Need::Done => {
                cache.set_packs(self.packs.clone());
                if let Some(graph) = self.graph.take() {
                    cache.set_graph(graph);
                }
                Ok(Next::Done(std::mem::take(&mut self.answers)))
            }
        }
    }

    /// Take the answer to the last step.
    #[inline(never)]
    fn take(&mut self, hash_kind: gix_hash::Kind, answer: Answer) -> Result<(), Refused> {
        match (std::mem::replace(&mut self.out, Out::Nothing), answer) {
            (Out::List, Answer::List(listed)) => self.pending_read = self.listed(listed),
            (Out::Indexes, Answer::Read(read)) => {
                self.indexes(read, hash_kind)
                    .map_err(|e| Refused::Object(corrupt_object(e)))?;
            }
            (Out::Ranges, Answer::Ranges(read)) => {
                if self
                    .ranges_read(read, hash_kind)
                    .map_err(|e| Refused::Object(corrupt_object(e)))?
                {
                    if self.listed {
                        let err = Error::corrupt(PACK_DIR, None, "a pack listed a moment ago is gone".into());
                        return Err(Refused::Object(corrupt_object((self.first_missing(), err))));
                    }
                    // A pack vanished (replaced by a repack): list them again.
                    self.packs = Arc::default();
                }
            }
            (out, _) => {
                self.out = out;
                return Err(Refused::Misuse(Misuse("answer does not match the step asked for")));
            }
        }
        Ok(())
    }
}

impl Resolve {
    /// Take over what `previous` read and rebuilt, if it read the same packs.
    fn reuse(mut self: Box<Self>, previous: Option<Box<Resolve>>) -> Box<Self> {
        if let Some(previous) = previous
            && Arc::ptr_eq(&previous.packs, &self.packs)
        {
            self.chunks = previous.chunks;
            self.bases = previous.bases;
            self.base_bytes = previous.base_bytes;
        }
        self
    }
}

impl Refused {
    fn into_error<E: From<object::Error> + From<Misuse>>(self) -> E {
        match self {
            Refused::Object(err) => err.into(),
            Refused::Misuse(misuse) => misuse.into(),
        }
    }
}

impl<O: Operation> Operation for Packed<O>
where
    O::Error: From<object::Error>,
{
    type Output = O::Output;
    type Error = O::Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<O::Output>, O::Error> {
        loop {
            match &mut self.state {
                State::Inner { get: Some(_) } => {
                    return Err(Misuse("poll called before the last step was answered").into());
                }
                State::Inner { get } => {
                    let step = self.op.poll(cache)?;
                    if let Step::Get(ids) = &step {
                        let resolve = match cache.packs() {
                            None if !ids.is_empty() => Some(Resolve::cold(ids)),
                            Some(packs) if !packs.is_empty() => Resolve::packs_first(ids, packs),
                            _ => None,
                        };
                        if let Some(mut resolve) = resolve {
                            resolve.want_graph = self.op.wants_graph();
                            resolve.graph_known = cache.graph_known();
                            resolve.graph_first();
                            self.state = State::Resolving(Box::new(resolve).reuse(self.kept.take()));
                            continue;
                        }
                        *get = Some(ids.clone());
                    }
                    return Ok(step);
                }
                State::Resolving(resolve) => match resolve.next(cache).map_err(Refused::into_error::<O::Error>)? {
                    Next::Step(Need::Step(Step::List(prefix))) => return Ok(Step::List(prefix)),
                    Next::Step(Need::Step(Step::Read(keys))) => return Ok(Step::Read(keys)),
                    Next::Step(Need::Step(Step::ReadRanges(ranges))) => return Ok(Step::ReadRanges(ranges)),
                    Next::Step(Need::Step(Step::Get(ids))) => return Ok(Step::Get(ids)),
                    Next::Step(_) => return Err(Misuse("packs asked for an unknown step").into()),
                    Next::Done(answers) => {
                        let mut ids = Vec::new();
                        if let State::Resolving(done) = std::mem::replace(&mut self.state, State::Inner { get: None }) {
                            ids.clone_from(&done.ids);
                            self.kept = Some(done);
                        }
                        let missing: Vec<ObjectId> = ids
                            .iter()
                            .zip(&answers)
                            .filter(|(_, answer)| answer.is_none())
                            .map(|(id, _)| *id)
                            .collect();
                        if !missing.is_empty() && !self.no_promisor && self.op.fetches_promised() {
                            self.state = State::Promised {
                                promise: Box::new(crate::remote::promised::Promise::new(missing)),
                                ids,
                                answers,
                            };
                            continue;
                        }
                        self.op.provide(cache, answers)?;
                    }
                },
                State::Promised { promise, .. } => {
                    if let Some(step) = promise.next()? {
                        return Ok(step.map(|()| unreachable!("a promise's steps are storage and HTTP steps")));
                    }
                    let State::Promised {
                        promise,
                        ids,
                        mut answers,
                    } = std::mem::replace(&mut self.state, State::Inner { get: None })
                    else {
                        unreachable!("matched above")
                    };
                    self.no_promisor = !promise.has_remotes();
                    let mut found = promise.into_found();
                    if !found.is_empty() {
                        // A pack was stored: the next reads list the packs again.
                        cache.forget_packs();
                        self.kept = None;
                    }
                    for (id, answer) in ids.iter().zip(answers.iter_mut()) {
                        if answer.is_none() {
                            *answer = found.remove(id);
                        }
                    }
                    self.op.provide(cache, answers)?;
                }
            }
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), O::Error> {
        let get = match &mut self.state {
            State::Inner { get } => get,
            State::Resolving(resolve) => {
                if resolve.out != Out::Loose || !resolve.loose_read(objects) {
                    return Err(Misuse("provide called without an outstanding Get").into());
                }
                resolve.out = Out::Nothing;
                return Ok(());
            }
            State::Promised { .. } => return Err(Misuse("provide called without an outstanding Get").into()),
        };
        let Some(ids) = get.take() else {
            return Err(Misuse("provide called without an outstanding Get").into());
        };
        if objects.len() != ids.len() || objects.iter().all(Option::is_some) {
            return self.op.provide(cache, objects);
        }
        let mut resolve = Box::new(Resolve::new(ids, objects, cache.packs()));
        resolve.want_graph = self.op.wants_graph();
        resolve.graph_known = cache.graph_known();
        self.state = State::Resolving(resolve.reuse(self.kept.take()));
        Ok(())
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), O::Error> {
        match &mut self.state {
            State::Resolving(resolve) => resolve
                .take(cache.hash_kind(), answer)
                .map_err(Refused::into_error::<O::Error>),
            State::Promised { promise, .. } => Ok(promise.take(cache, answer)?),
            State::Inner { .. } => self.op.answer(cache, answer),
        }
    }

    fn wants_graph(&self) -> bool {
        self.op.wants_graph()
    }

    fn fetches_promised(&self) -> bool {
        self.op.fetches_promised()
    }
}
