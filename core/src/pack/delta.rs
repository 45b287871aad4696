//! Making git deltas: the instructions [`super::entry::apply_delta`] follows to rebuild a
//! target from a base, as a pack's `OFS_DELTA` and `REF_DELTA` entries hold them.
//!
//! ```text
//! varint base size, varint result size      little-endian base-128
//! 1oooossss [offset 0-4 bytes] [size 0-3]   copy: bit i of `o` says offset byte i is
//!                                           there, of `s` size byte i; size 0 is 0x10000
//! 0nnnnnnn  [n literal bytes]               insert, n in 1..=127
//! ```
//!
//! The search is git's (`diff-delta.c`): the base is cut into blocks of [`WINDOW`] bytes,
//! each filed under a rolling hash of its bytes; the target is read with the same hash
//! over a window sliding one byte at a time, and each window whose hash names a base block
//! is compared byte by byte, the match then grown forward as far as the bytes agree and
//! backward into the literal bytes waiting to be written. Only blocks at multiples of
//! [`WINDOW`] are filed, so any shared run of `2 * WINDOW - 1` bytes or more is found.
//!
//! Work stays linear in the sizes: a bucket keeps at most [`BUCKET_LIMIT`] blocks (spread
//! over the base when more share it), a run of identical blocks is filed once, and a
//! window tries at most the blocks of its bucket, each grown no further than the match
//! then taken, which the scan skips. A bit filter over the hashes answers most windows
//! without looking at their bucket.

/// Bytes per indexed block of the base, and the width of the rolling hash.
pub const WINDOW: usize = 16;

/// The most blocks one bucket keeps; more are thinned evenly across the base, so a base
/// made of one repeated block costs no more to search than a varied one.
pub const BUCKET_LIMIT: usize = 64;

/// A match this long is taken without trying the bucket's other blocks: a longer one
/// would save at most a few bytes of copy instruction.
const GOOD_ENOUGH: usize = 4096;

/// The most bytes a match grows backward into the pending literal run. The bound keeps
/// [`Index::encode`]'s early refusal exact: once the literal run is this much past what
/// `max_len` allows, no later match can bring the delta back under it.
const MAX_BACKWARD: usize = 256;

/// The filter has `2^FILTER_BITS` bits per bucket, about 8 per filed block.
const FILTER_BITS: u32 = 4;

/// The most bytes one copy instruction writes.
const MAX_COPY: usize = 0x10000;

/// The most literal bytes one insert instruction carries.
const MAX_INSERT: usize = 127;

/// The hash's multiplier: odd, with its bits spread, so the top bits (the bucket) depend
/// on every byte of the window.
const PRIME: u64 = 0x9e37_79b9_7f4a_7c15;

/// `PRIME` to the powers `WINDOW - j`: the weights of a window's bytes.
const POWERS: [u64; WINDOW] = {
    let mut powers = [0u64; WINDOW];
    let mut power = PRIME;
    let mut j = WINDOW;
    while j > 0 {
        j -= 1;
        powers[j] = power;
        power = power.wrapping_mul(PRIME);
    }
    powers
};

/// `PRIME` to the power [`WINDOW`]: the weight of the byte leaving the window.
const PRIME_POW_WINDOW: u64 = POWERS[0];

/// The hash of `WINDOW` bytes `b`: the sum of `b[j] * PRIME^(WINDOW - j)`, wrapping. The
/// products are independent, which makes indexing several times faster than a chain of
/// multiply-adds.
fn window_hash(bytes: &[u8]) -> u64 {
    bytes.iter().zip(POWERS).fold(0u64, |hash, (&byte, power)| {
        hash.wrapping_add(u64::from(byte).wrapping_mul(power))
    })
}

/// The hash of the window moved one byte on: `out` leaves it, `into` enters it.
fn roll(hash: u64, out: u8, into: u8) -> u64 {
    hash.wrapping_sub(u64::from(out).wrapping_mul(PRIME_POW_WINDOW))
        .wrapping_add(u64::from(into))
        .wrapping_mul(PRIME)
}

