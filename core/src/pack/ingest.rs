//! Indexing a pack received whole, as `git push` sends one: every entry is read, every
//! delta rebuilt and every object hashed, each object handed to the caller's check, and
//! the version 2 index written byte for byte as `git index-pack` writes it, so the pack
//! and its index can be stored beside git's own.
//!
//! The pack must be self-contained: a `REF_DELTA` may name any object of the same pack,
//! earlier or later, but not one outside it (a "thin" pack; the server advertises
//! `no-thin`). Work on hostile packs is bounded as reading is ([`super`]): delta chains
//! by [`MAX_DELTA_DEPTH`], every inflated entry and rebuilt object by the caller's
//! limit, the object count by what the bytes can hold, and memory by the pack itself, a
//! record per entry, and [`BASE_CACHE_BYTES`] of delta bases (an evicted base is rebuilt
//! from the pack's bytes when it is needed again).
//!
//! Deltas are resolved as `git index-pack` resolves them: from each whole object, down
//! through the deltas based on it, so each base is inflated once while its deltas are
//! applied. A delta whose base never appears (a thin pack, or deltas based on each other)
//! is refused after the walk.

use foldhash::HashMap;
use gix_hash::ObjectId;
use gix_object::Kind;

use super::{
    BASE_CACHE_BYTES, Error, MAX_DELTA_DEPTH,
    entry::{self, Base, EntryKind},
    write,
};

/// The pack header: `PACK`, a version, an object count.
const HEADER: usize = 12;

/// The fewest bytes an entry can take: a header byte, and a zlib stream of at least 8
/// bytes (its 2-byte header, a final fixed-Huffman block holding only its end code in 2
/// bytes, and the 4-byte Adler-32). A count the bytes cannot hold is refused before
/// anything is allocated for it.
const MIN_ENTRY: usize = 9;

/// A received pack, indexed: ready to store beside git's packs.
#[derive(Debug, Clone)]
pub struct Indexed {
    /// The pack's checksum in hex, which names both files (`pack-<name>.pack`, `.idx`).
    pub name: String,
    /// The pack, as received.
    pub pack: Vec<u8>,
    /// Its version 2 index, as `git index-pack` writes it.
    pub index: Vec<u8>,
    /// Every object in the pack, in pack order, with its kind.
    pub objects: Vec<(ObjectId, Kind)>,
    /// How many of its entries are deltas.
    pub deltas: usize,
}

impl Indexed {
    /// The storage key of the pack.
    pub fn pack_key(&self) -> String {
        write::file_key(&self.name, "pack")
    }

    /// The storage key of the index.
    pub fn index_key(&self) -> String {
        write::file_key(&self.name, "idx")
    }

    /// The pack and its index as files to store ([`Step::Write`](crate::Step::Write)),
    /// the pack first.
    pub fn files(&self) -> Vec<crate::step::Stored> {
        write::files(&self.name, &self.pack, &self.index)
    }
}

/// The check every object passes: its id, kind and whole content. An `Err` refuses the
/// pack with that reason.
pub type Visit<'a> = dyn FnMut(ObjectId, Kind, &[u8]) -> Result<(), String> + 'a;

/// Index `pack`, a whole pack (version 2 or 3) held in memory, calling `visit` once for
/// every object with its full content: whole objects in pack order first, then deltas as
/// they are rebuilt. `key` names the pack in errors (`"the pushed pack"`); no object, entry
/// or delta instructions may inflate to more than `max_object_bytes` (twice that plus a
/// little for delta instructions, as reading allows).
///
/// Refused, as an [`Error`] naming the offset where it is known: a malformed header, a
/// checksum that does not match, bytes after it, a count that does not match the
/// entries, a broken entry, a delta whose base is not in the pack, a chain longer than
/// [`MAX_DELTA_DEPTH`], an object twice, and whatever `visit` refuses.
pub fn index(
    hash_kind: gix_hash::Kind,
    key: &str,
    pack: Vec<u8>,
    max_object_bytes: u64,
    visit: &mut Visit<'_>,
) -> Result<Indexed, Error> {
    index_with(hash_kind, key, pack, max_object_bytes, visit, BASE_CACHE_BYTES).map(|(indexed, _)| indexed)
}

