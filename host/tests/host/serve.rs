//! `snapgit serve` against hostile clients, in process: malformed pkt-lines, oversized
//! and gzip-bomb bodies, v2 requests the server does not serve, wants of another repo's
//! objects, floods of haves, and pushes of truncated, corrupt, thin or hostile packs, of
//! commits with missing parents, of refs a push may not name, with stale old ids, and rewinds;
//! requests without a token, or with one that does not allow them.
//!
//! Every case must get a clear refusal — an HTTP error, an `ERR` line, or a report-status
//! that fails the unpack or the ref — within a deadline, and must leave the store as it
//! was: the same refs (read by `git for-each-ref`) and the same files. Each hostile push
//! is a small change to one that is accepted (`a_valid_push_is_accepted`), so each test
//! fails if the check it names is gone.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Request, StatusCode, header},
};
use snapgit_core::{
    Limits, ObjectId,
    remote::pkt::{Packet, Reader},
};
use snapgit_host::{
    serve::{self, Config, Tokens},
    storage::fs::FsStorage,
};
use tempfile::TempDir;
use tower::ServiceExt as _;

/// No request may take longer than this (the slowest, 100,000 haves, takes a second or
/// two in a debug build); it guards against a hang, it measures nothing.
const DEADLINE: Duration = Duration::from_secs(120);

const NULL: &str = "0000000000000000000000000000000000000000";

/// `git <args>` in `dir`, with a fixed identity and dates, `stdin` fed; its stdout as
/// bytes, or a panic with its stderr.
fn git_bytes(dir: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Git")
        .env("GIT_AUTHOR_EMAIL", "git@example.com")
        .env("GIT_COMMITTER_NAME", "Git")
        .env("GIT_COMMITTER_EMAIL", "git@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || input.write_all(&stdin));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(git_bytes(dir, args, b"")).unwrap().trim().to_owned()
}

fn git_in(dir: &Path, args: &[&str], stdin: &str) -> String {
    String::from_utf8(git_bytes(dir, args, stdin.as_bytes()))
        .unwrap()
        .trim()
        .to_owned()
}

/// A store with two repos, made by git: `a` (two commits on main) and `b` (one unrelated
/// commit), and the git repository they came from, where pushes are built.
struct Fixture {
    store: TempDir,
    src: TempDir,
    /// `a`'s main, and its parent.
    a_main: String,
    a_first: String,
    /// `b`'s main.
    b_main: String,
    /// A blob only `b` reaches.
    b_blob: String,
}

/// A file of 200 lines, for deltas.
fn big(changed: usize) -> String {
    (0..200)
        .map(|i| {
            if i == changed {
                format!("line {i} was changed\n")
            } else {
                format!("line {i} of a file long enough for git to store it as a delta\n")
            }
        })
        .collect()
}

impl Fixture {
    fn new() -> Fixture {
        let store = tempfile::tempdir().unwrap();
        git(store.path(), &["init", "-q", "--bare", "."]);
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        git(s, &["init", "-q", "-b", "main", "."]);
        std::fs::write(s.join("a.md"), "one\n").unwrap();
        std::fs::create_dir(s.join("notes")).unwrap();
        std::fs::write(s.join("notes/big.md"), big(usize::MAX)).unwrap();
        git(s, &["add", "-A"]);
        git(s, &["commit", "-q", "-m", "first"]);
        std::fs::write(s.join("a.md"), "two\n").unwrap();
        git(s, &["commit", "-q", "-am", "second"]);
        git(s, &["checkout", "-q", "--orphan", "other"]);
        git(s, &["rm", "-q", "-rf", "."]);
        std::fs::write(s.join("secret.md"), "only repo b has this\n").unwrap();
        git(s, &["add", "-A"]);
        git(s, &["commit", "-q", "-m", "b's own"]);
        git(s, &["checkout", "-q", "main"]);
        let to = store.path().to_str().unwrap();
        git(
            s,
            &[
                "push",
                "-q",
                to,
                "main:refs/namespaces/a/refs/heads/main",
                "other:refs/namespaces/b/refs/heads/main",
            ],
        );
        Fixture {
            a_main: git(s, &["rev-parse", "main"]),
            a_first: git(s, &["rev-parse", "main~1"]),
            b_main: git(s, &["rev-parse", "other"]),
            b_blob: git(s, &["rev-parse", "other:secret.md"]),
            store,
            src,
        }
    }

    fn src(&self) -> &Path {
        self.src.path()
    }

    fn router(&self, config: Config) -> Router {
        let storage = FsStorage::open(self.store.path()).unwrap();
        serve::router(Arc::new(storage), None, config)
    }

    /// The store's refs and files (path and size), to compare before and after.
    fn snapshot(&self) -> (String, BTreeMap<PathBuf, u64>) {
        let refs = git(
            self.store.path(),
            &["for-each-ref", "--format=%(refname) %(objectname)"],
        );
        let mut files = BTreeMap::new();
        let mut stack = vec![self.store.path().to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    let path = entry.path().strip_prefix(self.store.path()).unwrap().to_owned();
                    files.insert(path, meta.len());
                }
            }
        }
        (refs, files)
    }

    /// A blob written to the source repository.
    fn blob(&self, content: &[u8]) -> String {
        String::from_utf8(git_bytes(self.src(), &["hash-object", "-w", "--stdin"], content))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// A tree of blobs by name (any name: `git mktree` checks none).
    fn tree(&self, entries: &[(&str, &str)]) -> String {
        let listing: String = entries
            .iter()
            .map(|(name, blob)| format!("100644 blob {blob}\t{name}\n"))
            .collect();
        git_in(self.src(), &["mktree", "--missing"], &listing)
    }

    /// A commit of `tree` on `parent`, written as given (the parent need not exist).
    fn commit(&self, tree: &str, parent: &str, message: &str) -> String {
        let text = format!(
            "tree {tree}\nparent {parent}\nauthor Git <git@example.com> 1700000100 +0000\ncommitter Git <git@example.com> 1700000100 +0000\n\n{message}\n"
        );
        git_in(
            self.src(),
            &["hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
            &text,
        )
    }

    /// A commit on `a`'s main changing `a.md` to `content`.
    fn child_of_main(&self, content: &str) -> (String, Vec<String>) {
        let blob = self.blob(content.as_bytes());
        let notes = git(self.src(), &["rev-parse", "main:notes"]);
        let listing = format!("100644 blob {blob}\ta.md\n040000 tree {notes}\tnotes\n");
        let tree = git_in(self.src(), &["mktree"], &listing);
        let commit = self.commit(&tree, &self.a_main, "from a client");
        (commit.clone(), vec![commit, tree, blob])
    }

    /// A pack of exactly these objects, as `git pack-objects` writes it.
    fn pack(&self, objects: &[String]) -> Vec<u8> {
        let list: String = objects.iter().map(|o| format!("{o}\n")).collect();
        git_bytes(self.src(), &["pack-objects", "--stdout", "-q"], list.as_bytes())
    }

    /// Serve `request`, within the deadline, and check that the store did not change.
    async fn refused(&self, router: &Router, request: Request<Body>) -> Answer {
        let before = self.snapshot();
        let answer = call(router, request).await;
        assert_eq!(
            self.snapshot(),
            before,
            "a refused request changed the store: {answer:?}"
        );
        answer
    }
}

/// A response: status, the `WWW-Authenticate` header, the body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: Bytes,
}

