//! Indexing received packs: packs `git pack-objects` writes (offset deltas, ref deltas,
//! fresh deltas, an empty pack) index to the bytes `git index-pack` writes, which `git
//! verify-pack` accepts; a thin pack, truncated, corrupted, miscounted, trailing or
//! hostile packs are refused with the offset or id at fault, and what the caller's check
//! refuses is refused. Each hostile pack is a small change to one that indexes, so each
//! test fails if the check it names is gone.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use gix_object::Kind;
use snapgit_core::{
    HashKind, ObjectId, object,
    pack::{
        self, Index, MAX_DELTA_DEPTH,
        ingest::{self, Indexed},
    },
};

use super::{build, commit_of, delta, entry_header, id_of, ofs_distance, sha1, whole};

const SHA1: HashKind = HashKind::Sha1;
const KEY: &str = "the pushed pack";
const LIMIT: u64 = 1 << 30;

/// Index `pack` with objects of up to `max` bytes, checking that every object is visited with
/// the content its id names; the visited objects in visiting order.
fn visited(pack: &[u8], max: u64) -> Result<(Indexed, Vec<(ObjectId, Kind)>), pack::Error> {
    let mut seen = Vec::new();
    let indexed = ingest::index(SHA1, KEY, pack.to_vec(), max, &mut |id, kind, data| {
        assert_eq!(object::hash(SHA1, kind, data).unwrap(), id, "visited with its content");
        seen.push((id, kind));
        Ok(())
    })?;
    Ok((indexed, seen))
}

fn ingest(pack: &[u8]) -> Result<Indexed, pack::Error> {
    visited(pack, LIMIT).map(|(indexed, _)| indexed)
}

/// The pack must be refused with an error naming the pushed pack, whose message holds
/// `says`.
fn refused(pack: &[u8], says: &str) -> pack::Error {
    let err = ingest(pack).expect_err(says);
    let message = err.to_string();
    assert!(message.starts_with(KEY), "{says}: names the pack: {message}");
    assert!(message.contains(says), "{says}: {message}");
    err
}

/// Recompute a pack's checksum after changing it.
fn reseal(pack: &mut [u8]) {
    let body = pack.len() - 20;
    let sum = sha1(&pack[..body]);
    pack[body..].copy_from_slice(&sum);
}

/// A pack of raw entries, sealed.
fn raw_pack(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut pack = b"PACK".to_vec();
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        pack.extend_from_slice(e);
    }
    pack.extend_from_slice(&[0; 20]);
    reseal(&mut pack);
    pack
}

fn zlib(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

fn whole_entry(kind_bits: u8, data: &[u8]) -> Vec<u8> {
    let mut e = entry_header(kind_bits, data.len());
    e.extend(zlib(data));
    e
}

fn ref_entry(base: ObjectId, delta: &[u8]) -> Vec<u8> {
    let mut e = entry_header(7, delta.len());
    e.extend_from_slice(base.as_slice());
    e.extend(zlib(delta));
    e
}

fn ofs_entry(distance: u64, delta: &[u8]) -> Vec<u8> {
    let mut e = entry_header(6, delta.len());
    e.extend(ofs_distance(distance));
    e.extend(zlib(delta));
    e
}

/// A small pack that indexes: a commit, its tree, a blob, an ofs-delta of the blob and a
/// ref-delta of that.
fn small() -> Vec<u8> {
    super::both_delta_kinds().1.pack
}

/// A repository with a fixed identity, isolated from the machine's git configuration.
struct Repo {
    temp: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let repo = Repo {
            temp: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main", "repo"], b"");
        repo.git(&["config", "gc.auto", "0"], b"");
        repo
    }

    fn path(&self) -> PathBuf {
        self.temp.path().join("repo")
    }

    /// A path outside the repository, for packs and indexes.
    fn scratch(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> std::process::Output {
        let dir = if self.path().exists() {
            self.path()
        } else {
            self.temp.path().to_owned()
        };
        let mut child = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Agent")
            .env("GIT_AUTHOR_EMAIL", "agent@example.com")
            .env("GIT_COMMITTER_NAME", "Agent")
            .env("GIT_COMMITTER_EMAIL", "agent@example.com")
            .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
            .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &stdin));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        out
    }

    fn git(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn write(&self, path: &str, content: &[u8]) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"], b"");
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message], b"");
        self.rev("HEAD")
    }

    fn rev(&self, rev: &str) -> String {
        String::from_utf8(self.git(&["rev-parse", rev], b""))
            .unwrap()
            .trim()
            .to_owned()
    }
}

