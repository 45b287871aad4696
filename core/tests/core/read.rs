use snapgit_core::{
    Mode,
    commit::Change,
    drive::MemoryStore,
    read::{Error, ListTree, ReadCommit, ReadFile, ReadFiles},
};

use crate::support::{commit, drive, me, sha1};

fn fixture(store: &MemoryStore) -> snapgit_core::commit::Output {
    commit(
        &mut sha1(),
        store,
        None,
        vec![
            Change::put("docs/a.md", "a\n"),
            Change::put("docs/deep/b.md", "b\n"),
            Change::Put {
                path: "run.sh".into(),
                data: b"#!/bin/sh\n".to_vec(),
                mode: Mode::Executable,
            },
            Change::Put {
                path: "link".into(),
                data: b"docs/a.md".to_vec(),
                mode: Mode::Symlink,
            },
        ],
    )
}

#[test]
fn read_one_file() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let mut op = ReadFile::new(head.id, "docs/deep/b.md").unwrap();
    let run = drive(&mut op, &mut sha1(), &store);
    let file = run.result.unwrap();
    assert_eq!(file.data, b"b\n");
    assert_eq!(file.mode, Mode::Regular);
    assert_eq!(run.rounds, 5, "commit, root, docs, deep, blob");

    let mut op = ReadFile::new(head.id, "run.sh").unwrap();
    assert_eq!(
        drive(&mut op, &mut sha1(), &store).result.unwrap().mode,
        Mode::Executable
    );
}

#[test]
fn listings_read_no_blobs() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let blob_ids: Vec<_> = head
        .objects
        .iter()
        .filter(|o| o.kind == gix_object::Kind::Blob)
        .map(|o| o.id)
        .collect();

    let mut op = ListTree::new(head.id, "", true).unwrap();
    let run = drive(&mut op, &mut sha1(), &store);
    let entries = run.result.unwrap();
    let paths: Vec<_> = entries.iter().map(|e| (e.path.to_string(), e.mode)).collect();
    assert_eq!(
        paths,
        [
            ("docs/a.md".into(), Mode::Regular),
            ("docs/deep/b.md".into(), Mode::Regular),
            ("link".into(), Mode::Symlink),
            ("run.sh".into(), Mode::Executable),
        ]
    );
    assert!(run.asked.iter().flatten().all(|id| !blob_ids.contains(id)));

    let mut op = ListTree::new(head.id, "docs", false).unwrap();
    let entries = drive(&mut op, &mut sha1(), &store).result.unwrap();
    let paths: Vec<_> = entries.iter().map(|e| (e.path.to_string(), e.mode)).collect();
    assert_eq!(
        paths,
        [("docs/a.md".into(), Mode::Regular), ("docs/deep".into(), Mode::Tree)]
    );
}

#[test]
fn read_all_files_fetches_blobs_in_one_round() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let mut op = ReadFiles::new(head.id, "").unwrap();
    let run = drive(&mut op, &mut sha1(), &store);
    let files = run.result.unwrap();
    assert_eq!(files.len(), 4);
    // commit, root, docs, deep, then every blob at once.
    assert_eq!(run.rounds, 5);
    assert!(run.asked.last().unwrap().len() >= 3);

    let mut op = ReadFiles::new(head.id, "docs").unwrap();
    let files = drive(&mut op, &mut sha1(), &store).result.unwrap();
    assert_eq!(
        files.iter().map(|f| f.path.to_string()).collect::<Vec<_>>(),
        ["docs/a.md", "docs/deep/b.md"]
    );
}

#[test]
fn commit_metadata() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let mut op = ReadCommit::new(head.id);
    let info = drive(&mut op, &mut sha1(), &store).result.unwrap();
    assert_eq!(info.tree, head.tree);
    assert!(info.parents.is_empty());
    assert_eq!(info.author, me());
    assert_eq!(info.message, "test\n");
}

#[test]
fn bad_reads_are_typed_errors() {
    let store = MemoryStore::new();
    let head = fixture(&store);
    let read = |path: &str| {
        let mut op = ReadFile::new(head.id, path)?;
        drive(&mut op, &mut sha1(), &store).result
    };
    assert!(matches!(read("nope.md"), Err(Error::PathNotFound { path, .. }) if path == "nope.md"));
    assert!(matches!(read("run.sh/x"), Err(Error::PathNotFound { .. })));
    assert!(matches!(read("docs"), Err(Error::NotAFile { mode: Mode::Tree, .. })));
    assert!(matches!(read("../etc/passwd"), Err(Error::InvalidPath(_))));
    assert!(matches!(read(""), Err(Error::InvalidPath(_))));
    let mut op = ListTree::new(head.id, "run.sh", false).unwrap();
    assert!(matches!(
        drive(&mut op, &mut sha1(), &store).result,
        Err(Error::NotAFolder { .. })
    ));
    let unknown = gix_hash::ObjectId::from_hex(b"0123456789012345678901234567890123456789").unwrap();
    let mut op = ReadCommit::new(unknown);
    assert!(matches!(
        drive(&mut op, &mut sha1(), &store).result,
        Err(Error::UnknownCommit { id }) if id == unknown
    ));
    // A tree id where a commit belongs.
    let mut op = ReadFile::new(head.tree, "run.sh").unwrap();
    assert!(matches!(
        drive(&mut op, &mut sha1(), &store).result,
        Err(Error::NotACommit { id, kind: gix_object::Kind::Tree }) if id == head.tree
    ));
}
