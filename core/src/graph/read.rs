//! Parsing and verifying commit-graph files, and looking commits up across a chain.

use std::ops::Range;

use gix_hash::ObjectId;

use super::{Error, FANOUT, HEADER, LAST_EDGE, MAX_COMMITS, NO_PARENT, OCTOPUS, OVERFLOW, bloom, chunk};

/// One parsed, verified commit-graph file: a whole graph, or one layer of a chain. Its
/// commits are read through a [`Chain`].
#[derive(Debug, Clone)]
pub struct Graph {
    key: String,
    bytes: Vec<u8>,
    hash_kind: gix_hash::Kind,
    count: u32,
    /// How many layers lie below this one.
    bases: usize,
    fanout: usize,
    oids: usize,
    data: usize,
    generations: Option<usize>,
    overflow: Range<usize>,
    edges: Range<usize>,
    base: usize,
    filters: Option<Filters>,
}

/// Where a layer's Bloom filters are, and how they were hashed.
#[derive(Debug, Clone)]
struct Filters {
    index: usize,
    data: Range<usize>,
    version: u32,
    hashes: u32,
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn chunk_name(id: u32) -> String {
    String::from_utf8_lossy(&id.to_be_bytes()).into_owned()
}

impl Graph {
    /// Parse and verify the commit-graph file or layer stored at `key`: its checksum, its
    /// table of chunks, the size of each chunk, its fan-out and the order of its ids, its
    /// Bloom filter index. What depends on the layers below (parent positions,
    /// generations, the base layers' checksums) is verified by [`Chain::new`].
    pub fn from_bytes(key: &str, bytes: Vec<u8>, hash_kind: gix_hash::Kind) -> Result<Self, Error> {
        let fail = |reason: String| Error::corrupt(key, reason);
        let hash_len = hash_kind.len_in_bytes();
        if bytes.len() < HEADER + 12 + hash_len || bytes.get(..4) != Some(&b"CGPH"[..]) {
            return Err(fail("not a commit-graph (no CGPH signature)".into()));
        }
        if bytes[4] != 1 {
            return Err(fail(format!("version {} is not supported (only 1)", bytes[4])));
        }
        if bytes[5] != hash_kind as u8 {
            return Err(fail(format!("hash version {} is not {hash_kind:?}", bytes[5])));
        }
        let body = bytes.len() - hash_len;
        let mut hasher = gix_hash::hasher(hash_kind);
        hasher.update(&bytes[..body]);
        let digest = crate::object::finalize(hasher).ok_or_else(|| fail("its checksum cannot be computed".into()))?;
        if digest.as_slice() != &bytes[body..] {
            return Err(fail("its checksum does not match its content".into()));
        }

        let chunk_count = usize::from(bytes[6]);
        let toc_end = HEADER + (chunk_count + 1) * 12;
        if toc_end > body {
            return Err(fail(format!("{chunk_count} chunks do not fit the file")));
        }
        let mut chunks: Vec<(u32, Range<usize>)> = Vec::with_capacity(chunk_count);
        for at in (HEADER..toc_end - 12).step_by(12) {
            let id = be32(&bytes, at).unwrap_or(0);
            let start = be64(&bytes, at + 4).unwrap_or(u64::MAX);
            let end = be64(&bytes, at + 16).unwrap_or(0);
            if id == 0 {
                return Err(fail("the chunk table ends early".into()));
            }
            if start < toc_end as u64 || end < start || end > body as u64 {
                return Err(fail(format!(
                    "chunk {} has offsets {start}..{end} outside the file",
                    chunk_name(id)
                )));
            }
            if chunks.iter().any(|(seen, _)| *seen == id) {
                return Err(fail(format!("chunk {} appears twice", chunk_name(id))));
            }
            chunks.push((id, start as usize..end as usize));
        }
        if be32(&bytes, toc_end - 12) != Some(0) {
            return Err(fail("the chunk table does not end".into()));
        }
        let find = |id: u32| {
            chunks
                .iter()
                .find(|(seen, _)| *seen == id)
                .map(|(_, range)| range.clone())
        };
        let sized = |id: u32, width: usize, n: usize| -> Result<Option<usize>, Error> {
            match find(id) {
                None => Ok(None),
                Some(range) if Some(range.len()) == width.checked_mul(n) => Ok(Some(range.start)),
                Some(range) => Err(fail(format!(
                    "chunk {} has {} bytes, not {n} x {width}",
                    chunk_name(id),
                    range.len()
                ))),
            }
        };
        let required = |id: u32, width: usize, n: usize| {
            sized(id, width, n)?.ok_or_else(|| fail(format!("chunk {} is missing", chunk_name(id))))
        };

        let fanout = required(chunk::OIDF, FANOUT, 1)?;
        let fan = |slot: usize| be32(&bytes, fanout + slot * 4).unwrap_or(0);
        if (1..256).any(|slot| fan(slot - 1) > fan(slot)) {
            return Err(fail("its fan-out decreases".into()));
        }
        let count = fan(255);
        if count > MAX_COMMITS {
            return Err(fail(format!("{count} commits are more than the format allows")));
        }
        let n = count as usize;
        let oids = required(chunk::OIDL, hash_len, n)?;
        let data = required(chunk::CDAT, hash_len + 16, n)?;
        let id_at = |i: usize| &bytes[oids + i * hash_len..oids + (i + 1) * hash_len];
        for i in 0..n {
            let id = id_at(i);
            if i > 0 && id_at(i - 1) >= id {
                return Err(fail(format!("commit ids are not sorted at position {i}")));
            }
            let slot = usize::from(id[0]);
            let low = if slot == 0 { 0 } else { fan(slot - 1) as usize };
            if i < low || i >= fan(slot) as usize {
                return Err(fail(format!("position {i} lies outside its fan-out range")));
            }
        }

        let generations = sized(chunk::GDA2, 4, n)?;
        let overflow = find(chunk::GDO2).unwrap_or_default();
        let edges = find(chunk::EDGE).unwrap_or_default();
        if overflow.len() % 8 != 0 || edges.len() % 4 != 0 {
            return Err(fail("chunk GDO2 or EDGE is not a whole number of entries".into()));
        }
        let bases = usize::from(bytes[7]);
        let base_range = find(chunk::BASE).unwrap_or_default();
        if base_range.len() != bases * hash_len {
            return Err(fail(format!(
                "chunk BASE does not hold the {bases} base layers the header counts"
            )));
        }

        // Both chunks or neither, as git reads them.
        let filters = match (find(chunk::BIDX), find(chunk::BDAT)) {
            (Some(_), Some(data)) => {
                let index = required(chunk::BIDX, 4, n)?;
                let (Some(version), Some(hashes), true) =
                    (be32(&bytes, data.start), be32(&bytes, data.start + 4), data.len() >= 12)
                else {
                    return Err(fail("chunk BDAT is shorter than its header".into()));
                };
                let data = data.start + 12..data.end;
                let mut previous = 0;
                for i in 0..n {
                    let end = be32(&bytes, index + i * 4).unwrap_or(0);
                    if end < previous || end as usize > data.len() {
                        return Err(fail(format!(
                            "the Bloom filter of position {i} lies outside chunk BDAT"
                        )));
                    }
                    previous = end;
                }
                // Filters of another hash, or of absurd settings, are ignored, as git
                // ignores versions it does not know.
                ((version == 1 || version == bloom::VERSION) && (1..=32).contains(&hashes)).then_some(Filters {
                    index,
                    data,
                    version,
                    hashes,
                })
            }
            _ => None,
        };

        Ok(Graph {
            key: key.to_owned(),
            hash_kind,
            count,
            bases,
            fanout,
            oids,
            data,
            generations,
            overflow,
            edges,
            base: base_range.start,
            filters,
            bytes,
        })
    }

