//! Benchmark: concurrent writers on one branch over a slow store.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench-store
//! ```
//!
//! Eight writer threads commit to the same branch of a repo of 500 files, through an
//! in-memory store that adds a fixed delay (20 ms) to every request, as a storage round
//! trip would. snapgit commits optimistically (put the new objects, compare-and-swap the
//! ref, replay on a lost race). The baseline does what the systems snapgit replaces do:
//! take a global lock, download every object of the repository, commit, upload the new
//! objects, move the ref, release the lock. Both run in this process, one after the
//! other; the table prints throughput, attempts and requests and bytes per commit.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{self, Change},
    drive::{self, MemoryStore, ObjectStore},
    object::NewObject,
    repo::{AdminOutput, Commit, CommitRequest, RepoOp},
    step::{CasOutcome, CasRef, Listed, LockRequest, RefState, StorageError},
    store,
};
use snapgit_tests::signature;

const WRITERS: usize = 8;
const FILES: usize = 500;
const DELAY: Duration = Duration::from_millis(20);
/// How many objects the baseline downloads in parallel per round trip.
const DOWNLOAD_PARALLELISM: usize = 16;

/// A store that sleeps once per request and counts requests and bytes.
struct Slow {
    inner: Arc<MemoryStore>,
    requests: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
}

impl Slow {
    fn new(inner: Arc<MemoryStore>) -> Self {
        Slow {
            inner,
            requests: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
        }
    }

    fn round_trip(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(DELAY);
    }
}

impl ObjectStore for Slow {
    fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        // One batch is fetched in parallel: one round trip per `DOWNLOAD_PARALLELISM` objects.
        for _ in 0..ids.len().div_ceil(DOWNLOAD_PARALLELISM).max(1) {
            self.round_trip();
        }
        let found = self.inner.get_many(ids)?;
        let bytes: usize = found.iter().flatten().map(Vec::len).sum();
        self.bytes_down.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(found)
    }

    fn put_many(&self, objects: &[NewObject]) -> Result<(), StorageError> {
        for _ in 0..objects.len().div_ceil(DOWNLOAD_PARALLELISM).max(1) {
            self.round_trip();
        }
        let bytes: usize = objects.iter().map(|o| o.loose.len()).sum();
        self.bytes_up.fetch_add(bytes as u64, Ordering::Relaxed);
        self.inner.put_many(objects)
    }

    fn read_ref(&self, key: &str) -> Result<Option<RefState>, StorageError> {
        self.round_trip();
        self.inner.read_ref(key)
    }

    fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, StorageError> {
        self.round_trip();
        self.inner.cas_ref(cas)
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StorageError> {
        self.round_trip();
        self.inner.list(prefix)
    }

    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        self.round_trip();
        self.inner.delete(keys)
    }

    fn acquire(&self, lock: &LockRequest) -> Result<Option<String>, StorageError> {
        self.round_trip();
        self.inner.acquire(lock)
    }

    fn release(&self, name: &str, token: &str) -> Result<(), StorageError> {
        self.round_trip();
        self.inner.release(name, token)
    }

    /// The waits core asks for after contention, slept: no request.
    fn wait(&self, ms: u64) -> Result<(), StorageError> {
        std::thread::sleep(Duration::from_millis(ms));
        Ok(())
    }
}

/// A fresh store holding repo `bench` with `FILES` files on `main`.
fn setup() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let files = (0..FILES)
        .map(|i| {
            Change::put(
                format!("memory/d{}/note-{i}.md", i % 25),
                format!("# Note {i}\n\nSome memory text.\n"),
            )
        })
        .collect();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut op = RepoOp::create_repo(&cache, "bench", "main", files, signature(0), "create").expect("valid");
    drive::run(&mut op, &mut cache, store.as_ref()).expect("created");
    store
}

struct Figures {
    label: &'static str,
    commits: u64,
    attempts: u64,
    elapsed: Duration,
    requests: u64,
    bytes_down: u64,
    bytes_up: u64,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self) {
        let per = |n: u64| n as f64 / self.commits as f64;
        println!(
            "{:<34} {:>7} {:>9.2} {:>9.2} {:>10.1} {:>12.0} {:>10.0} {:>9.2} s",
            self.label,
            self.commits,
            self.per_second(),
            per(self.attempts),
            per(self.requests),
            per(self.bytes_down),
            per(self.bytes_up),
            self.elapsed.as_secs_f64(),
        );
    }
}

fn change(writer: usize, n: usize) -> Vec<Change> {
    vec![Change::put(
        format!("memory/writer-{writer}/turn-{n:03}.md"),
        format!("writer {writer} remembers turn {n}\n"),
    )]
}

