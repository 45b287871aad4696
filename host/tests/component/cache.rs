//! The runtime's object cache: a commit after a commit reads no object from storage, and
//! what it writes is what a runtime without the cache writes.

use std::{collections::BTreeMap, sync::Arc};

use bstr::ByteSlice;
use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    api::Request,
    commit::Change,
    gc, read,
    repo::{CommitOutput, CommitRequest},
};
use snapgit_host::{
    driver,
    runtime::{Config, Io, Runtime, Session},
    storage::{Storage, memory::MemoryStorage},
};

use crate::metered::Metered;

use crate::{commit_request, create_repo, read_head, runtime, signature};

fn put(path: &str, data: &str) -> Change {
    Change::put(path, data)
}

fn commit_of(changes: Vec<Change>, message: &str) -> CommitRequest {
    commit_request(changes, signature(), message)
}

/// The files of the first commit: 60 files in three levels of folders.
fn files() -> Vec<(String, String)> {
    (0..60)
        .map(|i| {
            (
                format!("dir-{}/sub-{}/file-{i}.md", i % 3, i % 5),
                format!("# file {i}\n"),
            )
        })
        .collect()
}

/// Create the repo, then commit two turns; the outputs of both commits, and what the
/// second one asked of storage.
async fn two_turns(runtime: &Runtime, metered: &Arc<Metered>) -> (CommitOutput, CommitOutput, u64, u64) {
    let io = Io::new(metered.clone());
    let initial: Vec<Change> = files().iter().map(|(p, d)| put(p, d)).collect();
    create_repo(runtime, &io, initial).await;
    let first: CommitOutput = runtime
        .call(
            &io,
            Request::Commit(commit_of(vec![put("dir-0/sub-0/file-0.md", "turn 1\n")], "turn 1")),
        )
        .await
        .unwrap();
    let before = metered.counts();
    let second: CommitOutput = runtime
        .call(
            &io,
            Request::Commit(commit_of(
                vec![
                    put("dir-1/sub-1/file-1.md", "turn 2\n"),
                    put("dir-0/sub-0/file-0.md", "turn 2 again\n"),
                ],
                "turn 2",
            )),
        )
        .await
        .unwrap();
    let counts = metered.counts().since(&before);
    // The head is the one the first commit set: remembered, not read.
    assert_eq!(counts.read_ref, 0, "{counts}");
    assert_eq!(counts.cas, 1, "{counts}");
    assert_eq!(counts.put, second.objects_written as u64, "{counts}");
    (first, second, counts.get, counts.total())
}

