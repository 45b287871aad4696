//! Compaction checked by git: the packs snapgit writes pass `git verify-pack`, `git
//! index-pack --strict` and `git fsck --strict`, git reads every object of the store
//! from them, and every read snapgit makes is the same before and after.

use snapgit_core::{
    ObjectCache,
    drive::{self, MemoryStore, ObjectStore},
    gc::{Compact, CompactOptions, Compacted, INFO_PACKS},
    step::Listed,
};
use snapgit_tests::GitRepo;

use crate::generated::{self, History};

const HOUR_MS: i64 = 3_600_000;

fn compact(store: &MemoryStore, options: CompactOptions) -> Compacted {
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut op = Compact::new(&cache, options).unwrap();
    drive::run(&mut op, &mut cache, store).unwrap()
}

fn now(store: &MemoryStore, ms: i64) -> CompactOptions {
    store.set_time_ms(ms);
    CompactOptions::new(ms)
}

fn keys(store: &MemoryStore, prefix: &str) -> Vec<Listed> {
    store.list(prefix).unwrap()
}

/// The keys of the store's packs.
pub(crate) fn packs(store: &MemoryStore) -> Vec<String> {
    keys(store, "objects/pack/")
        .into_iter()
        .filter(|l| l.key.ends_with(".pack"))
        .map(|l| l.key)
        .collect()
}

/// Every object git sees in `repo`, sorted.
fn git_objects(repo: &GitRepo) -> Vec<String> {
    let mut all: Vec<String> = repo
        .git(&["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"])
        .lines()
        .map(str::to_owned)
        .collect();
    all.sort();
    all.dedup();
    all
}

/// git accepts every pack of `store` and the store as a whole.
fn git_checks(store: &MemoryStore) -> GitRepo {
    let repo = GitRepo::from_store(store);
    for pack in packs(store) {
        let idx = repo.path().join(pack.replace(".pack", ".idx"));
        repo.git(&["verify-pack", "-v", idx.to_str().unwrap()]);
        // index-pack rebuilds the index from the pack alone and must agree with ours.
        let rebuilt = tempfile::tempdir().unwrap();
        let out = rebuilt.path().join("again.idx");
        repo.git(&[
            "index-pack",
            "--strict",
            "-o",
            out.to_str().unwrap(),
            repo.path().join(&pack).to_str().unwrap(),
        ]);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&idx).unwrap(),
            "{pack}'s index"
        );
    }
    repo.fsck();
    repo
}

/// The layers the store's commit-graph chain file names.
fn chain(store: &MemoryStore) -> Vec<String> {
    let text = store
        .file("objects/info/commit-graphs/commit-graph-chain")
        .unwrap_or_default();
    String::from_utf8(text).unwrap().lines().map(str::to_owned).collect()
}

fn loose_history() -> (&'static History, MemoryStore) {
    let h = generated::history();
    (h, h.git.to_full_store())
}