    /// The key it was read from.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How many commits it holds (not counting its base layers).
    pub fn len(&self) -> u32 {
        self.count
    }

    /// `true` if it holds no commit.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Its checksum: the name of the layer (see [`super::layer_key`]).
    pub fn checksum(&self) -> ObjectId {
        ObjectId::from_bytes_or_panic(&self.bytes[self.bytes.len() - self.hash_kind.len_in_bytes()..])
    }

    /// The checksums of the layers below it, base first, as its BASE chunk names them.
    pub fn bases(&self) -> impl Iterator<Item = ObjectId> + '_ {
        let len = self.hash_kind.len_in_bytes();
        (0..self.bases).map(move |i| ObjectId::from_bytes_or_panic(&self.bytes[self.base + i * len..][..len]))
    }

    /// Whether it stores corrected commit dates (a GDA2 chunk).
    pub fn has_generation_data(&self) -> bool {
        self.generations.is_some()
    }

    /// Whether it stores changed-path Bloom filters that can be read.
    pub fn has_filters(&self) -> bool {
        self.filters.is_some()
    }

    /// The id at `local`, its position in this file.
    pub fn id(&self, local: u32) -> Option<ObjectId> {
        let len = self.hash_kind.len_in_bytes();
        (local < self.count)
            .then(|| ObjectId::from_bytes_or_panic(&self.bytes[self.oids + local as usize * len..][..len]))
    }

