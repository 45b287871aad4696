use std::collections::BTreeMap;

use proptest::prelude::*;
use snapgit_core::{
    Limits, Mode, ObjectCache, ObjectId,
    commit::{self, Change, Error, Existing, Request},
    diff::{ChangeKind, LineStats},
    drive::MemoryStore,
    object::{self, Error as ObjectError},
    path::Reason,
};

use crate::support::{Fault, commit, drive, drive_with, files, me, sha1, try_commit};

fn base(store: &MemoryStore, cache: &mut ObjectCache) -> commit::Output {
    commit(
        cache,
        store,
        None,
        vec![
            Change::put("a/b/c/deep.md", "one\ntwo\nthree\n"),
            Change::put("a/b/sibling.md", "sibling\n"),
            Change::put("a/top.json", "{}\n"),
            Change::put("root.md", "root\n"),
            Change::put("x/only.md", "only\n"),
        ],
    )
}

#[test]
fn commit_then_read_gives_the_files() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let read = files(&store, first.id);
    assert_eq!(read.len(), 5);
    assert_eq!(read["a/b/c/deep.md"], b"one\ntwo\nthree\n");
    assert_eq!(read["x/only.md"], b"only\n");
    assert!(first.files.iter().all(|f| f.kind == ChangeKind::Added));
    assert_eq!(first.files[0].path, "a/b/c/deep.md");
    assert_eq!(first.files[0].lines, Some(LineStats { added: 3, removed: 0 }));
}

#[test]
fn warm_commit_asks_nothing_and_writes_only_the_delta() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let request = Request::new(
        Some(first.id),
        vec![Change::put("a/b/c/deep.md", "one\n2\nthree\nfour\n")],
        me(),
        "edit",
    );
    let mut op = commit::Commit::new(&cache, request).unwrap();
    let run = drive(&mut op, &mut cache, &store);
    let out = run.result.unwrap();
    assert_eq!(run.rounds, 0, "every touched tree and blob is cached");
    // 1 blob + 4 trees (root, a, a/b, a/b/c) + 1 commit.
    let kinds: Vec<_> = out.objects.iter().map(|o| o.kind).collect();
    use gix_object::Kind::*;
    assert_eq!(kinds, vec![Blob, Tree, Tree, Tree, Tree, Commit]);
    assert_eq!(out.files.len(), 1);
    assert_eq!(out.files[0].kind, ChangeKind::Modified);
    assert_eq!(out.files[0].lines, Some(LineStats { added: 2, removed: 1 }));
}

#[test]
fn cold_commit_needs_at_most_depth_plus_two_rounds() {
    let store = MemoryStore::new();
    let first = base(&store, &mut sha1());
    // Deepest path has 4 components: commit, 4 tree levels, old blobs = 6 rounds.
    let changes = vec![
        Change::put("a/b/c/deep.md", "changed\n"),
        Change::put("root.md", "changed\n"),
        Change::delete("x/only.md"),
    ];
    let mut cache = sha1();
    let mut op = commit::Commit::new(&cache, Request::new(Some(first.id), changes.clone(), me(), "m")).unwrap();
    let run = drive(&mut op, &mut cache, &store);
    run.result.unwrap();
    assert_eq!(run.rounds, 6);
    assert_eq!(run.asked[0], vec![first.id]);
    assert_eq!(run.asked[1], vec![first.tree]);
    // The old blob of root.md is asked for together with the level-1 trees.
    assert_eq!(run.asked[2].len(), 3, "trees a and x, blob root.md: {:?}", run.asked[2]);

    let mut cache = sha1();
    let mut request = Request::new(Some(first.id), changes, me(), "m");
    request.line_stats = false;
    let mut op = commit::Commit::new(&cache, request).unwrap();
    let run = drive(&mut op, &mut cache, &store);
    let out = run.result.unwrap();
    assert_eq!(run.rounds, 5, "without line counts no blob is read");
    assert!(out.files.iter().all(|f| f.lines.is_none()));
}

