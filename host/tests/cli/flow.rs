//! The normal flow on a local folder, checked against real git.

use serde_json::Value;

use crate::support::{Work, branch_ref};

fn ids(value: &Value) -> Vec<String> {
    value["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn git_ids(work: &Work, args: &[&str]) -> Vec<String> {
    let mut all = vec!["log", "--format=%H"];
    all.extend_from_slice(args);
    work.git(&all).lines().map(str::to_owned).collect()
}

#[test]
fn init_commit_log_diff_restore_as_git_sees_them() {
    let work = Work::empty();
    let init = work.json(&["init"]);
    assert_eq!(init["created"], true);
    assert!(work.store().join("HEAD").is_file());
    // Again: nothing changes.
    assert_eq!(work.json(&["init"])["created"], false);

    work.write("memory/profile.md", "# Profile\nname: Ada\n");
    work.write("memory/state.json", "{\"turn\": 1}\n");
    work.write("notes.md", "one\ntwo\nthree\n");
    let first = work.json(&["commit", "memory", "notes.md", "-m", "turn 1"]);
    assert_eq!(first["created"], true);
    assert_eq!(first["files_changed"], 3);
    assert_eq!(first["additions"], 6);
    assert_eq!(first["parent"], init["commit"]);
    let first_id = first["commit"].as_str().expect("an id").to_owned();
    // git reads the commit snapgit made, with our author and time.
    assert_eq!(
        work.git(&["log", "-1", "--format=%an <%ae> %at %s", &branch_ref("main")]),
        "Agent <agent@example.com> 1700000000 turn 1\n"
    );

    work.write("memory/profile.md", "# Profile\nname: Ada\nprefers: tea\n");
    work.write("notes.md", "one\n2\nthree\nfour\n");
    let second = work.json(&[
        "commit",
        "memory/profile.md",
        "notes.md",
        "--delete",
        "memory/state.json",
        "-m",
        "turn 2",
    ]);
    assert_eq!(second["files_changed"], 3);
    let renamed = work.json(&["commit", "--rename", "memory/profile.md", "profile.md", "-m", "move"]);
    assert_eq!(renamed["files"][0]["status"], "R");
    assert_eq!(renamed["files"][0]["from"], "memory/profile.md");
    let second_id = renamed["commit"].as_str().expect("an id").to_owned();

    // History equals git's, whole and by path.
    let log = work.json(&["log"]);
    assert_eq!(ids(&log), git_ids(&work, &[&branch_ref("main")]));
    let by_path = work.json(&["log", "--path", "notes.md"]);
    assert_eq!(ids(&by_path), git_ids(&work, &[&branch_ref("main"), "--", "notes.md"]));
    // A file's history with its line counts equals `git log --numstat -- path`.
    let numstat = work.run(&["log", "--path", "notes.md", "--numstat", "--oneline"]).ok();
    let git_numstat = work.git(&[
        "log",
        "--numstat",
        "--format=%h %s",
        &branch_ref("main"),
        "--",
        "notes.md",
    ]);
    assert_eq!(numstat.replace("\n\n", "\n"), git_numstat.replace("\n\n", "\n"));
    let file_log = work.json(&["log", "--path", "notes.md", "--numstat"]);
    assert_eq!(ids(&file_log), ids(&by_path));
    assert_eq!(file_log["commits"][0]["file"]["path"], "notes.md");
    assert!(file_log["commits"][0]["file"]["added"].is_u64());
    // Paging with the cursor gives the same walk.
    let page = work.json(&["log", "-n", "1"]);
    let next = page["next"].as_str().expect("more pages").to_owned();
    let rest = work.json(&["log", "-n", "10", "--cursor", &next]);
    let mut joined = ids(&page);
    joined.extend(ids(&rest));
    assert_eq!(joined, ids(&log));

    // Diffs equal git's.
    for (ours, theirs) in [
        ("--numstat", "--numstat"),
        ("--name-status", "--name-status"),
        ("--patch", "--patch"),
    ] {
        let text = work.run(&["diff", &first_id, &second_id, ours]).ok();
        // Core pairs renames by identical content, as git's -M100% does.
        let git = work.git(&["diff", "-M100%", theirs, &first_id, &second_id]);
        assert_eq!(text, git, "snapgit diff {ours} differs from git");
    }
    let stat = work.run(&["diff", "--stat", &first_id, &second_id]).ok();
    assert!(stat.contains("files changed"), "{stat}");
    let diff = work.json(&["diff", &first_id, &second_id]);
    assert_eq!(diff["from"], first_id.as_str());
    assert!(diff["patch"].as_str().expect("a patch").starts_with("diff --git "));

    // `cat -r`: every file with its content, in git's order.
    let all = work.json(&["cat", "-r"]);
    let paths: Vec<&str> = all["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("a path"))
        .collect();
    let git_paths = work.git(&["ls-tree", "-r", "--name-only", &branch_ref("main")]);
    assert_eq!(paths, git_paths.lines().collect::<Vec<_>>());
    assert!(all["files"][0]["content"].as_str().is_some());

    // show, cat and ls.
    let show = work.json(&["show", &second_id]);
    assert_eq!(show["commit"]["parents"][0], second["commit"]);
    assert_eq!(show["files"][0]["status"], "R");
    assert!(work.run(&["show"]).ok().starts_with(&format!("commit {second_id}\n")));
    assert_eq!(
        work.run(&["cat", "notes.md"]).ok(),
        work.git(&["show", &format!("{second_id}:notes.md")])
    );
    assert_eq!(
        work.run(&["cat", "--ref", &first_id, "notes.md"]).ok(),
        "one\ntwo\nthree\n"
    );
    assert_eq!(work.run(&["ls", "-r"]).ok(), work.git(&["ls-tree", "-r", &second_id]));
    assert_eq!(work.run(&["ls"]).ok(), work.git(&["ls-tree", &second_id]));

    // Restore one file, then the whole tree, each as a new commit on top.
    let restored = work.json(&["restore", "main~2", "notes.md"]);
    assert_eq!(restored["created"], true);
    assert_eq!(restored["parent"], second_id.as_str());
    assert_eq!(work.run(&["cat", "notes.md"]).ok(), "one\ntwo\nthree\n");
    let whole = work.json(&["restore", &first_id, "-m", "back to turn 1"]);
    let whole_id = whole["commit"].as_str().expect("an id");
    assert_eq!(
        work.git(&["rev-parse", &format!("{whole_id}^{{tree}}")]),
        work.git(&["rev-parse", &format!("{first_id}^{{tree}}")])
    );
    // Restoring what is already there changes nothing.
    assert_eq!(work.json(&["restore", &first_id])["created"], false);
    work.git(&["fsck", "--strict"]);
}

#[test]
fn branches_prune_gc_and_status() {
    let work = Work::init();
    for turn in 1..=5 {
        work.write("memory.md", &format!("turn {turn}\n"));
        work.write(&format!("log/{turn}.md"), "entry\n");
        work.run(&["commit", ".", "-m", &format!("turn {turn}")]).ok();
    }
    // Branches: create from a ref, list, commit to it, delete.
    let created = work.json(&["branch", "create", "experiment", "--from", "main~2"]);
    assert_eq!(
        created["commit"].as_str().expect("an id"),
        work.git(&["rev-parse", &format!("{}~2", branch_ref("main"))]).trim()
    );
    work.write("memory.md", "experiment\n");
    work.run(&["-b", "experiment", "commit", "memory.md", "-m", "try"]).ok();
    let list = work.json(&["branch"]);
    let names: Vec<_> = list["branches"]
        .as_array()
        .expect("branches")
        .iter()
        .map(|b| b["name"].as_str().expect("a name").to_owned())
        .collect();
    assert_eq!(names, ["experiment", "main"]);
    assert_eq!(
        work.git(&["for-each-ref", "--format=%(refname)", "refs/namespaces/default/"]),
        format!("{}\n{}\n", branch_ref("experiment"), branch_ref("main"))
    );
    work.run(&["branch", "delete", "experiment"]).ok();
    assert_eq!(
        work.json(&["branch"])["branches"].as_array().expect("branches").len(),
        1
    );

    // Another repo in the same store shares objects.
    work.run(&["repo", "create", "agent-2", "memory.md"]).ok();
    assert_eq!(
        work.json(&["repo", "list"])["repos"],
        serde_json::json!(["agent-2", "default"])
    );
    assert_eq!(
        work.run(&["--repo", "agent-2", "cat", "memory.md"]).ok(),
        "experiment\n"
    );

    // Prune main to its last 2 commits: git sees a 2-commit history.
    let pruned = work.json(&["prune", "--keep-last", "2"]);
    assert_eq!(pruned["rewritten"], true);
    assert_eq!(pruned["kept"], 2);
    assert_eq!(pruned["dropped"], 4);
    assert_eq!(work.git(&["rev-list", "--count", &branch_ref("main")]), "2\n");

    // GC with the default grace period keeps everything (all of it is young) ...
    let before = work.json(&["status"]);
    let unreachable = before["unreachable"]["objects"].as_u64().expect("a count");
    assert!(unreachable > 0, "{before}");
    let gentle = work.json(&["gc"]);
    assert_eq!(gentle["deleted"], 0);
    assert_eq!(gentle["young"].as_u64(), Some(unreachable));
    // ... and with none deletes exactly what nothing reaches.
    let gc = work.json(&["gc", "--grace", "0s"]);
    assert_eq!(gc["deleted"].as_u64(), Some(unreachable));
    let after = work.json(&["status"]);
    assert_eq!(after["unreachable"]["objects"], 0);
    assert_eq!(
        after["objects"]["objects"].as_u64().expect("a count"),
        before["objects"]["objects"].as_u64().expect("a count") - unreachable
    );
    let text = work.run(&["status"]).ok();
    assert!(text.contains("repos:       2"), "{text}");
    work.git(&["fsck", "--strict", "--no-dangling"]);
    // Both repos still read back.
    assert_eq!(work.run(&["cat", "memory.md"]).ok(), "turn 5\n");
    assert_eq!(
        work.run(&["--repo", "agent-2", "cat", "memory.md"]).ok(),
        "experiment\n"
    );

    // Deleting a repo removes its refs.
    work.run(&["repo", "delete", "agent-2"]).ok();
    assert_eq!(work.json(&["repo", "list"])["repos"], serde_json::json!(["default"]));
}

#[test]
fn stdin_sync_excludes_and_unchanged_commits() {
    let work = Work::init();
    let out = crate::support::run_with_stdin(
        crate::support::snapgit(work.path()),
        &[
            "--json",
            "commit",
            "--stdin",
            "transcripts/full.jsonl",
            "-m",
            "from stdin",
        ],
        b"{\"role\":\"user\"}\n",
    );
    assert_eq!(out.json()["files"][0]["path"], "transcripts/full.jsonl");
    assert_eq!(
        work.run(&["cat", "transcripts/full.jsonl"]).ok(),
        "{\"role\":\"user\"}\n"
    );

    // A folder synced: what is gone locally is deleted on the branch; excluded files
    // are skipped and kept.
    work.write("tree/a.md", "a\n");
    work.write("tree/b.md", "b\n");
    work.write("tree/cache/x.bin", "x");
    let first = work.json(&["commit", "tree", "--sync", "--exclude", "cache/", "-m", "tree"]);
    assert_eq!(first["files_changed"], 2);
    assert_eq!(first["skipped"][0]["path"], "tree/cache");
    std::fs::remove_file(work.path().join("tree/b.md")).expect("remove");
    let synced = work.json(&["commit", "tree", "--sync", "--exclude", "cache/", "-m", "sync"]);
    assert_eq!(synced["files"][0]["path"], "tree/b.md");
    assert_eq!(synced["files"][0]["status"], "D");
    // Committing the same content again changes nothing, and succeeds.
    let again = work.json(&["commit", "tree", "--exclude", "cache/", "-m", "again"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["commit"], synced["commit"]);
    let text = work.run(&["commit", "tree", "--exclude", "cache/", "-m", "again"]).ok();
    assert!(text.starts_with("Nothing to commit"), "{text}");

    // Executable bits and symlinks come through as git modes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        work.write("bin/run.sh", "#!/bin/sh\n");
        let script = work.path().join("bin/run.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::symlink("run.sh", work.path().join("bin/link")).expect("symlink");
        work.run(&["commit", "bin", "-m", "modes"]).ok();
        let ls = work.git(&["ls-tree", "-r", &branch_ref("main"), "bin"]);
        assert!(ls.contains("120000 blob") && ls.contains("100755 blob"), "{ls}");
    }
    work.git(&["fsck", "--strict"]);
}