impl Answer {
    /// The body's pkt-lines' payloads, as text, up to the first error or flush-less end.
    fn lines(&self) -> Vec<String> {
        Reader::new(&self.body)
            .map_while(Result::ok)
            .filter_map(|p| match p {
                Packet::Data(d) => Some(String::from_utf8_lossy(d).trim_end().to_owned()),
                _ => None,
            })
            .collect()
    }

    /// A 200 whose body is one `ERR` line holding `says`.
    #[track_caller]
    fn err_line(&self, says: &str) {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        let lines = self.lines();
        assert!(
            lines.len() == 1 && lines[0].starts_with("ERR ") && lines[0].contains(says),
            "expected one ERR line saying {says:?}: {lines:?}"
        );
    }

    /// An HTTP error with `status` whose text holds `says`.
    #[track_caller]
    fn http_error(&self, status: StatusCode, says: &str) {
        let text = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "{text}");
        assert!(text.contains(says), "expected {says:?}: {text}");
    }

    /// A report-status: `unpack` as `unpack` says (`ok` or a reason), and each ref's
    /// line.
    #[track_caller]
    fn report(&self, unpack: &str, refs: &[&str]) {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        let lines = self.lines();
        assert!(
            lines
                .first()
                .is_some_and(|l| l.starts_with("unpack ") && l.contains(unpack)),
            "expected unpack {unpack:?}: {lines:?}"
        );
        assert_eq!(lines.len(), refs.len() + 1, "{lines:?}");
        for (line, expected) in lines[1..].iter().zip(refs) {
            assert!(line.starts_with(expected), "expected {expected:?}: {lines:?}");
        }
    }
}

async fn call(router: &Router, request: Request<Body>) -> Answer {
    let response = tokio::time::timeout(DEADLINE, router.clone().oneshot(request))
        .await
        .expect("the server answers within the deadline")
        .unwrap();
    let status = response.status();
    let www_authenticate = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Answer {
        status,
        www_authenticate,
        body,
    }
}

fn pkt(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(format!("{:04x}", line.len() + 4).as_bytes());
    out.extend_from_slice(line.as_bytes());
}

fn upload(repo: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(format!("/{repo}.git/git-upload-pack"))
        .header("git-protocol", "version=2")
        .header(header::CONTENT_TYPE, "application/x-git-upload-pack-request")
        .body(body.into())
        .unwrap()
}

fn receive(repo: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(format!("/{repo}.git/git-receive-pack"))
        .header(header::CONTENT_TYPE, "application/x-git-receive-pack-request")
        .body(body.into())
        .unwrap()
}

