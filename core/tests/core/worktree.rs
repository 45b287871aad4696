//! Folders compared with commits, checkouts planned, stat caches kept.

use bstr::BString;
use snapgit_core::{
    HashKind, Mode, ObjectCache, ObjectId,
    commit::Change,
    diff::ChangeKind,
    drive::MemoryStore,
    object,
    worktree::{
        self, CacheError, Checkout, CheckoutRequest, DiffRequest, Error, File, FolderError, Stat, StatCache, Unsafe,
    },
};

use crate::support::{commit, drive, sha1};

fn blob(data: &[u8]) -> ObjectId {
    object::blob_id(gix_hash::Kind::Sha1, data).unwrap()
}

/// A folder file, with its content given (as a face gives every file it hashed).
fn read(path: &str, data: &[u8]) -> File {
    File {
        path: path.into(),
        mode: Mode::Regular,
        id: blob(data),
        data: Some(data.to_vec()),
    }
}

/// A folder file known by id only (its stat was clean).
fn known(path: &str, data: &[u8]) -> File {
    File {
        data: None,
        ..read(path, data)
    }
}

fn fixture(store: &MemoryStore) -> ObjectId {
    let mut cache = sha1();
    let changes = vec![
        Change::put("a.md", "one\ntwo\n"),
        Change::put("docs/b.md", "b\n"),
        Change::put("docs/deep/c.md", "c\n"),
        Change::put("gone.md", "gone\n"),
    ];
    commit(&mut cache, store, None, changes).id
}

/// The folder diff of `request`, run to its end.
fn diffed(
    cache: &mut snapgit_core::ObjectCache,
    store: &MemoryStore,
    request: DiffRequest,
) -> snapgit_core::diff::tree::Output {
    let mut op = worktree::diff(cache, request).unwrap();
    drive(&mut op, cache, store).result.unwrap()
}

/// Each changed path with its kind.
fn kinds(out: &snapgit_core::diff::tree::Output) -> Vec<(String, ChangeKind)> {
    out.files.iter().map(|f| (f.path.to_string(), f.kind.clone())).collect()
}

#[test]
fn a_folder_equal_to_a_commit_has_its_tree_and_no_changes() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let mut cache = sha1();
    // Files in any order, some known by id only: the same tree.
    let folder = vec![
        known("gone.md", b"gone\n"),
        read("docs/deep/c.md", b"c\n"),
        known("a.md", b"one\ntwo\n"),
        known("docs/b.md", b"b\n"),
    ];
    let mut op = worktree::diff(&cache, DiffRequest::new(head, folder)).unwrap();
    let run = drive(&mut op, &mut cache, &store);
    let out = run.result.unwrap();
    assert!(out.files.is_empty());
    let info = crate::support::files(&store, head);
    assert_eq!(info.len(), 4);
    // `to` is the folder's tree, the commit's own.
    let mut op = snapgit_core::read::ReadCommit::new(head);
    let tree = snapgit_core::drive::run(&mut op, &mut sha1(), &store).unwrap().tree;
    assert_eq!(out.to, tree);
    // Only the commit was read: the root trees' ids matched.
    assert_eq!(run.rounds, 1);
}

#[test]
fn a_folder_diff_reports_kinds_lines_and_a_patch() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let mut cache = sha1();
    let folder = vec![
        read("a.md", b"one\n2\n"),
        known("docs/b.md", b"b\n"),
        read("docs/deep/moved.md", b"c\n"),
        read("new.md", b"n\n"),
    ];
    let mut request = DiffRequest::new(head, folder);
    request.patch = true;
    let out = diffed(&mut cache, &store, request);
    assert_eq!(
        kinds(&out),
        [
            ("a.md".into(), ChangeKind::Modified),
            (
                "docs/deep/moved.md".into(),
                ChangeKind::Renamed {
                    from: "docs/deep/c.md".into()
                }
            ),
            ("gone.md".into(), ChangeKind::Deleted),
            ("new.md".into(), ChangeKind::Added),
        ]
    );
    let lines = out.files[0].lines.unwrap();
    assert_eq!((lines.added, lines.removed), (1, 1));
    let patch = out.patch.unwrap();
    assert!(patch.starts_with(b"diff --git a/a.md b/a.md\n"), "{patch}");
}

