//! History against `git log`: path-filtered walks, first parent or all, paging, file
//! history with line counts.

use snapgit_core::{
    ObjectCache, ObjectId,
    diff::ChangeKind,
    drive,
    history::{Cursor, FileLog, Log, Request},
};
use snapgit_tests::oid;

use crate::generated::{self, History};

fn cache() -> ObjectCache {
    ObjectCache::new(gix_hash::Kind::Sha1)
}

fn request(start: ObjectId, path: Option<&str>, first_parent: bool, limit: usize) -> Request {
    let mut request = Request::new(start, limit);
    request.path = path.map(Into::into);
    request.first_parent = first_parent;
    request
}

/// Every page of our walk over the generated history's loose store, joined.
fn ours(
    h: &History,
    cache: &mut ObjectCache,
    start: ObjectId,
    path: Option<&str>,
    first_parent: bool,
    limit: usize,
) -> Vec<ObjectId> {
    walk_store(&h.store, cache, start, path, first_parent, limit)
}

fn git_log(h: &History, start: ObjectId, path: Option<&str>, first_parent: bool) -> Vec<ObjectId> {
    let start = start.to_string();
    let mut args = vec!["--literal-pathspecs", "log", "--format=%H"];
    if first_parent {
        args.push("--first-parent");
    }
    args.push(&start);
    if let Some(path) = path {
        args.extend(["--", path]);
    }
    h.oracle.git(&args).lines().map(oid).collect()
}

/// Starting points: the main tip and a few commits inside the graph (merges among them).
fn starts(h: &History) -> Vec<ObjectId> {
    let merges: Vec<usize> = (0..h.commits.len()).filter(|&i| h.parents[i].len() > 1).collect();
    let mut starts = vec![h.main, h.commits[h.commits.len() / 2], h.commits[h.commits.len() - 2]];
    starts.extend(merges.iter().step_by(4).take(3).map(|&i| h.commits[i]));
    starts
}

fn paths(h: &History) -> Vec<Option<&str>> {
    let mut paths: Vec<Option<&str>> = vec![None, Some("does/not/exist"), Some("nope")];
    paths.extend(h.paths.iter().map(|p| Some(p.as_str())));
    paths
}

#[test]
fn generated_history_has_what_the_tests_need() {
    let h = generated::history();
    let merges = h.parents.iter().filter(|p| p.len() > 1).count();
    let octopus = h.parents.iter().filter(|p| p.len() > 2).count();
    assert!(h.commits.len() >= 300, "{} commits", h.commits.len());
    assert!(merges >= 10, "{merges} merges");
    assert!(octopus >= 1, "no octopus merge");
    assert!(h.folders.len() >= 5);
    // Loose objects only, as the stores snapgit reads.
    assert!(std::fs::read_dir(h.git.path().join("objects/pack")).map_or(true, |mut d| d.next().is_none()));
}

#[test]
fn path_filtered_log_equals_git_log() {
    let h = generated::history();
    let mut cache = cache();
    let mut compared = 0;
    for first_parent in [true, false] {
        for path in paths(h) {
            let expected = git_log(h, h.main, path, first_parent);
            let got = ours(h, &mut cache, h.main, path, first_parent, usize::MAX);
            assert_eq!(got, expected, "path {path:?}, first parent {first_parent}");
            compared += usize::from(!expected.is_empty());
        }
    }
    assert!(compared > 50);
}

#[test]
fn log_from_other_starts_equals_git_log() {
    let h = generated::history();
    let mut cache = cache();
    let sample: Vec<Option<&str>> = paths(h).into_iter().step_by(7).collect();
    for start in starts(h).into_iter().skip(1) {
        for first_parent in [true, false] {
            for &path in &sample {
                let expected = git_log(h, start, path, first_parent);
                let got = ours(h, &mut cache, start, path, first_parent, usize::MAX);
                assert_eq!(
                    got, expected,
                    "start {start}, path {path:?}, first parent {first_parent}"
                );
            }
        }
    }
}

#[test]
fn log_with_a_skewed_clock_equals_git_log() {
    let h = generated::skewed();
    let mut cache = cache();
    for first_parent in [true, false] {
        for path in paths(h).into_iter().step_by(3) {
            let expected = git_log(h, h.main, path, first_parent);
            let got = ours(h, &mut cache, h.main, path, first_parent, usize::MAX);
            assert_eq!(got, expected, "path {path:?}, first parent {first_parent}");
        }
    }
}

#[test]
fn pages_joined_equal_one_walk() {
    let h = generated::history();
    let mut cache = cache();
    let sample: Vec<Option<&str>> = paths(h).into_iter().step_by(5).collect();
    for first_parent in [true, false] {
        for &path in &sample {
            let whole = ours(h, &mut cache, h.main, path, first_parent, usize::MAX);
            for limit in [1, 3, 10] {
                let paged = ours(h, &mut cache, h.main, path, first_parent, limit);
                assert_eq!(
                    paged, whole,
                    "path {path:?}, first parent {first_parent}, limit {limit}"
                );
            }
        }
    }
}

#[test]
fn pages_from_a_cold_cache_read_only_what_they_show() {
    let h = generated::history();
    // Unfiltered, first parent: a page of n commits reads exactly n commits in n rounds.
    let mut cold = cache();
    let mut op = Log::new(request(h.main, None, true, 10)).expect("valid");
    let before = h.store.counts();
    let page = drive::run(&mut op, &mut cold, &h.store).expect("walk");
    let after = h.store.counts();
    assert_eq!(page.commits.len(), 10);
    assert_eq!(after.gets - before.gets, 10);
    assert_eq!(op.rounds(), 10);
}