fn snapgit(commits_per_writer: usize, lock: bool) -> Figures {
    let store = setup();
    let slow = Arc::new(Slow::new(store.clone()));
    let attempts = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let slow = slow.clone();
            let attempts = attempts.clone();
            std::thread::spawn(move || {
                let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
                for n in 0..commits_per_writer {
                    let mut request =
                        CommitRequest::new("bench", "main", change(writer, n), signature(n as i64), "turn");
                    request.lock_ttl_ms = lock.then_some(10_000);
                    let mut op = Commit::new(&cache, request).expect("valid");
                    let out = drive::run(&mut op, &mut cache, slow.as_ref()).expect("commit lands");
                    attempts.fetch_add(u64::from(out.attempts), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer finished");
    }
    let figures = Figures {
        label: if lock {
            "snapgit, CAS + advisory lock"
        } else {
            "snapgit, CAS + replay"
        },
        commits: (WRITERS * commits_per_writer) as u64,
        attempts: attempts.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        requests: slow.requests.load(Ordering::Relaxed),
        bytes_down: slow.bytes_down.load(Ordering::Relaxed),
        bytes_up: slow.bytes_up.load(Ordering::Relaxed),
    };
    verify(&store, WRITERS * commits_per_writer);
    figures
}

/// The replaced design: one lock around download-everything, commit, upload.
fn baseline(commits_per_writer: usize) -> Figures {
    let store = setup();
    let slow = Arc::new(Slow::new(store.clone()));
    let lock = Arc::new(Mutex::new(()));
    let key = store::RepoName::new("bench")
        .expect("valid")
        .branch_key(&store::BranchName::new("main").expect("valid"));
    let start = Instant::now();
    let threads: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (slow, lock, key) = (slow.clone(), lock.clone(), key.clone());
            std::thread::spawn(move || {
                for n in 0..commits_per_writer {
                    // The lock service round trips (acquire, release) are counted like any request.
                    slow.round_trip();
                    let _guard = lock.lock().expect("lock");
                    let head = slow.read_ref(&key).expect("ref").expect("branch exists");
                    let listed = slow.list(store::OBJECTS).expect("list");
                    let ids: Vec<ObjectId> = listed
                        .iter()
                        .filter_map(|l| store::parse_object_key(&l.key, gix_hash::Kind::Sha1))
                        .collect();
                    let local = MemoryStore::new();
                    for (id, bytes) in ids.iter().zip(slow.get_many(&ids).expect("download")) {
                        local.insert_raw(*id, bytes.expect("listed objects exist"));
                    }
                    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
                    let request =
                        commit::Request::new(Some(head.value), change(writer, n), signature(n as i64), "turn");
                    let mut op = commit::Commit::new(&cache, request).expect("valid");
                    let out = drive::run(&mut op, &mut cache, &local).expect("commit");
                    slow.put_many(&out.objects).expect("upload");
                    let cas = CasRef {
                        key: key.clone(),
                        expected: Some(head),
                        new: Some(out.id),
                    };
                    assert!(matches!(slow.cas_ref(&cas).expect("cas"), CasOutcome::Won { .. }));
                    slow.round_trip();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer finished");
    }
    let commits = (WRITERS * commits_per_writer) as u64;
    let figures = Figures {
        label: "baseline: lock, download all, commit",
        commits,
        attempts: commits,
        elapsed: start.elapsed(),
        requests: slow.requests.load(Ordering::Relaxed),
        bytes_down: slow.bytes_down.load(Ordering::Relaxed),
        bytes_up: slow.bytes_up.load(Ordering::Relaxed),
    };
    verify(&store, WRITERS * commits_per_writer);
    figures
}

/// Every writer's every file is on the branch.
fn verify(store: &MemoryStore, expected: usize) {
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut op = RepoOp::read_head("bench", "main").expect("valid");
    let AdminOutput::Head(head) = drive::run(&mut op, &mut cache, store).expect("head") else {
        panic!("a head")
    };
    let mut op = snapgit_core::read::ListTree::new(head, "memory", true).expect("valid");
    let listed = drive::run(&mut op, &mut cache, store).expect("list");
    let written = listed.iter().filter(|e| e.path.starts_with(b"memory/writer-")).count();
    assert_eq!(written, expected, "every commit's file is on the branch");
}

fn main() {
    let snapgit_commits = 25;
    let baseline_commits = 3;
    println!(
        "{WRITERS} writers, one branch, repo of {FILES} files, {} ms per storage request",
        DELAY.as_millis()
    );
    println!(
        "{:<34} {:>7} {:>9} {:>9} {:>10} {:>12} {:>10} {:>11}",
        "", "commits", "commits/s", "attempts", "requests", "bytes down", "bytes up", "wall time"
    );
    println!(
        "{:<34} {:>7} {:>9} {:>9} {:>10} {:>12} {:>10}",
        "", "", "", "/commit", "/commit", "/commit", "/commit"
    );
    let optimistic = snapgit(snapgit_commits, false);
    optimistic.print();
    let locked = snapgit(snapgit_commits, true);
    locked.print();
    let old = baseline(baseline_commits);
    old.print();
    println!(
        "throughput ratio snapgit / baseline: {:.1}x (CAS + replay), {:.1}x (with advisory lock)",
        optimistic.per_second() / old.per_second(),
        locked.per_second() / old.per_second()
    );
    println!("every commit of every run is on the branch (checked)");
}