#[test]
fn a_changed_file_without_content_must_be_in_storage() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let mut cache = sha1();
    let missing = blob(b"never stored\n");
    let folder = vec![known("a.md", b"never stored\n")];
    let mut op = worktree::diff(&cache, DiffRequest::new(head, folder)).unwrap();
    let err = drive(&mut op, &mut cache, &store).result.unwrap_err();
    assert!(
        matches!(&err, snapgit_core::diff::tree::Error::Object(object::Error::NotFound { id }) if *id == missing),
        "{err:?}"
    );
}

#[test]
fn bad_folders_are_refused_before_anything_is_read() {
    let cache = sha1();
    let head = blob(b"any");
    let refuse = |files: Vec<File>| match worktree::diff(&cache, DiffRequest::new(head, files)) {
        Err(snapgit_core::diff::tree::Error::Folder(err)) => err,
        other => panic!("expected a folder error, got {other:?}"),
    };
    assert!(matches!(
        refuse(vec![read("a", b"1"), read("a", b"2")]),
        FolderError::Duplicate { .. }
    ));
    assert!(matches!(
        refuse(vec![read("a", b"1"), read("a/b", b"2")]),
        FolderError::Duplicate { path } if path == "a/b"
    ));
    assert!(matches!(
        refuse(vec![read("x/../y", b"1")]),
        FolderError::InvalidPath(_)
    ));
    assert!(matches!(
        refuse(vec![read(".GIT/config", b"1")]),
        FolderError::InvalidPath(_)
    ));
    let mut wrong = read("a", b"1");
    wrong.data = Some(b"2".to_vec());
    assert!(matches!(refuse(vec![wrong]), FolderError::WrongId { .. }));
    let mut tree = read("a", b"1");
    tree.mode = Mode::Tree;
    assert!(matches!(refuse(vec![tree]), FolderError::NotAFile { .. }));
}

fn plan(store: &MemoryStore, request: CheckoutRequest) -> Result<worktree::CheckoutPlan, Error> {
    let mut cache = sha1();
    let mut op = Checkout::new(&cache, request)?;
    drive(&mut op, &mut cache, store).result
}

#[test]
fn a_checkout_writes_what_differs_and_deletes_what_the_commit_lacks() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let folder = vec![
        known("a.md", b"edited\n"),
        known("docs/b.md", b"b\n"),
        known("docs/deep/c.md", b"c\n"),
        known("docs/deep/extra/x.md", b"x\n"),
        known("new.md", b"n\n"),
    ];
    let out = plan(&store, CheckoutRequest::new(head, folder.clone())).unwrap();
    let writes: Vec<(String, Vec<u8>)> = out
        .writes
        .iter()
        .map(|w| (w.path.to_string(), w.file.data.clone()))
        .collect();
    assert_eq!(
        writes,
        [
            ("a.md".into(), b"one\ntwo\n".to_vec()),
            ("gone.md".into(), b"gone\n".to_vec())
        ]
    );
    // Deepest first.
    assert_eq!(
        out.deletes,
        [BString::from("docs/deep/extra/x.md"), BString::from("new.md")]
    );
    assert_eq!(out.unchanged, 2);

    // One folder only: files outside it are left alone.
    let mut request = CheckoutRequest::new(head, folder.clone());
    request.path = Some("docs".into());
    let out = plan(&store, request).unwrap();
    assert!(out.writes.is_empty());
    assert_eq!(out.deletes, [BString::from("docs/deep/extra/x.md")]);

    // One file.
    let mut request = CheckoutRequest::new(head, folder);
    request.path = Some("a.md".into());
    let out = plan(&store, request).unwrap();
    assert_eq!(out.writes.len(), 1);
    assert!(out.deletes.is_empty());
}

#[test]
fn a_checkout_never_writes_onto_untracked_paths() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    for untracked in ["a.md", "docs", "docs/deep/c.md/x", "GONE.md"] {
        let mut request = CheckoutRequest::new(head, Vec::new());
        request.untracked = vec![untracked.into()];
        let err = plan(&store, request).unwrap_err();
        assert!(
            matches!(&err, Error::Untracked { kept, .. } if kept == untracked),
            "{untracked}: {err:?}"
        );
    }
    // Untracked paths the commit does not touch are fine.
    let mut request = CheckoutRequest::new(head, Vec::new());
    request.untracked = vec!["node_modules".into(), "docs/b.md.bak".into()];
    assert_eq!(plan(&store, request).unwrap().writes.len(), 4);
}