/// Lines of a text file that changes a little each commit, so git stores deltas.
fn notes(version: usize) -> Vec<u8> {
    (0..400)
        .map(|line| {
            if line % 37 == version % 37 {
                format!("line {line} changed in version {version}\n")
            } else {
                format!("line {line} of the notes, long enough to be worth a delta\n")
            }
        })
        .collect::<String>()
        .into_bytes()
}

/// Six commits: nested folders, an empty file, binary data, a file edited each time, files
/// added and deleted, and an annotated tag.
fn history() -> Repo {
    let repo = Repo::new();
    for version in 0..6 {
        repo.write("notes.md", &notes(version));
        repo.write(
            &format!("src/mod{version}/lib.rs"),
            format!("pub fn f() -> u32 {{ {version} }}\n").as_bytes(),
        );
        repo.write("empty", b"");
        repo.write(
            "data.bin",
            &(0..2000u32).map(|i| (i * 7 + version as u32) as u8).collect::<Vec<_>>(),
        );
        if version == 3 {
            std::fs::remove_dir_all(repo.path().join("src/mod1")).unwrap();
        }
        repo.commit(&format!("version {version}"));
    }
    repo.git(&["tag", "-a", "-m", "the first release", "v1"], b"");
    repo
}

/// `git index-pack`'s index of `pack`.
fn git_index(repo: &Repo, pack: &[u8]) -> Vec<u8> {
    let (pack_path, idx_path) = (repo.scratch("git.pack"), repo.scratch("git.idx"));
    std::fs::write(&pack_path, pack).unwrap();
    let _ = std::fs::remove_file(&idx_path);
    repo.git(
        &[
            "index-pack",
            "-o",
            idx_path.to_str().unwrap(),
            pack_path.to_str().unwrap(),
        ],
        b"",
    );
    std::fs::read(idx_path).unwrap()
}

/// `git verify-pack -v` on our files: (id, kind, offset) of each object it lists.
fn git_verify(repo: &Repo, indexed: &Indexed) -> Vec<(ObjectId, Kind, u64)> {
    let dir = repo.scratch("ours");
    std::fs::create_dir_all(&dir).unwrap();
    let pack_path = dir.join(format!("pack-{}.pack", indexed.name));
    let idx_path: &Path = &dir.join(format!("pack-{}.idx", indexed.name));
    std::fs::write(&pack_path, &indexed.pack).unwrap();
    std::fs::write(idx_path, &indexed.index).unwrap();
    let out = repo.git(&["verify-pack", "-v", idx_path.to_str().unwrap()], b"");
    let mut listed: Vec<(ObjectId, Kind, u64)> = String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let id = ObjectId::from_hex(words.first()?.as_bytes()).ok()?;
            let kind = Kind::from_bytes(words.get(1)?.as_bytes()).ok()?;
            Some((id, kind, words.get(4)?.parse().ok()?))
        })
        .collect();
    listed.sort();
    listed
}

/// Index a pack git wrote; it must be what git indexes, read back, and list as git does.
fn agrees_with_git(repo: &Repo, pack: &[u8]) -> Indexed {
    let (indexed, seen) = visited(pack, LIMIT).unwrap();
    assert_eq!(
        indexed.index,
        git_index(repo, pack),
        "the index is git's, byte for byte"
    );
    assert_eq!(
        indexed.name,
        ObjectId::from_bytes_or_panic(&pack[pack.len() - 20..]).to_string()
    );
    assert_eq!(indexed.pack, pack);

    let index = Index::from_bytes(&indexed.index_key(), indexed.index.clone(), SHA1).unwrap();
    assert_eq!(index.len(), indexed.objects.len());
    let mut listed: Vec<(ObjectId, Kind, u64)> = indexed
        .objects
        .iter()
        .map(|&(id, kind)| (id, kind, index.lookup(&id).unwrap()))
        .collect();
    assert!(listed.windows(2).all(|w| w[0].2 < w[1].2), "objects in pack order");
    listed.sort();
    assert_eq!(git_verify(repo, &indexed), listed);

    let mut visited = seen;
    visited.sort();
    let mut objects = indexed.objects.clone();
    objects.sort();
    assert_eq!(visited, objects, "every object visited once");
    indexed
}

