//! The same scenarios through native core and through the component: equal results.

use std::sync::Arc;

use bstr::ByteSlice;
use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    commit::{Change as CoreChange, Signature as CoreSignature},
    diff::{ChangeKind as CoreKind, FileChange as CoreFile, tree as core_diff},
    gc, history, read,
    repo::{self, AdminOutput, RepoOp, Start},
    tree::Mode as CoreMode,
};
use snapgit_host::{
    driver,
    runtime::{
        Change, ChangeKind, Config, DiffRequest, FileChange, Io, LogRequest, Mode, PruneRequest, Put, Rename,
        RestoreRequest, Signature,
    },
    storage::{Storage, memory::MemoryStorage},
};

use crate::{commit_request, runtime};

/// A file change as both sides can say it.
#[derive(Debug, PartialEq, Eq)]
struct Same {
    path: String,
    kind: &'static str,
    from: Option<String>,
    old: Option<String>,
    new: Option<String>,
    lines: Option<(u64, u64)>,
}

fn mode_name(mode: CoreMode) -> &'static str {
    mode.as_octal()
}

fn wit_mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Regular => "100644",
        Mode::Executable => "100755",
        Mode::Symlink => "120000",
        Mode::Tree => "40000",
        Mode::Submodule => "160000",
    }
}

fn native_files(files: &[CoreFile]) -> Vec<Same> {
    files
        .iter()
        .map(|f| {
            let (kind, from) = match &f.kind {
                CoreKind::Added => ("added", None),
                CoreKind::Deleted => ("deleted", None),
                CoreKind::Renamed { from } => ("renamed", Some(from.to_str_lossy().into_owned())),
                CoreKind::TypeChanged => ("type-changed", None),
                _ => ("modified", None),
            };
            Same {
                path: f.path.to_str_lossy().into_owned(),
                kind,
                from,
                old: f.old.map(|(id, mode)| format!("{id} {}", mode_name(mode))),
                new: f.new.map(|(id, mode)| format!("{id} {}", mode_name(mode))),
                lines: f.lines.map(|l| (l.added, l.removed)),
            }
        })
        .collect()
}

fn component_files(files: &[FileChange]) -> Vec<Same> {
    files
        .iter()
        .map(|f| Same {
            path: f.path.clone(),
            kind: match f.kind {
                ChangeKind::Added => "added",
                ChangeKind::Deleted => "deleted",
                ChangeKind::Renamed => "renamed",
                ChangeKind::TypeChanged => "type-changed",
                ChangeKind::Modified => "modified",
            },
            from: f.renamed_from.clone(),
            old: f.old.as_ref().map(|s| format!("{} {}", s.id, wit_mode_name(s.mode))),
            new: f.new.as_ref().map(|s| format!("{} {}", s.id, wit_mode_name(s.mode))),
            lines: f.lines.map(|l| (l.added, l.removed)),
        })
        .collect()
}

fn sig(seconds: i64) -> (CoreSignature, Signature) {
    (
        CoreSignature::new("Agent", "agent@example.com", seconds),
        Signature {
            name: "Agent".into(),
            email: "agent@example.com".into(),
            time: seconds,
            offset_minutes: 0,
        },
    )
}

/// One change, both ways.
fn put(path: &str, data: &[u8], executable: bool) -> (CoreChange, Change) {
    (
        CoreChange::Put {
            path: path.into(),
            data: data.to_vec(),
            mode: if executable {
                CoreMode::Executable
            } else {
                CoreMode::Regular
            },
        },
        Change::Put(Put {
            path: path.into(),
            data: data.to_vec(),
            mode: if executable { Mode::Executable } else { Mode::Regular },
        }),
    )
}

fn delete(path: &str) -> (CoreChange, Change) {
    (CoreChange::delete(path), Change::Delete(path.into()))
}

