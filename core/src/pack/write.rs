//! Writing packs: a version 2 pack with `OFS_DELTA` entries and its version 2 index, as
//! `git pack-objects` and `git index-pack` would write them.
//!
//! Deltas are chosen as git chooses them: objects of one kind are sorted by a hash of
//! the name they were found under, then by size (largest first), and each is tried
//! against the [`Options::window`] objects before it, keeping the smallest delta whose
//! chain stays within [`Options::depth`]. Commits and tags are stored whole. Entries are
//! written in the order given (compaction gives commits, then trees, then blobs, newest
//! first, so a history walk reads contiguous bytes), each delta's base before it.

use gix_hash::ObjectId;
use gix_object::Kind;

use super::{delta, entry::crc32};

/// How hard [`write()`] looks for deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How many objects before each one it is tried against (git's `pack.window`).
    pub window: usize,
    /// The longest delta chain written (git's `pack.depth`).
    pub depth: usize,
    /// The zlib level of every entry, 0 to 9.
    pub level: u8,
}

impl Default for Options {
    /// git's `gc --aggressive` window and depth, at zlib's default level.
    fn default() -> Self {
        Options {
            window: 250,
            depth: 50,
            level: 6,
        }
    }
}

/// An object to pack.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its id (not checked here: the caller read and verified it).
    pub id: ObjectId,
    /// Its kind.
    pub kind: Kind,
    /// Its content.
    pub data: Vec<u8>,
    /// [`name_hash`] of the path it was found under, 0 if none: objects of one name are
    /// tried as each other's bases first.
    pub name: u32,
}

/// A pack and its index, ready to store.
#[derive(Debug, Clone)]
pub struct Written {
    /// The pack's checksum in hex, which names both files (`pack-<name>.pack`, `.idx`).
    pub name: String,
    /// The pack.
    pub pack: Vec<u8>,
    /// Its index.
    pub index: Vec<u8>,
    /// How many objects it holds.
    pub objects: usize,
    /// How many of them are deltas.
    pub deltas: usize,
}

impl Written {
    /// The storage key of the pack.
    pub fn pack_key(&self) -> String {
        file_key(&self.name, "pack")
    }

    /// The storage key of the index.
    pub fn index_key(&self) -> String {
        file_key(&self.name, "idx")
    }

    /// The pack and its index as files to store ([`Step::Write`](crate::Step::Write)),
    /// the pack first.
    pub fn files(&self) -> Vec<crate::step::Stored> {
        files(&self.name, &self.pack, &self.index)
    }
}

/// The storage key of the pack file named `name` with extension `ext`.
pub(crate) fn file_key(name: &str, ext: &str) -> String {
    format!("{}pack-{name}.{ext}", super::PACK_DIR)
}

/// A pack and its index as files to store, the pack first: an index names only objects
/// that are there when it appears.
pub(crate) fn files(name: &str, pack: &[u8], index: &[u8]) -> Vec<crate::step::Stored> {
    vec![
        crate::step::Stored {
            key: file_key(name, "pack"),
            bytes: pack.to_vec(),
        },
        crate::step::Stored {
            key: file_key(name, "idx"),
            bytes: index.to_vec(),
        },
    ]
}

/// git's grouping of names for delta search: a hash in which the last characters weigh
/// most, so `a/notes.md` and `b/notes.md` (and other `.md` files) sort together.
pub fn name_hash(name: &[u8]) -> u32 {
    name.iter()
        .filter(|c| !c.is_ascii_whitespace())
        .fold(0u32, |hash, &c| (hash >> 2).wrapping_add(u32::from(c) << 24))
}

/// Objects smaller than this are stored whole: a delta would save nothing.
const MIN_DELTA_SOURCE: usize = 64;