    /// The position of `id` in this file, if it holds it.
    pub fn find(&self, id: &gix_hash::oid) -> Option<u32> {
        let wanted = id.as_bytes();
        let len = self.hash_kind.len_in_bytes();
        if wanted.len() != len {
            return None;
        }
        let slot = usize::from(wanted[0]);
        let fan = |slot: usize| be32(&self.bytes, self.fanout + slot * 4).unwrap_or(0) as usize;
        let (mut low, mut high) = (if slot == 0 { 0 } else { fan(slot - 1) }, fan(slot));
        while low < high {
            let mid = low + (high - low) / 2;
            match self.bytes[self.oids + mid * len..][..len].cmp(wanted) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    /// The CDAT row of `local`: tree, two parent words, level and date.
    fn row(&self, local: u32) -> &[u8] {
        let width = self.hash_kind.len_in_bytes() + 16;
        &self.bytes[self.data + local as usize * width..][..width]
    }

    fn word(&self, local: u32, index: usize) -> u32 {
        be32(self.row(local), self.hash_kind.len_in_bytes() + 4 * index).unwrap_or(0)
    }

    fn time(&self, local: u32) -> u64 {
        (u64::from(self.word(local, 2) & 3) << 32) | u64::from(self.word(local, 3))
    }

    fn level(&self, local: u32) -> u32 {
        self.word(local, 2) >> 2
    }

    fn corrected(&self, local: u32) -> Option<u64> {
        let offset = be32(&self.bytes, self.generations? + local as usize * 4)?;
        let offset = if offset & OVERFLOW == 0 {
            u64::from(offset)
        } else {
            let at = ((offset & !OVERFLOW) as usize).checked_mul(8)?;
            be64(&self.bytes, self.overflow.start.checked_add(at)?).filter(|_| at < self.overflow.len())?
        };
        self.time(local).checked_add(offset)
    }

    /// The parents of `local` by position, and the part of the EDGE chunk they used.
    fn parents(&self, local: u32) -> Result<(Vec<u32>, Range<usize>), &'static str> {
        let (first, second) = (self.word(local, 0), self.word(local, 1));
        match (first, second) {
            (NO_PARENT, NO_PARENT) => Ok((Vec::new(), 0..0)),
            (NO_PARENT, _) => Err("a second parent without a first"),
            (_, NO_PARENT) => Ok((vec![first], 0..0)),
            (_, _) if second & OCTOPUS == 0 => Ok((vec![first, second], 0..0)),
            _ => {
                let start = (second & !OCTOPUS) as usize;
                let mut parents = vec![first];
                let mut at = start;
                loop {
                    let edge = be32(&self.bytes, self.edges.start + at * 4)
                        .filter(|_| at < self.edges.len() / 4)
                        .ok_or("an octopus parent list that runs past chunk EDGE")?;
                    parents.push(edge & !LAST_EDGE);
                    at += 1;
                    if edge & LAST_EDGE != 0 {
                        return Ok((parents, start..at));
                    }
                }
            }
        }
    }

    /// The Bloom filter of the commit at `local` (a position in this file) as stored, if
    /// it has one written with the settings [`write()`](super::write()) uses.
    pub fn reusable_filter(&self, local: u32) -> Option<Vec<u8>> {
        let (filter, settings) = self.filter(local)?;
        (settings.version == bloom::VERSION && settings.hashes == bloom::HASHES).then(|| filter.to_vec())
    }

    /// The Bloom filter of `local`; `None` without one.
    fn filter(&self, local: u32) -> Option<(&[u8], &Filters)> {
        let filters = self.filters.as_ref()?;
        let end = be32(&self.bytes, filters.index + local as usize * 4)? as usize;
        let start = match local {
            0 => 0,
            _ => be32(&self.bytes, filters.index + (local as usize - 1) * 4)? as usize,
        };
        let data = self.bytes.get(filters.data.start + start..filters.data.start + end)?;
        (!data.is_empty()).then_some((data, filters))
    }
}

/// A commit as a graph records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its root tree.
    pub tree: ObjectId,
    /// Its parents by position in the chain, in order ([`Chain::id`] names them).
    pub parents: Vec<u32>,
    /// Its generation: its corrected commit date if every layer stores them, else its
    /// topological level (1 for a root). Always above its parents' generations.
    pub generation: u64,
    /// Its committer time in seconds since the epoch (34 bits).
    pub time: i64,
}

