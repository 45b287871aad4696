//! GC's roots are git's: a detached HEAD, reflogs, tags (followed to what they tag), refs
//! to any kind of object, packed refs. What GC cannot account for is refused, with nothing
//! deleted; the files killed writers leave behind are removed once old.

use std::collections::BTreeSet;

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{self, Change, Signature},
    drive::{self, MemoryStore, ObjectStore},
    error::{Classify, Code},
    gc::{Collect, CollectError, CollectOptions, Collected, Footprint, FootprintError, STALE_LOCK_MS},
    object, read,
    step::{CasOutcome, CasRef},
};

use crate::support::sha1;

const HOUR_MS: i64 = 60 * 60 * 1000;
const NOW: i64 = 10 * HOUR_MS;
const NULL: &str = "0000000000000000000000000000000000000000";

/// A commit of one file on `parent`, stored; no ref moves.
fn commit(store: &MemoryStore, parent: Option<ObjectId>, content: &str) -> ObjectId {
    let mut cache = sha1();
    let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
    let request = commit::Request::new(parent, vec![Change::put("memory.md", content)], me, content);
    let out = drive::run(&mut commit::Commit::new(&cache, request).unwrap(), &mut cache, store).unwrap();
    store.put_many(&out.objects).unwrap();
    out.id
}

fn set_ref(store: &MemoryStore, key: &str, id: ObjectId) {
    let expected = store.read_ref(key).unwrap();
    let cas = CasRef {
        key: key.into(),
        expected,
        new: Some(id),
    };
    assert!(matches!(store.cas_ref(&cas).unwrap(), CasOutcome::Won { .. }));
}

fn tag(store: &MemoryStore, target: ObjectId, kind: &str, name: &str) -> ObjectId {
    let content = format!("object {target}\ntype {kind}\ntag {name}\ntagger A <a@example.com> 0 +0000\n\n{name}\n");
    let tag = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Tag, content.as_bytes()).unwrap();
    store.put_many(std::slice::from_ref(&tag)).unwrap();
    tag.id
}

fn blob(store: &MemoryStore, content: &str) -> ObjectId {
    let blob = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Blob, content.as_bytes()).unwrap();
    store.put_many(std::slice::from_ref(&blob)).unwrap();
    blob.id
}

fn tree_of(store: &MemoryStore, id: ObjectId) -> ObjectId {
    let mut cache: ObjectCache = sha1();
    drive::run(&mut read::ReadCommit::new(id), &mut cache, store)
        .unwrap()
        .tree
}

fn gc(store: &MemoryStore, grace_ms: u64) -> Result<Collected, CollectError> {
    let mut cache = sha1();
    let options = CollectOptions {
        grace_ms,
        ..CollectOptions::new(NOW)
    };
    drive::run(&mut Collect::new(&cache, options)?, &mut cache, store)
}

fn stored(store: &MemoryStore) -> BTreeSet<ObjectId> {
    store.ids().into_iter().collect()
}

/// Everything `id` reaches (itself included): its tree, blobs and parents.
fn reach(store: &MemoryStore, id: ObjectId) -> BTreeSet<ObjectId> {
    let probe = MemoryStore::new();
    for each in store.ids() {
        probe.insert_raw(each, store.get(&each).unwrap());
    }
    set_ref(&probe, "refs/heads/probe", id);
    gc(&probe, 0).unwrap();
    stored(&probe)
}

#[test]
fn a_detached_head_keeps_its_commit() {
    let store = MemoryStore::new();
    let kept = commit(&store, None, "main\n");
    set_ref(&store, "refs/heads/main", kept);
    let detached = commit(&store, Some(kept), "detached\n");
    store.insert_file("HEAD", format!("{detached}\n"));
    let before = stored(&store);

    let collected = gc(&store, 0).unwrap();
    assert_eq!(collected.deleted, 0);
    assert_eq!(stored(&store), before);

    // Once HEAD is a symbolic ref again, the detached commit is garbage.
    store.insert_file("HEAD", "ref: refs/heads/main\n");
    let collected = gc(&store, 0).unwrap();
    assert_eq!(collected.deleted, 3, "commit, tree and blob of the detached commit");
    assert_eq!(stored(&store), reach(&store, kept));
}

