//! Retention and GC on a store of several repos, checked by git: the store passes
//! `git fsck --strict`, each branch's `git --namespace=<repo> log` is the kept chain, and
//! what git finds reachable is exactly what is left.

use std::collections::{BTreeMap, BTreeSet};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{Change, Request},
    drive::{self, MemoryStore, ObjectStore},
    gc::{
        Cap, CapError, CapRequest, Capped, Collect, CollectOptions, Compact, CompactOptions, Compacted, Footprint,
        Prune, PruneRequest, Retention,
    },
    history,
    step::CasRef,
};
use snapgit_tests::{GitRepo, commit, oid, signature};

const HOUR_MS: i64 = 60 * 60 * 1000;

fn key(repo: &str, branch: &str) -> String {
    format!("refs/namespaces/{repo}/refs/heads/{branch}")
}

/// `count` commits on `parent` at 1000-second steps from `start`, then the branch created
/// at the last. Returns the commits, oldest first.
fn chain(
    store: &MemoryStore,
    repo: &str,
    branch: &str,
    parent: Option<ObjectId>,
    count: usize,
    start: i64,
) -> Vec<ObjectId> {
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut head = parent;
    let mut ids = Vec::new();
    for i in 0..count {
        let seconds = start + 1000 * i as i64;
        let changes = vec![
            Change::put("memory.md", format!("# {repo} {branch}\nturn {i}\n")),
            Change::put(format!("notes/{branch}/{i}.md"), format!("note {i}\n")),
            // The same file in every repo: one blob for the whole store.
            Change::put("shared/prompt.md", "You are a helpful agent.\n"),
        ];
        let request = Request::new(head, changes, signature(seconds), format!("{branch} {i}"));
        let out = commit(&mut cache, store, request).expect("commit");
        ids.push(out.id);
        head = Some(out.id);
    }
    let outcome = store
        .cas_ref(&CasRef {
            key: key(repo, branch),
            expected: None,
            new: head,
        })
        .expect("memory store");
    assert!(matches!(outcome, snapgit_core::step::CasOutcome::Won { .. }));
    ids
}

fn newest_first(ids: &[ObjectId]) -> Vec<ObjectId> {
    ids.iter().rev().copied().collect()
}

/// Our history of `head`, newest first.
fn our_log(store: &MemoryStore, head: ObjectId) -> Vec<ObjectId> {
    let mut op = history::Log::new(history::Request::new(head, 1000)).expect("valid request");
    let page = drive::run(&mut op, &mut ObjectCache::new(gix_hash::Kind::Sha1), store).expect("log");
    page.commits.into_iter().map(|c| c.id).collect()
}

/// A bare clone of one repo of the store, made through `git --namespace=<repo>
/// upload-pack` as a server would serve it: its branches are the repo's branches. Made
/// once per repo.
fn clone_repo(store: &GitRepo, repo: &str, into: &std::path::Path) -> GitRepo {
    let target = into.join(format!("{repo}.git"));
    if target.exists() {
        return GitRepo::from_existing(target);
    }
    let upload_pack = format!("git --namespace={repo} upload-pack");
    let out = std::process::Command::new("git")
        .args([
            "clone",
            "--bare",
            "--quiet",
            "--no-local",
            "--upload-pack",
            &upload_pack,
        ])
        .arg(store.path())
        .arg(&target)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "clone of {repo}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    GitRepo::from_existing(target)
}

