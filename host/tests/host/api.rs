//! The JSON API of `snapgit serve`, in process: every route's normal path, checked
//! against real git reading the store; every error as problem+json with core's code; bad
//! bodies, names, paths and tokens refused with the store left as it was; and the OpenAPI
//! document naming every route the router serves.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use serde_json::{Value, json};
use snapgit_host::{
    serve::{self, Config, Tokens},
    storage::fs::FsStorage,
};
use tempfile::TempDir;
use tower::ServiceExt as _;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Server {
    store: TempDir,
    router: Router,
}

/// An answer: status, content type, headers of note, body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A success with this status; its JSON.
    #[track_caller]
    fn ok(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        if self.content_type == "application/json" {
            self.json()
        } else {
            Value::Null
        }
    }

    /// A problem+json with this status and code; its JSON.
    #[track_caller]
    fn problem(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.content_type, "application/problem+json", "{}", self.text());
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status.as_u16(), "{body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
        body
    }
}

fn me() -> Value {
    json!({ "name": "Agent", "email": "agent@example.com" })
}

impl Server {
    fn new() -> Server {
        Server::with(Config::default())
    }

    fn with(config: Config) -> Server {
        let store = tempfile::tempdir().unwrap();
        git(store.path(), &["init", "-q", "--bare"]);
        let router = serve::router(Arc::new(FsStorage::open(store.path()).unwrap()), None, config);
        Server { store, router }
    }

    fn dir(&self) -> &Path {
        self.store.path()
    }

