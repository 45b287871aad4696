use std::collections::BTreeMap;

use proptest::prelude::*;
use snapgit_core::{
    Mode, ObjectCache, ObjectId,
    commit::Change,
    diff::{ChangeKind, LineStats},
    drive::{MemoryStore, ObjectStore},
    history::{Cursor, Error, FileLog, Log, Page, Request},
    object::{self, Error as ObjectError},
    path::Reason,
};

use crate::support::{Fault, commit, drive, drive_with, sha1};

/// A linear history: a root with files in nested folders, then commits touching one
/// path each. Returns the commits, oldest first, and the path each one touched.
fn linear(store: &MemoryStore, cache: &mut ObjectCache) -> Vec<(ObjectId, &'static str)> {
    let root = commit(
        cache,
        store,
        None,
        vec![
            Change::put("a/b/c/deep.md", "1\n"),
            Change::put("a/b/other.md", "1\n"),
            Change::put("a/top.md", "1\n"),
            Change::put("z/far.md", "1\n"),
        ],
    );
    let mut out = vec![(root.id, "")];
    let touched = [
        "a/b/c/deep.md",
        "z/far.md",
        "a/b/other.md",
        "a/b/c/deep.md",
        "a/top.md",
        "z/far.md",
        "a/b/c/deep.md",
        "z/new.md",
        "a/b/other.md",
        "a/b/c/deep.md",
    ];
    let mut parent = root.id;
    for (i, path) in touched.into_iter().enumerate() {
        let next = commit(cache, store, Some(parent), vec![Change::put(path, format!("v{i}\n"))]);
        out.push((next.id, path));
        parent = next.id;
    }
    out
}

fn walk(store: &MemoryStore, cache: &mut ObjectCache, request: Request) -> Result<Page, Error> {
    let mut op = Log::new(request)?;
    drive(&mut op, cache, store).result
}

/// The commits of `history` (newest first) that touched a path below `filter`.
fn expected(history: &[(ObjectId, &str)], filter: &str) -> Vec<ObjectId> {
    history
        .iter()
        .rev()
        .filter(|(_, path)| path.is_empty() || *path == filter || path.starts_with(&format!("{filter}/")))
        .map(|(id, _)| *id)
        .collect()
}

fn ids(page: &Page) -> Vec<ObjectId> {
    page.commits.iter().map(|c| c.id).collect()
}

#[test]
fn unfiltered_log_lists_every_commit_newest_first() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let page = walk(&store, &mut sha1(), Request::new(history[10].0, 100)).expect("log");
    let all: Vec<ObjectId> = history.iter().rev().map(|(id, _)| *id).collect();
    assert_eq!(ids(&page), all);
    assert!(page.next.is_none());
    let head = &page.commits[0];
    assert_eq!(head.parents, vec![history[9].0]);
    assert_eq!(head.message, "test\n");
    assert_eq!(head.author.name, "Agent");
    assert_eq!(head.committer.time.seconds, 1_700_000_000);
}

#[test]
fn path_filter_keeps_commits_that_changed_the_file_or_folder() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let head = history[10].0;
    for filter in [
        "a/b/c/deep.md",
        "a/b/c",
        "a/b",
        "a",
        "z",
        "z/new.md",
        "a/top.md",
        "nothing/here",
    ] {
        let page = walk(&store, &mut sha1(), Request::new(head, 100).with_path(filter)).expect("log");
        let mut want = expected(&history, filter);
        // The root commit shows only when the path exists in it.
        if matches!(filter, "z/new.md" | "nothing/here") {
            want.retain(|id| *id != history[0].0);
        }
        assert_eq!(ids(&page), want, "filter {filter}");
    }
}

