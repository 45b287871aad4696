//! The component engine (the default) and the native engine give the same output: the
//! same commands, run under each against its own copy of one store, print the same JSON
//! and text, and fail with the same JSON errors.

use std::path::Path;

use crate::support::{Run, Work, run, run_with_stdin, snapgit};

/// Copy the folder `from` (files, folders, modes) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder");
    for entry in std::fs::read_dir(from).expect("a readable folder") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

/// Two copies of one work folder (files and store), one per engine.
struct Pair {
    native: tempfile::TempDir,
    component: tempfile::TempDir,
}

impl Pair {
    fn of(work: &Work) -> Self {
        let pair = Pair {
            native: tempfile::tempdir().expect("a temp folder"),
            component: tempfile::tempdir().expect("a temp folder"),
        };
        copy_dir(work.path(), pair.native.path());
        copy_dir(work.path(), pair.component.path());
        pair
    }

    /// Run `args` under both engines; both runs.
    fn both(&self, args: &[&str]) -> (Run, Run) {
        self.both_with_stdin(args, None)
    }

    /// Run `args` under both engines, with `stdin` as their input if given; both runs.
    fn both_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> (Run, Run) {
        let with = |engine: &str, dir: &Path| {
            let mut all = vec!["--engine", engine];
            all.extend_from_slice(args);
            match stdin {
                None => run(dir, &all),
                Some(input) => run_with_stdin(snapgit(dir), &all, input),
            }
        };
        (
            with("native", self.native.path()),
            with("component", self.component.path()),
        )
    }

    /// Run `args` under both engines: they must print the same (but for the folder
    /// each works in), and end the same way.
    #[track_caller]
    fn same(&self, args: &[&str]) -> String {
        self.same_with_stdin(args, None)
    }

    /// [`Pair::same`], with `stdin` as the input of both runs if given.
    #[track_caller]
    fn same_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let (native, component) = self.both_with_stdin(args, stdin);
        let (native_dir, component_dir) = (
            self.native.path().display().to_string(),
            self.component.path().display().to_string(),
        );
        let native_out = String::from_utf8_lossy(&native.stdout).replace(&native_dir, "<work>");
        let component_out = String::from_utf8_lossy(&component.stdout).replace(&component_dir, "<work>");
        assert_eq!(
            (native.code, &native_out),
            (component.code, &component_out),
            "`snapgit {}` differs between engines\nnative: {}\ncomponent: {}",
            args.join(" "),
            native.stderr,
            component.stderr
        );
        if native.code != 0 {
            assert_eq!(
                native.stderr.replace(&native_dir, "<work>"),
                component.stderr.replace(&component_dir, "<work>"),
                "`snapgit {}` fails differently between engines",
                args.join(" ")
            );
        }
        native_out
    }

    /// [`Pair::same`] with `--json`, and the command must succeed.
    #[track_caller]
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.same(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("`snapgit {}`: not JSON ({err}): {text}", all.join(" ")))
    }

    /// Write the same file in both work folders.
    fn write(&self, path: &str, content: &str) {
        for dir in [self.native.path(), self.component.path()] {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().expect("a parent")).expect("folders");
            std::fs::write(full, content).expect("write");
        }
    }

    /// Write the same bytes in both work folders.
    fn write_bytes(&self, path: &str, content: &[u8]) {
        for dir in [self.native.path(), self.component.path()] {
            std::fs::write(dir.join(path), content).expect("write");
        }
    }

    fn remove(&self, path: &str) {
        for dir in [self.native.path(), self.component.path()] {
            std::fs::remove_file(dir.join(path)).expect("remove");
        }
    }
}