/// A v2 `fetch` of `wants` with `haves`, done.
fn fetch(wants: &[&str], haves: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    pkt(&mut body, "command=fetch\n");
    pkt(&mut body, "object-format=sha1\n");
    body.extend_from_slice(b"0001");
    pkt(&mut body, "ofs-delta\n");
    for want in wants {
        pkt(&mut body, &format!("want {want}\n"));
    }
    for have in haves {
        pkt(&mut body, &format!("have {have}\n"));
    }
    pkt(&mut body, "done\n");
    body.extend_from_slice(b"0000");
    body
}

/// A push: `(old, new, name)` commands with report-status, then `pack`.
fn push(commands: &[(&str, &str, &str)], pack: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (old, new, name)) in commands.iter().enumerate() {
        let caps = if i == 0 { "\0report-status" } else { "" };
        pkt(&mut body, &format!("{old} {new} {name}{caps}\n"));
    }
    body.extend_from_slice(b"0000");
    body.extend_from_slice(pack);
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Recompute a pack's trailing checksum after changing it.
fn reseal(pack: &mut [u8]) {
    let body = pack.len() - 20;
    let mut hasher = gix_hash::hasher(gix_hash::Kind::Sha1);
    hasher.update(&pack[..body]);
    let sum = hasher.try_finalize().unwrap();
    pack[body..].copy_from_slice(sum.as_slice());
}

/// A pack of raw entries, sealed.
fn raw_pack(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut pack = b"PACK".to_vec();
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    pack.extend(entries.iter().flatten());
    pack.extend_from_slice(&[0; 20]);
    reseal(&mut pack);
    pack
}

