//! Bad input at the command line: a clear message, a documented non-zero exit, and
//! nothing written.

use crate::support::{Work, run, run_with_stdin, snapgit, snapshot};

/// Run `args` against an initialised store with one commit; check the exit code and
/// message, and that the store is byte for byte as before.
#[track_caller]
fn refused(work: &Work, args: &[&str], code: i32, needle: &str) {
    let before = snapshot(&work.store());
    work.run(args).fails(code, needle);
    assert!(before == snapshot(&work.store()), "snapgit {args:?} changed the store");
}

fn work() -> Work {
    let work = Work::init();
    work.write("memory.md", "# Memory\n");
    work.run(&["commit", "memory.md", "-m", "turn 1"]).ok();
    work
}

#[test]
fn invalid_store_urls_and_missing_credentials() {
    let work = work();
    refused(
        &work,
        &["--store", "ftp://host/x", "log"],
        2,
        "unknown store scheme \"ftp\"",
    );
    refused(&work, &["--store", "s3://", "log"], 2, "names no bucket");
    refused(&work, &["--store", "s3:///prefix", "log"], 2, "names no bucket");
    refused(&work, &["--store", "", "log"], 2, "it is empty");
    for dotted in [
        "s3://b/zz/../prefix",
        "s3://b/./prefix",
        "gs://b/a/%2E%2E/p",
        "file:///tmp/a/../b",
    ] {
        refused(&work, &["--store", dotted, "log"], 2, "segment in its path");
        refused(&work, &["--store", dotted, "init"], 2, "segment in its path");
    }
    refused(
        &work,
        &["--store", "file://host/x", "log"],
        2,
        "does not name a local folder",
    );
    refused(&work, &["--store", "s3://bucket/prefix", "log"], 2, "AWS_ACCESS_KEY_ID");
    refused(&work, &["--store", "gs://bucket/prefix", "log"], 2, "GOOGLE_");
    refused(&work, &["--store", "az://container/prefix", "log"], 2, "AZURE_");
    refused(&work, &["--redis-url", "http://x", "log"], 2, "invalid Redis URL");
    // Only one of the two S3 keys.
    let mut command = snapgit(work.path());
    command.env("AWS_ACCESS_KEY_ID", "x");
    let out = run_with_stdin(command, &["--store", "s3://bucket/p", "log"], b"");
    out.fails(2, "incomplete");
}

#[test]
fn a_missing_store_is_not_created() {
    let work = Work::empty();
    work.run(&["log"]).fails(3, "no store at");
    work.run(&["--store", "elsewhere", "commit", "x", "-m", "m"])
        .fails(2, "cannot read x");
    work.write("x.md", "x");
    work.run(&["--store", "elsewhere", "commit", "x.md", "-m", "m"])
        .fails(3, "no store at");
    assert!(!work.path().join(".snapgit").exists());
    assert!(!work.path().join("elsewhere").exists());
    // Bad names fail before init creates anything.
    work.run(&["--repo", "a/b", "init"])
        .fails(2, "invalid repo name \"a/b\"");
    work.run(&["-b", "bad..name", "init"])
        .fails(2, "invalid branch name \"bad..name\"");
    work.run(&["init", "--author", "Nobody"]).fails(2, "invalid author");
    assert!(!work.path().join(".snapgit").exists());
}

