//! Many writers, one branch, faults everywhere: no acknowledged commit is ever lost.
//!
//! A deterministic scheduler interleaves the steps of 8 writers' commits (each writer
//! makes 100 acknowledged commits). The store fails or loses the replies of puts and
//! compare-and-swaps, fails reads, and writers crash between steps. Afterwards the
//! branch's history contains every acknowledged commit and its changes, and the store,
//! copied to disk, passes `git fsck --strict`. The same runs on a store that starts
//! packed by `git repack` (every writer reads its parent commit and trees from the pack,
//! through ranged reads that fail too). Meanwhile a maintainer runs compactions (with and
//! without a grace period, and dropping unreachable objects from packs) and GCs through
//! the same faults, and crashes too; it also commits to a scratch branch files with the
//! contents writers commit later, and prunes that branch, so that compaction drops
//! packed objects a writer is about to reuse. The store is checked with its packs, then
//! once more after a last compaction and GC.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::Change,
    drive::{self, MemoryStore, ObjectStore},
    gc::{Collect, CollectOptions, Compact, CompactOptions, Prune, PruneRequest, Retention},
    merge::ConflictPolicy,
    object::NewObject,
    pack::Packed,
    repo::{AdminOutput, Commit, CommitRequest, RepoOp, Start},
    step::{CasOutcome, CasRef, Listed, LockRequest, Range, RefState, StorageError, Stored},
};
use snapgit_tests::{GitRepo, signature};

/// A small deterministic generator (xorshift64*).
struct Rng(AtomicU64);

impl Rng {
    fn next(&self) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `true` with probability `percent`/100.
    fn chance(&self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A store that fails, and loses replies, at random.
struct Faulty<'a> {
    inner: &'a MemoryStore,
    rng: &'a Rng,
    faults: AtomicU64,
    /// Faults are this many times rarer than the percentages below.
    rarer: u64,
}

impl Faulty<'_> {
    /// `true` with probability `percent`/100 divided by `rarer`.
    fn chance(&self, percent: u64) -> bool {
        self.rng.next() % (100 * self.rarer) < percent
    }

    fn fault(&self, what: &str) -> StorageError {
        self.faults.fetch_add(1, Ordering::Relaxed);
        format!("injected fault: {what}").into()
    }
}

impl ObjectStore for Faulty<'_> {
    fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        if self.chance(2) {
            return Err(self.fault("get failed"));
        }
        self.inner.get_many(ids)
    }

    fn put_many(&self, objects: &[NewObject]) -> Result<(), StorageError> {
        if self.chance(4) {
            return Err(self.fault("put failed"));
        }
        if self.chance(50) && objects.len() > 1 {
            // Part of the batch lands before the failure.
            self.inner.put_many(&objects[..objects.len() / 2])?;
            return Err(self.fault("put failed halfway"));
        }
        self.inner.put_many(objects)?;
        if self.chance(4) {
            return Err(self.fault("put reply lost"));
        }
        Ok(())
    }

    fn read_ref(&self, key: &str) -> Result<Option<RefState>, StorageError> {
        if self.chance(2) {
            return Err(self.fault("ref read failed"));
        }
        self.inner.read_ref(key)
    }

    fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, StorageError> {
        if self.chance(3) {
            return Err(self.fault("cas failed"));
        }
        let outcome = self.inner.cas_ref(cas)?;
        if self.chance(3) {
            return Err(self.fault("cas reply lost"));
        }
        Ok(outcome)
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StorageError> {
        if self.chance(2) {
            return Err(self.fault("list failed"));
        }
        self.inner.list(prefix)
    }

    fn read(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        if self.chance(2) {
            return Err(self.fault("read failed"));
        }
        self.inner.read(keys)
    }

    fn read_ranges(&self, ranges: &[Range]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        if self.chance(2) {
            return Err(self.fault("ranged read failed"));
        }
        self.inner.read_ranges(ranges)
    }

    fn write(&self, files: &[Stored]) -> Result<(), StorageError> {
        if self.chance(4) {
            return Err(self.fault("write failed"));
        }
        if self.chance(30) && files.len() > 1 {
            // A pack lands, its index does not.
            self.inner.write(&files[..1])?;
            return Err(self.fault("write failed halfway"));
        }
        self.inner.write(files)?;
        if self.chance(4) {
            return Err(self.fault("write reply lost"));
        }
        Ok(())
    }

    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        if self.chance(3) {
            return Err(self.fault("delete failed"));
        }
        if self.chance(5) && keys.len() > 1 {
            self.inner.delete(&keys[..keys.len() / 2])?;
            return Err(self.fault("delete failed halfway"));
        }
        self.inner.delete(keys)
    }

    fn acquire(&self, lock: &LockRequest) -> Result<Option<String>, StorageError> {
        self.inner.acquire(lock)
    }

    fn release(&self, name: &str, token: &str) -> Result<(), StorageError> {
        self.inner.release(name, token)
    }
}