#[test]
fn unchanged_content_is_not_written_and_empty_commits_are_refused() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let err = try_commit(
        &mut cache,
        &store,
        Some(first.id),
        vec![Change::put("root.md", "root\n")],
    )
    .unwrap_err();
    assert!(matches!(err, Error::EmptyCommit), "{err}");

    let mut request = Request::new(Some(first.id), vec![Change::put("root.md", "root\n")], me(), "again");
    request.allow_empty = true;
    let mut op = commit::Commit::new(&cache, request).unwrap();
    let out = drive(&mut op, &mut cache, &store).result.unwrap();
    assert_eq!(out.tree, first.tree);
    assert_eq!(out.objects.len(), 1, "only the commit is new");
    assert!(out.files.is_empty());

    let err = commit::Commit::new(&cache, Request::new(Some(first.id), vec![], me(), "nothing")).unwrap_err();
    assert!(matches!(err, Error::EmptyCommit));
}

#[test]
fn a_blob_equal_to_a_sibling_is_not_written_again() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let out = commit(
        &mut cache,
        &store,
        Some(first.id),
        vec![Change::put("copy.md", "root\n")],
    );
    assert!(out.objects.iter().all(|o| o.kind != gix_object::Kind::Blob));
}

#[test]
fn deleting_the_last_file_removes_its_folders() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let out = commit(
        &mut cache,
        &store,
        Some(first.id),
        vec![Change::delete("a/b/c/deep.md"), Change::delete("x/only.md")],
    );
    let listing = files(&store, out.id);
    assert_eq!(
        listing.keys().collect::<Vec<_>>(),
        ["a/b/sibling.md", "a/top.json", "root.md"]
    );
    let deleted: Vec<_> = out.files.iter().map(|f| (f.path.to_string(), f.lines)).collect();
    assert_eq!(
        deleted,
        vec![
            ("a/b/c/deep.md".to_string(), Some(LineStats { added: 0, removed: 3 })),
            ("x/only.md".to_string(), Some(LineStats { added: 0, removed: 1 })),
        ]
    );

    let all = commit(
        &mut cache,
        &store,
        Some(out.id),
        vec![Change::delete("a"), Change::delete("root.md")],
    );
    assert_eq!(
        all.tree.to_string(),
        "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        "the empty tree"
    );
    assert_eq!(all.files.len(), 3, "a folder delete lists every file in it");
    assert!(files(&store, all.id).is_empty());
}

#[test]
fn renames_move_files_and_folders_without_new_blobs() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let out = commit(
        &mut cache,
        &store,
        Some(first.id),
        vec![
            Change::rename("a/b", "moved/b2"),
            Change::rename("root.md", "x/root.md"),
        ],
    );
    assert!(out.objects.iter().all(|o| o.kind != gix_object::Kind::Blob));
    let listing = files(&store, out.id);
    assert_eq!(
        listing.keys().collect::<Vec<_>>(),
        [
            "a/top.json",
            "moved/b2/c/deep.md",
            "moved/b2/sibling.md",
            "x/only.md",
            "x/root.md"
        ]
    );
    let renames: Vec<_> = out
        .files
        .iter()
        .map(|f| match &f.kind {
            ChangeKind::Renamed { from } => (from.to_string(), f.path.to_string()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        renames,
        [
            ("a/b/c/deep.md".into(), "moved/b2/c/deep.md".into()),
            ("a/b/sibling.md".into(), "moved/b2/sibling.md".into()),
            ("root.md".into(), "x/root.md".into()),
        ]
    );
}

#[test]
fn modes_and_binary_files() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let out = commit(
        &mut cache,
        &store,
        Some(first.id),
        vec![
            Change::Put {
                path: "root.md".into(),
                data: b"root\n".to_vec(),
                mode: Mode::Executable,
            },
            Change::Put {
                path: "link".into(),
                data: b"root.md".to_vec(),
                mode: Mode::Symlink,
            },
            Change::put("image.bin", vec![0u8, 1, 2, 3]),
        ],
    );
    let by_path: BTreeMap<_, _> = out.files.iter().map(|f| (f.path.to_string(), f)).collect();
    assert!(by_path["image.bin"].binary);
    assert_eq!(by_path["image.bin"].lines, None);
    assert_eq!(by_path["root.md"].kind, ChangeKind::Modified);
    assert_eq!(by_path["root.md"].new.unwrap().1, Mode::Executable);
    assert_eq!(by_path["root.md"].lines, Some(LineStats::default()));
    assert_eq!(by_path["link"].new.unwrap().1, Mode::Symlink);
    assert_eq!(by_path["link"].lines, Some(LineStats { added: 1, removed: 0 }));
}

