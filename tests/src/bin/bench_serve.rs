//! `snapgit serve` against `git http-backend`: what a git client waits for, and what the
//! server sends, in one run.
//!
//! ```text
//! cargo run --release -p snapgit-tests --bin bench-serve [-- --runs 5] [--snapgit PATH]
//! ```
//!
//! The history is the pack benchmark's (`snapgit_tests::fast_import`): 10,000 files, then
//! 999 commits of 10 changed files each, made by `git fast-import`. It is served three
//! ways, all from a local folder on loopback:
//!
//! - `git`: `git http-backend` (as CGI behind a small HTTP/1.1 bridge in this process)
//!   over a bare repository after `git gc`, as a git server keeps it;
//! - `snapgit, packed`: `snapgit serve` over a store holding the same objects after
//!   `snapgit compact`;
//! - `snapgit, loose`: the same, every object loose (as commits leave a store).
//!
//! Each row is timed `--runs` times, the servers in turns, and the median printed with
//! the ratio to git: `git clone --bare` (the whole history), `git clone --bare --depth 1`,
//! and `git push` of 100 new commits of 10 changed files each (the branch is moved back
//! between runs). Bytes are what the server sent, counted by a proxy in front of each. The
//! client is the same `git`, over protocol v2. The `snapgit` binary is built (release,
//! native core only) when missing.
//!
//! Then the clients, against the same `git http-backend`: `git clone --bare` and
//! `snapgit import` into a new folder store (the default engine, the component, and the
//! native one), of the whole history,
//! at `--depth 1` and with `--filter blob:none`, with what the server sent to each.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use snapgit_tests::{
    GitRepo,
    fast_import::{self, COMMITS, FILES},
};

const BRANCH: &str = "refs/namespaces/default/refs/heads/main";

struct Options {
    snapgit: PathBuf,
    runs: usize,
}

fn options() -> Options {
    let mut options = Options {
        snapgit: snapgit_tests::release_snapgit(),
        runs: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--snapgit" => options.snapgit = value.into(),
            "--runs" => options.runs = value.parse().expect("a count"),
            other => panic!("unknown option {other} (--runs N, --snapgit PATH)"),
        }
    }
    snapgit_tests::build_snapgit_if_missing(&options.snapgit);
    options
}

/// `git` with no user or system configuration.
fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "protocol.version=2",
            "-c",
            "user.name=Client",
            "-c",
            "user.email=c@example.com",
        ]);
    command
}

#[track_caller]
fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Counts the bytes a server sends through it.
struct Proxy {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
}

