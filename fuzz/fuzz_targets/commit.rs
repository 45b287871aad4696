//! Commits: arbitrary bytes as commit content through `object::parse`. A commit that
//! parses must encode again, and the encoding must parse back to the same commit.
#![no_main]

use gix_object::{Kind, WriteTo};
use libfuzzer_sys::fuzz_target;
use snapgit_core::{
    HashKind, ObjectId,
    object::{self, Object},
};

fuzz_target!(|data: &[u8]| {
    let id = ObjectId::null(HashKind::Sha1);
    let Ok(parsed) = object::parse(&id, Kind::Commit, data) else {
        return;
    };
    let Object::Commit(commit) = parsed else {
        panic!("a commit parsed as a {}", parsed.kind());
    };
    let mut encoded = Vec::with_capacity(data.len());
    commit.write_to(&mut encoded).expect("a parsed commit can be encoded");
    // Byte equality is not required: git tolerates forms (odd spacing, time zones) that
    // encode back in their normal spelling. The meaning must survive.
    let Ok(Object::Commit(again)) = object::parse(&id, Kind::Commit, &encoded) else {
        panic!(
            "an encoded commit does not parse: {:?}",
            String::from_utf8_lossy(&encoded)
        );
    };
    assert_eq!(*again, *commit);
});
