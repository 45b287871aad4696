//! Encoding a commit-graph file, or a layer on top of a chain.

use gix_hash::ObjectId;

use super::{
    Chain, Commit, Error, FANOUT, HEADER, LAST_EDGE, MAX_COMMITS, MAX_LEVEL, NO_PARENT, OCTOPUS, OVERFLOW, bloom, chunk,
};

/// The largest generation offset GDA2 holds itself; larger ones go to GDO2.
const MAX_OFFSET: u64 = 0x7fff_ffff;

/// Encode `commits` (in any order) as a commit-graph file, with its trailing checksum.
///
/// With `base`, the file is a layer on top of it (its BASE chunk names the base's
/// layers): its commits are numbered after the base's, and it stores corrected commit
/// dates only if the base does, as git writes layers. Every parent must be among
/// `commits` or in `base`. Commits with [`Commit::changed`] get Bloom filters as git
/// writes them by default (hash version 2, 7 hashes, 10 bits per path, more than 512
/// paths: a filter of all ones); if none has it, the file has no filter chunks. The
/// output is byte for byte what `git commit-graph write` writes for the same commits
/// with `commitGraph.changedPathsVersion=2`.
pub fn write(hash_kind: gix_hash::Kind, commits: &[Commit], base: Option<&Chain>) -> Result<Vec<u8>, Error> {
    let empty = Chain::default();
    let base = base.unwrap_or(&empty);
    if base.hash_kind().is_some_and(|kind| kind != hash_kind) {
        let id = base.layers()[0].checksum();
        return Err(Error::HashKind {
            id,
            expected: hash_kind,
        });
    }
    for commit in commits {
        if let Some(&id) = [commit.id, commit.tree]
            .iter()
            .chain(&commit.parents)
            .find(|id| id.kind() != hash_kind)
        {
            return Err(Error::HashKind {
                id,
                expected: hash_kind,
            });
        }
        if !(0..1 << 34).contains(&commit.time) {
            return Err(Error::TimeOutOfRange {
                id: commit.id,
                time: commit.time,
            });
        }
    }
    let base_len = base.len();
    u32::try_from(commits.len())
        .ok()
        .and_then(|n| n.checked_add(base_len))
        .filter(|&total| total <= MAX_COMMITS)
        .ok_or(Error::TooLarge {
            reason: "more than 0x6fffffff commits",
        })?;
    let bases = u8::try_from(base.layers().len()).map_err(|_| Error::TooLarge {
        reason: "more than 255 base layers",
    })?;

    let mut sorted: Vec<&Commit> = commits.iter().collect();
    crate::order::sort_by(&mut sorted, |a, b| a.id.cmp(&b.id));
    for (i, commit) in sorted.iter().enumerate() {
        if (i > 0 && sorted[i - 1].id == commit.id) || base.find(&commit.id).is_some() {
            return Err(Error::Duplicate { id: commit.id });
        }
    }
    let position = |id: &ObjectId| match sorted.binary_search_by(|commit| commit.id.cmp(id)) {
        Ok(local) => Some(base_len + local as u32),
        Err(_) => base.find(id),
    };
    // Every commit's parent positions, one list after another.
    let mut parents = Vec::with_capacity(commits.len() * 2);
    let mut firsts = Vec::with_capacity(commits.len() + 1);
    for commit in &sorted {
        firsts.push(parents.len());
        for parent in &commit.parents {
            parents.push(position(parent).ok_or(Error::MissingParent {
                commit: commit.id,
                parent: *parent,
            })?);
        }
    }
    firsts.push(parents.len());
    let parents_of = |i: usize| &parents[firsts[i]..firsts[i + 1]];

    let corrected = base.layers().is_empty() || base.has_generation_data();
    let (levels, dates) = generations(&sorted, &parents, &firsts, base)?;

    let mut fanout = Vec::with_capacity(FANOUT);
    let mut below = 0;
    for slot in 0..256 {
        while sorted
            .get(below)
            .is_some_and(|c| usize::from(c.id.as_slice()[0]) <= slot)
        {
            below += 1;
        }
        fanout.extend_from_slice(&(below as u32).to_be_bytes());
    }
    let mut oids = Vec::with_capacity(sorted.len() * hash_kind.len_in_bytes());
    let mut data = Vec::with_capacity(sorted.len() * (hash_kind.len_in_bytes() + 16));
    let mut edges = Vec::new();
    let mut offsets = Vec::with_capacity(sorted.len() * 4);
    let mut overflow = Vec::new();
    let mut index = Vec::new();
    let mut filters = [bloom::VERSION, bloom::HASHES, bloom::BITS_PER_ENTRY]
        .iter()
        .flat_map(|word| word.to_be_bytes())
        .collect::<Vec<u8>>();
    for (i, commit) in sorted.iter().enumerate() {
        oids.extend_from_slice(commit.id.as_slice());
        data.extend_from_slice(commit.tree.as_slice());
        let parents = parents_of(i);
        let second = match parents {
            [] | [_] => NO_PARENT,
            [_, second] => *second,
            [_, rest @ ..] => {
                let at = u32::try_from(edges.len() / 4)
                    .ok()
                    .filter(|&at| at < OCTOPUS)
                    .ok_or(Error::TooLarge {
                        reason: "more than 2^31 octopus parents",
                    })?;
                for (k, &parent) in rest.iter().enumerate() {
                    let last = if k + 1 == rest.len() { LAST_EDGE } else { 0 };
                    edges.extend_from_slice(&(parent | last).to_be_bytes());
                }
                OCTOPUS | at
            }
        };
        let time = commit.time as u64;
        for word in [
            parents.first().copied().unwrap_or(NO_PARENT),
            second,
            (levels[i] << 2) | (time >> 32) as u32,
            time as u32,
        ] {
            data.extend_from_slice(&word.to_be_bytes());
        }
        let offset = dates[i] - time;
        let word = if offset <= MAX_OFFSET {
            offset as u32
        } else {
            overflow.extend_from_slice(&offset.to_be_bytes());
            OVERFLOW | (overflow.len() / 8 - 1) as u32
        };
        offsets.extend_from_slice(&word.to_be_bytes());
        if let Some(changed) = &commit.changed {
            filters.extend(bloom::filter(changed));
        } else if let Some(filter) = &commit.filter {
            filters.extend_from_slice(filter);
        }
        let end = u32::try_from(filters.len() - 12).map_err(|_| Error::TooLarge {
            reason: "more than 4 GiB of Bloom filters",
        })?;
        index.extend_from_slice(&end.to_be_bytes());
    }
    let with_filters = commits
        .iter()
        .any(|commit| commit.changed.is_some() || commit.filter.is_some());
    let mut layers = Vec::with_capacity(base.layers().len() * hash_kind.len_in_bytes());
    for layer in base.layers() {
        layers.extend_from_slice(layer.checksum().as_slice());
    }

    // git's order of chunks, so equal inputs give equal files.
    let (octopus, overflows, layered) = (!edges.is_empty(), !overflow.is_empty(), bases > 0);
    let chunks: Vec<(u32, Vec<u8>)> = [
        (chunk::OIDF, fanout, true),
        (chunk::OIDL, oids, true),
        (chunk::CDAT, data, true),
        (chunk::GDA2, offsets, corrected),
        (chunk::GDO2, overflow, corrected && overflows),
        (chunk::EDGE, edges, octopus),
        (chunk::BIDX, index, with_filters),
        (chunk::BDAT, filters, with_filters),
        (chunk::BASE, layers, layered),
    ]
    .into_iter()
    .filter_map(|(id, bytes, wanted)| wanted.then_some((id, bytes)))
    .collect();
    let mut out =
        Vec::with_capacity(HEADER + (chunks.len() + 1) * 12 + chunks.iter().map(|c| c.1.len()).sum::<usize>());
    out.extend_from_slice(b"CGPH");
    out.extend_from_slice(&[1, hash_kind as u8, chunks.len() as u8, bases]);
    let mut offset = (HEADER + (chunks.len() + 1) * 12) as u64;
    for (id, bytes) in &chunks {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&offset.to_be_bytes());
        offset += bytes.len() as u64;
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_be_bytes());
    for (_, bytes) in chunks {
        out.extend(bytes);
    }
    let mut hasher = gix_hash::hasher(hash_kind);
    hasher.update(&out);
    let checksum = crate::object::finalize(hasher).ok_or(Error::Collision)?;
    out.extend_from_slice(checksum.as_slice());
    Ok(out)
}