#[test]
fn every_reflog_entry_is_a_root_and_missing_ones_are_skipped() {
    let store = MemoryStore::new();
    let first = commit(&store, None, "one\n");
    let second = commit(&store, None, "two\n");
    let head = commit(&store, None, "three\n");
    set_ref(&store, "refs/namespaces/a/refs/heads/main", head);
    let gone = ObjectId::from_hex(b"1234567890123456789012345678901234567890").unwrap();
    store.insert_file(
        "logs/refs/namespaces/a/refs/heads/main",
        format!(
            "{NULL} {first} A <a@example.com> 1 +0000\tcommit (initial): one\n\
             {first} {second} A <a@example.com> 2 +0000\tcommit: two\n\
             {gone} {head} A <a@example.com> 3 +0000\treset: moving\n"
        ),
    );
    store.insert_file(
        "logs/HEAD",
        format!("{NULL} {first} A <a@example.com> 1 +0000\tclone\n"),
    );
    let before = stored(&store);
    assert_eq!(gc(&store, 0).unwrap().deleted, 0);
    assert_eq!(stored(&store), before);

    // The footprint counts the reflog's objects for the repo, not as refs of their own.
    let mut cache = sha1();
    let report = drive::run(&mut Footprint::new(&cache), &mut cache, &store).unwrap();
    assert_eq!(report.repos.len(), 1);
    assert_eq!(report.repos[0].refs, 1);
    assert_eq!(report.repos[0].reachable.count, 9);
    assert_eq!(report.unreachable.count, 0);
}

#[test]
fn tags_tags_of_tags_and_refs_to_blobs_and_trees_are_roots() {
    let store = MemoryStore::new();
    let tagged = commit(&store, None, "tagged\n");
    let inner = tag(&store, tagged, "commit", "v1");
    let outer = tag(&store, inner, "tag", "v1-signed");
    set_ref(&store, "refs/tags/v1-signed", outer);
    let lone_blob = blob(&store, "a blob a ref names\n");
    set_ref(&store, "refs/blobs/one", lone_blob);
    let blob_tag = tag(&store, blob(&store, "a tagged blob\n"), "blob", "key");
    set_ref(&store, "refs/tags/key", blob_tag);
    let tree_commit = commit(&store, None, "only its tree is named\n");
    let tree = tree_of(&store, tree_commit);
    set_ref(&store, "refs/trees/one", tree);
    let notes = commit(&store, None, "a note\n");
    set_ref(&store, "refs/notes/commits", notes);
    let stash = commit(&store, None, "stashed\n");
    set_ref(&store, "refs/stash", stash);
    store.insert_file("refs/remotes/origin/HEAD", "ref: refs/remotes/origin/main\n");
    let garbage = commit(&store, None, "garbage\n");
    let mut garbage_objects: BTreeSet<ObjectId> = reach(&store, garbage);
    // Only the tree of this commit is named, not the commit.
    garbage_objects.insert(tree_commit);
    let before = stored(&store);

    let collected = gc(&store, 0).unwrap();
    let after = stored(&store);
    assert_eq!(
        before.difference(&after).copied().collect::<BTreeSet<_>>(),
        garbage_objects,
        "only the unreferenced commits go, with what only they reach"
    );
    assert_eq!(collected.deleted, 4);
    assert!(!after.contains(&tree_commit) && after.contains(&tree));
}

#[test]
fn packed_refs_are_roots_unless_a_loose_ref_shadows_them() {
    let store = MemoryStore::new();
    let packed = commit(&store, None, "packed\n");
    let tagged = commit(&store, None, "peeled\n");
    let annotated = tag(&store, tagged, "commit", "v2");
    let shadowed = commit(&store, None, "shadowed\n");
    let loose = commit(&store, None, "loose\n");
    set_ref(&store, "refs/heads/b", loose);
    store.insert_file(
        "packed-refs",
        format!(
            "# pack-refs with: peeled fully-peeled sorted \n{packed} refs/heads/a\n{shadowed} refs/heads/b\n\
             {annotated} refs/tags/v2\n^{tagged}\n"
        ),
    );
    gc(&store, 0).unwrap();
    let after = stored(&store);
    for kept in [packed, tagged, annotated, loose] {
        assert!(after.contains(&kept), "{kept} kept");
    }
    assert!(
        !after.contains(&shadowed),
        "git no longer reaches a shadowed packed value"
    );

    store.insert_file("packed-refs", format!("{packed}refs/heads/a\n"));
    let err = gc(&store, 0).unwrap_err();
    assert!(
        matches!(&err, CollectError::CorruptRef(e) if e.key == "packed-refs"),
        "{err}"
    );
    assert_eq!(err.code(), Code::Corrupt);
}