/// [`index`], keeping at most `budget` bytes of delta bases besides the one in use; and
/// what resolving the deltas cost.
fn index_with(
    hash_kind: gix_hash::Kind,
    key: &str,
    pack: Vec<u8>,
    max_object_bytes: u64,
    visit: &mut Visit<'_>,
    budget: usize,
) -> Result<(Indexed, Cost), Error> {
    let input = Input {
        hash_kind,
        key,
        pack: &pack,
        max: max_object_bytes,
    };
    let count = input.header()?;
    let body = pack.len() - hash_kind.len_in_bytes();
    let trailer = &pack[body..];
    if input.checksum(body)?.as_slice() != trailer {
        return Err(input.mismatch(count));
    }
    let mut seen = HashMap::with_capacity_and_hasher(count, Default::default());
    let (mut entries, end) = input.scan(body, count, &mut |entries, at, kind, data| {
        let id = input.record(entries, &mut seen, at, kind, data)?;
        input.visit(visit, entries[at].offset, id, kind, data)
    })?;
    if end != body {
        let reason = format!(
            "{} bytes follow its {count} entries (its header counts too few objects)",
            body - end
        );
        return Err(input.corrupt(Some(end as u64), reason));
    }
    let cost = Resolver {
        input: &input,
        entries: &mut entries,
        seen: &mut seen,
        visit,
        budget,
        applied: 0,
    }
    .resolve()?;

    let mut objects = Vec::with_capacity(entries.len());
    let mut filed = Vec::with_capacity(entries.len());
    for e in &entries {
        let Some((id, kind)) = e.object else {
            return Err(input.unresolved(&entries, e));
        };
        objects.push((id, kind));
        filed.push((id, e.crc, e.offset));
    }
    let deltas = entries.iter().filter(|e| !matches!(e.form, Form::Whole(_))).count();
    let index = write::index(hash_kind, filed, trailer);
    let name = gix_hash::oid::try_from_bytes(trailer)
        .map_err(|_| input.corrupt(None, "its checksum has the wrong length".into()))?
        .to_hex()
        .to_string();
    let indexed = Indexed {
        name,
        pack,
        index,
        objects,
        deltas,
    };
    Ok((indexed, cost))
}

/// What an entry holds, its base found.
#[derive(Debug, Clone, Copy)]
enum Form {
    Whole(Kind),
    /// A delta against the entry at this position (`OFS_DELTA`).
    Offset(usize),
    /// A delta against the object with this id (`REF_DELTA`).
    Id(ObjectId),
}

/// One entry, as the scan found it.
#[derive(Debug)]
struct Entry {
    offset: u64,
    /// Where its zlib data starts in the pack.
    data: usize,
    /// Its inflated size (object or delta instructions).
    size: u64,
    /// CRC-32 of its bytes as stored, for the index.
    crc: u32,
    form: Form,
    /// Its id and kind, once known.
    object: Option<(ObjectId, Kind)>,
}

/// The pack being indexed, and what every step needs to know about it.
struct Input<'a> {
    hash_kind: gix_hash::Kind,
    key: &'a str,
    pack: &'a [u8],
    max: u64,
}

/// Called by the scan for each whole object: the entries so far, the new one's position
/// (already pushed), its kind and content.
type OnWhole<'a> = dyn FnMut(&mut [Entry], usize, Kind, &[u8]) -> Result<(), Error> + 'a;

