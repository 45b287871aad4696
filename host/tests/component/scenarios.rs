//! The same scenarios through native core and through the component: equal results.

use std::sync::Arc;

use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    api::Request,
    commit::{Change, Signature},
    diff::tree as core_diff,
    error::Classify,
    gc, history, read,
    repo::{self, AdminOutput, CommitOutput, RepoOp, Start},
    tree::Mode,
};
use snapgit_host::{
    driver,
    runtime::{Code, Config, Io, core_code},
    storage::{Storage, memory::MemoryStorage},
};

use crate::{commit_request, create_repo, names, read_head, runtime};

fn sig(seconds: i64) -> Signature {
    Signature::new("Agent", "agent@example.com", seconds)
}

fn put(path: &str, data: &[u8], executable: bool) -> Change {
    Change::Put {
        path: path.into(),
        data: data.to_vec(),
        mode: if executable { Mode::Executable } else { Mode::Regular },
    }
}

fn id(text: &str) -> ObjectId {
    snapgit_core::id::parse(HashKind::Sha1, text).unwrap()
}

/// Native core over one memory store.
struct Native {
    storage: Arc<dyn Storage>,
    cache: ObjectCache,
}

impl Native {
    async fn run<O: snapgit_core::Operation>(&mut self, mut op: O) -> Result<O::Output, O::Error>
    where
        O::Error: From<snapgit_core::object::Error>,
    {
        driver::run(&mut op, &mut self.cache, self.storage.as_ref(), None).await
    }

    async fn admin(&mut self, op: RepoOp) -> AdminOutput {
        self.run(op).await.unwrap()
    }

