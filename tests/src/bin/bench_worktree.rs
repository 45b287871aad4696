//! Work-tree checkpoints: the `snapgit` command against git with its index, on one
//! folder, in one run.
//!
//! ```text
//! cargo build --release -p snapgit-host --bin snapgit
//! cargo run --release -p snapgit-tests --bin bench-worktree -- [--snapgit PATH] [--files 10000,100000] [--runs 7]
//! ```
//!
//! For each folder size (100 files per folder, two levels deep, about 200 bytes each),
//! the same folder is snapshotted by both tools, each keeping its own cache (git's
//! index, snapgit's stat cache) and its own history (git's repository; a store for each
//! engine of snapgit, so that no engine finds a snapshot the other already made), and
//! each row is timed in turns, git then snapgit then the other way round, the median of
//! `--runs` printed with the ratio:
//!
//! - snapshot with nothing changed: `git add -A; git commit` (which finds nothing) vs
//!   `snapgit commit DIR --sync`;
//! - snapshot after 1 and after 100 changed files (the same edits for both);
//! - diff against the folder after 100 changed files: `git diff --numstat HEAD` vs
//!   `snapgit diff HEAD --worktree DIR --numstat`;
//! - rollback of the whole tree after 100 changes: `git add -A; git commit; git
//!   checkout BASE -- .` (an undo commit, then the files back) vs `snapgit rollback BASE`.
//!
//! Both engines of `snapgit` are timed: the component under wasmtime (the default) and
//! native core.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

struct Options {
    snapgit: PathBuf,
    sizes: Vec<usize>,
    runs: usize,
}

fn options() -> Options {
    let mut options = Options {
        snapgit: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/snapgit"),
        sizes: vec![10_000, 100_000],
        runs: 7,
    };
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        options.snapgit = PathBuf::from(dir).join("release/snapgit");
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--snapgit" => options.snapgit = value.into(),
            "--files" => options.sizes = value.split(',').map(|n| n.parse().expect("a count")).collect(),
            "--runs" => options.runs = value.parse().expect("a count"),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        options.snapgit.exists(),
        "no snapgit at {} (build it: cargo build --release -p snapgit-host --bin snapgit; or pass --snapgit)",
        options.snapgit.display()
    );
    options
}

/// One folder, a git repository of it kept outside it, and for each engine a snapgit
/// store and stat cache of its own: each tool (and engine) snapshots only its own
/// history, so none finds the others' commits already made.
struct Bench {
    dir: tempfile::TempDir,
    snapgit: PathBuf,
    files: usize,
    edits: usize,
}

impl Bench {
    fn folder(&self) -> PathBuf {
        self.dir.path().join("folder")
    }

    fn file(&self, i: usize) -> PathBuf {
        self.folder()
            .join(format!("d{}", i / 1000))
            .join(format!("e{}", (i / 100) % 10))
            .join(format!("f{i}.txt"))
    }