struct Writer {
    id: usize,
    cache: ObjectCache,
    op: Option<Packed<Commit>>,
    /// The change in flight: its number, path and content.
    pending: Option<(usize, String, String)>,
    acknowledged: Vec<(ObjectId, String, String)>,
    failures: usize,
}

const WRITERS: usize = 8;
const COMMITS: usize = 100;

/// Simulated milliseconds per scheduler step: a commit takes tens of steps, so GC's
/// grace period of 20 s (2,000 steps) exceeds any commit in flight.
const STEP_MS: i64 = 10;
const GC_GRACE_MS: u64 = 20_000;

/// Compaction or GC, driven step by step beside the writers.
enum Maintenance {
    Compact(Box<Packed<Compact>>),
    Collect(Box<Packed<Collect>>),
    /// A commit to the scratch branch of a file with a content a writer commits later.
    Scratch(Box<Packed<Commit>>),
    /// The scratch branch pruned to its last commit: what it had becomes unreachable.
    Prune(Box<Packed<Prune>>),
}

#[derive(Default)]
struct Maintainer {
    op: Option<Maintenance>,
    cache: Option<ObjectCache>,
    compactions: usize,
    packs_written: usize,
    collections: usize,
    deleted: u64,
    failed: usize,
    scratch: usize,
    prunes: usize,
    pruned: u64,
    dropped: u64,
}

impl Maintainer {
    fn step(&mut self, rng: &Rng, store: &impl ObjectStore, now_ms: i64) {
        let cache = self.cache.get_or_insert_with(|| ObjectCache::new(gix_hash::Kind::Sha1));
        let op = self.op.get_or_insert_with(|| {
            if rng.chance(15) {
                let content = format!(
                    "writer {} turn {}\n",
                    rng.next() % WRITERS as u64,
                    rng.next() % COMMITS as u64
                );
                let changes = vec![Change::put("scratch.md", content)];
                let request = CommitRequest::new("team", "scratch", changes, signature(1_600_000_000), "scratch");
                Maintenance::Scratch(Box::new(Packed::new(Commit::new(cache, request).expect("valid"))))
            } else if rng.chance(10) {
                let request = PruneRequest::new("team", "scratch", Retention::last(1));
                Maintenance::Prune(Box::new(Packed::new(Prune::new(request).expect("valid"))))
            } else if rng.chance(60) {
                let mut options = CompactOptions::new(now_ms);
                if rng.chance(50) {
                    // Objects go from packs only past a grace period longer than any
                    // commit in flight, as GC's.
                    options.drop_unreachable = true;
                    options.grace_ms = GC_GRACE_MS;
                } else {
                    // Half the time the copies go at once: the harshest case for readers.
                    options.grace_ms = if rng.chance(50) { 0 } else { 5_000 };
                }
                options.window = 10;
                Maintenance::Compact(Box::new(Packed::new(Compact::new(cache, options).expect("valid"))))
            } else {
                let mut options = CollectOptions::new(now_ms);
                options.grace_ms = GC_GRACE_MS;
                Maintenance::Collect(Box::new(Packed::new(Collect::new(cache, options).expect("valid"))))
            }
        });
        let finished = match op {
            Maintenance::Compact(op) => drive::step(op.as_mut(), cache, store)
                .map_err(|e| e.to_string())
                .map(|out| {
                    out.map(|report| {
                        self.compactions += 1;
                        self.packs_written += usize::from(report.pack.is_some());
                        self.dropped += report.dropped;
                        self.deleted += report.loose_deleted + report.packs_deleted;
                    })
                }),
            Maintenance::Collect(op) => drive::step(op.as_mut(), cache, store)
                .map_err(|e| e.to_string())
                .map(|out| {
                    out.map(|report| {
                        self.collections += 1;
                        self.deleted += report.deleted;
                    })
                }),
            Maintenance::Scratch(op) => drive::step(op.as_mut(), cache, store)
                .map_err(|e| e.to_string())
                .map(|out| out.map(|_| self.scratch += 1)),
            Maintenance::Prune(op) => drive::step(op.as_mut(), cache, store)
                .map_err(|e| e.to_string())
                .map(|out| {
                    out.map(|report| {
                        self.prunes += 1;
                        self.pruned += report.dropped.unwrap_or(0);
                    })
                }),
        };
        match finished {
            Ok(None) => {}
            Ok(Some(())) => self.op = None,
            Err(err) => {
                if !err.contains("injected fault") {
                    eprintln!("maintenance failed: {err}");
                }
                self.failed += 1;
                self.op = None;
                self.cache = None;
            }
        }
    }
}