/// One filed block: the low half of its hash, to skip most other blocks of its bucket
/// without reading the base, and where it starts.
#[derive(Debug, Clone, Copy)]
struct Entry {
    check: u32,
    start: u32,
}

/// An index of a base object's content, built once and reused for every target tried
/// against it.
///
/// It holds no copy of the base: [`Index::encode`] is given the base again. Every match it
/// proposes is checked against the bytes given there, so a delta is always right for the
/// base it was encoded with, even a base other than the indexed one (it is just poorer).
#[derive(Debug, Clone)]
pub struct Index {
    base_len: usize,
    /// `hash >> shift` is a block's bucket.
    shift: u32,
    /// One bit per `hash >> (shift - FILTER_BITS)`, set for the filed blocks: most windows
    /// of a target share no block with the base, and this answers them with one
    /// well-predicted test instead of a walk of their bucket.
    filter: Vec<u64>,
    /// Bucket `b` holds `entries[buckets[b]..buckets[b + 1]]`, blocks in base order.
    buckets: Vec<u32>,
    entries: Vec<Entry>,
}

impl Index {
    /// Index `base`. A base shorter than [`WINDOW`] has nothing to index, and costs
    /// nothing; otherwise the index takes about 12 bytes per 16 of base.
    pub fn new(base: &[u8]) -> Index {
        // Copy offsets are 32 bits: a block starting later could not be copied from.
        let reach = &base[..base.len().min(u32::MAX as usize)];
        let blocks = reach.len() / WINDOW;
        // One to two blocks per bucket; never fewer than two buckets, so the shift is < 64.
        let bits = (blocks / 2).max(2).next_power_of_two().trailing_zeros();
        let shift = 64 - bits;
        let bucket_of = |hash: u64| (hash >> shift) as usize;

        // The first block of each run of identical ones, with its hash: a match found at
        // the first grows over the whole run. Made twice (counting, then filing) rather
        // than kept, which would take more memory than the index.
        let filed = || {
            let mut previous: Option<&[u8]> = None;
            reach.chunks_exact(WINDOW).enumerate().filter_map(move |(i, block)| {
                let first = previous != Some(block);
                previous = Some(block);
                first.then(|| (window_hash(block), (i * WINDOW) as u32))
            })
        };

        let mut counts = vec![0u32; 1 << bits];
        for (hash, _) in filed() {
            counts[bucket_of(hash)] += 1;
        }
        let mut buckets = Vec::with_capacity(counts.len() + 1);
        let mut total = 0u32;
        buckets.push(0);
        for &count in &counts {
            total += count.min(BUCKET_LIMIT as u32);
            buckets.push(total);
        }
        let mut entries = vec![Entry { check: 0, start: 0 }; total as usize];
        let mut filter = vec![0u64; (1usize << (bits + FILTER_BITS)).div_ceil(64)];
        // Per bucket, the blocks seen so far. Of a bucket of `count > BUCKET_LIMIT`, the
        // `nth` block goes to slot `nth * BUCKET_LIMIT / count` if it is the first there.
        let mut seen = vec![0u32; counts.len()];
        let limit = BUCKET_LIMIT as u64;
        for (hash, start) in filed() {
            let bucket = bucket_of(hash);
            let (count, nth) = (u64::from(counts[bucket]), u64::from(seen[bucket]));
            seen[bucket] += 1;
            let slot = if count <= limit {
                nth
            } else {
                let slot = nth * limit / count;
                if nth > 0 && (nth - 1) * limit / count == slot {
                    continue;
                }
                slot
            };
            entries[buckets[bucket] as usize + slot as usize] = Entry {
                check: hash as u32,
                start,
            };
            let bit = (hash >> (shift - FILTER_BITS)) as usize;
            filter[bit / 64] |= 1 << (bit % 64);
        }
        Index {
            base_len: base.len(),
            shift,
            filter,
            buckets,
            entries,
        }
    }

