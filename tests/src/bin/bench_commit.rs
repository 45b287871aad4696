//! `bench-commit`: what a commit costs in snapgit-core, next to real `git` plumbing.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench-commit
//! ```
//!
//! For synthetic repositories of 1,000, 10,000 and 100,000 small Markdown and JSON files
//! laid out three folders deep (`d3/d1/d4/file-42.md`), it measures:
//!
//! - the root commit that builds each repository, for context;
//! - chains of commits changing 1 and 10 files, each on top of the last, with the
//!   [`ObjectCache`] kept from commit to commit (warm): time per commit (median and mean),
//!   objects and bytes written, `Get` rounds;
//! - the same commits from a fresh cache against a [`MemoryStore`] holding the
//!   repository (cold): `Get` rounds and objects read;
//! - the first commits of each chain made again by `git` plumbing in a bare repository
//!   holding the same objects (`hash-object -w`, `update-index --index-info`,
//!   `write-tree`, `commit-tree -p`), as a time ratio, with every commit id compared.
//!
//! snapgit's time covers [`Commit::new`], the driver run and storing the objects in a
//! [`MemoryStore`]; git's covers its four process runs, writing loose objects to disk.
//! Timings only print. The structural expectations do not: a warm commit must need no
//! `Get` round and write exactly the new objects (for one changed file three folders
//! deep: 1 blob, 4 trees, 1 commit), and git must compute the same commit ids; any
//! deviation is listed at the end and makes the run exit with status 1.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{Change, Commit, Output, Request},
    drive::{self, MemoryStore, ObjectStore},
};
use snapgit_tests::{GitRepo, oid, signature};

/// Repository sizes, in files.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Files changed per commit.
const CHANGED: [usize; 2] = [1, 10];
/// Commits per warm chain, each on top of the previous one.
const WARM_COMMITS: usize = 50;
/// Commits git makes of each chain: every one spawns four processes.
const GIT_COMMITS: usize = 15;
/// Folders above every file.
const DEPTH: usize = 3;
/// Files per leaf folder the layout aims at.
const FILES_PER_FOLDER: usize = 20;
/// The time of the root commit; commit `n` of a chain is made `n` seconds later.
const EPOCH: i64 = 1_700_000_000;

fn main() -> ExitCode {
    let mut problems = Vec::new();
    let mut builds = Vec::new();
    let mut rows = Vec::new();
    let started = Instant::now();
    for files in SIZES {
        eprintln!("{} files: building", thousands(files));
        let mut repo = Repo::build(files);
        eprintln!("{} files: snapgit commits", thousands(files));
        let chains: Vec<Chain> = CHANGED
            .iter()
            .map(|&changed| Chain::measure(&mut repo, changed, &mut problems))
            .collect();
        eprintln!("{} files: git commits", thousands(files));
        let git = GitSide::new(&repo);
        for chain in chains {
            let (git_times, ids_equal) = git.replay(&repo, &chain, &mut problems);
            rows.push(Row::new(&repo, &chain, &git_times, ids_equal));
        }
        builds.push(repo.summary);
    }

    print_builds(&builds);
    println!();
    print_rows(&rows);
    println!();
    println!("whole run: {}", duration(started.elapsed()));
    if problems.is_empty() {
        println!(
            "checks: every warm commit needed 0 Get rounds and wrote exactly its new objects; git agreed on every id"
        );
        ExitCode::SUCCESS
    } else {
        println!("checks FAILED:");
        for problem in &problems {
            println!("  - {problem}");
        }
        ExitCode::FAILURE
    }
}

/// A small xorshift generator: deterministic content without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Spread small seeds over the state; xorshift must not start at zero.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

const WORDS: [&str; 16] = [
    "agent", "memory", "user", "prefers", "tabs", "deadline", "friday", "project", "review", "tests", "release",
    "notes", "budget", "latency", "cache", "summary",
];

/// Where the files of a repository of `files` files live: `fanout` folders per level.
struct Layout {
    files: usize,
    fanout: usize,
}

impl Layout {
    fn new(files: usize) -> Self {
        let leaves = (files / FILES_PER_FOLDER).max(1) as f64;
        let fanout = (leaves.powf(1.0 / DEPTH as f64).round() as usize).max(2);
        Layout { files, fanout }
    }

    fn leaf_folders(&self) -> usize {
        self.fanout.pow(DEPTH as u32)
    }

    /// The folders above file `index`, outermost first.
    fn folders(&self, index: usize) -> [usize; DEPTH] {
        let mut leaf = index % self.leaf_folders();
        let mut out = [0; DEPTH];
        for slot in out.iter_mut().rev() {
            *slot = leaf % self.fanout;
            leaf /= self.fanout;
        }
        out
    }