/// `git log --first-parent --numstat` per commit: (id, added and removed or binary).
fn git_file_log(h: &History, path: &str) -> Vec<(ObjectId, Option<(u64, u64)>)> {
    let out = h.oracle.git(&[
        "--literal-pathspecs",
        "log",
        "--first-parent",
        "--no-renames",
        "--format=%H",
        "--numstat",
        &h.main.to_string(),
        "--",
        path,
    ]);
    let mut entries = Vec::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        if line.len() == 40 && !line.contains('\t') {
            entries.push((oid(line), None));
            continue;
        }
        let mut parts = line.split('\t');
        let (added, removed) = (parts.next().unwrap_or("-"), parts.next().unwrap_or("-"));
        let counts = added.parse().ok().zip(removed.parse().ok());
        if let Some(last) = entries.last_mut() {
            last.1 = counts;
        }
    }
    entries
}

#[test]
fn file_history_counts_equal_git_numstat() {
    let h = generated::history();
    let mut cache = cache();
    let mut checked = 0;
    for path in h.paths.iter().filter(|p| !h.folders.contains(*p)) {
        let expected = git_file_log(h, path);
        let mut op = FileLog::new(request(h.main, Some(path), true, usize::MAX)).expect("valid");
        let page = drive::run(&mut op, &mut cache, &h.store).expect("file history");
        assert!(page.next.is_none());
        let got: Vec<(ObjectId, Option<(u64, u64)>)> = page
            .commits
            .iter()
            .map(|c| (c.commit.id, c.change.lines.map(|l| (l.added, l.removed))))
            .collect();
        assert_eq!(got, expected, "path {path:?}");
        for c in &page.commits {
            assert_eq!(c.change.path, path.as_bytes());
            assert!(!matches!(c.change.kind, ChangeKind::Renamed { .. }));
            assert_eq!(c.change.binary, c.change.lines.is_none());
        }
        checked += page.commits.len();
    }
    assert!(checked > 100, "{checked} file commits compared");
}

/// Every page of our walk over `store`, joined, with `cache`.
fn walk_store(
    store: &snapgit_core::drive::MemoryStore,
    cache: &mut ObjectCache,
    start: ObjectId,
    path: Option<&str>,
    first_parent: bool,
    limit: usize,
) -> Vec<ObjectId> {
    let mut out = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let mut req = request(start, path, first_parent, limit);
        req.cursor = cursor.take();
        let page = drive::run(&mut Log::new(req).expect("valid request"), cache, store).expect("walk");
        assert!(page.commits.len() <= limit);
        out.extend(page.commits.iter().map(|c| c.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// After compaction the walk reads the commit-graph (parents, times, trees, and the
/// changed-path Bloom filters that rule out most commits without a tree read); with it,
/// and past its tip, every log equals git's, paged or not, and reads fewer objects.
#[test]
fn with_the_commit_graph_logs_equal_git_log_and_read_less() {
    use snapgit_core::{
        drive::ObjectStore,
        gc::{Compact, CompactOptions},
    };
    let h = generated::history();
    let store = h.git.to_full_store();
    store.set_time_ms(1_000);
    let mut options = CompactOptions::new(1_000);
    options.grace_ms = 0;
    let report = drive::run(
        &mut Compact::new(&cache(), options).expect("valid"),
        &mut cache(),
        &store,
    )
    .expect("compacts");
    assert!(report.graph_commits > 0, "{report:?}");
    let without = h.git.to_full_store();
    // The same packs without the graph: what the walk reads without it.
    for listed in store.list("objects/").expect("memory") {
        if !listed.key.starts_with(snapgit_core::graph::GRAPH) {
            without.insert_file(&listed.key, store.file(&listed.key).expect("listed"));
        }
    }
    let mut compared = 0;
    let (mut read_with, mut read_without) = (0, 0);
    for first_parent in [true, false] {
        for path in paths(h) {
            let expected = git_log(h, h.main, path, first_parent);
            let mut with_graph = cache();
            assert_eq!(
                walk_store(&store, &mut with_graph, h.main, path, first_parent, usize::MAX),
                expected,
                "path {path:?}, first parent {first_parent}"
            );
            let mut plain = cache();
            walk_store(&without, &mut plain, h.main, path, first_parent, usize::MAX);
            read_with += with_graph.len();
            read_without += plain.len();
            compared += usize::from(!expected.is_empty());
        }
    }
    assert!(compared > 50);
    eprintln!("objects read by every log: {read_with} with the commit-graph, {read_without} without");
    assert!(
        read_with * 2 < read_without,
        "objects read: {read_with} with the graph, {read_without} without"
    );
    // A cache an operation without history listed the packs for reads the graph before
    // its first walk.
    let path = paths(h)[5];
    let mut listed = cache();
    drive::run(&mut snapgit_core::read::ReadCommit::new(h.main), &mut listed, &store).expect("reads");
    let mut plain = cache();
    drive::run(&mut snapgit_core::read::ReadCommit::new(h.main), &mut plain, &without).expect("reads");
    assert_eq!(
        walk_store(&store, &mut listed, h.main, path, true, usize::MAX),
        walk_store(&without, &mut plain, h.main, path, true, usize::MAX)
    );
    assert!(
        listed.len() * 2 < plain.len(),
        "{} objects read, {} without the graph",
        listed.len(),
        plain.len()
    );
    // Paged, and from starts inside the graph.
    for start in starts(h) {
        for path in paths(h).into_iter().step_by(11) {
            let expected = git_log(h, start, path, false);
            assert_eq!(
                walk_store(&store, &mut cache(), start, path, false, 7),
                expected,
                "start {start}, path {path:?}"
            );
        }
    }
}