    /// The length of the indexed base.
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// The delta turning `base` (the same bytes given to [`Index::new`]) into `target`, or
    /// `None` if it would be longer than `max_len` bytes. Encoding stops as soon as the
    /// delta is known to exceed `max_len`, which makes a failed try cheap; when it returns
    /// `Some`, the delta is the one an unlimited call makes.
    pub fn encode(&self, base: &[u8], target: &[u8], max_len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(max_len.min(target.len() / 8 + 64));
        write_size(&mut out, base.len());
        write_size(&mut out, target.len());
        if out.len() > max_len {
            return None;
        }
        // The pending literal run is `target[literal..at]`.
        let mut literal = 0;
        let mut at = 0;
        let mut budget = literal_budget(max_len - out.len());
        if !self.entries.is_empty() && target.len() >= WINDOW {
            let reach = &base[..base.len().min(u32::MAX as usize)];
            let mut hash = window_hash(&target[..WINDOW]);
            loop {
                if at - literal > budget {
                    return None;
                }
                let (from, len) = self.longest_match(reach, &target[at..], hash);
                if len >= WINDOW {
                    // Grow backward into the literal run.
                    let mut back = 0;
                    while back < MAX_BACKWARD
                        && at - back > literal
                        && from > back
                        && reach[from - back - 1] == target[at - back - 1]
                    {
                        back += 1;
                    }
                    write_literal(&mut out, &target[literal..at - back]);
                    write_copy(&mut out, from - back, len + back);
                    if out.len() > max_len {
                        return None;
                    }
                    budget = literal_budget(max_len - out.len());
                    at += len;
                    literal = at;
                    match target.get(at..at + WINDOW) {
                        Some(window) => hash = window_hash(window),
                        None => break,
                    }
                } else {
                    let Some(&into) = target.get(at + WINDOW) else {
                        break;
                    };
                    hash = roll(hash, target[at], into);
                    at += 1;
                }
            }
        }
        if insert_len(target.len() - literal) > max_len - out.len() {
            return None;
        }
        write_literal(&mut out, &target[literal..]);
        Some(out)
    }

    /// The longest run of `reach` that `target` starts with, among the filed blocks with
    /// `hash` (the hash of `target`'s first window): where it starts, and its length.
    fn longest_match(&self, reach: &[u8], target: &[u8], hash: u64) -> (usize, usize) {
        let bit = (hash >> (self.shift - FILTER_BITS)) as usize;
        if self
            .filter
            .get(bit / 64)
            .is_none_or(|word| word & (1 << (bit % 64)) == 0)
        {
            return (0, 0);
        }
        let bucket = (hash >> self.shift) as usize;
        let (Some(&first), Some(&end)) = (self.buckets.get(bucket), self.buckets.get(bucket + 1)) else {
            return (0, 0);
        };
        let (mut best_from, mut best_len) = (0, 0);
        for entry in self.entries.get(first as usize..end as usize).unwrap_or_default() {
            if entry.check != hash as u32 {
                continue;
            }
            let from = entry.start as usize;
            let Some(rest) = reach.get(from..) else {
                // Blocks are in base order: the later ones lie past this base too.
                break;
            };
            if rest.len().min(target.len()) <= best_len {
                break;
            }
            let len = common_prefix(rest, target);
            if len > best_len {
                (best_from, best_len) = (from, len);
                if len >= GOOD_ENOUGH {
                    break;
                }
            }
        }
        (best_from, best_len)
    }
}

/// The delta turning `base` into `target`, or `None` if it would be longer than `max_len`
/// bytes: [`Index::encode`] with an index made for this one target.
pub fn encode(base: &[u8], target: &[u8], max_len: usize) -> Option<Vec<u8>> {
    if size_len(base.len()) + size_len(target.len()) > max_len {
        return None;
    }
    Index::new(base).encode(base, target, max_len)
}

/// How many leading bytes `a` and `b` share, compared eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let word = |bytes: &[u8]| {
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        u64::from_le_bytes(word)
    };
    let mut same = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let diff = word(x) ^ word(y);
        if diff != 0 {
            return same + (diff.trailing_zeros() / 8) as usize;
        }
        same += 8;
    }
    same + a[same..].iter().zip(&b[same..]).take_while(|(x, y)| x == y).count()
}

/// The bytes of a size in the delta header.
fn size_len(size: usize) -> usize {
    let bits = usize::BITS - size.leading_zeros();
    (bits as usize).div_ceil(7).max(1)
}