/// A commit whose root tree has these raw entries: (mode, name, id).
fn hostile(store: &MemoryStore, entries: &[(&str, &str, ObjectId)]) -> ObjectId {
    let tree = put_tree(store, entries);
    let commit =
        format!("tree {tree}\nauthor A <a@b> 1700000000 +0000\ncommitter A <a@b> 1700000000 +0000\n\nhostile\n");
    let commit = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Commit, commit.as_bytes()).unwrap();
    store.insert_raw(commit.id, commit.loose);
    commit.id
}

fn put_blob(store: &MemoryStore, data: &[u8]) -> ObjectId {
    let object = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Blob, data).unwrap();
    store.insert_raw(object.id, object.loose);
    object.id
}

fn put_tree(store: &MemoryStore, entries: &[(&str, &str, ObjectId)]) -> ObjectId {
    let mut raw = Vec::new();
    for (mode, name, id) in entries {
        raw.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        raw.extend_from_slice(id.as_bytes());
    }
    let tree = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Tree, &raw).unwrap();
    store.insert_raw(tree.id, tree.loose);
    tree.id
}

#[test]
fn hostile_commits_are_refused_before_anything_is_written() {
    let store = MemoryStore::new();
    let link = put_blob(&store, b"/etc");
    let file = put_blob(&store, b"owned\n");
    // A symlink `A` and a folder `a` holding a file: on a case-insensitive disk the
    // file would be written through the link.
    let below = put_tree(&store, &[("100644", "passwd", file)]);
    let commit = hostile(&store, &[("120000", "A", link), ("40000", "a", below)]);
    let err = plan(&store, CheckoutRequest::new(commit, Vec::new())).unwrap_err();
    assert!(
        matches!(&err, Error::Unsafe { path, reason: Unsafe::SymlinkParent } if path == "a/passwd"),
        "{err:?}"
    );
    // Two files that differ only in case.
    let commit = hostile(&store, &[("100644", "README", file), ("100644", "readme", file)]);
    let err = plan(&store, CheckoutRequest::new(commit, Vec::new())).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Unsafe {
                reason: Unsafe::CaseCollision,
                ..
            }
        ),
        "{err:?}"
    );
    // `.git` spellings and `..` never get past reading the tree.
    for name in [".git", ".GIT", "git~1", ".."] {
        let commit = hostile(&store, &[("100644", name, file)]);
        let err = plan(&store, CheckoutRequest::new(commit, Vec::new())).unwrap_err();
        assert!(matches!(&err, Error::Read(_)), "{name}: {err:?}");
    }
}

fn stat(size: u64, mtime: i64) -> Stat {
    Stat {
        size,
        mtime: (mtime, 5),
        ctime: (mtime, 5),
        inode: 42,
        mode: Mode::Regular,
    }
}

#[test]
fn a_stat_cache_keeps_its_folders_trees() {
    let id = blob(b"x");
    let cache = StatCache::from_files(gix_hash::Kind::Sha1, vec![("d/a.md".into(), stat(1, 100), id)])
        .with_trees(vec![("d".into(), id, 1), ("".into(), id, 1)]);
    let read = StatCache::decode(gix_hash::Kind::Sha1, cache.encode(), 200).unwrap();
    assert_eq!(
        read,
        StatCache::decode(gix_hash::Kind::Sha1, read.encode(), 200).unwrap()
    );
    let collapsed = read.collapse(vec![known("d/a.md", b"x")], &[true]);
    assert_eq!(collapsed[0].mode, Mode::Tree);
}