impl Proxy {
    fn start(backend: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address");
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(backend) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("a clone"),
                    server.try_clone().expect("a clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let counter = counter.clone();
                let (mut s_read, mut c_write) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = vec![0; 64 << 10];
                    loop {
                        match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                counter.fetch_add(n as u64, Ordering::Relaxed);
                                if c_write.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Proxy { addr, sent }
    }
}

/// `git http-backend` as CGI behind a minimal HTTP/1.1 server (keep-alive, chunked
/// request bodies), one thread per connection.
fn start_http_backend(project_root: PathBuf) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let root = project_root.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
                let mut writer = stream;
                while let Some(keep_alive) = cgi_request(&root, &mut reader, &mut writer) {
                    if !keep_alive {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Serve one request; `None` when the connection ends, else whether to keep it open.
fn cgi_request(root: &Path, reader: &mut impl BufRead, writer: &mut impl Write) -> Option<bool> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = header("content-length") {
        body.resize(len.parse().ok()?, 0);
        reader.read_exact(&mut body).ok()?;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("GIT_PROTOCOL", header("git-protocol").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(encoding) = header("content-encoding") {
        command.env("HTTP_CONTENT_ENCODING", encoding);
    }
    let mut child = command.spawn().expect("git http-backend starts");
    let mut stdin = child.stdin.take().expect("a pipe");
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().expect("git http-backend runs");
    let _ = feeder.join();
    let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|at| (at, 4));
    let split = split.or_else(|| out.stdout.windows(2).position(|w| w == b"\n\n").map(|at| (at, 2)));
    let (head, content) = match split {
        Some((at, len)) => (
            String::from_utf8_lossy(&out.stdout[..at]).into_owned(),
            &out.stdout[at + len..],
        ),
        None => (String::new(), &out.stdout[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut response = Vec::new();
    for line in head.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => status = value.trim().to_owned(),
            _ => response.extend_from_slice(format!("{line}\r\n").as_bytes()),
        }
    }
    let keep_alive = !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    out.extend_from_slice(&response);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", content.len()).as_bytes());
    out.extend_from_slice(content);
    writer.write_all(&out).ok()?;
    writer.flush().ok()?;
    Some(keep_alive)
}

/// A running `snapgit serve`, stopped when dropped.
struct Snapgit {
    child: Child,
    addr: SocketAddr,
}

impl Snapgit {
    fn start(bin: &Path, store: &Path) -> Snapgit {
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
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
        Snapgit { child, addr }
    }

    /// The server's peak resident memory so far.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for Snapgit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One server as the client sees it.
struct Server {
    name: &'static str,
    url: String,
    proxy: Proxy,
    /// Moves the branch back to `base` before a push.
    reset: Box<dyn Fn(&str)>,
}

/// What the client runs, in a folder, against a URL.
type Client = fn(&Path, &str);

/// A measurement: wall time and bytes sent, per run.
#[derive(Default, Clone)]
struct Samples {
    times: Vec<Duration>,
    bytes: Vec<u64>,
}

impl Samples {
    fn median_ms(&self) -> f64 {
        let mut t: Vec<f64> = self.times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }

    fn median_bytes(&self) -> u64 {
        let mut b = self.bytes.clone();
        b.sort_unstable();
        b[b.len() / 2]
    }
}

fn measure(server: &Server, samples: &mut Samples, run: impl FnOnce(&str)) {
    let before = server.proxy.sent.load(Ordering::Relaxed);
    let started = Instant::now();
    run(&server.url);
    samples.times.push(started.elapsed());
    // The last bytes may still be in flight through the proxy's thread.
    std::thread::sleep(Duration::from_millis(20));
    samples.bytes.push(server.proxy.sent.load(Ordering::Relaxed) - before);
}

fn mb(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{:.1} KB", bytes as f64 / 1e3)
    } else {
        format!("{:.2} MB", bytes as f64 / 1e6)
    }
}

fn main() {
    let options = options();
    let started = Instant::now();
    let work = tempfile::tempdir().expect("a temporary folder");
    let root = work.path();

    // The history, and git's server repository of it.
    let source = GitRepo::new();
    source.git_with_input(&["fast-import", "--quiet"], &fast_import::stream());
    let base = source.git(&["rev-parse", "refs/heads/main"]).trim().to_owned();
    let git_repo = root.join("git/default.git");
    git_ok(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            source.path().to_str().expect("UTF-8"),
            git_repo.to_str().expect("UTF-8"),
        ],
    );
    git_ok(&git_repo, &["gc", "--quiet"]);
    git_ok(&git_repo, &["config", "http.receivepack", "true"]);

    // snapgit's stores: every object loose, and compacted.
    let pack = std::fs::read_dir(source.path().join("objects/pack"))
        .expect("packs")
        .map(|e| e.expect("an entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .expect("fast-import wrote a pack");
    let pack = std::fs::read(pack).expect("the pack");
    let mut stores = Vec::new();
    for name in ["loose", "packed"] {
        let store = root.join(name);
        git_ok(root, &["init", "-q", "--bare", store.to_str().expect("UTF-8")]);
        let mut unpack = git(&store)
            .args(["unpack-objects", "-q"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("git runs");
        unpack
            .stdin
            .take()
            .expect("a pipe")
            .write_all(&pack)
            .expect("the pack goes in");
        assert!(unpack.wait().expect("git runs").success());
        write_ref(&store, &base);
        if name == "packed" {
            let out = Command::new(&options.snapgit)
                .args(["--quiet", "--store"])
                .arg(&store)
                .args(["compact", "--grace", "0"])
                .output()
                .expect("snapgit runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        stores.push(store);
    }
    let du = |dir: &Path| -> u64 { dir_bytes(&dir.join("objects")) };
    println!(
        "history: {FILES} files, {COMMITS} commits; objects: git after gc {}, snapgit compacted {}, loose {}; set up in {:.0} s",
        mb(du(&git_repo)),
        mb(du(&stores[1])),
        mb(du(&stores[0])),
        started.elapsed().as_secs_f64()
    );

    // The servers.
    let backend = start_http_backend(root.join("git"));
    let loose = Snapgit::start(&options.snapgit, &stores[0]);
    let packed = Snapgit::start(&options.snapgit, &stores[1]);
    let server = |name: &'static str, addr: SocketAddr, reset: Box<dyn Fn(&str)>| {
        let proxy = Proxy::start(addr);
        Server {
            name,
            url: format!("http://{}/default.git", proxy.addr),
            proxy,
            reset,
        }
    };
    let git_dir = git_repo.clone();
    let (loose_dir, packed_dir) = (stores[0].clone(), stores[1].clone());
    let servers = [
        server(
            "git http-backend",
            backend,
            Box::new(move |id| {
                git_ok(&git_dir, &["update-ref", "refs/heads/main", id]);
            }),
        ),
        server(
            "snapgit, packed",
            packed.addr,
            Box::new(move |id| write_ref(&packed_dir, id)),
        ),
        server(
            "snapgit, loose",
            loose.addr,
            Box::new(move |id| write_ref(&loose_dir, id)),
        ),
    ];

    // The client's 100 new commits, on top of the history.
    let client = root.join("client.git");
    git_ok(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            git_repo.to_str().expect("UTF-8"),
            client.to_str().expect("UTF-8"),
        ],
    );
    let mut stream = Vec::new();
    for c in 0..100 {
        let from = if c == 0 {
            format!("from {base}\n")
        } else {
            String::new()
        };
        stream.extend_from_slice(
            format!(
                "commit refs/heads/main\ncommitter C <c@example.com> {} +0000\ndata 4\npush\n{from}",
                1_800_000_000 + c
            )
            .as_bytes(),
        );
        for f in 0..10 {
            let i = (c * 97 + f * 1013) % FILES;
            let body = format!("# note {i}\n\npushed {c}: {}\n", "client line ".repeat(4));
            stream.extend_from_slice(
                format!(
                    "M 100644 inline {}\ndata {}\n{body}\n",
                    fast_import::path(i),
                    body.len()
                )
                .as_bytes(),
            );
        }
    }
    let mut import = git(&client)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git runs");
    import
        .stdin
        .take()
        .expect("a pipe")
        .write_all(&stream)
        .expect("the stream goes in");
    assert!(import.wait().expect("git runs").success());

    let rows: [(&str, Client); 3] = [
        ("git clone --bare", |dir, url| {
            git_ok(dir, &["clone", "-q", "--bare", url, "clone.git"]);
        }),
        ("git clone --bare --depth 1", |dir, url| {
            git_ok(dir, &["clone", "-q", "--bare", "--depth", "1", url, "clone.git"]);
        }),
        ("git push, 100 commits", |dir, url| {
            git_ok(dir, &["push", "-q", url, "main"]);
        }),
    ];
    println!(
        "\n{:<28} {:<18} {:>10} {:>8} {:>12} {:>8}",
        "median of runs", "server", "wall", "ratio", "sent", "ratio"
    );
    for (row, run) in rows {
        let mut samples = vec![Samples::default(); servers.len()];
        for r in 0..options.runs {
            // Turns: git first, then last, so neither always runs warm.
            let order: Vec<usize> = if r % 2 == 0 { vec![0, 1, 2] } else { vec![2, 1, 0] };
            for at in order {
                let server = &servers[at];
                let dir = tempfile::tempdir_in(root).expect("a folder");
                let is_push = row.starts_with("git push");
                if is_push {
                    (server.reset)(&base);
                }
                let cwd = if is_push { client.clone() } else { dir.path().to_owned() };
                measure(server, &mut samples[at], |url| run(&cwd, url));
                if !is_push {
                    let clone = dir.path().join("clone.git");
                    let tip = git_ok(&clone, &["rev-parse", "HEAD"]);
                    assert_eq!(tip, base, "{} served another tip", server.name);
                    if r == 0 {
                        git_ok(&clone, &["fsck", "--no-progress"]);
                    }
                }
            }
        }
        let git_ms = samples[0].median_ms();
        let git_bytes = samples[0].median_bytes().max(1);
        for (server, s) in servers.iter().zip(&samples) {
            println!(
                "{:<28} {:<18} {:>7.0} ms {:>7.2}x {:>12} {:>7.2}x",
                row,
                server.name,
                s.median_ms(),
                s.median_ms() / git_ms,
                mb(s.median_bytes()),
                s.median_bytes() as f64 / git_bytes as f64
            );
        }
    }
    println!(
        "\nsnapgit serve's peak memory: packed {}, loose {}",
        mb(packed.peak_rss()),
        mb(loose.peak_rss())
    );

    // The clients, against one server (git's): `git clone --bare` and `snapgit import`
    // into a new folder store, whole, shallow and partial.
    git_ok(&git_repo, &["config", "uploadpack.allowFilter", "true"]);
    let git_server = &servers[0];
    println!(
        "
{:<28} {:<18} {:>10} {:>8} {:>12} {:>8}",
        "against git http-backend", "client", "wall", "ratio", "received", "ratio"
    );
    // A binary built without the component (as this benchmark builds one when missing)
    // runs only the native engine.
    let has_component = Command::new(&options.snapgit)
        .args(["--quiet", "--engine", "component", "--store"])
        .arg(root.join("probe"))
        .arg("init")
        .output()
        .is_ok_and(|out| out.status.success());
    let client_rows: [(&str, &[&str]); 3] = [
        ("whole history", &[]),
        ("--depth 1", &["--depth", "1"]),
        ("--filter blob:none", &["--filter", "blob:none"]),
    ];
    for (row, cut) in client_rows {
        let mut samples = [Samples::default(), Samples::default(), Samples::default()];
        for r in 0..options.runs {
            let mut order: Vec<usize> = if r % 2 == 0 { vec![0, 1, 2] } else { vec![2, 1, 0] };
            order.retain(|&at| at != 1 || has_component);
            for at in order {
                let dir = tempfile::tempdir_in(root).expect("a folder");
                let dir = dir.path();
                if at == 0 {
                    // git spells the filter with `=`.
                    let git_cut: Vec<String> = match cut {
                        ["--filter", spec] => vec![format!("--filter={spec}")],
                        other => other.iter().map(|a| (*a).to_owned()).collect(),
                    };
                    measure(git_server, &mut samples[0], |url| {
                        let mut args = vec!["clone", "-q", "--bare"];
                        args.extend(git_cut.iter().map(String::as_str));
                        args.extend([url, "clone.git"]);
                        git_ok(dir, &args);
                    });
                } else {
                    let engine = if at == 1 { "component" } else { "native" };
                    measure(git_server, &mut samples[at], |url| {
                        let out = Command::new(&options.snapgit)
                            .args(["--quiet", "--engine", engine, "--store"])
                            .arg(dir.join("store"))
                            .args(["--repo", "default", "import", url])
                            .args(cut)
                            .output()
                            .expect("snapgit runs");
                        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                    });
                    if r == 0 {
                        git_ok(&dir.join("store"), &["fsck", "--no-progress"]);
                    }
                }
            }
        }
        let git_ms = samples[0].median_ms();
        let git_bytes = samples[0].median_bytes().max(1);
        for (client, s) in ["git clone --bare", "snapgit import", "snapgit, native"]
            .iter()
            .zip(&samples)
        {
            println!(
                "{:<28} {:<18} {:>7.0} ms {:>7.2}x {:>12} {:>7.2}x",
                row,
                client,
                s.median_ms(),
                s.median_ms() / git_ms,
                mb(s.median_bytes()),
                s.median_bytes() as f64 / git_bytes as f64
            );
        }
    }
}

/// Point the store's branch at `id` (a folder store's loose ref).
fn write_ref(store: &Path, id: &str) {
    let path = store.join(BRANCH);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
    std::fs::write(path, format!("{id}\n")).expect("the ref is written");
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}
