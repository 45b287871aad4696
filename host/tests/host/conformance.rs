//! The storage contract, one function per property, run against every backend: in
//! memory, a folder, and a real S3-compatible server (`SNAPGIT_SERVICES=1`).

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::Change,
    gc,
    object::encode_loose,
    read::ReadFiles,
    repo::{AdminOutput, Commit, CommitRequest, RepoOp},
    step::{CasOutcome, CasRef, RefState, Swap},
};
use snapgit_host::{
    Storage, driver,
    storage::{Error, Limits, Object},
};

use crate::support::{Fixture, fsck, git, id, me, number};

/// Opens a fresh store of one backend, `None` when its server is not available.
type Make = fn(Limits) -> Option<Fixture>;

macro_rules! backends {
    ($($property:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $property() {
                super::$property(crate::support::memory).await
            })*
        }
        mod fs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $property() {
                super::$property(crate::support::fs).await
            })*
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $property() {
                super::$property(crate::support::s3).await
            })*
        }
    };
}

backends!(
    absent_keys_read_as_none,
    put_then_get_in_order,
    put_keeps_the_first_bytes,
    put_refreshes_an_existing_object,
    list_filters_by_prefix,
    delete_removes_and_ignores_absent,
    head_is_written,
    refs_compare_and_swap,
    refs_that_are_not_refs_are_corrupt,
    reads_are_capped,
    invalid_keys_are_refused,
    sixteen_writers_race_one_ref,
    files_swap_only_from_what_was_read,
    eight_writers_race_one_file,
    concurrent_commits_all_survive,
    gc_deletes_only_old_unreachable_objects,
);

fn key(n: u32) -> String {
    format!("objects/{:02x}/{:038x}", n % 256, n)
}

fn object(key: &str, bytes: &str) -> Object {
    Object {
        key: key.to_owned(),
        bytes: bytes.as_bytes().to_vec().into(),
    }
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

async fn absent_keys_read_as_none(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    assert_eq!(store.get_many(&[key(1), key(2)]).await.unwrap(), vec![None, None]);
    assert_eq!(store.get_many(&[]).await.unwrap(), Vec::<Option<Vec<u8>>>::new());
    assert_eq!(store.read_ref("refs/heads/none").await.unwrap(), None);
    assert!(store.list("refs/").await.unwrap().is_empty());
}

async fn put_then_get_in_order(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    store
        .put_many(vec![
            object(&key(1), "one"),
            object(&key(2), "two"),
            object(&key(300), "three"),
        ])
        .await
        .unwrap();
    let got = store.get_many(&[key(300), key(4), key(1), key(2)]).await.unwrap();
    assert_eq!(
        got,
        vec![
            Some(b"three".to_vec()),
            None,
            Some(b"one".to_vec()),
            Some(b"two".to_vec())
        ]
    );
    // The driver's parallel reads keep the order too.
    let many: Vec<String> = (1000..1100).map(key).collect();
    let objects = many.iter().map(|k| object(k, k)).collect();
    driver::put_all(&*store, objects, 8).await.unwrap();
    let got = driver::get_all(&*store, many.clone(), 8).await.unwrap();
    let expected: Vec<Option<Vec<u8>>> = many.iter().map(|k| Some(k.as_bytes().to_vec())).collect();
    assert_eq!(got, expected);
}

async fn put_keeps_the_first_bytes(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    store.put_many(vec![object(&key(7), "first")]).await.unwrap();
    store.put_many(vec![object(&key(7), "second")]).await.unwrap();
    assert_eq!(store.get_many(&[key(7)]).await.unwrap(), vec![Some(b"first".to_vec())]);
}

async fn put_refreshes_an_existing_object(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    store.put_many(vec![object(&key(9), "x")]).await.unwrap();
    let before = store.list(&key(9)).await.unwrap()[0].modified_ms;
    // Object stores stamp whole seconds.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.put_many(vec![object(&key(9), "x")]).await.unwrap();
    let after = store.list(&key(9)).await.unwrap()[0].modified_ms;
    assert!(after > before, "modified {before} -> {after}");
}

async fn list_filters_by_prefix(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    let started = now_ms();
    store
        .put_many(vec![
            object("objects/aa/0001", "1"),
            object("objects/aa/0002", "22"),
            object("objects/ab/0003", "333"),
            object("refs/namespaces/r/refs/heads/main", &format!("{}\n", id(1))),
        ])
        .await
        .unwrap();
    let listed = store.list("objects/").await.unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(names, ["objects/aa/0001", "objects/aa/0002", "objects/ab/0003"]);
    assert_eq!(listed.iter().map(|l| l.size).collect::<Vec<_>>(), [1, 2, 3]);
    for listed in &listed {
        // Same machine (or loopback server): within a minute of the write.
        assert!((listed.modified_ms - started).abs() < 60_000, "{listed:?} vs {started}");
    }
    let partial: Vec<String> = store
        .list("objects/a")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(partial.len(), 3);
    let one: Vec<String> = store
        .list("objects/ab/")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(one, ["objects/ab/0003"]);
    let refs = store.list("refs/namespaces/").await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].size, 41);
    assert!(store.list("nothing/").await.unwrap().is_empty());
    let all: BTreeSet<String> = store.list("").await.unwrap().into_iter().map(|l| l.key).collect();
    assert!(all.contains("HEAD") && all.contains("objects/ab/0003"), "{all:?}");
}