/// The pack type of a whole object.
fn type_code(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

const OFS_DELTA: u8 = 6;

/// Each object's chosen base (a position in `objects`) and delta.
fn choose_deltas(objects: &[Object], options: &Options) -> Vec<Option<(usize, Vec<u8>)>> {
    let mut chosen: Vec<Option<(usize, Vec<u8>)>> = vec![None; objects.len()];
    if options.window == 0 || options.depth == 0 {
        return chosen;
    }
    let mut depth = vec![0usize; objects.len()];
    // Candidates: trees and blobs worth a delta, by kind, name, then size (largest first).
    let mut order: Vec<usize> = (0..objects.len())
        .filter(|&i| matches!(objects[i].kind, Kind::Tree | Kind::Blob) && objects[i].data.len() >= MIN_DELTA_SOURCE)
        .collect();
    crate::order::sort_by(&mut order, |&a, &b| {
        let (x, y) = (&objects[a], &objects[b]);
        (type_code(x.kind), x.name, std::cmp::Reverse(x.data.len()), a).cmp(&(
            type_code(y.kind),
            y.name,
            std::cmp::Reverse(y.data.len()),
            b,
        ))
    });
    // The window: positions in `order`, with each one's index, built once.
    let mut window: std::collections::VecDeque<(usize, delta::Index)> = std::collections::VecDeque::new();
    for &target in &order {
        let data = &objects[target].data;
        let mut best: Option<(usize, Vec<u8>)> = None;
        for (base, index) in window.iter().rev() {
            let base = *base;
            if objects[base].kind != objects[target].kind || depth[base] >= options.depth {
                continue;
            }
            let source = &objects[base].data;
            // A base far smaller than the target rarely helps (git skips these too).
            if source.len() < data.len() / 32 {
                continue;
            }
            // Worth it only well below the whole object, and less so at depth.
            let room = (data.len() / 2).saturating_sub(20);
            let room = room * (options.depth - depth[base]) / options.depth;
            let limit = best.as_ref().map_or(room, |(_, d)| d.len().saturating_sub(1).min(room));
            if limit == 0 {
                continue;
            }
            if let Some(found) = index.encode(source, data, limit) {
                best = Some((base, found));
            }
        }
        if let Some((base, found)) = best {
            depth[target] = depth[base] + 1;
            chosen[target] = Some((base, found));
        }
        window.push_back((target, delta::Index::new(data)));
        if window.len() > options.window {
            window.pop_front();
        }
    }
    chosen
}

/// Write `objects` (unique ids, in the order their entries should follow) as a pack and
/// its index.
pub fn write(hash_kind: gix_hash::Kind, objects: &[Object], options: &Options) -> Written {
    write_reusing(hash_kind, &[], objects, options)
}

/// An entry of a stored pack, copied as it is: its zlib data kept, its header written
/// again (a delta's base named by offset when the base is written before it, else by id).
#[derive(Debug, Clone)]
pub struct Reused {
    /// The object's id.
    pub id: ObjectId,
    /// A whole object of this kind, or a delta against the object with this id (which
    /// must be in the pack written too).
    pub kind: Result<Kind, ObjectId>,
    /// The inflated size of the entry's data: the object, or the delta instructions.
    pub size: u64,
    /// The entry's zlib data, as stored.
    pub data: Vec<u8>,
}

const REF_DELTA: u8 = 7;

/// Write `reused` entries first (in this order; a delta's base is best written before
/// it), then `objects` with deltas among themselves, as one pack and its index. Ids are
/// unique across both.
pub fn write_reusing(hash_kind: gix_hash::Kind, reused: &[Reused], objects: &[Object], options: &Options) -> Written {
    let chosen = choose_deltas(objects, options);
    let count = reused.len() + objects.len();
    let capacity = reused.iter().map(|r| r.data.len() + 24).sum::<usize>()
        + objects.iter().map(|o| o.data.len() / 3 + 24).sum::<usize>();
    let mut pack = Vec::with_capacity(capacity + 32);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(count as u32).to_be_bytes());
    let mut entries: Vec<(ObjectId, u32, u64)> = Vec::with_capacity(count);
    let mut written: foldhash::HashMap<ObjectId, u64> = foldhash::HashMap::default();
    let mut deltas = 0;
    for entry in reused {
        let start = pack.len() as u64;
        match entry.kind {
            Ok(kind) => entry_header(&mut pack, type_code(kind), entry.size),
            Err(base) => {
                deltas += 1;
                match written.get(&base) {
                    Some(&base_offset) => {
                        entry_header(&mut pack, OFS_DELTA, entry.size);
                        ofs_distance(&mut pack, start - base_offset);
                    }
                    None => {
                        entry_header(&mut pack, REF_DELTA, entry.size);
                        pack.extend_from_slice(base.as_slice());
                    }
                }
            }
        }
        pack.extend_from_slice(&entry.data);
        written.insert(entry.id, start);
        entries.push((entry.id, crc32(&pack[start as usize..]), start));
    }
    let mut offsets: Vec<Option<u64>> = vec![None; objects.len()];
    let mut crcs = vec![0u32; objects.len()];
    let level = options.level.min(9);
    let mut pending = Vec::new();
    for first in 0..objects.len() {
        // Bases first: follow the chain down to what is written already.
        pending.push(first);
        while let Some(&i) = pending.last() {
            if offsets[i].is_some() {
                pending.pop();
                continue;
            }
            if let Some((base, _)) = &chosen[i]
                && offsets[*base].is_none()
            {
                pending.push(*base);
                continue;
            }
            pending.pop();
            let start = pack.len() as u64;
            match &chosen[i] {
                Some((base, found)) => {
                    let base_offset = offsets[*base].unwrap_or_default();
                    entry_header(&mut pack, OFS_DELTA, found.len() as u64);
                    ofs_distance(&mut pack, start - base_offset);
                    pack.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(found, level));
                    deltas += 1;
                }
                None => {
                    let object = &objects[i];
                    entry_header(&mut pack, type_code(object.kind), object.data.len() as u64);
                    pack.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(&object.data, level));
                }
            }
            offsets[i] = Some(start);
            crcs[i] = crc32(&pack[start as usize..]);
        }
    }
    let checksum = checksum(hash_kind, &pack);
    pack.extend_from_slice(checksum.as_slice());
    entries.extend(
        objects
            .iter()
            .zip(crcs)
            .zip(offsets)
            .map(|((object, crc), offset)| (object.id, crc, offset.unwrap_or_default())),
    );
    let index = index(hash_kind, entries, checksum.as_slice());
    Written {
        name: checksum.to_hex().to_string(),
        pack,
        index,
        objects: count,
        deltas,
    }
}