fn simulate(seed: u64, packed: bool) {
    let mut store = MemoryStore::new();
    let mut setup = ObjectCache::new(gix_hash::Kind::Sha1);
    let create = RepoOp::create_repo(
        &setup,
        "team",
        "main",
        vec![Change::put("README.md", "shared\n")],
        signature(0),
        "create",
    );
    drive::run(&mut create.expect("valid"), &mut setup, &store).expect("created");
    let scratch = RepoOp::create_branch("team", "scratch", Start::Branch("main".into()));
    drive::run(&mut scratch.expect("valid"), &mut setup, &store).expect("created");
    let git = GitRepo::new();
    if packed {
        // git packs the first commit and removes its loose copies; writers start there.
        git.write_store(&store);
        for (key, id) in store.refs() {
            git.git(&["update-ref", &key, &id.to_string()]);
        }
        git.git(&["repack", "-adq"]);
        git.git(&["prune-packed"]);
        let refs = store.refs();
        store = git.to_full_store();
        assert!(store.is_empty(), "every object is packed");
        // The store's refs as refs (compare-and-swap), not as files.
        for (key, id) in refs {
            store.delete(std::slice::from_ref(&key)).expect("in memory");
            let cas = CasRef {
                key,
                expected: None,
                new: Some(id),
            };
            store.cas_ref(&cas).expect("in memory");
        }
    }
    let rng = Rng(AtomicU64::new(seed | 1));
    let faulty = Faulty {
        inner: &store,
        rng: &rng,
        faults: AtomicU64::new(0),
        rarer: 1,
    };
    // A compaction or GC walks the whole history, a round per commit: at the writers'
    // rates it would never finish. Its faults are rarer, and it crashes too.
    let maintainer_view = Faulty {
        inner: &store,
        rng: &rng,
        faults: AtomicU64::new(0),
        rarer: 20,
    };

    let mut writers: Vec<Writer> = (0..WRITERS)
        .map(|id| Writer {
            id,
            cache: ObjectCache::new(gix_hash::Kind::Sha1),
            op: None,
            pending: None,
            acknowledged: Vec::new(),
            failures: 0,
        })
        .collect();
    let mut crashes = 0;
    let mut steps = 0u64;
    let mut maintainer = Maintainer::default();
    while writers.iter().any(|w| w.acknowledged.len() < COMMITS) {
        steps += 1;
        assert!(steps < 2_000_000, "the simulation makes progress");
        let now_ms = steps as i64 * STEP_MS;
        store.set_time_ms(now_ms);
        if rng.chance(10) {
            if rng.chance(1) && rng.chance(20) {
                // The maintainer crashes between two steps.
                maintainer.op = None;
                maintainer.cache = None;
                crashes += 1;
            } else {
                maintainer.step(&rng, &maintainer_view, now_ms);
            }
            continue;
        }
        let busy: Vec<usize> = (0..WRITERS)
            .filter(|i| writers[*i].acknowledged.len() < COMMITS)
            .collect();
        let writer = &mut writers[busy[(rng.next() % busy.len() as u64) as usize]];
        if writer.op.is_none() {
            let (n, path, content) = writer.pending.get_or_insert_with(|| {
                let n = writer.acknowledged.len();
                (
                    n,
                    format!("w{}/turn-{n:03}.md", writer.id),
                    format!("writer {} turn {n}\n", writer.id),
                )
            });
            let mut changes = vec![Change::put(path.as_str(), content.as_str())];
            // Every fourth commit also touches a file every writer touches.
            if *n % 4 == 0 {
                changes.push(Change::put("shared/last.md", format!("last writer {}\n", writer.id)));
            }
            let mut request = CommitRequest::new("team", "main", changes, signature(1_700_000_000 + *n as i64), "turn");
            request.on_conflict = ConflictPolicy::Ours;
            request.max_attempts = 4;
            if writer.id.is_multiple_of(2) {
                request.lock_ttl_ms = Some(1_000);
            }
            writer.op = Some(Packed::new(Commit::new(&writer.cache, request).expect("valid request")));
        }
        if rng.chance(1) {
            // The writer crashes between two steps: its change is never acknowledged.
            writer.op = None;
            writer.cache = ObjectCache::new(gix_hash::Kind::Sha1);
            crashes += 1;
            continue;
        }
        let op = writer.op.as_mut().expect("set above");
        match drive::step(op, &mut writer.cache, &faulty) {
            Ok(None) => {}
            Ok(Some(out)) => {
                let (_, path, content) = writer.pending.take().expect("a change was in flight");
                writer.acknowledged.push((out.commit, path, content));
                writer.op = None;
            }
            Err(_) => {
                // Not acknowledged: try the same change again with a new operation.
                writer.failures += 1;
                writer.op = None;
            }
        }
    }

    // Copy the store to disk and let git judge it: as the writers and maintainer left
    // it, then after a last compaction and GC without faults.
    let (history_len, _) = judge(&store, &writers);
    let end_ms = (steps as i64 + 10_000) * STEP_MS;
    store.set_time_ms(end_ms);
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut options = CompactOptions::new(end_ms);
    options.grace_ms = 0;
    let compacted =
        drive::run(&mut Compact::new(&cache, options).expect("valid"), &mut cache, &store).expect("compacts");
    let mut options = CollectOptions::new(end_ms);
    options.grace_ms = GC_GRACE_MS;
    drive::run(&mut Collect::new(&cache, options).expect("valid"), &mut cache, &store).expect("collects");
    let (_, repo) = judge(&store, &writers);
    let loose_left = store.len();
    eprintln!(
        "seed {seed}: maintainer ran {} compactions ({} packs written, {} objects dropped), {} GCs, {} scratch commits, {} prunes ({} commits dropped), deleted {} keys, failed {} times; then {} packs, {loose_left} loose objects, {} packs after the last compaction",
        maintainer.compactions,
        maintainer.packs_written,
        maintainer.dropped,
        maintainer.collections,
        maintainer.scratch,
        maintainer.prunes,
        maintainer.pruned,
        maintainer.deleted,
        maintainer.failed,
        crate::compact::packs(&store).len(),
        compacted.packs_after,
    );
    assert!(
        maintainer.compactions > 0 && maintainer.collections > 0,
        "maintenance ran"
    );
    assert_eq!(loose_left, 0, "every object packed or collected");
    drop(repo);
    let history = history_len;
    let acknowledged: usize = writers.iter().map(|w| w.acknowledged.len()).sum();
    let failures: usize = writers.iter().map(|w| w.failures).sum();
    eprintln!(
        "seed {seed}: {acknowledged} acknowledged commits, {history} in history, {} faults injected, {failures} failed attempts, {crashes} crashes, {steps} steps",
        faulty.faults.load(Ordering::Relaxed)
    );
    assert_eq!(acknowledged, WRITERS * COMMITS);
    assert!(faulty.faults.load(Ordering::Relaxed) > 100, "faults were injected");
}

