use snapgit_core::{
    ObjectCache, ObjectId, Operation,
    commit::{Change, Output, Signature},
    diff::ChangeKind,
    drive::{MemoryStore, ObjectStore},
    path::Reason,
    restore::{Error, Request, Restore},
};

use crate::support::{commit, drive, files, me, sha1};

/// An old commit and a newer head that changed, added and deleted files.
fn history(store: &MemoryStore, cache: &mut ObjectCache) -> (Output, Output) {
    let old = commit(
        cache,
        store,
        None,
        vec![
            Change::put("notes/today.md", "# Today\n"),
            Change::put("notes/deep/x.md", "x\n"),
            Change::put("memory.json", "{}\n"),
            Change::put("old-only.md", "old\n"),
        ],
    );
    let head = commit(
        cache,
        store,
        Some(old.id),
        vec![
            Change::put("notes/today.md", "# Today\nedited\n"),
            Change::delete("notes/deep"),
            Change::put("memory.json", "{\"a\": 1}\n"),
            Change::delete("old-only.md"),
            Change::put("new-only.md", "new\n"),
        ],
    );
    (old, head)
}

fn restore(store: &MemoryStore, cache: &mut ObjectCache, request: Request) -> Result<Output, Error> {
    let mut op = Restore::new(cache, request)?;
    let out = drive(&mut op, cache, store).result?;
    store.put_many(&out.objects).expect("memory store");
    Ok(out)
}

#[test]
fn restoring_a_file_brings_back_its_content_only() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let (old, head) = history(&store, &mut cache);
    let out = restore(
        &store,
        &mut cache,
        Request::new(head.id, old.id, me()).with_path("notes/today.md"),
    )
    .expect("restore");
    let after = files(&store, out.id);
    let mut expected = files(&store, head.id);
    expected.insert("notes/today.md".into(), b"# Today\n".to_vec());
    assert_eq!(after, expected);
    assert_eq!(out.parent, Some(head.id));
    assert_eq!(out.files.len(), 1);
    assert_eq!(out.files[0].kind, ChangeKind::Modified);
    // New objects: the root and `notes` trees and the commit; no blob.
    let kinds: Vec<gix_object::Kind> = out.objects.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [gix_object::Kind::Tree, gix_object::Kind::Tree, gix_object::Kind::Commit]
    );
    let mut read = snapgit_core::read::ReadCommit::new(out.id);
    let info = drive(&mut read, &mut sha1(), &store).result.expect("commit");
    assert_eq!(info.message, format!("Restore notes/today.md from commit {}\n", old.id));
    assert_eq!(info.parents, vec![head.id]);
}

#[test]
fn restoring_a_folder_brings_back_deleted_files() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let (old, head) = history(&store, &mut cache);
    let out = restore(
        &store,
        &mut cache,
        Request::new(head.id, old.id, me()).with_path("notes"),
    )
    .expect("restore");
    let after = files(&store, out.id);
    assert_eq!(after["notes/deep/x.md"], b"x\n");
    assert_eq!(after["notes/today.md"], b"# Today\n");
    assert_eq!(after["new-only.md"], b"new\n");
    assert_eq!(after["memory.json"], b"{\"a\": 1}\n");
    let changed: Vec<(String, ChangeKind)> = out.files.iter().map(|f| (f.path.to_string(), f.kind.clone())).collect();
    assert_eq!(
        changed,
        vec![
            ("notes/deep/x.md".into(), ChangeKind::Added),
            ("notes/today.md".into(), ChangeKind::Modified)
        ]
    );
}

#[test]
fn restoring_a_path_the_target_lacks_deletes_it() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let (old, head) = history(&store, &mut cache);
    let out = restore(
        &store,
        &mut cache,
        Request::new(head.id, old.id, me()).with_path("new-only.md"),
    )
    .expect("restore");
    assert!(!files(&store, out.id).contains_key("new-only.md"));
    assert_eq!(out.files[0].kind, ChangeKind::Deleted);
    let out = restore(
        &store,
        &mut cache,
        Request::new(head.id, old.id, me()).with_path("old-only.md"),
    )
    .expect("restore");
    assert_eq!(files(&store, out.id)["old-only.md"], b"old\n");
}

