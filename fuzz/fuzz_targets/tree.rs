//! Trees: arbitrary bytes as tree content through `object::parse`. A tree that parses is
//! canonical, so encoding it again must give back exactly the same bytes.
#![no_main]

use gix_object::{Kind, WriteTo};
use libfuzzer_sys::fuzz_target;
use snapgit_core::{
    HashKind, ObjectId,
    object::{self, Object},
};

fuzz_target!(|data: &[u8]| {
    let id = ObjectId::null(HashKind::Sha1);
    let Ok(parsed) = object::parse(&id, Kind::Tree, data) else {
        return;
    };
    let Object::Tree(tree) = parsed else {
        panic!("a tree parsed as a {}", parsed.kind());
    };
    let mut encoded = Vec::with_capacity(data.len());
    tree.write_to(&mut encoded).expect("a parsed tree can be encoded");
    assert_eq!(
        encoded, data,
        "a parsed tree is canonical: it must encode to the same bytes"
    );
});