fn pack_objects(repo: &Repo, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut all = vec!["pack-objects", "--stdout", "-q"];
    all.extend_from_slice(args);
    repo.git(&all, stdin)
}

#[test]
fn packs_git_writes_index_as_git_indexes_them() {
    let repo = history();
    let count = String::from_utf8(repo.git(&["rev-list", "--objects", "--all"], b""))
        .unwrap()
        .lines()
        .count();

    let ofs = pack_objects(&repo, &["--all", "--delta-base-offset"], b"");
    let refs = pack_objects(&repo, &["--all"], b"");
    let fresh = pack_objects(
        &repo,
        &[
            "--all",
            "--no-reuse-delta",
            "--delta-base-offset",
            "--window=50",
            "--depth=3",
        ],
        b"",
    );
    for (name, pack, kind_bits) in [("ofs", &ofs, 6u8), ("ref", &refs, 7), ("fresh", &fresh, 6)] {
        let indexed = agrees_with_git(&repo, pack);
        assert_eq!(indexed.objects.len(), count, "{name}");
        assert!(indexed.deltas > 5, "{name}: {} deltas", indexed.deltas);
        // The deltas are of the kind asked for.
        let index = Index::from_bytes("idx", indexed.index.clone(), SHA1).unwrap();
        let kinds: Vec<u8> = indexed
            .objects
            .iter()
            .map(|(id, _)| (pack[usize::try_from(index.lookup(id).unwrap()).unwrap()] >> 4) & 7)
            .collect();
        assert!(kinds.contains(&kind_bits), "{name}: {kinds:?}");
        assert!(!kinds.contains(&(13 - kind_bits)), "{name}: {kinds:?}");
    }
    assert!(
        ingest(&ofs).unwrap().objects.iter().any(|(_, kind)| *kind == Kind::Tag),
        "the tag is packed"
    );

    // An empty pack, as a push that only deletes sends.
    let empty = pack_objects(&repo, &[], b"");
    assert_eq!(agrees_with_git(&repo, &empty).objects, vec![]);
}

#[test]
fn a_pack_core_writes_indexes_to_the_index_written_with_it() {
    let objects: Vec<pack::write::Object> = (0..60)
        .map(|version| {
            let data = notes(version);
            pack::write::Object {
                id: id_of(Kind::Blob, &data),
                kind: Kind::Blob,
                data,
                name: pack::write::name_hash(b"notes.md"),
            }
        })
        .collect();
    let written = pack::write::write(SHA1, &objects, &pack::write::Options::default());
    assert!(written.deltas > 50);
    let (indexed, seen) = visited(&written.pack, LIMIT).unwrap();
    assert_eq!(indexed.index, written.index);
    assert_eq!(
        (indexed.name.as_str(), indexed.deltas),
        (written.name.as_str(), written.deltas)
    );
    assert_eq!(indexed.files(), written.files());
    assert_eq!(seen.len(), objects.len());
    let index = Index::from_bytes(&indexed.index_key(), indexed.index.clone(), SHA1).unwrap();
    for o in &objects {
        assert!(index.lookup(&o.id).is_some());
    }
}

