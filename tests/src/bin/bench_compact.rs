//! Benchmark: compaction — storage, history rounds, commit requests, throughput.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench-compact [-- --window N]
//! ```
//!
//! Every store is in memory and counts its requests: a round is one batch a driver sends
//! at once, a request one per key, listing or byte range (as object storage bills them).
//! Latency is rounds x 20 ms, what a store 20 ms away costs.
//!
//! 1. Storage: 1,000 edits of a 100 KB Markdown file (a paragraph appended each time),
//!    and an agent's memory over 1,000 turns (the README demo's files: a profile that
//!    grows, a state file rewritten, a new note every tenth turn). Keys and bytes loose,
//!    after `compact`, and what `git gc --aggressive` keeps of the same objects.
//! 2. History, cold, before and after compaction: the path-filtered log of the 1,000
//!    commits, and its first page of 50.
//! 3. Commits: a 1-file and a 10-file commit written loose, and written as one small pack
//!    per commit; then a cold read of every file after 100 such commits.
//! 4. Compaction of the 10,000-file, 1,000-commit history (`git fast-import`, unpacked
//!    loose): objects/s, MB/s of content, and the growth of the process's peak resident
//!    memory while it runs (Linux's VmHWM, reset before).
//! 5. A size cap over 8 repos of 250 turns each, packed: what the refs reach before,
//!    what `cap` estimates for half of it, and what is stored and reached once
//!    `compact --drop-unreachable` (twice) and `gc` have run; the cap's rounds.

use std::time::Instant;

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{self, Change},
    drive::{self, MemoryStore, ObjectStore},
    gc::{Cap, CapRequest, Collect, CollectOptions, Compact, CompactOptions, Compacted},
    history, pack, read,
    step::CasRef,
};
use snapgit_tests::{GitRepo, fast_import, signature};

/// The process's peak resident memory (VmHWM), in bytes; `reset_peak` starts it over
/// from what is resident now (Linux: writing 5 to `clear_refs`).
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

const RTT_MS: u64 = 20;
const BRANCH: &str = "refs/namespaces/agent/refs/heads/main";

/// Rounds and requests of one cold operation.
#[derive(Debug, Clone, Copy)]
struct Cost {
    rounds: u64,
    requests: u64,
}

impl Cost {
    fn between(before: drive::Counts, after: drive::Counts) -> Cost {
        Cost {
            rounds: after.get_rounds - before.get_rounds + after.put_rounds - before.put_rounds + after.other
                - before.other,
            requests: after.gets - before.gets + after.puts - before.puts + after.other - before.other,
        }
    }

    fn show(&self) -> String {
        format!(
            "{:>5} rounds {:>7} requests {:>7} ms",
            self.rounds,
            self.requests,
            self.rounds * RTT_MS
        )
    }
}

fn run_cold<O: snapgit_core::Operation>(store: &MemoryStore, mut op: O) -> (O::Output, Cost)
where
    O::Error: From<snapgit_core::object::Error> + std::fmt::Debug,
{
    let before = store.counts();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let out = drive::run(&mut op, &mut cache, store).expect("the operation succeeds");
    (out, Cost::between(before, store.counts()))
}

/// Commit `changes` on the branch, storing the new objects loose or as one pack.
fn commit(
    store: &MemoryStore,
    cache: &mut ObjectCache,
    head: Option<ObjectId>,
    changes: Vec<Change>,
    turn: i64,
    as_pack: bool,
) -> ObjectId {
    let request = commit::Request::new(head, changes, signature(1_700_000_000 + turn), format!("turn {turn}"));
    let out = drive::run(&mut commit::Commit::new(cache, request).expect("valid"), cache, store).expect("commit");
    if as_pack {
        let objects: Vec<pack::write::Object> = out
            .objects
            .iter()
            .map(|o| {
                let (kind, data) = snapgit_core::object::decode_content(&o.id, &o.loose, u64::MAX).expect("ours");
                pack::write::Object {
                    id: o.id,
                    kind,
                    data,
                    name: 0,
                }
            })
            .collect();
        let options = pack::write::Options {
            window: 0,
            ..Default::default()
        };
        let written = pack::write::write(gix_hash::Kind::Sha1, &objects, &options);
        store.write(&written.files()).expect("memory");
    } else {
        store.put_many(&out.objects).expect("memory");
    }
    let expected = store.read_ref(BRANCH).expect("memory");
    store
        .cas_ref(&CasRef {
            key: BRANCH.into(),
            expected,
            new: Some(out.id),
        })
        .expect("memory");
    out.id
}

