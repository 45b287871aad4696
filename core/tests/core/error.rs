//! Every binding reports `Classify::code` and `fields`: real failures of real operations
//! get the code and the offending value a caller needs.

use snapgit_core::{
    ObjectId,
    commit::Change,
    drive::{self, MemoryStore, ObjectStore},
    error::{Classify, Code, Value},
    read::ReadFile,
    repo::{Commit, CommitRequest, RepoOp},
};

use crate::support::{commit, me, sha1, try_commit};

fn id(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).unwrap()
}

#[test]
fn invalid_input_names_the_offending_path() {
    let store = MemoryStore::new();
    let err = try_commit(&mut sha1(), &store, None, vec![Change::put("a/../b", "x")]).unwrap_err();
    assert_eq!(err.code(), Code::InvalidInput);
    assert_eq!(err.fields(), vec![("value", Value::Path(b"a/../b".into()))]);
    assert!(err.storage().is_none());
}

#[test]
fn a_missing_path_is_not_found_and_an_empty_commit_is_empty() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let root = commit(&mut cache, &store, None, vec![Change::put("a", "1")]);
    let err = try_commit(&mut cache, &store, Some(root.id), vec![Change::delete("nope")]).unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.fields(), vec![("value", Value::Path(b"nope".into()))]);

    let err = try_commit(&mut cache, &store, Some(root.id), vec![Change::put("a", "1")]).unwrap_err();
    assert_eq!(err.code(), Code::EmptyCommit);
    assert!(err.fields().is_empty());
}

#[test]
fn an_object_the_store_lost_is_corrupt_and_an_unknown_start_is_not_found() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let root = commit(&mut cache, &store, None, vec![Change::put("dir/a", "1")]);
    let unknown = id("0123456789012345678901234567890123456789");
    let err = drive::run(&mut ReadFile::new(unknown, "a").unwrap(), &mut sha1(), &store).unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.fields(), vec![("value", Value::Id(&unknown))]);

    // The commit names a tree the store no longer has.
    let tree = root
        .objects
        .iter()
        .find(|o| o.kind == gix_object::Kind::Tree)
        .unwrap()
        .id;
    store.remove(&tree);
    let err = drive::run(&mut ReadFile::new(root.id, "dir/a").unwrap(), &mut sha1(), &store).unwrap_err();
    assert_eq!(err.code(), Code::Corrupt, "{err}");
}

#[test]
fn repo_errors_carry_their_details() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let mut op = RepoOp::create_repo(&cache, "r", "main", vec![Change::put("a", "1")], me(), "create").unwrap();
    drive::run(&mut op, &mut cache, &store).unwrap();

    let request = CommitRequest::new("r", "nope", vec![Change::put("b", "2")], me(), "m");
    let err = drive::run(&mut Commit::new(&cache, request).unwrap(), &mut cache, &store).unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.fields(),
        vec![("value", Value::Text("nope")), ("repo", Value::Text("r"))]
    );

    let stale = id("0123456789012345678901234567890123456789");
    let mut request = CommitRequest::new("r", "main", vec![Change::put("b", "2")], me(), "m");
    request.expected_head = Some(stale);
    let err = drive::run(&mut Commit::new(&cache, request).unwrap(), &mut cache, &store).unwrap_err();
    assert_eq!(err.code(), Code::HeadMoved);
    let head = store
        .read_ref("refs/namespaces/r/refs/heads/main")
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        err.fields(),
        vec![
            ("value", Value::Id(&stale)),
            ("expected", Value::Id(&stale)),
            ("actual", Value::Id(&head))
        ]
    );

    let err = RepoOp::create_branch("r", "-bad", snapgit_core::repo::Start::Branch("main".into())).unwrap_err();
    assert_eq!(err.code(), Code::InvalidInput);
    assert_eq!(err.fields(), vec![("value", Value::Text("-bad"))]);
}

#[test]
fn a_storage_failure_hands_back_the_adapters_error() {
    #[derive(Debug, thiserror::Error)]
    #[error("bucket on fire")]
    struct Fire;
    let err = snapgit_core::read::Error::Storage(Box::new(Fire));
    assert_eq!(err.code(), Code::Storage);
    assert!(err.storage().unwrap().downcast_ref::<Fire>().is_some());
    let wrapped = snapgit_core::repo::Error::Build(snapgit_core::commit::Error::Storage(Box::new(Fire)));
    assert_eq!(wrapped.code(), Code::Storage);
    assert!(wrapped.storage().unwrap().downcast_ref::<Fire>().is_some());
}