fn checksum(hash_kind: gix_hash::Kind, bytes: &[u8]) -> ObjectId {
    let mut hasher = gix_hash::hasher(hash_kind);
    hasher.update(bytes);
    // Packs are made of objects already hashed: a collision cannot be crafted here, and
    // the detector's verdict is not the pack's concern.
    crate::object::finalize(hasher).unwrap_or_else(|| ObjectId::null(hash_kind))
}

/// An entry's type and inflated size: 3 bits of type, then the size 4 bits first and 7
/// bits per byte after, the high bit saying another byte follows.
pub(crate) fn entry_header(out: &mut Vec<u8>, code: u8, size: u64) {
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

/// How far back an `OFS_DELTA`'s base starts: big-endian groups of 7 bits, each group
/// but the last stored one less than it is (so no two encodings mean the same distance).
pub(crate) fn ofs_distance(out: &mut Vec<u8>, mut distance: u64) {
    let mut bytes = [0u8; 10];
    let mut at = bytes.len() - 1;
    bytes[at] = (distance & 0x7f) as u8;
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        at -= 1;
        bytes[at] = 0x80 | (distance & 0x7f) as u8;
        distance >>= 7;
    }
    out.extend_from_slice(&bytes[at..]);
}

/// The version 2 index of a pack, byte for byte as `git index-pack` writes it: `entries`
/// are (id, CRC-32, offset) in any order, unique ids.
pub(crate) fn index(
    hash_kind: gix_hash::Kind,
    mut entries: Vec<(ObjectId, u32, u64)>,
    pack_checksum: &[u8],
) -> Vec<u8> {
    crate::order::sort_by(&mut entries, |a, b| a.0.cmp(&b.0));
    let hash_len = hash_kind.len_in_bytes();
    let mut out = Vec::with_capacity(8 + 1024 + entries.len() * (hash_len + 8) + 2 * hash_len);
    out.extend_from_slice(&[0xff, b't', b'O', b'c', 0, 0, 0, 2]);
    let mut fanout = [0u32; 256];
    for (id, _, _) in &entries {
        fanout[usize::from(id.as_slice()[0])] += 1;
    }
    let mut total = 0u32;
    for slot in fanout {
        total += slot;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in &entries {
        out.extend_from_slice(id.as_slice());
    }
    for (_, crc, _) in &entries {
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for (_, _, offset) in &entries {
        let small = match u32::try_from(*offset) {
            Ok(small) if small < 0x8000_0000 => small,
            _ => {
                large.push(*offset);
                0x8000_0000 | (large.len() as u32 - 1)
            }
        };
        out.extend_from_slice(&small.to_be_bytes());
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(pack_checksum);
    let own = checksum(hash_kind, &out);
    out.extend_from_slice(own.as_slice());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_back() {
        for size in [0u64, 15, 16, 127, 128, 1 << 20, u64::from(u32::MAX) + 7] {
            let mut out = Vec::new();
            entry_header(&mut out, 3, size);
            out.extend_from_slice(&[0x78, 0x01]);
            let header = super::super::entry::parse_header(&out, 0, gix_hash::Kind::Sha1).expect("header");
            assert_eq!(header.size, size);
            assert_eq!(header.kind, super::super::entry::EntryKind::Object(Kind::Blob));
        }
        for distance in [1u64, 127, 128, 16_511, 16_512, 1 << 40] {
            let mut out = Vec::new();
            entry_header(&mut out, OFS_DELTA, 10);
            ofs_distance(&mut out, distance);
            let at = distance + 100;
            let header = super::super::entry::parse_header(&out, at, gix_hash::Kind::Sha1).expect("header");
            assert_eq!(
                header.kind,
                super::super::entry::EntryKind::Delta(super::super::entry::Base::Offset(at - distance))
            );
        }
    }

    #[test]
    fn name_hash_groups_by_ending() {
        let distance = |a: &[u8], b: &[u8]| name_hash(a).abs_diff(name_hash(b));
        assert!(distance(b"notes.md", b"readme.md") < distance(b"notes.md", b"notes.rs"));
        assert_eq!(name_hash(b""), 0);
    }
}