#[test]
fn restoring_the_whole_tree_reuses_the_old_tree() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let (old, head) = history(&store, &mut cache);
    let mut request = Request::new(head.id, old.id, me());
    request.line_stats = true;
    let out = restore(&store, &mut cache, request).expect("restore");
    assert_eq!(out.tree, old.tree);
    assert_eq!(out.objects.len(), 1, "only the commit is new");
    assert_eq!(files(&store, out.id), files(&store, old.id));
    assert!(out.files.iter().all(|f| f.lines.is_some()));
    // Warm: everything is cached, so a second restore asks for nothing.
    let mut op = Restore::new(&cache, Request::new(out.id, head.id, me())).expect("valid");
    let run = drive(&mut op, &mut cache, &store);
    assert_eq!(run.result.expect("undo").tree, head.tree);
    assert_eq!(run.rounds, 0);
}

#[test]
fn nothing_to_restore_unless_allowed() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let (old, head) = history(&store, &mut cache);
    let request = Request::new(head.id, old.id, me()).with_path("notes/deep/x.md");
    let out = restore(&store, &mut cache, request).expect("restore");
    let again = Request::new(out.id, old.id, me()).with_path("notes/deep/x.md");
    assert!(matches!(
        restore(&store, &mut cache, again.clone()),
        Err(Error::NothingToRestore)
    ));
    let mut allowed = again;
    allowed.allow_empty = true;
    let empty = restore(&store, &mut cache, allowed).expect("empty restore");
    assert_eq!(empty.tree, out.tree);
    assert!(empty.files.is_empty());
}

#[test]
fn bad_requests_are_refused() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let (old, head) = history(&store, &mut cache);
    match Restore::new(&cache, Request::new(head.id, old.id, me()).with_path("../etc/passwd")) {
        Err(Error::InvalidPath(err)) => assert_eq!(err.reason, Reason::Relative),
        other => panic!("{other:?}"),
    }
    match restore(
        &store,
        &mut cache,
        Request::new(head.id, old.id, me()).with_path("no/such/file"),
    ) {
        Err(Error::PathNotFound { path }) => assert_eq!(path, "no/such/file"),
        other => panic!("{other:?}"),
    }
    let unknown = ObjectId::from_hex(b"2222222222222222222222222222222222222222").expect("hex");
    for (h, t) in [(unknown, old.id), (head.id, unknown)] {
        match restore(&store, &mut sha1(), Request::new(h, t, me())) {
            Err(Error::UnknownCommit { id }) => assert_eq!(id, unknown),
            other => panic!("{other:?}"),
        }
    }
    let bad = Signature::new("Agent <evil>", "a@example.com", 0);
    assert!(matches!(
        Restore::new(&cache, Request::new(head.id, old.id, bad)),
        Err(Error::InvalidSignature { .. })
    ));
    let mut request = Request::new(head.id, old.id, me());
    request.message = Some("nul\0".into());
    assert!(matches!(Restore::new(&cache, request), Err(Error::InvalidMessage)));
}

#[test]
fn a_file_in_the_way_is_a_conflict() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let old = commit(&mut cache, &store, None, vec![Change::put("a/b.md", "b\n")]);
    let head = commit(
        &mut cache,
        &store,
        Some(old.id),
        vec![Change::delete("a"), Change::put("c.md", "c\n")],
    );
    let head = commit(
        &mut cache,
        &store,
        Some(head.id),
        vec![Change::put("a", "a file now\n")],
    );
    match restore(
        &store,
        &mut cache,
        Request::new(head.id, old.id, me()).with_path("a/b.md"),
    ) {
        Err(Error::PathConflict { path, at }) => {
            assert_eq!(path, "a/b.md");
            assert_eq!(at, "a");
        }
        other => panic!("{other:?}"),
    }
    // Restoring the folder itself replaces the file.
    let out = restore(&store, &mut cache, Request::new(head.id, old.id, me()).with_path("a")).expect("restore");
    let after = files(&store, out.id);
    assert_eq!(after["a/b.md"], b"b\n");
    assert!(!after.contains_key("a"));
}

#[test]
fn polling_after_done_is_a_misuse() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let (old, head) = history(&store, &mut cache);
    let mut op = Restore::new(&cache, Request::new(head.id, old.id, me())).expect("valid");
    drive(&mut op, &mut cache, &store).result.expect("restore");
    assert!(matches!(op.poll(&mut cache), Err(Error::Misuse(_))));
}