/// Keys and stored bytes under `objects/`.
fn footprint(store: &MemoryStore) -> (usize, u64) {
    let listed = store.list("objects/").expect("memory");
    (listed.len(), listed.iter().map(|l| l.size).sum())
}

/// The delta window asked for with `--window N`, if any (default: core's).
fn window() -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--window")?;
    args.get(at + 1)?.parse().ok()
}

/// Compact with no grace period: the report, the seconds it took, and how far the
/// process's peak resident memory rose above what was resident before (meaningful in a
/// fresh process only: freed memory is reused without showing).
fn compact(store: &MemoryStore) -> (Compacted, f64, usize) {
    store.set_time_ms(i64::MAX / 2);
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut options = CompactOptions::new(i64::MAX / 2);
    options.grace_ms = 0;
    if let Some(window) = window() {
        options.window = window;
    }
    reset_peak();
    let base = rss();
    let started = Instant::now();
    let report = drive::run(&mut Compact::new(&cache, options).expect("valid"), &mut cache, store).expect("compacts");
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss().saturating_sub(base);
    (report, seconds, peak)
}

/// The size of the pack `git gc --aggressive` makes of a copy of `store`.
fn git_aggressive(store: &MemoryStore) -> u64 {
    let repo = GitRepo::from_store(store);
    repo.git(&["gc", "--quiet", "--aggressive", "--prune=now"]);
    std::fs::read_dir(repo.path().join("objects/pack"))
        .expect("packs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .map(|p| std::fs::metadata(p).expect("size").len())
        .sum()
}

fn log_costs(store: &MemoryStore, head: ObjectId, path: &str) -> (Cost, Cost) {
    let all = history::Request::new(head, 10_000).with_path(path);
    let (page, all_cost) = run_cold(store, history::Log::new(all).expect("valid"));
    assert!(page.commits.len() >= 1000, "{} commits", page.commits.len());
    let first = history::Request::new(head, 50).with_path(path);
    let (_, first_cost) = run_cold(store, history::Log::new(first).expect("valid"));
    (all_cost, first_cost)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn storage(name: &str, store: &MemoryStore, head: ObjectId, path: &str, timed_paths: &[&str]) {
    let (keys, bytes) = footprint(store);
    let git = git_aggressive(store);
    let (log_loose, page_loose) = log_costs(store, head, path);
    let (report, seconds, _) = compact(store);
    let (keys_after, bytes_after) = footprint(store);
    let (log_packed, page_packed) = log_costs(store, head, path);
    println!("\n{name}");
    println!("  loose:            {keys:>6} keys {:>12}", kib(bytes));
    println!(
        "  after compact:    {keys_after:>6} keys {:>12}  ({} objects, {} deltas, {:.2} s)",
        kib(bytes_after),
        report.objects,
        report.deltas,
        seconds,
    );
    println!(
        "  git gc --aggressive:     pack {:>12}  -> snapgit's pack is {:.2}x git's",
        kib(git),
        report.pack_bytes as f64 / git as f64
    );
    println!("  log -- {path} (all), cold, loose:  {}", log_loose.show());
    println!("  log -- {path} (all), cold, packed: {}", log_packed.show());
    println!("  first page of 50, cold, loose:      {}", page_loose.show());
    println!("  first page of 50, cold, packed:     {}", page_packed.show());
    // The same logs in process, with the commit-graph and without it (the file removed).
    let timed = |store: &MemoryStore, path: &str| {
        let mut best = f64::MAX;
        let mut read = 0;
        for _ in 0..5 {
            let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
            let started = Instant::now();
            let request = history::Request::new(head, 10_000).with_path(path);
            drive::run(&mut history::Log::new(request).expect("valid"), &mut cache, store).expect("log");
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
            read = cache.len();
        }
        (best, read)
    };
    let with: Vec<(f64, usize)> = timed_paths.iter().map(|p| timed(store, p)).collect();
    store.delete(&[snapgit_core::graph::GRAPH.to_owned()]).expect("memory");
    for (p, (with_ms, with_read)) in timed_paths.iter().zip(with) {
        let (without_ms, without_read) = timed(store, p);
        println!(
            "  log -- {p} (all), in process: {with_ms:.1} ms, {with_read} objects read with the commit-graph; {without_ms:.1} ms, {without_read} without ({:.1}x)",
            without_ms / with_ms
        );
    }
}

fn notes_history() -> (MemoryStore, ObjectId) {
    let store = MemoryStore::new();
    store.insert_file("HEAD", "ref: refs/heads/main\n");
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut notes = String::new();
    let mut paragraph = 0;
    while notes.len() < 100_000 {
        paragraph += 1;
        notes.push_str(&format!(
            "## Note {paragraph}\n\nThe agent recorded observation {paragraph}: the user prefers short answers, \
             works in UTC+1 and keeps their project notes in Markdown.\n\n"
        ));
    }
    let mut head = None;
    for turn in 0..1000 {
        notes.push_str(&format!(
            "## Turn {turn}\n\nWhat the agent learnt on turn {turn}, in a paragraph of ordinary length.\n\n"
        ));
        head = Some(commit(
            &store,
            &mut cache,
            head,
            vec![Change::put("notes.md", notes.clone())],
            turn,
            false,
        ));
    }
    (store, head.expect("commits"))
}

fn agent_history() -> (MemoryStore, ObjectId) {
    let store = MemoryStore::new();
    store.insert_file("HEAD", "ref: refs/heads/main\n");
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut profile = String::from("# Profile\n");
    let mut head = None;
    for turn in 0..1000i64 {
        profile.push_str(&format!("- turn {turn}: prefers short answers\n"));
        let mut changes = vec![
            Change::put("memory/profile.md", profile.clone()),
            Change::put(
                "memory/state.json",
                format!("{{\"turn\": {turn}, \"mood\": \"curious\"}}\n"),
            ),
        ];
        if turn % 10 == 0 {
            changes.push(Change::put(
                format!("memory/notes/{turn}.md"),
                format!("# Note {turn}\n\nSomething worth keeping from turn {turn}.\n"),
            ));
        }
        head = Some(commit(&store, &mut cache, head, changes, turn, false));
    }
    (store, head.expect("commits"))
}

fn commits_section() {
    println!("\ncommits: new objects loose (one key each) vs one small pack per commit (pack + index)");
    for (files, label) in [(1usize, "1-file"), (10, "10-file")] {
        for as_pack in [false, true] {
            let (store, head) = agent_history();
            let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
            let before = store.counts();
            let mut head = Some(head);
            for turn in 0..100i64 {
                let changes = (0..files)
                    .map(|f| Change::put(format!("work/{f}.md"), format!("file {f} at turn {turn}\n")))
                    .collect();
                head = Some(commit(&store, &mut cache, head, changes, 2000 + turn, as_pack));
            }
            let after = store.counts();
            // Per commit: the write round (objects or files), the compare-and-swap.
            let keys = (after.puts - before.puts) as f64 / 100.0;
            let bytes = (after.put_bytes - before.put_bytes) as f64 / 100.0;
            let (_, read) = run_cold(&store, read::ReadFiles::new(head.expect("commits"), "").expect("valid"));
            println!(
                "  {label} {:<14} {keys:>5.1} PUT requests/commit, {bytes:>7.0} B/commit, 2 rounds ({} ms at 20 ms); then a cold read of every file: {}",
                if as_pack { "pack per commit" } else { "loose" },
                2 * RTT_MS,
                read.show()
            );
        }
    }
}

fn throughput() {
    let source = GitRepo::new();
    source.git_with_input(&["fast-import", "--quiet"], &fast_import::stream());
    let loose = GitRepo::new();
    let pack = std::fs::read_dir(source.path().join("objects/pack"))
        .expect("packs")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .expect("fast-import wrote a pack");
    loose.git_with_input(&["unpack-objects", "-q"], &std::fs::read(pack).expect("pack"));
    let head = source.git(&["rev-parse", "refs/heads/main"]);
    loose.git(&["update-ref", "refs/heads/main", head.trim()]);
    let store = loose.to_full_store();
    let (keys, _) = footprint(&store);
    let content: u64 = loose
        .git(&["cat-file", "--batch-all-objects", "--batch-check=%(objectsize)"])
        .lines()
        .map(|l| l.parse::<u64>().expect("size"))
        .sum();
    let resident = rss();
    let (report, seconds, peak) = compact(&store);
    println!(
        "\ncompaction of the {}-file, {}-commit history: {keys} loose objects, {:.1} MB of content",
        fast_import::FILES,
        fast_import::COMMITS,
        content as f64 / 1e6
    );
    println!(
        "  {:.2} s: {:.0} objects/s, {:.1} MB/s; peak memory {:.1} MiB above the {:.1} MiB the loaded store holds; pack {} ({} deltas)",
        seconds,
        report.objects as f64 / seconds,
        content as f64 / 1e6 / seconds,
        peak as f64 / (1 << 20) as f64,
        resident as f64 / (1 << 20) as f64,
        kib(report.pack_bytes),
        report.deltas
    );
}

/// 8 repos of 250 turns each: a notes file a paragraph is appended to, and a state file
/// rewritten with new numbers, packed; then a cap of half what the refs reach.
fn retention() {
    let store = MemoryStore::new();
    store.insert_file("HEAD", "ref: refs/heads/main\n");
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    for repo in 0..8 {
        let key = format!("refs/namespaces/agent-{repo}/refs/heads/main");
        let mut head = None;
        let mut notes = String::new();
        for turn in 0..250i64 {
            notes.push_str(&format!(
                "## Turn {turn}\n\nAgent {repo} learnt something on turn {turn}, written down in a paragraph.\n\n"
            ));
            let state = format!(
                "{{\"turn\": {turn}, \"seed\": {}}}\n",
                (turn * 7919 + repo * 104_729) % 1_000_003
            )
            .repeat(40);
            let changes = vec![Change::put("notes.md", notes.clone()), Change::put("state.json", state)];
            let request = commit::Request::new(head, changes, signature(1_700_000_000 + turn * 60 + repo), "turn");
            let out = drive::run(
                &mut commit::Commit::new(&cache, request).expect("valid"),
                &mut cache,
                &store,
            )
            .expect("commit");
            store.put_many(&out.objects).expect("memory");
            head = Some(out.id);
        }
        store
            .cas_ref(&CasRef {
                key,
                expected: None,
                new: head,
            })
            .expect("memory");
    }
    // The clock moves a second between steps, as it would between runs.
    let at = |step: i64| {
        let now = 1_800_000_000_000 + step * 1000;
        store.set_time_ms(now);
        now
    };
    let compact_at = |now: i64, drop_unreachable: bool, cache: &mut ObjectCache| {
        let mut options = CompactOptions::new(now);
        options.grace_ms = 0;
        options.drop_unreachable = drop_unreachable;
        drive::run(&mut Compact::new(cache, options).expect("valid"), cache, &store).expect("compacts")
    };
    compact_at(at(0), false, &mut cache);
    at(1);
    let (keys, bytes) = footprint(&store);
    let (whole, _) = run_cold(&store, Cap::new(&cache, CapRequest::new(u64::MAX)).expect("valid"));
    let max = whole.reachable_bytes / 2;
    let started = Instant::now();
    let (capped, cost) = run_cold(&store, Cap::new(&cache, CapRequest::new(max)).expect("valid"));
    let seconds = started.elapsed().as_secs_f64();
    let kept: Vec<usize> = capped.pruned.iter().map(|p| p.kept).collect();
    for step in 2..4 {
        compact_at(at(step), true, &mut cache);
    }
    let mut options = CollectOptions::new(at(4));
    options.grace_ms = 0;
    drive::run(&mut Collect::new(&cache, options).expect("valid"), &mut cache, &store).expect("collects");
    let (keys_after, bytes_after) = footprint(&store);
    if std::env::var_os("BENCH_KEYS").is_some() {
        for l in store.list("objects/").expect("memory") {
            eprintln!("{} {}", l.key, l.size);
        }
    }
    let (after, _) = run_cold(&store, Cap::new(&cache, CapRequest::new(u64::MAX)).expect("valid"));
    GitRepo::from_store(&store).fsck();
    println!("\nsize cap: 8 repos x 250 turns (a notes file appended to, a state file rewritten), packed");
    println!(
        "  before:  {keys:>5} keys {:>12} stored, {:>12} reached by the refs",
        kib(bytes),
        kib(whole.reachable_bytes)
    );
    println!(
        "  cap {}: kept {kept:?} commits per repo; estimated {}; {:.2} s, {}",
        kib(max),
        kib(capped.estimated_bytes),
        seconds,
        cost.show()
    );
    println!(
        "  after compact --drop-unreachable x2 and gc: {keys_after:>5} keys {:>12} stored, {:>12} reached ({:+.1}% from the estimate); git fsck --strict passes",
        kib(bytes_after),
        kib(after.reachable_bytes),
        (after.reachable_bytes as f64 / capped.estimated_bytes as f64 - 1.0) * 100.0
    );
}

fn main() {
    if std::env::args().any(|a| a == "--retention") {
        retention();
        return;
    }
    // The throughput run measures memory, so it runs in a process of its own.
    if std::env::args().any(|a| a == "--throughput") {
        throughput();
        return;
    }
    let (store, head) = notes_history();
    storage(
        "1,000 edits of a 100 KB Markdown file (a paragraph appended each)",
        &store,
        head,
        "notes.md",
        &["notes.md"],
    );
    let (store, head) = agent_history();
    storage(
        "agent memory, 1,000 turns",
        &store,
        head,
        "memory/profile.md",
        &["memory/profile.md", "memory/notes", "memory/notes/500.md"],
    );
    commits_section();
    retention();
    let me = std::env::current_exe().expect("the benchmark's own path");
    let mut child = std::process::Command::new(me);
    child.arg("--throughput");
    if let Some(window) = window() {
        child.args(["--window", &window.to_string()]);
    }
    let status = child.status().expect("runs");
    assert!(status.success(), "the throughput run failed");
    if let Ok(wasm) = std::fs::read("js/pkg/snapgit_wasm_bg.wasm") {
        let gz = std::process::Command::new("gzip")
            .arg("-9c")
            .arg("js/pkg/snapgit_wasm_bg.wasm")
            .output();
        if let Ok(gz) = gz {
            println!(
                "\nthe npm package's .wasm (js/pkg, as last built): {:.1} KB, {:.1} KB gzipped",
                wasm.len() as f64 / 1000.0,
                gz.stdout.len() as f64 / 1000.0
            );
        }
    }
}
