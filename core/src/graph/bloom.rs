//! Changed-path Bloom filters as git computes them: each path, and each folder above it,
//! hashed with two seeded murmur3 hashes combined into `HASHES` bit positions.

use bstr::BString;

/// The hash version written: murmur3 over unsigned bytes. Version 1 read bytes of 0x80
/// and above as negative (a bug of git's first implementation); it is still read.
pub(super) const VERSION: u32 = 2;
/// Bit positions per path, git's default.
pub(super) const HASHES: u32 = 7;
/// Filter bits per path, git's default.
pub(super) const BITS_PER_ENTRY: u32 = 10;
/// Beyond this many changed paths (folders included), a commit's filter is one byte of
/// all ones: "maybe" for every path.
const MAX_PATHS: usize = 512;

const SEEDS: [u32; 2] = [0x293a_e76f, 0x7e64_6e2c];

/// The 32-bit murmur3 of `data`; with `signed`, bytes are widened as signed chars (the
/// hash of version 1 filters).
fn murmur3(mut hash: u32, data: &[u8], signed: bool) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let widen = |b: u8| if signed { b as i8 as u32 } else { u32::from(b) };
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = block.iter().enumerate().fold(0, |k, (i, &b)| k | (widen(b) << (8 * i)));
        hash ^= mix(k);
        hash = hash.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail.iter().enumerate().fold(0, |k, (i, &b)| k ^ (widen(b) << (8 * i)));
        hash ^= mix(k);
    }
    hash ^= data.len() as u32;
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^ (hash >> 16)
}

/// The bit positions of `path` in a filter of `bits` bits.
fn positions(path: &[u8], hashes: u32, signed: bool, bits: u64) -> impl Iterator<Item = u64> {
    let first = murmur3(SEEDS[0], path, signed);
    let step = murmur3(SEEDS[1], path, signed);
    (0..hashes).map(move |i| u64::from(first.wrapping_add(i.wrapping_mul(step))) % bits)
}

/// The filter of a commit that changed `changed`: every path and every folder above it.
pub(super) fn filter(changed: &[BString]) -> Vec<u8> {
    if changed.len() > MAX_PATHS {
        return vec![0xff];
    }
    let mut paths: Vec<&[u8]> = Vec::with_capacity(changed.len());
    for path in changed {
        let mut path = path.as_slice();
        loop {
            paths.push(path);
            match path.iter().rposition(|&b| b == b'/') {
                Some(slash) => path = &path[..slash],
                None => break,
            }
        }
    }
    crate::order::sort(&mut paths);
    paths.dedup();
    if paths.len() > MAX_PATHS {
        return vec![0xff];
    }
    let len = (paths.len() * BITS_PER_ENTRY as usize).div_ceil(8).max(1);
    let mut data = vec![0u8; len];
    let bits = len as u64 * 8;
    for path in paths {
        for bit in positions(path, HASHES, false, bits) {
            data[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    data
}

/// Whether `filter` may hold `path` and each folder above it (a changed file changes
/// them all); `false` is certain.
pub(super) fn may_contain(filter: &[u8], path: &[u8], hashes: u32, version: u32) -> bool {
    let bits = filter.len() as u64 * 8;
    let bit_set = |bit: u64| {
        filter
            .get((bit / 8) as usize)
            .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
    };
    let mut path = path;
    loop {
        if !positions(path, hashes, version == 1, bits).all(bit_set) {
            return false;
        }
        match path.iter().rposition(|&b| b == b'/') {
            Some(slash) => path = &path[..slash],
            None => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        // git's t0095-bloom, and murmur3's reference vector for seed 1.
        assert_eq!(murmur3(0, b"", false), 0);
        assert_eq!(murmur3(1, b"", false), 0x514e_28b7);
        assert_eq!(murmur3(0, b"Hello world!", false), 0x627b_0c2c);
        assert_eq!(
            murmur3(0, b"The quick brown fox jumps over the lazy dog", false),
            0x2e4f_f723
        );
        assert_eq!(murmur3(0, b"\x99\xaa\xbb\xcc\xdd\xee\xff", false), 0xa183_ccfd);
        // Signed widening only differs for bytes of 0x80 and above.
        assert_eq!(murmur3(7, b"ascii/path", true), murmur3(7, b"ascii/path", false));
        assert_ne!(
            murmur3(7, "caf\u{e9}".as_bytes(), true),
            murmur3(7, "caf\u{e9}".as_bytes(), false)
        );
    }

    #[test]
    fn filters_keep_their_paths_and_folders() {
        let filter = filter(&["src/graph/bloom.rs".into(), "README.md".into()]);
        assert_eq!(filter.len(), 5, "4 paths of 10 bits");
        for path in ["src/graph/bloom.rs", "src/graph", "src", "README.md"] {
            assert!(may_contain(&filter, path.as_bytes(), HASHES, VERSION), "{path}");
        }
        assert_eq!(super::filter(&[]), [0]);
        // git's t0095-bloom: one path, two bytes.
        assert_eq!(super::filter(&["file.txt".into()]), [0xa5, 0x4a]);
        assert_eq!(super::filter(&["Hello world!".into()]), [0x92, 0x6c]);
        let many: Vec<BString> = (0..513).map(|i| format!("f{i}").into()).collect();
        assert_eq!(super::filter(&many), [0xff]);
        let folders: Vec<BString> = (0..300).map(|i| format!("d{i}/f").into()).collect();
        assert_eq!(super::filter(&folders), [0xff], "600 paths with their folders");
    }
}