#[test]
fn invalid_paths_and_names() {
    let work = work();
    for path in ["../escape.md", "a//b.md", ".git/config", "x/.GIT/y", "/abs.md", "dir/"] {
        let out = run_with_stdin(snapgit(work.path()), &["commit", "--stdin", path, "-m", "m"], b"data");
        out.fails(2, "invalid path");
    }
    refused(&work, &["commit", "--delete", "../x", "-m", "m"], 2, "invalid path");
    refused(
        &work,
        &["commit", "--rename", "memory.md", ".git", "-m", "m"],
        2,
        "invalid path",
    );
    refused(&work, &["cat", "../memory.md"], 2, "invalid path");
    refused(&work, &["--repo", "a/b", "log"], 2, "invalid repo name");
    refused(&work, &["--repo", "bad repo", "log"], 2, "invalid repo name");
    refused(
        &work,
        &["-b", "x..y", "commit", "memory.md", "-m", "m"],
        2,
        "invalid branch name",
    );
    refused(&work, &["branch", "create", "a..b"], 2, "invalid branch name");
    refused(&work, &["repo", "create", "x/y"], 2, "invalid repo name");
    refused(
        &work,
        &["commit", "--author", "No Email", "memory.md", "-m", "m"],
        2,
        "invalid author",
    );
    refused(
        &work,
        &["commit", "memory.md", "--exclude", "", "-m", "m"],
        2,
        "invalid exclude pattern",
    );
    refused(&work, &["prune"], 2, "--keep-last");
    refused(&work, &["prune", "--keep-last", "0"], 2, "keep at least 1");
    refused(&work, &["log", "-n", "0"], 2, "invalid limit");
    refused(&work, &["log", "--cursor", "zz"], 2, "cursor");
    refused(&work, &["commit", "-m", "nothing"], 2, "nothing to commit");
    // Usage errors exit with 2 too (clap's own message).
    let out = work.run(&["commit"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--message"), "{}", out.stderr);
    assert_eq!(work.run(&["frobnicate"]).code, 2);
    assert_eq!(work.run(&["gc", "--grace", "soon"]).code, 2);
}

#[test]
fn unknown_refs_commits_and_paths() {
    let work = work();
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let says = format!("unknown revision \"{unknown}\"");
    refused(&work, &["show", unknown], 3, &says);
    refused(&work, &["log", unknown], 3, &says);
    refused(&work, &["diff", unknown, "main"], 3, &says);
    refused(&work, &["restore", unknown], 3, &says);
    refused(&work, &["show", "0123abc"], 3, "unknown revision \"0123abc\"");
    refused(&work, &["log", "nope"], 3, "unknown revision \"nope\"");
    refused(&work, &["log", "main~x"], 2, "invalid revision \"main~x\"");
    refused(&work, &["show", "main~5"], 3, "has no parent");
    refused(&work, &["show", "main^2"], 3, "has no parent 2");
    refused(&work, &["--repo", "other", "log"], 3, "repo \"other\" does not exist");
    refused(
        &work,
        &["-b", "nope", "commit", "memory.md", "-m", "m"],
        3,
        "branch \"nope\" does not exist",
    );
    refused(&work, &["cat", "missing.md"], 3, "does not exist");
    refused(
        &work,
        &["commit", "--delete", "missing.md", "-m", "m"],
        3,
        "does not exist",
    );
    refused(&work, &["branch", "delete", "nope"], 3, "does not exist");
    refused(&work, &["repo", "delete", "nope"], 3, "does not exist");
    // A tree id is not a commit.
    let tree = work.git(&["rev-parse", "refs/namespaces/default/refs/heads/main^{tree}"]);
    refused(&work, &["show", tree.trim()], 2, "not a commit");
    // Already there, or not where expected: exit 4.
    refused(&work, &["branch", "create", "main"], 4, "already exists");
    refused(&work, &["repo", "create", "default"], 4, "already exists");
    work.write("memory.md", "changed\n");
    refused(
        &work,
        &["commit", "memory.md", "--expect-head", unknown, "-m", "m"],
        4,
        "branch moved",
    );
}

#[test]
fn unreadable_files_fail_before_anything_is_written() {
    let work = work();
    refused(&work, &["commit", "missing.md", "-m", "m"], 2, "cannot read missing.md");
    refused(
        &work,
        &["commit", "../outside.md", "-m", "m"],
        2,
        "outside the root folder",
    );
    // One unreadable file among readable ones: nothing at all is committed.
    work.write("ok.md", "fine\n");
    refused(
        &work,
        &["commit", "ok.md", "missing.md", "-m", "m"],
        2,
        "cannot read missing.md",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        work.write("secret/locked.md", "x");
        let locked = work.path().join("secret/locked.md");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        // root reads anything; the check only means something for other users.
        if std::fs::read(&locked).is_err() {
            refused(&work, &["commit", "ok.md", "secret", "-m", "m"], 2, "Permission denied");
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    assert_eq!(
        work.git(&["rev-list", "--count", "refs/namespaces/default/refs/heads/main"]),
        "2\n"
    );
}

#[test]
fn unreachable_services_fail_with_the_storage_code() {
    let work = work();
    // A lock service that does not answer.
    refused(
        &work,
        &["--redis-url", "redis://127.0.0.1:9/", "log"],
        6,
        "Connection refused",
    );
    // An S3 endpoint that does not answer.
    let mut command = snapgit(work.path());
    command.envs([
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "y"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ALLOW_HTTP", "true"),
    ]);
    let out = run_with_stdin(command, &["--store", "s3://bucket/p", "log"], b"");
    out.fails(6, "storage failed");
}

#[test]
fn json_errors_carry_the_code() {
    let work = work();
    let out = run(work.path(), &["--json", "cat", "missing.md"]);
    assert_eq!(out.code, 3);
    let error: serde_json::Value = serde_json::from_str(&out.stderr).expect("a JSON error");
    assert_eq!(error["code"], "NOT_FOUND");
    assert_eq!(error["exit"], 3);
    assert!(error["message"].as_str().expect("a message").contains("missing.md"));
}
