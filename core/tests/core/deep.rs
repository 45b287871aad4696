//! Paths as deep as the validator allows commit, read, diff, list and restore on a small
//! stack: no step of core recurses once per path component, so the component engine
//! (whose wasm stack is far smaller than a native thread's) agrees with native core.

use snapgit_core::{
    HashKind, ObjectCache,
    commit::{self, Change, Signature},
    diff::tree as diff,
    drive::{self, MemoryStore, ObjectStore},
    history, read, restore,
};

/// A stack far smaller than the 1 MiB a wasm32 guest gets by default (and than the 512 KiB
/// wasmtime lets wasm frames use): a walk that recursed once per folder would overflow it.
const STACK: usize = 128 << 10;

/// The deepest path under the limit: 2,047 one-letter folders and a file, 4,095 bytes.
fn deepest() -> String {
    let mut path = "a/".repeat(2047);
    path.push('f');
    assert!(path.len() < snapgit_core::limits::MAX_PATH_BYTES);
    path
}

#[test]
fn the_deepest_valid_path_commits_reads_diffs_and_restores_on_a_small_stack() {
    let run = || {
        let store = MemoryStore::new();
        let mut cache = ObjectCache::new(HashKind::Sha1);
        let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
        let path = deepest();
        let request = commit::Request::new(None, vec![Change::put(path.as_str(), "deep\n")], me.clone(), "deep");
        let first = drive::run(&mut commit::Commit::new(&cache, request).unwrap(), &mut cache, &store).unwrap();
        store.put_many(&first.objects).unwrap();
        let request = commit::Request::new(
            Some(first.id),
            vec![Change::put(path.as_str(), "deeper\n"), Change::put("top.md", "top\n")],
            me.clone(),
            "deeper",
        );
        let second = drive::run(&mut commit::Commit::new(&cache, request).unwrap(), &mut cache, &store).unwrap();
        store.put_many(&second.objects).unwrap();

        let mut cold = ObjectCache::new(HashKind::Sha1);
        let file = drive::run(
            &mut read::ReadFile::new(second.id, path.as_str()).unwrap(),
            &mut cold,
            &store,
        )
        .unwrap();
        assert_eq!(file.data, b"deeper\n");
        let files = drive::run(&mut read::ReadFiles::new(second.id, "").unwrap(), &mut cold, &store).unwrap();
        assert_eq!(files.len(), 2);
        let listed = drive::run(
            &mut read::ListTree::new(second.id, "", true).unwrap(),
            &mut cold,
            &store,
        )
        .unwrap();
        assert_eq!(listed.len(), 2, "files only, as git ls-tree -r lists them");
        let mut request = diff::Request::new(Some(first.id), second.id);
        request.patch = true;
        request.line_stats = true;
        let changed = drive::run(&mut diff::Diff::new(request).unwrap(), &mut cold, &store).unwrap();
        assert_eq!(changed.files.len(), 2);
        let mut request = history::Request::new(second.id, 10);
        request.path = Some(path.as_str().into());
        let log = drive::run(&mut history::Log::new(request).unwrap(), &mut cold, &store).unwrap();
        assert_eq!(log.commits.len(), 2);
        let request = restore::Request::new(second.id, first.id, me);
        let restored = drive::run(&mut restore::Restore::new(&cold, request).unwrap(), &mut cold, &store).unwrap();
        assert_eq!(restored.tree, first.tree);
    };
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(run)
        .unwrap()
        .join()
        .expect("no stack overflow");
}