#[test]
fn what_gc_cannot_account_for_is_refused_with_nothing_deleted() {
    let unsupported = [
        "objects/info/alternates",
        "objects/pack/pack-1234.promisor",
        "shallow",
        "index",
        "worktrees/wt/HEAD",
    ];
    for key in unsupported {
        let store = MemoryStore::new();
        commit(&store, None, "garbage\n");
        store.insert_file(key, "x\n");
        let before = stored(&store);
        let err = gc(&store, 0).unwrap_err();
        assert!(
            matches!(&err, CollectError::Unsupported(e) if e.key == key),
            "{key}: {err}"
        );
        assert_eq!(err.code(), Code::Unsupported);
        assert!(err.to_string().contains(key), "{err}");
        assert_eq!(stored(&store), before, "{key}: nothing deleted");
        let mut cache = sha1();
        let report = drive::run(&mut Footprint::new(&cache), &mut cache, &store);
        assert!(matches!(report, Err(FootprintError::Unsupported(_))), "{key}");
    }
}

#[test]
fn unreadable_refs_head_and_reflogs_are_refused_with_nothing_deleted() {
    for (key, content) in [
        ("HEAD", "main\n"),
        ("refs/heads/main", "not an id\n"),
        ("logs/HEAD", "short line\n"),
    ] {
        let store = MemoryStore::new();
        commit(&store, None, "garbage\n");
        store.insert_file(key, content);
        let before = stored(&store);
        let err = gc(&store, 0).unwrap_err();
        assert!(
            matches!(&err, CollectError::CorruptRef(e) if e.key == key),
            "{key}: {err}"
        );
        assert_eq!(stored(&store), before);
    }
}

#[test]
fn leftover_temporary_and_lock_files_go_once_old() {
    let store = MemoryStore::new();
    store.set_time_ms(NOW - 2 * HOUR_MS);
    let head = commit(&store, None, "kept\n");
    set_ref(&store, "refs/heads/main", head);
    let old = [
        "objects/ab/tmp_obj_old",
        "objects/tmp_obj_top",
        "objects/pack/tmp_pack_old",
        "refs/heads/main.lock",
        "packed-refs.lock",
        "HEAD.lock",
        "logs/HEAD.lock",
    ];
    for key in old {
        store.insert_file(key, "x");
    }
    store.set_time_ms(NOW - 1000);
    let young = ["objects/cd/tmp_obj_young", "refs/heads/other.lock"];
    for key in young {
        store.insert_file(key, "x");
    }
    // Not leftovers: never deleted.
    store.insert_file("objects/info/packs", "\n");
    store.insert_file("refs/heads/tmp_obj_branch", format!("{head}\n"));

    // With the default grace period, only what is older than it goes.
    let mut cache = sha1();
    let collected = drive::run(
        &mut Collect::new(&cache, CollectOptions::new(NOW)).unwrap(),
        &mut cache,
        &store,
    )
    .unwrap();
    assert_eq!(collected.deleted, old.len() as u64);
    for key in old {
        assert!(store.file(key).is_none(), "{key} removed");
    }
    for key in young {
        assert!(store.file(key).is_some(), "{key} kept");
    }
    assert!(store.file("refs/heads/tmp_obj_branch").is_some() && store.file("objects/info/packs").is_some());

    // With no grace period a temporary file goes, but a lock lives until it is stale: a
    // live one is held for milliseconds, and removing it could lose an update.
    assert_eq!(gc(&store, 0).unwrap().deleted, 1);
    assert!(store.file("objects/cd/tmp_obj_young").is_none());
    assert!(store.file("refs/heads/other.lock").is_some());
    store.set_time_ms(NOW - STALE_LOCK_MS as i64 - 1);
    store.insert_file("refs/heads/other.lock", "x");
    assert_eq!(gc(&store, 0).unwrap().deleted, 1);
    assert!(store.file("refs/heads/other.lock").is_none());
    assert!(stored(&store).contains(&head));
}

#[test]
fn a_commit_graph_goes_only_when_gc_deletes_something() {
    let store = MemoryStore::new();
    let head = commit(&store, None, "kept\n");
    set_ref(&store, "refs/heads/main", head);
    store.insert_file("objects/info/commit-graph", "graph");
    store.insert_file("objects/info/commit-graphs/commit-graph-chain", "chain");
    assert_eq!(gc(&store, 0).unwrap().deleted, 0);
    assert!(
        store.file("objects/info/commit-graph").is_some(),
        "nothing deleted: kept"
    );
    commit(&store, None, "garbage\n");
    assert_eq!(gc(&store, 0).unwrap().deleted, 3, "the graph files are not counted");
    assert!(store.file("objects/info/commit-graph").is_none());
    assert!(store.file("objects/info/commit-graphs/commit-graph-chain").is_none());
    assert!(stored(&store).contains(&head));
}
