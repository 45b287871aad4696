//! Hostile packs, built by hand: a delta cycle, a missing base, a small delta that claims
//! to expand to a gigabyte, a truncated pack, an index of another pack, a flipped byte, a
//! tree with a `.git` entry. Each is a typed corrupt error naming the pack (and the
//! offset where it knows one), with bounded work, and a commit on top writes nothing.
//! A well-formed hand-built pack reads, so each test fails if the check it names is gone.

use gix_object::Kind;
use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    commit::{self, Change},
    drive::{self, MemoryStore},
    object, read,
};

mod ingest;

fn signature(seconds: i64) -> commit::Signature {
    commit::Signature::new("Agent", "agent@example.com", seconds)
}

const SHA1: HashKind = HashKind::Sha1;

fn id_of(kind: Kind, data: &[u8]) -> ObjectId {
    object::hash(SHA1, kind, data).unwrap()
}

fn sha1(bytes: &[u8]) -> Vec<u8> {
    let mut hasher = gix_hash::hasher(SHA1);
    hasher.update(bytes);
    hasher.try_finalize().unwrap().as_slice().to_vec()
}

/// One entry as it goes into the pack.
enum Entry {
    Whole(Kind, Vec<u8>),
    /// A delta against the entry at this position of the pack (`OFS_DELTA`).
    OfsDelta(usize, Vec<u8>),
    /// A delta against this id (`REF_DELTA`).
    RefDelta(ObjectId, Vec<u8>),
}

/// A pack and its index, built from entries each filed in the index under an id.
struct Built {
    pack: Vec<u8>,
    idx: Vec<u8>,
    offsets: Vec<u64>,
}

fn entry_header(kind_bits: u8, mut size: usize) -> Vec<u8> {
    let mut out = vec![(kind_bits << 4) | (size & 0x0f) as u8];
    size >>= 4;
    while size > 0 {
        *out.last_mut().unwrap() |= 0x80;
        out.push((size & 0x7f) as u8);
        size >>= 7;
    }
    out
}

fn ofs_distance(mut distance: u64) -> Vec<u8> {
    let mut out = vec![(distance & 0x7f) as u8];
    distance >>= 7;
    while distance > 0 {
        distance -= 1;
        out.insert(0, 0x80 | (distance & 0x7f) as u8);
        distance >>= 7;
    }
    out
}