#[test]
fn retention_and_gc_leave_a_store_git_agrees_with() {
    let store = MemoryStore::new();
    let one = chain(&store, "agent-1", "main", None, 6, 1_000_000);
    let feature = chain(&store, "agent-1", "feature", Some(one[2]), 2, 1_100_000);
    let two = chain(&store, "agent-2", "main", None, 5, 2_000_000);
    let three = chain(&store, "agent-3", "main", None, 2, 3_000_000);

    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let request = PruneRequest::new("agent-1", "main", Retention::last(3));
    let pruned_one = drive::run(&mut Prune::new(request).expect("valid"), &mut cache, &store).expect("prune");
    assert_eq!((pruned_one.kept, pruned_one.dropped), (3, Some(3)));
    // Committed at 2_000_000 + 1000 i s: within 2500 s of the last keeps the last three.
    let now_ms = 2_004_000 * 1000;
    let request = PruneRequest::new("agent-2", "main", Retention::within(2_500 * 1000, now_ms));
    let pruned_two = drive::run(&mut Prune::new(request).expect("valid"), &mut cache, &store).expect("prune");
    assert_eq!((pruned_two.kept, pruned_two.dropped), (3, Some(2)));

    let before = store.len();
    let mut op = Collect::new(&cache, CollectOptions::new(3 * HOUR_MS)).expect("valid");
    let collected = drive::run(&mut op, &mut cache, &store).expect("gc");
    assert!(collected.deleted > 0);
    assert_eq!(collected.young, 0);
    assert_eq!(store.len() as u64, collected.reachable);
    assert_eq!(before as u64 - collected.deleted, collected.reachable);

    // The store on disk, as a bare repository.
    let git = GitRepo::new();
    git.write_store(&store);
    for (key, id) in store.refs() {
        let path = git.path().join(&key);
        std::fs::create_dir_all(path.parent().expect("refs have a folder")).expect("mkdir");
        std::fs::write(&path, format!("{id}\n")).expect("ref written");
    }
    git.fsck();

    let expected = [
        ("agent-1", "main", newest_first(&pruned_one.written)),
        (
            "agent-1",
            "feature",
            [newest_first(&feature), newest_first(&one[..3])].concat(),
        ),
        ("agent-2", "main", newest_first(&pruned_two.written)),
        ("agent-3", "main", newest_first(&three)),
    ];
    let clones = tempfile::tempdir().expect("a temporary folder");
    for (repo, branch, commits) in &expected {
        let head = store
            .read_ref(&key(repo, branch))
            .expect("memory store")
            .expect("ref")
            .value;
        let namespace = format!("--namespace={repo}");
        let full = key(repo, branch);
        let logged = git.git(&[&namespace, "log", "--format=%H", &full]);
        assert_eq!(
            &logged.lines().map(oid).collect::<Vec<_>>(),
            commits,
            "git log of {repo} {branch}"
        );
        let clone = clone_repo(&git, repo, clones.path());
        let logged = clone.git(&["log", "--format=%H", branch]);
        assert_eq!(
            &logged.lines().map(oid).collect::<Vec<_>>(),
            commits,
            "git log of {repo} {branch} in a clone"
        );
        clone.fsck();
        assert_eq!(&our_log(&store, head), commits, "our log of {repo} {branch}");
    }
    assert_eq!(pruned_two.written.len(), 3);
    assert!(
        two.iter().all(|id| store.get(id).is_none()),
        "agent-2's old commits are gone"
    );
    assert!(
        one[..3].iter().all(|id| store.get(id).is_some()),
        "the feature branch keeps its base"
    );
    assert!(one[3..].iter().all(|id| store.get(id).is_none()));

    // What git finds reachable from every ref is exactly what is stored.
    let git_reachable: BTreeSet<ObjectId> = git
        .git(&["rev-list", "--objects", "--all"])
        .lines()
        .map(|line| oid(line.split(' ').next().expect("an id")))
        .collect();
    let stored: BTreeSet<ObjectId> = store.ids().into_iter().collect();
    assert_eq!(git_reachable, stored);

    // And the footprint report agrees.
    let report = drive::run(&mut Footprint::new(&cache), &mut cache, &store).expect("footprint");
    assert_eq!(report.objects.count, stored.len() as u64);
    assert_eq!(report.unreachable.count, 0);
    assert_eq!(report.repos.len(), 3);
    for usage in &report.repos {
        let prefix = format!("--glob=refs/namespaces/{}/refs/heads/*", usage.repo);
        let count = git.git(&["rev-list", "--objects", &prefix]).lines().count() as u64;
        assert_eq!(usage.reachable.count, count, "objects of {}", usage.repo);
    }
}

fn compact_at(store: &MemoryStore, now_ms: i64, grace_ms: u64, drop_unreachable: bool) -> Compacted {
    store.set_time_ms(now_ms);
    let mut options = CompactOptions::new(now_ms);
    options.grace_ms = grace_ms;
    options.drop_unreachable = drop_unreachable;
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    drive::run(&mut Compact::new(&cache, options).expect("valid"), &mut cache, store).expect("compacts")
}

