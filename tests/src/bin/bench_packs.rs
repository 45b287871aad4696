//! Benchmark: reading a store git has packed, against the same store loose.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench-packs
//! ```
//!
//! `git fast-import` writes a history of 10,000 files three folders deep and 1,000
//! commits of 10 changed files each; `git gc` packs it, and `git unpack-objects` gives the
//! same objects loose. Each store is read cold (an empty cache) through an in-memory store
//! that counts requests: the rounds (batches a driver sends at once) and the requests
//! (one per object, listing or byte range, as object storage bills them). The latency
//! column is rounds x 20 ms, what a store 20 ms away costs. `git cat-file --batch` on the
//! packed folder reads the same file and every file, for scale.

use std::{path::Path, process::Command, time::Instant};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{self, Change},
    drive::{self, MemoryStore},
    read,
};
use snapgit_tests::{
    GitRepo,
    fast_import::{COMMITS, FILES, path, stream},
    oid, signature,
};

const RTT_MS: u64 = 20;

struct Row {
    rounds: u64,
    requests: u64,
}

fn measure<O: snapgit_core::Operation>(store: &MemoryStore, mut op: O) -> Row
where
    O::Error: From<snapgit_core::object::Error> + std::fmt::Debug,
{
    let before = store.counts();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    drive::run(&mut op, &mut cache, store).expect("the read succeeds");
    let after = store.counts();
    Row {
        rounds: after.get_rounds - before.get_rounds + after.other - before.other,
        requests: after.gets - before.gets + after.other - before.other + after.put_rounds - before.put_rounds,
    }
}

fn commit_one(store: &MemoryStore, head: ObjectId) -> Row {
    let before = store.counts();
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let request = commit::Request::new(
        Some(head),
        vec![Change::put(path(4321), "a new turn\n")],
        signature(1_800_000_000),
        "one file",
    );
    let out = drive::run(
        &mut commit::Commit::new(&cache, request).expect("valid"),
        &mut cache,
        store,
    )
    .expect("the commit builds");
    drive::ObjectStore::put_many(store, &out.objects).expect("stored");
    let after = store.counts();
    Row {
        rounds: after.get_rounds - before.get_rounds + after.put_rounds - before.put_rounds,
        requests: after.gets - before.gets + after.puts - before.puts,
    }
}

fn git_cat(dir: &Path, input: &str) -> f64 {
    let start = Instant::now();
    let mut child = Command::new("git")
        .args(["--git-dir"])
        .arg(dir)
        .args(["cat-file", "--batch"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("git runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("input");
    child.wait().expect("git ends");
    start.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    let started = Instant::now();
    let packed = GitRepo::new();
    packed.git_with_input(&["fast-import", "--quiet"], &stream());
    packed.git(&["gc", "--quiet"]);
    let loose = GitRepo::new();
    let pack = std::fs::read_dir(packed.path().join("objects/pack"))
        .expect("packs")
        .map(|e| e.expect("an entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .expect("a pack");
    loose.git_with_input(&["unpack-objects", "-q"], &std::fs::read(&pack).expect("the pack"));
    let head = oid(&packed.git(&["rev-parse", "refs/heads/main"]));
    let pack_bytes = std::fs::metadata(&pack).map(|m| m.len()).unwrap_or(0);
    println!(
        "history: {FILES} files, {COMMITS} commits ({} objects, pack {:.1} MB), made in {:.1} s",
        packed
            .git(&["count-objects", "-v"])
            .lines()
            .find(|l| l.starts_with("in-pack"))
            .unwrap_or("?"),
        pack_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let stores = [("loose", loose.to_full_store()), ("packed", packed.to_full_store())];
    let file = path(4321);
    println!(
        "{:<34} {:>8} {:>10} {:>14}",
        "cold read, store", "rounds", "requests", "at 20 ms/round"
    );
    for (name, store) in &stores {
        let rows = [
            (
                "read one file three folders deep",
                measure(store, read::ReadFile::new(head, file.as_str()).expect("valid")),
            ),
            (
                "read all 10,000 files",
                measure(store, read::ReadFiles::new(head, "").expect("valid")),
            ),
            ("one-file commit on top", commit_one(store, head)),
        ];
        for (what, row) in rows {
            println!(
                "{:<34} {:>8} {:>10} {:>11} ms",
                format!("{what}, {name}"),
                row.rounds,
                row.requests,
                row.rounds * RTT_MS
            );
        }
    }
    let listing = packed.git(&["ls-tree", "-r", "--format=%(objectname)", "refs/heads/main"]);
    let one = packed.git(&["rev-parse", &format!("refs/heads/main:{file}")]);
    println!(
        "git cat-file --batch on the packed folder: one file {:.1} ms, all files {:.1} ms (whole process)",
        git_cat(packed.path(), &one),
        git_cat(packed.path(), &listing)
    );
}