fn request_error(changes: Vec<Change>) -> Error {
    commit::Commit::new(&sha1(), Request::new(None, changes, me(), "m")).unwrap_err()
}

#[test]
fn bad_paths_are_refused_by_name() {
    let long = "a/".repeat(2100) + "f";
    let cases: Vec<(&str, Reason)> = vec![
        ("", Reason::Empty),
        ("/abs", Reason::Absolute),
        ("dir/", Reason::TrailingSlash),
        ("a//b", Reason::EmptyComponent),
        ("./a", Reason::Relative),
        ("a/../b", Reason::Relative),
        (".git/config", Reason::DotGit),
        ("sub/.GIT/x", Reason::DotGit),
        ("GIT~1/x", Reason::DotGit),
        (".git./x", Reason::DotGit),
        (".gi\u{200c}t/x", Reason::DotGit),
        ("a\0b", Reason::Nul),
        (long.as_str(), Reason::TooLong),
    ];
    for (path, reason) in cases {
        match request_error(vec![Change::put(path, "x")]) {
            Error::InvalidPath(err) => {
                assert_eq!(err.reason, reason, "{path:?}");
                assert_eq!(err.path, path, "the error names the path");
            }
            other => panic!("{path:?}: {other}"),
        }
        assert!(matches!(
            request_error(vec![Change::delete(path)]),
            Error::InvalidPath(_)
        ));
        assert!(matches!(
            request_error(vec![Change::rename("ok", path)]),
            Error::InvalidPath(_)
        ));
    }
}

#[test]
fn bad_requests_are_refused_before_any_read() {
    assert!(matches!(
        request_error(vec![Change::put("a", "1"), Change::put("a", "2")]),
        Error::DuplicatePath { path } if path == "a"
    ));
    assert!(matches!(
        request_error(vec![Change::put("a", "1"), Change::delete("a/b")]),
        Error::OverlappingPaths { path, parent } if path == "a/b" && parent == "a"
    ));
    assert!(matches!(
        request_error(vec![Change::rename("a", "b"), Change::put("b/c", "x")]),
        Error::OverlappingPaths { .. }
    ));
    assert!(matches!(
        request_error(vec![Change::Put {
            path: "t".into(),
            data: vec![],
            mode: Mode::Tree
        }]),
        Error::InvalidMode { mode: Mode::Tree, .. }
    ));
    let mut bad = me();
    bad.email = "a<b@example.com".into();
    let err = commit::Commit::new(&sha1(), Request::new(None, vec![Change::put("a", "1")], bad, "m")).unwrap_err();
    assert!(matches!(err, Error::InvalidSignature { ref value, .. } if value == "a<b@example.com"));
    let mut far = me();
    far.time.offset_minutes = 100 * 60;
    assert!(matches!(
        commit::Commit::new(&sha1(), Request::new(None, vec![Change::put("a", "1")], far, "m")),
        Err(Error::InvalidSignature { .. })
    ));
    assert!(matches!(
        commit::Commit::new(&sha1(), Request::new(None, vec![Change::put("a", "1")], me(), "a\0b")),
        Err(Error::InvalidMessage)
    ));

    let limits = Limits {
        max_file_bytes: 4,
        max_changes: 2,
        ..Limits::default()
    };
    let cache = ObjectCache::with_limits(gix_hash::Kind::Sha1, limits);
    let err =
        commit::Commit::new(&cache, Request::new(None, vec![Change::put("big", "12345")], me(), "m")).unwrap_err();
    assert!(matches!(err, Error::FileTooLarge { ref path, size: 5, limit: 4 } if path == "big"));
    let three = vec![Change::put("a", "1"), Change::put("b", "2"), Change::put("c", "3")];
    assert!(matches!(
        commit::Commit::new(&cache, Request::new(None, three, me(), "m")),
        Err(Error::TooManyChanges { count: 3, limit: 2 })
    ));
}

