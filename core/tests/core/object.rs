use gix_object::Kind;
use snapgit_core::{
    ObjectId,
    object::{self, Error, Object},
};

fn sha1_null() -> ObjectId {
    gix_hash::Kind::Sha1.null()
}

/// Loose bytes and id of raw `content` of `kind`, exactly as git would store them.
fn loose(kind: Kind, content: &[u8]) -> (ObjectId, Vec<u8>) {
    let encoded = object::encode_loose(gix_hash::Kind::Sha1, kind, content).unwrap();
    (encoded.id, encoded.loose)
}

fn decode(kind: Kind, content: &[u8]) -> Result<Object, Error> {
    let (id, bytes) = loose(kind, content);
    object::decode_loose(&id, &bytes, 1 << 20)
}

fn tree_entry(mode: &str, name: &[u8], id: &ObjectId) -> Vec<u8> {
    let mut out = format!("{mode} ").into_bytes();
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(id.as_bytes());
    out
}

fn reason(err: Error) -> String {
    match err {
        Error::Corrupt { reason, .. } => reason,
        other => panic!("expected corrupt, got {other}"),
    }
}

#[test]
fn blobs_round_trip() {
    let Object::Blob(data) = decode(Kind::Blob, b"hello\n").unwrap() else {
        panic!("a blob")
    };
    assert_eq!(&*data, b"hello\n");
    let (id, _) = loose(Kind::Blob, b"hello\n");
    assert_eq!(
        id.to_string(),
        "ce013625030ba8dba906f756967f9e9ca394464a",
        "git hash-object"
    );
}

#[test]
fn broken_loose_bytes_are_corrupt() {
    let (id, bytes) = loose(Kind::Blob, b"some content that is long enough\n");
    let err = |stored: &[u8]| object::decode_loose(&id, stored, 1 << 20).unwrap_err();
    assert!(matches!(err(b"garbage"), Error::Corrupt { .. }));
    assert!(
        matches!(err(&bytes[..bytes.len() / 2]), Error::Corrupt { .. }),
        "truncated"
    );
    assert!(matches!(err(&[]), Error::Corrupt { .. }));
    // Valid zlib, bad header or size.
    let zlib = |raw: &[u8]| miniz_oxide::deflate::compress_to_vec_zlib(raw, 1);
    assert!(
        matches!(err(&zlib(b"blob 5\0abc")), Error::Corrupt { .. }),
        "size mismatch"
    );
    assert!(
        matches!(err(&zlib(b"bogus 3\0abc")), Error::Corrupt { .. }),
        "unknown kind"
    );
    assert!(matches!(err(&zlib(b"blob 3abc")), Error::Corrupt { .. }), "no NUL");
    // Headers that hash to the id asked for, but that git does not write or accept.
    for raw in [
        &b"blob 03\0abc"[..],
        b"blob +3\0abc",
        b"blob \0",
        b"blob  3\0abc",
        b"Blob 3\0abc",
    ] {
        let mut hasher = gix_hash::hasher(gix_hash::Kind::Sha1);
        hasher.update(raw);
        let id = hasher.try_finalize().unwrap();
        let reason = reason(object::decode_loose(&id, &zlib(raw), 1 << 20).unwrap_err());
        assert!(
            reason.contains("header"),
            "{:?}: {reason}",
            String::from_utf8_lossy(raw)
        );
    }
    let raw = b"blob 0\0";
    let mut hasher = gix_hash::hasher(gix_hash::Kind::Sha1);
    hasher.update(raw);
    assert!(object::decode_loose(&hasher.try_finalize().unwrap(), &zlib(raw), 1 << 20).is_ok());
    // Valid object, other id.
    let (other, other_bytes) = loose(Kind::Blob, b"other\n");
    assert!(
        matches!(object::decode_loose(&id, &other_bytes, 1 << 20), Err(Error::HashMismatch { id: a, actual }) if a == id && actual == other)
    );
}