/// An entry: its type and size header, then `data` as it is.
fn entry(kind: u8, size: u64, data: &[u8]) -> Vec<u8> {
    let mut out = vec![(kind << 4) | (size & 0x0f) as u8];
    let mut rest = size >> 4;
    while rest > 0 {
        *out.last_mut().unwrap() |= 0x80;
        out.push((rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.extend_from_slice(data);
    out
}

/// A delta's size: seven bits a byte, least significant first.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// What `git index-pack` says of a pack.
fn git_index_pack_says(pack: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "--bare", "."]);
    let mut child = Command::new("git")
        .current_dir(dir.path())
        .args(["index-pack", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pack).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_valid_push_and_fetch_are_served() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let (commit, objects) = f.child_of_main("three\n");
    let body = push(&[(&f.a_main, &commit, "refs/heads/main")], &f.pack(&objects));
    call(&router, receive("a", body))
        .await
        .report("ok", &["ok refs/heads/main"]);
    assert_eq!(
        git(f.store.path(), &["rev-parse", "refs/namespaces/a/refs/heads/main"]),
        commit
    );
    git(f.store.path(), &["fsck", "--strict", "--no-dangling"]);

    // A push of a whole history to a repo that does not exist creates it.
    let blob = f.blob(b"a new repo\n");
    let tree = f.tree(&[("README.md", &blob)]);
    let text = format!(
        "tree {tree}\nauthor Git <git@example.com> 1700000100 +0000\ncommitter Git <git@example.com> 1700000100 +0000\n\nroot\n"
    );
    let root = git_in(f.src(), &["hash-object", "-t", "commit", "-w", "--stdin"], &text);
    let body = push(
        &[(NULL, &root, "refs/heads/main")],
        &f.pack(&[root.clone(), tree, blob]),
    );
    call(&router, receive("c", body))
        .await
        .report("ok", &["ok refs/heads/main"]);
    assert_eq!(
        git(f.store.path(), &["rev-parse", "refs/namespaces/c/refs/heads/main"]),
        root
    );

    // A blob repo a reaches, wanted by id (a partial clone's fetch), is served.
    let blob = git(f.src(), &["rev-parse", "main:a.md"]);
    let answer = call(&router, upload("a", fetch(&[&blob], &[]))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.lines().iter().any(|l| l == "packfile"), "{:?}", answer.lines());
}

#[tokio::test]
async fn malformed_pkt_lines_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    // What each service says: upload-pack reads a v2 command, receive-pack commands.
    let cases: [(&[u8], &str, &str); 6] = [
        (
            b"zzzzcommand=ls-refs\n0000",
            "not four hex digits",
            "not four hex digits",
        ),
        (b"0003", "reserved", "reserved"),
        (
            b"0030command=ls-refs\n",
            "ends inside the packet",
            "ends inside the packet",
        ),
        (b"00", "ends inside the packet", "ends inside the packet"),
        (b"0014command=ls-refs\n0001", "flush", "is not <old> <new> <ref>"),
        (b"", "command", "command"),
    ];
    for (body, upload_says, receive_says) in cases {
        f.refused(&router, upload("a", body.to_vec()))
            .await
            .err_line(upload_says);
        f.refused(&router, receive("a", body.to_vec()))
            .await
            .err_line(receive_says);
    }
    // A push's command without the flush that ends the commands.
    let mut unflushed = Vec::new();
    pkt(
        &mut unflushed,
        &format!("{NULL} {} refs/heads/x\0report-status\n", f.a_main),
    );
    f.refused(&router, receive("a", unflushed)).await.err_line("flush");
    // A line longer than a pkt-line may be (ffff: 65531 bytes of payload), and one that
    // fits but is longer than any line of the grammar.
    let mut long = b"ffff".to_vec();
    long.extend(std::iter::repeat_n(b'a', 0xffff - 4));
    f.refused(&router, upload("a", long.clone()))
        .await
        .err_line("longer than");
    f.refused(&router, receive("a", long)).await.err_line("longer than");
    let mut wide = Vec::new();
    pkt(&mut wide, "command=fetch\n");
    wide.extend_from_slice(b"0001");
    pkt(&mut wide, &format!("want {}\n", "a".repeat(60_000)));
    wide.extend_from_slice(b"0000");
    f.refused(&router, upload("a", wide))
        .await
        .err_line("invalid object id");
    let mut wide = Vec::new();
    pkt(
        &mut wide,
        &format!("{NULL} {} refs/heads/{}\n", f.a_main, "x".repeat(60_000)),
    );
    wide.extend_from_slice(b"0000");
    f.refused(&router, receive("a", wide)).await.err_line("");
}

#[tokio::test]
async fn oversized_and_gzip_bomb_bodies_are_refused() {
    let f = Fixture::new();
    let config = Config {
        max_request_bytes: 64 << 10,
        ..Config::default()
    };
    let router = f.router(config);
    let big_body = vec![b'0'; 100 << 10];
    let over = "over the server's limit of 65536 bytes";
    let answer = f.refused(&router, upload("a", big_body.clone())).await;
    answer.http_error(StatusCode::PAYLOAD_TOO_LARGE, over);
    f.refused(&router, receive("a", big_body.clone()))
        .await
        .http_error(StatusCode::PAYLOAD_TOO_LARGE, over);
    // A streamed body has no length to refuse up front: it is cut at the limit.
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..100).map(|_| Ok(Bytes::from(vec![b'0'; 1024]))).collect();
    let stream = Body::from_stream(futures::stream::iter(chunks));
    f.refused(&router, receive("a", stream))
        .await
        .http_error(StatusCode::PAYLOAD_TOO_LARGE, over);

    let gzipped = |body: Vec<u8>, service: fn(&str, Vec<u8>) -> Request<Body>| {
        let mut request = service("a", body);
        request
            .headers_mut()
            .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        request
    };
    let up = |repo: &str, body: Vec<u8>| upload(repo, body);
    let rp = |repo: &str, body: Vec<u8>| receive(repo, body);
    // Not gzip at all, and gzip cut short.
    for service in [up as fn(&str, Vec<u8>) -> Request<Body>, rp] {
        f.refused(&router, gzipped(b"not gzip".to_vec(), service))
            .await
            .http_error(StatusCode::BAD_REQUEST, "does not inflate");
        let mut cut = gzip(&fetch(&[&f.a_main], &[]));
        cut.truncate(cut.len() / 2);
        f.refused(&router, gzipped(cut, service))
            .await
            .http_error(StatusCode::BAD_REQUEST, "does not inflate");
        // 10 MiB of zeros is 10 KiB gzipped: under the limit sent, over it inflated.
        let bomb = gzip(&vec![0; 10 << 20]);
        assert!(bomb.len() < 64 << 10);
        f.refused(&router, gzipped(bomb, service))
            .await
            .http_error(StatusCode::PAYLOAD_TOO_LARGE, over);
    }
    // gzip under the limit inflated is served as it is.
    let answer = call(&router, gzipped(gzip(&fetch(&[&f.a_main], &[])), up)).await;
    assert!(answer.lines().iter().any(|l| l == "packfile"), "{answer:?}");
}