fn rename(from: &str, to: &str) -> (CoreChange, Change) {
    (
        CoreChange::rename(from, to),
        Change::Rename(Rename {
            from: from.into(),
            to: to.into(),
        }),
    )
}

fn split(changes: Vec<(CoreChange, Change)>) -> (Vec<CoreChange>, Vec<Change>) {
    changes.into_iter().unzip()
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

    async fn commit(&mut self, changes: Vec<CoreChange>, author: CoreSignature, message: &str) -> repo::CommitOutput {
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
    let (core_files, wit_files) = split(vec![
        put("memory.md", b"# Memory\nname: Ada\n", false),
        put("notes/a.md", b"one\ntwo\nthree\n", false),
        put("notes/b.md", b"b\n", false),
    ]);
    let (core_sig, wit_sig) = sig(1_700_000_000);
    let AdminOutput::Created { commit: created, files } = native
        .admin(RepoOp::create_repo(&native.cache, "agent", "main", core_files, core_sig, "create").unwrap())
        .await
    else {
        panic!("not a creation")
    };
    let ours = runtime
        .create_repo(&io, "agent", "main", &wit_files, &wit_sig, "create")
        .await
        .unwrap();
    assert_eq!(ours.commit, created.to_string());
    assert_eq!(component_files(&ours.files), native_files(&files));

    // Commits: modify, delete, rename, binary and executable files.
    let turns = vec![
        vec![
            put("notes/a.md", b"one\n2\nthree\nfour\n", false),
            delete("notes/b.md"),
            rename("memory.md", "profile.md"),
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
        let (core_changes, wit_changes) = split(changes);
        let (core_sig, wit_sig) = sig(1_700_000_100 + turn as i64);
        let message = format!("turn {turn}");
        let native_out = native.commit(core_changes, core_sig, &message).await;
        let ours = runtime
            .commit(&io, &commit_request(wit_changes, wit_sig, &message))
            .await
            .unwrap();
        assert_eq!(ours.commit, native_out.commit.to_string(), "turn {turn}");
        assert_eq!(ours.tree, native_out.tree.to_string());
        assert_eq!(ours.parent, native_out.parent.to_string());
        assert_eq!(component_files(&ours.files), native_files(&native_out.files));
        assert_eq!(ours.objects_written, native_out.objects_written as u64);
        heads.push(native_out.commit);
    }
    let head = *heads.last().unwrap();
    let hex = head.to_string();

    // History: pages with a cursor, and with a path.
    for path in [None, Some("notes/a.md")] {
        let mut request = history::Request::new(head, 2);
        request.path = path.map(Into::into);
        let page = native.run(history::Log::new(request.clone()).unwrap()).await.unwrap();
        let ours = runtime
            .log(
                &io,
                &LogRequest {
                    start: hex.clone(),
                    path: path.map(Into::into),
                    first_parent: true,
                    limit: 2,
                    cursor: None,
                },
            )
            .await
            .unwrap();
        let ids: Vec<String> = page.commits.iter().map(|c| c.id.to_string()).collect();
        assert_eq!(ours.commits.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
        assert_eq!(ours.next, page.next.as_ref().map(ToString::to_string));
        assert_eq!(ours.commits[0].message, page.commits[0].message);
        assert_eq!(ours.commits[0].author.time, page.commits[0].author.time.seconds);
        if let Some(next) = page.next {
            let rest = native
                .run(history::Log::new(request.after(next.clone())).unwrap())
                .await
                .unwrap();
            let ours = runtime
                .log(
                    &io,
                    &LogRequest {
                        start: hex.clone(),
                        path: path.map(Into::into),
                        first_parent: true,
                        limit: 2,
                        cursor: Some(next.to_string()),
                    },
                )
                .await
                .unwrap();
            let ids: Vec<String> = rest.commits.iter().map(|c| c.id.to_string()).collect();
            assert_eq!(ours.commits.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
        }
    }

    // Reads.
    let file = native
        .run(read::ReadFile::new(head, "bin/run.sh").unwrap())
        .await
        .unwrap();
    let ours = runtime.read_file(&io, &hex, "bin/run.sh").await.unwrap();
    assert_eq!((ours.id, ours.data), (file.id.to_string(), file.data));
    assert_eq!(ours.mode, Mode::Executable);
    let entries = native.run(read::ListTree::new(head, "", true).unwrap()).await.unwrap();
    let ours = runtime.list_tree(&io, &hex, "", true).await.unwrap();
    assert_eq!(
        ours.iter().map(|e| (e.path.clone(), e.id.clone())).collect::<Vec<_>>(),
        entries
            .iter()
            .map(|e| (e.path.to_str_lossy().into_owned(), e.id.to_string()))
            .collect::<Vec<_>>()
    );
    let files = native.run(read::ReadFiles::new(head, "notes").unwrap()).await.unwrap();
    let ours = runtime.read_files(&io, &hex, "notes").await.unwrap();
    assert_eq!(ours.len(), files.len());
    assert_eq!(ours[0].file.data, files[0].file.data);
    let info = native.run(read::ReadCommit::new(head)).await.unwrap();
    let ours = runtime.read_commit(&io, &hex).await.unwrap();
    assert_eq!(
        ours.parents,
        info.parents.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    assert_eq!(ours.tree, info.tree.to_string());

    // A diff across every turn, with line counts and the patch.
    let request = core_diff::Request::new(Some(created), head).with_patch();
    let diff = native.run(core_diff::Diff::new(request).unwrap()).await.unwrap();
    let ours = runtime
        .diff(
            &io,
            &DiffRequest {
                from: Some(created.to_string()),
                to: hex.clone(),
                path: None,
                renames: true,
                line_stats: true,
                patch: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(component_files(&ours.files), native_files(&diff.files));
    assert_eq!(ours.patch.as_deref(), diff.patch.as_ref().map(|p| p.as_slice()));

    // Restore a path, then the whole first tree.
    let (core_sig, wit_sig) = sig(1_700_001_000);
    for path in [Some("notes"), None] {
        let mut request = repo::RestoreRequest::new("agent", "main", created, core_sig.clone());
        request.path = path.map(Into::into);
        let native_out = native
            .run(repo::Commit::restore(&native.cache, request).unwrap())
            .await
            .unwrap();
        let ours = runtime
            .restore(
                &io,
                &RestoreRequest {
                    repo: "agent".into(),
                    branch: "main".into(),
                    target: created.to_string(),
                    path: path.map(Into::into),
                    author: wit_sig.clone(),
                    message: None,
                    line_stats: true,
                    expected_head: None,
                    max_attempts: 10,
                    lock_ttl_ms: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(ours.commit, native_out.commit.to_string());
        assert_eq!(component_files(&ours.files), native_files(&native_out.files));
        heads.push(native_out.commit);
    }

    // Branches.
    let start = heads[1];
    native
        .admin(RepoOp::create_branch("agent", "exp", Start::Commit(start)).unwrap())
        .await;
    let ours = runtime
        .create_branch(&io, "agent", "exp", &start.to_string())
        .await
        .unwrap();
    assert_eq!(ours, start.to_string());
    let AdminOutput::Branches(branches) = native.admin(RepoOp::list_branches("agent").unwrap()).await else {
        panic!("not branches")
    };
    assert_eq!(runtime.list_branches(&io, "agent").await.unwrap(), branches);
    assert_eq!(runtime.read_head(&io, "agent", "exp").await.unwrap(), start.to_string());
    runtime.delete_branch(&io, "agent", "exp").await.unwrap();
    native.admin(RepoOp::delete_branch("agent", "exp").unwrap()).await;
    assert_eq!(runtime.list_repos(&io).await.unwrap(), ["agent"]);

    // Prune to the last 2 commits, then the footprint and a GC far in the future.
    let pruned = native
        .run(gc::Prune::new(gc::PruneRequest::new("agent", "main", gc::Retention::last(2))).unwrap())
        .await
        .unwrap();
    let ours = runtime
        .prune(
            &io,
            &PruneRequest {
                repo: "agent".into(),
                branch: "main".into(),
                keep_last: Some(2),
                keep_within_ms: None,
                now_ms: 0,
                max_attempts: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(ours.new_head, pruned.new_head.to_string());
    assert_eq!((ours.kept, ours.dropped), (2, pruned.dropped));
    let report = native.run(gc::Footprint::new(&native.cache)).await.unwrap();
    let ours = runtime.footprint(&io).await.unwrap();
    assert_eq!(
        (ours.objects.count, ours.objects.bytes),
        (report.objects.count, report.objects.bytes)
    );
    assert_eq!(ours.unreachable.count, report.unreachable.count);
    assert_eq!(ours.repos[0].reachable.count, report.repos[0].reachable.count);
    let far = i64::MAX / 2;
    let mut options = gc::CollectOptions::new(far);
    options.grace_ms = 0;
    let collected = native
        .run(gc::Collect::new(&native.cache, options).unwrap())
        .await
        .unwrap();
    let ours = runtime.gc(&io, far, 0).await.unwrap();
    assert_eq!((ours.deleted, ours.reachable), (collected.deleted, collected.reachable));
    assert!(ours.deleted > 0);

    // Errors carry the same cause (on the new head: GC removed the old one).
    let (head, hex) = (pruned.new_head, pruned.new_head.to_string());
    let missing = runtime.read_file(&io, &hex, "missing.md").await.unwrap_err();
    assert_eq!(missing.code(), Some(snapgit_host::runtime::Code::NotFound), "{missing}");
    let native_missing = native
        .run(read::ReadFile::new(head, "missing.md").unwrap())
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), native_missing.to_string());
    let bad = runtime.read_file(&io, &hex, "../x").await.unwrap_err();
    assert_eq!(bad.code(), Some(snapgit_host::runtime::Code::InvalidInput), "{bad}");
    let unknown = runtime.read_commit(&io, &"0".repeat(40)).await.unwrap_err();
    assert_eq!(unknown.code(), Some(snapgit_host::runtime::Code::NotFound), "{unknown}");
    assert_eq!(id(&hex), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_through_the_component_all_land() {
    let runtime = Arc::new(runtime(Config::default()));
    let io = Io::new(Arc::new(MemoryStorage::new()));
    let (_, wit_sig) = sig(1_700_000_000);
    runtime
        .create_repo(&io, "agent", "main", &[], &wit_sig, "create")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let (runtime, io, wit_sig) = (runtime.clone(), io.clone(), wit_sig.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for turn in 0..3 {
                let change = Change::Put(Put {
                    path: format!("agent-{writer}/turn-{turn}.md"),
                    data: format!("{writer} {turn}\n").into_bytes(),
                    mode: Mode::Regular,
                });
                let mut request = commit_request(vec![change], wit_sig.clone(), &format!("{writer}/{turn}"));
                request.max_attempts = 100;
                ids.push(runtime.commit(&io, &request).await.unwrap().commit);
            }
            ids
        }));
    }
    let mut landed = Vec::new();
    for task in tasks {
        landed.extend(task.await.unwrap());
    }
    let head = runtime.read_head(&io, "agent", "main").await.unwrap();
    let page = runtime
        .log(
            &io,
            &LogRequest {
                start: head.clone(),
                path: None,
                first_parent: true,
                limit: 100,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.commits.len(), 1 + 8 * 3);
    let history: Vec<&String> = page.commits.iter().map(|c| &c.id).collect();
    for id in &landed {
        assert!(history.contains(&id), "commit {id} was lost");
    }
    assert_eq!(runtime.list_tree(&io, &head, "", true).await.unwrap().len(), 8 * 3);
}