#[test]
fn filtered_walk_batches_trees_and_overlaps_them_with_the_chain() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let head = history[10].0;
    let mut cache = sha1();
    let mut op = Log::new(Request::new(head, 100).with_path("a/b/c/deep.md")).expect("valid");
    let run = drive(&mut op, &mut cache, &store);
    assert_eq!(ids(&run.result.expect("log")), expected(&history, "a/b/c/deep.md"));
    // 11 commits in a chain need 11 rounds; the 4 tree levels add a few, not 4 per commit.
    assert!(run.rounds <= 11 + 4 + 1, "{} rounds", run.rounds);
    // Some rounds carry a commit and trees of several levels at once.
    assert!(run.asked.iter().any(|round| round.len() >= 3));
    // Never more than a commit and the trees along the path per commit.
    let asked: usize = run.asked.iter().map(Vec::len).sum();
    assert!(asked <= 11 * 5, "{asked} objects");
}

#[test]
fn unchanged_subtrees_are_not_read() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let head = history[10].0;
    let mut op = Log::new(Request::new(head, 100).with_path("z/far.md")).expect("valid");
    let run = drive(&mut op, &mut sha1(), &store);
    run.result.expect("log");
    // Commits touching only `a/...` keep the id of `z`: the walk compares ids at the
    // root and never opens `a`'s subtrees below the first level.
    let a_b_c: Vec<ObjectId> = {
        let mut op = snapgit_core::read::ListTree::new(head, "a/b", false).expect("valid");
        drive(&mut op, &mut sha1(), &store)
            .result
            .expect("list")
            .into_iter()
            .filter(|e| e.mode == Mode::Tree)
            .map(|e| e.id)
            .collect()
    };
    for round in &run.asked {
        for id in &a_b_c {
            assert!(!round.contains(id), "read a/b/c while filtering z/far.md");
        }
    }
}

#[test]
fn pages_joined_equal_one_walk() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let head = history[10].0;
    for path in [None, Some("a/b"), Some("a/b/c/deep.md"), Some("z")] {
        for first_parent in [true, false] {
            let mut base = Request::new(head, usize::MAX);
            base.path = path.map(Into::into);
            base.first_parent = first_parent;
            let whole = ids(&walk(&store, &mut sha1(), base.clone()).expect("log"));
            for limit in [1, 2, 5] {
                let mut joined = Vec::new();
                let mut cursor: Option<Cursor> = None;
                loop {
                    let mut request = base.clone();
                    request.limit = limit;
                    request.cursor = cursor.take();
                    let page = walk(&store, &mut sha1(), request).expect("page");
                    assert!(page.commits.len() <= limit);
                    joined.extend(ids(&page));
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                assert_eq!(joined, whole, "path {path:?}, limit {limit}");
            }
        }
    }
}

/// Write a commit object by hand (core's commit operation makes only single-parent ones).
fn raw_commit(store: &MemoryStore, tree: ObjectId, parents: &[ObjectId], time: i64, message: &str) -> ObjectId {
    let mut text = format!("tree {tree}\n");
    for parent in parents {
        text.push_str(&format!("parent {parent}\n"));
    }
    text.push_str(&format!(
        "author A <a@example.com> {time} +0000\ncommitter A <a@example.com> {time} +0000\n\n{message}\n"
    ));
    let object = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Commit, text.as_bytes()).expect("hash");
    store.put_many(std::slice::from_ref(&object)).expect("memory store");
    object.id
}