async fn delete_removes_and_ignores_absent(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    store
        .put_many(vec![object(&key(1), "1"), object(&key(2), "2")])
        .await
        .unwrap();
    store.delete(&[key(1), key(3)]).await.unwrap();
    store.delete(&[]).await.unwrap();
    assert_eq!(
        store.get_many(&[key(1), key(2)]).await.unwrap(),
        vec![None, Some(b"2".to_vec())]
    );
    let listed: Vec<String> = store
        .list("objects/")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(listed, [key(2)]);
    // Refs are deleted unconditionally too.
    let r = "refs/namespaces/r/refs/heads/x";
    create(&*store, r, id(5)).await;
    store.delete(&keys(&[r])).await.unwrap();
    assert_eq!(store.read_ref(r).await.unwrap(), None);
}

async fn head_is_written(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    store.put_many(vec![object(&key(1), "1")]).await.unwrap();
    let head = store.get_many(&keys(&["HEAD"])).await.unwrap();
    assert_eq!(head, vec![Some(snapgit_core::store::HEAD.as_bytes().to_vec())]);
}

async fn create(store: &dyn Storage, key: &str, value: ObjectId) -> RefState {
    let cas = CasRef {
        key: key.to_owned(),
        expected: None,
        new: Some(value),
    };
    match store.cas_ref(&cas).await.unwrap() {
        CasOutcome::Won { version } => RefState { value, version },
        lost => panic!("{lost:?}"),
    }
}

fn swap(key: &str, expected: Option<&RefState>, new: Option<ObjectId>) -> CasRef {
    CasRef {
        key: key.to_owned(),
        expected: expected.cloned(),
        new,
    }
}