#[test]
fn a_loose_store_compacts_into_one_pack_git_accepts_and_reads_the_same() {
    let (h, store) = loose_history();
    let before = GitRepo::from_store(&store);
    let loose = store.len();
    let report = compact(&store, grace_0(now(&store, 10 * HOUR_MS)));
    assert_eq!(report.packs_before, 0);
    assert_eq!(report.packs_after, 1);
    assert_eq!(report.loose_packed as usize, loose - report.unreachable_loose as usize);
    assert_eq!(
        report.loose_deleted, report.loose_packed,
        "grace 0: the copies go at once"
    );
    assert_eq!(store.len() as u64, report.unreachable_loose);
    let after = git_checks(&store);
    assert_eq!(git_objects(&after), git_objects(&before));
    assert_eq!(
        after.git(&["log", "--all", "--format=%H %T %P"]),
        before.git(&["log", "--all", "--format=%H %T %P"])
    );
    let info = store.file(INFO_PACKS).unwrap();
    let name = packs(&store)[0].rsplit('/').next().unwrap().to_owned();
    assert_eq!(String::from_utf8(info).unwrap(), format!("P {name}\n\n"));
    crate::packs::reads_agree(h, &store);
    // Within 1.2x of what `git gc --aggressive` packs the same objects into.
    let packed = report.pack_bytes;
    before.git(&["gc", "--quiet", "--aggressive", "--prune=now"]);
    let git_pack: u64 = std::fs::read_dir(before.path().join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    eprintln!(
        "{packed} bytes packed, git gc --aggressive {git_pack}; {} deltas",
        report.deltas
    );
    assert!(
        packed * 10 <= git_pack * 12,
        "{packed} packed vs {git_pack} by git gc --aggressive"
    );
}

#[test]
fn within_the_grace_period_loose_copies_stay_and_a_later_run_deletes_them() {
    let (h, store) = loose_history();
    let loose = store.len();
    let first = compact(&store, now(&store, 10 * HOUR_MS));
    assert_eq!(first.loose_deleted, 0);
    assert_eq!(first.waiting, first.loose_packed);
    assert_eq!(store.len(), loose, "nothing deleted yet");
    crate::packs::reads_agree(h, &store);
    // Half an hour on: still young. Two hours on: settled, the copies go, nothing is packed again.
    let young = compact(&store, now(&store, 10 * HOUR_MS + HOUR_MS / 2));
    assert_eq!((young.loose_deleted, young.pack.clone()), (0, None));
    let later = compact(&store, now(&store, 12 * HOUR_MS));
    assert_eq!(later.pack, None, "{later:?}");
    assert_eq!(later.loose_deleted, first.loose_packed);
    assert_eq!(packs(&store).len(), 1);
    git_checks(&store);
    crate::packs::reads_agree(h, &store);
}

/// The branch the agent tests commit to.
const AGENT_MAIN: &str = "refs/namespaces/agent/refs/heads/main";

/// A store with only `HEAD`, for the agent tests.
fn agent_store() -> MemoryStore {
    let store = MemoryStore::new();
    store.insert_file("HEAD", "ref: refs/heads/main\n");
    store
}

/// Commit `changes` on `head` as turn `n`, store the objects and move the agent's branch.
fn commit_turn(
    store: &MemoryStore,
    cache: &mut ObjectCache,
    head: Option<snapgit_core::ObjectId>,
    changes: Vec<snapgit_core::commit::Change>,
    n: i64,
) -> snapgit_core::ObjectId {
    use snapgit_core::{commit, step::CasRef};
    let request = commit::Request::new(head, changes, snapgit_tests::signature(n), format!("turn {n}"));
    let out = drive::run(&mut commit::Commit::new(cache, request).unwrap(), cache, store).unwrap();
    store.put_many(&out.objects).unwrap();
    let expected = store.read_ref(AGENT_MAIN).unwrap();
    let cas = CasRef {
        key: AGENT_MAIN.into(),
        expected,
        new: Some(out.id),
    };
    store.cas_ref(&cas).unwrap();
    out.id
}

/// An agent's memory committed turn after turn, compacted every few turns: small packs
/// merge, the store keeps O(log n) packs, and git reads all of it.
#[test]
fn packs_merge_geometrically() {
    use snapgit_core::commit::Change;
    let store = agent_store();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut head = None;
    let mut notes = String::new();
    let mut merged = 0;
    for turn in 0..64i64 {
        notes.push_str(&format!("## Turn {turn}\n\nThe agent learnt fact number {turn}.\n\n"));
        let changes = vec![
            Change::put("notes.md", notes.clone()),
            Change::put(format!("turns/{turn}.md"), format!("turn {turn}\n")),
        ];
        head = Some(commit_turn(&store, &mut cache, head, changes, turn));
        if turn % 4 == 3 {
            let report = compact(&store, grace_0(now(&store, HOUR_MS + turn)));
            merged += report.packs_merged;
            let packs = packs(&store).len();
            let objects: usize = 4 * (turn as usize + 1);
            assert!(
                packs <= 1 + objects.ilog2() as usize,
                "{packs} packs after turn {turn}: {report:?}"
            );
            assert!(store.is_empty(), "every loose object packed: {report:?}");
        }
    }
    assert!(merged > 0, "small packs were merged");
    let repo = git_checks(&store);
    let log = repo.git(&["log", "--format=%s", AGENT_MAIN]);
    assert_eq!(log.lines().count(), 64);
    let notes_now = repo.git(&["show", &format!("{AGENT_MAIN}:notes.md")]);
    assert_eq!(notes_now.trim_end(), notes.trim_end());
}

fn grace_0(mut options: CompactOptions) -> CompactOptions {
    options.grace_ms = 0;
    options
}

/// With thresholds, one listing decides: below both nothing is read or written.
#[test]
fn thresholds_decide_from_one_listing() {
    let (_, store) = loose_history();
    let loose = store.len() as u64;
    let counts = store.counts();
    let mut options = now(&store, 10 * HOUR_MS);
    options.min_loose = Some(loose + 1);
    options.min_packs = Some(1);
    let waited = compact(&store, options);
    assert!(waited.skipped);
    assert_eq!(
        (waited.loose_before, waited.packs_before, waited.packs_after),
        (loose, 0, 0)
    );
    let spent = store.counts();
    assert_eq!(spent.requests() - counts.requests(), 1, "one listing");
    options.min_loose = Some(loose);
    let ran = compact(&store, options);
    assert!(!ran.skipped && ran.pack.is_some(), "{ran:?}");
    // One pack now: min_packs 1 makes it run again (and find nothing new to pack).
    options.min_loose = None;
    let again = compact(&store, options);
    assert!(!again.skipped && again.pack.is_none(), "{again:?}");
}

/// The commit-graph compaction writes: `git commit-graph verify` accepts it, git's log
/// is the same with and without it, and git answers path-limited logs from its Bloom
/// filters. A second compaction after more commits writes it again, keeping the filters
/// it had.
#[test]
fn the_commit_graph_git_verifies_and_uses() {
    let (h, store) = loose_history();
    // A single-file graph git wrote (as `git gc` does) is replaced by a chain.
    let before = GitRepo::from_store(&store);
    before.git(&["commit-graph", "write", "--reachable"]);
    let single = std::fs::read(before.path().join("objects/info/commit-graph")).unwrap();
    store.insert_file("objects/info/commit-graph", single);
    let report = compact(&store, grace_0(now(&store, 10 * HOUR_MS)));
    assert_eq!(report.graph_commits as usize, h.commits.len(), "{report:?}");
    let repo = GitRepo::from_store(&store);
    // A short history keeps one file (a reader gets it with the pack indexes).
    assert_ne!(
        std::fs::read(repo.path().join("objects/info/commit-graph")).unwrap(),
        std::fs::read(before.path().join("objects/info/commit-graph")).unwrap(),
        "written again, with Bloom filters"
    );
    assert!(chain(&store).is_empty());
    repo.git(&["commit-graph", "verify"]);
    let with = repo.git(&["log", "--graph", "--oneline", "--all"]);
    let without = repo.git(&["-c", "core.commitGraph=false", "log", "--graph", "--oneline", "--all"]);
    assert_eq!(with, without);
    for path in h.paths.iter().step_by(11).take(10) {
        let args = ["log", "--format=%H", "--all", "--", path.as_str()];
        let with = repo.git(&args);
        let mut plain = vec!["-c", "core.commitGraph=false"];
        plain.extend_from_slice(&args);
        assert_eq!(with, repo.git(&plain), "log -- {path}");
    }
    // git reads the filters: its trace counts commits the filters ruled out.
    let path = h.paths.iter().next().unwrap();
    let trace = repo.git_output(
        &["log", "--format=%H", "--all", "--", path],
        &[],
        &[("GIT_TRACE2_PERF", "1".to_owned())],
    );
    let stderr = String::from_utf8_lossy(&trace.stderr);
    assert!(
        stderr.contains("definitely_not"),
        "no Bloom statistics in git's trace:\n{stderr}"
    );
    assert!(
        stderr.contains("\"filter_not_present\":0"),
        "every commit has a filter:\n{stderr}"
    );

    // Up to date: not written again.
    let again = compact(&store, grace_0(now(&store, 11 * HOUR_MS)));
    assert_eq!(again.graph_commits, 0, "{again:?}");
}

#[test]
fn the_commit_graph_grows_with_new_commits() {
    use snapgit_core::commit::Change;
    let store = agent_store();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let key = AGENT_MAIN;
    let mut head = None;
    for round in 0..4i64 {
        for turn in 0..10i64 {
            let n = round * 10 + turn;
            let changes = vec![
                Change::put("notes.md", format!("turn {n}\n")),
                Change::put(format!("deep/a/b/{n}.md"), "x\n"),
            ];
            head = Some(commit_turn(&store, &mut cache, head, changes, n));
        }
        let mut options = grace_0(now(&store, HOUR_MS * (round + 1)));
        options.split_graph_at = 0;
        let report = compact(&store, options);
        // A layer of the new commits; merged with the layer below while it holds more
        // than half as many (git's split strategy).
        let (written, layers) = [(10, 1), (20, 1), (10, 2), (40, 1)][round as usize];
        assert_eq!(report.graph_commits, written, "round {round}: {report:?}");
        assert_eq!(chain(&store).len(), layers, "round {round}");
        let repo = GitRepo::from_store(&store);
        repo.git(&["commit-graph", "verify"]);
        // The layers the chain no longer names go at the next run (no grace period here).
        let mut options = grace_0(now(&store, HOUR_MS * (round + 1) + 1));
        options.split_graph_at = 0;
        compact(&store, options);
        let named = chain(&store);
        let stored: Vec<String> = keys(&store, "objects/info/commit-graphs/")
            .into_iter()
            .map(|l| l.key)
            .filter(|k| k.ends_with(".graph"))
            .collect();
        assert_eq!(stored.len(), named.len(), "round {round}: {stored:?}");
        let args = ["log", "--format=%H", key, "--", "deep/a"];
        let mut plain = vec!["-c", "core.commitGraph=false"];
        plain.extend_from_slice(&args);
        assert_eq!(repo.git(&args), repo.git(&plain));
        assert_eq!(repo.git(&args).lines().count() as i64, (round + 1) * 10);
        // snapgit's log reads the chain, and agrees with git's.
        let request = snapgit_core::history::Request::new(head.unwrap(), 1000).with_path("deep/a");
        let mut reader = ObjectCache::new(gix_hash::Kind::Sha1);
        let page = drive::run(
            &mut snapgit_core::history::Log::new(request).unwrap(),
            &mut reader,
            &store,
        )
        .unwrap();
        let ours: Vec<String> = page.commits.iter().map(|c| c.id.to_string()).collect();
        assert_eq!(ours, repo.git(&args).lines().map(str::to_owned).collect::<Vec<_>>());
    }
    // Under the default threshold the chain becomes one file again, keeping its filters;
    // the layers go at the next run.
    let single = compact(&store, grace_0(now(&store, 10 * HOUR_MS)));
    assert_eq!(single.graph_commits, 40, "{single:?}");
    assert!(chain(&store).is_empty());
    compact(&store, grace_0(now(&store, 11 * HOUR_MS)));
    assert!(keys(&store, "objects/info/commit-graphs/").is_empty());
    let repo = GitRepo::from_store(&store);
    repo.git(&["commit-graph", "verify"]);
    assert!(repo.path().join("objects/info/commit-graph").exists());
}

/// A reader that listed the packs (none yet) before a compaction packed everything and
/// deleted the loose copies at once still finds every object: a loose miss after a
/// listing makes it list the packs again.
#[test]
fn a_reader_that_listed_the_packs_before_a_compaction_still_reads_everything() {
    use snapgit_core::{
        Operation,
        pack::Packed,
        read,
        step::{Answer, Step},
    };
    let (h, store) = loose_history();
    let expected = drive::run(
        &mut read::ReadFiles::new(h.main, "").unwrap(),
        &mut ObjectCache::new(gix_hash::Kind::Sha1),
        &store,
    )
    .unwrap();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut op = Packed::new(read::ReadFiles::new(h.main, "").unwrap());
    let step = op.poll(&mut cache).unwrap();
    assert_eq!(
        step,
        Step::List("objects/pack/".into()),
        "a cold cache lists the packs first"
    );
    let listed = store.list("objects/pack/").unwrap();
    assert!(listed.is_empty());
    compact(&store, grace_0(now(&store, 10 * HOUR_MS)));
    assert!(store.is_empty(), "the loose copies are gone");
    op.answer(&mut cache, Answer::List(listed)).unwrap();
    let files = loop {
        if let Some(files) = drive::step(&mut op, &mut cache, &store).unwrap() {
            break files;
        }
    };
    assert_eq!(files, expected);
}

/// What an interrupted write left — a pack whose index never landed, an index whose pack
/// is gone — goes once older than the grace period and an hour; a young one stays.
#[test]
fn orphan_pack_files_go_once_old() {
    let (_, store) = loose_history();
    store.set_time_ms(HOUR_MS);
    store.insert_file(
        "objects/pack/pack-1111111111111111111111111111111111111111.pack",
        b"PACK".to_vec(),
    );
    store.insert_file(
        "objects/pack/pack-2222222222222222222222222222222222222222.idx",
        b"idx".to_vec(),
    );
    store.insert_file(
        "objects/pack/pack-3333333333333333333333333333333333333333.keep",
        b"".to_vec(),
    );
    store.set_time_ms(3 * HOUR_MS);
    store.insert_file(
        "objects/pack/pack-4444444444444444444444444444444444444444.pack",
        b"PACK".to_vec(),
    );
    let mut options = now(&store, 3 * HOUR_MS + 1000);
    options.grace_ms = 0;
    compact(&store, options);
    let left: Vec<String> = keys(&store, "objects/pack/")
        .into_iter()
        .map(|l| l.key)
        .filter(|k| k.contains("1111") || k.contains("2222") || k.contains("3333") || k.contains("4444"))
        .collect();
    assert_eq!(
        left,
        [
            "objects/pack/pack-3333333333333333333333333333333333333333.keep",
            "objects/pack/pack-4444444444444444444444444444444444444444.pack",
        ],
        "the old orphans went; a marker and a young pack stay"
    );
    GitRepo::from_store(&store).fsck();
}

/// A store git half packed (its older half in git's pack, the rest loose): compaction
/// merges git's pack with the loose objects when the factor asks for it, git's pack goes,
/// and git and snapgit read the same history.
#[test]
fn a_store_git_half_packed_merges_into_one_pack() {
    let h = generated::history();
    let store = crate::packs::half_packed(h).to_full_store();
    let git_pack = packs(&store);
    assert_eq!(git_pack.len(), 1);
    let before = git_objects(&GitRepo::from_store(&store));
    let mut options = grace_0(now(&store, 10 * HOUR_MS));
    options.factor = 1_000;
    let report = compact(&store, options);
    assert_eq!(
        (report.packs_merged, report.packs_deleted, report.packs_after),
        (1, 1, 1),
        "{report:?}"
    );
    assert!(!packs(&store).contains(&git_pack[0]), "git's pack went");
    let after = git_checks(&store);
    assert_eq!(git_objects(&after), before);
    crate::packs::reads_agree(h, &store);
}

/// A loose object over the object limit stays loose; everything else is packed.
#[test]
fn an_object_over_the_limit_stays_loose() {
    let (_, store) = loose_history();
    // A blob in a tree a ref names: reachable, and never read by the walk.
    let repo = GitRepo::from_store(&store);
    let id = repo.write_blob(&[7u8; 4096]);
    let tree = repo.git_with_input(&["mktree"], format!("100644 blob {id}\tbig.bin\n").as_bytes());
    repo.git(&["update-ref", "refs/trees/big", tree.trim()]);
    let store = repo.to_full_store();
    let limits = snapgit_core::Limits {
        max_object_bytes: 4000,
        ..Default::default()
    };
    let mut cache = ObjectCache::with_limits(gix_hash::Kind::Sha1, limits);
    let mut options = now(&store, 10 * HOUR_MS);
    options.grace_ms = 0;
    let mut op = Compact::new(&cache, options).unwrap();
    let report = drive::run(&mut op, &mut cache, &store).unwrap();
    assert!(report.pack.is_some(), "{report:?}");
    assert_eq!(store.ids(), vec![id], "only the big blob is loose");
    git_checks(&store);
}

/// A pack stored after an older pack that holds all its objects (a push of objects the
/// store had, or two compactions finishing out of order) is never deleted for the older
/// one, but it is merged like any small pack, then deleted for the pack it went into.
#[test]
fn a_newer_pack_an_older_one_holds_is_merged_away() {
    use snapgit_core::{commit::Change, pack};
    let store = agent_store();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut head = None;
    let mut first = Vec::new();
    // A big pack: many turns, so that it is not merged again below.
    for n in 0..30 {
        let changes = vec![Change::put("notes.md", format!("turn {n}\n"))];
        head = Some(commit_turn(&store, &mut cache, head, changes, n));
        if n == 0 {
            let ids: Vec<_> = keys(&store, "objects/")
                .iter()
                .filter_map(|l| snapgit_core::store::parse_object_key(&l.key, gix_hash::Kind::Sha1))
                .collect();
            first = ids
                .iter()
                .zip(store.get_many(&ids).unwrap())
                .map(|(id, b)| (*id, b.unwrap()))
                .collect();
        }
    }
    let big = compact(&store, grace_0(now(&store, HOUR_MS)));
    assert_eq!(big.packs_after, 1);
    // A later pack of the first turn's objects, which the big pack holds too.
    let objects: Vec<pack::write::Object> = first
        .iter()
        .map(|(id, stored)| {
            let (kind, data) = snapgit_core::object::decode_content(id, stored, u64::MAX).unwrap();
            pack::write::Object {
                id: *id,
                kind,
                data,
                name: 0,
            }
        })
        .collect();
    store.set_time_ms(2 * HOUR_MS);
    let small = pack::write::write(gix_hash::Kind::Sha1, &objects, &pack::write::Options::default());
    store.write(&small.files()).unwrap();
    assert_eq!(packs(&store).len(), 2);
    // Two more turns, compacted: the small pack goes into the new one, and goes; the big
    // one stays.
    for n in 30..32 {
        let changes = vec![Change::put("notes.md", format!("turn {n}\n"))];
        head = Some(commit_turn(&store, &mut cache, head, changes, n));
    }
    let report = compact(&store, grace_0(now(&store, 3 * HOUR_MS)));
    assert_eq!(report.packs_merged, 1, "{report:?}");
    assert_eq!(report.packs_after, 2, "{report:?}");
    assert!(
        !packs(&store).contains(&small.pack_key()),
        "{report:?}: {:?}",
        packs(&store)
    );
    git_checks(&store);
}