/// Append a size of the delta header: little-endian base-128.
fn write_size(out: &mut Vec<u8>, mut size: usize) {
    while size >= 0x80 {
        out.push(0x80 | (size & 0x7f) as u8);
        size >>= 7;
    }
    out.push(size as u8);
}

/// The bytes `len` literal bytes take as insert instructions.
fn insert_len(len: usize) -> usize {
    len + len.div_ceil(MAX_INSERT)
}

/// The longest literal run that the delta can still afford when `room` bytes are left,
/// plus what a later match may take back from it by growing backward.
fn literal_budget(room: usize) -> usize {
    // Each full insert takes 128 bytes for 127 literal ones; a partial one, one byte more
    // than it carries.
    let full = room / (MAX_INSERT + 1);
    let partial = (room % (MAX_INSERT + 1)).saturating_sub(1);
    (full * MAX_INSERT + partial).saturating_add(MAX_BACKWARD)
}

/// Append `bytes` as insert instructions.
fn write_literal(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.chunks(MAX_INSERT) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// Append copy instructions for `len` bytes of the base at `from`, one per `MAX_COPY`.
fn write_copy(out: &mut Vec<u8>, mut from: usize, mut len: usize) {
    while len > 0 {
        let size = len.min(MAX_COPY);
        let op = out.len();
        out.push(0x80);
        // A size of exactly MAX_COPY is written as 0, that is with no size bytes.
        let fields = [(from as u64, 0x01u8, 4), ((size % MAX_COPY) as u64, 0x10, 3)];
        for (value, first_bit, bytes) in fields {
            for i in 0..bytes {
                let byte = (value >> (8 * i)) as u8;
                if byte != 0 {
                    out[op] |= first_bit << i;
                    out.push(byte);
                }
            }
        }
        from += size;
        len -= size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::entry::apply_delta;
    use proptest::prelude::*;

    /// Encode without a limit, check the delta rebuilds the target, and return it.
    fn round_trip(base: &[u8], target: &[u8]) -> Vec<u8> {
        let delta = encode(base, target, usize::MAX).expect("no limit");
        let back = apply_delta(base, &delta, u64::MAX).expect("a valid delta");
        assert!(back == target, "the delta rebuilds the target");
        delta
    }

    /// Bytes that look like a markdown document: words from a small vocabulary, in
    /// paragraphs, from a simple seeded generator.
    fn markdown(seed: u64, len: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "the", "snapshot", "commit", "tree", "of", "a", "blob", "and", "agent", "memory", "is", "written", "to",
            "pack", "delta", "base", "with", "index", "git", "object", "in", "for", "each",
        ];
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            let paragraph = 20 + next() % 80;
            out.extend_from_slice(b"## Section ");
            out.extend_from_slice((next() % 1000).to_string().as_bytes());
            out.extend_from_slice(b"\n\n");
            for i in 0..paragraph {
                out.extend_from_slice(WORDS[(next() % WORDS.len() as u64) as usize].as_bytes());
                out.push(if i % 12 == 11 { b'\n' } else { b' ' });
            }
            out.extend_from_slice(b"\n\n");
        }
        out.truncate(len);
        out
    }

    #[test]
    fn empty_base_empty_target_and_identical_inputs() {
        assert_eq!(round_trip(b"", b""), [0, 0]);
        assert_eq!(round_trip(b"abc", b""), [3, 0]);
        assert_eq!(round_trip(b"", b"abc"), [0, 3, 3, b'a', b'b', b'c']);
        let text = markdown(1, 10_000);
        let delta = round_trip(&text, &text);
        // Header (2 + 2 bytes) and one copy: op, no offset bytes, two size bytes.
        assert_eq!(delta.len(), 7, "{delta:?}");
    }

    #[test]
    fn a_base_shorter_than_a_window_gives_inserts() {
        let base = b"0123456789";
        let target = b"0123456789 and then some more text than fits";
        let delta = round_trip(base, target);
        assert_eq!(delta.len(), 2 + 1 + target.len());
        assert!(Index::new(base).entries.is_empty());
    }

    #[test]
    fn long_targets_and_long_copies_split() {
        let base = markdown(2, 300_000);
        let delta = round_trip(&base, &base);
        // 300 000 bytes: four copies of 0x10000 (no size bytes) and one of the rest.
        assert!(delta.len() < 40, "{}", delta.len());
        let mut target = base[1000..250_000].to_vec();
        target.extend_from_slice(b"a new ending");
        target.extend_from_slice(&base[..90_000]);
        let delta = round_trip(&base, &target);
        assert!(delta.len() < 80, "{}", delta.len());
        // Insert-only targets over 0x10000, and runs of one byte.
        round_trip(b"", &base[..70_000]);
        round_trip(&[0u8; 100_000], &[0u8; 200_000]);
        round_trip(&[7u8; 200_000], &[7u8; 100_000]);
    }

    #[test]
    fn appending_and_removing_a_paragraph_give_small_deltas() {
        let base = markdown(3, 100_000);
        let mut appended = base.clone();
        appended.extend_from_slice(b"\n\n## A new section\n\nWith a paragraph the agent wrote today.\n");
        let delta = round_trip(&base, &appended);
        assert!(delta.len() < 100, "appended: {}", delta.len());

        let (from, to) = (50_003, 50_700);
        let removed = [&base[..from], &base[to..]].concat();
        let delta = round_trip(&base, &removed);
        assert!(delta.len() < 50, "removed: {}", delta.len());

        let inserted = [
            &base[..from],
            b"an inserted paragraph, of a few words\n\n",
            &base[from..],
        ]
        .concat();
        let delta = round_trip(&base, &inserted);
        assert!(delta.len() < 100, "inserted: {}", delta.len());

        let moved = [&base[to..], &base[..to]].concat();
        let delta = round_trip(&base, &moved);
        assert!(delta.len() < 50, "moved: {}", delta.len());
    }

    #[test]
    fn max_len_is_exact() {
        let base = markdown(4, 20_000);
        let target = [&base[..5_000], &markdown(5, 3_000)[..], &base[9_000..]].concat();
        let full = round_trip(&base, &target);
        let index = Index::new(&base);
        for max_len in (0..full.len() + 10).rev() {
            let delta = index.encode(&base, &target, max_len);
            if max_len >= full.len() {
                assert_eq!(delta.as_ref(), Some(&full), "max_len {max_len}");
            } else {
                assert_eq!(delta, None, "max_len {max_len}");
            }
        }
    }

    #[test]
    fn the_rolling_hash_is_the_window_hash() {
        let bytes = markdown(8, 1000);
        let mut hash = window_hash(&bytes[..WINDOW]);
        for at in 1..bytes.len() - WINDOW {
            hash = roll(hash, bytes[at - 1], bytes[at + WINDOW - 1]);
            assert_eq!(hash, window_hash(&bytes[at..at + WINDOW]), "at {at}");
        }
    }

    #[test]
    fn literal_budget_is_the_longest_affordable_run() {
        for room in 0..1000 {
            let longest = (0..2000).rev().find(|&len| insert_len(len) <= room).expect("0 fits");
            assert_eq!(literal_budget(room), longest + MAX_BACKWARD, "room {room}");
        }
    }

    #[test]
    fn sizes_and_copies_encode_as_git_reads_them() {
        for size in [0, 1, 127, 128, 16_383, 16_384, usize::MAX] {
            let mut out = Vec::new();
            write_size(&mut out, size);
            assert_eq!(out.len(), size_len(size), "size {size}");
        }
        let mut out = Vec::new();
        write_copy(&mut out, 0x0100_0002, 0x10000);
        assert_eq!(out, [0x80 | 0x01 | 0x08, 0x02, 0x01]);
        out.clear();
        write_copy(&mut out, 0, 0x10001);
        assert_eq!(out, [0x80, 0x80 | 0x04 | 0x10, 0x01, 0x01]);
    }

    #[test]
    fn a_repeated_block_is_thinned_not_dropped() {
        // Blocks A B A B ...: two buckets of thousands, each kept to BUCKET_LIMIT.
        let base: Vec<u8> = (0..100_000).map(|i| if i % 32 < 16 { b'a' } else { b'b' }).collect();
        let index = Index::new(&base);
        assert!(index.entries.len() <= 2 * BUCKET_LIMIT);
        let target = [&base[5..60_000], b"x", &base[..30_000]].concat();
        let delta = round_trip(&base, &target);
        assert!(delta.len() < 60, "{}", delta.len());
    }

    #[test]
    fn another_base_than_the_indexed_one_still_gives_a_right_delta() {
        let base = markdown(6, 5_000);
        let index = Index::new(&base);
        let other = markdown(7, 3_000);
        let target = [&other[100..2000], &base[..1000]].concat();
        for given in [&base[..], &other[..], &base[..100], b""] {
            let delta = index.encode(given, &target, usize::MAX).expect("no limit");
            assert_eq!(apply_delta(given, &delta, u64::MAX).expect("valid"), target);
        }
    }

    /// An edit of a base into a target.
    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, Vec<u8>),
        Delete(usize, usize),
        /// Copy a run of the text to elsewhere.
        Copy(usize, usize, usize),
        /// Move a run of the text to elsewhere.
        Move(usize, usize, usize),
    }

    fn apply(mut text: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
        for edit in edits {
            let at = |i: usize, text: &Vec<u8>| i % (text.len() + 1);
            match edit {
                Edit::Insert(i, bytes) => {
                    let i = at(*i, &text);
                    text.splice(i..i, bytes.iter().copied());
                }
                Edit::Delete(i, len) => {
                    let i = at(*i, &text);
                    let end = (i + len).min(text.len());
                    text.drain(i..end);
                }
                Edit::Copy(i, len, to) | Edit::Move(i, len, to) => {
                    let i = at(*i, &text);
                    let end = (i + len).min(text.len());
                    let run = text[i..end].to_vec();
                    if matches!(edit, Edit::Move(..)) {
                        text.drain(i..end);
                    }
                    let to = at(*to, &text);
                    text.splice(to..to, run);
                }
            }
        }
        text
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let bytes = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(0u8..3, 0..300),
        ];
        prop_oneof![
            (any::<usize>(), bytes).prop_map(|(i, b)| Edit::Insert(i, b)),
            (any::<usize>(), 0usize..3000).prop_map(|(i, n)| Edit::Delete(i, n)),
            (any::<usize>(), 0usize..3000, any::<usize>()).prop_map(|(i, n, t)| Edit::Copy(i, n, t)),
            (any::<usize>(), 0usize..3000, any::<usize>()).prop_map(|(i, n, t)| Edit::Move(i, n, t)),
        ]
    }

    fn base() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..5000),
            proptest::collection::vec(0u8..2, 0..5000),
            (any::<u64>(), 0usize..20_000).prop_map(|(seed, len)| markdown(seed, len)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Whatever the base and the edits, the delta rebuilds the target.
        #[test]
        fn deltas_round_trip(base in base(), edits in proptest::collection::vec(edit(), 0..8)) {
            let target = apply(base.clone(), &edits);
            let delta = encode(&base, &target, usize::MAX).expect("no limit");
            prop_assert_eq!(apply_delta(&base, &delta, u64::MAX).expect("valid"), target);
        }

        /// A delta is given only when it fits `max_len`, and then it is the unlimited one.
        #[test]
        fn max_len_is_respected(base in base(), edits in proptest::collection::vec(edit(), 0..4), cut in 0usize..400) {
            let target = apply(base.clone(), &edits);
            let index = Index::new(&base);
            let full = index.encode(&base, &target, usize::MAX).expect("no limit");
            let max_len = full.len().saturating_sub(cut / 2).saturating_add(cut % 3);
            match index.encode(&base, &target, max_len) {
                Some(delta) => prop_assert_eq!(delta, full),
                None => prop_assert!(full.len() > max_len),
            }
        }

        /// Unrelated bytes never make it panic, and still round trip.
        #[test]
        fn unrelated_binary_round_trips(
            base in proptest::collection::vec(any::<u8>(), 0..3000),
            target in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let delta = encode(&base, &target, usize::MAX).expect("no limit");
            prop_assert_eq!(apply_delta(&base, &delta, u64::MAX).expect("valid"), target);
        }
    }
}