#[test]
fn a_thin_pack_is_refused_naming_the_missing_base() {
    let repo = history();
    let pack = pack_objects(&repo, &["--revs", "--thin", "--delta-base-offset"], b"HEAD\n^HEAD~1\n");
    // git itself needs the repository's objects to index it.
    let out = repo.run(&["index-pack", "--stdin"], &pack);
    assert!(!out.status.success(), "git refuses it outside --fix-thin");
    let err = refused(&pack, "thin packs are refused").to_string();
    let named = err.split("the base ").nth(1).and_then(|rest| rest.get(..40)).unwrap();
    // The base it names is an object of the commit before, not one the push sends.
    let before = String::from_utf8(repo.git(&["rev-list", "--objects", "HEAD~1"], b"")).unwrap();
    assert!(before.lines().any(|line| line.starts_with(named)), "{err}");
    let full = pack_objects(&repo, &["--revs", "--delta-base-offset"], b"HEAD\n^HEAD~1\n");
    let sent = agrees_with_git(&repo, &full);
    assert!(
        !sent
            .objects
            .iter()
            .any(|(id, _)| *id == ObjectId::from_hex(named.as_bytes()).unwrap()),
        "{err}"
    );
}

#[test]
fn a_ref_delta_may_come_before_its_base() {
    let repo = Repo::new();
    let base = notes(0);
    let target = notes(1);
    // Only inserts, 127 bytes at most each: valid whatever the base.
    let mut instructions = Vec::new();
    for chunk in target.chunks(127) {
        instructions.push(chunk.len() as u8);
        instructions.extend_from_slice(chunk);
    }
    let pack = raw_pack(&[
        ref_entry(
            id_of(Kind::Blob, &base),
            &delta(base.len(), target.len() as u64, &instructions),
        ),
        whole_entry(3, &base),
    ]);
    let indexed = agrees_with_git(&repo, &pack);
    assert_eq!(
        indexed.objects,
        vec![
            (id_of(Kind::Blob, &target), Kind::Blob),
            (id_of(Kind::Blob, &base), Kind::Blob)
        ]
    );
}

#[test]
fn a_small_hand_built_pack_indexes() {
    let (indexed, seen) = visited(&small(), LIMIT).unwrap();
    assert_eq!(indexed.objects.len(), 5);
    assert_eq!(indexed.deltas, 2);
    // Whole objects first, in pack order, then the deltas as rebuilt.
    assert_eq!(seen, indexed.objects);
    // Version 3 packs are the same format.
    let mut v3 = small();
    v3[7] = 3;
    reseal(&mut v3);
    assert_eq!(ingest(&v3).unwrap().objects, indexed.objects);
}

#[test]
fn a_truncated_pack_is_refused_wherever_it_is_cut() {
    let pack = small();
    for cut in 0..pack.len() {
        let err = ingest(&pack[..cut]).expect_err("truncated");
        assert!(err.to_string().starts_with(KEY), "{cut}: {err}");
    }
    refused(&pack[..5], "too few for a pack");
    refused(&pack[..20], "ends before its checksum");
    refused(&pack[..pack.len() - 1], "its checksum does not match");
    // Cut inside the third entry, the rest sealed again: the stream is short.
    let (built, third) = (build(&whole(&commit_of(&[("a.md", b"hello\n")]))), 2);
    let mut cut = built.pack[..usize::try_from(built.offsets[third]).unwrap() + 4].to_vec();
    cut.extend_from_slice(&[0; 20]);
    reseal(&mut cut);
    refused(
        &cut,
        &format!(
            "at offset {}: the entry's zlib stream is truncated",
            built.offsets[third]
        ),
    );
}

#[test]
fn a_changed_byte_is_refused() {
    let pack = small();
    for at in 0..pack.len() {
        let mut changed = pack.clone();
        changed[at] ^= 0x04;
        ingest(&changed).expect_err("a changed byte");
    }
    let mut changed = pack.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    refused(&changed, "its checksum does not match its content");
    // A changed byte in an entry, the checksum made to match: the entry is at fault.
    let built = build(&whole(&commit_of(&[("a.md", b"hello\n")])));
    let mut changed = built.pack.clone();
    let blob = usize::try_from(built.offsets[2]).unwrap();
    changed[blob + 4] ^= 0x20;
    reseal(&mut changed);
    refused(&changed, &format!("at offset {blob}: the entry"));
}