/// The layers of a commit-graph, base first; a single `commit-graph` file is a chain of
/// one. Positions run across the layers as git numbers them: a layer's first commit
/// follows the last commit of the layer below.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    layers: Vec<Graph>,
    starts: Vec<u32>,
    len: u32,
    corrected: bool,
}

impl Chain {
    /// A chain of `layers`, base first, verified: each layer names exactly the layers
    /// below it, every parent position is a commit of its layer or below, every octopus
    /// parent list ends inside the EDGE chunk without overlapping another, and every
    /// commit's generation is above its parents' (so parents never form a cycle).
    pub fn new(layers: Vec<Graph>) -> Result<Self, Error> {
        let mut starts = Vec::with_capacity(layers.len());
        let mut len = 0u32;
        for (i, layer) in layers.iter().enumerate() {
            let fail = |reason: &str| Error::corrupt(&layer.key, reason);
            if layer.hash_kind != layers[0].hash_kind {
                return Err(fail("its hash kind is not that of the chain"));
            }
            if layer.bases != i || !layer.bases().zip(&layers).all(|(named, base)| named == base.checksum()) {
                return Err(fail("the base layers it names are not those below it in the chain"));
            }
            starts.push(len);
            len = len
                .checked_add(layer.count)
                .filter(|&len| len <= MAX_COMMITS)
                .ok_or_else(|| fail("the chain holds more commits than the format allows"))?;
        }
        let corrected = layers.iter().all(Graph::has_generation_data);
        let chain = Chain {
            layers,
            starts,
            len,
            corrected,
        };
        for (layer, &start) in chain.layers.iter().zip(&chain.starts) {
            chain.verify(layer, start)?;
        }
        Ok(chain)
    }

    fn verify(&self, layer: &Graph, start: u32) -> Result<(), Error> {
        let limit = start + layer.count;
        let mut edges_used = 0;
        for local in 0..layer.count {
            let id = layer.id(local).unwrap_or_else(|| ObjectId::null(layer.hash_kind));
            let fail = |reason: &str| Error::corrupt(&layer.key, format!("commit {id}: {reason}"));
            let generation = self
                .generation(start + local)
                .ok_or_else(|| fail("its generation overflows"))?;
            if generation == 0 {
                return Err(fail("no generation number (written by git 2.18)"));
            }
            let (parents, edges) = layer.parents(local).map_err(fail)?;
            if !edges.is_empty() {
                if edges.start < edges_used {
                    return Err(fail("its octopus parent list overlaps another"));
                }
                edges_used = edges.end;
            }
            for parent in parents {
                if parent >= limit {
                    return Err(fail(&format!(
                        "parent position {parent} is beyond its layer's {limit} commits"
                    )));
                }
                if self.generation(parent).is_none_or(|above| above >= generation) {
                    return Err(fail("its generation is not above its parent's"));
                }
            }
        }
        Ok(())
    }