fn pack_bytes(store: &MemoryStore) -> u64 {
    store
        .list("objects/pack/")
        .expect("in memory")
        .iter()
        .filter(|l| l.key.ends_with(".pack"))
        .map(|l| l.size)
        .sum()
}

/// What retention dropped from history that compaction had already packed: with
/// `drop_unreachable`, compaction leaves it out of a new pack, and a later run deletes
/// the old pack; git then finds every object reachable, and nothing that was kept is lost.
#[test]
fn compaction_gives_back_what_retention_dropped_from_packs() {
    let store = MemoryStore::new();
    let one = chain(&store, "agent-1", "main", None, 6, 1_000_000);
    let two = chain(&store, "agent-2", "main", None, 5, 2_000_000);
    let packed = compact_at(&store, 5 * HOUR_MS, 0, false);
    assert_eq!((packed.packs_after, store.len()), (1, 0), "one pack, nothing loose");
    let before = pack_bytes(&store);
    // The footprint counts packed objects as their entries in the pack.
    let footprint = |store: &MemoryStore| {
        let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
        drive::run(&mut Footprint::new(&cache), &mut cache, store).expect("footprint")
    };
    let packed_report = footprint(&store);
    assert!(
        packed_report.objects.bytes > before * 9 / 10 && packed_report.objects.bytes < before,
        "{packed_report:?}, pack {before}"
    );
    assert_eq!(packed_report.unreachable.count, 0, "{packed_report:?}");
    assert!(
        packed_report.repos.iter().all(|r| r.reachable.bytes > 0),
        "{packed_report:?}"
    );

    // Without `drop_unreachable` a prune gives nothing back: the pack holds it all.
    store.set_time_ms(9 * HOUR_MS);
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let request = PruneRequest::new("agent-1", "main", Retention::last(2));
    let pruned = drive::run(&mut Prune::new(request).expect("valid"), &mut cache, &store).expect("prune");
    assert_eq!(pruned.dropped, Some(4));
    let plain = compact_at(&store, 10 * HOUR_MS, HOUR_MS as u64, false);
    assert_eq!(plain.dropped, 0);
    let pruned_report = footprint(&store);
    assert!(pruned_report.unreachable.count > 0, "{pruned_report:?}");

    // The first run writes a pack of what is reachable; the old pack stays until that
    // one is older than the grace period.
    let first = compact_at(&store, 10 * HOUR_MS + HOUR_MS / 10, HOUR_MS as u64, true);
    assert!(first.dropped > 0, "{first:?}");
    assert_eq!(first.packs_deleted, 0, "{first:?}");

    // A writer reuses a file only the dropped history had (its content as agent-1's first
    // turn), and is still in flight (objects written, ref not moved) when the next run
    // deletes the old pack.
    store.set_time_ms(10 * HOUR_MS + HOUR_MS / 2);
    let reused = "# agent-1 main\nturn 0\n";
    let changes = vec![Change::put("from-agent-1.md", reused)];
    let request = Request::new(Some(two[4]), changes, signature(2_100_000), "reuse");
    let mut writer = ObjectCache::new(gix_hash::Kind::Sha1);
    let in_flight = drive::run(
        &mut snapgit_core::commit::Commit::new(&writer, request).expect("valid"),
        &mut writer,
        &store,
    )
    .expect("commit");
    store.put_many(&in_flight.objects).expect("in memory");

    let second = compact_at(&store, 11 * HOUR_MS + HOUR_MS / 5, HOUR_MS as u64, true);
    assert!(second.packs_deleted >= 1, "{second:?}");
    assert_eq!(crate::compact::packs(&store).len(), 1, "{second:?}");
    let outcome = store
        .cas_ref(&CasRef {
            key: key("agent-2", "main"),
            expected: store.read_ref(&key("agent-2", "main")).expect("memory store"),
            new: Some(in_flight.id),
        })
        .expect("memory store");
    assert!(
        matches!(outcome, snapgit_core::step::CasOutcome::Won { .. }),
        "{outcome:?}"
    );

    let git = GitRepo::from_store(&store);
    git.fsck();
    for id in &one[..4] {
        assert!(
            !git.command(&["cat-file", "-e", &id.to_string()])
                .status()
                .expect("git runs")
                .success(),
            "dropped commit {id} is gone"
        );
    }
    let blob = snapgit_core::object::blob_id(gix_hash::Kind::Sha1, reused.as_bytes())
        .expect("hashes")
        .to_string();
    assert_eq!(
        git.git(&["rev-parse", "refs/namespaces/agent-2/refs/heads/main:from-agent-1.md"])
            .trim(),
        blob
    );
    // Every object left is reachable.
    let unreachable = git.git(&["fsck", "--unreachable", "--no-reflogs", "--no-progress"]);
    assert!(
        unreachable.lines().all(|l| !l.starts_with("unreachable")),
        "{unreachable}"
    );
    let after = pack_bytes(&store);
    assert!(after < before, "packs {before} bytes before, {after} after");
    let last = footprint(&store);
    assert!(last.objects.bytes < packed_report.objects.bytes, "{last:?}");
    assert_eq!(our_log(&store, pruned.new_head), newest_first(&pruned.written));
}