#[test]
fn changes_that_do_not_fit_the_parent_tree_are_refused() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = base(&store, &mut cache);
    let parent = Some(first.id);
    let cases = vec![
        (vec![Change::delete("missing.md")], "PathNotFound missing.md"),
        (vec![Change::delete("a/b/c/deep.md/x")], "PathNotFound a/b/c/deep.md/x"),
        (vec![Change::rename("nope", "other")], "PathNotFound nope"),
        (vec![Change::put("root.md/inner", "x")], "PathConflict root.md File"),
        (vec![Change::put("a/b", "x")], "PathConflict a/b Folder"),
        (
            vec![Change::rename("root.md", "x/only.md")],
            "PathConflict x/only.md File",
        ),
    ];
    for (changes, expected) in cases {
        let err = try_commit(&mut cache, &store, parent, changes).unwrap_err();
        let got = match &err {
            Error::PathNotFound { path } => format!("PathNotFound {path}"),
            Error::PathConflict { at, existing, .. } => format!("PathConflict {at} {existing:?}"),
            other => format!("{other}"),
        };
        assert_eq!(got, expected);
    }
    let _ = Existing::File;
}

#[test]
fn faulty_storage_answers_are_typed_errors() {
    let store = MemoryStore::new();
    let first = base(&store, &mut sha1());
    let second = commit(
        &mut sha1(),
        &store,
        Some(first.id),
        vec![Change::put("root.md", "new\n")],
    );
    let changes = vec![Change::put("a/b/c/deep.md", "x\n")];
    let attempt = |faults: BTreeMap<ObjectId, Fault>, parent: ObjectId| {
        let mut cache = sha1();
        let mut op = commit::Commit::new(&cache, Request::new(Some(parent), changes.clone(), me(), "m")).unwrap();
        drive_with(&mut op, &mut cache, &store, &faults).result.unwrap_err()
    };

    let err = attempt(BTreeMap::from([(first.tree, Fault::Missing)]), first.id);
    assert!(
        matches!(err, Error::Object(ObjectError::NotFound { id }) if id == first.tree),
        "{err}"
    );

    let err = attempt(BTreeMap::from([(first.tree, Fault::Corrupt)]), first.id);
    assert!(
        matches!(err, Error::Object(ObjectError::Corrupt { id, .. } | ObjectError::HashMismatch { id, .. }) if id == first.tree),
        "{err}"
    );

    let err = attempt(BTreeMap::from([(first.tree, Fault::Substitute(second.tree))]), first.id);
    assert!(
        matches!(err, Error::Object(ObjectError::HashMismatch { id, actual }) if id == first.tree && actual == second.tree),
        "{err}"
    );

    let err = attempt(
        BTreeMap::from([(first.tree, Fault::Bytes(b"not zlib".to_vec()))]),
        first.id,
    );
    assert!(matches!(err, Error::Object(ObjectError::Corrupt { .. })), "{err}");

    // A parent id that names a tree is the wrong kind of object.
    let err = attempt(BTreeMap::new(), first.tree);
    assert!(
        matches!(
            err,
            Error::Object(ObjectError::WrongKind {
                expected: gix_object::Kind::Commit,
                ..
            })
        ),
        "{err}"
    );

    // An object over the inflate limit.
    let big = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Blob, &vec![b'x'; 10_000]).unwrap();
    store.put_many_for_test(&big);
    let mut cache = ObjectCache::with_limits(
        gix_hash::Kind::Sha1,
        Limits {
            max_object_bytes: 1000,
            ..Limits::default()
        },
    );
    let mut op = snapgit_core::read::ReadCommit::new(big.id);
    let err = drive(&mut op, &mut cache, &store).result.unwrap_err();
    assert!(
        matches!(
            err,
            snapgit_core::read::Error::Object(ObjectError::TooLarge { limit: 1000, .. })
        ),
        "{err}"
    );
}

trait PutOne {
    fn put_many_for_test(&self, object: &object::NewObject);
}

impl PutOne for MemoryStore {
    fn put_many_for_test(&self, object: &object::NewObject) {
        use snapgit_core::drive::ObjectStore;
        self.put_many(std::slice::from_ref(object)).unwrap();
    }
}