#[test]
fn merges_follow_the_parent_whose_path_is_the_same() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let base = commit(
        &mut cache,
        &store,
        None,
        vec![Change::put("f.md", "base\n"), Change::put("g.md", "g\n")],
    );
    let side = commit(&mut cache, &store, Some(base.id), vec![Change::put("f.md", "side\n")]);
    let main = commit(&mut cache, &store, Some(base.id), vec![Change::put("g.md", "main\n")]);
    let base_c = raw_commit(&store, base.tree, &[], 100, "base");
    let side_c = raw_commit(&store, side.tree, &[base_c], 200, "side");
    let main_c = raw_commit(&store, main.tree, &[base_c], 300, "main");
    // The merge takes f.md from the side and g.md from main: its f.md equals the side's.
    let merged = commit(&mut cache, &store, Some(main.id), vec![Change::put("f.md", "side\n")]);
    let merge = raw_commit(&store, merged.tree, &[main_c, side_c], 400, "merge");

    let log = |path: &str, first_parent: bool| {
        let mut request = Request::new(merge, 100).with_path(path);
        request.first_parent = first_parent;
        ids(&walk(&store, &mut sha1(), request).expect("log"))
    };
    // All parents: the merge is the same as the side for f.md, so only the side is
    // followed and the merge is not shown.
    assert_eq!(log("f.md", false), vec![side_c, base_c]);
    // First parent: the merge changed f.md relative to main.
    assert_eq!(log("f.md", true), vec![merge, base_c]);
    // g.md came from main; the merge equals main there.
    assert_eq!(log("g.md", false), vec![main_c, base_c]);
    // Unfiltered, all parents, newest committer time first.
    let mut request = Request::new(merge, 100);
    request.first_parent = false;
    assert_eq!(
        ids(&walk(&store, &mut sha1(), request).expect("log")),
        vec![merge, main_c, side_c, base_c]
    );
}

