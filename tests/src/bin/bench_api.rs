//! The JSON API of `snapgit serve` as agent servers use it: one-file commits to one branch
//! and file reads, at 1, 8 and 32 concurrent clients, beside the same work through the
//! `snapgit` command (one process per operation) and beside what agent servers do today
//! ("download the repo, commit with git, upload", under a lock), in one run.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench-api [-- --snapgit PATH] [--scale N]
//! eval "$(bash scripts/services.sh start)" && cargo run --release -p snapgit-tests --bin bench-api
//! ```
//!
//! Stores: a local folder; and, when `SNAPGIT_SERVICES=1` (`scripts/services.sh`), a
//! bucket on ministack reached through a proxy that adds 20 ms to every request (a
//! cloud's round trip). The repo starts with 200 files in 20 commits. Each client commits
//! its own file (so every lost race is replayable) and reads one file at `main`.
//!
//! - `api`: HTTP/1.1 keep-alive clients of one `snapgit serve` (its defaults: commits to
//!   a branch queue on an in-process lock);
//! - `cli`: `snapgit commit --stdin` and `snapgit cat`, a process per operation, as many
//!   at once as clients (the native engine; the compare-and-swap is the only fence);
//! - `git`: take a lock, copy the store to a temporary folder, commit there with git
//!   (plumbing: `hash-object`, `update-index`, `write-tree`, `commit-tree`), copy the new
//!   objects and the ref back, release — on the folder store only (a bucket would need a
//!   whole download and upload per commit; this is its lower bound).
//!
//! Each row prints operations per second over the wall time, and the p50 and p99 latency
//! of one operation; failed operations are counted (and must be 0). `--scale N`
//! multiplies the operations per row (default 1: 32, 64 and 128 commits at 1, 8 and 32
//! clients; `git` rows at most 32).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

const REPO: &str = "bench";
const BRANCH_REF: &str = "refs/namespaces/bench/refs/heads/main";
const CLIENTS: [usize; 3] = [1, 8, 32];
/// The most operations of a `git` row: each copies the whole store, so fewer keep the run
/// short (the latencies are per operation; the rate is over the row's own wall time).
const GIT_OPS: usize = 32;

struct Options {
    snapgit: PathBuf,
    scale: usize,
}

fn options() -> Options {
    let mut options = Options {
        snapgit: snapgit_tests::release_snapgit(),
        scale: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--snapgit" => options.snapgit = value.into(),
            "--scale" => options.scale = value.parse().expect("a count"),
            other => panic!("unknown option {other} (--snapgit PATH, --scale N)"),
        }
    }
    snapgit_tests::build_snapgit_if_missing(&options.snapgit);
    options
}

// ---------------------------------------------------------------------------------------
// A store, as the three ways reach it

/// Where the store is and what its processes need in their environment.
#[derive(Clone)]
struct Store {
    name: &'static str,
    url: String,
    env: Vec<(String, String)>,
    /// The store's folder, for git (folder stores only).
    folder: Option<PathBuf>,
}

impl Store {
    fn snapgit(&self, bin: &Path) -> Command {
        let mut command = Command::new(bin);
        command
            .env_remove("SNAPGIT_REDIS_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("SNAPGIT_STORE", &self.url)
            .env("SNAPGIT_REPO", REPO)
            .stdin(Stdio::null());
        command
    }
}

fn run_ok(mut command: Command, input: Option<&[u8]>) -> Vec<u8> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("the command starts");
    if let Some(input) = input {
        child.stdin.take().expect("a pipe").write_all(input).expect("stdin");
    }
    let out = child.wait_with_output().expect("the command ends");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A running `snapgit serve`, stopped when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(bin: &Path, store: &Store) -> Server {
        let mut command = store.snapgit(bin);
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("snapgit serve starts");
        let mut lines = BufReader::new(child.stderr.take().expect("a pipe")).lines();
        let first = lines.next().expect("a line").expect("text");
        std::thread::spawn(move || for _ in lines {});
        let at = first
            .find("http://")
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let addr = first[at + 7..]
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("an address");
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client with keep-alive

struct Http {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        Http { addr, stream: None }
    }

    /// Status and body of one request.
    fn send(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let stream = TcpStream::connect(self.addr).expect("the server accepts");
                stream.set_nodelay(true).expect("nodelay");
                self.stream = Some(BufReader::new(stream));
            }
            match self.exchange(method, path, body) {
                Ok(answer) => return answer,
                // A keep-alive connection the server closed: once more on a new one.
                Err(_) if attempt == 0 => self.stream = None,
                Err(err) => panic!("{method} {path}: {err}"),
            }
        }
        unreachable!()
    }

    fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let stream = self.stream.as_mut().expect("connected");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.get_mut().write_all(head.as_bytes())?;
        stream.get_mut().write_all(body)?;
        let mut line = String::new();
        if stream.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = 0usize;
        loop {
            line.clear();
            stream.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut out = vec![0; length];
        stream.read_exact(&mut out)?;
        Ok((status, out))
    }
}