#[test]
fn a_stat_cache_knows_clean_files_and_rehashes_racy_ones() {
    let id = blob(b"x");
    let cache = StatCache::from_files(
        gix_hash::Kind::Sha1,
        vec![
            ("b.md".into(), stat(1, 100), id),
            ("a.md".into(), stat(1, 100), id),
            ("racy.md".into(), stat(1, 200), id),
        ],
    );
    let bytes = cache.encode();
    let read = StatCache::decode(gix_hash::Kind::Sha1, &bytes[..], 200).unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(read.id("a.md".into(), &stat(1, 100)), Some(id));
    // Any stat change, or none known: hash it.
    assert_eq!(read.id("a.md".into(), &stat(2, 100)), None);
    assert_eq!(read.id("c.md".into(), &stat(1, 100)), None);
    // Modified in the second the cache was written: hash it again.
    assert_eq!(read.id("racy.md".into(), &stat(1, 200)), None);
    // A cache written later knows it.
    let later = StatCache::decode(gix_hash::Kind::Sha1, &bytes[..], 201).unwrap();
    assert_eq!(later.id("racy.md".into(), &stat(1, 200)), Some(id));
    // Asked in path order (a sorted scan), and out of it: the same answers.
    let mut in_order = later.in_order();
    assert_eq!(in_order.id("a.md".into(), &stat(1, 100)), Some(id));
    assert_eq!(in_order.id("aa.md".into(), &stat(1, 100)), None);
    assert_eq!(in_order.id("racy.md".into(), &stat(1, 200)), Some(id));
    assert_eq!(in_order.id("b.md".into(), &stat(1, 100)), Some(id));
    assert_eq!(in_order.id("b.md".into(), &stat(9, 100)), None);
    assert_eq!(in_order.id("z.md".into(), &stat(1, 100)), None);
    // Back to the start after the walk passed the end, and the same path twice.
    assert_eq!(in_order.id("a.md".into(), &stat(1, 100)), Some(id));
    assert_eq!(in_order.id("a.md".into(), &stat(1, 100)), Some(id));
    assert_eq!(in_order.id("b.md".into(), &stat(1, 100)), Some(id));
}

#[test]
fn a_damaged_stat_cache_is_refused_whole() {
    let cache = StatCache::from_files(gix_hash::Kind::Sha1, vec![("a.md".into(), stat(1, 100), blob(b"x"))]);
    let bytes = cache.encode();
    for at in [0, 25, bytes.len() / 2, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        assert!(
            StatCache::decode(gix_hash::Kind::Sha1, damaged, 200).is_err(),
            "byte {at}"
        );
    }
    for len in [0, 7, 20, bytes.len() - 1] {
        assert!(
            StatCache::decode(gix_hash::Kind::Sha1, &bytes[..len], 200).is_err(),
            "{len} bytes"
        );
    }
    assert_eq!(
        StatCache::decode(gix_hash::Kind::Sha1, b"not a cache at all", 200),
        Err(CacheError::Format)
    );
}

/// The files of [`fixture`]'s commit, as a scan that knew them finds them.
fn fixture_files() -> Vec<File> {
    vec![
        known("a.md", b"one\ntwo\n"),
        known("docs/b.md", b"b\n"),
        known("docs/deep/c.md", b"c\n"),
        known("gone.md", b"gone\n"),
    ]
}