#[tokio::test]
async fn v2_requests_the_server_does_not_serve_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let request = |command: &str, args: &[&str]| {
        let mut body = Vec::new();
        pkt(&mut body, &format!("command={command}\n"));
        body.extend_from_slice(b"0001");
        for arg in args {
            pkt(&mut body, &format!("{arg}\n"));
        }
        body.extend_from_slice(b"0000");
        body
    };
    let want = format!("want {}", f.a_main);
    for (body, says) in [
        (
            request("fetch", &[&want, "frobnicate", "done"]),
            "unknown argument of fetch",
        ),
        (request("ls-refs", &["frobnicate"]), "unknown argument of ls-refs"),
        (request("bundle-uri", &[]), "unknown command"),
        (request("object-info", &["size"]), "unknown command"),
        (
            request("fetch", &[&want, "want-ref refs/heads/main", "done"]),
            "want-ref",
        ),
        (request("fetch", &[&want, "sideband-all", "done"]), "sideband-all"),
        (request("fetch", &[&want, "filter tree:0", "done"]), "filter"),
        (request("fetch", &[&want, "filter sparse:oid=abc", "done"]), "sparse"),
        (
            request("fetch", &[&want, "deepen-since 1700000000", "done"]),
            "deepen-since",
        ),
        (request("fetch", &[&want, "deepen 0", "done"]), "deepen"),
        (request("fetch", &[&format!("want {}", "0".repeat(40)), "done"]), ""),
        (request("fetch", &["done"]), "want"),
    ] {
        f.refused(&router, upload("a", body)).await.err_line(says);
    }
    // A capability line the server did not advertise.
    let mut body = Vec::new();
    pkt(&mut body, "command=ls-refs\n");
    pkt(&mut body, "frobnicate=yes\n");
    body.extend_from_slice(b"0001");
    body.extend_from_slice(b"0000");
    f.refused(&router, upload("a", body)).await.err_line("frobnicate");
    // Protocol v0 fetches, and the dumb protocol, are refused.
    let get = |uri: &str, v2: bool| {
        let mut request = Request::get(uri);
        if v2 {
            request = request.header("git-protocol", "version=2");
        }
        request.body(Body::empty()).unwrap()
    };
    f.refused(&router, get("/a.git/info/refs?service=git-upload-pack", false))
        .await
        .http_error(StatusCode::FORBIDDEN, "version 2");
    f.refused(&router, get("/a.git/info/refs", true))
        .await
        .http_error(StatusCode::FORBIDDEN, "smart HTTP");
    f.refused(&router, get("/a.git/HEAD", true))
        .await
        .http_error(StatusCode::NOT_FOUND, "no such route");
    f.refused(&router, get("/a.git/objects/info/packs", true))
        .await
        .http_error(StatusCode::NOT_FOUND, "no such route");
    f.refused(&router, get("/..%2Fb.git/info/refs?service=git-upload-pack", true))
        .await
        .http_error(StatusCode::NOT_FOUND, "");
    f.refused(&router, get("/missing.git/info/refs?service=git-upload-pack", true))
        .await
        .http_error(StatusCode::NOT_FOUND, "not found");
}

#[tokio::test]
async fn another_repos_objects_are_not_ours() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    // Both are in the store, and repo b reaches them; repo a does not.
    for id in [&f.b_main, &f.b_blob] {
        f.refused(&router, upload("a", fetch(&[id], &[])))
            .await
            .err_line(&format!("not our ref {id}"));
        // Beside a want that is ours, too.
        f.refused(&router, upload("a", fetch(&[&f.a_main, id], &[])))
            .await
            .err_line(&format!("not our ref {id}"));
    }
    // An id nothing holds.
    let nothing = "1234567890123456789012345678901234567890";
    f.refused(&router, upload("a", fetch(&[nothing], &[])))
        .await
        .err_line("not our ref");
    // The same wants are served from b.
    let answer = call(&router, upload("b", fetch(&[&f.b_main, &f.b_blob], &[]))).await;
    assert!(answer.lines().iter().any(|l| l == "packfile"), "{answer:?}");
}

#[tokio::test]
async fn a_flood_of_haves_is_refused_or_served_within_bounds() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let random = |n: usize| -> Vec<String> {
        (0..n as u64)
            .map(|i| format!("{:016x}{:024x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i))
            .collect()
    };
    f.refused(&router, upload("a", fetch(&[&f.a_main], &random(200_000))))
        .await
        .err_line("200000 haves, over the limit of 100000");
    // At the limit: nothing in common, so the whole history is sent.
    let answer = f
        .refused(&router, upload("a", fetch(&[&f.a_main], &random(100_000))))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.lines().iter().any(|l| l == "packfile"), "{answer:?}");
    // Not done, nothing in common: only acknowledgments ("NAK"), no pack.
    let mut body = fetch(&[&f.a_main], &random(10_000));
    let done = b"0009done\n0000";
    body.truncate(body.len() - done.len());
    body.extend_from_slice(b"0000");
    let answer = f.refused(&router, upload("a", body)).await;
    assert_eq!(
        answer.lines(),
        ["acknowledgments", "NAK"],
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
}

#[tokio::test]
async fn broken_packs_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let (commit, objects) = f.child_of_main("three\n");
    let pack = f.pack(&objects);
    let update = [(f.a_main.as_str(), commit.as_str(), "refs/heads/main")];
    let ng = ["ng refs/heads/main unpacker error"];

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated in the middle", pack[..pack.len() / 2].to_vec()),
        ("without its checksum", pack[..pack.len() - 20].to_vec()),
        ("only the header", pack[..12].to_vec()),
    ];
    let mut flipped = pack.clone();
    flipped[pack.len() / 2] ^= 0x40;
    cases.push(("a flipped byte", flipped.clone()));
    reseal(&mut flipped);
    cases.push(("a flipped byte, resealed", flipped));
    let mut miscounted = pack.clone();
    miscounted[11] += 1;
    reseal(&mut miscounted);
    cases.push(("one object more counted than held", miscounted));
    let mut billions = pack.clone();
    billions[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    reseal(&mut billions);
    cases.push(("four billion objects counted", billions));
    // An object, and a delta's result, claiming a terabyte.
    let blob = b"blob\n";
    let tera = 1u64 << 40;
    let mut delta = varint(blob.len() as u64);
    delta.extend(varint(tera));
    delta.extend([0x90, blob.len() as u8]); // copy the whole base
    let mut entries = vec![entry(3, blob.len() as u64, &zlib(blob))];
    entries.push(entry(3, tera, &zlib(blob)));
    cases.push(("an object claiming a terabyte", raw_pack(&entries)));
    let base = git_in(f.src(), &["hash-object", "--stdin"], "blob\n");
    let mut ref_delta = ObjectId::from_hex(base.as_bytes()).unwrap().as_slice().to_vec();
    ref_delta.extend(zlib(&delta));
    entries[1] = entry(7, delta.len() as u64, &ref_delta);
    cases.push(("a delta claiming a terabyte", raw_pack(&entries)));
    let mut trailing = pack.clone();
    trailing.extend_from_slice(b"more");
    cases.push(("bytes after the checksum", trailing));
    for (what, broken) in cases {
        let answer = f.refused(&router, receive("a", push(&update, &broken))).await;
        assert_eq!(answer.status, StatusCode::OK, "{what}");
        let lines = answer.lines();
        assert!(
            !lines.is_empty() && lines[0].starts_with("unpack ") && lines[0] != "unpack ok",
            "{what}: {lines:?}"
        );
        assert_eq!(lines[1..], ng, "{what}");
    }
    // No pack where one is needed.
    f.refused(&router, receive("a", push(&update, b"")))
        .await
        .err_line("pack");
}

