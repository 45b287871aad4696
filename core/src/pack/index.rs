//! A pack's index, as `git index-pack` writes it (version 2): where each object of the
//! pack starts, found by binary search in its sorted ids.
//!
//! ```text
//! ff 74 4f 63 | 00 00 00 02        magic, version
//! 256 x u32                        fan-out: objects whose first byte is <= i
//! n x id                           sorted object ids
//! n x u32                          CRC-32 of each packed entry
//! n x u32                          offsets; the high bit set: an index into ...
//! m x u64                          ... the offsets of 2 GiB and beyond
//! id, id                           the pack's checksum, this file's checksum
//! ```

use std::sync::Arc;

use gix_hash::ObjectId;

use super::Error;

const MAGIC: [u8; 4] = [0xff, b't', b'O', b'c'];
const FANOUT: usize = 256 * 4;
const HEADER: usize = 8;

/// A parsed, verified pack index. Cheap lookups by id; the entries' ends come from the
/// offsets in pack order.
#[derive(Debug, Clone)]
pub struct Index {
    bytes: Vec<u8>,
    hash_len: usize,
    count: usize,
    /// Every entry's offset, ascending, for the end of an entry.
    sorted_offsets: Vec<u64>,
    /// The CRC-32 of the entry at each of `sorted_offsets`.
    sorted_crcs: Vec<u32>,
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl Index {
    /// Parse and verify the index stored at `key`: its layout, its fan-out and order, its
    /// own checksum.
    pub fn from_bytes(key: &str, bytes: Vec<u8>, hash_kind: gix_hash::Kind) -> Result<Self, Error> {
        let corrupt = |reason: String| Error::corrupt(key, None, reason);
        let hash_len = hash_kind.len_in_bytes();
        if bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(corrupt("not a version 2 pack index (no magic number)".into()));
        }
        match be32(&bytes, 4) {
            Some(2) => {}
            other => return Err(corrupt(format!("index version {other:?} is not supported (only 2)"))),
        }
        let count = be32(&bytes, HEADER + FANOUT - 4).ok_or_else(|| corrupt("truncated fan-out".into()))? as usize;
        let mut previous = 0;
        for slot in 0..256 {
            let value = be32(&bytes, HEADER + slot * 4).ok_or_else(|| corrupt("truncated fan-out".into()))?;
            if value < previous {
                return Err(corrupt(format!("fan-out entry {slot} decreases")));
            }
            previous = value;
        }
        let fixed = count
            .checked_mul(hash_len + 8)
            .and_then(|n| n.checked_add(HEADER + FANOUT + 2 * hash_len))
            .ok_or_else(|| corrupt("object count overflows".into()))?;
        let large = bytes
            .len()
            .checked_sub(fixed)
            .filter(|extra| extra % 8 == 0)
            .ok_or_else(|| corrupt(format!("{} bytes do not fit {count} objects", bytes.len())))?
            / 8;
        let body = bytes.len() - hash_len;
        let mut hasher = gix_hash::hasher(hash_kind);
        hasher.update(&bytes[..body]);
        let digest =
            crate::object::finalize(hasher).ok_or_else(|| corrupt("its checksum cannot be computed".into()))?;
        if digest.as_slice() != &bytes[body..] {
            return Err(corrupt("its checksum does not match its content".into()));
        }
        let index = Index {
            bytes,
            hash_len,
            count,
            sorted_offsets: Vec::new(),
            sorted_crcs: Vec::new(),
        };
        let crcs = HEADER + FANOUT + count * hash_len;
        let mut offsets = Vec::with_capacity(count);
        for i in 0..count {
            let id = index.id_bytes(i);
            if i > 0 && index.id_bytes(i - 1) >= id {
                return Err(corrupt(format!("object ids are not sorted at entry {i}")));
            }
            let slot = usize::from(id[0]);
            let (low, high) = index.fan_range(slot);
            if i < low || i >= high {
                return Err(corrupt(format!("entry {i} lies outside its fan-out range")));
            }
            let offset = index
                .offset_at(i, large)
                .ok_or_else(|| corrupt(format!("entry {i} names a large offset that is not there")))?;
            let crc = be32(&index.bytes, crcs + i * 4).ok_or_else(|| corrupt("truncated CRC table".into()))?;
            offsets.push((offset, crc));
        }
        crate::order::sort(&mut offsets);
        if offsets.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(corrupt("two objects start at the same offset".into()));
        }
        let (sorted_offsets, sorted_crcs) = offsets.into_iter().unzip();
        Ok(Index {
            sorted_offsets,
            sorted_crcs,
            ..index
        })
    }

    /// How many objects the pack holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// `true` if the pack holds no object.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The checksum of the pack this index belongs to (its trailer).
    pub fn pack_checksum(&self) -> &[u8] {
        let end = self.bytes.len() - self.hash_len;
        &self.bytes[end - self.hash_len..end]
    }

    fn fan_range(&self, slot: usize) -> (usize, usize) {
        let at = |slot: usize| be32(&self.bytes, HEADER + slot * 4).unwrap_or(0) as usize;
        let low = if slot == 0 { 0 } else { at(slot - 1) };
        (low, at(slot))
    }

    fn id_bytes(&self, i: usize) -> &[u8] {
        let start = HEADER + FANOUT + i * self.hash_len;
        &self.bytes[start..start + self.hash_len]
    }

    fn offset_at(&self, i: usize, large: usize) -> Option<u64> {
        let table = HEADER + FANOUT + self.count * (self.hash_len + 4);
        let small = be32(&self.bytes, table + i * 4)?;
        if small & 0x8000_0000 == 0 {
            return Some(u64::from(small));
        }
        let slot = (small & 0x7fff_ffff) as usize;
        if slot >= large {
            return None;
        }
        be64(&self.bytes, table + self.count * 4 + slot * 8)
    }

    fn large_count(&self) -> usize {
        (self.bytes.len() - (HEADER + FANOUT + self.count * (self.hash_len + 8) + 2 * self.hash_len)) / 8
    }

    /// Where the object `id` starts in the pack, if the pack holds it.
    pub fn lookup(&self, id: &ObjectId) -> Option<u64> {
        let wanted = id.as_slice();
        let (mut low, mut high) = self.fan_range(usize::from(*wanted.first()?));
        while low < high {
            let mid = low + (high - low) / 2;
            match self.id_bytes(mid).cmp(wanted) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return self.offset_at(mid, self.large_count()),
            }
        }
        None
    }

    /// Where the entry starting at `offset` ends: the next entry's start, or `pack_end`
    /// (where the pack's trailer starts) for the last one. `None` if no entry starts at
    /// `offset`.
    pub fn entry_end(&self, offset: u64, pack_end: u64) -> Option<u64> {
        let at = self.sorted_offsets.binary_search(&offset).ok()?;
        Some(self.sorted_offsets.get(at + 1).copied().unwrap_or(pack_end))
    }

    /// The CRC-32 the index records for the entry starting at `offset` (of its header and
    /// zlib data, as stored), `None` if no entry starts there.
    pub fn entry_crc(&self, offset: u64) -> Option<u32> {
        let at = self.sorted_offsets.binary_search(&offset).ok()?;
        self.sorted_crcs.get(at).copied()
    }

    /// Where the last entry starts, `None` for an empty pack.
    pub fn last_offset(&self) -> Option<u64> {
        self.sorted_offsets.last().copied()
    }

    /// The ids of the objects in the pack whose hex form starts with `prefix` (lowercase
    /// hex, at least two digits), in order.
    pub fn ids_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = ObjectId> + 'a {
        let slot = prefix.get(..2).and_then(|first| u8::from_str_radix(first, 16).ok());
        let (low, high) = slot.map_or((0, 0), |slot| self.fan_range(usize::from(slot)));
        (low..high)
            .map(|i| ObjectId::from_bytes_or_panic(self.id_bytes(i)))
            .filter(move |id| crate::rev::hex_starts_with(id, prefix))
    }

    /// The ids of every object in the pack, in order.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        (0..self.count).map(|i| ObjectId::from_bytes_or_panic(self.id_bytes(i)))
    }
}

/// One pack of a store, with its index.
#[derive(Debug, Clone)]
pub struct PackFile {
    /// The key of the pack (`objects/pack/pack-<hash>.pack`).
    pub key: String,
    /// Its size in bytes, as listed.
    pub size: u64,
    /// Its index.
    pub index: Arc<Index>,
}

/// The packs of a store, as last listed.
pub type Packs = Arc<Vec<PackFile>>;
