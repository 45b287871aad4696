//! Packs: arbitrary bytes as a pack index, as a pack entry, and as a delta against a
//! base. Every input gives a result or an error, within the limits, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapgit_core::{
    HashKind, ObjectId,
    pack::{Index, entry},
};

/// Small enough that the fuzzer reaches the size checks.
const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(index) = Index::from_bytes("objects/pack/pack-x.idx", rest.to_vec(), HashKind::Sha1) {
                for id in index.ids().take(64).collect::<Vec<_>>() {
                    let offset = index.lookup(&id).expect("an id the index lists is found");
                    assert!(index.entry_end(offset, u64::MAX).is_some_and(|end| end > offset));
                }
                assert_eq!(
                    index.lookup(&ObjectId::null(HashKind::Sha1)).is_some(),
                    index.ids().any(|id| id.is_null())
                );
            }
        }
        1 => {
            let offset = u64::from(rest.first().copied().unwrap_or(0)) * 1000;
            if let Ok(header) = entry::parse_header(rest, offset, HashKind::Sha1) {
                let data = rest.get(header.data_start..).unwrap_or_default();
                if let Ok(out) = entry::inflate(data, header.size, LIMIT) {
                    assert_eq!(out.len() as u64, header.size);
                }
            }
        }
        _ => {
            let split = usize::from(rest.first().copied().unwrap_or(0)).min(rest.len());
            let (base, delta) = rest.split_at(split);
            if let Ok(out) = entry::apply_delta(base, delta, LIMIT) {
                assert!(out.len() as u64 <= LIMIT);
            }
        }
    }
});