#[test]
fn inflated_size_is_limited() {
    let (id, bytes) = loose(Kind::Blob, &vec![0u8; 1 << 16]);
    assert!(matches!(
        object::decode_loose(&id, &bytes, 1000),
        Err(Error::TooLarge { limit: 1000, .. })
    ));
    assert!(object::decode_loose(&id, &bytes, 1 << 16).is_ok());
    // A header that claims more than the limit is refused even if the content is small.
    let lying = miniz_oxide::deflate::compress_to_vec_zlib(b"blob 99999\0abc", 1);
    assert!(matches!(
        object::decode_loose(&id, &lying, 1000),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn trees_must_be_canonical() {
    let blob = loose(Kind::Blob, b"x").0;
    let tree = |entries: &[Vec<u8>]| decode(Kind::Tree, &entries.concat());
    assert!(tree(&[tree_entry("100644", b"a", &blob), tree_entry("100644", b"b", &blob)]).is_ok());
    assert!(tree(&[]).is_ok(), "the empty tree");

    let unsorted = tree(&[tree_entry("100644", b"b", &blob), tree_entry("100644", b"a", &blob)]).unwrap_err();
    assert!(reason(unsorted).contains("not sorted"));
    let duplicate = tree(&[tree_entry("100644", b"a", &blob), tree_entry("100644", b"a", &blob)]).unwrap_err();
    assert!(reason(duplicate).contains("twice"));
    // A file and a folder with one name are duplicates too, even though they sort apart.
    let twin = tree(&[
        tree_entry("100644", b"a", &blob),
        tree_entry("100644", b"a-b", &blob),
        tree_entry("40000", b"a", &blob),
    ])
    .unwrap_err();
    assert!(reason(twin).contains("twice"));
    for mode in ["100664", "100600", "644", "0100644", "70000"] {
        let err = tree(&[tree_entry(mode, b"a", &blob)]).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "mode {mode}");
    }
    let padded = tree(&[tree_entry("040000", b"a", &blob)]).unwrap_err();
    assert!(reason(padded).contains("invalid mode 040000"));
    for name in [&b".."[..], b".", b".git", b".GIT", b"", b"a/b", b"git~1"] {
        let err = tree(&[tree_entry("100644", name, &blob)]).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { .. }),
            "name {:?}",
            String::from_utf8_lossy(name)
        );
    }
    let mut truncated = tree_entry("100644", b"a", &blob);
    truncated.truncate(truncated.len() - 3);
    assert!(matches!(tree(&[truncated]), Err(Error::Corrupt { .. })));
}

#[test]
fn commits_must_parse() {
    let tree = loose(Kind::Tree, b"").0;
    let good = format!(
        "tree {tree}\nauthor A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\nmsg\n"
    );
    assert!(matches!(decode(Kind::Commit, good.as_bytes()), Ok(Object::Commit(_))));
    assert!(matches!(
        decode(Kind::Commit, b"not a commit"),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        decode(Kind::Commit, format!("tree {tree}\n").as_bytes()),
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        decode(Kind::Commit, b"tree 123\n"),
        Err(Error::Corrupt { .. })
    ));
    let _ = sha1_null();
}

#[test]
fn keys_follow_git_layout() {
    let (id, _) = loose(Kind::Blob, b"hello\n");
    assert_eq!(
        object::loose_key(&id),
        "objects/ce/013625030ba8dba906f756967f9e9ca394464a"
    );
}

/// zlib's own decoder reads what core stores, at every size around the switch from the
/// small-object encoder to miniz's, including repetitive content with long matches.
#[test]
fn stored_bytes_are_plain_zlib() {
    let text: Vec<u8> = (0..5000u32).map(|i| b"abcab\n"[(i % 7 % 6) as usize]).collect();
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for len in [0, 1, 2, 3, 4, 5, 100, 257, 258, 259, 1000, 1013, 1014, 1015, 1100, 5000] {
        for data in [&text[..len], &noise[..len], &vec![b'x'; len][..]] {
            let (id, bytes) = loose(Kind::Blob, data);
            let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&bytes).expect("valid zlib");
            assert_eq!(&raw[raw.len() - len..], data, "len {len}");
            assert!(object::decode_loose(&id, &bytes, 1 << 20).is_ok());
        }
    }
}