impl Input<'_> {
    fn corrupt(&self, offset: Option<u64>, reason: String) -> Error {
        Error::corrupt(self.key, offset, reason)
    }

    /// Check the header; the object count.
    fn header(&self) -> Result<usize, Error> {
        let Some(header) = self.pack.get(..HEADER) else {
            return Err(self.corrupt(None, format!("{} bytes are too few for a pack", self.pack.len())));
        };
        if &header[..4] != b"PACK" {
            return Err(self.corrupt(None, "not a pack (no PACK signature)".into()));
        }
        let be32 = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
        let version = be32(4);
        if version != 2 && version != 3 {
            return Err(self.corrupt(None, format!("pack version {version} is not supported (only 2 and 3)")));
        }
        let count = be32(8) as usize;
        let Some(room) = self.pack.len().checked_sub(HEADER + self.hash_kind.len_in_bytes()) else {
            return Err(self.corrupt(None, "the pack ends before its checksum".into()));
        };
        if count > room / MIN_ENTRY {
            return Err(self.corrupt(
                None,
                format!(
                    "its header counts {count} objects, more than its {} bytes can hold",
                    self.pack.len()
                ),
            ));
        }
        Ok(count)
    }

    /// The checksum of the pack's first `end` bytes.
    fn checksum(&self, end: usize) -> Result<ObjectId, Error> {
        let mut hasher = gix_hash::hasher(self.hash_kind);
        hasher.update(&self.pack[..end]);
        crate::object::finalize(hasher)
            .ok_or_else(|| self.corrupt(None, "the pack carries a SHA-1 collision attack".into()))
    }

    /// Why a pack whose trailer is not its checksum is refused: bytes after a checksum
    /// that matches, or a checksum that does not (with what is broken, if the entries
    /// show it).
    fn mismatch(&self, count: usize) -> Error {
        let reason = "its checksum does not match its content";
        match self.scan(self.pack.len(), count, &mut |_, _, _, _| Ok(())) {
            Ok((_, end)) => {
                let hash_len = self.hash_kind.len_in_bytes();
                let after = end + hash_len;
                if after < self.pack.len()
                    && self
                        .checksum(end)
                        .is_ok_and(|sum| sum.as_slice() == &self.pack[end..after])
                {
                    let junk = self.pack.len() - after;
                    return self.corrupt(Some(after as u64), format!("{junk} bytes follow its checksum"));
                }
                self.corrupt(None, reason.into())
            }
            Err(err) => self.corrupt(err.offset, format!("{reason}; {}", err.reason)),
        }
    }

    /// Read `count` entries from the pack's header up to `limit`, inflating each to find
    /// where the next starts, and hand each whole object to `whole`. The entries, and
    /// where the last ends.
    fn scan(&self, limit: usize, count: usize, whole: &mut OnWhole<'_>) -> Result<(Vec<Entry>, usize), Error> {
        // `header` bounded `count` by the pack's size.
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        let mut at = HEADER;
        for n in 0..count {
            let offset = at as u64;
            let corrupt = |reason: String| self.corrupt(Some(offset), reason);
            let bytes = self.pack.get(at..limit).unwrap_or_default();
            if bytes.is_empty() {
                return Err(corrupt(format!(
                    "the pack ends after {n} entries, its header counts {count}"
                )));
            }
            let header = entry::parse_header(bytes, offset, self.hash_kind).map_err(corrupt)?;
            let (form, max) = match header.kind {
                EntryKind::Object(kind) => (Form::Whole(kind), self.max),
                EntryKind::Delta(Base::Offset(base)) => {
                    let Ok(position) = entries.binary_search_by_key(&base, |e| e.offset) else {
                        return Err(corrupt(format!(
                            "its delta base at offset {base} is not the start of an entry"
                        )));
                    };
                    (Form::Offset(position), entry::max_delta_bytes(self.max))
                }
                EntryKind::Delta(Base::Id(id)) => (Form::Id(id), entry::max_delta_bytes(self.max)),
            };
            let zlib = bytes.get(header.data_start..).unwrap_or_default();
            let (data, used) = entry::inflate_prefix(zlib, header.size, max).map_err(corrupt)?;
            let end = at + header.data_start + used;
            entries.push(Entry {
                offset,
                data: at + header.data_start,
                size: header.size,
                crc: entry::crc32(&self.pack[at..end]),
                form,
                object: None,
            });
            if let Form::Whole(kind) = form {
                whole(&mut entries, n, kind, &data)?;
            }
            at = end;
        }
        Ok((entries, at))
    }

    /// Hash the object of the entry at `at`, and note its id: an id seen before is
    /// refused.
    fn record(
        &self,
        entries: &mut [Entry],
        seen: &mut HashMap<ObjectId, u64>,
        at: usize,
        kind: Kind,
        data: &[u8],
    ) -> Result<ObjectId, Error> {
        let offset = entries[at].offset;
        let id = crate::object::hash(self.hash_kind, kind, data)
            .map_err(|err| self.corrupt(Some(offset), err.to_string()))?;
        if let Some(first) = seen.insert(id, offset) {
            return Err(self.corrupt(
                Some(offset),
                format!("object {id} is in the pack twice, first at offset {first}"),
            ));
        }
        entries[at].object = Some((id, kind));
        Ok(id)
    }

    /// Hand an object to the caller's check.
    fn visit(&self, visit: &mut Visit<'_>, offset: u64, id: ObjectId, kind: Kind, data: &[u8]) -> Result<(), Error> {
        visit(id, kind, data).map_err(|reason| self.corrupt(Some(offset), format!("object {id}: {reason}")))
    }

    /// The inflated data of the entry `e`, which the scan read once already.
    fn inflate(&self, e: &Entry) -> Result<Vec<u8>, Error> {
        let max = match e.form {
            Form::Whole(_) => self.max,
            Form::Offset(_) | Form::Id(_) => entry::max_delta_bytes(self.max),
        };
        let zlib = self.pack.get(e.data..).unwrap_or_default();
        entry::inflate(zlib, e.size, max).map_err(|reason| self.corrupt(Some(e.offset), reason))
    }

    /// Why the entry `e` was never rebuilt. Bases lie earlier than `OFS_DELTA`s, so the
    /// first such entry in pack order is a `REF_DELTA` whose base never appeared.
    fn unresolved(&self, entries: &[Entry], e: &Entry) -> Error {
        let reason = match e.form {
            Form::Id(base) => format!(
                "the base {base} of its delta is not in the pack (thin packs are refused), or is a delta based on it"
            ),
            Form::Offset(base) => format!(
                "the base of its delta, at offset {}, was never rebuilt",
                entries.get(base).map_or(0, |b| b.offset)
            ),
            Form::Whole(_) => "it was never read".into(),
        };
        self.corrupt(Some(e.offset), reason)
    }
}

