//! Push and fetch through the component, its HTTP import answered by the host, against
//! `snapgit serve` in this process; real `git` clones what was pushed and pushes more.

use std::{net::SocketAddr, path::Path, process::Command, sync::Arc};

use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    api::{self, Request},
    commit::Change,
    read,
    remote::client::{FetchRequest, Fetched, PushRequest, Pushed, Remote},
    repo::CommitOutput,
};
use snapgit_host::{
    driver,
    runtime::{Code, Config, Error, Io},
    serve,
    storage::{Storage, memory::MemoryStorage},
};

use crate::{commit_request, create_repo, read_head, runtime, signature};

/// `snapgit serve` over a memory store on a free loopback port, stopped when dropped.
struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start() -> Server {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (listening, at) = tokio::sync::oneshot::channel::<SocketAddr>();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            serve::serve(storage, None, serve::Config::default(), addr, shutdown, |local| {
                let _ = listening.send(local);
            })
            .await
            .unwrap();
        });
        let local = at.await.expect("the server listens");
        Server {
            url: format!("http://{local}"),
            stop: Some(stop),
        }
    }

    fn remote(&self, repo: &str) -> Remote {
        Remote {
            url: format!("{}/{repo}.git", self.url),
            headers: Vec::new(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn push_request(remote: Remote) -> PushRequest {
    PushRequest {
        repo: "agent".into(),
        branch: "main".into(),
        remote,
        remote_ref: None,
        force: false,
    }
}

fn fetch_request(repo: &str, remote: Remote, refs: &[&str]) -> FetchRequest {
    FetchRequest {
        repo: repo.into(),
        remote,
        refs: refs.iter().map(|r| (*r).to_owned()).collect(),
        into: None,
        force: false,
        depth: None,
        filter: None,
    }
}

/// `git <args>` in `dir` with no user or system config; its stdout, or a panic with stderr.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Git")
        .env("GIT_AUTHOR_EMAIL", "git@example.com")
        .env("GIT_COMMITTER_NAME", "Git")
        .env("GIT_COMMITTER_EMAIL", "git@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn read_text(runtime: &snapgit_host::runtime::Runtime, io: &Io, commit: ObjectId, path: &str) -> String {
    let request = Request::ReadFile {
        commit,
        path: path.into(),
    };
    let file: read::File = runtime.call(io, request).await.unwrap();
    String::from_utf8(file.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_and_a_fetch_through_the_component_reach_git() {
    let runtime = runtime(Config::default());
    let server = Server::start().await;
    // Two stores with the same history: the component works on the first, native core
    // on the second.
    let local = Io::new(Arc::new(MemoryStorage::new()));
    let native_store = Arc::new(MemoryStorage::new());
    let mut head = None;
    for io in [local.clone(), Io::new(native_store.clone())] {
        create_repo(&runtime, &io, vec![Change::put("memory.md", "# Memory\n")]).await;
        let changes = vec![Change::put("memory.md", "# Memory\n- likes tea\n")];
        let request = Request::Commit(commit_request(changes, signature(), "turn 1"));
        let committed: CommitOutput = runtime.call(&io, request).await.unwrap();
        assert_eq!(*head.get_or_insert(committed.commit), committed.commit);
    }
    let head = head.unwrap();

    // The first push sends the whole history and creates the remote's repo.
    let pushed: Pushed = runtime
        .call(&local, Request::Push(push_request(server.remote("agent"))))
        .await
        .unwrap();
    assert_eq!(
        (pushed.remote_ref.as_str(), pushed.old, pushed.new),
        ("refs/heads/main", None, head)
    );
    assert!(!pushed.up_to_date);
    assert_eq!(pushed.objects, 6, "two commits, two trees, two blobs");
    let again: Pushed = runtime
        .call(&local, Request::Push(push_request(server.remote("agent"))))
        .await
        .unwrap();
    assert!(again.up_to_date, "{again:?}");
    assert_eq!((again.old, again.new, again.objects), (Some(head), head, 0));

    // git clones what the component pushed, and pushes a commit of its own on top.
    let work = tempfile::tempdir().unwrap();
    let remote_url = server.remote("agent").url;
    git(work.path(), &["clone", "--quiet", &remote_url, "clone"]);
    let clone = work.path().join("clone");
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), head.to_string());
    assert_eq!(git(&clone, &["rev-list", "--count", "HEAD"]), "2");
    assert_eq!(
        std::fs::read_to_string(clone.join("memory.md")).unwrap(),
        "# Memory\n- likes tea\n"
    );
    git(&clone, &["fsck", "--strict"]);
    std::fs::write(clone.join("notes.md"), "from git\n").unwrap();
    git(&clone, &["add", "notes.md"]);
    git(&clone, &["commit", "--quiet", "-m", "from git"]);
    git(&clone, &["push", "--quiet", "origin", "HEAD:main"]);
    let from_git: ObjectId = snapgit_core::id::parse(HashKind::Sha1, &git(&clone, &["rev-parse", "HEAD"])).unwrap();

    // An import into another store: every branch, the repo created.
    let other = Io::new(Arc::new(MemoryStorage::new()));
    let fetched: Fetched = runtime
        .call(
            &other,
            Request::Fetch(fetch_request("agent", server.remote("agent"), &[])),
        )
        .await
        .unwrap();
    assert_eq!(fetched.refs.len(), 1, "{fetched:?}");
    let fetched_ref = &fetched.refs[0];
    assert_eq!(
        (fetched_ref.local_ref.as_str(), fetched_ref.old, fetched_ref.new),
        ("refs/heads/main", None, from_git)
    );
    assert_eq!(read_head(&runtime, &other, "main").await.unwrap(), from_git);
    assert_eq!(read_text(&runtime, &other, from_git, "notes.md").await, "from git\n");

    // The local store fetches git's commit onto its branch: a fast-forward, only the new
    // objects sent; native core fetching the same into its store agrees.
    let fetched: Fetched = runtime
        .call(
            &local,
            Request::Fetch(fetch_request("agent", server.remote("agent"), &["main"])),
        )
        .await
        .unwrap();
    assert_eq!(fetched.refs.len(), 1);
    assert_eq!((fetched.refs[0].old, fetched.refs[0].new), (Some(head), from_git));
    assert_eq!(fetched.objects, 3, "git's commit, its tree and its blob");
    assert_eq!(read_head(&runtime, &local, "main").await.unwrap(), from_git);
    let mut cache = ObjectCache::new(HashKind::Sha1);
    let request = Request::Fetch(fetch_request("agent", server.remote("agent"), &["main"]));
    let mut op = api::Op::new(&cache, request).unwrap();
    let native = driver::run(&mut op, &mut cache, native_store.as_ref(), None)
        .await
        .unwrap();
    assert_eq!(Fetched::try_from(native).unwrap(), fetched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_failures_carry_core_codes() {
    let runtime = runtime(Config::default());
    let server = Server::start().await;
    let local = Io::new(Arc::new(MemoryStorage::new()));
    create_repo(&runtime, &local, vec![Change::put("a.md", "a\n")]).await;

    // Nothing to fetch: the server answers 404, a failure of the remote.
    let err = runtime
        .call::<Fetched>(
            &local,
            Request::Fetch(fetch_request("copy", server.remote("absent"), &[])),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Storage), "{err}");
    assert!(err.to_string().contains("HTTP 404"), "{err}");

    // No server at all: the host's HTTP failure, as a storage failure of the operation.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let remote = Remote {
        url: format!("http://{closed}/agent.git"),
        headers: Vec::new(),
    };
    let err = runtime
        .call::<Pushed>(&local, Request::Push(push_request(remote)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Storage), "{err}");
    assert!(err.to_string().starts_with("storage failed: HTTP GET"), "{err}");

    // A URL core refuses never reaches the host.
    let remote = Remote {
        url: "ftp://example.com/agent.git".into(),
        headers: Vec::new(),
    };
    let err = runtime
        .call::<Pushed>(&local, Request::Push(push_request(remote)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Failed(f) if f.code == Code::InvalidInput),
        "{err}"
    );

    // A push the remote refuses: its branch moved on elsewhere.
    runtime
        .call::<Pushed>(&local, Request::Push(push_request(server.remote("agent"))))
        .await
        .unwrap();
    let diverged = Io::new(Arc::new(MemoryStorage::new()));
    create_repo(&runtime, &diverged, vec![Change::put("b.md", "b\n")]).await;
    let err = runtime
        .call::<Pushed>(&diverged, Request::Push(push_request(server.remote("agent"))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Conflict), "{err}");
    assert!(err.to_string().contains("non-fast-forward"), "{err}");
}
