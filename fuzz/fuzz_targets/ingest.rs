//! Received packs: arbitrary bytes indexed as a pushed pack, their checksum made to match
//! or left as it is. Every input is indexed or refused, within the limits, never a
//! panic; each object is visited with the content its id names, and the index written
//! reads back and finds every object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapgit_core::{
    HashKind, object,
    pack::{Index, ingest},
};

/// Small enough that the fuzzer reaches the size checks.
const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut pack = rest.to_vec();
    // Odd selectors seal the pack: its last 20 bytes become the checksum of the rest, so
    // inputs get past the checksum to the entries and deltas.
    if selector & 1 == 1
        && let Some(body) = pack.len().checked_sub(20)
    {
        let mut hasher = gix_hash::hasher(HashKind::Sha1);
        hasher.update(&pack[..body]);
        if let Ok(sum) = hasher.try_finalize() {
            pack[body..].copy_from_slice(sum.as_slice());
        }
    }
    let mut visited = 0;
    let result = ingest::index(HashKind::Sha1, "fuzz", pack, LIMIT, &mut |id, kind, content| {
        assert_eq!(object::hash(HashKind::Sha1, kind, content).ok(), Some(id));
        assert!(content.len() as u64 <= LIMIT);
        visited += 1;
        Ok(())
    });
    if let Ok(indexed) = result {
        assert_eq!(visited, indexed.objects.len());
        let index = Index::from_bytes(&indexed.index_key(), indexed.index.clone(), HashKind::Sha1)
            .expect("the index written reads back");
        for (id, _) in &indexed.objects {
            assert!(index.lookup(id).is_some());
        }
    }
});