proptest::proptest! {
    /// Whatever the content, stored bytes inflate back to it.
    #[test]
    fn loose_objects_round_trip(data in proptest::collection::vec(0u8..4, 0..1200)) {
        let (id, bytes) = loose(Kind::Blob, &data);
        let Ok(Object::Blob(back)) = object::decode_loose(&id, &bytes, 1 << 20) else {
            panic!("a blob");
        };
        proptest::prop_assert_eq!(&*back, &data[..]);
    }

    /// No bytes make a decoder panic.
    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let id = sha1_null();
        let _ = object::decode_loose(&id, &data, 1 << 20);
        for kind in [Kind::Blob, Kind::Tree, Kind::Commit, Kind::Tag] {
            let _ = object::parse(&id, kind, &data);
            let _ = decode(kind, &data);
        }
    }
}

/// Found by the `commit` fuzz target: a committer email containing `>` parsed, but git
/// refuses it and it does not encode back.
#[test]
fn regression_commit_with_angle_bracket_in_email() {
    let data = b"tree aaf8ca0829b7e4b5b93be8e5650565fa32f43d5d\nauthor Agent S\xff\xff$ith <agent@e1xample.com> 1700000000 +0130\ncommitter Agent Smith <mpne.com> 0200ageft@exampne.com> 020007100000 +0130\n\nfirst turn\n";
    assert!(matches!(decode(Kind::Commit, data), Err(Error::Corrupt { .. })));
}

/// Found by the `commit` fuzz target: a `+000130` time zone parsed as another offset,
/// so the parsed commit was not the stored one.
#[test]
fn regression_commit_with_long_time_zone() {
    let data = b"tree aaf8ca0829b7e4b8b93be8e5650565fa32f43d5d\nauthor Agent Smith <agent@example.com> 17000000 +000130\ncommitter Agent Smith <agent@example.com> 1700000000 +0130\n\nfirst turn\n";
    assert!(matches!(decode(Kind::Commit, data), Err(Error::Corrupt { .. })));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 512, ..proptest::prelude::ProptestConfig::default() })]

    /// Whatever the content — random bytes, or runs and repeats that make long matches —
    /// the loose bytes core writes inflate back to it, for every size either compressor
    /// handles.
    #[test]
    fn encoded_objects_inflate_back(
        seed in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64),
        repeats in 0usize..600,
        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
    ) {
        let mut content = Vec::new();
        for i in 0..repeats {
            content.extend_from_slice(&seed[..(i % seed.len()) + 1]);
        }
        content.extend_from_slice(&tail);
        for kind in [Kind::Blob, Kind::Tree] {
            let encoded = object::encode_loose(gix_hash::Kind::Sha1, kind, &content).unwrap();
            let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&encoded.loose).unwrap();
            let header = format!("{} {}\0", kind, content.len());
            proptest::prop_assert_eq!(&raw[..header.len()], header.as_bytes());
            proptest::prop_assert_eq!(&raw[header.len()..], &content[..]);
        }
    }
}

/// What gix-object makes of commit content when only canonical forms are accepted: its
/// parse, kept if it encodes back to the same bytes. Core's own parser must agree.
fn gix_canonical_commit(content: &[u8]) -> Option<gix_object::Commit> {
    use gix_object::WriteTo;
    let commit = gix_object::CommitRef::from_bytes(content, gix_hash::Kind::Sha1)
        .ok()?
        .into_owned()
        .ok()?;
    let mut encoded = Vec::new();
    commit.write_to(&mut encoded).ok()?;
    (encoded == content).then_some(commit)
}