#[test]
fn a_count_that_does_not_match_the_entries_is_refused() {
    let pack = small();
    let count = |pack: &[u8], n: u32, seal: bool| {
        let mut pack = pack.to_vec();
        pack[8..12].copy_from_slice(&n.to_be_bytes());
        if seal {
            reseal(&mut pack);
        }
        pack
    };
    refused(
        &count(&pack, 6, true),
        "the pack ends after 5 entries, its header counts 6",
    );
    refused(&count(&pack, 4, true), "follow its 4 entries");
    refused(&count(&pack, 6, false), "its checksum does not match its content");
    refused(&count(&pack, 4, false), "its checksum does not match its content");
    refused(&count(&pack, u32::MAX, true), "more than its");
    let mut tiny = raw_pack(&[]);
    assert!(ingest(&tiny).unwrap().objects.is_empty());
    tiny[11] = 1;
    reseal(&mut tiny);
    refused(&tiny, "counts 1 objects, more than its 32 bytes can hold");
}

#[test]
fn bytes_after_the_checksum_are_refused() {
    let mut pack = small();
    let end = pack.len();
    pack.extend_from_slice(b"junk");
    refused(&pack, &format!("at offset {end}: 4 bytes follow its checksum"));
}

#[test]
fn a_header_that_is_not_a_pack_is_refused() {
    let mut pack = small();
    pack[0] = b'Q';
    reseal(&mut pack);
    refused(&pack, "not a pack");
    let mut pack = small();
    pack[7] = 4;
    reseal(&mut pack);
    refused(&pack, "pack version 4 is not supported");
}

#[test]
fn an_offset_delta_whose_base_is_not_an_entry_is_refused() {
    let base = b"hello world\n";
    let first = whole_entry(3, base);
    let into_the_middle = first.len() as u64 - 2;
    let pack = raw_pack(&[first.clone(), ofs_entry(into_the_middle, &delta(12, 12, &[12]))]);
    let at = 12 + first.len();
    refused(
        &pack,
        &format!("at offset {at}: its delta base at offset 14 is not the start of an entry"),
    );
    // Before the pack starts.
    let pack = raw_pack(&[first.clone(), ofs_entry(at as u64 + 1, &delta(12, 12, &[12]))]);
    refused(&pack, "before the pack");
    // Pointing at the entry's start, it indexes.
    let pack = raw_pack(&[
        first.clone(),
        ofs_entry(first.len() as u64, &delta(12, 5, &[0x80 | 0x10, 5])),
    ]);
    assert_eq!(
        ingest(&pack).unwrap().objects[1],
        (id_of(Kind::Blob, b"hello"), Kind::Blob)
    );
}

#[test]
fn an_object_twice_is_refused() {
    let first = whole_entry(
        3,
        b"hello world
",
    );
    // A delta that copies its whole base: the same object again.
    let pack = raw_pack(&[
        first.clone(),
        ofs_entry(first.len() as u64, &delta(12, 12, &[0x80 | 0x10, 12])),
    ]);
    let at = 12 + first.len();
    refused(
        &pack,
        &format!(
            "at offset {at}: object {} is in the pack twice, first at offset 12",
            id_of(Kind::Blob, b"hello world\n")
        ),
    );
    let pack = raw_pack(&[first.clone(), first]);
    refused(
        &pack,
        &format!(
            "at offset {at}: object {} is in the pack twice",
            id_of(Kind::Blob, b"hello world\n")
        ),
    );
}

#[test]
fn ref_deltas_based_on_each_other_are_refused() {
    let (a, b) = (&b"hello world\n"[..], &b"hello\n"[..]);
    let (a_id, b_id) = (id_of(Kind::Blob, a), id_of(Kind::Blob, b));
    // a is a delta of b, b a delta of a: neither ever has a base.
    let cycle = raw_pack(&[
        whole_entry(3, b"unrelated\n"),
        ref_entry(b_id, &delta(6, 12, &[12])),
        ref_entry(a_id, &delta(12, 6, &[0x80 | 0x10, 6])),
    ]);
    let err = refused(&cycle, "is a delta based on it");
    assert!(err.to_string().contains(&b_id.to_string()), "{err}");
    // A delta of itself.
    let own = raw_pack(&[ref_entry(a_id, &delta(12, 12, &[0x80 | 0x10, 12]))]);
    refused(&own, &format!("the base {a_id} of its delta is not in the pack"));
    // With b whole, a delta of it indexes.
    let insert: Vec<u8> = [&[12u8][..], a].concat();
    let fixed = raw_pack(&[whole_entry(3, b), ref_entry(b_id, &delta(6, 12, &insert))]);
    assert_eq!(
        ingest(&fixed).unwrap().objects,
        vec![(b_id, Kind::Blob), (a_id, Kind::Blob)]
    );
}