/// The deltas of one base, by the base's entry (`OFS_DELTA`) or id (`REF_DELTA`), each
/// with its weight (see [`Resolver::resolve`]) and its entry.
type Deltas<B> = Vec<(B, u32, usize)>;

/// An object on the walk down from a whole object, with the deltas based on it still to
/// apply.
struct Frame {
    /// Its entry.
    at: usize,
    kind: Kind,
    /// Its content; `None` when evicted, when its last delta was applied (it is needed
    /// again only to rebuild the ones above it), or for the whole object at the bottom
    /// before it is first inflated.
    data: Option<Vec<u8>>,
    /// Its deltas still to apply: positions in the deltas by entry and by id.
    by_offset: std::ops::Range<usize>,
    by_id: std::ops::Range<usize>,
}

impl Frame {
    fn has_deltas(&self) -> bool {
        !self.by_offset.is_empty() || !self.by_id.is_empty()
    }

    /// The next delta to apply: the lighter of the next by entry and the next by id.
    fn next_delta(&mut self, by_offset: &Deltas<usize>, by_id: &Deltas<ObjectId>) -> Option<usize> {
        let offset = by_offset.get(self.by_offset.clone()).and_then(<[_]>::first);
        let id = by_id.get(self.by_id.clone()).and_then(<[_]>::first);
        match (offset, id) {
            (Some(&(_, w, at)), Some(&(_, v, _))) if w <= v => {
                self.by_offset.next();
                Some(at)
            }
            (Some(&(_, _, at)), None) => {
                self.by_offset.next();
                Some(at)
            }
            (_, Some(&(_, _, at))) => {
                self.by_id.next();
                Some(at)
            }
            (None, None) => None,
        }
    }
}

/// The delta resolution of a scanned pack.
struct Resolver<'a, 'v> {
    input: &'a Input<'a>,
    entries: &'a mut Vec<Entry>,
    seen: &'a mut HashMap<ObjectId, u64>,
    visit: &'a mut Visit<'v>,
    /// How many bytes of bases the frames may hold beyond the top one.
    budget: usize,
    /// How many deltas were applied, rebuilds included.
    applied: usize,
}