    async fn commit(&mut self, changes: Vec<Change>, author: Signature, message: &str) -> CommitOutput {
        let request = repo::CommitRequest::new("agent", "main", changes, author, message);
        let op = repo::Commit::new(&self.cache, request).unwrap();
        self.run(op).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_equals_native_core() {
    let runtime = runtime(Config::default());
    let io = Io::new(Arc::new(MemoryStorage::new()));
    let mut native = Native {
        storage: Arc::new(MemoryStorage::new()),
        cache: ObjectCache::new(HashKind::Sha1),
    };

    // Create a repo with files.
    let files = vec![
        put("memory.md", b"# Memory\nname: Ada\n", false),
        put("notes/a.md", b"one\ntwo\nthree\n", false),
        put("notes/b.md", b"b\n", false),
    ];
    let native_created = native
        .admin(
            RepoOp::create_repo(
                &native.cache,
                "agent",
                "main",
                files.clone(),
                sig(1_700_000_000),
                "create",
            )
            .unwrap(),
        )
        .await;
    let AdminOutput::Created { commit: created, .. } = native_created.clone() else {
        panic!("not a creation")
    };
    let (ours, ours_files) = create_repo(&runtime, &io, files).await;
    assert_eq!(
        AdminOutput::Created {
            commit: ours,
            files: ours_files
        },
        native_created
    );

    // Commits: modify, delete, rename, binary and executable files.
    let turns = vec![
        vec![
            put("notes/a.md", b"one\n2\nthree\nfour\n", false),
            Change::delete("notes/b.md"),
            Change::rename("memory.md", "profile.md"),
        ],
        vec![
            put("transcripts/full.jsonl", b"{\"role\":\"user\"}\n", false),
            put("bin/data.bin", b"\x00\x01\x02binary", false),
            put("bin/run.sh", b"#!/bin/sh\necho hi\n", true),
        ],
        vec![put("notes/a.md", b"one\n2\n", false)],
    ];
    let mut heads = vec![created];
    for (turn, changes) in turns.into_iter().enumerate() {
        let author = sig(1_700_000_100 + turn as i64);
        let message = format!("turn {turn}");
        let native_out = native.commit(changes.clone(), author.clone(), &message).await;
        let ours: CommitOutput = runtime
            .call(&io, Request::Commit(commit_request(changes, author, &message)))
            .await
            .unwrap();
        assert_eq!(ours, native_out, "turn {turn}");
        assert!(!ours.files.is_empty(), "turn {turn}");
        heads.push(native_out.commit);
    }
    let head = *heads.last().unwrap();

    // History: pages with a cursor, and with a path.
    for path in [None, Some("notes/a.md")] {
        let mut request = history::Request::new(head, 2);
        request.path = path.map(Into::into);
        let page = native.run(history::Log::new(request.clone()).unwrap()).await.unwrap();
        let ours: history::Page = runtime.call(&io, Request::Log(request.clone())).await.unwrap();
        assert_eq!(ours, page);
        assert!(!ours.commits.is_empty());
        if let Some(next) = page.next {
            let request = request.after(next);
            let rest = native.run(history::Log::new(request.clone()).unwrap()).await.unwrap();
            let ours: history::Page = runtime.call(&io, Request::Log(request)).await.unwrap();
            assert_eq!(ours, rest);
            assert!(!ours.commits.is_empty());
        }
    }

    // Reads.
    let file = native
        .run(read::ReadFile::new(head, "bin/run.sh").unwrap())
        .await
        .unwrap();
    let ours: read::File = runtime
        .call(
            &io,
            Request::ReadFile {
                commit: head,
                path: "bin/run.sh".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(ours, file);
    assert_eq!(ours.mode, Mode::Executable);
    let entries = native.run(read::ListTree::new(head, "", true).unwrap()).await.unwrap();
    let ours: Vec<read::Entry> = runtime
        .call(
            &io,
            Request::ListTree {
                commit: head,
                path: "".into(),
                recursive: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(ours, entries);
    let files = native.run(read::ReadFiles::new(head, "notes").unwrap()).await.unwrap();
    let ours: Vec<read::FileWithPath> = runtime
        .call(
            &io,
            Request::ReadFiles {
                commit: head,
                path: "notes".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(ours, files);
    assert!(!ours.is_empty());
    let info = native.run(read::ReadCommit::new(head)).await.unwrap();
    let ours: read::CommitInfo = runtime.call(&io, Request::ReadCommit { commit: head }).await.unwrap();
    assert_eq!(ours, info);

    // A diff across every turn, with line counts and the patch.
    let request = core_diff::Request::new(Some(created), head).with_patch();
    let diff = native
        .run(core_diff::Diff::new(request.clone()).unwrap())
        .await
        .unwrap();
    let ours: core_diff::Output = runtime.call(&io, Request::Diff(request)).await.unwrap();
    assert_eq!(ours, diff);
    assert!(ours.patch.is_some() && !ours.files.is_empty());

    // Restore a path, then the whole first tree.
    for path in [Some("notes"), None] {
        let mut request = repo::RestoreRequest::new("agent", "main", created, sig(1_700_001_000));
        request.path = path.map(Into::into);
        let native_out = native
            .run(repo::Commit::restore(&native.cache, request.clone()).unwrap())
            .await
            .unwrap();
        let ours: CommitOutput = runtime.call(&io, Request::Restore(request)).await.unwrap();
        assert_eq!(ours, native_out);
        heads.push(native_out.commit);
    }

    // Branches.
    let start = heads[1];
    let native_branch = native
        .admin(RepoOp::create_branch("agent", "exp", Start::Commit(start)).unwrap())
        .await;
    let ours: AdminOutput = runtime
        .call(
            &io,
            Request::CreateBranch {
                repo: "agent".into(),
                branch: "exp".into(),
                start: Start::Commit(start),
            },
        )
        .await
        .unwrap();
    assert_eq!(ours, AdminOutput::BranchCreated(start));
    assert_eq!(ours, native_branch);
    let branches = native.admin(RepoOp::list_branches("agent").unwrap()).await;
    let ours = names(&runtime, &io, Request::ListBranches { repo: "agent".into() }).await;
    assert_eq!(AdminOutput::Branches(ours), branches);
    assert_eq!(read_head(&runtime, &io, "exp").await.unwrap(), start);
    let ours: AdminOutput = runtime
        .call(
            &io,
            Request::DeleteBranch {
                repo: "agent".into(),
                branch: "exp".into(),
            },
        )
        .await
        .unwrap();
    let native_deleted = native.admin(RepoOp::delete_branch("agent", "exp").unwrap()).await;
    assert_eq!(ours, native_deleted);
    assert_eq!(names(&runtime, &io, Request::ListRepos).await, ["agent"]);

    // Prune to the last 2 commits, then the footprint and a GC far in the future.
    let request = gc::PruneRequest::new("agent", "main", gc::Retention::last(2));
    let pruned = native.run(gc::Prune::new(request.clone()).unwrap()).await.unwrap();
    let ours: gc::Pruned = runtime.call(&io, Request::Prune(request)).await.unwrap();
    assert_eq!(ours, pruned);
    assert_eq!(ours.kept, 2);
    let report = native.run(gc::Footprint::new(&native.cache)).await.unwrap();
    let ours: gc::FootprintReport = runtime.call(&io, Request::Footprint).await.unwrap();
    assert_eq!(ours, report);
    let far = i64::MAX / 2;
    let mut options = gc::CollectOptions::new(far);
    options.grace_ms = 0;
    let collected = native
        .run(gc::Collect::new(&native.cache, options).unwrap())
        .await
        .unwrap();
    let ours: gc::Collected = runtime.call(&io, Request::Collect(options)).await.unwrap();
    // Equal but for the mark's read rounds: native core's cache already holds every
    // reachable object (0 rounds), the component starts each call with an empty one.
    assert!(ours.rounds > 0, "{ours:?}");
    assert_eq!(
        gc::Collected {
            rounds: collected.rounds,
            ..ours
        },
        collected
    );
    assert!(ours.deleted > 0);

    // Errors carry the same cause (on the new head: GC removed the old one).
    let head = pruned.new_head;
    let read_file = |path: &str| Request::ReadFile {
        commit: head,
        path: path.into(),
    };
    let missing = runtime.run(&io, read_file("missing.md")).await.unwrap_err();
    assert_eq!(missing.code(), Some(Code::NotFound), "{missing}");
    let native_missing = native
        .run(read::ReadFile::new(head, "missing.md").unwrap())
        .await
        .unwrap_err();
    assert_eq!(missing.code().map(core_code), Some(native_missing.code()));
    assert_eq!(missing.to_string(), native_missing.to_string());
    let bad = runtime.run(&io, read_file("../x")).await.unwrap_err();
    assert_eq!(bad.code(), Some(Code::InvalidInput), "{bad}");
    let unknown = runtime
        .run(
            &io,
            Request::ReadCommit {
                commit: id(&"0".repeat(40)),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some(Code::NotFound), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_through_the_component_all_land() {
    let runtime = Arc::new(runtime(Config::default()));
    let io = Io::new(Arc::new(MemoryStorage::new()));
    create_repo(&runtime, &io, Vec::new()).await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let (runtime, io) = (runtime.clone(), io.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for turn in 0..3 {
                let change = Change::put(format!("agent-{writer}/turn-{turn}.md"), format!("{writer} {turn}\n"));
                let request = commit_request(vec![change], sig(1_700_000_000), &format!("{writer}/{turn}"));
                let out: CommitOutput = runtime.call(&io, Request::Commit(request)).await.unwrap();
                ids.push(out.commit);
            }
            ids
        }));
    }
    let mut landed = Vec::new();
    for task in tasks {
        landed.extend(task.await.unwrap());
    }
    let head = read_head(&runtime, &io, "main").await.unwrap();
    let page: history::Page = runtime
        .call(&io, Request::Log(history::Request::new(head, 100)))
        .await
        .unwrap();
    assert_eq!(page.commits.len(), 1 + 8 * 3);
    let history: Vec<ObjectId> = page.commits.iter().map(|c| c.id).collect();
    for id in &landed {
        assert!(history.contains(id), "commit {id} was lost");
    }
    let files: Vec<read::Entry> = runtime
        .call(
            &io,
            Request::ListTree {
                commit: head,
                path: "".into(),
                recursive: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(files.len(), 8 * 3);
}

/// A busy lock is queued for through the `wait` import: the component asks the host to
/// wait, asks for the lock again, and takes it once its holder lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_lock_is_waited_for_through_the_host() {
    use snapgit_host::{Locks, lock::memory::MemoryLocks};
    let runtime = runtime(Config::default());
    let locks = Arc::new(MemoryLocks::new());
    let io = Io::new(Arc::new(MemoryStorage::new())).with_locks(locks.clone());
    create_repo(&runtime, &io, Vec::new()).await;
    // Someone holds the branch's lock for a moment.
    let held = locks
        .acquire("locks/agent/main", std::time::Duration::from_millis(300))
        .await
        .unwrap();
    assert!(held.is_some());
    let mut request = commit_request(vec![put("a.md", b"a\n", false)], sig(1_700_000_000), "locked");
    request.lock_ttl_ms = Some(60_000);
    let out: CommitOutput = runtime.call(&io, Request::Commit(request)).await.unwrap();
    assert!(out.created && out.locked, "{out:?}");
}