async fn refs_compare_and_swap(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    let r = "refs/namespaces/agent-1/refs/heads/main";

    // Create: only if absent.
    let first = create(&*store, r, id(1)).await;
    assert_eq!(store.read_ref(r).await.unwrap().as_ref(), Some(&first));
    match store.cas_ref(&swap(r, None, Some(id(2)))).await.unwrap() {
        CasOutcome::Lost { current } => assert_eq!(current.as_ref(), Some(&first)),
        won => panic!("a second create won: {won:?}"),
    }

    // Update: only from the state read.
    let second = match store.cas_ref(&swap(r, Some(&first), Some(id(2)))).await.unwrap() {
        CasOutcome::Won { version } => RefState { value: id(2), version },
        lost => panic!("{lost:?}"),
    };
    assert_eq!(store.read_ref(r).await.unwrap().as_ref(), Some(&second));
    match store.cas_ref(&swap(r, Some(&first), Some(id(3)))).await.unwrap() {
        CasOutcome::Lost { current } => assert_eq!(current.as_ref(), Some(&second)),
        won => panic!("a stale swap won: {won:?}"),
    }

    // Back to an earlier value: the value is the whole state, so that is fine.
    let third = match store.cas_ref(&swap(r, Some(&second), Some(id(1)))).await.unwrap() {
        CasOutcome::Won { version } => RefState { value: id(1), version },
        lost => panic!("{lost:?}"),
    };
    assert_eq!(store.read_ref(r).await.unwrap().map(|s| s.value), Some(id(1)));
    let listed = store.list("refs/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].key.as_str(), listed[0].size), (r, 41));
    let stored = store.get_many(&keys(&[r])).await.unwrap();
    assert_eq!(
        stored,
        vec![Some(format!("{}\n", id(1)).into_bytes())],
        "git's loose ref format"
    );

    // Delete: only from the state read.
    match store.cas_ref(&swap(r, Some(&second), None)).await.unwrap() {
        CasOutcome::Lost { current } => assert_eq!(current.map(|s| s.value), Some(id(1))),
        won => panic!("a stale delete won: {won:?}"),
    }
    assert!(matches!(
        store.cas_ref(&swap(r, Some(&third), None)).await.unwrap(),
        CasOutcome::Won { .. }
    ));
    assert_eq!(store.read_ref(r).await.unwrap(), None);
    assert!(store.list("refs/").await.unwrap().is_empty());

    // Absent: deleting "if absent" is done; updating it is lost.
    assert!(matches!(
        store.cas_ref(&swap(r, None, None)).await.unwrap(),
        CasOutcome::Won { .. }
    ));
    assert_eq!(
        store.cas_ref(&swap(r, Some(&first), Some(id(4)))).await.unwrap(),
        CasOutcome::Lost { current: None }
    );
    // Recreated after a delete.
    let again = create(&*store, r, id(9)).await;
    assert_eq!(store.read_ref(r).await.unwrap(), Some(again));
}

async fn refs_that_are_not_refs_are_corrupt(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    let r = "refs/namespaces/r/refs/heads/bad";
    store.put_many(vec![object(r, "not a ref\n")]).await.unwrap();
    assert!(matches!(
        store.read_ref(r).await,
        Err(Error::CorruptRef { key, .. }) if key == r
    ));
}

async fn reads_are_capped(make: Make) {
    let Some(store) = make(Limits { max_read_bytes: 16 }) else {
        return;
    };
    store
        .put_many(vec![
            object(&key(1), "0123456789abcdef"),
            object(&key(2), "0123456789abcdefg"),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_many(&[key(1)]).await.unwrap()[0].as_ref().map(Vec::len),
        Some(16)
    );
    match store.get_many(&[key(1), key(2)]).await {
        Err(Error::TooLarge { key: k, size, limit }) => assert_eq!((k, size, limit), (key(2), 17, 16)),
        other => panic!("{other:?}"),
    }
}

async fn invalid_keys_are_refused(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    for bad in ["", "/etc/passwd", "../x", "objects/../../x", "a//b", "a/./b", "a\\b"] {
        let invalid = |result: Result<_, Error>| matches!(result, Err(Error::InvalidKey { .. }));
        assert!(invalid(store.get_many(&keys(&[bad])).await.map(drop)), "get {bad:?}");
        assert!(invalid(store.put_many(vec![object(bad, "x")]).await), "put {bad:?}");
        assert!(invalid(store.read_ref(bad).await.map(drop)), "read_ref {bad:?}");
        assert!(
            invalid(store.cas_ref(&swap(bad, None, Some(id(1)))).await.map(drop)),
            "cas {bad:?}"
        );
        assert!(invalid(store.delete(&keys(&[bad])).await), "delete {bad:?}");
    }
    // A lock file is no key to read or write, but GC may delete one a killed writer left.
    let lock = "refs/heads/main.lock";
    let invalid = |result: Result<_, Error>| matches!(result, Err(Error::InvalidKey { .. }));
    assert!(invalid(store.get_many(&keys(&[lock])).await.map(drop)), "get {lock:?}");
    assert!(invalid(store.put_many(vec![object(lock, "x")]).await), "put {lock:?}");
    assert!(invalid(store.read_ref(lock).await.map(drop)), "read_ref {lock:?}");
    store.delete(&keys(&[lock])).await.expect("deleting a lock file");
    for bad in ["/abs", "../", "a/../b/"] {
        assert!(
            matches!(store.list(bad).await, Err(Error::InvalidKey { .. })),
            "list {bad:?}"
        );
    }
}

/// 16 writers each add 1 to a counter kept in one ref, `ROUNDS` times, by read and
/// compare-and-swap. With a linearizable swap no increment is lost.
async fn sixteen_writers_race_one_ref(make: Make) {
    const WRITERS: u64 = 16;
    const ROUNDS: u64 = 6;
    let Some(store) = make(Limits::default()) else { return };
    let r = "refs/namespaces/race/refs/heads/main";
    create(&*store, r, id(0)).await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut lost = 0u64;
            let mut current = store.read_ref(r).await.unwrap().unwrap();
            for _ in 0..ROUNDS {
                loop {
                    let next = id(number(&current.value) + 1);
                    match store.cas_ref(&swap(r, Some(&current), Some(next))).await.unwrap() {
                        CasOutcome::Won { version } => {
                            current = RefState { value: next, version };
                            break;
                        }
                        CasOutcome::Lost { current: now } => {
                            lost += 1;
                            current = now.expect("the ref is never deleted");
                        }
                    }
                }
            }
            lost
        }));
    }
    let mut lost = 0;
    for task in tasks {
        lost += task.await.unwrap();
    }
    let end = store.read_ref(r).await.unwrap().unwrap();
    assert_eq!(
        number(&end.value),
        WRITERS * ROUNDS,
        "increments were lost ({lost} swaps lost)"
    );
    eprintln!(
        "[{}] {WRITERS} writers x {ROUNDS} increments, {lost} lost swaps",
        store.location()
    );
}

