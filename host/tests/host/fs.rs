//! The folder backend next to real git: the folder is a git repository, `git update-ref`
//! and snapgit update the same ref at the same time, packed refs, stale locks.

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::Change,
    repo::{AdminOutput, Commit, CommitRequest, RepoOp, Start},
    step::{CasOutcome, CasRef},
};
use snapgit_host::{
    Storage, driver,
    storage::{
        Error, Object,
        fs::{FsOptions, FsStorage},
    },
};

use crate::support::{git, id, me, try_git};

const MAIN: &str = "refs/namespaces/agent/refs/heads/main";

fn open(dir: &Path) -> FsStorage {
    FsStorage::open(dir).unwrap()
}

async fn create_repo(store: &dyn Storage) -> ObjectId {
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let files = vec![Change::put("README.md", "hello\n")];
    let mut op = RepoOp::create_repo(&cache, "agent", "main", files, me(), "create").unwrap();
    match driver::run(&mut op, &mut cache, store, None).await.unwrap() {
        AdminOutput::Created { commit, .. } => commit,
        other => panic!("{other:?}"),
    }
}

async fn commit(store: &dyn Storage, cache: &mut ObjectCache, path: &str, data: &str) -> ObjectId {
    let request = CommitRequest::new("agent", "main", vec![Change::put(path, data)], me(), path);
    let mut op = Commit::new(cache, request).unwrap();
    driver::run(&mut op, cache, store, None).await.unwrap().commit
}

fn rev_parse(dir: &Path, rev: &str) -> String {
    git(dir, &["rev-parse", rev]).trim().to_owned()
}

#[tokio::test]
async fn a_new_folder_is_a_bare_git_repository() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("store"));
    let root = store.root().to_owned();
    assert_eq!(git(&root, &["rev-parse", "--is-bare-repository"]).trim(), "true");
    // Found by git's own discovery from inside the folder.
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ".");
    create_repo(&store).await;
    git(&root, &["fsck", "--strict"]);
    // Opening again keeps what is there.
    drop(store);
    let store = open(&root);
    assert!(store.read_ref(MAIN).await.unwrap().is_some());
}

/// Snapgit writers and a `git update-ref` loop move one branch at once: every commit
/// either side made lands in its first-parent history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn git_update_ref_and_snapgit_interleave() {
    const TASKS: usize = 4;
    const COMMITS: usize = 5;
    const GIT_COMMITS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    create_repo(&*store).await;

    let root = dir.path().to_owned();
    let git_writer = std::thread::spawn(move || {
        let mut landed = Vec::new();
        for n in 0..GIT_COMMITS {
            loop {
                let old = rev_parse(&root, MAIN);
                let tree = rev_parse(&root, &format!("{old}^{{tree}}"));
                let message = format!("git {n}");
                let new = git(&root, &["commit-tree", &tree, "-p", &old, "-m", &message])
                    .trim()
                    .to_owned();
                // git's own compare-and-swap, under git's own lock file.
                if try_git(&root, &["update-ref", MAIN, &new, &old]).status.success() {
                    landed.push(new);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        landed
    });

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
            let mut commits = Vec::new();
            for n in 0..COMMITS {
                let change = Change::put(format!("task-{task}/{n}.md"), format!("{task} {n}\n"));
                let request = CommitRequest::new("agent", "main", vec![change], me(), "snapgit");
                let mut op = Commit::new(&cache, request).unwrap();
                commits.push(driver::run(&mut op, &mut cache, &*store, None).await.unwrap().commit);
            }
            commits
        }));
    }
    let mut ours = Vec::new();
    for task in tasks {
        ours.extend(task.await.unwrap());
    }
    let theirs = tokio::task::spawn_blocking(move || git_writer.join().unwrap())
        .await
        .unwrap();

    let root = dir.path();
    git(root, &["fsck", "--strict"]);
    let log = git(root, &["log", "--first-parent", "--format=%H", MAIN]);
    let history: BTreeSet<&str> = log.lines().collect();
    assert_eq!(history.len(), 1 + TASKS * COMMITS + GIT_COMMITS);
    for commit in ours.iter().map(ToString::to_string).chain(theirs) {
        assert!(history.contains(commit.as_str()), "{commit} is missing");
    }
    let files = git(root, &["ls-tree", "-r", "--name-only", MAIN]);
    assert_eq!(files.lines().count(), 1 + TASKS * COMMITS);
}