    fn path(&self, index: usize) -> String {
        let [a, b, c] = self.folders(index);
        let ext = if index.is_multiple_of(3) { "json" } else { "md" };
        format!("d{a}/d{b}/d{c}/file-{index}.{ext}")
    }

    /// Small text in the style of agent memory; `version` 0 is the initial content.
    fn content(&self, index: usize, version: u64) -> Vec<u8> {
        let mut rng = Rng::new((index as u64) << 20 ^ version);
        let mut words = |n: usize| -> String {
            (0..n)
                .map(|_| WORDS[rng.below(WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut text = String::new();
        if index.is_multiple_of(3) {
            text.push_str(&format!(
                "{{\n  \"id\": {index},\n  \"version\": {version},\n  \"facts\": [\n"
            ));
            for line in 0..4 {
                let comma = if line < 3 { "," } else { "" };
                text.push_str(&format!("    \"{}\"{comma}\n", words(6)));
            }
            text.push_str("  ]\n}\n");
        } else {
            text.push_str(&format!("# Note {index}\n\nVersion {version}. {}.\n\n", words(8)));
            for _ in 0..5 {
                text.push_str(&format!("- {}\n", words(5)));
            }
        }
        text.into_bytes()
    }
}

/// What building a repository cost.
struct BuildSummary {
    files: usize,
    folders: usize,
    time: Duration,
    objects: usize,
    bytes: u64,
}

/// A repository built by snapgit: its store, its root commit and the cache that built it.
struct Repo {
    layout: Layout,
    store: MemoryStore,
    cache: ObjectCache,
    root: Output,
    summary: BuildSummary,
}

impl Repo {
    fn build(files: usize) -> Self {
        let layout = Layout::new(files);
        let changes: Vec<Change> = (0..files)
            .map(|i| Change::put(layout.path(i), layout.content(i, 0)))
            .collect();
        let store = MemoryStore::new();
        let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
        let started = Instant::now();
        let root = commit(&mut cache, &store, request(None, changes, 0));
        let time = started.elapsed();
        let folders = 1 + (1..=DEPTH).map(|level| layout.fanout.pow(level as u32)).sum::<usize>();
        let summary = BuildSummary {
            files,
            folders,
            time,
            objects: root.objects.len(),
            bytes: loose_bytes(&root),
        };
        Repo {
            layout,
            store,
            cache,
            root,
            summary,
        }
    }
}

/// One commit of a chain: the files it writes, as (path, content).
struct Step {
    files: Vec<(String, Vec<u8>)>,
    /// The folders those files live in, for the count of trees it must write.
    folders: BTreeSet<Vec<usize>>,
}

/// The steps of a chain changing `changed` distinct files per commit.
fn plan(layout: &Layout, changed: usize) -> Vec<Step> {
    let mut rng = Rng::new(changed as u64);
    (0..WARM_COMMITS)
        .map(|n| {
            let mut picked = BTreeSet::new();
            while picked.len() < changed.min(layout.files) {
                picked.insert(rng.below(layout.files));
            }
            let mut folders = BTreeSet::new();
            let files = picked
                .into_iter()
                .map(|index| {
                    let path = layout.folders(index);
                    for depth in 0..=DEPTH {
                        folders.insert(path[..depth].to_vec());
                    }
                    (layout.path(index), layout.content(index, 1 + n as u64))
                })
                .collect();
            Step { files, folders }
        })
        .collect()
}

/// A chain of warm commits and the cold measurements, as snapgit made them.
struct Chain {
    changed: usize,
    steps: Vec<Step>,
    ids: Vec<ObjectId>,
    times: Vec<Duration>,
    objects: Vec<usize>,
    bytes: Vec<u64>,
    warm_rounds: u32,
    cold_rounds: u32,
    cold_reads: u64,
    cold_time: Duration,
}

impl Chain {
    fn measure(repo: &mut Repo, changed: usize, problems: &mut Vec<String>) -> Self {
        let steps = plan(&repo.layout, changed);
        let label = format!("{} files, {changed} changed", thousands(repo.layout.files));

        // Cold: the first commit of the chain from a fresh cache, everything read from the
        // store, as a new process would make it. Its objects are not stored: the warm
        // chain makes the same commit again.
        let mut cold = ObjectCache::new(gix_hash::Kind::Sha1);
        let before = repo.store.counts();
        let started = Instant::now();
        let mut op = Commit::new(&cold, request(Some(repo.root.id), changes(&steps[0]), 1)).expect("a valid request");
        let cold_out = drive::run(&mut op, &mut cold, &repo.store).expect("the cold commit succeeds");
        let cold_time = started.elapsed();
        let cold_rounds = op.rounds();
        let cold_reads = repo.store.counts().gets - before.gets;

        // Warm: the cache kept since the repository was built, as a long-lived process has it.
        let mut chain = Chain {
            changed,
            steps: Vec::new(),
            ids: Vec::with_capacity(steps.len()),
            times: Vec::with_capacity(steps.len()),
            objects: Vec::with_capacity(steps.len()),
            bytes: Vec::with_capacity(steps.len()),
            warm_rounds: 0,
            cold_rounds,
            cold_reads,
            cold_time,
        };
        let mut head = repo.root.id;
        for (n, step) in steps.iter().enumerate() {
            let req = request(Some(head), changes(step), n as i64 + 1);
            let started = Instant::now();
            let mut op = Commit::new(&repo.cache, req).expect("a valid request");
            let out = drive::run(&mut op, &mut repo.cache, &repo.store).expect("the warm commit succeeds");
            repo.store
                .put_many(&out.objects)
                .expect("the memory store accepts every put");
            chain.times.push(started.elapsed());
            chain.warm_rounds = chain.warm_rounds.max(op.rounds());
            if op.rounds() != 0 {
                problems.push(format!("{label}: warm commit {n} needed {} Get rounds", op.rounds()));
            }
            // Every changed file is a new blob, every folder above one a new tree, plus the commit.
            let expected = step.files.len() + step.folders.len() + 1;
            if out.objects.len() != expected {
                problems.push(format!(
                    "{label}: commit {n} wrote {} objects, expected {expected}",
                    out.objects.len()
                ));
            }
            if n == 0 && (out.id != cold_out.id || out.objects != cold_out.objects) {
                problems.push(format!("{label}: the cold and warm runs of commit 0 differ"));
            }
            chain.ids.push(out.id);
            chain.objects.push(out.objects.len());
            chain.bytes.push(loose_bytes(&out));
            head = out.id;
        }
        chain.steps = steps;
        chain
    }
}

/// A bare git repository holding the same objects, with an index per chain.
struct GitSide {
    repo: GitRepo,
    scratch: tempfile::TempDir,
}

impl GitSide {
    fn new(repo: &Repo) -> Self {
        let git = GitRepo::new();
        git.write_store(&repo.store);
        let scratch = tempfile::tempdir().expect("a temporary folder can be created");
        GitSide { repo: git, scratch }
    }

    /// Make the first [`GIT_COMMITS`] commits of `chain` with git: their times, and how
    /// many got the same id as snapgit's.
    fn replay(&self, repo: &Repo, chain: &Chain, problems: &mut Vec<String>) -> (Vec<Duration>, usize) {
        let label = format!("{} files, {} changed", thousands(repo.layout.files), chain.changed);
        let index = self.scratch.path().join(format!("index-{}", chain.changed));
        let tree = repo.root.tree.to_string();
        self.run(&["read-tree", &tree], b"", &index, 0);
        let mut head = repo.root.id;
        let mut times = Vec::new();
        let mut equal = 0;
        for (n, step) in chain.steps.iter().enumerate().take(GIT_COMMITS) {
            let started = Instant::now();
            let blobs = self.write_blobs(step, &index);
            let info: String = step
                .files
                .iter()
                .zip(&blobs)
                .map(|((path, _), blob)| format!("100644 {blob}\t{path}\n"))
                .collect();
            self.run(&["update-index", "--index-info"], info.as_bytes(), &index, 0);
            let tree = self.run(&["write-tree"], b"", &index, 0);
            let parent = head.to_string();
            let message = format!("{}\n", message(n as i64 + 1));
            let id = oid(&self.run(
                &["commit-tree", tree.trim(), "-p", &parent],
                message.as_bytes(),
                &index,
                n as i64 + 1,
            ));
            times.push(started.elapsed());
            if id == chain.ids[n] {
                equal += 1;
            } else {
                problems.push(format!(
                    "{label}: commit {n} is {} in git but {} in snapgit",
                    id, chain.ids[n]
                ));
            }
            head = id;
        }
        (times, equal)
    }

    /// `git hash-object -w` for every file of `step`: from stdin for one file, from
    /// files on disk for several.
    fn write_blobs(&self, step: &Step, index: &std::path::Path) -> Vec<ObjectId> {
        let out = if let [(_, data)] = step.files.as_slice() {
            self.run(&["hash-object", "-w", "--stdin"], data, index, 0)
        } else {
            let mut paths = String::new();
            for (i, (_, data)) in step.files.iter().enumerate() {
                let file: PathBuf = self.scratch.path().join(format!("blob-{i}"));
                std::fs::write(&file, data).expect("a scratch file can be written");
                paths.push_str(&format!("{}\n", file.display()));
            }
            self.run(&["hash-object", "-w", "--stdin-paths"], paths.as_bytes(), index, 0)
        };
        out.lines().map(oid).collect()
    }

    /// Run git with `index` as its index file and the clock at commit `n` of a chain.
    fn run(&self, args: &[&str], input: &[u8], index: &std::path::Path, n: i64) -> String {
        let date = format!("{} +0130", EPOCH + n);
        let env = [
            ("GIT_INDEX_FILE", index.display().to_string()),
            ("GIT_AUTHOR_DATE", date.clone()),
            ("GIT_COMMITTER_DATE", date),
        ];
        let out = self.repo.git_output(args, input, &env);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One line of the results table.
struct Row {
    files: usize,
    changed: usize,
    median: Duration,
    mean: Duration,
    objects: f64,
    bytes: f64,
    cold_rounds: u32,
    cold_reads: u64,
    cold_time: Duration,
    warm_rounds: u32,
    git_median: Duration,
    git_commits: usize,
    ids_equal: usize,
}

impl Row {
    fn new(repo: &Repo, chain: &Chain, git_times: &[Duration], ids_equal: usize) -> Self {
        let count = chain.objects.len() as f64;
        Row {
            files: repo.layout.files,
            changed: chain.changed,
            median: median(&chain.times),
            mean: chain.times.iter().sum::<Duration>() / chain.times.len() as u32,
            objects: chain.objects.iter().sum::<usize>() as f64 / count,
            bytes: chain.bytes.iter().sum::<u64>() as f64 / count,
            cold_rounds: chain.cold_rounds,
            cold_reads: chain.cold_reads,
            cold_time: chain.cold_time,
            warm_rounds: chain.warm_rounds,
            git_median: median(git_times),
            git_commits: git_times.len(),
            ids_equal,
        }
    }
}

fn print_builds(builds: &[BuildSummary]) {
    println!("Initial build: one root commit of every file (snapgit, into a MemoryStore)");
    println!(
        "{:>9}  {:>8}  {:>9}  {:>9}  {:>10}",
        "files", "folders", "time", "objects", "bytes"
    );
    for b in builds {
        println!(
            "{:>9}  {:>8}  {:>9}  {:>9}  {:>10}",
            thousands(b.files),
            thousands(b.folders),
            duration(b.time),
            thousands(b.objects),
            thousands(b.bytes as usize)
        );
    }
}

fn print_rows(rows: &[Row]) {
    println!(
        "Commits on top of the last one: snapgit warm (cache kept; median and mean of {WARM_COMMITS}), \
         cold (fresh cache, first commit), git plumbing (median of {GIT_COMMITS})"
    );
    println!(
        "{:>9} {:>7} | {:>9} {:>9} {:>7} {:>7} | {:>6} {:>6} {:>9} {:>5} | {:>9} {:>8} {:>9}",
        "files",
        "changed",
        "median",
        "mean",
        "objects",
        "bytes",
        "cold",
        "cold",
        "cold",
        "warm",
        "git",
        "git /",
        "ids equal"
    );
    println!(
        "{:>9} {:>7} | {:>9} {:>9} {:>7} {:>7} | {:>6} {:>6} {:>9} {:>5} | {:>9} {:>8} {:>9}",
        "", "", "", "", "/commit", "/commit", "rounds", "reads", "time", "rounds", "median", "snapgit", "to git"
    );
    for r in rows {
        println!(
            "{:>9} {:>7} | {:>9} {:>9} {:>7.1} {:>7.0} | {:>6} {:>6} {:>9} {:>5} | {:>9} {:>7.0}x {:>9}",
            thousands(r.files),
            r.changed,
            duration(r.median),
            duration(r.mean),
            r.objects,
            r.bytes,
            r.cold_rounds,
            r.cold_reads,
            duration(r.cold_time),
            r.warm_rounds,
            duration(r.git_median),
            r.git_median.as_secs_f64() / r.median.as_secs_f64(),
            format!("{}/{}", r.ids_equal, r.git_commits),
        );
    }
}

fn request(parent: Option<ObjectId>, changes: Vec<Change>, n: i64) -> Request {
    Request::new(parent, changes, signature(EPOCH + n), message(n))
}

fn message(n: i64) -> String {
    format!("memory update {n}")
}

fn changes(step: &Step) -> Vec<Change> {
    step.files
        .iter()
        .map(|(path, data)| Change::put(path.as_str(), data.clone()))
        .collect()
}

/// Build a commit, store its objects and return it.
fn commit(cache: &mut ObjectCache, store: &MemoryStore, request: Request) -> Output {
    let mut op = Commit::new(cache, request).expect("a valid request");
    let out = drive::run(&mut op, cache, store).expect("the commit succeeds");
    store
        .put_many(&out.objects)
        .expect("the memory store accepts every put");
    out
}

fn loose_bytes(out: &Output) -> u64 {
    out.objects.iter().map(|o| o.loose.len() as u64).sum()
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