/// What a resolution cost: the most bytes of bases held at once, and the deltas applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cost {
    peak: usize,
    applied: usize,
}

impl Resolver<'_, '_> {
    /// Rebuild every delta from the whole objects down, hashing and visiting each.
    ///
    /// The deltas of a base are applied lightest first: a delta's weight is the number of
    /// objects rebuilt from it by offset (itself, and the deltas on it, recursively; those
    /// by id are known only once it is rebuilt). A base is let go when its last delta is
    /// applied, so the bases held at once are those still waiting for a delta after a
    /// heavier one, each with at most half the objects below the one before: a few dozen
    /// at most, whatever the depth of the chains.
    fn resolve(&mut self) -> Result<Cost, Error> {
        let mut weight = vec![1u32; self.entries.len()];
        for at in (0..self.entries.len()).rev() {
            if let Form::Offset(base) = self.entries[at].form {
                weight[base] = weight[base].saturating_add(weight[at]);
            }
        }
        // Sorted by base, then weight: the deltas of a base are one range, lightest
        // first, found by binary search.
        let mut by_offset: Deltas<usize> = Vec::new();
        let mut by_id: Deltas<ObjectId> = Vec::new();
        for (at, e) in self.entries.iter().enumerate() {
            match e.form {
                Form::Whole(_) => {}
                Form::Offset(base) => by_offset.push((base, weight[at], at)),
                Form::Id(base) => by_id.push((base, weight[at], at)),
            }
        }
        if by_offset.is_empty() && by_id.is_empty() {
            return Ok(Cost::default());
        }
        crate::order::sort(&mut by_offset);
        crate::order::sort(&mut by_id);
        let deltas = |at: usize, id: ObjectId| {
            let offsets =
                by_offset.partition_point(|&(b, _, _)| b < at)..by_offset.partition_point(|&(b, _, _)| b <= at);
            let ids = by_id.partition_point(|(b, _, _)| *b < id)..by_id.partition_point(|(b, _, _)| *b <= id);
            (offsets, ids)
        };
        let mut cost = Cost::default();
        for root in 0..self.entries.len() {
            let Some((id, kind)) = self.entries[root].object else {
                continue;
            };
            if !matches!(self.entries[root].form, Form::Whole(_)) {
                continue;
            }
            let (offsets, ids) = deltas(root, id);
            let frame = Frame {
                at: root,
                kind,
                data: None,
                by_offset: offsets,
                by_id: ids,
            };
            if !frame.has_deltas() {
                continue;
            }
            let mut stack = Stack {
                frames: vec![frame],
                held: 0,
                peak: 0,
                budget: self.budget,
            };
            while let Some(top) = stack.frames.last_mut() {
                let Some(child) = top.next_delta(&by_offset, &by_id) else {
                    stack.pop();
                    continue;
                };
                if self.entries[child].object.is_some() {
                    continue;
                }
                if stack.frames.len() > MAX_DELTA_DEPTH {
                    let reason = format!("a delta chain longer than {MAX_DELTA_DEPTH}");
                    return Err(self.input.corrupt(Some(self.entries[child].offset), reason));
                }
                self.load(&mut stack)?;
                let top = stack.frames.last().expect("a frame was just loaded");
                let (kind, last) = (top.kind, !top.has_deltas());
                let data = self.apply(top.data.as_deref().unwrap_or_default(), child)?;
                if last {
                    stack.release_top();
                }
                let id = self.input.record(self.entries, self.seen, child, kind, &data)?;
                self.input
                    .visit(self.visit, self.entries[child].offset, id, kind, &data)?;
                let (offsets, ids) = deltas(child, id);
                let frame = Frame {
                    at: child,
                    kind,
                    data: Some(data),
                    by_offset: offsets,
                    by_id: ids,
                };
                if frame.has_deltas() {
                    stack.push(frame);
                }
            }
            cost.peak = cost.peak.max(stack.peak);
        }
        cost.applied = self.applied;
        Ok(cost)
    }