#[test]
fn every_command_prints_the_same_under_both_engines() {
    let work = Work::init();
    work.write("memory/profile.md", "# Profile\nname: Ada\n");
    work.write("memory/state.json", "{\"turn\": 1}\n");
    work.write("notes.md", "one\ntwo\nthree\n");
    work.run(&["commit", "memory", "notes.md", "-m", "turn 1"]).ok();
    let pair = Pair::of(&work);

    // Writes: commits of every kind, a restore, branches, repos.
    pair.write("memory/profile.md", "# Profile\nname: Ada\nprefers: tea\n");
    pair.write("memory/journal.md", "met Bob\n");
    pair.remove("memory/state.json");
    pair.json(&["commit", "memory", "--sync", "-m", "turn 2"]);
    pair.json(&["commit", "--rename", "notes.md", "archive/notes.md", "-m", "move"]);
    pair.json(&["commit", "--delete", "memory/journal.md", "-m", "forget"]);
    pair.json(&["commit", "memory", "-m", "unchanged"]);
    pair.json(&["commit", "--allow-empty", "-m", "empty"]);
    pair.json(&["restore", "main~3", "memory/profile.md"]);
    pair.json(&["restore", "main~4", "-m", "back to turn 1"]);
    pair.json(&["branch", "create", "experiment", "--from", "main~2"]);
    pair.json(&["-b", "experiment", "commit", "notes.md", "-m", "try"]);
    pair.json(&["repo", "create", "agent-2", "memory", "-m", "second agent"]);

    // Reads, as JSON and as text.
    for args in [
        &["log"][..],
        &["log", "--oneline"],
        &["log", "--path", "memory/profile.md"],
        &["log", "--path", "memory/profile.md", "--numstat"],
        &[
            "log",
            "--path",
            "memory/profile.md",
            "--numstat",
            "--oneline",
            "-n",
            "2",
        ],
        &["log", "experiment", "--all-parents", "-n", "3"],
        &["show", "-p"],
        &["show", "main~2"],
        &["cat", "memory/profile.md"],
        &["cat", "--ref", "experiment", "notes.md"],
        &["cat", "-r"],
        &["cat", "-r", "memory", "--ref", "main~2"],
        &["ls"],
        &["ls", "-r", "--ref", "main~5"],
        &["ls", "memory"],
        &[
            "diff",
            "main~5",
            "main",
            "--stat",
            "--numstat",
            "--name-status",
            "--patch",
        ],
        &["diff", "main~5", "main", "--path", "memory"],
        &["diff", "experiment"],
        &["branch", "list"],
        &["repo", "list"],
        &["--repo", "agent-2", "ls", "-r"],
        &["status"],
    ] {
        pair.json(args);
        pair.same(args);
    }
    let page = pair.json(&["log", "-n", "2"]);
    let next = page["next"].as_str().expect("more pages");
    pair.json(&["log", "-n", "2", "--cursor", next]);

    // Retention and collection.
    pair.json(&["branch", "delete", "experiment"]);
    pair.json(&["repo", "delete", "agent-2"]);
    pair.json(&["prune", "--keep-last", "3"]);
    pair.json(&["status"]);
    pair.json(&["gc", "--grace", "0s"]);
    pair.json(&["status"]);
    pair.json(&["log"]);

    // Refusals: the same code, exit status and message.
    for args in [
        &["cat", "missing.md"][..],
        &["log", "nope"],
        &["log", "main~40"],
        &["--repo", "ghost", "log"],
        &["diff", "0000000000000000000000000000000000000000"],
        &["commit", "--delete", "missing.md", "-m", "x"],
        &["commit", "--rename", "memory", "memory/profile.md/x", "-m", "x"],
        &["branch", "create", "main"],
        &["branch", "delete", "nope"],
        &["repo", "create", "default"],
        &["restore", "main", "nothing/here"],
        &["ls", "memory/profile.md/x"],
        &[
            "commit",
            "--expect-head",
            "0000000000000000000000000000000000000000",
            "--allow-empty",
            "-m",
            "x",
        ],
    ] {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (native, _) = pair.both(&all);
        assert_ne!(native.code, 0, "`snapgit {}` should fail", args.join(" "));
        pair.same(&all);
        pair.same(args);
    }

    // Both stores end up the same, and git finds them sound.
    crate::support::git(&pair.component.path().join(".snapgit"), &["fsck", "--strict"]);
    let refs = |dir: &Path| {
        crate::support::git(
            &dir.join(".snapgit"),
            &["for-each-ref", "--format=%(refname) %(objectname)"],
        )
    };
    assert_eq!(refs(pair.native.path()), refs(pair.component.path()));
}

#[test]
fn the_engine_is_chosen_by_flag_or_environment() {
    let work = Work::init();
    let by_env = crate::support::snapgit(work.path())
        .env("SNAPGIT_ENGINE", "native")
        .args(["log", "--oneline"])
        .output()
        .expect("snapgit runs");
    assert!(by_env.status.success());
    let bad = crate::support::snapgit(work.path())
        .env("SNAPGIT_ENGINE", "jit")
        .args(["log"])
        .output()
        .expect("snapgit runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("jit"));
    // Without a cache folder the component is compiled in the process, and works.
    let uncached = work.run(&["--cache-dir", "", "--engine", "component", "log", "--oneline"]);
    assert_eq!(uncached.ok(), String::from_utf8_lossy(&by_env.stdout));

    // The component leaves its compiled code in the cache folder; native core does not
    // load it at all.
    let files = |dir: &Path| -> usize {
        let mut count = 0;
        let mut stack = vec![dir.to_owned()];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    count += 1;
                }
            }
        }
        count
    };
    let cache = tempfile::tempdir().expect("a temp folder");
    let cache_dir = cache.path().to_str().expect("a UTF-8 temp path");
    work.run(&["--cache-dir", cache_dir, "--engine", "native", "log"]).ok();
    assert_eq!(files(cache.path()), 0);
    work.run(&["--cache-dir", cache_dir, "log"]).ok();
    assert!(files(cache.path()) > 0, "the component engine cached nothing");
}

/// The engines agree on limits: the deepest path the validator accepts (2,040 folders,
/// 4,085 bytes: the component's wasm stack once overflowed on it) and a file of exactly
/// the size limit (100 MiB: once over the component's memory limit) commit under both
/// with the same result; a file one byte larger is refused by both, exit 8.
#[test]
fn the_engines_agree_on_the_deepest_path_and_the_largest_file() {
    let work = Work::init();
    let pair = Pair::of(&work);
    let deep = format!("{}notes.md", "a/".repeat(2040));
    assert!(deep.len() < 4096);
    let out = pair.same_with_stdin(&["--json", "commit", "--stdin", &deep, "-m", "deep"], Some(b"deep\n"));
    let out: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(out["created"], true, "{out}");
    let read = pair.same(&["cat", &deep]);
    assert_eq!(read, "deep\n");

    let limit = 100usize << 20;
    // Binary (a NUL in every block), so that no line counts are made of it.
    let big: Vec<u8> = (0..limit)
        .map(|i| if i % 4096 == 0 { 0 } else { (i % 251) as u8 })
        .collect();
    pair.write_bytes("big.bin", &big);
    let out = pair.json(&["commit", "big.bin", "-m", "at the limit"]);
    assert_eq!(out["created"], true, "{out}");
    let mut over = big;
    over.push(1);
    pair.write_bytes("big.bin", &over);
    let (native, component) = pair.both(&["commit", "big.bin", "-m", "over the limit"]);
    assert_eq!(
        (native.code, component.code),
        (8, 8),
        "{}\n{}",
        native.stderr,
        component.stderr
    );
    assert_eq!(native.stderr, component.stderr);
}