/// Commit-like content assembled from pieces, one choice per header part: mostly forms
/// git writes (so that whole commits often are canonical), sometimes forms it does not.
fn commit_pieces() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    fn part(good: &'static [&'static str], bad: &'static [&'static str]) -> BoxedStrategy<&'static str> {
        prop_oneof![12 => proptest::sample::select(good), 1 => proptest::sample::select(bad)].boxed()
    }
    let tree = part(
        &["tree aaf8ca0829b7e4b5b93be8e5650565fa32f43d5d\n"],
        &[
            "tree AAF8CA0829B7E4B5B93BE8E5650565FA32F43D5D\n",
            "tree aaf8ca0829b7e4b5b93be8e5650565fa32f43d5\n",
            "tree  aaf8ca0829b7e4b5b93be8e5650565fa32f43d5d\n",
            "",
        ],
    );
    let parents = proptest::collection::vec(
        part(
            &["parent 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"],
            &["parent 4b825dc642cb6eb9a060e54bf8d69288fbee490g\n", "parent\n"],
        ),
        0..3,
    );
    let name = part(&["A U Thor", "", "A ", " A", "\u{c4}\u{ff}", "a\tb"], &["A<B", "A>B"]);
    let gap = || part(&[" "], &["", "  ", "\t"]);
    let email = part(&["a@example.com", "", " a@b "], &["a>b", "<a", "a<b"]);
    let seconds = part(
        &["1700000000", "-5", "0"],
        &["-0", "007", "+5", "99999999999999999999", "12 34"],
    );
    let zone = part(
        &["+0000", "+0130", "-0230", "+9959", "-1445", "+1500"],
        &["-0000", "+0075", "+000130", "0130", "+01:30", "+013", "--130"],
    );
    let signature = (name, gap(), email, gap(), seconds, gap(), zone)
        .prop_map(|(n, g1, e, g2, s, g3, z)| format!("{n}{g1}<{e}>{g2}{s}{g3}{z}"));
    let encoding = part(&["", "encoding UTF-8\n"], &["encoding \n", "encoding a\n b\n"]);
    let extra = proptest::collection::vec(
        part(
            &[
                "gpgsig a\n b\n c\n",
                "x y\n",
                "x \n",
                "encoding late\n",
                "mergetag a\n \n c\n",
            ],
            &[" y\n", "k\n", "gpgsig a\n b"],
        ),
        0..3,
    );
    let message = part(&["\nmsg\n", "\n", "\n\nbody"], &["", "msg\n"]);
    (tree, parents, signature.clone(), signature, encoding, extra, message).prop_map(
        |(tree, parents, author, committer, encoding, extra, message)| {
            let mut out = tree.to_owned();
            out.extend(parents);
            out.push_str(&format!("author {author}\ncommitter {committer}\n"));
            out.push_str(encoding);
            out.extend(extra);
            out.push_str(message);
            out.into_bytes()
        },
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2048, ..proptest::prelude::ProptestConfig::default() })]

    /// Core parses commits itself; it accepts exactly the commits gix-object parses and
    /// encodes back to the same bytes, with the same fields.
    #[test]
    fn commits_parse_as_gix_object_parses_them(content in commit_pieces()) {
        let ours = match object::parse(&sha1_null(), Kind::Commit, &content) {
            Ok(Object::Commit(commit)) => Some((*commit).clone()),
            Ok(other) => panic!("a commit parsed as a {}", other.kind()),
            Err(_) => None,
        };
        proptest::prop_assert_eq!(ours, gix_canonical_commit(&content), "{:?}", String::from_utf8_lossy(&content));
    }
}

/// The commit form git writes parses, with every field where it belongs.
#[test]
fn commit_fields_parse() {
    let content = b"tree aaf8ca0829b7e4b5b93be8e5650565fa32f43d5d\nparent 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A U Thor <a@example.com> 1700000000 -0230\ncommitter C <c@example.com> -5 +0130\nencoding ISO-8859-1\ngpgsig a\n b\nx y\n\nmsg\n";
    let Ok(Object::Commit(commit)) = object::parse(&sha1_null(), Kind::Commit, content) else {
        panic!("a commit");
    };
    assert_eq!(commit.parents.len(), 1);
    assert_eq!(commit.author.name, "A U Thor");
    assert_eq!(commit.author.time.offset, -(2 * 3600 + 30 * 60));
    assert_eq!(commit.committer.time.seconds, -5);
    assert_eq!(
        commit.encoding.as_ref().map(|e| e.to_vec()),
        Some(b"ISO-8859-1".to_vec())
    );
    assert_eq!(
        commit.extra_headers,
        vec![("gpgsig".into(), "a\nb\n".into()), ("x".into(), "y".into())]
    );
    assert_eq!(commit.message, "msg\n");
    assert_eq!(gix_canonical_commit(content).as_ref(), Some(&*commit));
}