    /// Rebuild the object of the entry `at` by applying its delta to `base`.
    fn apply(&mut self, base: &[u8], at: usize) -> Result<Vec<u8>, Error> {
        self.applied += 1;
        let e = &self.entries[at];
        let delta = self.input.inflate(e)?;
        entry::apply_delta(base, &delta, self.input.max).map_err(|reason| self.input.corrupt(Some(e.offset), reason))
    }

    /// Give the top frame its content if it has none (evicted, or a whole object not
    /// inflated yet): rebuilt from the nearest frame below that holds its own, or from
    /// the whole object at the bottom. Each frame on the way that still has deltas to
    /// apply keeps its content while the budget allows.
    fn load(&mut self, stack: &mut Stack) -> Result<(), Error> {
        let Some(top) = stack.frames.len().checked_sub(1) else {
            return Ok(());
        };
        if stack.frames[top].data.is_some() {
            return Ok(());
        }
        let start = stack.frames[..top]
            .iter()
            .rposition(|f| f.data.is_some())
            .map_or(0, |held| held + 1);
        // The content of the frame below, when it does not keep it.
        let mut carried: Option<Vec<u8>> = None;
        for i in start..=top {
            let data = match (i, carried.take()) {
                (0, _) => self.input.inflate(&self.entries[stack.frames[0].at])?,
                (_, Some(base)) => self.apply(&base, stack.frames[i].at)?,
                (_, None) => self.apply(
                    stack.frames[i - 1].data.as_deref().unwrap_or_default(),
                    stack.frames[i].at,
                )?,
            };
            if i == top || stack.frames[i].has_deltas() {
                stack.keep(i, data);
            } else {
                carried = Some(data);
            }
        }
        Ok(())
    }
}

/// The walk down from one whole object: the frames from it to the base in use, and
/// the bytes of content they hold.
struct Stack {
    frames: Vec<Frame>,
    held: usize,
    /// The most `held` has been once over budget bases were dropped.
    peak: usize,
    /// How many bytes the frames may hold besides the one in use.
    budget: usize,
}

impl Stack {
    fn push(&mut self, frame: Frame) {
        self.held += frame.data.as_ref().map_or(0, Vec::len);
        self.frames.push(frame);
        let top = self.frames.len() - 1;
        self.evict_below(top);
    }

    fn pop(&mut self) {
        self.release_top();
        self.frames.pop();
    }

    /// Let go of the top frame's content: its last delta is applied.
    fn release_top(&mut self) {
        if let Some(data) = self.frames.last_mut().and_then(|f| f.data.take()) {
            self.held -= data.len();
        }
    }

    /// Give frame `i` its content, rebuilt.
    fn keep(&mut self, i: usize, data: Vec<u8>) {
        if let Some(frame) = self.frames.get_mut(i) {
            self.held += data.len();
            frame.data = Some(data);
        }
        self.evict_below(i);
    }

