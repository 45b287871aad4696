//! `bench_native_commit`: the commit workload of the npm package's benchmark
//! (`js/bench/bench.mjs`), run by native core, so the two can be compared in one run.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench_native_commit -- [--files N] [--warmup W] [--commits K] [--json]
//! ```
//!
//! A repo of `N` small Markdown files three folders deep is created in a [`MemoryStore`]
//! with one cache; then, for 1 and 10 changed files, `W + K` commits to its branch follow,
//! each on top of the last with the cache kept (warm), through [`repo::Commit`] and the
//! blocking driver; the last `K` are timed (the first `W` warm up the JS engine's
//! compiled code on the other side, and are made here too so that both end alike). The files, their contents and the times are the ones the JS
//! benchmark uses, so both must end at the same commit ids; the ids are printed for it
//! to compare. Time per commit covers `Commit::new` and the driver run.

use std::{process::ExitCode, time::Instant};

use snapgit_core::{
    ObjectCache,
    commit::{Change, Signature},
    drive::{self, MemoryStore},
    repo::{self, RepoOp},
};

/// The first commit's time; commit `n` is made `n` seconds later.
const EPOCH: i64 = 1_700_000_000;

fn signature(n: i64) -> Signature {
    Signature::new("Agent", "agent@example.com", EPOCH + n)
}

/// File `i`'s path: three folders deep, about 20 files per folder for 1,000 files.
fn path(i: usize) -> String {
    format!("d{}/d{}/d{}/file-{i}.md", i % 7, (i / 7) % 5, (i / 35) % 3)
}

/// The file commit `n` changes as its `k`-th change.
fn changed(n: usize, k: usize, files: usize) -> usize {
    (n * 37 + k * 101) % files
}

struct Run {
    changed: usize,
    times_us: Vec<f64>,
    head: String,
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let files = arg(&args, "--files", 1000).max(1);
    let warmup = arg(&args, "--warmup", 200);
    let commits = arg(&args, "--commits", 200).max(1);
    let json = args.iter().any(|a| a == "--json");

    let mut runs = Vec::new();
    for changes in [1, 10] {
        let store = MemoryStore::new();
        let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
        let initial = (0..files)
            .map(|i| Change::put(path(i), format!("# file {i}\n")))
            .collect();
        let mut create = match RepoOp::create_repo(&cache, "bench", "main", initial, signature(0), "initial") {
            Ok(op) => op,
            Err(err) => {
                eprintln!("create: {err}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(err) = drive::run(&mut create, &mut cache, &store) {
            eprintln!("create: {err}");
            return ExitCode::FAILURE;
        }
        let mut times_us = Vec::with_capacity(commits);
        let mut head = String::new();
        for n in 1..=warmup + commits {
            let changes = (0..changes)
                .map(|k| {
                    let i = changed(n, k, files);
                    Change::put(path(i), format!("# file {i}\nturn {n}\n"))
                })
                .collect();
            let request = repo::CommitRequest::new("bench", "main", changes, signature(n as i64), format!("turn {n}"));
            let start = Instant::now();
            let out = repo::Commit::new(&cache, request).and_then(|mut op| drive::run(&mut op, &mut cache, &store));
            if n > warmup {
                times_us.push(start.elapsed().as_secs_f64() * 1e6);
            }
            match out {
                Ok(out) => head = out.commit.to_string(),
                Err(err) => {
                    eprintln!("commit {n}: {err}");
                    return ExitCode::FAILURE;
                }
            }
        }
        runs.push(Run {
            changed: changes,
            times_us,
            head,
        });
    }

    if json {
        let rows: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    r#"{{"changed":{},"median_us":{:.1},"mean_us":{:.1},"head":"{}"}}"#,
                    r.changed,
                    median(&r.times_us),
                    mean(&r.times_us),
                    r.head
                )
            })
            .collect();
        println!(
            r#"{{"files":{files},"warmup":{warmup},"commits":{commits},"runs":[{}]}}"#,
            rows.join(",")
        );
    } else {
        println!("{files} files, {commits} warm commits each after {warmup} untimed");
        for r in &runs {
            println!(
                "{:>2} changed: median {:>8.1} us, mean {:>8.1} us, head {}",
                r.changed,
                median(&r.times_us),
                mean(&r.times_us),
                r.head
            );
        }
    }
    ExitCode::SUCCESS
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}