#[tokio::test]
async fn a_thin_pack_is_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    // A new version of notes/big.md: git sends it as a delta against the old one, which
    // is in the store but not in the pack.
    std::fs::write(f.src().join("notes/big.md"), big(100)).unwrap();
    git(f.src(), &["commit", "-q", "-am", "thin"]);
    let commit = git(f.src(), &["rev-parse", "main"]);
    let pack = git_bytes(
        f.src(),
        &["pack-objects", "--stdout", "-q", "--thin", "--revs"],
        format!("{commit}\n^{}\n", f.a_main).as_bytes(),
    );
    let says = git_index_pack_says(&pack);
    assert!(says.contains("unresolved delta"), "the pack is not thin: {says}");
    f.refused(
        &router,
        receive("a", push(&[(&f.a_main, &commit, "refs/heads/main")], &pack)),
    )
    .await
    .report("", &["ng refs/heads/main unpacker error"]);
    // The same commit in a whole pack is accepted.
    let whole = git_bytes(
        f.src(),
        &["pack-objects", "--stdout", "-q", "--revs"],
        format!("{commit}\n^{}\n", f.a_main).as_bytes(),
    );
    call(
        &router,
        receive("a", push(&[(&f.a_main, &commit, "refs/heads/main")], &whole)),
    )
    .await
    .report("ok", &["ok refs/heads/main"]);
}

#[tokio::test]
async fn trees_with_git_in_any_spelling_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let hook = f.blob(b"#!/bin/sh\necho pwned\n");
    let fine = f.blob(b"fine\n");
    for name in [
        ".git",
        ".GIT",
        ".Git",
        ".git.",
        ".git ",
        "git~1",
        ".g\u{200c}it",
        "..",
        ".",
    ] {
        let inner = f.tree(&[("hooks", &hook)]);
        // `.git` as a folder (with a hook in it), and as a file.
        for tree in [
            git_in(
                f.src(),
                &["mktree"],
                &format!("100644 blob {fine}\ta.md\n040000 tree {inner}\t{name}\n"),
            ),
            f.tree(&[("a.md", &fine), (name, &hook)]),
        ] {
            let commit = f.commit(&tree, &f.a_main, "hostile");
            let pack = f.pack(&[commit.clone(), tree, inner.clone(), hook.clone(), fine.clone()]);
            let answer = f
                .refused(
                    &router,
                    receive("a", push(&[(&f.a_main, &commit, "refs/heads/main")], &pack)),
                )
                .await;
            answer.report("", &["ng refs/heads/main unpacker error"]);
            assert!(answer.lines()[0] != "unpack ok", "{name:?}");
        }
    }
}

#[tokio::test]
async fn a_blob_over_the_file_limit_is_refused() {
    let f = Fixture::new();
    let router = f.router(Config {
        limits: Limits {
            max_file_bytes: 1024,
            ..Limits::default()
        },
        ..Config::default()
    });
    let (commit, objects) = f.child_of_main(&"x".repeat(1025));
    let pack = f.pack(&objects);
    let answer = f
        .refused(
            &router,
            receive("a", push(&[(&f.a_main, &commit, "refs/heads/main")], &pack)),
        )
        .await;
    answer.report("over the limit of 1024 bytes", &["ng refs/heads/main unpacker error"]);
    // At the limit it is accepted.
    let (commit, objects) = f.child_of_main(&"x".repeat(1024));
    let pack = f.pack(&objects);
    call(
        &router,
        receive("a", push(&[(&f.a_main, &commit, "refs/heads/main")], &pack)),
    )
    .await
    .report("ok", &["ok refs/heads/main"]);
}