/// A chain of `deltas` ofs-deltas on one blob, each adding a byte.
fn chain(deltas: usize) -> Vec<u8> {
    let mut entries = vec![whole_entry(3, b"x")];
    let mut offsets = vec![12u64];
    for n in 0..deltas {
        let at = offsets[n] + entries[n].len() as u64;
        let size = n + 1;
        let mut copy = vec![0x80 | 0x10 | 0x20];
        copy.extend_from_slice(&(size as u16).to_le_bytes());
        copy.extend_from_slice(&[1, b'y']);
        entries.push(ofs_entry(at - offsets[n], &delta(size, size as u64 + 1, &copy)));
        offsets.push(at);
    }
    raw_pack(&entries)
}

#[test]
fn a_delta_chain_longer_than_the_limit_is_refused() {
    let longest = ingest(&chain(MAX_DELTA_DEPTH)).unwrap();
    assert_eq!(longest.objects.len(), MAX_DELTA_DEPTH + 1);
    assert_eq!(
        longest.objects[MAX_DELTA_DEPTH].0,
        id_of(Kind::Blob, &[&b"x"[..], &vec![b'y'; MAX_DELTA_DEPTH]].concat())
    );
    refused(
        &chain(MAX_DELTA_DEPTH + 1),
        &format!("a delta chain longer than {MAX_DELTA_DEPTH}"),
    );
}

#[test]
fn objects_over_the_limit_are_refused() {
    let pack = small();
    // The commit (the largest object) is 150-odd bytes, the others far smaller.
    visited(&pack, 1000).unwrap();
    let err = visited(&pack, 100)
        .expect_err("the commit is over the limit")
        .to_string();
    assert!(err.contains("at offset 12: the entry inflates to"), "{err}");
    assert!(err.contains("over the limit of 100"), "{err}");
    // The ref-delta's result (19 bytes) is over 18; its base and instructions are not.
    let a = b"hello there\n";
    let pack = raw_pack(&[
        whole_entry(3, a),
        ref_entry(
            id_of(Kind::Blob, a),
            &delta(
                12,
                19,
                &[0x80 | 0x10, 11, 8, b',', b' ', b'a', b'g', b'a', b'i', b'n', b'\n'],
            ),
        ),
    ]);
    visited(&pack, 19).unwrap();
    let err = visited(&pack, 18).expect_err("over").to_string();
    assert!(
        err.contains("the delta expands to 19 bytes, over the limit of 18"),
        "{err}"
    );
    // A header that claims a gigabyte behind a few bytes of zlib.
    let mut liar = entry_header(3, 1 << 30);
    liar.extend(zlib(b"small"));
    let err = ingest(&raw_pack(&[liar])).expect_err("claims too much").to_string();
    assert!(
        err.contains("inflates to 5 bytes, not its declared 1073741824"),
        "{err}"
    );
}

#[test]
fn what_the_check_refuses_is_refused() {
    let pack = small();
    let indexed = ingest(&pack).unwrap();
    // Refuse each object in turn: the refusal names it, and its offset.
    for &(refused_id, _) in &indexed.objects {
        let mut calls = 0;
        let err = ingest::index(SHA1, KEY, pack.clone(), LIMIT, &mut |id, _, _| {
            calls += 1;
            if id == refused_id {
                Err("not wanted here".into())
            } else {
                Ok(())
            }
        })
        .expect_err("refused by the check");
        let index = Index::from_bytes("idx", indexed.index.clone(), SHA1).unwrap();
        assert_eq!(err.offset, index.lookup(&refused_id));
        assert_eq!(err.reason, format!("object {refused_id}: not wanted here"));
        assert!(calls <= indexed.objects.len());
    }
}