fn cap(store: &MemoryStore, request: CapRequest) -> Capped {
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    drive::run(&mut Cap::new(&cache, request).expect("valid"), &mut cache, store).expect("caps")
}

/// `count` commits to `repo`'s main, each rewriting `notes.md` with `bytes` of text no
/// other commit has (so nothing packs as a delta of anything else), from `start`: the
/// old versions are history only.
fn heavy_chain(store: &MemoryStore, repo: &str, count: usize, bytes: usize, start: i64) -> Vec<ObjectId> {
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut head = None;
    let mut ids = Vec::new();
    let mut state = start as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for i in 0..count {
        let mut text = String::with_capacity(bytes);
        while text.len() < bytes {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(&format!("{state:016x}"));
        }
        let changes = vec![
            Change::put("notes.md", text),
            Change::put("memory.md", format!("{repo} turn {i}\n")),
        ];
        let request = Request::new(head, changes, signature(start + 1000 * i as i64), format!("turn {i}"));
        let out = commit(&mut cache, store, request).expect("commit");
        ids.push(out.id);
        head = Some(out.id);
    }
    store
        .cas_ref(&CasRef {
            key: key(repo, "main"),
            expected: None,
            new: head,
        })
        .expect("memory store");
    ids
}

/// A store-wide cap: the oldest history goes first, one commit per repo in turn, until
/// the estimate fits; compaction and GC then give the space back, and git agrees with
/// what is left. A tag keeps what it reaches; a branch keeps `keep_last` commits.
#[test]
fn a_size_cap_drops_the_oldest_history_round_robin_over_repos() {
    let store = MemoryStore::new();
    let one = heavy_chain(&store, "agent-1", 12, 4096, 1_000_000);
    heavy_chain(&store, "agent-2", 12, 4096, 2_000_000);
    heavy_chain(&store, "agent-3", 3, 4096, 3_000_000);
    // A tag outside any repo keeps agent-1's first commit and what it reaches.
    store
        .cas_ref(&CasRef {
            key: "refs/tags/first".into(),
            expected: None,
            new: Some(one[0]),
        })
        .expect("memory store");
    compact_at(&store, 5 * HOUR_MS, 0, false);

    assert!(matches!(
        Cap::new(
            &ObjectCache::new(gix_hash::Kind::Sha1),
            CapRequest {
                keep_last: 0,
                ..CapRequest::new(1)
            }
        ),
        Err(CapError::ZeroKeepLast)
    ));
    let whole = cap(&store, CapRequest::new(u64::MAX));
    assert!(whole.under_cap && whole.pruned.is_empty(), "{whole:?}");
    let reachable = whole.reachable_bytes;
    assert!(reachable > 27 * 2048 && whole.stored_bytes >= reachable, "{whole:?}");

    // Half the size: agent-1 and agent-2 lose their oldest commits in turn; agent-3
    // (newest, shortest) loses commits only while it has more than one.
    let max = reachable / 2;
    let capped = cap(&store, CapRequest::new(max));
    assert!(capped.under_cap && capped.estimated_bytes <= max, "{capped:?}");
    let dropped: BTreeMap<String, usize> = capped.pruned.iter().map(|p| (p.repo.to_string(), p.kept)).collect();
    let kept_one = dropped.get("agent-1").copied().unwrap_or(12);
    let kept_two = dropped.get("agent-2").copied().unwrap_or(12);
    assert!(kept_one.abs_diff(kept_two) <= 1, "round-robin: {dropped:?}");
    assert!(kept_one < 12 && kept_two < 12, "{dropped:?}");

    compact_at(&store, 6 * HOUR_MS, 0, true);
    compact_at(&store, 7 * HOUR_MS, 0, true);
    store.set_time_ms(8 * HOUR_MS);
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut options = CollectOptions::new(8 * HOUR_MS);
    options.grace_ms = 0;
    drive::run(&mut Collect::new(&cache, options).expect("valid"), &mut cache, &store).expect("collects");

    let git = GitRepo::from_store(&store);
    git.fsck();
    for (repo, kept) in [("agent-1", kept_one), ("agent-2", kept_two)] {
        let count = git.git(&["rev-list", "--count", &key(repo, "main")]);
        assert_eq!(count.trim(), kept.to_string(), "{repo}");
    }
    // The tag still reaches agent-1's first commit and its files.
    assert_eq!(git.git(&["rev-parse", "refs/tags/first"]).trim(), one[0].to_string());
    let after = cap(&store, CapRequest::new(u64::MAX));
    eprintln!(
        "reachable {reachable} B, cap {max} B, estimated {} B; after compaction and GC: reachable {} B, stored {} B; kept {kept_one} and {kept_two} of 12",
        capped.estimated_bytes, after.reachable_bytes, after.stored_bytes
    );
    assert!(
        after.reachable_bytes <= max + max / 10,
        "{} reachable after compaction and GC, the cap {max}",
        after.reachable_bytes
    );
    assert!(after.stored_bytes <= max + max / 5, "{after:?}");

    // Nothing left to drop but two commits a branch: the cap cannot be met, and says so.
    let floor = cap(
        &store,
        CapRequest {
            keep_last: 2,
            ..CapRequest::new(0)
        },
    );
    assert!(!floor.under_cap, "{floor:?}");
    let git = GitRepo::from_store(&store);
    for repo in ["agent-1", "agent-2"] {
        let count = git.git(&["rev-list", "--count", &key(repo, "main")]);
        assert_eq!(count.trim(), "2", "{repo}");
    }
    assert!(floor.pruned.iter().all(|p| p.repo.as_str() != "agent-3"), "{floor:?}");
}