    /// Over budget: drop the content of the frames below `i` deepest first, as they
    /// are needed last, to be rebuilt from the pack when their turn comes.
    fn evict_below(&mut self, i: usize) {
        for frame in self.frames.iter_mut().take(i) {
            if self.held <= self.budget {
                break;
            }
            self.held -= frame.data.take().map_or(0, |d| d.len());
        }
        self.peak = self.peak.max(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Versions of a text, each a line or two away from some earlier one.
    fn versions(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|v| {
                (0..300)
                    .map(|line| match (line % 23 == v % 23, line % 7 == v % 7) {
                        (true, _) => format!("line {line}, version {v}\n"),
                        (false, true) => format!("line {line}, version {}\n", v / 3),
                        _ => format!("line {line} of a text that deltas well\n"),
                    })
                    .collect::<String>()
                    .into_bytes()
            })
            .collect()
    }

    #[test]
    fn evicted_bases_are_rebuilt_from_the_pack() {
        let kind = gix_hash::Kind::Sha1;
        let objects: Vec<write::Object> = versions(80)
            .into_iter()
            .map(|data| write::Object {
                id: crate::object::hash(kind, Kind::Blob, &data).expect("no collision"),
                kind: Kind::Blob,
                data,
                name: 0,
            })
            .collect();
        let options = write::Options {
            window: 10,
            depth: 30,
            level: 1,
        };
        let written = write::write(kind, &objects, &options);
        assert!(written.deltas > 60, "{} deltas", written.deltas);
        let largest = objects.iter().map(|o| o.data.len()).max().unwrap_or(0);
        let run = |budget: usize| {
            let mut seen = Vec::new();
            let visit = &mut |id, _, data: &[u8]| {
                seen.push((id, data.len()));
                Ok(())
            };
            let (indexed, cost) =
                index_with(kind, "pack", written.pack.clone(), 1 << 20, visit, budget).expect("indexes");
            ((indexed.index, indexed.objects, seen), cost)
        };
        let (kept, cost) = run(BASE_CACHE_BYTES);
        assert_eq!(kept.0, written.index);
        assert_eq!(cost.applied, written.deltas, "nothing rebuilt");
        assert!(cost.peak > largest, "bases held: {cost:?}");
        // Keeping nothing but the base in use, or a little: the same objects, in the same
        // order, with less held (and, keeping nothing, some rebuilt).
        for budget in [0, largest] {
            let (again, cost) = run(budget);
            assert_eq!(again, kept);
            assert!(cost.peak <= budget + largest, "over {budget}: {cost:?}");
            if budget == 0 {
                assert!(cost.applied > written.deltas, "{cost:?}");
            }
        }
    }

    #[test]
    fn a_chain_with_a_leaf_at_each_level_holds_one_base() {
        // base, then at each level a delta that continues the chain and, after it in the
        // pack, one that ends there: taken in pack order, every level would wait for its
        // second delta while the chain below it is rebuilt.
        let kind = gix_hash::Kind::Sha1;
        let base = b"x".repeat(10_000);
        let mut pack = b"PACK\0\0\0\x02\0\0\0\0".to_vec();
        let mut chain_at = pack.len();
        let mut count = 0u32;
        let mut put = |pack: &mut Vec<u8>, kind_bits: u8, size: usize, base_at: Option<usize>, data: &[u8]| {
            let at = pack.len();
            crate::pack::write::entry_header(pack, kind_bits, size as u64);
            if let Some(base_at) = base_at {
                crate::pack::write::ofs_distance(pack, (at - base_at) as u64);
            }
            pack.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(data, 1));
            count += 1;
            at
        };
        put(&mut pack, 3, base.len(), None, &base);
        let levels = 300;
        for level in 0..levels {
            let size = base.len() + level;
            let delta = |appended: u8| {
                let mut d = Vec::new();
                for mut n in [size, size + 1] {
                    while n >= 0x80 {
                        d.push(0x80 | (n & 0x7f) as u8);
                        n >>= 7;
                    }
                    d.push(n as u8);
                }
                d.extend_from_slice(&[0x80 | 0x10 | 0x20, (size & 0xff) as u8, (size >> 8) as u8, 1, appended]);
                d
            };
            let next = put(&mut pack, 6, 9, Some(chain_at), &delta(b'y'));
            put(&mut pack, 6, 9, Some(chain_at), &delta(b'z'));
            chain_at = next;
        }
        pack[8..12].copy_from_slice(&count.to_be_bytes());
        let mut hasher = gix_hash::hasher(kind);
        hasher.update(&pack);
        pack.extend_from_slice(crate::object::finalize(hasher).expect("no collision").as_slice());
        // However much it may keep, it holds one base at a time and rebuilds nothing.
        for budget in [0, BASE_CACHE_BYTES] {
            let (indexed, cost) =
                index_with(kind, "pack", pack.clone(), 1 << 20, &mut |_, _, _| Ok(()), budget).expect("indexes");
            assert_eq!(indexed.deltas, 2 * levels);
            assert_eq!(cost.applied, indexed.deltas, "nothing rebuilt: {cost:?}");
            assert!(cost.peak <= base.len() + levels + 1, "one base at a time: {cost:?}");
        }
    }
}