#[test]
fn folders_none_of_whose_files_changed_are_given_whole() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let kind = gix_hash::Kind::Sha1;
    let files = fixture_files();
    // The folders' trees are the commit's.
    let trees = worktree::folder_trees(kind, files.clone()).unwrap();
    let names: Vec<(String, u64)> = trees.iter().map(|(p, _, n)| (p.to_string(), *n)).collect();
    assert_eq!(names, [("".into(), 4), ("docs".into(), 2), ("docs/deep".into(), 1)]);
    let mut op = snapgit_core::read::ReadCommit::new(head);
    assert_eq!(
        trees[0].1,
        snapgit_core::drive::run(&mut op, &mut sha1(), &store).unwrap().tree
    );
    let cache = StatCache::from_files(kind, Vec::new()).with_trees(trees.clone());
    // A cache of the files themselves makes the same trees.
    let entries = files.iter().map(|f| (f.path.clone(), stat(1, 100), f.id)).collect();
    let own = StatCache::from_files(kind, entries).with_folder_trees();
    assert_eq!(
        own.whole_folders(4, |i| files[i].path.as_slice(), &[true; 4]),
        cache.whole_folders(4, |i| files[i].path.as_slice(), &[true; 4])
    );
    // Paths out of order: nothing given whole (the ranges could not be found).
    let paths: [&[u8]; 4] = [b"a.md", b"docs/deep/c.md", b"docs/b.md", b"gone.md"];
    assert_eq!(cache.whole_folders(4, |i| paths[i], &[true; 4]), []);

    // All clean: `docs` whole.
    let collapsed = cache.collapse(files.clone(), &[true; 4]);
    let shown: Vec<(String, Mode)> = collapsed.iter().map(|f| (f.path.to_string(), f.mode)).collect();
    assert_eq!(
        shown,
        [
            ("a.md".into(), Mode::Regular),
            ("docs".into(), Mode::Tree),
            ("gone.md".into(), Mode::Regular)
        ]
    );
    // One file below `docs` changed: `docs/deep` still whole.
    let mut edited = files.clone();
    edited[1] = read("docs/b.md", b"B\n");
    let collapsed = cache.collapse(edited.clone(), &[true, false, true, true]);
    let shown: Vec<String> = collapsed.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(shown, ["a.md", "docs/b.md", "docs/deep", "gone.md"]);
    // A file more below `docs`: nothing there is whole.
    let mut grown = files.clone();
    grown.insert(3, read("docs/deep/new.md", b"n\n"));
    let collapsed = cache.collapse(grown.clone(), &[true, true, true, false, true]);
    assert_eq!(collapsed.len(), 5);

    // The same diff, whole folders or not.
    for (full, flags) in [
        (edited, vec![true, false, true, true]),
        (grown, vec![true, true, true, false, true]),
    ] {
        let mut cache_a = sha1();
        let mut op = worktree::diff(&cache_a, DiffRequest::new(head, full.clone())).unwrap();
        let expected = drive(&mut op, &mut cache_a, &store).result.unwrap();
        let mut cache_b = sha1();
        let mut op = worktree::diff(&cache_b, DiffRequest::new(head, cache.collapse(full, &flags))).unwrap();
        let got = drive(&mut op, &mut cache_b, &store).result.unwrap();
        assert_eq!(got.files, expected.files);
        assert_eq!(got.to, expected.to);
    }
}

#[test]
fn a_stat_cache_vouches_for_the_trees_of_the_folders_not_given_whole() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let kind = gix_hash::Kind::Sha1;
    let files = fixture_files();
    let entries = files.iter().map(|f| (f.path.clone(), stat(1, 100), f.id)).collect();
    let cache = StatCache::from_files(kind, entries).with_folder_trees();
    let trees = worktree::folder_trees(kind, files.clone()).unwrap();
    let tree = |path: &str| trees.iter().find(|t| t.0 == path).unwrap().1;

    // `docs/b.md` edited, `gone.md` deleted, `new.md` added: `docs/deep` stays whole.
    let mut now = files.clone();
    now[1] = read("docs/b.md", b"B\n");
    now[3] = read("new.md", b"n\n");
    let collapsed = cache.collapse(now, &[true, false, true, false]);
    let built = cache.known_trees(&collapsed);
    // The root and `docs` as the cache knew them: the commit's own trees.
    assert_eq!(built.len(), 2);
    // Inflated for a host to hold, each reads back as the tree its key names.
    let inflated = built.inflated();
    assert_eq!(inflated.len(), 2);
    for (key, bytes) in &inflated {
        let id = ["", "docs"]
            .map(tree)
            .into_iter()
            .find(|id| object::loose_key(id) == *key)
            .unwrap();
        assert!(
            matches!(object::decode_loose(&id, bytes, 1 << 20), Ok(object::Object::Tree(_))),
            "{key}"
        );
    }
    let mut warm = sha1();
    warm.keep(built);
    for path in ["", "docs"] {
        assert!(warm.contains(&tree(path)), "{path:?}");
    }
    assert!(!warm.contains(&tree("docs/deep")));

    // Compared with the head, they need no reads: storage without them will do.
    let mut cold = sha1();
    let mut op = worktree::diff(&cold, DiffRequest::new(head, collapsed.clone())).unwrap();
    let expected = drive(&mut op, &mut cold, &store).result.unwrap();
    for path in ["", "docs"] {
        store.remove(&tree(path));
    }
    let mut op = worktree::diff(&warm, DiffRequest::new(head, collapsed.clone())).unwrap();
    let got = drive(&mut op, &mut warm, &store);
    assert_eq!(got.result.unwrap().files, expected.files);
    let mut op = worktree::diff(&sha1(), DiffRequest::new(head, collapsed.clone())).unwrap();
    assert!(
        drive(&mut op, &mut sha1(), &store).result.is_err(),
        "the trees are gone from storage"
    );

    // A scan of `docs` alone (`--path docs`): the folders outside it go whole.
    let scoped: Vec<File> = collapsed
        .iter()
        .filter(|f| f.path.starts_with(b"docs"))
        .cloned()
        .collect();
    let mut warm = sha1();
    warm.keep(cache.known_trees(&scoped));
    assert!(warm.contains(&tree("")) && warm.contains(&tree("docs")) && !warm.contains(&tree("docs/deep")));

    // A cache whose ids are not the commit's builds trees no commit has: harmless.
    let stale =
        StatCache::from_files(kind, vec![("docs/b.md".into(), stat(1, 100), blob(b"old"))]).with_trees(trees.clone());
    let built = stale.known_trees(&collapsed);
    let mut other = sha1();
    other.keep(built);
    assert!(!other.contains(&tree("")) && !other.contains(&tree("docs")));
    // One without trees (or given nothing whole) builds none it need not.
    assert!(StatCache::new(kind).known_trees(&collapsed).is_empty());
}