/// Runs that see packs stored at the same time (a coarse storage clock, or a quick
/// script) never delete one for the other when objects were left out, and write the same
/// pack again rather than piling up new ones; once the clock moves, the old pack goes.
#[test]
fn dropping_runs_within_one_clock_tick_wait_and_write_the_same_pack() {
    let store = MemoryStore::new();
    heavy_chain(&store, "agent-1", 6, 512, 1_000_000);
    compact_at(&store, HOUR_MS, 0, false);
    store.set_time_ms(2 * HOUR_MS);
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let request = PruneRequest::new("agent-1", "main", Retention::last(2));
    drive::run(&mut Prune::new(request).expect("valid"), &mut cache, &store).expect("prune");
    // Storage stamps every pack with the old one's time; the runs' own clock moves on.
    store.set_time_ms(HOUR_MS);
    let dropping = |now_ms: i64| {
        let mut options = CompactOptions::new(now_ms);
        options.grace_ms = 0;
        options.drop_unreachable = true;
        let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
        drive::run(&mut Compact::new(&cache, options).expect("valid"), &mut cache, &store).expect("compacts")
    };
    let first = dropping(3 * HOUR_MS);
    assert!(first.dropped > 0, "{first:?}");
    for run in 0..3 {
        let again = dropping(3 * HOUR_MS + run);
        assert_eq!(again.packs_deleted, 0, "{again:?}");
        assert_eq!(again.pack, first.pack, "the same objects make the same pack");
    }
    assert_eq!(crate::compact::packs(&store).len(), 2);
    // Once the clock moves, writing the same pack again stamps it later; the next run
    // deletes the old pack for it.
    let refreshed = compact_at(&store, 4 * HOUR_MS, 0, true);
    assert_eq!((refreshed.pack, refreshed.packs_deleted), (first.pack, 0));
    let later = compact_at(&store, 5 * HOUR_MS, 0, true);
    assert_eq!(later.packs_deleted, 1, "{later:?}");
    assert_eq!(crate::compact::packs(&store).len(), 1);
    GitRepo::from_store(&store).fsck();
}