#[test]
fn bad_requests_are_refused_before_any_read() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let head = history[10].0;
    assert!(matches!(
        Log::new(Request::new(head, 0)),
        Err(Error::InvalidLimit { limit: 0 })
    ));
    for (path, reason) in [
        ("../x", Reason::Relative),
        ("/abs", Reason::Absolute),
        ("a//b", Reason::EmptyComponent),
        ("a/.git/x", Reason::DotGit),
        ("a/", Reason::TrailingSlash),
    ] {
        match Log::new(Request::new(head, 1).with_path(path)) {
            Err(Error::InvalidPath(err)) => {
                assert_eq!(err.reason, reason);
                assert_eq!(err.path, path);
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(matches!(
        FileLog::new(Request::new(head, 1)),
        Err(Error::InvalidPath(_))
    ));
}

#[test]
fn unknown_and_wrong_start_commits_are_named() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let history = linear(&store, &mut cache);
    let unknown = ObjectId::from_hex(b"0123456789abcdef0123456789abcdef01234567").expect("hex");
    match walk(&store, &mut sha1(), Request::new(unknown, 5)) {
        Err(Error::UnknownCommit { id }) => assert_eq!(id, unknown),
        other => panic!("{other:?}"),
    }
    let blob = snapgit_core::object::hash(gix_hash::Kind::Sha1, gix_object::Kind::Blob, b"1\n").expect("hash");
    match walk(&store, &mut sha1(), Request::new(blob, 5)) {
        Err(Error::NotACommit { id, kind }) => {
            assert_eq!(id, blob);
            assert_eq!(kind, gix_object::Kind::Blob);
        }
        other => panic!("{other:?}"),
    }
    // The same errors with the start in the cache.
    assert!(walk(&store, &mut cache, Request::new(history[3].0, 5)).is_ok());
}

#[test]
fn cursors_are_bound_to_their_walk() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let head = history[10].0;
    let page = walk(&store, &mut sha1(), Request::new(head, 2).with_path("a")).expect("page");
    let cursor = page.next.expect("more pages");
    assert!(cursor.as_str().bytes().all(|b| b.is_ascii_hexdigit()));

    let foreign = [
        Request::new(head, 2).with_path("z"),
        Request::new(head, 2),
        Request::new(history[9].0, 2).with_path("a"),
        Request::new(head, 2).with_path("a").all_parents(),
    ];
    for request in foreign {
        match Log::new(request.after(cursor.clone())) {
            Err(Error::ForeignCursor { cursor: named }) => assert_eq!(named, cursor.as_str()),
            other => panic!("{other:?}"),
        }
    }
    // The same walk with another page size is the same walk.
    assert!(Log::new(Request::new(head, 7).with_path("a").after(cursor.clone())).is_ok());

    let text = cursor.as_str();
    for bad in [
        "",
        "zz",
        "abc",
        &text[..text.len() - 2],
        &format!("{text}00"),
        "4c3100",
        "ffff",
    ] {
        match Log::new(Request::new(head, 2).with_path("a").after(Cursor::from(bad))) {
            Err(Error::InvalidCursor { .. }) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

proptest! {
    #[test]
    fn any_cursor_text_is_refused_or_walked_without_panic(text in "[0-9a-f]{0,120}|.{0,40}") {
        let store = MemoryStore::new();
        let head = commit(&mut sha1(), &store, None, vec![Change::put("f", "x")]).id;
        if let Ok(mut op) = Log::new(Request::new(head, 3).after(Cursor::from(text.as_str()))) {
            let _ = drive(&mut op, &mut sha1(), &store).result;
        }
    }

    #[test]
    fn any_cursor_bytes_after_the_header_are_refused_or_walked(tail in proptest::collection::vec(any::<u8>(), 0..80)) {
        let store = MemoryStore::new();
        let head = commit(&mut sha1(), &store, None, vec![Change::put("f", "x"), Change::put("g", "y")]).id;
        let next = commit(&mut sha1(), &store, Some(head), vec![Change::put("f", "z")]).id;
        let page = walk(&store, &mut sha1(), Request::new(next, 1)).expect("page");
        let cursor = page.next.expect("more");
        // Keep the magic, fingerprint and id length; replace the rest.
        let mut text = cursor.as_str()[..22].to_owned();
        for b in tail {
            text.push_str(&format!("{b:02x}"));
        }
        if let Ok(mut op) = Log::new(Request::new(next, 1).after(Cursor::from(text))) {
            let _ = drive(&mut op, &mut sha1(), &store).result;
        }
    }
}

#[test]
fn storage_faults_surface_as_object_errors() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let head = history[10].0;
    let middle = history[5].0;
    for (fault, check) in [
        (Fault::Missing, "missing"),
        (Fault::Corrupt, "corrupt"),
        (Fault::Substitute(history[4].0), "substituted"),
    ] {
        let faults = BTreeMap::from([(middle, fault)]);
        let mut op = Log::new(Request::new(head, 100).with_path("a")).expect("valid");
        match drive_with(&mut op, &mut sha1(), &store, &faults).result {
            Err(Error::Object(ObjectError::NotFound { id })) if check == "missing" => assert_eq!(id, middle),
            Err(Error::Object(ObjectError::Corrupt { id, .. } | ObjectError::HashMismatch { id, .. })) => {
                assert_eq!(id, middle)
            }
            other => panic!("{check}: {other:?}"),
        }
    }
}

#[test]
fn polling_after_done_is_a_misuse() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    let mut cache = sha1();
    let mut op = Log::new(Request::new(history[2].0, 1)).expect("valid");
    drive(&mut op, &mut cache, &store).result.expect("page");
    use snapgit_core::Operation;
    assert!(matches!(op.poll(&mut cache), Err(Error::Misuse(_))));
}

#[test]
fn file_history_has_kinds_and_line_counts() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = commit(&mut cache, &store, None, vec![Change::put("keep.md", "k\n")]);
    let added = commit(&mut cache, &store, Some(first.id), vec![Change::put("f.md", "a\nb\n")]);
    let edited = commit(
        &mut cache,
        &store,
        Some(added.id),
        vec![Change::put("f.md", "a\nc\nd\n")],
    );
    let other = commit(
        &mut cache,
        &store,
        Some(edited.id),
        vec![Change::put("keep.md", "k2\n")],
    );
    let binary = commit(
        &mut cache,
        &store,
        Some(other.id),
        vec![Change::put("f.md", b"\0bin".to_vec())],
    );
    let deleted = commit(&mut cache, &store, Some(binary.id), vec![Change::delete("f.md")]);
    let readded = commit(
        &mut cache,
        &store,
        Some(deleted.id),
        vec![Change::Put {
            path: "f.md".into(),
            data: b"x\n".to_vec(),
            mode: Mode::Symlink,
        }],
    );
    let mut op = FileLog::new(Request::new(readded.id, 100).with_path("f.md")).expect("valid");
    let run = drive(&mut op, &mut sha1(), &store);
    let page = run.result.expect("file history");
    let got: Vec<(ObjectId, ChangeKind, Option<LineStats>)> = page
        .commits
        .iter()
        .map(|c| (c.commit.id, c.change.kind.clone(), c.change.lines))
        .collect();
    let lines = |added, removed| Some(LineStats { added, removed });
    assert_eq!(
        got,
        vec![
            (readded.id, ChangeKind::Added, lines(1, 0)),
            (deleted.id, ChangeKind::Deleted, None),
            (binary.id, ChangeKind::Modified, None),
            (edited.id, ChangeKind::Modified, lines(2, 1)),
            (added.id, ChangeKind::Added, lines(2, 0)),
        ]
    );
    assert!(page.commits[1].change.binary);
    assert_eq!(page.commits[0].change.new.map(|n| n.1), Some(Mode::Symlink));

    // A folder is not a file.
    let folder = commit(
        &mut cache,
        &store,
        Some(readded.id),
        vec![Change::put("dir/x.md", "1\n")],
    );
    let folder2 = commit(
        &mut cache,
        &store,
        Some(folder.id),
        vec![Change::put("dir/x.md", "2\n")],
    );
    let mut op = FileLog::new(Request::new(folder2.id, 100).with_path("dir")).expect("valid");
    match drive(&mut op, &mut sha1(), &store).result {
        Err(Error::NotAFile { path, commit }) => {
            assert_eq!(path, "dir");
            assert_eq!(commit, folder2.id);
        }
        other => panic!("{other:?}"),
    }
}