    async fn send(&self, method: Method, uri: &str, token: Option<&str>, body: Body, content_type: &str) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.header(header::CONTENT_TYPE, content_type).body(body).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let etag = response
            .headers()
            .get(header::ETAG)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            content_type,
            etag,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(Method::GET, uri, None, Body::empty(), "application/json")
            .await
    }

    async fn post(&self, uri: &str, body: Value) -> Answer {
        self.send(
            Method::POST,
            uri,
            None,
            Body::from(body.to_string()),
            "application/json",
        )
        .await
    }

    async fn raw(&self, method: Method, uri: &str, body: &str) -> Answer {
        self.send(method, uri, None, Body::from(body.to_owned()), "application/json")
            .await
    }

    /// The repo `agent` with `notes.md` on `main`.
    async fn agent(&self) -> String {
        let created = self
            .post(
                "/v1/repos",
                json!({ "repo": "agent", "author": me(), "message": "first",
                        "files": [{ "type": "put", "path": "notes.md", "data": "one\n" }] }),
            )
            .await
            .ok(StatusCode::CREATED);
        created["created"]["commit"].as_str().unwrap().to_owned()
    }

    async fn commit(&self, changes: Value, message: &str) -> Value {
        self.post(
            "/v1/repos/agent/branches/main/commits",
            json!({ "author": me(), "message": message, "changes": changes }),
        )
        .await
        .ok(StatusCode::OK)
    }

    fn head(&self) -> String {
        git(self.dir(), &["rev-parse", "refs/namespaces/agent/refs/heads/main"])
    }

    /// The store's refs and files, to compare before and after.
    fn snapshot(&self) -> (String, BTreeMap<PathBuf, u64>) {
        let refs = git(self.dir(), &["for-each-ref", "--format=%(refname) %(objectname)"]);
        let mut files = BTreeMap::new();
        let mut stack = vec![self.dir().to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    files.insert(entry.path().strip_prefix(self.dir()).unwrap().to_owned(), meta.len());
                }
            }
        }
        (refs, files)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_reads_history_and_diffs_agree_with_git() {
    let s = Server::new();
    let first = s.agent().await;
    let out = s
        .commit(
            json!([
                { "type": "put", "path": "notes.md", "data": { "text": "one\ntwo\n" } },
                { "type": "put", "path": "data/blob.bin", "data": { "base64": "AP8K" } },
            ]),
            "turn 1",
        )
        .await;
    let second = out["commit"].as_str().unwrap().to_owned();
    assert_eq!(out["parent"], first);
    assert_eq!(out["attempts"], 1);
    assert_eq!(s.head(), second);
    assert_eq!(
        git(s.dir(), &["cat-file", "-s", &format!("{second}:data/blob.bin")]),
        "3"
    );
    assert_eq!(git(s.dir(), &["log", "--format=%s", &second]), "turn 1\nfirst");

    // A file as bytes, its blob id as ETag; a match answers 304.
    let file = s.get("/v1/repos/agent/files/notes.md").await;
    assert_eq!(file.ok(StatusCode::OK), Value::Null);
    assert_eq!(file.body, b"one\ntwo\n");
    let blob = git(s.dir(), &["rev-parse", &format!("{second}:notes.md")]);
    assert_eq!(file.etag.as_deref(), Some(format!("\"{blob}\"").as_str()));
    let request = Request::get("/v1/repos/agent/files/notes.md?rev=main")
        .header(header::IF_NONE_MATCH, format!("\"{blob}\""))
        .body(Body::empty())
        .unwrap();
    let response = s.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    let old = s.get("/v1/repos/agent/files/notes.md?rev=main~1").await;
    assert_eq!(old.body, b"one\n");
    let nested = s.get("/v1/repos/agent/files/data/blob.bin").await;
    assert_eq!(nested.body, [0, 255, 10]);

    // Many files: text as text, bytes as base64.
    let many = s
        .post(
            "/v1/repos/agent/read",
            json!({ "paths": ["notes.md", "data/blob.bin"] }),
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(many["commit"], second);
    assert_eq!(many["files"][0]["file"]["data"], json!({ "text": "one\ntwo\n" }));
    assert_eq!(many["files"][1]["file"]["data"], json!({ "base64": "AP8K" }));
    let folder = s
        .post("/v1/repos/agent/read", json!({ "folder": "data", "rev": second }))
        .await
        .ok(StatusCode::OK);
    assert_eq!(folder["files"][0]["path"], "data/blob.bin");

    // Trees, as git lists them.
    let tree = s.get("/v1/repos/agent/tree").await.ok(StatusCode::OK);
    let paths: Vec<&str> = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    let listed = git(s.dir(), &["ls-tree", "-r", "--name-only", &second]);
    assert_eq!(paths, listed.lines().collect::<Vec<_>>());
    let level = s
        .get("/v1/repos/agent/tree/data?recursive=false")
        .await
        .ok(StatusCode::OK);
    assert_eq!(level["entries"][0]["path"], "data/blob.bin");

    // History, paged with the cursor, and filtered by path.
    let third = s.commit(json!([{ "type": "delete", "path": "data" }]), "turn 2").await["commit"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = s.get("/v1/repos/agent/log?limit=2").await.ok(StatusCode::OK);
    let ids: Vec<&str> = page["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.as_str(), second.as_str()]);
    let cursor = page["next"].as_str().unwrap();
    let rest = s
        .get(&format!("/v1/repos/agent/log?limit=2&cursor={cursor}"))
        .await
        .ok(StatusCode::OK);
    assert_eq!(rest["commits"][0]["id"], first);
    assert_eq!(rest["next"], Value::Null);
    let by_path = s.get("/v1/repos/agent/log?path=data").await.ok(StatusCode::OK);
    assert_eq!(by_path["commits"].as_array().unwrap().len(), 2);

    // Show and diff, beside git's own.
    let show = s
        .get(&format!("/v1/repos/agent/commits/{second}"))
        .await
        .ok(StatusCode::OK);
    assert_eq!(show["commit"]["message"], "turn 1\n");
    assert_eq!(show["diff"]["files"].as_array().unwrap().len(), 2);
    let range = format!("from={first}&to={third}");
    for (format, args) in [
        ("name-status", vec!["diff", "--name-status", &first, &third]),
        ("numstat", vec!["diff", "--numstat", &first, &third]),
    ] {
        let text = s.get(&format!("/v1/repos/agent/diff?{range}&format={format}")).await;
        assert_eq!(text.status, StatusCode::OK);
        assert_eq!(text.text().trim_end(), git(s.dir(), &args), "{format}");
    }
    let patch = s.get(&format!("/v1/repos/agent/diff?{range}&format=patch")).await;
    assert_eq!(patch.content_type, "text/x-diff");
    assert!(patch.text().contains("+two"), "{}", patch.text());
    let json = s.get("/v1/repos/agent/diff?from=main~2").await.ok(StatusCode::OK);
    assert_eq!(json["from"], first);
    assert_eq!(json["to"], third);

    // A restore brings the first commit's tree back as a new commit.
    let restored = s
        .post(
            "/v1/repos/agent/branches/main/restore",
            json!({ "rev": "main~2", "author": me() }),
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(restored["parent"], third);
    assert_eq!(s.get("/v1/repos/agent/files/notes.md").await.body, b"one\n");
    assert_eq!(
        git(s.dir(), &["rev-parse", "refs/namespaces/agent/refs/heads/main^{tree}"]),
        git(s.dir(), &["rev-parse", &format!("{first}^{{tree}}")])
    );
    git(s.dir(), &["fsck", "--strict", "--no-dangling"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn repos_branches_upkeep_and_streamed_commits() {
    let s = Server::new();
    s.agent().await;
    assert_eq!(
        s.get("/v1/repos").await.ok(StatusCode::OK),
        json!({ "repos": ["agent"] })
    );
    let created = s
        .post("/v1/repos/agent/branches", json!({ "branch": "draft" }))
        .await
        .ok(StatusCode::CREATED);
    assert_eq!(created["branchCreated"], s.head());
    assert_eq!(
        s.get("/v1/repos/agent/branches").await.ok(StatusCode::OK),
        json!({ "branches": ["draft", "main"] })
    );
    assert_eq!(
        s.get("/v1/repos/agent/branches/draft").await.ok(StatusCode::OK),
        json!({ "head": s.head() })
    );

    // NDJSON: the request on the first line, a change per line after.
    let ndjson = format!(
        "{}\n{}\n{}\n",
        json!({ "author": me(), "message": "streamed" }),
        json!({ "type": "put", "path": "a.md", "data": "a\n" }),
        json!({ "type": "put", "path": "b.md", "data": { "base64": "Yg==" } }),
    );
    let out = s
        .send(
            Method::POST,
            "/v1/repos/agent/branches/draft/commits",
            None,
            Body::from(ndjson),
            "application/x-ndjson",
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(out["files"].as_array().unwrap().len(), 2);
    assert_eq!(
        git(s.dir(), &["show", "refs/namespaces/agent/refs/heads/draft:b.md"]),
        "b"
    );
    let deleted = s
        .send(
            Method::DELETE,
            "/v1/repos/agent/branches/draft",
            None,
            Body::empty(),
            "",
        )
        .await
        .ok(StatusCode::OK);
    assert!(deleted["deleted"].is_array(), "{deleted}");

    for turn in 0..3 {
        s.commit(
            json!([{ "type": "put", "path": "t.md", "data": format!("{turn}") }]),
            "turn",
        )
        .await;
    }
    let pruned = s
        .post(
            "/v1/repos/agent/branches/main/prune",
            json!({ "retention": { "keepLast": 2 } }),
        )
        .await;
    let pruned = pruned.ok(StatusCode::OK);
    assert_eq!(
        git(
            s.dir(),
            &["rev-list", "--count", "refs/namespaces/agent/refs/heads/main"]
        ),
        "2",
        "{pruned}"
    );

    let footprint = s.get("/v1/footprint").await.ok(StatusCode::OK);
    assert!(footprint.is_object(), "{footprint}");
    s.post("/v1/gc", json!({ "graceMs": 0 })).await.ok(StatusCode::OK);
    s.post("/v1/compact", json!({ "graceMs": 0 })).await.ok(StatusCode::OK);
    assert_eq!(s.get("/v1/repos/agent/files/t.md").await.body, b"2");
    git(s.dir(), &["fsck", "--strict", "--no-dangling"]);

    let gone = s
        .send(Method::DELETE, "/v1/repos/agent", None, Body::empty(), "")
        .await
        .ok(StatusCode::OK);
    assert!(gone["deleted"].is_array(), "{gone}");
    assert_eq!(s.get("/v1/repos").await.ok(StatusCode::OK), json!({ "repos": [] }));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_problem_json_with_cores_code_and_writes_nothing() {
    let s = Server::with(Config {
        max_request_bytes: 4096,
        ..Config::default()
    });
    let first = s.agent().await;
    let commits = "/v1/repos/agent/branches/main/commits";
    let before = s.snapshot();
    let cases: Vec<(Answer, StatusCode, &str)> = vec![
        (s.raw(Method::POST, commits, "{bad").await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (s.raw(Method::POST, commits, "[1, 2]").await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (
            s.post(commits, json!({ "author": me(), "message": 5, "changes": [] })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "changes": [{ "type": "put", "path": "../x", "data": "a" }] }))
                .await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "changes": [{ "type": "put", "path": ".git/config", "data": "a" }] }))
                .await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "repo": "other", "changes": [] })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post(commits, json!({ "author": { "name": "A<", "email": "a@x" }, "message": "m", "changes": [{ "type": "put", "path": "n.md", "data": "n" }] }))
                .await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "changes": [{ "type": "put", "path": "big", "data": "x".repeat(5000) }] }))
                .await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "LIMIT",
        ),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "expectedHead": "1".repeat(40), "changes": [{ "type": "put", "path": "a", "data": "a" }] }))
                .await,
            StatusCode::PRECONDITION_FAILED,
            "HEAD_MOVED",
        ),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "changes": [] })).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "EMPTY_COMMIT",
        ),
        (s.post("/v1/cap", json!({})).await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (
            s.post("/v1/cap", json!({ "maxBytes": 1, "keepLast": 0 })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "changes": [{ "type": "rename", "from": "nope.md", "to": "x.md" }] }))
                .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            s.post("/v1/repos/agent/branches/nope/commits", json!({ "author": me(), "message": "m", "changes": [{ "type": "put", "path": "n.md", "data": "n" }] }))
                .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            s.post("/v1/repos/Bad%20Name/branches/main/commits", json!({ "author": me(), "message": "m", "changes": [{ "type": "put", "path": "n.md", "data": "n" }] }))
                .await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post("/v1/repos", json!({ "repo": "agent", "author": me() })).await,
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
        ),
        (
            s.post("/v1/repos", json!({ "repo": "a/../b", "author": me() })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (s.post("/v1/repos", json!({ "author": me() })).await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (
            s.post("/v1/repos/agent/branches", json!({ "branch": "main" })).await,
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
        ),
        (
            s.post("/v1/repos/agent/branches", json!({ "branch": "a..b" })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post("/v1/repos/agent/branches/main/restore", json!({ "author": me() })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post("/v1/repos/agent/branches/main/restore", json!({ "rev": "nope", "author": me() })).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            s.post("/v1/repos/agent/branches/main/prune", json!({ "retention": { "keepLast": 0 } })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (s.get("/v1/repos/agent/files/nope.md").await, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (s.get("/v1/repos/agent/files/notes.md?rev=nope").await, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (s.get("/v1/repos/agent/files/notes.md?ref=main").await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (s.get("/v1/repos/nope/files/notes.md").await, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (s.get("/v1/repos/agent/tree/nope").await, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (s.get("/v1/repos/agent/log?limit=x").await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (s.get("/v1/repos/agent/log?cursor=zz").await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (s.get("/v1/repos/agent/diff?format=html").await, StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        (s.get("/v1/repos/agent/commits/main~9").await, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            s.post("/v1/repos/agent/read", json!({ "paths": ["notes.md"], "folder": "x" })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post("/v1/repos/agent/read", json!({ "paths": "notes.md" })).await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (s.get("/v1/nope").await, StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            s.post(commits, json!({ "author": me(), "message": "m", "expected_head": first, "changes": [{ "type": "put", "path": "a", "data": "a" }] }))
                .await,
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
        ),
        (
            s.post("/v1/repos/agent/branches", json!({ "branch": "b", "start": { "commit": "1".repeat(40) } })).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            s.post("/v1/repos/agent/branches", json!({ "branch": "b", "start": { "rev": "main~5" } })).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ];
    for (i, (answer, status, code)) in cases.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {i}: {}", answer.text());
        let body = answer.problem(*status, code);
        assert!(body["type"].as_str().unwrap().ends_with(code), "case {i}: {body}");
    }
    // The offending value is named.
    let bad_path = &cases[3].0.json();
    assert_eq!(bad_path["value"], "../x");
    let moved = &cases[8].0.json();
    assert_eq!(moved["actual"], first);
    assert_eq!(s.snapshot(), before, "a refused request changed the store");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_scope_repos_and_access() {
    let tokens = Tokens::from_json(
        r#"{"tokens": [
            {"token": "reader-0123456789abcdef", "repos": ["agent"], "access": "read"},
            {"token": "writer-0123456789abcdef", "repos": ["agent"], "access": "write"},
            {"token": "admin-0123456789abcdef0", "repos": ["*"], "access": "admin"}
        ]}"#,
        "test",
    )
    .unwrap();
    let s = Server::with(Config {
        tokens,
        ..Config::default()
    });
    let admin = Some("admin-0123456789abcdef0");
    let body = json!({ "repo": "agent", "author": me(), "files": [{ "type": "put", "path": "a.md", "data": "a" }] });
    s.send(
        Method::POST,
        "/v1/repos",
        admin,
        Body::from(body.to_string()),
        "application/json",
    )
    .await
    .ok(StatusCode::CREATED);
    let before = s.snapshot();
    let commit = json!({ "author": me(), "message": "m", "changes": [{ "type": "put", "path": "b.md", "data": "b" }] })
        .to_string();
    let commits = "/v1/repos/agent/branches/main/commits";
    let refused = [
        (
            s.send(
                Method::POST,
                commits,
                None,
                Body::from(commit.clone()),
                "application/json",
            )
            .await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            s.send(
                Method::POST,
                commits,
                Some("unknown-0123456789abcdef"),
                Body::from(commit.clone()),
                "application/json",
            )
            .await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            s.send(
                Method::POST,
                commits,
                Some("reader-0123456789abcdef"),
                Body::from(commit.clone()),
                "application/json",
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            s.send(
                Method::DELETE,
                "/v1/repos/agent",
                Some("writer-0123456789abcdef"),
                Body::empty(),
                "",
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            s.send(
                Method::POST,
                "/v1/gc",
                Some("writer-0123456789abcdef"),
                Body::from("{}"),
                "application/json",
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            s.send(
                Method::GET,
                "/v1/repos/other/files/a.md",
                Some("reader-0123456789abcdef"),
                Body::empty(),
                "",
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
        (
            s.send(Method::GET, "/v1/repos", None, Body::empty(), "").await,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (answer, status) in &refused {
        let code = if *status == StatusCode::UNAUTHORIZED {
            "UNAUTHORIZED"
        } else {
            "FORBIDDEN"
        };
        answer.problem(*status, code);
    }
    assert_eq!(s.snapshot(), before, "a refused request changed the store");
    let read = s
        .send(
            Method::GET,
            "/v1/repos/agent/files/a.md",
            Some("reader-0123456789abcdef"),
            Body::empty(),
            "",
        )
        .await;
    assert_eq!(read.body, b"a");
    s.send(
        Method::POST,
        commits,
        Some("writer-0123456789abcdef"),
        Body::from(commit),
        "application/json",
    )
    .await
    .ok(StatusCode::OK);
    let listed = s
        .send(
            Method::GET,
            "/v1/repos",
            Some("reader-0123456789abcdef"),
            Body::empty(),
            "",
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(listed, json!({ "repos": ["agent"] }));
}

/// A concrete URL and a body that succeeds for each route of the table, in an order in
/// which each finds what it needs.
fn example(id: &str, path: &str) -> (String, Option<Value>) {
    let url = path
        .replace("{repo}", "agent")
        .replace("{branch}", if id == "deleteBranch" { "draft" } else { "main" })
        .replace("{path}", if id == "listTree" { "notes" } else { "notes/a.md" })
        .replace("{rev}", "main");
    let body = match id {
        "createRepo" => Some(
            json!({ "repo": "agent", "author": me(), "files": [{ "type": "put", "path": "notes/a.md", "data": "a" }] }),
        ),
        "createBranch" => Some(json!({ "branch": "draft" })),
        "commit" => Some(
            json!({ "author": me(), "message": "m", "changes": [{ "type": "put", "path": "notes/b.md", "data": "b" }] }),
        ),
        "restore" => Some(json!({ "rev": "main~1", "author": me() })),
        "prune" => Some(json!({ "retention": { "keepLast": 10 } })),
        "readFiles" => Some(json!({ "paths": ["notes/a.md"] })),
        "gc" | "compact" => Some(json!({})),
        "cap" => Some(json!({ "maxBytes": 1_000_000_000 })),
        _ => None,
    };
    (url, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_names_every_route_the_router_serves() {
    let s = Server::new();
    let document = s.get("/openapi.json").await.ok(StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((
                method.to_uppercase(),
                path.clone(),
                operation["operationId"].as_str().unwrap().to_owned(),
            ));
        }
    }
    // Every operation is served: a request of its method to its path reaches its handler
    // and succeeds (in an order where each finds what it needs; deletes last).
    let order = [
        "createRepo",
        "listRepos",
        "createBranch",
        "listBranches",
        "readHead",
        "commit",
        "restore",
        "readFile",
        "readFiles",
        "listRoot",
        "listTree",
        "log",
        "show",
        "diff",
        "prune",
        "footprint",
        "gc",
        "compact",
        "cap",
        "deleteBranch",
        "deleteRepo",
    ];
    assert_eq!(documented.len(), order.len(), "{documented:?}");
    for id in order {
        let (method, path, _) = documented
            .iter()
            .find(|(_, _, op)| op == id)
            .unwrap_or_else(|| panic!("{id} is not documented"));
        let (url, body) = example(id, path);
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let answer = s
            .send(method.parse().unwrap(), &url, None, body, "application/json")
            .await;
        assert!(
            answer.status.is_success(),
            "{id}: {method} {url}: {} {}",
            answer.status,
            answer.text()
        );
    }
    // Every schema a document refers to is in it.
    let text = document.to_string();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(schemas.contains_key(name), "{name} is referred to but not defined");
    }
    // Descriptions come from core's doc comments, without rustdoc's links to Rust items.
    assert!(text.contains("Error::HeadMoved"), "core's docs are the descriptions");
    assert!(
        !text.contains("[`") && !text.contains("](Self::"),
        "a rustdoc link is left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics() {
    let s = Server::new();
    assert_eq!(s.get("/healthz").await.ok(StatusCode::OK), json!({ "status": "ok" }));
    s.agent().await;
    s.get("/v1/repos/agent/files/nope").await;
    let metrics = s.get("/metrics").await;
    let text = metrics.text();
    for line in [
        "snapgit_http_requests_total{method=\"POST\",route=\"/v1/repos\",status=\"201\"} 1",
        "snapgit_operations_total{operation=\"create-repo\",outcome=\"ok\"} 1",
        "snapgit_operations_total{operation=\"read-file\",outcome=\"NOT_FOUND\"} 1",
        "snapgit_storage_calls_total{call=\"cas_ref\"} 1",
    ] {
        assert!(text.contains(line), "{line} is not in\n{text}");
    }
    assert!(text.contains("snapgit_http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_commits_to_one_branch_all_land() {
    let s = Arc::new(Server::new());
    s.agent().await;
    let writers = 32;
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.post(
                    "/v1/repos/agent/branches/main/commits",
                    json!({ "author": me(), "message": format!("writer {i}"),
                            "changes": [{ "type": "put", "path": format!("w/{i}.md"), "data": "x" }] }),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        let answer = task.await.unwrap();
        answer.ok(StatusCode::OK);
    }
    let count = git(
        s.dir(),
        &["rev-list", "--count", "refs/namespaces/agent/refs/heads/main"],
    );
    assert_eq!(count, (writers + 1).to_string());
    let files = git(
        s.dir(),
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "refs/namespaces/agent/refs/heads/main",
            "w",
        ],
    );
    assert_eq!(files.lines().count(), writers);
    git(s.dir(), &["fsck", "--strict", "--no-dangling"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_write_policy_holds_for_api_commits() {
    let policy = snapgit_core::policy::Policy::new().exclude(["*.env"]).unwrap();
    let s = Server::with(Config {
        policy,
        ..Config::default()
    });
    s.agent().await;
    let before = s.snapshot();
    let commits = "/v1/repos/agent/branches/main/commits";
    for changes in [
        json!([{ "type": "put", "path": "secrets/x.env", "data": "k=v" }]),
        json!([{ "type": "rename", "from": "notes.md", "to": "notes.env" }]),
    ] {
        let refused = s
            .post(commits, json!({ "author": me(), "message": "m", "changes": changes }))
            .await;
        let body = refused.problem(StatusCode::UNPROCESSABLE_ENTITY, "POLICY");
        assert_eq!(body["pattern"], "*.env", "{body}");
        // A request's own policy cannot undo the server's.
        let undo = s
            .post(
                commits,
                json!({ "author": me(), "message": "m", "changes": changes, "policy": { "exclude": ["!*.env"] } }),
            )
            .await;
        undo.problem(StatusCode::UNPROCESSABLE_ENTITY, "POLICY");
    }
    assert_eq!(s.snapshot(), before, "a refused commit changed the store");
    s.commit(json!([{ "type": "put", "path": "ok.md", "data": "ok" }]), "allowed")
        .await;
    let branched = s
        .post(
            "/v1/repos/agent/branches",
            json!({ "branch": "back", "start": { "rev": "main~1" } }),
        )
        .await
        .ok(StatusCode::CREATED);
    assert_eq!(
        branched["branchCreated"],
        git(s.dir(), &["rev-parse", "refs/namespaces/agent/refs/heads/main~1"])
    );
    let mode = s.get("/v1/repos/agent/files/ok.md").await;
    assert_eq!(mode.status, StatusCode::OK);
}
