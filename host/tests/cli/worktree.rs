//! Work-tree checkpoints with real git as the oracle: a snapshot of a folder is the tree
//! `git add -A` writes, with and without a warm stat cache; `diff --worktree` is `git
//! diff --numstat <commit>`; a rollback leaves the folder as the commit's tree (as `git
//! archive` extracts it) and its undo point brings the folder back exactly; hostile
//! commits are refused with nothing written.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use crate::support::{Run, Work, git, snapgit};

fn engines() -> Vec<&'static str> {
    if cfg!(feature = "component") {
        vec!["native", "component"]
    } else {
        vec!["native"]
    }
}

/// A store in `.snapgit`, a folder in `folder`, a git repository of the same folder
/// kept outside it, and a stat cache folder.
struct Checkout {
    work: Work,
    engine: &'static str,
}

impl Checkout {
    fn new(engine: &'static str) -> Self {
        let work = Work::init();
        std::fs::create_dir_all(work.path().join("folder")).unwrap();
        git_in(&work, &["init", "-q"]);
        Checkout { work, engine }
    }

    fn folder(&self) -> PathBuf {
        self.work.path().join("folder")
    }

    /// `snapgit` with this engine and the stat cache in `stat` (or none when `cache` is false).
    fn snapgit(&self, args: &[&str], cache: bool) -> Run {
        let mut command = snapgit(self.work.path());
        let dir = if cache {
            self.work.path().join("stat").display().to_string()
        } else {
            String::new()
        };
        command
            .env("SNAPGIT_STAT_CACHE_DIR", dir)
            .args(["--engine", self.engine]);
        Run::from(command.args(args).output().expect("snapgit runs"))
    }

    /// Snapshot the folder, with more arguments; the report.
    fn snapshot_with(&self, args: &[&str], cache: bool) -> serde_json::Value {
        let mut all = vec![
            "--json",
            "commit",
            "--root",
            "folder",
            ".",
            "--sync",
            "-m",
            "checkpoint",
        ];
        all.extend_from_slice(args);
        self.snapgit(&all, cache).json()
    }

    /// Snapshot the folder; its tree id.
    fn snapshot(&self, cache: bool) -> String {
        self.snapshot_with(&[], cache)["tree"].as_str().unwrap().to_owned()
    }

    fn head(&self) -> String {
        self.work
            .git(&["rev-parse", "refs/namespaces/default/refs/heads/main"])
            .trim()
            .to_owned()
    }

    fn write(&self, path: &str, content: &str) {
        self.work.write(&format!("folder/{path}"), content);
    }

    /// `diff <from> --worktree folder --name-status` with more arguments: its lines, sorted.
    fn name_status(&self, from: &str, args: &[&str]) -> Vec<String> {
        let mut all = vec!["diff", from, "--worktree", "folder", "--name-status"];
        all.extend_from_slice(args);
        sorted(&self.snapgit(&all, true).ok())
    }

    /// A snapshot of the folder (with the stat cache) and a git commit of it: the
    /// snapshot's commit id.
    fn checkpoint_beside_git(&self) -> String {
        self.snapshot(true);
        git_in(&self.work, &["add", "-A"]);
        git_in(
            &self.work,
            &["-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x"],
        );
        self.head()
    }

    /// What `git add -A` makes of the folder: the tree id.
    fn git_tree(&self) -> String {
        git_in(&self.work, &["add", "-A"]);
        git_in(&self.work, &["write-tree"]).trim().to_owned()
    }
}