#[tokio::test]
async fn commits_whose_history_is_missing_or_not_ours_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let blob = f.blob(b"orphaned\n");
    let tree = f.tree(&[("a.md", &blob)]);
    // A parent in neither the pack nor the store.
    let nowhere = "1234567890123456789012345678901234567890";
    let commit = f.commit(&tree, nowhere, "missing parent");
    let pack = f.pack(&[commit.clone(), tree.clone(), blob.clone()]);
    f.refused(
        &router,
        receive("a", push(&[(&f.a_main, &commit, "refs/heads/main")], &pack)),
    )
    .await
    .report(
        "ok",
        &[&format!("ng refs/heads/main missing necessary objects: {nowhere}")],
    );
    f.refused(&router, receive("a", push(&[(NULL, &commit, "refs/heads/new")], &pack)))
        .await
        .report("ok", &["ng refs/heads/new missing necessary objects"]);
    // A parent in the store that only repo b reaches: a push must not claim another
    // repo's history by naming it.
    let commit = f.commit(&tree, &f.b_main, "b's history");
    let pack = f.pack(&[commit.clone(), tree.clone(), blob.clone()]);
    f.refused(&router, receive("a", push(&[(NULL, &commit, "refs/heads/new")], &pack)))
        .await
        .report("ok", &["ng refs/heads/new missing necessary objects"]);
    // Nor by pointing a ref at it, with an empty pack.
    let empty = f.pack(&[]);
    let answer = f
        .refused(
            &router,
            receive("a", push(&[(NULL, &f.b_main, "refs/heads/new")], &empty)),
        )
        .await;
    answer.report("ok", &["ng refs/heads/new missing necessary objects"]);
    assert!(
        answer.lines()[1].contains("not reachable from this repo's refs"),
        "{answer:?}"
    );
    // A tree in the pack naming a blob nowhere.
    let tree = f.tree(&[("a.md", nowhere)]);
    let commit = f.commit(&tree, &f.a_main, "missing blob");
    let pack = f.pack(&[commit.clone(), tree]);
    f.refused(
        &router,
        receive("a", push(&[(&f.a_main, &commit, "refs/heads/main")], &pack)),
    )
    .await
    .report(
        "ok",
        &[&format!("ng refs/heads/main missing necessary objects: {nowhere}")],
    );
}

#[tokio::test]
async fn refs_a_push_may_not_name_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let (commit, objects) = f.child_of_main("three\n");
    let pack = f.pack(&objects);
    for name in [
        "refs/foo",
        "refs/notes/commits",
        "refs/remotes/origin/main",
        "refs/namespaces/b/refs/heads/main",
    ] {
        f.refused(&router, receive("a", push(&[(NULL, &commit, name)], &pack)))
            .await
            .report("ok", &[&format!("ng {name} only branches")]);
    }
    // Names git's rules refuse: the whole request is refused.
    for name in [
        "refs/heads/a..b",
        "refs/heads/x.lock",
        "refs/heads/a b",
        "refs/heads/",
        "refs/heads/a//b",
        "refs/heads/@{x}",
        "refs/heads/a\\b",
        "HEAD",
        "main",
        "refs/heads/.hidden",
    ] {
        f.refused(&router, receive("a", push(&[(NULL, &commit, name)], &pack)))
            .await
            .err_line("");
    }
    // A name that is not UTF-8 is refused, not renamed.
    let mut body = Vec::new();
    let mut line = format!("{NULL} {commit} refs/heads/caf").into_bytes();
    line.extend_from_slice(b"\xe9\0report-status\n");
    body.extend_from_slice(format!("{:04x}", line.len() + 4).as_bytes());
    body.extend_from_slice(&line);
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&pack);
    f.refused(&router, receive("a", body)).await.err_line("UTF-8");
    // The same ref twice.
    let twice = push(
        &[
            (&f.a_main, &commit, "refs/heads/main"),
            (&f.a_main, &commit, "refs/heads/main"),
        ],
        &pack,
    );
    f.refused(&router, receive("a", twice)).await.err_line("");
    // A branch pointed at a tree.
    let tree = objects[1].clone();
    f.refused(&router, receive("a", push(&[(NULL, &tree, "refs/heads/tree")], &pack)))
        .await
        .report("ok", &["ng refs/heads/tree"]);
    // An invalid repo name.
    f.refused(&router, receive("..", push(&[(NULL, &commit, "refs/heads/x")], &pack)))
        .await
        .http_error(StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn stale_old_ids_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let (commit, objects) = f.child_of_main("three\n");
    let pack = f.pack(&objects);
    // The client believes main is at its parent, or absent, or at a commit it never was.
    for old in [f.a_first.as_str(), NULL, f.b_main.as_str()] {
        f.refused(&router, receive("a", push(&[(old, &commit, "refs/heads/main")], &pack)))
            .await
            .report("ok", &["ng refs/heads/main stale info"]);
    }
    // Deleting with a stale id, and deleting what does not exist.
    f.refused(
        &router,
        receive("a", push(&[(&f.a_first, NULL, "refs/heads/main")], b"")),
    )
    .await
    .report("ok", &["ng refs/heads/main stale info"]);
    f.refused(
        &router,
        receive("a", push(&[(&f.a_main, NULL, "refs/heads/gone")], b"")),
    )
    .await
    .report("ok", &["ng refs/heads/gone stale info"]);
}