    /// Its layers, base first.
    pub fn layers(&self) -> &[Graph] {
        &self.layers
    }

    /// Its layers, base first, to add one and build a new chain.
    pub fn into_layers(self) -> Vec<Graph> {
        self.layers
    }

    /// How many commits its layers hold.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// `true` if it holds no commit.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether generations are corrected commit dates (every layer stores them) rather
    /// than topological levels.
    pub fn has_generation_data(&self) -> bool {
        self.corrected
    }

    pub(super) fn hash_kind(&self) -> Option<gix_hash::Kind> {
        self.layers.first().map(|layer| layer.hash_kind)
    }

    fn locate(&self, pos: u32) -> Option<(&Graph, u32)> {
        let at = self.starts.partition_point(|&start| start <= pos).checked_sub(1)?;
        let local = pos - self.starts[at];
        let layer = &self.layers[at];
        (local < layer.count).then_some((layer, local))
    }

    /// The position of `id` in the chain, if a layer holds it.
    pub fn find(&self, id: &gix_hash::oid) -> Option<u32> {
        let mut top_down = self.layers.iter().zip(&self.starts).rev();
        top_down.find_map(|(layer, &start)| Some(start + layer.find(id)?))
    }

    /// The id of the commit at `pos`.
    pub fn id(&self, pos: u32) -> Option<ObjectId> {
        let (layer, local) = self.locate(pos)?;
        layer.id(local)
    }

    /// The commit at `pos`; `None` beyond the chain.
    pub fn commit(&self, pos: u32) -> Option<Entry> {
        let (layer, local) = self.locate(pos)?;
        let len = layer.hash_kind.len_in_bytes();
        Some(Entry {
            tree: ObjectId::from_bytes_or_panic(&layer.row(local)[..len]),
            parents: layer.parents(local).ok()?.0,
            generation: self.generation(pos)?,
            time: layer.time(local) as i64,
        })
    }

    fn generation(&self, pos: u32) -> Option<u64> {
        let (layer, local) = self.locate(pos)?;
        match self.corrected {
            true => layer.corrected(local),
            false => Some(u64::from(layer.level(local))),
        }
    }

    /// The topological level and, if the chain stores them, the corrected commit date of
    /// the commit at `pos`: what a layer written on top needs of its parents below.
    pub(super) fn generations(&self, pos: u32) -> Option<(u32, Option<u64>)> {
        let (layer, local) = self.locate(pos)?;
        let corrected = if self.corrected {
            Some(layer.corrected(local)?)
        } else {
            None
        };
        Some((layer.level(local), corrected))
    }

    /// The Bloom filter of the commit at `pos` as stored, if it has one written with the
    /// settings [`write()`](super::write()) uses (so it can be written again as it is).
    pub fn filter(&self, pos: u32) -> Option<Vec<u8>> {
        let (layer, local) = self.locate(pos)?;
        layer.reusable_filter(local)
    }

    /// Whether the commit at `pos` may have changed `path` (a file or folder, `/` between
    /// names) against its first parent: `Some(false)` is certain, `Some(true)` may be a
    /// false positive, `None` if the commit has no Bloom filter.
    pub fn may_have_changed(&self, pos: u32, path: &[u8]) -> Option<bool> {
        let (layer, local) = self.locate(pos)?;
        let (filter, settings) = layer.filter(local)?;
        let path = path.strip_suffix(b"/").unwrap_or(path);
        if path.is_empty() {
            return Some(true);
        }
        Some(bloom::may_contain(filter, path, settings.hashes, settings.version))
    }
}