/// git's verdict on the store: `fsck --strict` passes, and every acknowledged commit is in
/// the branch's history with its change in the tree. The history's length, and the copy.
fn judge(store: &MemoryStore, writers: &[Writer]) -> (usize, GitRepo) {
    let mut reader = ObjectCache::new(gix_hash::Kind::Sha1);
    let AdminOutput::Head(head) = drive::run(
        &mut RepoOp::read_head("team", "main").expect("valid"),
        &mut reader,
        store,
    )
    .expect("head") else {
        panic!("a head")
    };
    let git = GitRepo::from_store(store);
    git.set_branch("main", &head);
    git.fsck();
    let history: BTreeSet<ObjectId> = git.git(&["rev-list", "main"]).lines().map(snapgit_tests::oid).collect();
    let tree: BTreeMap<String, String> = git
        .git(&["ls-tree", "-r", "main"])
        .lines()
        .map(|line| {
            let (meta, path) = line.split_once('\t').expect("ls-tree line");
            (path.to_owned(), meta.rsplit(' ').next().expect("id").to_owned())
        })
        .collect();
    for writer in writers {
        for (commit, path, content) in &writer.acknowledged {
            assert!(
                history.contains(commit),
                "acknowledged commit {commit} is in the history"
            );
            let blob = git.write_blob(content.as_bytes()).to_string();
            assert_eq!(tree.get(path), Some(&blob), "acknowledged change to {path} survives");
        }
    }
    (history.len(), git)
}

#[test]
fn eight_writers_with_faults_lose_nothing() {
    simulate(0x5eed_0001, false);
}

#[test]
fn another_interleaving() {
    simulate(0x0dd_ba11, false);
}

#[test]
fn eight_writers_on_a_store_git_packed_lose_nothing() {
    simulate(0x9ac_ed01, true);
}

/// More interleavings than CI runs: `cargo test -p snapgit-tests --test git -- --ignored
/// many_interleavings` (SNAPGIT_SEEDS sets how many; 20 by default).
#[test]
#[ignore = "a longer run: minutes"]
fn many_interleavings() {
    let seeds: u64 = std::env::var("SNAPGIT_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    for i in 0..seeds {
        simulate(
            0x1234_5678_9abc_def1 ^ (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            i % 3 == 2,
        );
    }
}