// ---------------------------------------------------------------------------------------
// A proxy that adds latency to every request

/// Forwards connections to `target`, holding each chunk the client sends for `delay`.
fn delay_proxy(target: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (mut c_read, mut s_write) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = vec![0; 64 << 10];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 || {
                        std::thread::sleep(delay);
                        s_write.write_all(&buf[..n]).is_err()
                    } {
                        break;
                    }
                }
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------
// Measuring

struct Row {
    store: &'static str,
    workload: &'static str,
    way: &'static str,
    clients: usize,
    ops: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    failed: usize,
}

impl Row {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut l: Vec<f64> = self.latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        l.sort_by(f64::total_cmp);
        if l.is_empty() {
            return f64::NAN;
        }
        l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1]
    }
}

/// Run `op(client, n)` for `ops` operations spread over `clients` threads.
fn measure(
    store: &'static str,
    workload: &'static str,
    way: &'static str,
    clients: usize,
    ops: usize,
    op: impl Fn(usize, usize) -> bool + Sync,
) -> Row {
    let latencies = Mutex::new(Vec::with_capacity(ops));
    let failed = Mutex::new(0usize);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (op, latencies, failed) = (&op, &latencies, &failed);
            scope.spawn(move || {
                for n in (client..ops).step_by(clients) {
                    let at = Instant::now();
                    let ok = op(client, n);
                    let took = at.elapsed();
                    latencies.lock().expect("a lock").push(took);
                    if !ok {
                        *failed.lock().expect("a lock") += 1;
                    }
                }
            });
        }
    });
    let row = Row {
        store,
        workload,
        way,
        clients,
        ops,
        wall: started.elapsed(),
        latencies: latencies.into_inner().expect("a lock"),
        failed: failed.into_inner().expect("a lock"),
    };
    eprintln!(
        "  {store} {workload} {way} x{clients}: {:.1}/s, p50 {:.1} ms, p99 {:.1} ms{}",
        row.per_second(),
        row.percentile(0.5),
        row.percentile(0.99),
        if row.failed > 0 {
            format!(", {} FAILED", row.failed)
        } else {
            String::new()
        }
    );
    row
}

fn commit_body(client: usize, n: usize) -> Vec<u8> {
    format!(
        r#"{{"author": {{"name": "client {client}", "email": "c@example.com"}}, "message": "turn {n}", "changes": [{{"type": "put", "path": "agents/{client}.md", "data": "turn {n} of client {client}\n"}}]}}"#
    )
    .into_bytes()
}

/// The repo's history: 200 files in 20 commits, through the API.
fn seed(server: &Server) {
    // `snapgit init` made the repo.
    let mut http = Http::new(server.addr);
    for turn in 0..20 {
        let changes: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"type": "put", "path": "notes/{turn}/{i}.md", "data": "{}"}}"#,
                    format!("line {i} of turn {turn}\\n").repeat(40)
                )
            })
            .collect();
        let body = format!(
            r#"{{"author": {{"name": "Seed", "email": "s@example.com"}}, "message": "seed {turn}", "changes": [{}]}}"#,
            changes.join(",")
        );
        let (status, out) = http.send("POST", "/v1/repos/bench/branches/main/commits", body.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    }
}

