//! Loose objects: arbitrary stored bytes through `decode_loose`, and valid encodings of
//! arbitrary content, which get past the hash check to the parsers.
#![no_main]

use gix_object::Kind;
use libfuzzer_sys::fuzz_target;
use snapgit_core::{
    HashKind, ObjectId,
    object::{self, Error, Object},
};

/// Small enough that the fuzzer reaches the size checks, large enough for real objects.
const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // As stored bytes: any error is fine, a success is not (nothing hashes to this id).
    let id = ObjectId::null(HashKind::Sha1);
    assert!(object::decode_loose(&id, data, LIMIT).is_err());

    // As content of a kind chosen by the first byte, encoded as git would store it.
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let kind = [Kind::Blob, Kind::Tree, Kind::Commit, Kind::Tag][usize::from(selector % 4)];
    let Ok(encoded) = object::encode_loose(HashKind::Sha1, kind, content) else {
        return; // a SHA-1 collision attack, refused before anything is stored
    };
    assert_eq!(
        encoded.id,
        object::hash(HashKind::Sha1, kind, content).expect("hashed above")
    );
    match object::decode_loose(&encoded.id, &encoded.loose, LIMIT) {
        Ok(decoded) => {
            assert_eq!(decoded.kind(), kind);
            if let Object::Blob(blob) = decoded {
                assert_eq!(&*blob, content);
            }
        }
        // Only the content may be wrong: the stream, header, size and hash are ours.
        Err(Error::Corrupt { id, .. }) => {
            assert_ne!(kind, Kind::Blob, "a blob is never corrupt");
            assert_eq!(id, encoded.id);
        }
        Err(other) => panic!("a valid encoding of {} bytes failed: {other}", content.len()),
    }

    // Below the content's size, the limit must refuse it before parsing.
    if let Some(limit) = (content.len() as u64).checked_sub(1) {
        assert!(matches!(
            object::decode_loose(&encoded.id, &encoded.loose, limit),
            Err(Error::TooLarge { .. })
        ));
    }
});