fn build(entries: &[(ObjectId, Entry)]) -> Built {
    let mut pack = b"PACK".to_vec();
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    let mut offsets = Vec::new();
    let mut filed = Vec::new();
    for (id, entry) in entries {
        let offset = pack.len() as u64;
        let mut bytes = match entry {
            Entry::Whole(kind, data) => {
                let bits = match kind {
                    Kind::Commit => 1,
                    Kind::Tree => 2,
                    Kind::Blob => 3,
                    Kind::Tag => 4,
                };
                entry_header(bits, data.len())
            }
            Entry::OfsDelta(base, delta) => {
                let mut h = entry_header(6, delta.len());
                h.extend(ofs_distance(offset - offsets[*base]));
                h
            }
            Entry::RefDelta(base, delta) => {
                let mut h = entry_header(7, delta.len());
                h.extend_from_slice(base.as_slice());
                h
            }
        };
        let data = match entry {
            Entry::Whole(_, d) | Entry::OfsDelta(_, d) | Entry::RefDelta(_, d) => d,
        };
        bytes.extend(miniz_oxide::deflate::compress_to_vec_zlib(data, 6));
        filed.push((*id, snapgit_core::pack::entry::crc32(&bytes), offset));
        offsets.push(offset);
        pack.extend(bytes);
    }
    let checksum = sha1(&pack);
    pack.extend_from_slice(&checksum);
    filed.sort();
    let mut idx = vec![0xff, b't', b'O', b'c', 0, 0, 0, 2];
    for slot in 0..256u32 {
        let count = filed
            .iter()
            .filter(|(id, _, _)| u32::from(id.as_slice()[0]) <= slot)
            .count();
        idx.extend_from_slice(&(count as u32).to_be_bytes());
    }
    for (id, _, _) in &filed {
        idx.extend_from_slice(id.as_slice());
    }
    for (_, crc, _) in &filed {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    for (_, _, offset) in &filed {
        idx.extend_from_slice(&(*offset as u32).to_be_bytes());
    }
    idx.extend_from_slice(&checksum);
    let own = sha1(&idx);
    idx.extend(own);
    Built { pack, idx, offsets }
}

const PACK_KEY: &str = "objects/pack/pack-1111111111111111111111111111111111111111.pack";

fn store_with(built: &Built) -> MemoryStore {
    let store = MemoryStore::new();
    store.insert_file(PACK_KEY, built.pack.clone());
    store.insert_file(PACK_KEY.replace(".pack", ".idx"), built.idx.clone());
    store
}

/// A delta: sizes, then instructions.
fn delta(base_len: usize, result_len: u64, instructions: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for mut size in [base_len as u64, result_len] {
        loop {
            let byte = (size & 0x7f) as u8;
            size >>= 7;
            if size == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out.extend_from_slice(instructions);
    out
}

/// A commit of one file, as (commit, tree, blob) entries with their ids.
fn one_file_commit(blob: &[u8], name: &str) -> Vec<(ObjectId, Kind, Vec<u8>)> {
    let mut objects = commit_of(&[(name, blob)]);
    objects.truncate(3);
    objects
}

/// A commit of `files` (sorted names): commit, tree, then each blob.
fn commit_of(files: &[(&str, &[u8])]) -> Vec<(ObjectId, Kind, Vec<u8>)> {
    let mut tree = Vec::new();
    let mut blobs = Vec::new();
    for (name, blob) in files {
        let blob_id = id_of(Kind::Blob, blob);
        tree.extend(format!("100644 {name}\0").into_bytes());
        tree.extend_from_slice(blob_id.as_slice());
        blobs.push((blob_id, Kind::Blob, blob.to_vec()));
    }
    let tree_id = id_of(Kind::Tree, &tree);
    let commit = format!(
        "tree {tree_id}\nauthor A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\nfirst\n"
    )
    .into_bytes();
    let mut objects = vec![
        (id_of(Kind::Commit, &commit), Kind::Commit, commit),
        (tree_id, Kind::Tree, tree),
    ];
    objects.extend(blobs);
    objects
}

fn whole(objects: &[(ObjectId, Kind, Vec<u8>)]) -> Vec<(ObjectId, Entry)> {
    objects
        .iter()
        .map(|(id, kind, data)| (*id, Entry::Whole(*kind, data.clone())))
        .collect()
}

fn read_all(store: &MemoryStore, commit: ObjectId) -> Result<Vec<(String, Vec<u8>)>, read::Error> {
    let mut op = read::ReadFiles::new(commit, "").unwrap();
    let files = drive::run(&mut op, &mut ObjectCache::new(SHA1), store)?;
    Ok(files.into_iter().map(|f| (f.path.to_string(), f.file.data)).collect())
}

/// Read `commit`'s files from `store`: a corrupt-object error whose message names the
/// pack and contains `says`; then a commit on top fails too and writes nothing.
fn refused(store: &MemoryStore, commit: ObjectId, says: &str) {
    let err = read_all(store, commit).expect_err(says);
    assert!(
        matches!(err, read::Error::Object(object::Error::Corrupt { .. })),
        "{says}: {err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("pack-1111"), "{says}: names the pack: {message}");
    assert!(message.contains(says), "{says}: {message}");

    let before = (store.ids().len(), store.refs());
    let mut cache = ObjectCache::new(SHA1);
    let request = commit::Request::new(
        Some(commit),
        // The broken object is the file's blob, read for the line counts.
        vec![Change::put("notes.md", "more\n")],
        signature(1_700_000_100),
        "on top",
    );
    let result = commit::Commit::new(&cache, request).map(|mut op| drive::run(&mut op, &mut cache, store));
    assert!(matches!(result, Ok(Err(_))), "{says}: a commit on top fails");
    assert_eq!((store.ids().len(), store.refs()), before, "{says}: nothing written");
}

/// The three files of [`both_delta_kinds`]: `b.md` an ofs-delta of `a.md`, `c.md` a
/// ref-delta of `b.md`.
const BOTH_DELTA_KINDS: [(&str, &[u8]); 3] = [
    ("a.md", b"hello world\n"),
    ("b.md", b"hello there\n"),
    ("c.md", b"hello there, again\n"),
];

/// A small hand-built pack: a commit of [`BOTH_DELTA_KINDS`], its tree, a blob, an
/// ofs-delta of the blob and a ref-delta of that. The commit's id, and the pack built.
fn both_delta_kinds() -> (ObjectId, Built) {
    let objects = commit_of(&BOTH_DELTA_KINDS);
    let mut entries = whole(&objects[..3]);
    entries.push((
        objects[3].0,
        Entry::OfsDelta(
            2,
            delta(12, 12, &[0x80 | 0x10, 6, 6, b't', b'h', b'e', b'r', b'e', b'\n']),
        ),
    ));
    entries.push((
        objects[4].0,
        Entry::RefDelta(
            objects[3].0,
            delta(
                12,
                19,
                &[0x80 | 0x10, 11, 8, b',', b' ', b'a', b'g', b'a', b'i', b'n', b'\n'],
            ),
        ),
    ));
    (objects[0].0, build(&entries))
}

#[test]
fn a_hand_built_pack_with_both_delta_kinds_reads() {
    let (commit, pack) = both_delta_kinds();
    let store = store_with(&pack);
    let files = read_all(&store, commit).unwrap();
    let expected: Vec<_> = BOTH_DELTA_KINDS
        .iter()
        .map(|(p, c)| ((*p).into(), c.to_vec()))
        .collect();
    assert_eq!(files, expected);
}

#[test]
fn a_delta_cycle_is_corrupt() {
    let objects = one_file_commit(b"hello world\n", "notes.md");
    let blob = objects[2].0;
    // The blob is a ref-delta of an object that is a ref-delta of the blob.
    let other = id_of(Kind::Blob, b"other\n");
    let mut entries = whole(&objects[..2]);
    entries.push((blob, Entry::RefDelta(other, delta(6, 12, &[12]))));
    entries.push((other, Entry::RefDelta(blob, delta(12, 6, &[6]))));
    refused(&store_with(&build(&entries)), objects[0].0, "(or a cycle)");
}

#[test]
fn a_delta_whose_base_is_in_no_pack_is_corrupt() {
    let objects = one_file_commit(b"hello world\n", "notes.md");
    let nowhere = id_of(Kind::Blob, b"in no pack\n");
    let mut entries = whole(&objects[..2]);
    entries.push((objects[2].0, Entry::RefDelta(nowhere, delta(11, 12, &[12]))));
    refused(
        &store_with(&build(&entries)),
        objects[0].0,
        &format!("the delta base {nowhere} is in no pack"),
    );
}

#[test]
fn a_small_delta_that_expands_to_a_gigabyte_is_refused_before_it_is_applied() {
    let objects = one_file_commit(b"hello world\n", "notes.md");
    let base = b"0123456789abcdef".repeat(4096);
    let base_id = id_of(Kind::Blob, &base);
    // 1 KB of copy instructions of 64 KiB each would write 16 MiB per KB; it claims 1 GiB.
    let copies: Vec<u8> = std::iter::repeat_n([0x80 | 0x01, 0], 512).flatten().collect();
    let mut entries = whole(&objects[..2]);
    entries.push((base_id, Entry::Whole(Kind::Blob, base.clone())));
    entries.push((objects[2].0, Entry::OfsDelta(2, delta(base.len(), 1 << 30, &copies))));
    refused(&store_with(&build(&entries)), objects[0].0, "over the limit");
}

#[test]
fn a_truncated_pack_is_corrupt() {
    let objects = one_file_commit(b"hello world\n", "notes.md");
    let mut built = build(&whole(&objects));
    let keep = usize::try_from(built.offsets[2]).unwrap() + 2;
    built.pack.truncate(keep);
    refused(&store_with(&built), objects[0].0, "names entries past its end");
}

#[test]
fn an_index_of_another_pack_is_corrupt() {
    let objects = one_file_commit(b"hello world\n", "notes.md");
    let built = build(&whole(&objects));
    // The same objects, packed in another order: every id is there, at other offsets.
    let mut reordered = whole(&objects);
    reordered.reverse();
    let other = build(&reordered);
    assert_eq!(built.pack.len(), other.pack.len());
    let store = store_with(&Built {
        idx: other.idx,
        ..built
    });
    // Read whole, the pack's trailer gives it away; read in ranges, each entry's CRC.
    refused(&store, objects[0].0, "its index");
}

#[test]
fn a_flipped_byte_in_an_entry_is_corrupt_with_its_offset() {
    let objects = one_file_commit(b"hello world\n", "notes.md");
    let mut built = build(&whole(&objects));
    let blob_at = built.offsets[2];
    let flip = usize::try_from(blob_at).unwrap() + 4;
    built.pack[flip] ^= 0x20;
    refused(
        &store_with(&built),
        objects[0].0,
        &format!("at offset {blob_at}: the entry's CRC-32"),
    );
}

#[test]
fn a_trailer_that_is_not_the_index_checksum_is_corrupt() {
    let objects = one_file_commit(b"hello world\n", "notes.md");
    let mut built = build(&whole(&objects));
    let last = built.pack.len() - 1;
    built.pack[last] ^= 1;
    refused(&store_with(&built), objects[0].0, "its trailer is not the checksum");
}

#[test]
fn a_packed_tree_with_a_dot_git_entry_is_refused() {
    let objects = one_file_commit(b"[core]\n", ".git");
    let store = store_with(&build(&whole(&objects)));
    let err = read_all(&store, objects[0].0).expect_err("a .git entry");
    assert!(
        matches!(err, read::Error::Object(object::Error::Corrupt { id, .. }) if id == objects[1].0),
        "{err:?}"
    );
}