fn bench_store(options: &Options, store: &Store, rows: &mut Vec<Row>) {
    eprintln!("{}:", store.name);
    let bin = &options.snapgit;
    let mut init = store.snapgit(bin);
    init.arg("init");
    run_ok(init, None);
    let server = Server::start(bin, store);
    seed(&server);
    let name = store.name;
    for clients in CLIENTS {
        let ops = options.scale
            * match clients {
                1 => 32,
                8 => 64,
                _ => 128,
            };
        let addr = server.addr;
        let https: Vec<Mutex<Http>> = (0..clients).map(|_| Mutex::new(Http::new(addr))).collect();
        rows.push(measure(name, "commit", "api", clients, ops, |client, n| {
            let (status, body) = https[client].lock().expect("a lock").send(
                "POST",
                "/v1/repos/bench/branches/main/commits",
                &commit_body(client, n),
            );
            if status != 200 {
                eprintln!("    failed: {status} {}", String::from_utf8_lossy(&body));
            }
            status == 200
        }));
        rows.push(measure(name, "commit", "cli", clients, ops, |client, n| {
            let mut command = store.snapgit(bin);
            command.args([
                "commit",
                "--stdin",
                &format!("agents/{client}.md"),
                "-m",
                &format!("turn {n}"),
                "--quiet",
            ]);
            command
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let Ok(mut child) = command.spawn() else { return false };
            let _ = child
                .stdin
                .take()
                .map(|mut i| i.write_all(format!("cli turn {n} of client {client}\n").as_bytes()));
            child.wait().is_ok_and(|s| s.success())
        }));
        if let Some(folder) = &store.folder {
            let lock = Mutex::new(());
            rows.push(measure(
                name,
                "commit",
                "git",
                clients,
                ops.min(GIT_OPS),
                |client, n| {
                    let _held = lock.lock().expect("a lock");
                    git_commit(folder, client, n)
                },
            ));
        }
        rows.push(measure(name, "read", "api", clients, ops, |client, _| {
            let (status, body) =
                https[client]
                    .lock()
                    .expect("a lock")
                    .send("GET", "/v1/repos/bench/files/notes/7/3.md", b"");
            status == 200 && !body.is_empty()
        }));
        rows.push(measure(name, "read", "cli", clients, ops, |_, _| {
            let mut command = store.snapgit(bin);
            command
                .args(["cat", "notes/7/3.md"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            command.status().is_ok_and(|s| s.success())
        }));
        if let Some(folder) = &store.folder {
            rows.push(measure(name, "read", "git", clients, ops.min(GIT_OPS), |_, _| {
                let copy = tempfile::tempdir().expect("a folder");
                copy_tree(folder, copy.path());
                git(
                    copy.path(),
                    &["cat-file", "blob", &format!("{BRANCH_REF}:notes/7/3.md")],
                )
                .is_some()
            }));
        }
    }
    // The store is still a git repository.
    if let Some(folder) = &store.folder {
        assert!(
            git(folder, &["fsck", "--strict", "--no-dangling"]).is_some(),
            "fsck failed"
        );
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "git")
        .env("GIT_AUTHOR_EMAIL", "git@example.com")
        .env("GIT_COMMITTER_NAME", "git")
        .env("GIT_COMMITTER_EMAIL", "git@example.com")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `cp -a from/. to`.
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success());
}

/// Download the store, commit one file with git, upload the new objects and the ref.
fn git_commit(store: &Path, client: usize, n: usize) -> bool {
    let copy = tempfile::tempdir().expect("a folder");
    let dir = copy.path();
    copy_tree(store, dir);
    let index = dir.join("bench-index");
    let with_index = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "git")
            .env("GIT_AUTHOR_EMAIL", "git@example.com")
            .env("GIT_COMMITTER_NAME", "git")
            .env("GIT_COMMITTER_EMAIL", "git@example.com")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let Some(head) = git(dir, &["rev-parse", BRANCH_REF]) else {
        return false;
    };
    let content = dir.join("bench-content");
    if std::fs::write(&content, format!("git turn {n} of client {client}\n")).is_err() {
        return false;
    }
    let steps = || -> Option<String> {
        let blob = git(dir, &["hash-object", "-w", content.to_str()?])?;
        with_index(&["read-tree", &head])?;
        with_index(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},agents/{client}.md"),
        ])?;
        let tree = with_index(&["write-tree"])?;
        git(dir, &["commit-tree", &tree, "-p", &head, "-m", &format!("turn {n}")])
    };
    let Some(commit) = steps() else { return false };
    // Upload: the new objects, then the ref.
    let status = Command::new("cp")
        .arg("-a")
        .arg("-n")
        .arg(format!("{}/objects/.", dir.display()))
        .arg(store.join("objects"))
        .status();
    if !status.is_ok_and(|s| s.success()) {
        return false;
    }
    git(store, &["update-ref", BRANCH_REF, &commit, &head]).is_some()
}

fn main() {
    let options = options();
    let started = Instant::now();
    let work = tempfile::tempdir().expect("a folder");
    let mut rows = Vec::new();
    let folder = work.path().join("store");
    bench_store(
        &options,
        &Store {
            name: "folder",
            url: folder.display().to_string(),
            env: Vec::new(),
            folder: Some(folder.clone()),
        },
        &mut rows,
    );
    if std::env::var("SNAPGIT_SERVICES").as_deref() == Ok("1") {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL with SNAPGIT_SERVICES=1");
        let target: SocketAddr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the S3 endpoint is host:port");
        let proxy = delay_proxy(target, Duration::from_millis(20));
        let bucket = std::env::var("SNAPGIT_S3_BUCKET").expect("SNAPGIT_S3_BUCKET");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).collect();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        env.push(("AWS_ENDPOINT_URL".into(), format!("http://{proxy}")));
        bench_store(
            &options,
            &Store {
                name: "s3+20ms",
                url: format!("s3://{bucket}/bench-api-{nanos}"),
                env,
                folder: None,
            },
            &mut rows,
        );
    } else {
        eprintln!("note: no S3 rows: start the services first (eval \"$(bash scripts/services.sh start)\")");
    }

    println!("\n| store | work | way | clients | ops | ops/s | p50 ms | p99 ms | failed | ops/s vs api |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let api = rows
            .iter()
            .find(|r| r.store == row.store && r.workload == row.workload && r.clients == row.clients && r.way == "api")
            .map_or(f64::NAN, Row::per_second);
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {:.2}x |",
            row.store,
            row.workload,
            row.way,
            row.clients,
            row.ops,
            row.per_second(),
            row.percentile(0.5),
            row.percentile(0.99),
            row.failed,
            row.per_second() / api,
        );
    }
    println!("\n(whole run {:.0} s)", started.elapsed().as_secs_f64());
}
