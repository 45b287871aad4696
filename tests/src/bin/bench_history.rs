//! `bench-history`: what history and diff queries cost in snapgit-core, next to `git`.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench-history
//! ```
//!
//! On a repository of 1,000 files (`d3/s4/f345.md`, three levels) with 1,000 commits
//! that each change one file, it measures, from a cold cache against a [`MemoryStore`]
//! holding loose objects:
//!
//! - the path-filtered history of one file and of one folder over every commit, and the
//!   unfiltered history for context: objects read, `Get` rounds, time;
//! - the diff of the first and the last commit with line counts, and with a patch;
//!
//! the file history again with the cache the first run filled (no reads: the walk alone),
//! and the same queries through `git log --format=%H -- <path>` and `git diff --numstat`
//! (or `git diff`) in a bare repository holding the same loose objects, as time ratios.
//! Results are compared with git's and any difference makes the run exit with status 1.
//! snapgit's times include verifying every object read (inflate, hash, parse); git's
//! include starting a process.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{Change, Request as CommitRequest},
    diff::tree::{Diff, Request as DiffRequest},
    drive::{self, MemoryStore},
    history::{Log, Request as LogRequest},
};
use snapgit_tests::{GitRepo, oid, signature};

const FILES: usize = 1_000;
const COMMITS: usize = 1_000;
const RUNS: usize = 5;
const EPOCH: i64 = 1_700_000_000;

fn path(i: usize) -> String {
    format!("d{}/s{}/f{i:03}.md", i / 100, (i / 10) % 10)
}

fn content(i: usize, version: usize) -> String {
    let mut text = format!("# File {i}\n\n");
    for line in 0..20 {
        if line == version % 20 {
            text.push_str(&format!("line {line} edited in version {version}\n"));
        } else {
            text.push_str(&format!("line {line} of file {i}\n"));
        }
    }
    text
}

/// xorshift: the file each commit changes.
fn pick(state: &mut u64) -> usize {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % FILES as u64) as usize
}

struct Row {
    query: &'static str,
    objects: u64,
    rounds: u64,
    ours: Duration,
    git: Option<Duration>,
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> ExitCode {
    let mut problems = Vec::new();
    let store = MemoryStore::new();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let build = Instant::now();
    let changes = (0..FILES).map(|i| Change::put(path(i), content(i, 0))).collect();
    let root = snapgit_tests::commit(
        &mut cache,
        &store,
        CommitRequest::new(None, changes, signature(EPOCH), "root"),
    )
    .expect("root commit");
    let mut head = root.id;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut touched = vec![0usize; FILES];
    for n in 1..=COMMITS {
        let i = pick(&mut state);
        touched[i] += 1;
        let request = CommitRequest::new(
            Some(head),
            vec![Change::put(path(i), content(i, touched[i]))],
            signature(EPOCH + n as i64),
            format!("change {}", path(i)),
        );
        head = snapgit_tests::commit(&mut cache, &store, request).expect("commit").id;
    }
    let busiest = (0..FILES).max_by_key(|&i| touched[i]).unwrap_or(0);
    let file = path(busiest);
    let folder = format!("d{}", busiest / 100);
    eprintln!(
        "built {} commits, {} objects in {:.2?}; {file} changed {} times",
        COMMITS + 1,
        store.len(),
        build.elapsed(),
        touched[busiest]
    );

    let git = GitRepo::new();
    git.write_store(&store);
    git.set_branch("main", &head);

    let mut rows = Vec::new();
    for (query, filter) in [
        ("history of one file", Some(file.as_str())),
        ("history of one folder", Some(folder.as_str())),
        ("history, no path", None),
    ] {
        let mut times = Vec::new();
        let mut result = Vec::new();
        let (mut objects, mut rounds) = (0, 0);
        for _ in 0..RUNS {
            let mut cold = ObjectCache::new(gix_hash::Kind::Sha1);
            let before = store.counts();
            let started = Instant::now();
            let mut request = LogRequest::new(head, usize::MAX);
            request.path = filter.map(Into::into);
            let mut op = Log::new(request).expect("valid request");
            let page = drive::run(&mut op, &mut cold, &store).expect("log");
            times.push(started.elapsed());
            let after = store.counts();
            objects = after.gets - before.gets;
            rounds = after.get_rounds - before.get_rounds;
            result = page.commits.iter().map(|c| c.id).collect::<Vec<ObjectId>>();
        }
        let head_hex = head.to_string();
        let mut args = vec!["log", "--format=%H", head_hex.as_str()];
        if let Some(filter) = filter {
            args.extend(["--", filter]);
        }
        let mut git_times = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let out = git.git(&args);
            git_times.push(started.elapsed());
            expected = out.lines().map(oid).collect();
        }
        if result != expected {
            problems.push(format!(
                "{query}: {} commits, git lists {}",
                result.len(),
                expected.len()
            ));
        }
        eprintln!("{query}: {} commits shown", result.len());
        rows.push(Row {
            query,
            objects,
            rounds,
            ours: median(times),
            git: Some(median(git_times)),
        });
    }

