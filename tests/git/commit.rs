use snapgit_core::{
    ObjectCache,
    commit::{Change, Request},
    drive::MemoryStore,
};
use snapgit_tests::{GitRepo, signature};

#[test]
fn single_file_commit_matches_git() {
    let git = GitRepo::new();
    let blob = git.write_blob(b"hello\n");
    let tree = git.git_with_input(&["mktree"], format!("100644 blob {blob}\thello.txt\n").as_bytes());
    let env = [
        ("GIT_AUTHOR_DATE", "1700000000 +0130".to_string()),
        ("GIT_COMMITTER_DATE", "1700000000 +0130".to_string()),
    ];
    let out = git.git_output(&["commit-tree", tree.trim()], b"first\n", &env);
    assert!(out.status.success());
    let expected = snapgit_tests::oid(&String::from_utf8_lossy(&out.stdout));

    let store = MemoryStore::new();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let request = Request::new(
        None,
        vec![Change::put("hello.txt", "hello\n")],
        signature(1_700_000_000),
        "first",
    );
    let ours = snapgit_tests::commit(&mut cache, &store, request).expect("commit");
    assert_eq!(ours.id, expected);
    git.write_objects(&ours.objects);
    git.fsck();
}
