//! Annotated tags made by git, given where a commit is meant: reads, history, diffs,
//! restores and new branches peel them to their commit (a tag of a tag too), as git
//! peels `v1^{commit}`; a tag of a tree is not a commit.

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::Change,
    diff::tree as diff,
    drive::{self, MemoryStore},
    history, read,
    repo::{AdminOutput, RepoOp, Start},
    restore,
};
use snapgit_tests::{GitRepo, oid, signature};

struct Tagged {
    store: MemoryStore,
    first: ObjectId,
    second: ObjectId,
    /// `v1` on the first commit, `v1-again` on `v1`, `v2` on the second, `root` on the
    /// first commit's tree.
    v1: ObjectId,
    v1_again: ObjectId,
    v2: ObjectId,
    tree_tag: ObjectId,
}

fn tagged() -> Tagged {
    let store = MemoryStore::new();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let create = RepoOp::create_repo(
        &cache,
        "agent",
        "main",
        vec![Change::put("notes.md", "one\n"), Change::put("a/b.md", "b\n")],
        signature(1_700_000_000),
        "first",
    )
    .unwrap();
    let AdminOutput::Created { commit: first, .. } = drive::run(&mut { create }, &mut cache, &store).unwrap() else {
        panic!("created")
    };
    let request = snapgit_core::commit::Request::new(
        Some(first),
        vec![Change::put("notes.md", "one\ntwo\n"), Change::delete("a/b.md")],
        signature(1_700_000_100),
        "second",
    );
    let second = snapgit_tests::commit(&mut cache, &store, request).unwrap().id;

    let git = GitRepo::new();
    git.write_store(&store);
    git.git(&["tag", "-a", "v1", "-m", "one", &first.to_string()]);
    git.git(&["tag", "-a", "v1-again", "-m", "a tag of a tag", "v1"]);
    git.git(&["tag", "-a", "v2", "-m", "two", &second.to_string()]);
    git.git(&["tag", "-a", "root", "-m", "a tree", &format!("{first}^{{tree}}")]);
    for (id, bytes) in git.loose_objects() {
        store.insert_raw(id, bytes);
    }
    let tag = |name: &str| oid(&git.git(&["rev-parse", &format!("refs/tags/{name}")]));
    Tagged {
        first,
        second,
        v1: tag("v1"),
        v1_again: tag("v1-again"),
        v2: tag("v2"),
        tree_tag: tag("root"),
        store,
    }
}

fn cache() -> ObjectCache {
    ObjectCache::new(gix_hash::Kind::Sha1)
}

#[test]
fn reads_peel_tags_to_their_commit() {
    let t = tagged();
    assert_ne!(t.v1, t.first);
    for tag in [t.v1, t.v1_again] {
        let info = drive::run(&mut read::ReadCommit::new(tag), &mut cache(), &t.store).unwrap();
        assert_eq!(info.id, t.first, "the commit a tag names");
        let files = drive::run(&mut read::ReadFiles::new(tag, "").unwrap(), &mut cache(), &t.store).unwrap();
        let paths: Vec<String> = files.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(paths, ["a/b.md", "notes.md"]);
        let file = drive::run(
            &mut read::ReadFile::new(tag, "notes.md").unwrap(),
            &mut cache(),
            &t.store,
        )
        .unwrap();
        assert_eq!(file.data, b"one\n");
    }
}

#[test]
fn history_from_a_tag_is_the_history_of_its_commit() {
    let t = tagged();
    let log = |start| {
        let mut op = history::Log::new(history::Request::new(start, 10)).unwrap();
        let page = drive::run(&mut op, &mut cache(), &t.store).unwrap();
        page.commits.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(log(t.v2), vec![t.second, t.first]);
    assert_eq!(log(t.v2), log(t.second));
}

#[test]
fn diffs_between_tags_name_the_commits_compared() {
    let t = tagged();
    let mut request = diff::Request::new(Some(t.v1_again), t.v2);
    request.line_stats = true;
    let out = drive::run(&mut diff::Diff::new(request).unwrap(), &mut cache(), &t.store).unwrap();
    assert_eq!((out.from, out.to), (Some(t.first), t.second));
    let paths: Vec<String> = out.files.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(paths, ["a/b.md", "notes.md"]);
    // Without `from`: the first parent of the tagged commit.
    let out = drive::run(
        &mut diff::Diff::new(diff::Request::new(None, t.v2)).unwrap(),
        &mut cache(),
        &t.store,
    )
    .unwrap();
    assert_eq!((out.from, out.to), (Some(t.first), t.second));
}

#[test]
fn a_restore_or_a_branch_from_a_tag_uses_its_commit() {
    let t = tagged();
    let mut cache = cache();
    let request = restore::Request::new(t.second, t.v1, signature(1_700_000_200));
    let mut op = restore::Restore::new(&cache, request).unwrap();
    let out = drive::run(&mut op, &mut cache, &t.store).unwrap();
    let info = drive::run(&mut read::ReadCommit::new(t.first), &mut cache, &t.store).unwrap();
    assert_eq!(out.tree, info.tree, "the tagged commit's tree, restored");

    let mut op = RepoOp::create_branch("agent", "from-tag", Start::Commit(t.v1_again)).unwrap();
    let AdminOutput::BranchCreated(at) = drive::run(&mut op, &mut cache, &t.store).unwrap() else {
        panic!("created")
    };
    assert_eq!(at, t.first, "the branch points at the commit, never at a tag");
    assert!(
        t.store
            .refs()
            .contains(&("refs/namespaces/agent/refs/heads/from-tag".into(), t.first))
    );
}

#[test]
fn a_tag_of_a_tree_is_not_a_commit() {
    let t = tagged();
    let err = drive::run(&mut read::ReadCommit::new(t.tree_tag), &mut cache(), &t.store).unwrap_err();
    assert!(
        matches!(err, read::Error::NotACommit { id, .. } if id == t.tree_tag),
        "{err:?}"
    );
}
