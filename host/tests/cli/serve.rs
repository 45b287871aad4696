//! `snapgit serve` with real `git` as the client: clone (whole, shallow, partial), fetch,
//! push (new commits, new branches, refused non-fast-forwards, forced), tokens, and
//! pushes racing each other and snapgit's own commits; and the same flows over a store
//! on S3 (`SNAPGIT_SERVICES=1`).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::support::{Services, Work, download, run_with_stdin, services, snapgit, unique};

/// A running `snapgit serve`, stopped when dropped.
pub struct Server {
    child: Child,
    url: String,
}

impl Server {
    pub fn start(work: &Work, extra: &[&str]) -> Server {
        Self::start_with_env(work, extra, &[])
    }

    pub fn start_with_env(work: &Work, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = snapgit(work.path());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = command.spawn().expect("snapgit serve starts");
        let stderr = child.stderr.take().expect("a pipe");
        let mut lines = BufReader::new(stderr).lines();
        let first = lines.next().expect("the server says where it listens").expect("text");
        // Keep reading stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let at = first
            .find("http://")
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let url = first[at..].trim_end_matches("/<repo>.git").to_owned();
        Server { child, url }
    }

    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}.git", self.url)
    }

    /// `http://<address>`, where the JSON API's routes begin.
    pub fn base(&self) -> String {
        self.url.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git <args>` in `dir` with no user or system config; its output, whatever the exit.
fn git_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Client",
            "-c",
            "user.email=client@example.com",
            "-c",
            "protocol.version=2",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .output()
        .expect("git runs")
}

/// `git <args>` in `dir`, which must succeed; its stdout.
#[track_caller]
pub(crate) fn git_ok(dir: &Path, args: &[&str]) -> String {
    let output = git_in(dir, args);
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// `git <args>` in `dir`, which must fail; its stderr.
#[track_caller]
fn git_fails(dir: &Path, args: &[&str]) -> String {
    let output = git_in(dir, args);
    assert!(
        !output.status.success(),
        "git {args:?} succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A store with three commits on main of the default repo.
fn store_with_history() -> Work {
    let work = Work::init();
    for turn in 1..=3 {
        work.write("notes/memory.md", &format!("turn {turn}\n"));
        work.write(&format!("notes/turn-{turn}.md"), &"line\n".repeat(turn * 50));
        work.run(&["commit", "notes", "-m", &format!("turn {turn}")]).ok();
    }
    work
}

fn head(work: &Work, branch: &str) -> String {
    work.git(&["rev-parse", &crate::support::branch_ref(branch)])
        .trim()
        .to_owned()
}

#[test]
fn git_clones_fetches_and_pushes() {
    let work = store_with_history();
    let server = Server::start(&work, &[]);
    let client = tempfile::tempdir().unwrap();
    git_ok(client.path(), &["clone", "-q", &server.repo("default"), "agent"]);
    let clone = client.path().join("agent");
    assert_eq!(git_ok(&clone, &["rev-parse", "HEAD"]).trim(), head(&work, "main"));
    assert_eq!(
        std::fs::read_to_string(clone.join("notes/memory.md")).unwrap(),
        "turn 3\n"
    );
    assert_eq!(git_ok(&clone, &["rev-list", "--count", "HEAD"]).trim(), "4");
    git_ok(&clone, &["fsck", "--strict"]);

    // snapgit commits, git fetches.
    work.write("notes/memory.md", "turn 4\n");
    work.run(&["commit", "notes", "-m", "turn 4"]).ok();
    git_ok(&clone, &["pull", "-q", "--ff-only"]);
    assert_eq!(git_ok(&clone, &["rev-parse", "HEAD"]).trim(), head(&work, "main"));
    assert_eq!(
        std::fs::read_to_string(clone.join("notes/memory.md")).unwrap(),
        "turn 4\n"
    );

    // git commits and pushes; snapgit reads it.
    std::fs::write(clone.join("notes/from-git.md"), "written by a person\n").unwrap();
    git_ok(&clone, &["add", "-A"]);
    git_ok(&clone, &["commit", "-q", "-m", "a person's note"]);
    git_ok(&clone, &["push", "-q", "origin", "main"]);
    assert_eq!(head(&work, "main"), git_ok(&clone, &["rev-parse", "HEAD"]).trim());
    assert_eq!(work.run(&["cat", "notes/from-git.md"]).ok(), "written by a person\n");

    // An annotated tag, pushed by one client and followed by another's fetch.
    let other = client.path().join("other");
    git_ok(client.path(), &["clone", "-q", &server.repo("default"), "other"]);
    std::fs::write(clone.join("notes/release.md"), "released\n").unwrap();
    git_ok(&clone, &["add", "-A"]);
    git_ok(&clone, &["commit", "-q", "-m", "release"]);
    git_ok(&clone, &["tag", "-a", "v1", "-m", "the first release"]);
    git_ok(&clone, &["push", "-q", "origin", "main", "v1"]);
    git_ok(&other, &["fetch", "-q"]);
    assert_eq!(git_ok(&other, &["cat-file", "-t", "v1"]).trim(), "tag");
    assert_eq!(
        git_ok(&other, &["rev-parse", "v1^{commit}"]),
        git_ok(&clone, &["rev-parse", "HEAD"])
    );

    // A new branch.
    git_ok(&clone, &["push", "-q", "origin", "HEAD:refs/heads/review"]);
    assert_eq!(head(&work, "review"), head(&work, "main"));
    let branches = work.run(&["branch"]).ok();
    assert!(branches.contains("review"), "{branches}");

    // A branch deleted.
    git_ok(&clone, &["push", "-q", "origin", ":review"]);
    assert!(!work.run(&["branch"]).ok().contains("review"));

    work.git(&["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn shallow_and_partial_clones() {
    let work = store_with_history();
    let server = Server::start(&work, &[]);
    let client = tempfile::tempdir().unwrap();

    git_ok(
        client.path(),
        &["clone", "-q", "--depth", "1", &server.repo("default"), "shallow"],
    );
    let shallow = client.path().join("shallow");
    assert_eq!(git_ok(&shallow, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(
        git_ok(&shallow, &["rev-parse", "--is-shallow-repository"]).trim(),
        "true"
    );
    git_ok(&shallow, &["fsck"]);
    // Deepen by one, then all the way.
    git_ok(&shallow, &["fetch", "-q", "--deepen", "1"]);
    assert_eq!(git_ok(&shallow, &["rev-list", "--count", "HEAD"]).trim(), "2");
    git_ok(&shallow, &["fetch", "-q", "--unshallow"]);
    assert_eq!(git_ok(&shallow, &["rev-list", "--count", "HEAD"]).trim(), "4");
    assert_eq!(
        git_ok(&shallow, &["rev-parse", "--is-shallow-repository"]).trim(),
        "false"
    );

    // A partial clone gets no blobs until checkout asks for them.
    git_ok(
        client.path(),
        &[
            "clone",
            "-q",
            "--no-checkout",
            "--filter=blob:none",
            &server.repo("default"),
            "partial",
        ],
    );
    let partial = client.path().join("partial");
    let missing = git_ok(&partial, &["rev-list", "--objects", "--missing=print", "HEAD"]);
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "blobs were sent: {missing}"
    );
    git_ok(&partial, &["checkout", "-q", "main"]);
    assert_eq!(
        std::fs::read_to_string(partial.join("notes/memory.md")).unwrap(),
        "turn 3\n"
    );
    // An old version's blob, fetched on demand.
    let old = git_ok(&partial, &["show", "HEAD~2:notes/memory.md"]);
    assert_eq!(old, "turn 1\n");
}

#[test]
fn non_fast_forward_pushes_are_refused_unless_allowed() {
    let work = store_with_history();
    let client = tempfile::tempdir().unwrap();
    {
        let server = Server::start(&work, &[]);
        git_ok(client.path(), &["clone", "-q", &server.repo("default"), "agent"]);
        let clone = client.path().join("agent");
        git_ok(&clone, &["reset", "-q", "--hard", "HEAD~1"]);
        std::fs::write(clone.join("other.md"), "rewritten\n").unwrap();
        git_ok(&clone, &["add", "-A"]);
        git_ok(&clone, &["commit", "-q", "-m", "rewrite"]);
        let before = head(&work, "main");
        let err = git_fails(&clone, &["push", "origin", "main"]);
        assert!(err.contains("rejected"), "{err}");
        let err = git_fails(&clone, &["push", "--force", "origin", "main"]);
        assert!(err.contains("non-fast-forward"), "{err}");
        assert_eq!(head(&work, "main"), before);
    }
    let server = Server::start(&work, &["--allow-force"]);
    let clone = client.path().join("agent");
    git_ok(&clone, &["remote", "set-url", "origin", &server.repo("default")]);
    git_ok(&clone, &["push", "-q", "--force", "origin", "main"]);
    assert_eq!(head(&work, "main"), git_ok(&clone, &["rev-parse", "HEAD"]).trim());
    work.git(&["fsck", "--strict"]);
}

#[test]
fn tokens_scope_reads_and_writes() {
    let work = store_with_history();
    let tokens = work.path().join("tokens.json");
    std::fs::write(
        &tokens,
        r#"{"tokens": [
            {"token": "read-token-0123456789", "repos": ["default"], "access": "read"},
            {"token": "write-token-0123456789", "repos": ["def*"], "access": "write"}
        ]}"#,
    )
    .unwrap();
    let server = Server::start(&work, &["--tokens", tokens.to_str().unwrap()]);
    let client = tempfile::tempdir().unwrap();
    let err = git_fails(client.path(), &["clone", "-q", &server.repo("default"), "none"]);
    assert!(
        err.contains("401") || err.contains("Authentication failed") || err.contains("could not read Username"),
        "{err}"
    );
    let read = "http.extraHeader=Authorization: Bearer read-token-0123456789";
    git_ok(
        client.path(),
        &["-c", read, "clone", "-q", &server.repo("default"), "agent"],
    );
    let clone = client.path().join("agent");
    std::fs::write(clone.join("x.md"), "x\n").unwrap();
    git_ok(&clone, &["add", "-A"]);
    git_ok(&clone, &["commit", "-q", "-m", "x"]);
    let err = git_fails(&clone, &["-c", read, "push", "origin", "main"]);
    assert!(err.contains("403") || err.contains("may not write"), "{err}");
    // Basic auth with the token as password, as a credential helper sends it.
    let url = server
        .repo("default")
        .replace("http://", "http://agent:write-token-0123456789@");
    git_ok(&clone, &["push", "-q", &url, "main"]);
    assert_eq!(head(&work, "main"), git_ok(&clone, &["rev-parse", "HEAD"]).trim());
}

#[test]
fn a_server_without_tokens_listens_on_loopback_only() {
    let work = Work::init();
    let run = work.run(&["serve", "--listen", "0.0.0.0:0"]);
    run.fails(2, "without tokens");
}

#[test]
fn concurrent_pushes_and_commits_lose_nothing() {
    let work = store_with_history();
    let server = Server::start(&work, &[]);
    let client = tempfile::tempdir().unwrap();
    let clones: Vec<_> = (0..2)
        .map(|i| {
            let name = format!("c{i}");
            git_ok(client.path(), &["clone", "-q", &server.repo("default"), &name]);
            let dir = client.path().join(&name);
            std::fs::write(dir.join(format!("client-{i}.md")), format!("{i}\n")).unwrap();
            git_ok(&dir, &["add", "-A"]);
            git_ok(&dir, &["commit", "-q", "-m", &format!("client {i}")]);
            dir
        })
        .collect();
    let pushes: Vec<_> = clones
        .iter()
        .map(|dir| {
            let dir = dir.clone();
            std::thread::spawn(move || git_in(&dir, &["push", "origin", "main"]))
        })
        .collect();
    work.write("notes/memory.md", "snapgit's own turn\n");
    work.run(&["commit", "notes", "-m", "own turn"]).ok();
    let results: Vec<_> = pushes.into_iter().map(|p| p.join().unwrap()).collect();
    // Whatever won, every acknowledged push is in the history, and the store is whole.
    let history = work.git(&["rev-list", &crate::support::branch_ref("main")]);
    for (dir, result) in clones.iter().zip(&results) {
        let pushed = git_ok(dir, &["rev-parse", "HEAD"]);
        if result.status.success() {
            assert!(history.contains(pushed.trim()), "an acknowledged push is lost");
        }
    }
    assert!(work.run(&["log", "--oneline"]).ok().contains("own turn"));
    work.git(&["fsck", "--strict"]);
}

#[test]
fn clones_of_a_compacted_store_copy_its_stored_entries() {
    let work = store_with_history();
    work.run(&["compact", "--grace", "0s"]).ok();
    // A commit after the compaction: loose objects beside the pack.
    work.write("notes/memory.md", "turn 4\n");
    work.run(&["commit", "notes", "-m", "turn 4"]).ok();
    let server = Server::start(&work, &[]);
    let client = tempfile::tempdir().unwrap();
    let output = git_in(
        client.path(),
        &["clone", "--progress", &server.repo("default"), "agent"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let progress = String::from_utf8_lossy(&output.stderr);
    let copied: usize = progress
        .split("deltas, ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of copied entries in {progress}"));
    assert!(copied > 0, "nothing was copied from the pack: {progress}");
    let clone = client.path().join("agent");
    git_ok(&clone, &["fsck", "--strict"]);
    assert_eq!(git_ok(&clone, &["rev-parse", "HEAD"]).trim(), head(&work, "main"));
    assert_eq!(
        std::fs::read_to_string(clone.join("notes/memory.md")).unwrap(),
        "turn 4\n"
    );
    // Shallow and partial clones of the same store.
    git_ok(
        client.path(),
        &["clone", "-q", "--depth", "2", &server.repo("default"), "shallow"],
    );
    git_ok(&client.path().join("shallow"), &["fsck"]);
    git_ok(
        client.path(),
        &["clone", "-q", "--filter=blob:none", &server.repo("default"), "partial"],
    );
    git_ok(&client.path().join("partial"), &["fsck"]);
}

#[test]
fn pushes_that_break_the_write_policy_are_refused() {
    let work = store_with_history();
    let server = Server::start(
        &work,
        &["--exclude", "*.env", "--exclude", "cache/", "--max-file-size", "100"],
    );
    let client = tempfile::tempdir().unwrap();
    git_ok(client.path(), &["clone", "-q", &server.repo("default"), "agent"]);
    let clone = client.path().join("agent");
    let before = head(&work, "main");
    for (path, content, says) in [
        ("deep/secrets.env", "KEY=1\n".to_owned(), "excluded"),
        ("cache/x.md", "x\n".to_owned(), "excluded"),
        ("big.md", "x".repeat(101), "over the policy's limit"),
    ] {
        let file = clone.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, content).unwrap();
        git_ok(&clone, &["add", "-A"]);
        git_ok(&clone, &["commit", "-q", "-m", path]);
        let err = git_fails(&clone, &["push", "origin", "main"]);
        // The path refused: the file, or the excluded folder holding it.
        let named = path.split('/').next().unwrap();
        assert!(err.contains(says) && err.contains(named), "{path}: {err}");
        assert_eq!(head(&work, "main"), before, "{path} moved the branch");
        git_ok(&clone, &["reset", "-q", "--hard", "HEAD~1"]);
    }
    std::fs::write(clone.join("ok.md"), "fine\n").unwrap();
    git_ok(&clone, &["add", "-A"]);
    git_ok(&clone, &["commit", "-q", "-m", "fine"]);
    git_ok(&clone, &["push", "-q", "origin", "main"]);
}

#[test]
fn git_clones_pushes_and_fetches_over_an_s3_store() {
    let Some(Services { aws, bucket, .. }) = services() else {
        return;
    };
    let work = Work::empty();
    let url = format!("s3://{bucket}/{}", unique("cli-serve"));
    let mut env = aws.clone();
    env.push(("SNAPGIT_STORE".into(), url.clone()));
    let sg = |args: &[&str]| {
        let mut command = snapgit(work.path());
        command.envs(env.iter().map(|(k, v)| (k, v)));
        run_with_stdin(command, args, b"").ok()
    };
    sg(&["init"]);
    for turn in 1..=3 {
        work.write("notes/memory.md", &format!("turn {turn}\n"));
        work.write(&format!("notes/turn-{turn}.md"), &"line\n".repeat(turn * 50));
        sg(&["commit", "notes", "-m", &format!("turn {turn}")]);
    }
    let head = |branch: &str| -> String {
        let log = sg(&["--json", "-b", branch, "log", "-n", "1"]);
        let log: serde_json::Value = serde_json::from_str(&log).expect("JSON");
        log["commits"][0]["id"].as_str().expect("an id").to_owned()
    };
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start_with_env(&work, &["--store", &url], &env_refs);
    let client = tempfile::tempdir().unwrap();

    git_ok(client.path(), &["clone", "-q", &server.repo("default"), "agent"]);
    let clone = client.path().join("agent");
    assert_eq!(git_ok(&clone, &["rev-parse", "HEAD"]).trim(), head("main"));
    assert_eq!(git_ok(&clone, &["rev-list", "--count", "HEAD"]).trim(), "4");
    git_ok(&clone, &["fsck", "--strict"]);

    // git pushes a commit and a branch; snapgit reads them from the bucket.
    std::fs::write(clone.join("notes/from-git.md"), "written by a person\n").unwrap();
    git_ok(&clone, &["add", "-A"]);
    git_ok(&clone, &["commit", "-q", "-m", "a person's note"]);
    git_ok(&clone, &["push", "-q", "origin", "main", "main:refs/heads/review"]);
    let pushed = git_ok(&clone, &["rev-parse", "HEAD"]);
    assert_eq!(head("main"), pushed.trim());
    assert_eq!(head("review"), pushed.trim());
    assert_eq!(sg(&["cat", "notes/from-git.md"]), "written by a person\n");

    // snapgit commits on top of the push; git fetches it, and a shallow clone works.
    work.write("notes/memory.md", "turn 4\n");
    sg(&["commit", "notes", "-m", "turn 4"]);
    git_ok(&clone, &["pull", "-q", "--ff-only"]);
    assert_eq!(git_ok(&clone, &["rev-parse", "HEAD"]).trim(), head("main"));
    assert_eq!(
        std::fs::read_to_string(clone.join("notes/memory.md")).unwrap(),
        "turn 4\n"
    );
    git_ok(&clone, &["fsck", "--strict"]);
    git_ok(
        client.path(),
        &["clone", "-q", "--depth", "1", &server.repo("default"), "shallow"],
    );
    let shallow = client.path().join("shallow");
    assert_eq!(git_ok(&shallow, &["rev-list", "--count", "HEAD"]).trim(), "1");
    git_ok(&shallow, &["fsck", "--strict"]);

    // A stale push is refused; the bucket is a whole git repository.
    let other = client.path().join("stale");
    git_ok(client.path(), &["clone", "-q", &server.repo("default"), "stale"]);
    git_ok(&other, &["reset", "-q", "--hard", "HEAD~1"]);
    git_ok(&other, &["commit", "-q", "--allow-empty", "-m", "behind"]);
    git_fails(&other, &["push", "origin", "main"]);
    assert_eq!(git_ok(&clone, &["rev-parse", "HEAD"]).trim(), head("main"));
    let copy = work.path().join("copy.git");
    download(&url, &aws, &copy);
    crate::support::git(&copy, &["fsck", "--strict", "--no-dangling"]);
}