/// git with its repository in `<work>/git` and the folder as its work tree.
fn git_in(work: &Work, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("--git-dir")
        .arg(work.path().join("git"))
        .arg("--work-tree")
        .arg(work.path().join("folder"))
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every file, symlink and executable bit of a folder (git's own folder left out).
fn contents(dir: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(name, ("link".into(), target.display().to_string().into_bytes()));
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                let kind = if exec { "exec" } else { "file" };
                out.insert(name, (kind.into(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// The files of `commit` in the store, as `git archive` extracts them.
fn archived(work: &Work, commit: &str) -> BTreeMap<String, (String, Vec<u8>)> {
    let dir = work.path().join(format!("archive-{commit}"));
    std::fs::create_dir_all(&dir).unwrap();
    let tar = Command::new("git")
        .arg("--git-dir")
        .arg(work.store())
        .args(["archive", "--format=tar", commit])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let mut untar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(untar.stdin.as_mut().unwrap(), &tar.stdout).unwrap();
    assert!(untar.wait().unwrap().success());
    contents(&dir)
}

fn populate(c: &Checkout) {
    c.write("notes/a.md", "a\nb\n");
    c.write("notes/deep/b.md", "b\n");
    c.write("top.md", "top\n");
    c.write("run.sh", "#!/bin/sh\necho hi\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(c.folder().join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("top.md", c.folder().join("link")).unwrap();
}

/// Edits within the same second as the snapshot before them: a file rewritten, one
/// grown, one deleted, one added, a mode flipped, a symlink retargeted.
fn edit(c: &Checkout) {
    use std::os::unix::fs::PermissionsExt;
    c.write("top.md", "TOP\n");
    c.write("notes/a.md", "a\nb\nc\n");
    std::fs::remove_file(c.folder().join("notes/deep/b.md")).unwrap();
    c.write("new/c.md", "c\n");
    std::fs::set_permissions(c.folder().join("run.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(c.folder().join("link")).unwrap();
    std::os::unix::fs::symlink("notes/a.md", c.folder().join("link")).unwrap();
}

#[test]
fn snapshots_are_the_trees_git_writes_with_and_without_a_stat_cache() {
    for engine in engines() {
        for cache in [true, false] {
            let c = Checkout::new(engine);
            populate(&c);
            assert_eq!(
                c.snapshot(cache),
                c.git_tree(),
                "{engine}, cache {cache}: first snapshot"
            );
            edit(&c);
            assert_eq!(c.snapshot(cache), c.git_tree(), "{engine}, cache {cache}: after edits");
            // Nothing changed: no new commit.
            let head = c.head();
            assert_eq!(c.snapshot(cache), c.git_tree());
            assert_eq!(c.head(), head, "{engine}: an unchanged folder makes no commit");
            // Same size, same second: the content still counts.
            c.write("top.md", "tip\n");
            assert_eq!(
                c.snapshot(cache),
                c.git_tree(),
                "{engine}, cache {cache}: same-size edit"
            );
            git(&c.work.store(), &["fsck", "--strict"]);
        }
    }
}

#[test]
fn a_damaged_stat_cache_costs_only_speed() {
    let c = Checkout::new("native");
    populate(&c);
    c.snapshot(true);
    for entry in std::fs::read_dir(c.work.path().join("stat")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    edit(&c);
    assert_eq!(c.snapshot(true), c.git_tree());
}

#[test]
fn diff_against_the_folder_is_git_diff_of_the_commit() {
    for engine in engines() {
        let c = Checkout::new(engine);
        populate(&c);
        let checkpoint = c.checkpoint_beside_git();
        edit(&c);
        let ours = c
            .snapgit(&["diff", &checkpoint, "--worktree", "folder", "--numstat"], true)
            .ok();
        git_in(&c.work, &["add", "-A"]);
        let theirs = git_in(&c.work, &["diff", "--cached", "--numstat", "--no-renames", "HEAD"]);
        assert_eq!(sorted(&ours), sorted(&theirs), "{engine}");
        // A path of it.
        let ours = c
            .snapgit(
                &[
                    "diff",
                    &checkpoint,
                    "--worktree",
                    "folder",
                    "--numstat",
                    "--path",
                    "notes",
                ],
                true,
            )
            .ok();
        let theirs = git_in(
            &c.work,
            &["diff", "--cached", "--numstat", "--no-renames", "HEAD", "--", "notes"],
        );
        assert_eq!(sorted(&ours), sorted(&theirs), "{engine}: --path");
        // Name-status names the kinds.
        let ours = c
            .snapgit(&["diff", &checkpoint, "--worktree", "folder", "--name-status"], true)
            .ok();
        assert!(
            ours.contains("A\tnew/c.md") && ours.contains("D\tnotes/deep/b.md"),
            "{ours}"
        );
    }
}

#[test]
fn a_diff_takes_the_commit_s_trees_from_the_stat_cache_written_for_it() {
    for engine in engines() {
        let c = Checkout::new(engine);
        populate(&c);
        let checkpoint = c.checkpoint_beside_git();
        c.write("notes/a.md", "a\nB\n");
        // The trees on the edited file's path go from storage: only the stat cache has them.
        let trees: Vec<String> = ["", "notes"]
            .iter()
            .map(|path| {
                c.work
                    .git(&["rev-parse", &format!("{checkpoint}:{path}")])
                    .trim()
                    .to_owned()
            })
            .collect();
        for id in trees {
            std::fs::remove_file(c.work.store().join("objects").join(&id[..2]).join(&id[2..])).unwrap();
        }
        let ours = c
            .snapgit(&["diff", &checkpoint, "--worktree", "folder", "--numstat"], true)
            .ok();
        let theirs = git_in(&c.work, &["diff", "--numstat", "HEAD"]);
        assert_eq!(sorted(&ours), sorted(&theirs), "{engine}");
        assert_eq!(sorted(&ours), ["1\t1\tnotes/a.md"], "{engine}");
    }
}

fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn a_rollback_leaves_the_commit_and_its_undo_point_brings_the_folder_back() {
    for engine in engines() {
        let c = Checkout::new(engine);
        populate(&c);
        c.snapshot(true);
        let checkpoint = c.head();
        edit(&c);
        // Untracked by the snapshots: excluded, and never touched.
        c.write("cache/big.bin", "excluded\n");
        let before = contents(&c.folder());
        let out = c
            .snapgit(
                &[
                    "--json",
                    "rollback",
                    &checkpoint,
                    "--worktree",
                    "folder",
                    "--exclude",
                    "cache/",
                ],
                true,
            )
            .json();
        let mut after = contents(&c.folder());
        assert_eq!(
            after.remove("cache/big.bin").map(|(_, d)| d),
            Some(b"excluded\n".to_vec())
        );
        assert_eq!(
            after,
            archived(&c.work, &checkpoint),
            "{engine}: the folder is the commit"
        );
        // Undo: the checkpoint taken first.
        let undo = out["undo"].as_str().unwrap().to_owned();
        c.snapgit(
            &["rollback", &undo, "--worktree", "folder", "--exclude", "cache/"],
            true,
        )
        .ok();
        assert_eq!(
            contents(&c.folder()),
            before,
            "{engine}: the undo point restores the folder"
        );

        // One path only.
        c.snapgit(
            &[
                "rollback",
                &checkpoint,
                "notes",
                "--worktree",
                "folder",
                "--exclude",
                "cache/",
            ],
            true,
        )
        .ok();
        let now = contents(&c.folder());
        let commit = archived(&c.work, &checkpoint);
        for (path, content) in &now {
            if path.starts_with("notes/") {
                assert_eq!(commit.get(path), Some(content), "{engine}: {path}");
            } else {
                assert_eq!(before.get(path), Some(content), "{engine}: {path} is outside the path");
            }
        }
        assert!(now.contains_key("notes/deep/b.md"));
        git(&c.work.store(), &["fsck", "--strict"]);
    }
}

/// A commit in the store whose root tree is `listing` (`git mktree` input), made with
/// git plumbing.
fn hostile(work: &Work, listing: &str) -> String {
    let tree = with_stdin(work, &["mktree", "--missing"], listing);
    let commit = with_stdin(
        work,
        &[
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit-tree",
            tree.trim(),
            "-m",
            "hostile",
        ],
        "",
    );
    commit.trim().to_owned()
}

fn with_stdin(work: &Work, args: &[&str], input: &str) -> String {
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(work.store())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn hostile_commits_are_refused_and_nothing_is_written() {
    for engine in engines() {
        let c = Checkout::new(engine);
        populate(&c);
        c.snapshot(true);
        let store = c.work.store();
        let blob = |content: &str| {
            with_stdin(&c.work, &["hash-object", "-w", "--stdin"], content)
                .trim()
                .to_owned()
        };
        let link = blob("/tmp");
        let file = blob("owned\n");
        let below = with_stdin(&c.work, &["mktree"], &format!("100644 blob {file}\tpasswd\n"));
        let cases = [
            // A symlink, then a folder of another case holding a file: through the link.
            format!("120000 blob {link}\tA\n040000 tree {}\ta\n", below.trim()),
            // Two names that are one on a case-insensitive disk.
            format!("100644 blob {file}\tREADME\n100644 blob {file}\treadme\n"),
            // `.git` in other spellings.
            format!("100644 blob {file}\t.GIT\n"),
            format!("100644 blob {file}\tgit~1\n"),
        ];
        for listing in cases {
            let commit = hostile(&c.work, &listing);
            let before = contents(&c.folder());
            let head = c.head();
            let run = c.snapgit(&["rollback", &commit, "--worktree", "folder"], true);
            assert!(
                [4, 7].contains(&run.code),
                "{engine}: {listing:?} refused with exit 4 or 7, got {}: {}",
                run.code,
                run.stderr
            );
            assert_eq!(
                contents(&c.folder()),
                before,
                "{engine}: nothing written for {listing:?}"
            );
            assert_eq!(
                c.head(),
                head,
                "{engine}: no undo point committed for a refused rollback"
            );
        }
        git(&store, &["fsck"]);
    }
}

#[test]
fn bad_worktree_arguments_are_refused() {
    let c = Checkout::new("native");
    populate(&c);
    c.snapshot(true);
    let head = c.head();
    c.snapgit(&["rollback", &head, "--worktree", "missing"], true)
        .fails(2, "missing");
    c.snapgit(&["rollback", &head, "../x", "--worktree", "folder"], true)
        .fails(2, "..");
    c.snapgit(&["diff", &head, "--worktree", "folder", "--path", "../x"], true)
        .fails(2, "..");
    c.snapgit(&["diff", &head, "main", "--worktree", "folder"], true)
        .fails(2, "--worktree");
}

/// The paths a snapshot's report says it left out.
fn skipped(report: &serde_json::Value) -> Vec<&str> {
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect()
}

/// Why a snapshot's report says it skipped `path`.
fn reason(report: &serde_json::Value, path: &str) -> Option<String> {
    report["skipped"]
        .as_array()?
        .iter()
        .find(|s| s["path"] == path)
        .and_then(|s| s["reason"].as_str().map(str::to_owned))
}

#[test]
fn excludes_from_a_gitignore_and_the_checkpoint_defaults_leave_out_what_git_ignores() {
    let c = Checkout::new("native");
    populate(&c);
    c.write("node_modules/pkg/index.js", "module.exports = 1;\n");
    c.write(".env", "SECRET=1\n");
    c.write("logs/a.log", "log\n");
    c.write(".gitignore", "node_modules/\n.env\n*.log\n");
    let tree = c.git_tree();
    let snapshot = |args: &[&str]| c.snapshot_with(args, true);
    let out = snapshot(&["--exclude-from", "folder/.gitignore"]);
    assert_eq!(out["tree"].as_str(), Some(tree.as_str()));
    let skipped = skipped(&out);
    assert!(
        skipped.contains(&"node_modules") && skipped.contains(&".env"),
        "{skipped:?}"
    );
    // Each named by the file and line that leave it out.
    assert_eq!(
        reason(&out, "node_modules").as_deref(),
        Some("excluded by \"folder/.gitignore: node_modules/\"")
    );
    // The checkpoint defaults and one pattern: the same tree; a `.snapgitignore` is read.
    assert_eq!(
        snapshot(&["--checkpoint-excludes", "--exclude", "*.log"])["tree"].as_str(),
        Some(tree.as_str())
    );
    c.write(".snapgitignore", "node_modules/\n.env\n*.log\n");
    git_in(&c.work, &["add", "-A"]);
    let tree = git_in(&c.work, &["write-tree"]).trim().to_owned();
    let own = snapshot(&[]);
    assert_eq!(own["tree"].as_str(), Some(tree.as_str()));
    assert_eq!(
        reason(&own, ".env").as_deref(),
        Some("excluded by \".snapgitignore: .env\"")
    );
    // A rollback never touches what is left out.
    let head = c.head();
    std::fs::write(c.folder().join("top.md"), "edited\n").unwrap();
    c.snapgit(&["rollback", &head, "--worktree", "folder"], true).ok();
    assert!(c.folder().join("node_modules/pkg/index.js").exists());
    assert_eq!(std::fs::read_to_string(c.folder().join("top.md")).unwrap(), "top\n");
}

#[test]
fn every_gitignore_of_the_folder_is_read_as_git_reads_it() {
    for engine in engines() {
        let c = Checkout::new(engine);
        // Patterns anchored and not, negated, with a slash inside, in a folder whose name
        // has wildcard characters, and deeper files winning over shallower ones.
        for (path, text) in [
            (
                ".gitignore",
                "*.log\n!keep.log\n# a comment\n\n/top.txt\nbuild/\ntrailing.md   \n",
            ),
            ("sub/.gitignore", "dist/\n/local.txt\n!important.log\nnested/*.md\n"),
            ("sub/deeper/.gitignore", "*.tmp\n!/deeper.log\n"),
            ("we[ird]*/.gitignore", "x/\n"),
            ("a.log", "1"),
            ("keep.log", "1"),
            ("top.txt", "1"),
            ("trailing.md", "1"),
            ("sub/top.txt", "1"),
            ("sub/local.txt", "1"),
            ("sub/deeper/local.txt", "1"),
            ("sub/important.log", "1"),
            ("sub/deeper/important.log", "1"),
            ("sub/deeper/deeper.log", "1"),
            ("sub/deeper/a.tmp", "1"),
            ("sub/dist/x", "1"),
            ("other/dist/y", "1"),
            ("sub/nested/a.md", "1"),
            ("sub/nested/n/b.md", "1"),
            ("sub/deeper/nested/c.md", "1"),
            ("we[ird]*/x/z", "1"),
            ("we[ird]*/y", "1"),
            ("pkg/build/o", "1"),
            ("pkg/a/b.txt", "1"),
        ] {
            c.write(path, text);
        }
        let tree = c.git_tree();
        let out = c.snapshot_with(&["--gitignore"], true);
        assert_eq!(out["tree"].as_str(), Some(tree.as_str()), "{engine}: {out}");
        let skipped = skipped(&out);
        assert!(
            skipped.contains(&"sub/dist") && skipped.contains(&"we[ird]*/x"),
            "{skipped:?}"
        );
        // Each named by the file and line that leave it out.
        assert_eq!(
            reason(&out, "sub/dist").as_deref(),
            Some("excluded by \"sub/.gitignore: dist/\"")
        );
        // A diff of one folder reads the `.gitignore` files above it: an ignored file
        // that changes is not in it; a tracked one is.
        c.write("sub/deeper/a.tmp", "2");
        c.write("sub/deeper/local.txt", "2");
        let head = c.head();
        let diff = c.name_status(&head, &["--path", "sub/deeper", "--gitignore"]);
        assert_eq!(diff, ["M\tsub/deeper/local.txt"], "{engine}");
        // A rollback leaves what a `.gitignore` leaves out alone.
        c.write("sub/dist/x", "changed");
        c.snapgit(&["rollback", &head, "--worktree", "folder", "--gitignore"], true)
            .ok();
        assert_eq!(
            std::fs::read_to_string(c.folder().join("sub/dist/x")).unwrap(),
            "changed"
        );
        assert_eq!(
            std::fs::read_to_string(c.folder().join("sub/deeper/local.txt")).unwrap(),
            "1"
        );
        // Without the flag the `.gitignore` files are only files: everything is taken.
        let all = c.snapshot_with(&[], false);
        assert_ne!(all["tree"].as_str(), Some(tree.as_str()));
        assert!(all["skipped"].as_array().unwrap().is_empty(), "{all}");
    }
}

#[test]
fn a_diff_takes_what_excludes_leave_out_as_the_snapshot_keeps_it() {
    for engine in engines() {
        let c = Checkout::new(engine);
        for (path, text) in [
            ("a.txt", "1\n"),
            ("logs/x.log", "the same text\n"),
            ("notes/b.md", "b\n"),
            ("notes/c.md", "c\n"),
        ] {
            c.write(path, text);
        }
        c.snapshot(true);
        let checkpoint = c.head();
        // A tracked edit, and a new file with an excluded file's content (no rename from
        // it: the excluded file is not deleted).
        c.write("a.txt", "2\n");
        c.write("copy.txt", "the same text\n");
        let excludes = ["--exclude", "logs/", "--exclude", "notes/b.md"];
        let mut args = vec!["diff", &checkpoint, "--worktree", "folder", "--name-status"];
        args.extend(excludes);
        let diff = c.snapgit(&args, true).ok();
        assert_eq!(sorted(&diff), ["A\tcopy.txt", "M\ta.txt"], "{engine}");
        // The same as a snapshot with those excludes commits.
        let mut snapshot = vec!["commit", "--root", "folder", ".", "--sync", "-m", "next"];
        snapshot.extend(excludes);
        c.snapgit(&snapshot, true).ok();
        let next = c.head();
        let committed = c.snapgit(&["diff", &checkpoint, &next, "--name-status"], true).ok();
        assert_eq!(sorted(&committed), sorted(&diff), "{engine}");
        // Below an excluded folder, a path of it: nothing.
        c.write("logs/x.log", "changed\n");
        let mut args = vec!["diff", &next, "--worktree", "folder", "--name-status", "--path", "logs"];
        args.extend(excludes);
        assert_eq!(c.snapgit(&args, true).ok().trim(), "", "{engine}");
    }
}

#[test]
fn files_over_the_size_cap_are_left_out_and_listed_not_a_failed_snapshot() {
    for engine in engines() {
        let c = Checkout::new(engine);
        c.write("a.txt", "a\n");
        c.write("data/mid.bin", &"m".repeat(3000));
        // Over the default cap (the largest file a commit may write) without using the
        // disk: a sparse file, never read.
        let big = std::fs::File::create(c.folder().join("data/big.bin")).unwrap();
        big.set_len((100 << 20) + 1).unwrap();
        let out = c.snapshot_with(&[], true);
        assert_eq!(
            reason(&out, "data/big.bin").as_deref(),
            Some("larger than 104857600 bytes (104857601 bytes)"),
            "{engine}"
        );
        assert_eq!(skipped(&out), ["data/big.bin"], "{engine}");
        let first = c.head();
        assert_eq!(
            sorted(&c.work.git(&["ls-tree", "-r", "--name-only", &first])),
            ["a.txt", "data/mid.bin"],
            "{engine}"
        );
        // A smaller cap: the text report names what it left out and why; the branch keeps
        // mid.bin as it was, even edited.
        c.write("data/mid.bin", &"n".repeat(3000));
        c.write("a.txt", "b\n");
        let text = c
            .snapgit(
                &[
                    "commit",
                    "--root",
                    "folder",
                    ".",
                    "--sync",
                    "-m",
                    "capped",
                    "--max-file-size",
                    "2k",
                ],
                true,
            )
            .ok();
        assert!(
            text.contains(" skipped data/mid.bin: larger than 2048 bytes (3000 bytes)"),
            "{text}"
        );
        let second = c.head();
        assert_eq!(
            c.work.git(&["rev-parse", &format!("{first}:data/mid.bin")]),
            c.work.git(&["rev-parse", &format!("{second}:data/mid.bin")]),
            "{engine}"
        );
        // A diff with the same cap shows no change for it. A rollback that would write
        // over it is refused, nothing written; one of another path leaves it alone.
        let diff = c.name_status(&first, &["--max-file-size", "2k"]);
        assert_eq!(diff, ["M\ta.txt"], "{engine}");
        let json = c
            .snapgit(
                &[
                    "--json",
                    "diff",
                    &first,
                    "--worktree",
                    "folder",
                    "--max-file-size",
                    "2k",
                ],
                true,
            )
            .json();
        assert_eq!(
            reason(&json, "data/mid.bin").as_deref(),
            Some("larger than 2048 bytes (3000 bytes)")
        );
        let cap = ["--worktree", "folder", "--max-file-size", "2k"];
        let mut rollback = vec!["rollback", &first];
        rollback.extend(cap);
        c.snapgit(&rollback, true).fails(4, "data/mid.bin");
        assert_eq!(std::fs::read_to_string(c.folder().join("a.txt")).unwrap(), "b\n");
        rollback.insert(2, "a.txt");
        let text = c.snapgit(&rollback, true).ok();
        assert!(
            text.contains(" skipped data/mid.bin: larger than 2048 bytes (3000 bytes)"),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(c.folder().join("a.txt")).unwrap(), "a\n");
        assert_eq!(
            std::fs::read_to_string(c.folder().join("data/mid.bin")).unwrap(),
            "n".repeat(3000),
            "{engine}"
        );
        // A bad size is refused before anything is read.
        c.snapgit(
            &[
                "commit",
                "--root",
                "folder",
                ".",
                "--sync",
                "-m",
                "x",
                "--max-file-size",
                "lots",
            ],
            true,
        )
        .fails(2, "lots");
    }
}

#[test]
fn a_snapgitignore_in_a_subfolder_applies_below_it_as_a_gitignore_does() {
    let c = Checkout::new("native");
    for (path, text) in [
        ("a.txt", "a\n"),
        ("x.tmp", "top\n"),
        ("sub/.snapgitignore", "# scratch\n*.tmp\n!keep.tmp\n"),
        ("sub/x.tmp", "x\n"),
        ("sub/keep.tmp", "keep\n"),
        ("sub/deeper/y.tmp", "y\n"),
        ("sub/deeper/b.md", "b\n"),
    ] {
        c.write(path, text);
    }
    let out = c.snapshot_with(&[], true);
    assert_eq!(
        sorted(&c.work.git(&["ls-tree", "-r", "--name-only", &c.head()])),
        [
            "a.txt",
            "sub/.snapgitignore",
            "sub/deeper/b.md",
            "sub/keep.tmp",
            "x.tmp"
        ]
    );
    assert_eq!(
        reason(&out, "sub/deeper/y.tmp").as_deref(),
        Some("excluded by \"sub/.snapgitignore: *.tmp\"")
    );
    // A diff of a path below it reads it too: a new scratch file there is no change.
    c.write("sub/deeper/z.tmp", "z\n");
    c.write("sub/deeper/c.md", "c\n");
    let head = c.head();
    assert_eq!(c.name_status(&head, &["--path", "sub/deeper"]), ["A\tsub/deeper/c.md"]);
}

#[test]
fn a_commit_of_a_folder_without_sync_reads_the_same_ignore_files_as_a_snapshot() {
    let c = Checkout::new("native");
    for (path, text) in [
        ("a.txt", "a\n"),
        (".gitignore", "*.log\n"),
        ("x.log", "x\n"),
        ("sub/.gitignore", "*.tmp\n"),
        ("sub/y.tmp", "y\n"),
        ("sub/.snapgitignore", "*.md\n"),
        ("sub/z.md", "z\n"),
        ("sub/b.txt", "b\n"),
    ] {
        c.write(path, text);
    }
    let commit = |args: &[&str]| {
        let mut all = vec!["--json", "commit", "--root", "folder", "-m", "add"];
        all.extend_from_slice(args);
        c.snapgit(&all, true).json()
    };
    let files = |out: &serde_json::Value| -> Vec<String> {
        let mut paths: Vec<String> = out["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect();
        paths.sort();
        paths
    };
    // `--gitignore` counts without `--sync` too (it used to be ignored: x.log and
    // sub/y.tmp were committed).
    let out = commit(&[".", "--gitignore"]);
    assert_eq!(
        files(&out),
        [
            ".gitignore",
            "a.txt",
            "sub/.gitignore",
            "sub/.snapgitignore",
            "sub/b.txt"
        ]
    );
    assert_eq!(
        reason(&out, "sub/y.tmp").as_deref(),
        Some("excluded by \"sub/.gitignore: *.tmp\"")
    );
    // A folder or a file named below them reads the ignore files above it.
    c.write("sub/b.txt", "b2\n");
    c.write("sub/z.md", "z2\n");
    assert_eq!(files(&commit(&["sub"])), ["sub/b.txt", "sub/y.tmp"]);
    assert_eq!(skipped(&commit(&["sub/z.md", "--allow-empty"])), ["sub/z.md"]);
}