#[test]
fn protocol_misuse_is_an_error_not_a_panic() {
    use snapgit_core::{Operation, Step};
    let store = MemoryStore::new();
    let first = base(&store, &mut sha1());
    let mut cache = sha1();
    let mut op = commit::Commit::new(
        &cache,
        Request::new(Some(first.id), vec![Change::delete("root.md")], me(), "m"),
    )
    .unwrap();
    assert!(matches!(op.provide(&mut cache, vec![]), Err(Error::Misuse(_))));
    let Step::Get(ids) = op.poll(&mut cache).unwrap() else {
        panic!("cold cache must ask")
    };
    assert_eq!(ids, vec![first.id]);
    assert!(matches!(
        op.provide(&mut cache, vec![None, None]),
        Err(Error::Misuse(_))
    ));
    let run = drive(&mut op, &mut cache, &store);
    run.result.unwrap();
    assert!(matches!(op.poll(&mut cache), Err(Error::Misuse(_))));
}

#[test]
fn a_tiny_cache_still_completes() {
    let store = MemoryStore::new();
    let first = base(&store, &mut sha1());
    let mut cache = sha1();
    cache.set_capacity(1);
    let mut op = commit::Commit::new(
        &cache,
        Request::new(Some(first.id), vec![Change::put("a/b/c/deep.md", "x\n")], me(), "m"),
    )
    .unwrap();
    let run = drive(&mut op, &mut cache, &store);
    run.result.unwrap();
    assert_eq!(run.rounds, 6);
}

#[derive(Debug, Clone)]
enum Action {
    Put(usize, Vec<u8>, bool),
    Delete(usize),
    Rename(usize, usize),
}

const NAMES: [&str; 8] = [
    "a.md",
    "b/c.json",
    "b/d/e.md",
    "b/d/f.md",
    "g/h",
    "g/i/j/k.md",
    "l",
    "b/m.txt",
];

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..NAMES.len(), prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), Just(b'y'), any::<u8>()], 0..40), any::<bool>())
            .prop_map(|(i, data, exec)| Action::Put(i, data, exec)),
        1 => (0..NAMES.len()).prop_map(Action::Delete),
        1 => (0..NAMES.len(), 0..NAMES.len()).prop_map(|(a, b)| Action::Rename(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of commits, read back with a cold cache, gives the model's files.
    #[test]
    fn commit_then_read_matches_a_model(steps in prop::collection::vec(prop::collection::vec(action(), 1..4), 1..8)) {
        let store = MemoryStore::new();
        let mut cache = sha1();
        let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut head = None;
        for actions in steps {
            let mut changes = Vec::new();
            let mut next = model.clone();
            let mut touched = std::collections::BTreeSet::new();
            for action in actions {
                match action {
                    Action::Put(i, data, exec) => {
                        let path = NAMES[i];
                        if !touched.insert(path) { continue; }
                        changes.push(Change::Put {
                            path: path.into(),
                            data: data.clone(),
                            mode: if exec { Mode::Executable } else { Mode::Regular },
                        });
                        next.insert(path.to_string(), data);
                    }
                    Action::Delete(i) => {
                        let path = NAMES[i];
                        if !model.contains_key(path) || !touched.insert(path) { continue; }
                        changes.push(Change::delete(path));
                        next.remove(path);
                    }
                    Action::Rename(a, b) => {
                        let (from, to) = (NAMES[a], NAMES[b]);
                        if !model.contains_key(from) || model.contains_key(to) || touched.contains(from) || touched.contains(to) {
                            continue;
                        }
                        touched.insert(from);
                        touched.insert(to);
                        changes.push(Change::rename(from, to));
                        let data = next.remove(from).unwrap();
                        next.insert(to.to_string(), data);
                    }
                }
            }
            if changes.is_empty() {
                continue;
            }
            let mut request = Request::new(head, changes, me(), "step");
            request.allow_empty = true;
            let result = commit::Commit::new(&cache, request)
                .and_then(|mut op| snapgit_core::drive::run(&mut op, &mut cache, &store));
            match result {
                Ok(out) => {
                    snapgit_core::drive::ObjectStore::put_many(&store, &out.objects).unwrap();
                    head = Some(out.id);
                    model = next;
                    prop_assert_eq!(files(&store, out.id), model.clone());
                }
                Err(err) => prop_assert!(false, "unexpected error {err}"),
            }
        }
    }
}
