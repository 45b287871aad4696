//! `snapgit push`, `fetch` and `import` against real git's server (`git http-backend`,
//! behind a small CGI bridge) and against `snapgit serve`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::{
    serve::git_ok,
    support::{Work, git},
};

/// `git http-backend` over HTTP on loopback, serving the repositories under `root`.
pub struct GitServer {
    pub url: String,
    _root: PathBuf,
}

impl GitServer {
    pub fn start(root: &Path) -> GitServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = root.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = served.clone();
                std::thread::spawn(move || {
                    let _ = bridge(stream, &root);
                });
            }
        });
        GitServer {
            url,
            _root: root.to_owned(),
        }
    }
}

/// One HTTP request carried to `git http-backend` as CGI, and its answer back.
fn bridge(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end().to_owned();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        body.resize(len.parse().unwrap_or(0), 0);
        reader.read_exact(&mut body)?;
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", get("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", "test")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(protocol) = get("git-protocol") {
        cgi.env("GIT_PROTOCOL", protocol);
    }
    if let Some(encoding) = get("content-encoding") {
        cgi.env("HTTP_CONTENT_ENCODING", encoding);
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output()?;
    let split = output.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, 4));
    let split = split.or_else(|| output.stdout.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
    let (head, body) = match split {
        Some((at, len)) => (&output.stdout[..at], &output.stdout[at + len..]),
        None => (&output.stdout[..], &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut status = "200 OK".to_owned();
    let mut out = Vec::new();
    for header in head.lines() {
        match header.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => status = value.trim().to_owned(),
            Some(_) => out.push(header.to_owned()),
            None => {}
        }
    }
    let mut stream = stream;
    write!(stream, "HTTP/1.1 {status}\r\n")?;
    for header in out {
        write!(stream, "{header}\r\n")?;
    }
    write!(stream, "Content-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    stream.write_all(body)?;
    stream.flush()
}

/// A bare repository `name` under `root` that accepts pushes.
fn bare(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    git(root, &["init", "-q", "--bare", "-b", "main", dir.to_str().unwrap()]);
    git(&dir, &["config", "http.receivepack", "true"]);
    dir
}

fn store_with_history() -> Work {
    let work = Work::init();
    for turn in 1..=3 {
        work.write("notes/memory.md", &format!("turn {turn}\n"));
        work.run(&["commit", "notes", "-m", &format!("turn {turn}")]).ok();
    }
    work
}

#[test]
fn push_and_fetch_with_git_http_backend() {
    let root = tempfile::tempdir().unwrap();
    let server = GitServer::start(root.path());
    let remote = bare(root.path(), "agent.git");
    let url = format!("{}/agent.git", server.url);

    // Push a snapgit branch into an empty git repository.
    let work = store_with_history();
    let pushed = work.json(&["push", &url]);
    assert_eq!(pushed["up_to_date"], false, "{pushed}");
    let head = work.git(&["rev-parse", &crate::support::branch_ref("main")]);
    assert_eq!(git(&remote, &["rev-parse", "refs/heads/main"]), head);
    git(&remote, &["fsck", "--strict"]);
    // Again: nothing to send.
    assert_eq!(work.json(&["push", &url])["up_to_date"], true);

    // git adds history (a merge and a tag) on its side; snapgit fetches and imports it.
    let clone = tempfile::tempdir().unwrap();
    let checkout = clone.path().join("c");
    git(clone.path(), &["clone", "-q", &url, checkout.to_str().unwrap()]);
    let in_clone = |args: &[&str]| {
        let mut all = vec!["-c", "user.name=P", "-c", "user.email=p@example.com"];
        all.extend_from_slice(args);
        let out = Command::new("git").current_dir(&checkout).args(&all).output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    in_clone(&["checkout", "-q", "-b", "side"]);
    std::fs::write(checkout.join("side.md"), "side\n").unwrap();
    in_clone(&["add", "-A"]);
    in_clone(&["commit", "-q", "-m", "side"]);
    in_clone(&["checkout", "-q", "main"]);
    std::fs::write(checkout.join("main.md"), "main\n").unwrap();
    in_clone(&["add", "-A"]);
    in_clone(&["commit", "-q", "-m", "main"]);
    in_clone(&["merge", "-q", "--no-edit", "side"]);
    in_clone(&["tag", "-a", "v1", "-m", "release"]);
    in_clone(&["push", "-q", "origin", "main", "side", "v1"]);

    let fetched = work.json(&["fetch", &url, "main"]);
    assert_eq!(fetched["refs"][0]["local_ref"], "refs/heads/main", "{fetched}");
    let remote_head = git(&remote, &["rev-parse", "refs/heads/main"]);
    assert_eq!(
        work.git(&["rev-parse", &crate::support::branch_ref("main")]),
        remote_head
    );
    assert_eq!(work.run(&["cat", "side.md"]).ok(), "side\n");
    work.git(&["fsck", "--strict"]);

    // A whole remote as a new repo: every branch and tag.
    let imported = work.json(&["--repo", "copy", "import", &url]);
    let names: Vec<&str> = imported["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["local_ref"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["refs/heads/main", "refs/heads/side", "refs/tags/v1"]);
    assert_eq!(
        work.git(&["rev-parse", "refs/namespaces/copy/refs/tags/v1"]),
        git(&remote, &["rev-parse", "refs/tags/v1"])
    );
    work.git(&["fsck", "--strict"]);
}

#[test]
fn non_fast_forwards_need_force() {
    let root = tempfile::tempdir().unwrap();
    let server = GitServer::start(root.path());
    let remote = bare(root.path(), "agent.git");
    let url = format!("{}/agent.git", server.url);
    let work = store_with_history();
    work.run(&["push", &url]).ok();
    // Rewrite snapgit's branch: its head no longer descends from the remote's.
    work.run(&["prune", "--keep-last", "1"]).ok();
    let before = git(&remote, &["rev-parse", "refs/heads/main"]);
    work.run(&["push", &url]).fails(4, "non-fast-forward");
    assert_eq!(git(&remote, &["rev-parse", "refs/heads/main"]), before);
    work.run(&["push", "--force", &url]).ok();
    assert_eq!(
        git(&remote, &["rev-parse", "refs/heads/main"]),
        work.git(&["rev-parse", &crate::support::branch_ref("main")])
    );
    // And the other way: the store's branch moved on, the remote's was rewritten.
    let other = Work::init();
    other.run(&["fetch", &url, "main", "--into", "mirror"]).ok();
    work.write("notes/memory.md", "turn 9\n");
    work.run(&["commit", "notes", "-m", "turn 9"]).ok();
    work.run(&["push", &url]).ok();
    work.run(&["prune", "--keep-last", "1"]).ok();
    work.run(&["push", "--force", &url]).ok();
    other
        .run(&["fetch", &url, "main", "--into", "mirror"])
        .fails(4, "non-fast-forward");
    other.run(&["fetch", "--force", &url, "main", "--into", "mirror"]).ok();
    other.git(&["fsck", "--strict"]);
}

#[test]
fn bad_remotes_are_refused_clearly() {
    let work = store_with_history();
    work.run(&["push", "ftp://example.com/a.git"]).fails(2, "http");
    work.run(&["push", "not a url"]).fails(2, "URL");
    // Nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    work.run(&["push", &format!("http://127.0.0.1:{port}/a.git")])
        .fails(6, "127.0.0.1");
    let root = tempfile::tempdir().unwrap();
    let server = GitServer::start(root.path());
    bare(root.path(), "agent.git");
    work.run(&["fetch", &format!("{}/agent.git", server.url), "nope"])
        .fails(3, "refs/heads/nope");
    work.run(&["fetch", &format!("{}/missing.git", server.url), "main"])
        .fails(6, "404");
    work.run(&["--branch", "absent", "push", &format!("{}/agent.git", server.url)])
        .fails(3, "absent");
}

#[test]
fn push_and_fetch_with_snapgit_serve_and_tokens() {
    let served = store_with_history();
    let tokens = served.path().join("tokens.json");
    std::fs::write(
        &tokens,
        r#"{"tokens": [{"token": "write-token-0123456789", "repos": ["*"], "access": "write"}]}"#,
    )
    .unwrap();
    let server = crate::serve::Server::start(&served, &["--tokens", tokens.to_str().unwrap()]);
    let url = server.repo("default");
    let work = Work::init();
    work.run(&["--repo", "mirror", "import", &url]).fails(6, "401");
    work.run(&["--repo", "mirror", "import", "--token", "write-token-0123456789", &url])
        .ok();
    work.write("mine.md", "mine\n");
    work.run(&["--repo", "mirror", "commit", "mine.md", "-m", "mine"]).ok();
    let with_password = url.replace("http://", "http://agent:write-token-0123456789@");
    work.run(&["--repo", "mirror", "push", &with_password]).ok();
    assert_eq!(served.run(&["cat", "mine.md"]).ok(), "mine\n");
    served.git(&["fsck", "--strict"]);
}

/// A bare repository `name` under `root` with `commits` commits on `main`, each changing
/// `notes.md` and adding `turn-<n>.md`, that serves partial fetches.
fn history(root: &Path, name: &str, commits: usize) -> PathBuf {
    let remote = bare(root, name);
    git(&remote, &["config", "uploadpack.allowFilter", "true"]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    git_ok(w, &["init", "-q", "-b", "main", "."]);
    for n in 1..=commits {
        std::fs::write(w.join("notes.md"), format!("turn {n}\n")).unwrap();
        std::fs::write(w.join(format!("turn-{n}.md")), format!("only in turn {n}\n")).unwrap();
        git_ok(w, &["add", "-A"]);
        git_ok(w, &["commit", "-q", "-m", &format!("turn {n}")]);
    }
    git_ok(w, &["push", "-q", remote.to_str().unwrap(), "main"]);
    remote
}

/// The store's `shallow` file, one id per line; empty when it is absent.
fn shallow_file(work: &Work) -> Vec<String> {
    std::fs::read_to_string(work.store().join("shallow"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn shallow_fetches_keep_git_s_shallow_file_to_what_lacks_parents() {
    let root = tempfile::tempdir().unwrap();
    let server = GitServer::start(root.path());
    let remote = history(root.path(), "agent.git", 5);
    let url = format!("{}/agent.git", server.url);
    let work = Work::init();
    let log = |repo: &str| -> Vec<String> {
        work.git(&["log", "--format=%H", &format!("refs/namespaces/{repo}/refs/heads/main")])
            .lines()
            .map(str::to_owned)
            .collect()
    };

    // One commit of history: git's own shallow file names it, and git reads the store.
    let imported = work.json(&["--repo", "tip", "import", &url, "--depth", "1"]);
    let tip = git(&remote, &["rev-parse", "main"]).trim().to_owned();
    assert_eq!(imported["shallow"], serde_json::json!([tip]), "{imported}");
    assert_eq!(shallow_file(&work), std::slice::from_ref(&tip));
    assert_eq!(log("tip"), std::slice::from_ref(&tip));
    // snapgit's own log ends at the boundary as git's does.
    let ours = work.json(&["--repo", "tip", "log"]);
    assert_eq!(ours["commits"].as_array().map(Vec::len), Some(1), "{ours}");
    work.git(&["fsck", "--strict"]);
    // Served, the repo is a shallow remote: git's clone of it is shallow at the same
    // commit, as a clone of a shallow git repository is.
    {
        let server = crate::serve::Server::start(&work, &[]);
        let clones = tempfile::tempdir().unwrap();
        let clone = clones.path().join("tip");
        git_ok(
            clones.path(),
            &["clone", "-q", &server.repo("tip"), clone.to_str().unwrap()],
        );
        assert_eq!(git_ok(&clone, &["rev-parse", "--is-shallow-repository"]).trim(), "true");
        assert_eq!(git_ok(&clone, &["rev-list", "--count", "HEAD"]).trim(), "1");
        git_ok(&clone, &["fsck", "--strict"]);
        assert_eq!(
            std::fs::read_to_string(clone.join("turn-5.md")).unwrap(),
            "only in turn 5\n"
        );
    }
    assert_eq!(
        work.run(&["--repo", "tip", "cat", "turn-5.md"]).ok(),
        "only in turn 5\n"
    );

    // Two more commits arrive at depth 1: the new tip's parent is the old one, so only
    // the old boundary stays listed.
    let more = tempfile::tempdir().unwrap();
    let m = more.path();
    git_ok(m, &["clone", "-q", remote.to_str().unwrap(), "."]);
    for n in 6..=7 {
        std::fs::write(m.join("notes.md"), format!("turn {n}\n")).unwrap();
        git_ok(m, &["add", "-A"]);
        git_ok(m, &["commit", "-q", "-m", &format!("turn {n}")]);
    }
    git_ok(m, &["push", "-q", "origin", "main"]);
    // At depth 1 the new tip's history does not reach the old one: not a fast-forward
    // anyone can prove, so it is refused and nothing changes.
    work.run(&["--repo", "tip", "fetch", &url, "main", "--depth", "1"])
        .fails(4, "non-fast-forward");
    assert_eq!(shallow_file(&work), std::slice::from_ref(&tip));
    // At depth 3 it does: the two new commits come with their parents, and only the old
    // boundary stays listed.
    let fetched = work.json(&["--repo", "tip", "fetch", &url, "main", "--depth", "3"]);
    let new_tip = git(&remote, &["rev-parse", "main"]).trim().to_owned();
    assert_eq!(fetched["refs"][0]["new"], new_tip.as_str(), "{fetched}");
    assert_eq!(shallow_file(&work), std::slice::from_ref(&tip));
    assert_eq!(log("tip").len(), 3);
    let ours = work.json(&["--repo", "tip", "log", "--path", "notes.md"]);
    assert_eq!(ours["commits"].as_array().map(Vec::len), Some(3), "{ours}");
    work.git(&["fsck", "--strict"]);

    // Up to date, a fetch at a depth deepens: the two commits before the boundary come,
    // the old entry goes (its parents are stored now), and the new boundary is listed.
    let deeper = work.json(&["--repo", "tip", "fetch", &url, "main", "--depth", "5"]);
    let third = git(&remote, &["rev-parse", "main~4"]).trim().to_owned();
    assert_eq!(deeper["shallow"], serde_json::json!([third]), "{deeper}");
    assert_eq!(shallow_file(&work), std::slice::from_ref(&third));
    assert_eq!(log("tip").len(), 5);
    work.git(&["fsck", "--strict"]);

    // A push into another repo of the store (`snapgit serve`, git as the client) brings
    // the whole history: every parent is there now, so no entry is left to cut that
    // repo's history short for git (or for git gc).
    {
        let server = crate::serve::Server::start(&work, &[]);
        git_ok(m, &["push", "-q", &server.repo("pushed"), "main"]);
    }
    assert_eq!(shallow_file(&work), Vec::<String>::new());
    // (Through the native engine: the component took the steps above.)
    work.json(&["--engine", "native", "--repo", "whole", "import", &url]);
    assert!(
        !work.store().join("shallow").exists(),
        "an empty list is no file, as git keeps it"
    );
    assert_eq!(log("tip").len(), 7);
    assert_eq!(log("whole").len(), 7);
    work.git(&["fsck", "--strict"]);
    work.git(&["gc", "--quiet"]);
    work.git(&["fsck", "--strict"]);
    assert_eq!(log("tip").len(), 7);

    // Bad depths are refused before anything is asked.
    work.run(&["--repo", "bad", "import", &url, "--depth", "0"])
        .fails(2, "depth");
}

#[test]
fn partial_fetches_mark_the_pack_and_name_the_promisor_remote() {
    let root = tempfile::tempdir().unwrap();
    let server = GitServer::start(root.path());
    let remote = history(root.path(), "agent.git", 4);
    let url = format!("{}/agent.git", server.url);
    let work = Work::init();

    let imported = work.json(&[
        "--engine",
        "native",
        "--repo",
        "lazy",
        "import",
        &url,
        "--filter",
        "blob:none",
    ]);
    assert_eq!(imported["filter"], "blob:none", "{imported}");
    // Commits and trees only: 4 commits, 4 root trees.
    assert_eq!(imported["objects"], 8, "{imported}");
    let packs: Vec<String> = std::fs::read_dir(work.store().join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(packs.iter().any(|p| p.ends_with(".promisor")), "{packs:?}");
    let config = std::fs::read_to_string(work.store().join("config")).unwrap();
    assert!(
        config.contains(&format!("url = {url}")) && config.contains("promisor = true"),
        "{config}"
    );
    // git accepts the blobs left out, and knows where to get them.
    work.git(&["fsck", "--strict"]);
    let blob = git(&remote, &["rev-parse", "main:turn-1.md"]).trim().to_owned();
    let missing = Command::new("git")
        .current_dir(work.store())
        .env("GIT_NO_LAZY_FETCH", "1")
        .args(["cat-file", "-e", &blob])
        .status()
        .unwrap();
    assert!(!missing.success(), "the blob was left out");
    assert_eq!(
        work.git(&["cat-file", "-p", &blob]).trim(),
        "only in turn 1",
        "git fetches it on demand"
    );

    // snapgit's own reads fetch what they need from the promisor remote, in one request
    // per read, into another promisor pack; both engines.
    let has = |blob: &str| {
        Command::new("git")
            .current_dir(work.store())
            .env("GIT_NO_LAZY_FETCH", "1")
            .args(["cat-file", "-e", blob])
            .status()
            .unwrap()
            .success()
    };
    let second = git(&remote, &["rev-parse", "main:turn-2.md"]).trim().to_owned();
    assert!(!has(&second));
    assert_eq!(
        work.run(&["--repo", "lazy", "cat", "turn-2.md"]).ok(),
        "only in turn 2\n"
    );
    assert!(has(&second), "the blob is stored now");
    let diff = work.json(&[
        "--engine",
        "native",
        "--repo",
        "lazy",
        "diff",
        "main~1",
        "main",
        "--numstat",
    ]);
    assert_eq!(diff["files"].as_array().map(Vec::len), Some(2), "{diff}");
    work.git(&["fsck", "--strict"]);

    // A later fetch from the same remote keeps its filter, and the config is not repeated.
    let again = work.json(&["--repo", "lazy2", "import", &url]);
    assert_eq!(again["filter"], "blob:none", "{again}");
    let config = std::fs::read_to_string(work.store().join("config")).unwrap();
    assert_eq!(config.matches("promisor = true").count(), 1, "{config}");
    work.git(&["fsck", "--strict"]);

    // With the remote gone, a read of what it left out says so, and nothing changes.
    let away = remote.with_extension("away");
    std::fs::rename(&remote, &away).unwrap();
    work.run(&["--repo", "lazy", "cat", "turn-3.md"])
        .fails(6, "a partial fetch left it out");
    std::fs::rename(&away, &remote).unwrap();

    // Served, the partial repo is whole to a client: what the store lacks is fetched
    // from its promisor remote while the pack is made, as git's upload-pack does.
    {
        let snapgit = crate::serve::Server::start(&work, &[]);
        let clones = tempfile::tempdir().unwrap();
        let clone = clones.path().join("lazy");
        git_ok(
            clones.path(),
            &["clone", "-q", &snapgit.repo("lazy"), clone.to_str().unwrap()],
        );
        assert_eq!(git_ok(&clone, &["rev-list", "--count", "HEAD"]).trim(), "4");
        git_ok(&clone, &["fsck", "--strict"]);
        assert_eq!(
            std::fs::read_to_string(clone.join("turn-4.md")).unwrap(),
            "only in turn 4\n"
        );
    }

    // Only blob filters.
    work.run(&["--repo", "bad", "import", &url, "--filter", "tree:0"])
        .fails(2, "filter");

    drop(server);
}