#[tokio::test]
async fn packed_refs_are_read_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = open(root);
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let first = create_repo(&store).await;
    let op = RepoOp::create_branch("agent", "feature", Start::Branch("main".into())).unwrap();
    driver::run(&mut { op }, &mut cache, &store, None).await.unwrap();
    git(root, &["pack-refs", "--all", "--prune"]);
    assert!(!root.join(MAIN).exists(), "packed and pruned");

    let head = store.read_ref(MAIN).await.unwrap().unwrap();
    assert_eq!(head.value, first);
    let listed: Vec<String> = store.list("refs/").await.unwrap().into_iter().map(|l| l.key).collect();
    assert_eq!(
        listed,
        [
            "refs/namespaces/agent/refs/heads/feature",
            "refs/namespaces/agent/refs/heads/main"
        ]
    );

    // A commit writes a loose ref over the packed one, as git does.
    let mut cold = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let second = commit(&store, &mut cold, "a.md", "a\n").await;
    assert_eq!(rev_parse(root, MAIN), second.to_string());

    // Deleting a packed branch removes it from packed-refs too.
    let op = RepoOp::delete_branch("agent", "feature").unwrap();
    driver::run(&mut { op }, &mut cache, &store, None).await.unwrap();
    let refs = git(root, &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(refs.trim(), MAIN);
    assert!(
        !std::fs::read_to_string(root.join("packed-refs"))
            .unwrap()
            .contains("feature")
    );
    git(root, &["fsck", "--strict"]);
}

fn cas(expected: Option<snapgit_core::step::RefState>, new: ObjectId) -> CasRef {
    CasRef {
        key: MAIN.to_owned(),
        expected,
        new: Some(new),
    }
}

#[tokio::test]
async fn a_stale_lock_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = store.cas_ref(&cas(None, id(1))).await.unwrap();
    assert!(matches!(first, CasOutcome::Won { .. }));
    let state = store.read_ref(MAIN).await.unwrap();

    // A writer that crashed a minute ago left its lock file.
    let lock = dir.path().join(format!("{MAIN}.lock"));
    std::fs::write(&lock, "crashed\n").unwrap();
    let file = std::fs::File::options().write(true).open(&lock).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
    drop(file);

    let outcome = store.cas_ref(&cas(state, id(2))).await.unwrap();
    assert!(matches!(outcome, CasOutcome::Won { .. }), "{outcome:?}");
    assert!(!lock.exists());
    assert!(!dir.path().join(format!("{MAIN}.lock.lock")).exists());
    assert_eq!(rev_parse(dir.path(), MAIN), id(2).to_string());
}

#[tokio::test]
async fn a_held_lock_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.cas_ref(&cas(None, id(1))).await.unwrap();
    let state = store.read_ref(MAIN).await.unwrap();

    // Another writer (git, say) holds the lock and finishes a moment later.
    let lock = dir.path().join(format!("{MAIN}.lock"));
    std::fs::write(&lock, format!("{}\n", id(1))).unwrap();
    let releasing = Arc::new(AtomicBool::new(false));
    {
        let (lock, releasing) = (lock.clone(), releasing.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            releasing.store(true, Ordering::SeqCst);
            std::fs::remove_file(lock).unwrap();
        });
    }
    let outcome = store.cas_ref(&cas(state.clone(), id(2))).await.unwrap();
    assert!(releasing.load(Ordering::SeqCst), "the swap waited for the lock");
    assert!(matches!(outcome, CasOutcome::Won { .. }), "{outcome:?}");

    // A lock held past the wait (and not stale) is reported.
    let options = FsOptions {
        lock_wait: Duration::from_millis(100),
        ..FsOptions::default()
    };
    let impatient = FsStorage::open_with(dir.path(), options).unwrap();
    std::fs::write(&lock, "held\n").unwrap();
    let state = impatient.read_ref(MAIN).await.unwrap();
    match impatient.cas_ref(&cas(state, id(3))).await {
        Err(Error::Locked { key, lock: held, .. }) => assert_eq!((key.as_str(), held), (MAIN, lock.clone())),
        other => panic!("{other:?}"),
    }
    // git refuses too: both follow the same protocol.
    assert!(
        !try_git(dir.path(), &["update-ref", MAIN, &id(3).to_string()])
            .status
            .success()
    );
    std::fs::remove_file(&lock).unwrap();
}

#[tokio::test]
async fn lock_and_temporary_files_are_listed_for_gc() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.cas_ref(&cas(None, id(1))).await.unwrap();
    store
        .put_many(vec![Object {
            key: "objects/ab/cdef".into(),
            bytes: b"x".to_vec().into(),
        }])
        .await
        .unwrap();
    std::fs::write(dir.path().join(format!("{MAIN}.lock")), "x").unwrap();
    std::fs::write(dir.path().join("objects/ab/tmp_obj_123"), "x").unwrap();
    let listed: Vec<String> = store.list("").await.unwrap().into_iter().map(|l| l.key).collect();
    let lock = format!("{MAIN}.lock");
    assert_eq!(
        listed,
        [
            "HEAD",
            "config",
            "objects/ab/cdef",
            "objects/ab/tmp_obj_123",
            MAIN,
            &lock
        ]
    );
}

#[test]
fn the_hold_must_be_shorter_than_staleness() {
    let dir = tempfile::tempdir().unwrap();
    let options = FsOptions {
        lock_hold: Duration::from_secs(30),
        lock_stale: Duration::from_secs(30),
        ..FsOptions::default()
    };
    assert!(matches!(
        FsStorage::open_with(dir.path(), options),
        Err(Error::Config { .. })
    ));
}