/// [`StatCache::collapse`] as its documentation defines it, written plainly: each file in
/// turn, under the outermost folder the cache knows whose files are exactly as many as
/// the cache counted and all clean, that folder given once in their place.
fn collapse_by_definition(trees: &[(BString, ObjectId, u64)], files: &[File], clean: &[bool]) -> Vec<(String, Mode)> {
    let below =
        |path: &BString, dir: &BString| path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/';
    let mut out: Vec<(String, Mode)> = Vec::new();
    for file in files {
        let mut around: Vec<&(BString, ObjectId, u64)> = trees
            .iter()
            .filter(|(dir, _, _)| !dir.is_empty() && below(&file.path, dir))
            .collect();
        around.sort_by_key(|(dir, _, _)| dir.len());
        let whole = around.into_iter().find(|(dir, _, count)| {
            let inside: Vec<usize> = (0..files.len()).filter(|&i| below(&files[i].path, dir)).collect();
            inside.len() as u64 == *count && inside.iter().all(|&i| clean[i])
        });
        match whole {
            Some((dir, _, _)) => {
                let shown = (dir.to_string(), Mode::Tree);
                if out.last() != Some(&shown) {
                    out.push(shown);
                }
            }
            None => out.push((file.path.to_string(), file.mode)),
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Folders named so that path order and folder order differ (`a.b/` sorts before
    /// `a/`), files the cache knew, files it did not, files gone, and any mix of clean.
    #[test]
    fn collapse_gives_whole_exactly_the_folders_its_definition_does(
        picks in proptest::collection::vec((0usize..4, 0usize..4, 0usize..4, 0usize..3), 1..40),
        extra in proptest::collection::vec((0usize..4, 0usize..4, 0usize..3), 0..4),
        gone in proptest::collection::vec(0usize..40, 0..4),
        dirty in proptest::collection::vec(0usize..40, 0..6),
    ) {
        const NAMES: [&str; 4] = ["a", "a.b", "a-", "b"];
        let path = |parts: &[usize], leaf: usize| {
            let mut p: Vec<&str> = parts.iter().map(|&i| NAMES[i]).collect();
            p.push(["x.md", "y", "z0"][leaf]);
            p.join("/")
        };
        // Folder names never also file names: files end in a leaf name of their own.
        let mut known_paths: Vec<String> =
            picks.iter().map(|&(a, b, depth, leaf)| path(&[a, b][..depth.min(2)], leaf)).collect();
        known_paths.sort();
        known_paths.dedup();
        let known_files: Vec<File> = known_paths.iter().map(|p| known(p, p.as_bytes())).collect();
        let trees = worktree::folder_trees(HashKind::Sha1, known_files.clone()).unwrap();
        let cache = StatCache::from_files(HashKind::Sha1, Vec::new()).with_trees(trees.clone());
        // The folder now: some files gone, some new.
        let mut now: Vec<File> = known_files
            .iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .map(|(_, f)| f.clone())
            .collect();
        for &(a, depth, leaf) in &extra {
            let p = path(&[a, 3][..depth.min(2)], leaf);
            if !now.iter().any(|f| f.path == p.as_str()) {
                now.push(read(&p, b"new"));
            }
        }
        now.sort_by(|a, b| a.path.cmp(&b.path));
        let clean: Vec<bool> = now
            .iter()
            .enumerate()
            .map(|(i, f)| f.data.is_none() && !dirty.contains(&i))
            .collect();
        let expected = collapse_by_definition(&trees, &now, &clean);
        let collapsed = cache.collapse(now.clone(), &clean);
        let got: Vec<(String, Mode)> = collapsed.iter().map(|f| (f.path.to_string(), f.mode)).collect();
        proptest::prop_assert_eq!(got, expected);

        // A cache of the known files' stats vouches for exactly the trees of theirs that a
        // collapsed file is in (the root always), every other folder given whole.
        let entries = known_files.iter().map(|f| (f.path.clone(), stat(1, 100), f.id)).collect();
        let own = StatCache::from_files(HashKind::Sha1, entries).with_folder_trees();
        let collapsed = own.collapse(now, &clean);
        let mut warm = ObjectCache::new(HashKind::Sha1);
        warm.keep(own.known_trees(&collapsed));
        let inside = |dir: &BString, path: &BString| {
            dir.is_empty() || (path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/')
        };
        for (dir, id, _) in &trees {
            let open = dir.is_empty() || collapsed.iter().any(|f| f.mode != Mode::Tree && inside(dir, &f.path));
            proptest::prop_assert_eq!(warm.contains(id), open, "{}", dir);
        }
    }
}

#[test]
fn an_ignore_file_s_patterns_apply_below_its_folder_as_git_reads_them() {
    use snapgit_core::policy::{Policy, ignore_file_patterns};
    let text = "# comment\n\n*.log\r\n!keep.log\n/build\ndist/\na/b\ntrail   \nspace\\ \n\\#hash\n";
    assert_eq!(
        ignore_file_patterns("".into(), text),
        [
            "*.log",
            "!keep.log",
            "/build",
            "dist/",
            "a/b",
            "trail",
            "space\\ ",
            "\\#hash"
        ]
    );
    assert_eq!(
        ignore_file_patterns("sub/x*".into(), text),
        [
            "/sub/x\\*/**/*.log",
            "!/sub/x\\*/**/keep.log",
            "/sub/x\\*/build",
            "/sub/x\\*/**/dist/",
            "/sub/x\\*/a/b",
            "/sub/x\\*/**/trail",
            "/sub/x\\*/**/space\\ ",
            "/sub/x\\*/**/\\#hash",
        ]
    );
    let policy = Policy::new()
        .exclude(ignore_file_patterns("sub/x*".into(), text))
        .unwrap();
    let excluded = |path: &str| policy.excluded(path.into()).is_some();
    assert!(excluded("sub/x*/a.log") && excluded("sub/x*/deep/er/a.log"));
    assert!(!excluded("sub/xy/a.log") && !excluded("a.log") && !excluded("sub/a.log"));
    assert!(!excluded("sub/x*/keep.log"));
    assert!(excluded("sub/x*/build") && !excluded("sub/x*/deep/build"));
    assert!(excluded("sub/x*/deep/dist/f") && excluded("sub/x*/a/b") && !excluded("sub/x*/c/a/b"));
    assert!(excluded("sub/x*/space ") && excluded("sub/x*/#hash"));
    // Read as a file, the verdict names the file and the line.
    let policy = Policy::new().exclude_file("sub/x*/.gitignore".into(), text).unwrap();
    assert_eq!(
        policy.excluded("sub/x*/deep/a.log".into()),
        Some("sub/x*/.gitignore: *.log")
    );
    assert_eq!(policy.excluded("sub/x*/keep.log".into()), None);
    assert_eq!(
        policy.excluded("sub/x*/space ".into()),
        Some("sub/x*/.gitignore: space\\ ")
    );
    let root = Policy::new().exclude_file(".gitignore".into(), "/build\n").unwrap();
    assert_eq!(root.excluded("build/x".into()), Some(".gitignore: /build"));
    assert_eq!(root.excluded("a/build".into()), None);
    // A file kept anywhere, read for the whole folder: named as given.
    let rules = Policy::new()
        .exclude_from("../rules.txt", "*.log\n!keep.log\n")
        .unwrap();
    assert_eq!(rules.excluded("deep/a.log".into()), Some("../rules.txt: *.log"));
    assert_eq!(rules.excluded("deep/keep.log".into()), None);
}

#[test]
fn what_the_folder_leaves_out_is_no_change_and_a_bad_path_of_it_is_refused() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let mut cache = sha1();
    // Excludes left out `docs/` and `gone.md`; `new.md` has `gone.md`'s content and is no
    // rename of it.
    let folder = vec![read("a.md", b"one\n2\n"), read("new.md", b"gone\n")];
    let mut request = DiffRequest::new(head, folder);
    request.untracked = vec!["docs".into(), "gone.md".into()];
    let out = diffed(&mut cache, &store, request);
    assert_eq!(
        kinds(&out),
        [
            ("a.md".into(), ChangeKind::Modified),
            ("new.md".into(), ChangeKind::Added)
        ]
    );
    for bad in ["../x", "/abs", ""] {
        let mut request = DiffRequest::new(head, vec![]);
        request.untracked = vec![bad.into()];
        assert!(
            matches!(
                worktree::diff(&cache, request),
                Err(snapgit_core::diff::tree::Error::Folder(FolderError::InvalidPath(_)))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn a_scan_leaves_out_what_a_pattern_the_size_cap_or_the_type_says_and_names_why() {
    use snapgit_core::{
        policy::Policy,
        worktree::{DEFAULT_MAX_FILE_BYTES, Found, Skip, skip},
    };
    let policy = Policy::new().exclude(["*.log", "build/"]).unwrap();
    let why = |path: &str, found| skip(&policy, path.into(), found).map(|s| s.to_string());
    assert_eq!(
        why("a.log", Found::File { size: 1 }).as_deref(),
        Some("excluded by \"*.log\"")
    );
    assert_eq!(why("build", Found::Folder).as_deref(), Some("excluded by \"build/\""));
    // A folder pattern leaves out no file of that name.
    assert_eq!(why("build", Found::File { size: 1 }), None);
    // The default cap is the largest file a commit may write.
    assert_eq!(DEFAULT_MAX_FILE_BYTES, snapgit_core::Limits::default().max_file_bytes);
    assert_eq!(
        why(
            "a.bin",
            Found::File {
                size: DEFAULT_MAX_FILE_BYTES
            }
        ),
        None
    );
    assert_eq!(
        skip(
            &policy,
            "a.bin".into(),
            Found::File {
                size: DEFAULT_MAX_FILE_BYTES + 1
            }
        ),
        Some(Skip::TooLarge {
            size: DEFAULT_MAX_FILE_BYTES + 1,
            limit: DEFAULT_MAX_FILE_BYTES
        })
    );
    // A symlink is never too large; what is neither file, symlink nor folder is left out.
    let mut capped = Policy::new();
    capped.max_file_bytes = Some(10);
    assert_eq!(skip(&capped, "link".into(), Found::Symlink), None);
    assert_eq!(
        skip(&capped, "big".into(), Found::File { size: 11 })
            .map(|s| s.to_string())
            .as_deref(),
        Some("larger than 10 bytes (11 bytes)")
    );
    assert_eq!(
        skip(&capped, "fifo".into(), Found::Other)
            .map(|s| s.to_string())
            .as_deref(),
        Some("not a regular file, folder or symlink")
    );
}

#[test]
fn a_scan_reads_a_folders_gitignore_when_asked_then_its_snapgitignore_below_the_root() {
    use snapgit_core::worktree::ignore_files;
    assert_eq!(ignore_files(true, false), [] as [&str; 0]);
    assert_eq!(ignore_files(true, true), [".gitignore"]);
    assert_eq!(ignore_files(false, false), [".snapgitignore"]);
    assert_eq!(ignore_files(false, true), [".gitignore", ".snapgitignore"]);
}
