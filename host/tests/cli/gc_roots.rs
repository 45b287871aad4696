//! `snapgit gc` on a store git has worked on: whatever git reaches — a detached HEAD,
//! reflogs, annotated tags and tags of tags, a ref to a blob, notes, a stash-like ref,
//! symbolic refs, packed refs — survives `gc --grace 0s`, checked by
//! `git rev-list --objects --all --reflog` and `git fsck --strict`, under each engine.
//! A store gc cannot account for is refused with exit 9 and left as it was; a store git
//! has packed reads, commits and collects.

use std::path::Path;

use crate::support::{Work, branch_ref, git, snapshot};

/// The engines the binary has.
fn engines() -> Vec<&'static str> {
    if cfg!(feature = "component") {
        vec!["native", "component"]
    } else {
        vec!["native"]
    }
}

/// `git` in the store with an identity and reflogs for every ref update.
fn git_as_user(store: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "-c",
        "user.name=Git User",
        "-c",
        "user.email=git@example.com",
        "-c",
        "core.logAllRefUpdates=always",
    ];
    all.extend_from_slice(args);
    git(store, &all)
}

/// Every object git reaches from every ref, HEAD and reflog, sorted.
fn git_reachable(store: &Path) -> Vec<String> {
    let listed = git(
        store,
        &["rev-list", "--objects", "--all", "--reflog", "--indexed-objects"],
    );
    let mut ids: Vec<String> = listed
        .lines()
        .map(|line| line.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

/// A commit made by git on `parent`'s tree plus one new file, not on any branch.
fn git_commit(store: &Path, parent: &str, file: &str, message: &str) -> String {
    let blob = git_with_stdin(store, &["hash-object", "-w", "--stdin"], message.as_bytes());
    let base = git(store, &["rev-parse", &format!("{parent}^{{tree}}")]);
    let listing = git(store, &["ls-tree", base.trim()]);
    let tree_input = format!("{listing}100644 blob {}\t{file}\n", blob.trim());
    let tree = git_with_stdin(store, &["mktree"], tree_input.as_bytes());
    git_as_user(store, &["commit-tree", tree.trim(), "-p", parent, "-m", message])
        .trim()
        .to_owned()
}

fn git_with_stdin(store: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(store)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("a pipe")
        .write_all(input)
        .expect("input taken");
    let out = child.wait_with_output().expect("git runs");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// A store with snapgit history, pruned so that gc has garbage, and every kind of root
/// git has, made by git.
fn store_git_worked_on() -> Work {
    let work = Work::init();
    for turn in 1..=4 {
        work.write("memory.md", &format!("turn {turn}\n"));
        work.run(&["commit", ".", "-m", &format!("turn {turn}")]).ok();
    }
    work.run(&["prune", "--keep-last", "1"]).ok();
    let store = work.store();
    let main = branch_ref("main");

    // A detached HEAD on a commit nothing else reaches.
    let detached = git_commit(&store, &main, "detached.md", "detached work");
    git(&store, &["update-ref", "--no-deref", "HEAD", &detached]);
    // A reflog entry is all that reaches this one.
    let gone = git_commit(&store, &main, "reflog.md", "only in a reflog");
    git_as_user(&store, &["update-ref", "-m", "moved", "refs/heads/scratch", &gone]);
    git_as_user(&store, &["update-ref", "-m", "back", "refs/heads/scratch", &main]);
    // Annotated tags, a tag of a tag, a ref to a blob, notes, a symbolic ref.
    let tagged = git_commit(&store, &main, "release.md", "released");
    git_as_user(&store, &["tag", "-a", "-m", "v1", "v1", &tagged]);
    git_as_user(&store, &["tag", "-a", "-m", "signed v1", "v1-signed", "v1"]);
    let blob = git_with_stdin(&store, &["hash-object", "-w", "--stdin"], b"a blob a ref names\n");
    git(&store, &["update-ref", "refs/blobs/one", blob.trim()]);
    git_as_user(&store, &["notes", "add", "-m", "a note", &main]);
    git(&store, &["symbolic-ref", "refs/remotes/origin/HEAD", &main]);
    // A tag only `packed-refs` holds.
    let packed = git_commit(&store, &main, "packed.md", "packed tag");
    git(&store, &["update-ref", "refs/tags/packed", &packed]);
    git(&store, &["pack-refs", "--all", "--prune"]);
    assert!(store.join("packed-refs").exists());
    work
}

#[test]
fn gc_keeps_everything_git_reaches() {
    for engine in engines() {
        let work = store_git_worked_on();
        let store = work.store();
        let before = git_reachable(&store);
        git(&store, &["fsck", "--strict"]);
        let status = work.json(&["--engine", engine, "status"]);
        assert!(
            status["unreachable"]["objects"].as_u64().unwrap() > 0,
            "{engine}: {status}"
        );

        let gc = work.json(&["--engine", engine, "gc", "--grace", "0s"]);
        assert!(
            gc["deleted"].as_u64().unwrap() > 0,
            "{engine}: the pruned history goes: {gc}"
        );
        assert_eq!(git_reachable(&store), before, "{engine}: git reaches what it did");
        git(&store, &["fsck", "--strict"]);
        // Everything left is reachable: a second gc finds nothing.
        assert_eq!(work.json(&["--engine", engine, "gc", "--grace", "0s"])["deleted"], 0);
        assert_eq!(work.run(&["--engine", engine, "cat", "memory.md"]).ok(), "turn 4\n");
    }
}

#[test]
fn gc_removes_what_killed_writers_left_once_old() {
    let work = Work::init();
    work.write("memory.md", "one\n");
    work.run(&["commit", ".", "-m", "one"]).ok();
    let store = work.store();
    let temp = store.join("objects/ab/tmp_obj_killed");
    std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
    std::fs::write(&temp, "half an object").unwrap();
    let lock = store.join(format!("{}.lock", branch_ref("main")));
    std::fs::write(&lock, "").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    for path in [&temp, &lock] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let gc = work.json(&["gc"]);
    assert_eq!(gc["deleted"], 2, "{gc}");
    assert!(!temp.exists() && !lock.exists());
    // A lock left behind no longer blocks git.
    let head = git(&store, &["rev-parse", &branch_ref("main")]);
    git(&store, &["update-ref", &branch_ref("main"), head.trim()]);
    git(&store, &["fsck", "--strict"]);
}

/// What the refusal names, and how to make the store so.
type Case = (&'static str, fn(&Path));

#[test]
fn gc_refuses_stores_it_cannot_account_for() {
    let cases: [Case; 4] = [
        (".promisor", |store| {
            git(store, &["repack", "-d", "-q"]);
            let pack = std::fs::read_dir(store.join("objects/pack"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "pack"))
                .unwrap();
            std::fs::write(pack.with_extension("promisor"), "").unwrap();
        }),
        ("objects/info/alternates", |store| {
            std::fs::create_dir_all(store.join("objects/info")).unwrap();
            std::fs::write(store.join("objects/info/alternates"), "/elsewhere/objects\n").unwrap();
        }),
        ("shallow", |store| {
            let head = git(store, &["rev-parse", &branch_ref("main")]);
            std::fs::write(store.join("shallow"), head).unwrap();
        }),
        ("worktrees/", |store| {
            std::fs::create_dir_all(store.join("worktrees/wt")).unwrap();
            std::fs::write(store.join("worktrees/wt/HEAD"), "ref: refs/heads/main\n").unwrap();
        }),
    ];
    for engine in engines() {
        for (needle, make) in &cases {
            let work = Work::init();
            for turn in 1..=3 {
                work.write("memory.md", &format!("turn {turn}\n"));
                work.run(&["commit", ".", "-m", "turn"]).ok();
            }
            work.run(&["prune", "--keep-last", "1"]).ok();
            make(&work.store());
            let before = snapshot(&work.store());
            work.run(&["--engine", engine, "gc", "--grace", "0s"]).fails(9, needle);
            work.run(&["--engine", engine, "status"]).fails(9, needle);
            assert_eq!(snapshot(&work.store()), before, "{engine} {needle}: nothing changed");
        }
    }
}

#[test]
fn a_store_git_packed_reads_commits_and_collects_under_each_engine() {
    for engine in engines() {
        let work = store_git_worked_on();
        let store = work.store();
        // Half the history packed (as a push or `git repack -d` leaves it), then the rest.
        git(&store, &["repack", "-d", "-q"]);
        work.write("memory.md", "after the repack\n");
        work.run(&["--engine", engine, "commit", "memory.md", "-m", "loose on packed"])
            .ok();
        git(&store, &["gc", "--quiet", "--prune=now"]);
        let before = git_reachable(&store);
        assert_eq!(
            work.run(&["--engine", engine, "cat", "memory.md"]).ok(),
            "after the repack\n"
        );
        let log = work.json(&["--engine", engine, "log"]);
        assert_eq!(log["commits"].as_array().unwrap().len(), 2, "{engine}: {log}");
        // A loose commit on top of the packs, then gc: nothing git reaches goes.
        work.write("memory.md", "loose again\n");
        work.run(&["--engine", engine, "commit", "memory.md", "-m", "loose"])
            .ok();
        let reachable = git_reachable(&store);
        assert!(reachable.len() > before.len());
        work.json(&["--engine", engine, "gc", "--grace", "0s"]);
        assert_eq!(git_reachable(&store), reachable, "{engine}");
        git(&store, &["fsck", "--strict"]);
        assert_eq!(
            work.run(&["--engine", engine, "cat", "memory.md"]).ok(),
            "loose again\n"
        );
        work.json(&["--engine", engine, "status"]);
    }
}

/// `snapgit compact` under each engine: a store git packed, with snapgit's commits on
/// top, becomes one pack git verifies, and reads the same; with thresholds it waits.
#[test]
fn compact_packs_a_store_git_worked_on() {
    for engine in engines() {
        let work = store_git_worked_on();
        let store = work.store();
        let before = git_reachable(&store);
        for turn in 5..8 {
            work.write("memory.md", &format!("turn {turn}\n"));
            work.run(&["--engine", engine, "commit", ".", "-m", &format!("turn {turn}")])
                .ok();
        }
        let waits = work.json(&["--engine", engine, "compact", "--min-loose", "100000"]);
        assert_eq!(waits["skipped"], true, "{engine}: {waits}");
        let report = work.json(&["--engine", engine, "compact", "--grace", "0s", "--min-loose", "1"]);
        assert_eq!(report["skipped"], false, "{engine}: {report}");
        assert!(report["pack"].is_string(), "{engine}: {report}");
        assert!(report["loose_deleted"].as_u64().unwrap() > 0, "{engine}: {report}");
        for pack in std::fs::read_dir(store.join("objects/pack")).unwrap() {
            let path = pack.unwrap().path();
            if path.extension().is_some_and(|e| e == "idx") {
                git(&store, &["verify-pack", path.to_str().unwrap()]);
            }
        }
        git(&store, &["fsck", "--strict"]);
        let after = git_reachable(&store);
        assert!(
            before.iter().all(|id| after.contains(id)),
            "{engine}: git reaches what it did"
        );
        assert_eq!(work.run(&["--engine", engine, "cat", "memory.md"]).ok(), "turn 7\n");
        // A factor below 2 is core's refusal: exit 2, naming the option.
        work.run(&["--engine", engine, "compact", "--factor", "1"])
            .fails(2, "factor");
        assert_eq!(
            work.run(&["--engine", engine, "log", "--oneline"]).ok().lines().count(),
            git(&store, &["rev-list", "--count", &branch_ref("main")])
                .trim()
                .parse::<usize>()
                .unwrap()
        );
    }
}

/// `snapgit compact --drop-unreachable` under each engine: what `prune` dropped after
/// compaction packed it leaves the packs (the second run deletes the old pack), git then
/// finds nothing unreachable and the store passes `git fsck --strict`.
#[test]
fn compact_drop_unreachable_gives_back_what_prune_dropped() {
    for engine in engines() {
        let work = Work::init();
        for turn in 1..=5 {
            work.write("memory.md", &format!("turn {turn}\n"));
            work.run(&["--engine", engine, "commit", ".", "-m", &format!("turn {turn}")])
                .ok();
        }
        let store = work.store();
        work.json(&["--engine", engine, "compact", "--grace", "0s"]);
        work.run(&["--engine", engine, "prune", "--keep-last", "2"]).ok();
        let plain = work.json(&["--engine", engine, "compact", "--grace", "0s"]);
        assert_eq!(plain["dropped"], 0, "{engine}: {plain}");
        let first = work.json(&["--engine", engine, "compact", "--grace", "0s", "--drop-unreachable"]);
        assert!(first["dropped"].as_u64().unwrap() > 0, "{engine}: {first}");
        let second = work.json(&["--engine", engine, "compact", "--grace", "0s", "--drop-unreachable"]);
        assert!(second["packs_deleted"].as_u64().unwrap() > 0, "{engine}: {second}");
        git(&store, &["fsck", "--strict"]);
        let unreachable = git(&store, &["fsck", "--unreachable", "--no-reflogs", "--no-progress"]);
        assert!(!unreachable.contains("unreachable"), "{engine}: {unreachable}");
        let packs = std::fs::read_dir(store.join("objects/pack"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "pack"))
            .count();
        assert_eq!(packs, 1, "{engine}");
        assert_eq!(work.run(&["--engine", engine, "cat", "memory.md"]).ok(), "turn 5\n");
        assert_eq!(
            work.run(&["--engine", engine, "log", "--oneline"]).ok().lines().count(),
            2
        );
    }
}

/// `snapgit cap` under each engine: a cap the store fits prunes nothing; a cap of 0
/// prunes every branch to its last `--keep-last` commits and says the cap cannot be met;
/// then `compact --drop-unreachable` twice and `gc` leave a store git finds nothing
/// unreachable in. Bad sizes and `--keep-last 0` are refused with exit 2.
#[test]
fn cap_prunes_the_oldest_history_and_the_space_comes_back() {
    for engine in engines() {
        let work = Work::init();
        for turn in 1..=6 {
            work.write("memory.md", &format!("turn {turn}\n"));
            work.run(&["--engine", engine, "commit", ".", "-m", &format!("turn {turn}")])
                .ok();
        }
        let store = work.store();
        let fits = work.json(&["--engine", engine, "cap", "--max-size", "1g"]);
        assert_eq!(fits["under_cap"], true, "{engine}: {fits}");
        assert_eq!(fits["pruned"].as_array().map(Vec::len), Some(0), "{engine}: {fits}");
        let floor = work.json(&["--engine", engine, "cap", "--max-size", "0", "--keep-last", "2"]);
        assert_eq!(floor["under_cap"], false, "{engine}: {floor}");
        assert_eq!(floor["pruned"][0]["kept"], 2, "{engine}: {floor}");
        assert!(
            floor["estimated_bytes"].as_u64().unwrap() < floor["reachable_bytes"].as_u64().unwrap(),
            "{engine}: {floor}"
        );
        assert_eq!(
            work.run(&["--engine", engine, "log", "--oneline"]).ok().lines().count(),
            2
        );
        work.json(&["--engine", engine, "compact", "--grace", "0s", "--drop-unreachable"]);
        work.json(&["--engine", engine, "compact", "--grace", "0s", "--drop-unreachable"]);
        work.json(&["--engine", engine, "gc", "--grace", "0s"]);
        git(&store, &["fsck", "--strict"]);
        let unreachable = git(&store, &["fsck", "--unreachable", "--no-reflogs", "--no-progress"]);
        assert!(!unreachable.contains("unreachable"), "{engine}: {unreachable}");
        assert_eq!(work.run(&["--engine", engine, "cat", "memory.md"]).ok(), "turn 6\n");
        work.run(&["--engine", engine, "cap", "--max-size", "lots"])
            .fails(2, "lots");
        work.run(&["--engine", engine, "cap", "--max-size", "1m", "--keep-last", "0"])
            .fails(2, "keep_last");
    }
}