/// Each commit's topological level and corrected commit date, parents first, without
/// recursion (histories are deep). The parents of `sorted[i]` are
/// `parents[firsts[i]..firsts[i + 1]]`.
fn generations(
    sorted: &[&Commit],
    parents: &[u32],
    firsts: &[usize],
    base: &Chain,
) -> Result<(Vec<u32>, Vec<u64>), Error> {
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let base_len = base.len();
    let mut state = vec![NEW; sorted.len()];
    let mut levels = vec![0u32; sorted.len()];
    let mut dates = vec![0u64; sorted.len()];
    // The commits whose parents are being computed, each a parent of the one below it.
    let mut open = Vec::new();
    for start in 0..sorted.len() {
        if state[start] != NEW {
            continue;
        }
        state[start] = OPEN;
        open.push(start);
        'open: while let Some(&top) = open.last() {
            let (mut level, mut date) = (0, 0);
            for &parent in &parents[firsts[top]..firsts[top + 1]] {
                let (parent_level, parent_date) = match parent.checked_sub(base_len) {
                    Some(local) => {
                        let local = local as usize;
                        match state[local] {
                            NEW => {
                                state[local] = OPEN;
                                open.push(local);
                                continue 'open;
                            }
                            OPEN => return Err(Error::Cycle { id: sorted[local].id }),
                            _ => (levels[local], dates[local]),
                        }
                    }
                    // A verified chain has every position below its length.
                    None => base
                        .generations(parent)
                        .map_or((MAX_LEVEL, 0), |(level, date)| (level, date.unwrap_or(0))),
                };
                level = level.max(parent_level);
                date = date.max(parent_date);
            }
            let time = sorted[top].time as u64;
            levels[top] = level.min(MAX_LEVEL - 1) + 1;
            dates[top] = if time > date { time } else { date + 1 };
            state[top] = DONE;
            open.pop();
        }
    }
    Ok((levels, dates))
}
