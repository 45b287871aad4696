//! Stores git has packed, read by snapgit: the generated history (300 commits with
//! merges, renames, binary files, symlinks, a submodule) packed by `git gc`, `git gc
//! --aggressive`, `git repack -adf --depth=250 --window=250`, with REF_DELTA bases, and
//! half packed, half loose. Every read equals the same read of the loose store, which the
//! other tests hold against git; GC keeps what git reaches.

use std::path::Path;

use snapgit_core::{
    ObjectCache, ObjectId,
    drive::{self, MemoryStore, ObjectStore},
    gc::{Collect, CollectOptions},
    history, read,
    step::{CasRef, Listed},
};
use snapgit_tests::GitRepo;

use crate::generated::{self, History};

/// A copy of the history's loose repository, changed by `git` with `args` (each a
/// command line), loaded into a store: loose objects as objects, everything else as files.
fn packed_copy(h: &History, commands: &[&[&str]]) -> (GitRepo, MemoryStore) {
    let copy = GitRepo::new();
    copy_dir(h.git.path(), copy.path());
    for args in commands {
        copy.git(args);
    }
    let store = copy.to_full_store();
    (copy, store)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn read_all(store: &MemoryStore, commit: ObjectId) -> Vec<(String, ObjectId, Vec<u8>)> {
    let mut op = read::ReadFiles::new(commit, "").unwrap();
    let files = drive::run(&mut op, &mut ObjectCache::new(gix_hash::Kind::Sha1), store).unwrap();
    files
        .into_iter()
        .map(|f| (f.path.to_string(), f.file.id, f.file.data))
        .collect()
}

fn log(store: &MemoryStore, cache: &mut ObjectCache, start: ObjectId, path: Option<&str>) -> Vec<ObjectId> {
    let mut request = history::Request::new(start, 10_000);
    request.path = path.map(Into::into);
    let mut op = history::Log::new(request).unwrap();
    let page = drive::run(&mut op, cache, store).unwrap();
    page.commits.into_iter().map(|c| c.id).collect()
}

/// Every read snapgit makes of `packed` equals the same read of the loose store.
pub(crate) fn reads_agree(h: &History, packed: &MemoryStore) {
    reads_agree_at(h, packed, h.main, &h.commits);
}

/// The reads of [`reads_agree`], of the history from `tip`, at some of `commits`.
fn reads_agree_at(h: &History, packed: &MemoryStore, tip: ObjectId, commits: &[ObjectId]) {
    let mut loose_cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut packed_cache = ObjectCache::new(gix_hash::Kind::Sha1);
    assert_eq!(
        log(packed, &mut packed_cache, tip, None),
        log(&h.store, &mut loose_cache, tip, None)
    );
    for path in h.paths.iter().step_by(7).take(12) {
        assert_eq!(
            log(packed, &mut packed_cache, tip, Some(path)),
            log(&h.store, &mut loose_cache, tip, Some(path)),
            "log of {path}"
        );
    }
    for commit in commits.iter().step_by(23) {
        assert_eq!(
            read_all(packed, *commit),
            read_all(&h.store, *commit),
            "files at {commit}"
        );
    }
}

fn packs_in(store: &MemoryStore) -> Vec<Listed> {
    store
        .list("objects/pack/")
        .unwrap()
        .into_iter()
        .filter(|l| l.key.ends_with(".pack"))
        .collect()
}

#[test]
fn a_store_git_packed_reads_as_its_loose_copy() {
    let h = generated::history();
    for commands in [
        &[&["gc", "--quiet"][..]][..],
        &[&["gc", "--quiet", "--aggressive"][..]],
        &[&["repack", "-adf", "-q", "--depth=250", "--window=250"][..]],
        &[&["-c", "repack.useDeltaBaseOffset=false", "repack", "-adf", "-q"][..]],
    ] {
        let (_git, store) = packed_copy(h, commands);
        assert!(!packs_in(&store).is_empty(), "{commands:?} packed");
        reads_agree(h, &store);
    }
}

/// A copy of the history with the objects of its older half in one pack, the rest loose.
pub(crate) fn half_packed(h: &History) -> GitRepo {
    let older = h.commits[h.commits.len() / 2].to_string();
    let copy = GitRepo::new();
    copy_dir(h.git.path(), copy.path());
    let objects = copy.git(&["rev-list", "--objects", &older]);
    let ids: String = objects
        .lines()
        .map(|line| format!("{}\n", line.split(' ').next().unwrap()))
        .collect();
    copy.git_with_input(&["pack-objects", "-q", "objects/pack/pack"], ids.as_bytes());
    copy.git(&["prune-packed"]);
    copy
}

#[test]
fn a_store_half_packed_reads_as_its_loose_copy() {
    let h = generated::history();
    let store = half_packed(h).to_full_store();
    assert_eq!(packs_in(&store).len(), 1);
    assert!(!store.is_empty(), "newer objects stay loose");
    reads_agree(h, &store);
}

#[test]
fn a_store_of_two_packs_and_a_multi_pack_index_reads_as_its_loose_copy() {
    let h = generated::history();
    let copy = half_packed(h);
    // The loose half into a second pack, then a multi-pack-index over both.
    copy.git(&["repack", "-dq"]);
    copy.git(&["multi-pack-index", "write"]);
    let store = copy.to_full_store();
    assert_eq!(packs_in(&store).len(), 2);
    assert!(store.file("objects/pack/multi-pack-index").is_some());
    assert!(store.is_empty(), "every object is packed");
    reads_agree(h, &store);
}

#[test]
fn thin_packs_git_push_sent_into_the_store_read_as_its_loose_copy() {
    let h = generated::history();
    let line: Vec<ObjectId> = h
        .oracle
        .git(&["rev-list", "--first-parent", "--reverse", &h.main.to_string()])
        .lines()
        .map(snapgit_tests::oid)
        .collect();
    let store = GitRepo::new();
    // Keep every push as the pack it arrived as (git explodes small ones into loose objects).
    store.git(&["config", "receive.unpackLimit", "1"]);
    let to = store.path().to_str().unwrap();
    let middle = line[line.len() / 2];
    h.oracle.git(&["push", "-q", to, &format!("{middle}:refs/heads/main")]);
    // The second push is thin: its deltas have bases only the first pack holds, which
    // receive-pack appends (index-pack --fix-thin).
    h.oracle
        .git(&["push", "-q", "--thin", to, &format!("{}:refs/heads/main", h.main)]);
    let packed = store.to_full_store();
    assert_eq!(packs_in(&packed).len(), 2, "each push left a pack");
    assert!(packed.is_empty(), "nothing arrived loose");
    reads_agree_at(h, &packed, h.main, &line);
}

#[test]
fn a_bare_clone_of_a_large_fast_import_history_reads_as_git_reads_it() {
    use snapgit_tests::fast_import;
    let source = GitRepo::new();
    source.git_with_input(&["fast-import", "--quiet"], &fast_import::stream());
    // What `git clone --bare` does over a transport: one pack, kept as it arrived.
    let clone = GitRepo::new();
    clone.git(&[
        "fetch",
        "-q",
        source.path().to_str().unwrap(),
        "+refs/heads/*:refs/heads/*",
    ]);
    let head = snapgit_tests::oid(&clone.git(&["rev-parse", "refs/heads/main"]));
    let store = clone.to_full_store();
    assert!(
        store.is_empty() && packs_in(&store).len() == 1,
        "one pack, nothing loose"
    );

    let mut ours: Vec<(String, String)> = read_all(&store, head)
        .into_iter()
        .map(|(path, id, _)| (path, id.to_string()))
        .collect();
    let mut git: Vec<(String, String)> = clone
        .git(&["ls-tree", "-r", "--format=%(path) %(objectname)", "refs/heads/main"])
        .lines()
        .map(|l| {
            let (path, id) = l.rsplit_once(' ').unwrap();
            (path.to_owned(), id.to_owned())
        })
        .collect();
    ours.sort();
    git.sort();
    assert_eq!(ours.len(), fast_import::FILES);
    assert_eq!(ours, git);

    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    for path in [fast_import::path(4321), fast_import::path(7), "d3/e2".to_owned()] {
        let git_log: Vec<ObjectId> = clone
            .git(&["log", "--format=%H", "refs/heads/main", "--", &path])
            .lines()
            .map(snapgit_tests::oid)
            .collect();
        assert_eq!(log(&store, &mut cache, head, Some(&path)), git_log, "log of {path}");
    }

    // A commit on top, written back as loose objects: git accepts the result.
    let request = snapgit_core::commit::Request::new(
        Some(head),
        vec![snapgit_core::commit::Change::put(
            fast_import::path(4321),
            "a new turn\n",
        )],
        snapgit_tests::signature(1_800_000_000),
        "on top of a clone",
    );
    let out = snapgit_tests::commit(&mut cache, &store, request).unwrap();
    clone.write_store(&store);
    clone.set_branch("main", &out.id);
    clone.fsck();
}

#[test]
fn gc_on_a_packed_store_keeps_loose_objects_only_packed_commits_reach() {
    let h = generated::history();
    let (git, store) = packed_copy(h, &[&["repack", "-adq"]]);
    // A new loose commit on top of a packed one: its tree reuses packed subtrees, and
    // only the packed history and the loose commit reach them.
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let request = snapgit_core::commit::Request::new(
        Some(h.main),
        vec![snapgit_core::commit::Change::put("new/file.md", "loose\n")],
        snapgit_tests::signature(2_000_000_000),
        "on top of a pack",
    );
    let out = snapgit_tests::commit(&mut cache, &store, request).unwrap();
    store
        .cas_ref(&CasRef {
            key: "refs/heads/top".into(),
            expected: None,
            new: Some(out.id),
        })
        .unwrap();
    // Garbage: a loose blob nothing reaches.
    let garbage = git.write_blob(b"nothing reaches this\n");
    store.insert_raw(
        garbage,
        std::fs::read(git.path().join(snapgit_core::object::loose_key(&garbage))).unwrap(),
    );
    let before_loose = store.ids().len();

    let options = CollectOptions {
        grace_ms: 0,
        ..CollectOptions::new(i64::MAX / 2)
    };
    let collected = drive::run(&mut Collect::new(&cache, options).unwrap(), &mut cache, &store).unwrap();
    assert_eq!(collected.deleted, 1, "only the garbage blob goes");
    assert_eq!(store.ids().len(), before_loose - 1);
    assert!(store.get(&garbage).is_none());
    assert!(!packs_in(&store).is_empty(), "packs are never deleted");
    // Everything still reads.
    assert_eq!(read_all(&store, out.id).len(), read_all(&h.store, h.main).len() + 1);
}

#[test]
fn broken_packs_are_corrupt_errors_not_panics() {
    let h = generated::history();
    let (_git, store) = packed_copy(h, &[&["repack", "-adq"]]);
    let pack = packs_in(&store).remove(0);
    let bytes = store.file(&pack.key).unwrap();
    for (what, broken) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            for i in (100..b.len()).step_by(997) {
                b[i] ^= 0x5a;
            }
            b
        }),
    ] {
        store.insert_file(pack.key.clone(), broken);
        let mut op = read::ReadFiles::new(h.main, "").unwrap();
        let result = drive::run(&mut op, &mut ObjectCache::new(gix_hash::Kind::Sha1), &store);
        let err = result.expect_err(what);
        assert!(
            matches!(
                err,
                read::Error::Object(
                    snapgit_core::object::Error::Corrupt { .. }
                        | snapgit_core::object::Error::HashMismatch { .. }
                        | snapgit_core::object::Error::NotFound { .. }
                )
            ),
            "{what}: {err}"
        );
    }
    let idx = pack.key.replace(".pack", ".idx");
    let mut index = store.file(&idx).unwrap();
    let at = index.len() / 2;
    index[at] ^= 1;
    store.insert_file(pack.key.clone(), bytes);
    store.insert_file(idx.clone(), index);
    let mut op = read::ReadCommit::new(h.main);
    let err = drive::run(&mut op, &mut ObjectCache::new(gix_hash::Kind::Sha1), &store).unwrap_err();
    assert!(err.to_string().contains(&idx), "{err}");
}