    fn git(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        command
            .arg("--git-dir")
            .arg(self.dir.path().join("git"))
            .arg("--work-tree")
            .arg(self.folder())
            .args(["-c", "user.name=Bench", "-c", "user.email=bench@example.com"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        command
    }

    fn snapgit(&self, engine: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.snapgit);
        command
            .current_dir(self.dir.path())
            .args(["--engine", engine, "--quiet"])
            .args(args)
            .env("SNAPGIT_STORE", self.dir.path().join(format!("store-{engine}")))
            .env("SNAPGIT_AUTHOR", "Bench <bench@example.com>")
            .env("SNAPGIT_STAT_CACHE_DIR", self.dir.path().join(format!("stat-{engine}")))
            .env("SNAPGIT_CACHE_DIR", self.dir.path().join("code"));
        command
    }

    fn new(snapgit: &Path, files: usize) -> Self {
        let bench = Bench {
            dir: tempfile::tempdir().expect("a temp folder"),
            snapgit: snapgit.to_owned(),
            files,
            edits: 0,
        };
        for i in 0..files {
            let path = bench.file(i);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
            std::fs::write(&path, content(i, 0)).expect("a file");
        }
        ok(bench.git(&["init", "-q"]));
        ok(bench.git(&["add", "-A"]));
        ok(bench.git(&["commit", "-qm", "base"]));
        // Both engines compile and cache what they need once, outside the timings.
        for engine in ENGINES {
            ok(bench.snapgit(engine, &["init"]));
            ok(bench.snapgit(engine, &["status"]));
            ok(bench.snapgit(engine, &["commit", "--root", "folder", ".", "--sync", "-m", "base"]));
        }
        // Files written in the second a cache is written are hashed again by the next
        // run (git's racily clean rule, both tools): start from a settled folder.
        std::thread::sleep(Duration::from_millis(1100));
        ok(bench.git(&["status", "-s"]));
        bench
    }

    /// Change `count` files, each to a content neither tool has seen.
    fn edit(&mut self, count: usize) -> Vec<(PathBuf, String)> {
        self.edits += 1;
        let step = (self.files / count.max(1)).max(1);
        let edits: Vec<(PathBuf, String)> = (0..count)
            .map(|k| {
                let i = (k * step + self.edits) % self.files;
                (self.file(i), content(i, self.edits))
            })
            .collect();
        apply(&edits);
        edits
    }

    /// The head of `engine`'s store.
    fn head(&self, engine: &str) -> String {
        let out = self
            .snapgit(engine, &["log", "-n", "1", "--oneline"])
            .output()
            .expect("snapgit runs");
        String::from_utf8_lossy(&out.stdout)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

fn apply(edits: &[(PathBuf, String)]) {
    for (path, text) in edits {
        std::fs::write(path, text).expect("an edit");
    }
}

fn content(i: usize, version: usize) -> String {
    format!("file {i}, version {version}\n{}\n", "agent memory line ".repeat(10))
}

fn ok(mut command: Command) {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run commands one after the other; the time of them all.
fn time(commands: Vec<Command>, check: bool) -> Duration {
    let start = Instant::now();
    for mut command in commands {
        let out = command.output().expect("runs");
        if check {
            assert!(
                out.status.success(),
                "{command:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

const ENGINES: [&str; 2] = ["component", "native"];

/// `engine`'s entry of a list with one per engine, in [`ENGINES`]' order.
fn head_of<'a>(heads: &'a [String], engine: &str) -> &'a str {
    let at = ENGINES.iter().position(|e| *e == engine).expect("an engine");
    &heads[at]
}

/// One row: per run, `prepare` then git and each engine in turns (the order flips each
/// run), each timed; medians and ratios printed.
fn row(
    bench: &mut Bench,
    name: &str,
    runs: usize,
    mut prepare: impl FnMut(&mut Bench) -> Vec<(PathBuf, String)>,
    git: impl Fn(&Bench) -> (Vec<Command>, bool),
    snapgit: impl Fn(&Bench, &str) -> Command,
) {
    let mut git_times = Vec::new();
    let mut ours: Vec<Vec<Duration>> = vec![Vec::new(); ENGINES.len()];
    for run in 0..runs {
        // The same change for each tool: made, then made again before the next tool.
        let edits = prepare(bench);
        let mut order: Vec<Option<usize>> = std::iter::once(None).chain((0..ENGINES.len()).map(Some)).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for (n, who) in order.into_iter().enumerate() {
            if n > 0 {
                apply(&edits);
            }
            match who {
                None => {
                    let (commands, check) = git(bench);
                    git_times.push(time(commands, check));
                }
                Some(e) => ours[e].push(time(vec![snapgit(bench, ENGINES[e])], true)),
            }
        }
    }
    let git = median(git_times);
    let cells: Vec<String> = ours
        .into_iter()
        .map(|times| {
            let t = median(times);
            format!("{:>9} {:>6.2}", ms(t), t.as_secs_f64() / git.as_secs_f64())
        })
        .collect();
    println!("{name:<40} {:>9}  {}", ms(git), cells.join("  "));
}

fn main() {
    let options = options();
    println!("snapgit: {}", options.snapgit.display());
    println!(
        "median of {} runs, ms; ratio = snapgit / git (below 1: snapgit faster)",
        options.runs
    );
    for &files in &options.sizes {
        let mut bench = Bench::new(&options.snapgit, files);
        println!();
        println!(
            "{:<40} {:>9}  {:>9} {:>6}  {:>9} {:>6}",
            format!("{files} files"),
            "git",
            "component",
            "ratio",
            "native",
            "ratio"
        );
        let runs = options.runs;
        let commit_git = |b: &Bench| {
            let commands = vec![b.git(&["add", "-A"]), b.git(&["commit", "-qm", "checkpoint"])];
            (commands, false)
        };
        let commit_ours = |b: &Bench, engine: &str| {
            b.snapgit(
                engine,
                &["commit", "--root", "folder", ".", "--sync", "-m", "checkpoint"],
            )
        };
        row(
            &mut bench,
            "snapshot, nothing changed",
            runs,
            |_| Vec::new(),
            commit_git,
            commit_ours,
        );
        row(
            &mut bench,
            "snapshot after 1 changed file",
            runs,
            |b| b.edit(1),
            commit_git,
            commit_ours,
        );
        row(
            &mut bench,
            "snapshot after 100 changed files",
            runs,
            |b| b.edit(100),
            commit_git,
            commit_ours,
        );

        // Diff: 100 files changed since the last snapshot of both tools.
        bench.edit(100);
        let heads: Vec<String> = ENGINES.iter().map(|engine| bench.head(engine)).collect();
        row(
            &mut bench,
            "diff against the folder (100 changed)",
            runs,
            |_| Vec::new(),
            |b| (vec![b.git(&["diff", "--numstat", "HEAD"])], true),
            |b, engine| {
                b.snapgit(
                    engine,
                    &["diff", head_of(&heads, engine), "--worktree", "folder", "--numstat"],
                )
            },
        );
        // Settle: both tools snapshot the edits, so each rollback starts from a checkpoint.
        ok(bench.git(&["add", "-A"]));
        ok(bench.git(&["commit", "-qm", "settle"]));
        for engine in ENGINES {
            ok(bench.snapgit(engine, &["commit", "--root", "folder", ".", "--sync", "-m", "settle"]));
        }
        std::thread::sleep(Duration::from_millis(1100));
        let base_git = {
            let out = bench.git(&["rev-parse", "HEAD"]).output().expect("git runs");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let bases: Vec<String> = ENGINES.iter().map(|engine| bench.head(engine)).collect();
        row(
            &mut bench,
            "rollback of the whole tree (100 changed)",
            runs,
            |b| b.edit(100),
            |b| {
                let commands = vec![
                    b.git(&["add", "-A"]),
                    b.git(&["commit", "-qm", "undo point"]),
                    b.git(&["checkout", &base_git, "--", "."]),
                ];
                (commands, true)
            },
            |b, engine| b.snapgit(engine, &["rollback", head_of(&bases, engine), "--worktree", "folder"]),
        );
    }
}