fn file_swap(key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> Swap {
    Swap {
        key: key.to_owned(),
        expected: expected.map(<[u8]>::to_vec),
        new: new.map(<[u8]>::to_vec),
    }
}

async fn read_shallow(store: &dyn Storage) -> Option<Vec<u8>> {
    store.get_many(&keys(&["shallow"])).await.unwrap().remove(0)
}

/// `shallow` and `config` are replaced only from exactly what they hold; nothing else
/// may be swapped.
async fn files_swap_only_from_what_was_read(make: Make) {
    let Some(store) = make(Limits::default()) else { return };
    assert!(
        !store
            .swap(&file_swap("shallow", Some(b"x\n"), Some(b"y\n")))
            .await
            .unwrap()
    );
    assert_eq!(read_shallow(&*store).await, None, "a lost swap writes nothing");
    assert!(store.swap(&file_swap("shallow", None, Some(b"a\n"))).await.unwrap());
    assert!(
        !store.swap(&file_swap("shallow", None, Some(b"b\n"))).await.unwrap(),
        "it exists now"
    );
    assert!(
        !store
            .swap(&file_swap("shallow", Some(b"a"), Some(b"b\n")))
            .await
            .unwrap(),
        "bytes, not a prefix"
    );
    assert_eq!(read_shallow(&*store).await.as_deref(), Some(&b"a\n"[..]));
    assert!(
        store
            .swap(&file_swap("shallow", Some(b"a\n"), Some(b"a\nb\n")))
            .await
            .unwrap()
    );
    assert_eq!(read_shallow(&*store).await.as_deref(), Some(&b"a\nb\n"[..]));
    assert!(store.swap(&file_swap("shallow", Some(b"a\nb\n"), None)).await.unwrap());
    assert_eq!(read_shallow(&*store).await, None, "a swap to nothing removes it");
    assert!(
        store.swap(&file_swap("shallow", None, None)).await.unwrap(),
        "absent stays absent"
    );
    for key in ["HEAD", "refs/heads/main", "objects/pack/x.promisor", "shallow.lock"] {
        assert!(
            store.swap(&file_swap(key, None, Some(b"z"))).await.is_err(),
            "{key} must not be swappable"
        );
    }
    assert_eq!(
        store.get_many(&keys(&["HEAD"])).await.unwrap()[0]
            .as_deref()
            .map(|h| h.starts_with(b"ref: ")),
        Some(true)
    );
}

/// Eight writers each add their lines to one file by read and swap: none is lost.
async fn eight_writers_race_one_file(make: Make) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 4;
    let Some(store) = make(Limits::default()) else { return };
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                loop {
                    let current = store.get_many(&keys(&["shallow"])).await.unwrap().remove(0);
                    let mut next = current.clone().unwrap_or_default();
                    next.extend_from_slice(format!("{writer} {round}\n").as_bytes());
                    if store
                        .swap(&file_swap("shallow", current.as_deref(), Some(&next)))
                        .await
                        .unwrap()
                    {
                        break;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let end = store.get_many(&keys(&["shallow"])).await.unwrap().remove(0).unwrap();
    assert_eq!(
        end.iter().filter(|b| **b == b'\n').count(),
        WRITERS * ROUNDS,
        "lines were lost"
    );
}

async fn create_repo(store: &dyn Storage, repo: &str) -> ObjectId {
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let files = vec![Change::put("README.md", "hello\n")];
    let mut op = RepoOp::create_repo(&cache, repo, "main", files, me(), "create").unwrap();
    match driver::run(&mut op, &mut cache, store, None).await.unwrap() {
        AdminOutput::Created { commit, .. } => commit,
        other => panic!("{other:?}"),
    }
}

/// Writers in several tasks commit to one branch at once, each with its own cache: every
/// commit lands, and the store is a valid git repository with all of them in history.
async fn concurrent_commits_all_survive(make: Make) {
    const TASKS: usize = 6;
    const COMMITS: usize = 4;
    let Some(fixture) = make(Limits::default()) else { return };
    let store = fixture.store.clone();
    create_repo(&*store, "agent").await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
            let mut commits = Vec::new();
            for n in 0..COMMITS {
                let change = Change::put(format!("task-{task}/turn-{n}.md"), format!("task {task} turn {n}\n"));
                let request = CommitRequest::new("agent", "main", vec![change], me(), format!("task {task} turn {n}"));
                let mut op = Commit::new(&cache, request).unwrap();
                let out = driver::run(&mut op, &mut cache, &*store, None).await.unwrap();
                assert!(out.created);
                commits.push((out.commit, out.attempts));
            }
            commits
        }));
    }
    let mut commits = Vec::new();
    let mut attempts = 0;
    for task in tasks {
        for (commit, tries) in task.await.unwrap() {
            commits.push(commit);
            attempts += tries;
        }
    }
    eprintln!(
        "[{}] {} commits from {TASKS} tasks took {attempts} attempts",
        store.location(),
        commits.len()
    );

    // Every file is in the head's tree, read back through the driver with a cold cache.
    let head = store
        .read_ref("refs/namespaces/agent/refs/heads/main")
        .await
        .unwrap()
        .unwrap()
        .value;
    let mut cold = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let mut op = ReadFiles::new(head, "").unwrap();
    let files = driver::run(&mut op, &mut cold, &*store, None).await.unwrap();
    assert_eq!(files.len(), TASKS * COMMITS + 1);

    // Git agrees: the store checks out, and the branch's history holds every commit.
    let dir = fsck(&fixture).await;
    // Full ref names: git resolves revisions outside its --namespace.
    let log = git(
        &dir.path,
        &[
            "log",
            "--first-parent",
            "--format=%H",
            "refs/namespaces/agent/refs/heads/main",
        ],
    );
    let history: BTreeSet<&str> = log.lines().collect();
    assert_eq!(history.len(), TASKS * COMMITS + 1);
    for commit in &commits {
        assert!(
            history.contains(commit.to_string().as_str()),
            "{commit} is not in history"
        );
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// GC after a pruned history: unreachable objects older than the grace period go,
/// reachable ones and young ones stay, and the store still passes `git fsck`.
async fn gc_deletes_only_old_unreachable_objects(make: Make) {
    let Some(fixture) = make(Limits::default()) else { return };
    let store = fixture.store.clone();
    create_repo(&*store, "agent").await;
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    for n in 0..3 {
        let change = Change::put("memory.md", format!("turn {n}\n"));
        let mut op = Commit::new(&cache, CommitRequest::new("agent", "main", vec![change], me(), "turn")).unwrap();
        driver::run(&mut op, &mut cache, &*store, None).await.unwrap();
    }
    let garbage = encode_loose(
        snapgit_core::HashKind::Sha1,
        gix_object::Kind::Blob,
        b"nobody points here\n",
    )
    .unwrap();
    let garbage_key = garbage.key();
    store.put_many(vec![Object::from(garbage)]).await.unwrap();

    // Now: everything is young, nothing goes.
    let mut op = gc::Collect::new(&cache, gc::CollectOptions::new(now_ms())).unwrap();
    let collected = driver::run(&mut op, &mut cache, &*store, None).await.unwrap();
    assert_eq!((collected.deleted, collected.young), (0, 1));

    // Two hours later: the unreachable blob goes; the branch is intact.
    let mut op = gc::Collect::new(&cache, gc::CollectOptions::new(now_ms() + 2 * 3_600_000)).unwrap();
    let collected = driver::run(&mut op, &mut cache, &*store, None).await.unwrap();
    assert_eq!(collected.deleted, 1);
    assert_eq!(store.get_many(&[garbage_key]).await.unwrap(), vec![None]);
    fsck(&fixture).await;
}