    // The same file history again with the cache the first run filled: the walk alone.
    let mut warm = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut times = Vec::new();
    let (mut objects, mut rounds) = (0, 0);
    for _ in 0..=RUNS {
        let before = store.counts();
        let started = Instant::now();
        let mut op = Log::new(LogRequest::new(head, usize::MAX).with_path(file.as_str())).expect("valid request");
        drive::run(&mut op, &mut warm, &store).expect("log");
        times.push(started.elapsed());
        let after = store.counts();
        objects = after.gets - before.gets;
        rounds = after.get_rounds - before.get_rounds;
    }
    times.remove(0);
    rows.insert(
        1,
        Row {
            query: "history of one file, warm cache",
            objects,
            rounds,
            ours: median(times),
            git: None,
        },
    );

    for (query, patch) in [
        ("diff first..last, line counts", false),
        ("diff first..last, patch", true),
    ] {
        let mut times = Vec::new();
        let (mut objects, mut rounds) = (0, 0);
        let mut numstat = Vec::new();
        let mut text = Vec::new();
        for _ in 0..RUNS {
            let mut cold = ObjectCache::new(gix_hash::Kind::Sha1);
            let before = store.counts();
            let started = Instant::now();
            let mut request = DiffRequest::new(Some(root.id), head);
            request.patch = patch;
            let mut op = Diff::new(request).expect("valid request");
            let out = drive::run(&mut op, &mut cold, &store).expect("diff");
            times.push(started.elapsed());
            let after = store.counts();
            objects = after.gets - before.gets;
            rounds = after.get_rounds - before.get_rounds;
            numstat = out
                .files
                .iter()
                .map(|f| {
                    let lines = f.lines.unwrap_or_default();
                    format!("{}\t{}\t{}", lines.added, lines.removed, f.path)
                })
                .collect::<Vec<String>>();
            text = out.patch.map(Vec::from).unwrap_or_default();
        }
        let (first, last) = (root.id.to_string(), head.to_string());
        let args: Vec<&str> = if patch {
            vec!["diff", "--abbrev=7", &first, &last]
        } else {
            vec!["diff", "--numstat", &first, &last]
        };
        let mut git_times = Vec::new();
        let mut expected = String::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            expected = git.git(&args);
            git_times.push(started.elapsed());
        }
        let same = if patch {
            text == expected.as_bytes()
        } else {
            numstat == expected.lines().collect::<Vec<_>>()
        };
        if !same {
            problems.push(format!("{query}: our output differs from git's"));
        }
        eprintln!("{query}: {} files changed", numstat.len());
        rows.push(Row {
            query,
            objects,
            rounds,
            ours: median(times),
            git: Some(median(git_times)),
        });
    }

    println!(
        "\nrepository: {FILES} files three folders deep, {COMMITS} single-file commits; \
         cold cache unless said, median of {RUNS} runs\n"
    );
    println!(
        "| {:<31} | {:>12} | {:>10} | {:>11} | {:>11} | {:>10} |",
        "query", "objects read", "Get rounds", "snapgit", "git", "git/snapgit"
    );
    println!(
        "|{:-<33}|{:->14}|{:->12}|{:->13}|{:->13}|{:->12}|",
        "", "", "", "", "", ""
    );
    for row in &rows {
        let git = row.git.map_or("-".into(), |g| format!("{:.2?}", g));
        let ratio = row.git.map_or("-".into(), |g| {
            format!("{:.2}x", g.as_secs_f64() / row.ours.as_secs_f64())
        });
        println!(
            "| {:<31} | {:>12} | {:>10} | {:>11} | {:>11} | {:>10} |",
            row.query,
            row.objects,
            row.rounds,
            format!("{:.2?}", row.ours),
            git,
            ratio
        );
    }
    if problems.is_empty() {
        println!("\nevery result equals git's");
        ExitCode::SUCCESS
    } else {
        println!("\nproblems:");
        for problem in &problems {
            println!("- {problem}");
        }
        ExitCode::FAILURE
    }
}