#[tokio::test]
async fn rewinds_are_refused() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let rewind = f.commit(&git(f.src(), &["rev-parse", "main~1^{tree}"]), &f.a_first, "rewind");
    let pack = f.pack(std::slice::from_ref(&rewind));
    f.refused(
        &router,
        receive("a", push(&[(&f.a_main, &rewind, "refs/heads/main")], &pack)),
    )
    .await
    .report("ok", &["ng refs/heads/main non-fast-forward"]);
}

#[tokio::test]
async fn requests_without_a_token_or_beyond_it_are_refused() {
    let f = Fixture::new();
    let tokens = Tokens::from_json(
        r#"{"tokens": [
            {"token": "reader-0123456789abcdef", "repos": ["a"], "access": "read"},
            {"token": "writer-0123456789abcdef", "repos": ["b"], "access": "write"}
        ]}"#,
        "test",
    )
    .unwrap();
    let router = f.router(Config {
        tokens,
        ..Config::default()
    });
    let (commit, objects) = f.child_of_main("three\n");
    let body = push(&[(&f.a_main, &commit, "refs/heads/main")], &f.pack(&objects));
    let with = |mut request: Request<Body>, authorization: Option<&str>| {
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, value.parse().unwrap());
        }
        request
    };
    let advertise = |repo: &str, service: &str| {
        Request::get(format!("/{repo}.git/info/refs?service={service}"))
            .header("git-protocol", "version=2")
            .body(Body::empty())
            .unwrap()
    };
    let unauthenticated = [
        None,
        Some("Bearer wrong-0123456789abcdef"),
        Some("Bearer "),
        Some("Basic !!!"),
        Some("Basic dXNlcg=="), // "user", no password
        Some("Digest reader-0123456789abcdef"),
        Some("reader-0123456789abcdef"),
    ];
    for authorization in unauthenticated {
        for request in [
            advertise("a", "git-upload-pack"),
            advertise("a", "git-receive-pack"),
            upload("a", fetch(&[&f.a_main], &[])),
            receive("a", body.clone()),
        ] {
            let answer = f.refused(&router, with(request, authorization)).await;
            answer.http_error(StatusCode::UNAUTHORIZED, "token");
            assert_eq!(
                answer.www_authenticate.as_deref(),
                Some("Basic realm=\"snapgit\", charset=\"UTF-8\""),
                "{authorization:?}"
            );
        }
    }
    let reader = Some("Bearer reader-0123456789abcdef");
    let writer = Some("Bearer writer-0123456789abcdef");
    // A reader may not push, nor read another repo; a writer of b may not touch a.
    for (request, authorization) in [
        (receive("a", body.clone()), reader),
        (advertise("a", "git-receive-pack"), reader),
        (upload("b", fetch(&[&f.b_main], &[])), reader),
        (receive("a", body.clone()), writer),
        (upload("a", fetch(&[&f.a_main], &[])), writer),
    ] {
        let answer = f.refused(&router, with(request, authorization)).await;
        answer.http_error(StatusCode::FORBIDDEN, "this token may not");
        assert_eq!(answer.www_authenticate, None);
    }
    // What they do allow is served.
    let answer = call(&router, with(upload("a", fetch(&[&f.a_main], &[])), reader)).await;
    assert!(answer.lines().iter().any(|l| l == "packfile"), "{answer:?}");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "git:reader-0123456789abcdef"
        )
    );
    let answer = call(&router, with(advertise("a", "git-upload-pack"), Some(&basic))).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn pages_of_any_origin_may_call_it() {
    let f = Fixture::new();
    let router = f.router(Config::default());
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/a.git/git-receive-pack")
        .header(header::ORIGIN, "https://app.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization, content-type")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(preflight).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let allowed = |name: header::HeaderName| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(allowed(header::ACCESS_CONTROL_ALLOW_ORIGIN).as_deref(), Some("*"));
    let headers = allowed(header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap();
    assert!(
        headers.contains("Authorization") && headers.contains("Git-Protocol"),
        "{headers}"
    );
    assert!(allowed(header::ACCESS_CONTROL_ALLOW_METHODS).unwrap().contains("POST"));
    // And the answers themselves, refusals included.
    let get = Request::get("/a.git/info/refs?service=git-upload-pack")
        .header("git-protocol", "version=2")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let missing = Request::get("/nope/info/refs").body(Body::empty()).unwrap();
    let response = router.oneshot(missing).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}