/// A store that holds the newest commits of a history without the older ones, as a
/// shallow fetch leaves it: git's `shallow` file names the oldest commit kept.
fn shallow_history(store: &MemoryStore, cache: &mut ObjectCache, keep: usize) -> Vec<(ObjectId, &'static str)> {
    let history = linear(store, cache);
    let boundary = history.len() - keep;
    for (id, _) in &history[..boundary] {
        store.remove(id);
    }
    let file = format!("{}\n", history[boundary].0);
    assert!(
        store
            .swap(&snapgit_core::step::Swap {
                key: "shallow".into(),
                expected: None,
                new: Some(file.into_bytes()),
            })
            .expect("memory store")
    );
    history[boundary..].to_vec()
}

#[test]
fn walks_end_at_the_shallow_boundary_as_git_log_does() {
    for filter in ["", "a/b/c/deep.md", "z", "a"] {
        let store = MemoryStore::new();
        let mut cache = sha1();
        let kept = shallow_history(&store, &mut cache, 4);
        let tip = kept.last().unwrap().0;
        let mut cache = sha1();
        let mut request = Request::new(tip, 100);
        request.path = (!filter.is_empty()).then(|| filter.into());
        // The real driver: the walk reads the shallow file, which the test driver does not.
        let mut op = Log::new(request).unwrap();
        let page =
            snapgit_core::drive::run(&mut op, &mut cache, &store).unwrap_or_else(|err| panic!("{filter:?}: {err}"));
        // The boundary shows as a root commit would: with every path it has.
        let mut expected: Vec<ObjectId> = if filter.is_empty() {
            kept[1..].iter().rev().map(|(id, _)| *id).collect()
        } else {
            expected(&kept[1..], filter)
        };
        expected.push(kept[0].0);
        assert_eq!(ids(&page), expected, "{filter:?}");
        assert!(page.next.is_none());
    }
}

#[test]
fn a_missing_parent_without_a_shallow_file_is_still_an_error() {
    let store = MemoryStore::new();
    let history = linear(&store, &mut sha1());
    store.remove(&history[3].0);
    let mut op = Log::new(Request::new(history.last().unwrap().0, 100)).unwrap();
    let err = snapgit_core::drive::run(&mut op, &mut sha1(), &store).unwrap_err();
    assert!(
        matches!(err, Error::Object(ObjectError::NotFound { id }) if id == history[3].0),
        "{err}"
    );
}