/// Every file at `commit`, read by native core with an empty cache straight from storage.
async fn files_at(storage: &dyn Storage, commit: ObjectId) -> BTreeMap<String, String> {
    let mut cache = ObjectCache::new(HashKind::Sha1);
    let mut op = read::ReadFiles::new(commit, "").unwrap();
    let files = driver::run(&mut op, &mut cache, storage, None).await.unwrap();
    files
        .into_iter()
        .map(|f| {
            (
                f.path.to_str_lossy().into_owned(),
                String::from_utf8(f.file.data).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_second_commit_reads_no_object_and_writes_the_same() {
    let cached = runtime(Config::default());
    let metered = Arc::new(Metered::new(Arc::new(MemoryStorage::new())));
    let (first, second, gets, total) = two_turns(&cached, &metered).await;
    assert_eq!(gets, 0, "the second commit read objects from storage");
    // One put per new object (2 blobs, 5 trees, the commit), and the compare-and-swap.
    assert_eq!(second.objects_written, 8);
    assert_eq!(total, 9);
    let (objects, bytes) = cached.cached_objects();
    assert!(objects > 0 && bytes > 0, "{objects} objects, {bytes} bytes");

    // The same turns on a runtime without the cache: the same commits and files, and
    // the second commit reads the trees it changes (and the old blobs, for line counts).
    let uncached = runtime(Config {
        object_cache_bytes: 0,
        ..Config::default()
    });
    let plain = Arc::new(Metered::new(Arc::new(MemoryStorage::new())));
    let (plain_first, plain_second, plain_gets, _) = two_turns(&uncached, &plain).await;
    assert_eq!(uncached.cached_objects(), (0, 0));
    assert!(plain_gets >= 8, "{plain_gets} object reads without the cache");
    assert_eq!(plain.counts().read_ref, metered.counts().read_ref);
    assert_eq!(first.commit, plain_first.commit);
    assert_eq!(second.commit, plain_second.commit);
    assert_eq!(second.tree, plain_second.tree);
    // The same files changed, with the same line counts.
    assert_eq!(second.files, plain_second.files);
    assert!(second.files.iter().all(|f| f.lines.is_some()), "{:?}", second.files);

    let mut expected: BTreeMap<String, String> = files().into_iter().collect();
    expected.insert("dir-1/sub-1/file-1.md".into(), "turn 2\n".into());
    expected.insert("dir-0/sub-0/file-0.md".into(), "turn 2 again\n".into());
    assert_eq!(files_at(metered.as_ref(), second.commit).await, expected);
    assert_eq!(files_at(plain.as_ref(), plain_second.commit).await, expected);
}

#[tokio::test]
async fn the_cache_is_per_store_and_forgets_deleted_objects() {
    let runtime = runtime(Config::default());
    let first = Arc::new(Metered::new(Arc::new(MemoryStorage::new())));
    let (_, second_commit, _, _) = two_turns(&runtime, &first).await;

    // Another store with the same history: its objects are not taken from the first's.
    let other = Arc::new(Metered::new(Arc::new(MemoryStorage::new())));
    let io = Io::new(other.clone());
    let initial: Vec<Change> = files().iter().map(|(p, d)| put(p, d)).collect();
    create_repo(&runtime, &io, initial).await;
    let read_commit = Request::ReadCommit {
        commit: second_commit.commit,
    };
    let before = other.counts();
    let err = runtime.run(&io, read_commit.clone()).await.unwrap_err();
    assert_eq!(other.counts().since(&before).get, 1);
    assert!(err.to_string().contains(&second_commit.commit.to_string()), "{err}");

    // Deleting through the component forgets: after a collection of everything
    // unreachable, reading a collected commit goes to storage and fails.
    let io = Io::new(first.clone());
    runtime
        .run(&io, Request::DeleteRepo { repo: "agent".into() })
        .await
        .unwrap();
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    let mut options = gc::CollectOptions::new(later);
    options.grace_ms = 0;
    let collected: gc::Collected = runtime.call(&io, Request::Collect(options)).await.unwrap();
    assert!(collected.deleted > 0);
    let before = first.counts();
    let err = runtime.run(&io, read_commit).await.unwrap_err();
    assert_eq!(first.counts().since(&before).get, 1);
    assert!(err.to_string().contains(&second_commit.commit.to_string()), "{err}");
}

#[tokio::test]
async fn a_remembered_head_that_went_stale_costs_a_replay_not_an_update() {
    let runtime = runtime(Config::default());
    let metered = Arc::new(Metered::new(Arc::new(MemoryStorage::new())));
    let io = Io::new(metered.clone());
    let initial: Vec<Change> = files().iter().map(|(p, d)| put(p, d)).collect();
    create_repo(&runtime, &io, initial).await;
    let first: CommitOutput = runtime
        .call(
            &io,
            Request::Commit(commit_of(vec![put("first.md", "first\n")], "first")),
        )
        .await
        .unwrap();

    // Another writer (its own `Io`: nothing remembered) moves the branch.
    let other = Io::new(metered.clone());
    let theirs: CommitOutput = runtime
        .call(
            &other,
            Request::Commit(commit_of(vec![put("theirs.md", "theirs\n")], "theirs")),
        )
        .await
        .unwrap();
    assert_eq!(theirs.parent, first.commit);

    // `io` still remembers `first` as the head: its commit loses the swap, replays onto
    // `theirs` and keeps both changes.
    let before = metered.counts();
    let ours: CommitOutput = runtime
        .call(&io, Request::Commit(commit_of(vec![put("ours.md", "ours\n")], "ours")))
        .await
        .unwrap();
    let counts = metered.counts().since(&before);
    assert_eq!((counts.read_ref, counts.cas), (0, 2), "{counts}");
    assert_eq!(ours.attempts, 2);
    assert_eq!(ours.parent, theirs.commit);
    let files = files_at(metered.as_ref(), ours.commit).await;
    assert_eq!(files.get("theirs.md").map(String::as_str), Some("theirs\n"));
    assert_eq!(files.get("ours.md").map(String::as_str), Some("ours\n"));
    assert_eq!(files.get("first.md").map(String::as_str), Some("first\n"));

    // Reads never trust the remembered head: `read_head` asks storage.
    let before = metered.counts();
    assert_eq!(read_head(&runtime, &other, "main").await.unwrap(), ours.commit);
    assert_eq!(metered.counts().since(&before).read_ref, 1);
}

#[tokio::test]
async fn a_session_keeps_the_guests_cache_from_call_to_call_and_a_failure_does_not_spoil_it() {
    // No runtime cache: what the guest keeps is all that spares a read.
    let runtime = runtime(Config {
        object_cache_bytes: 0,
        ..Config::default()
    });
    let metered = Arc::new(Metered::new(Arc::new(MemoryStorage::new())));
    let io = Io::new(metered.clone());
    let initial: Vec<Change> = files().iter().map(|(p, d)| put(p, d)).collect();
    let (commit, _) = create_repo(&runtime, &io, initial).await;
    let read = |path: &str| Request::ReadFile {
        commit,
        path: path.into(),
    };

    // Calls of their own read the commit, its trees and the blob each time.
    let before = metered.counts();
    for _ in 0..2 {
        let file: read::File = runtime.call(&io, read("dir-0/sub-0/file-0.md")).await.unwrap();
        assert_eq!(file.data, b"# file 0\n");
    }
    let alone = metered.counts().since(&before).get;
    assert!(alone >= 2 * 5, "{alone} reads for two calls of their own");

    // In one session the second read, and a read of a file beside it, ask for no object
    // the first one read.
    let mut session = Session::new(&io);
    let first = metered.counts();
    let output = runtime
        .run_in(&mut session, read("dir-0/sub-0/file-0.md"))
        .await
        .unwrap();
    let read_once = metered.counts().since(&first).get;
    assert_eq!(
        read_once,
        alone / 2,
        "the session's first call reads as a call of its own"
    );
    assert_eq!(read::File::try_from(output).unwrap().data, b"# file 0\n");
    let again = metered.counts();
    runtime
        .run_in(&mut session, read("dir-0/sub-0/file-0.md"))
        .await
        .unwrap();
    assert_eq!(metered.counts().since(&again).get, 0);

    // A failure (no such file) leaves the instance and its cache to the next call.
    let err = runtime
        .run_in(&mut session, read("dir-0/sub-0/none.md"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code().map(snapgit_host::runtime::core_code),
        Some(snapgit_core::error::Code::NotFound),
        "{err}"
    );
    let beside = metered.counts();
    let output = runtime
        .run_in(&mut session, read("dir-0/sub-0/file-15.md"))
        .await
        .unwrap();
    assert_eq!(read::File::try_from(output).unwrap().data, b"# file 15\n");
    // Only the new blob: the commit and its trees are kept.
    assert_eq!(metered.counts().since(&beside).get, 1);

    // Released, the next call starts a fresh instance and reads again.
    assert!(session.has_instance());
    session.release();
    assert!(!session.has_instance());
    let fresh = metered.counts();
    runtime
        .run_in(&mut session, read("dir-0/sub-0/file-0.md"))
        .await
        .unwrap();
    assert_eq!(metered.counts().since(&fresh).get, read_once);
}

#[tokio::test]
async fn a_session_lets_a_guest_that_grew_large_go() {
    let runtime = runtime(Config::default());
    let io = Io::new(Arc::new(MemoryStorage::new()));
    create_repo(&runtime, &io, vec![put("small.md", "small\n")]).await;
    let mut session = Session::new(&io);
    let small = commit_of(vec![put("notes.md", "a note\n")], "small");
    runtime.run_in(&mut session, Request::Commit(small)).await.unwrap();
    assert!(session.has_instance(), "a small commit keeps its guest");
    // 40 MiB: the guest's memory grows past what a session keeps.
    let big = Change::put("big.bin", vec![0u8; 40 << 20]);
    runtime
        .run_in(&mut session, Request::Commit(commit_of(vec![big], "big")))
        .await
        .unwrap();
    assert!(!session.has_instance(), "a guest that grew large is let go");
    // The next call starts a fresh one, and works.
    let after = commit_of(vec![put("notes.md", "another note\n")], "after");
    runtime.run_in(&mut session, Request::Commit(after)).await.unwrap();
    assert!(session.has_instance());
}
