//! Every operation through [`api::Request`] and [`api::Op`]: the one path the faces take.

use bstr::BString;
use snapgit_core::{
    HashKind, ObjectCache, ObjectId,
    api::{self, Op, Request},
    commit::{Change, Signature},
    diff,
    drive::{self, MemoryStore},
    error::{Classify, Code},
    gc, history, read,
    repo::{AdminOutput, CommitOutput, CommitRequest, RestoreRequest, Start},
};

fn me() -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000)
}

/// Run `request` and take its output as `T`.
fn call<T: TryFrom<api::Output, Error = api::Output>>(
    cache: &mut ObjectCache,
    store: &MemoryStore,
    request: Request,
) -> T {
    let name = request.name();
    let mut op = Op::new(cache, request).unwrap_or_else(|err| panic!("{name}: {err}"));
    let output = drive::run(&mut op, cache, store).unwrap_or_else(|err| panic!("{name}: {err}"));
    T::try_from(output).unwrap_or_else(|other| panic!("{name} gave {other:?}"))
}

fn admin(cache: &mut ObjectCache, store: &MemoryStore, request: Request) -> AdminOutput {
    call(cache, store, request)
}

#[test]
fn every_request_runs_and_gives_its_own_output() {
    let store = MemoryStore::new();
    let mut cache = ObjectCache::new(HashKind::Sha1);
    let create = Request::CreateRepo {
        repo: "agent".into(),
        branch: "main".into(),
        files: vec![Change::put("notes/a.md", "a\n")],
        author: me(),
        message: "first".into(),
    };
    let AdminOutput::Created { commit: first, files } = admin(&mut cache, &store, create) else {
        panic!("create-repo gives Created")
    };
    assert_eq!(files.len(), 1);
    assert_eq!(
        admin(&mut cache, &store, Request::ListRepos),
        AdminOutput::Repos(vec!["agent".into()])
    );

    let changes = vec![Change::put("notes/b.md", "b\n"), Change::put("top.md", "top\n")];
    let request = CommitRequest::new("agent", "main", changes, me(), "second");
    let second: CommitOutput = call(&mut cache, &store, Request::Commit(request));
    assert!(second.created);
    assert_eq!(second.parent, first);
    let head = Request::ReadHead {
        repo: "agent".into(),
        branch: "main".into(),
    };
    assert_eq!(admin(&mut cache, &store, head), AdminOutput::Head(second.commit));
    let resolve = Request::Resolve {
        repo: "agent".into(),
        rev: "main~1".into(),
    };
    assert_eq!(call::<ObjectId>(&mut cache, &store, resolve), first);

    let branch = Request::CreateBranch {
        repo: "agent".into(),
        branch: "exp".into(),
        start: Start::Commit(first),
    };
    assert_eq!(admin(&mut cache, &store, branch), AdminOutput::BranchCreated(first));
    let branches = Request::ListBranches { repo: "agent".into() };
    assert_eq!(
        admin(&mut cache, &store, branches),
        AdminOutput::Branches(vec!["exp".into(), "main".into()])
    );
    let delete = Request::DeleteBranch {
        repo: "agent".into(),
        branch: "exp".into(),
    };
    assert!(matches!(admin(&mut cache, &store, delete), AdminOutput::Deleted(refs) if refs.len() == 1));

    let commit = second.commit;
    let file: read::File = call(
        &mut cache,
        &store,
        Request::ReadFile {
            commit,
            path: "notes/b.md".into(),
        },
    );
    assert_eq!(file.data, b"b\n");
    let entries: Vec<read::Entry> = call(
        &mut cache,
        &store,
        Request::ListTree {
            commit,
            path: BString::default(),
            recursive: true,
        },
    );
    assert_eq!(entries.len(), 3);
    let files: Vec<read::FileWithPath> = call(
        &mut cache,
        &store,
        Request::ReadFiles {
            commit,
            path: "notes".into(),
        },
    );
    assert_eq!(files.len(), 2);
    let info: read::CommitInfo = call(&mut cache, &store, Request::ReadCommit { commit });
    assert_eq!(info.parents, [first]);

    let page: history::Page = call(&mut cache, &store, Request::Log(history::Request::new(commit, 10)));
    assert_eq!(page.commits.len(), 2);
    let request = history::Request::new(commit, 10).with_path("notes/b.md");
    let file_page: history::FilePage = call(&mut cache, &store, Request::FileLog(request));
    assert_eq!(file_page.commits.len(), 1);
    let diffed: diff::tree::Output = call(
        &mut cache,
        &store,
        Request::Diff(diff::tree::Request::new(None, commit)),
    );
    assert_eq!(diffed.files.len(), 2);

    let restore = RestoreRequest::new("agent", "main", first, me());
    let restored: CommitOutput = call(&mut cache, &store, Request::Restore(restore));
    assert_eq!(restored.files.len(), 2);
    let prune = gc::PruneRequest::new("agent", "main", gc::Retention::last(1));
    let pruned: gc::Pruned = call(&mut cache, &store, Request::Prune(prune));
    assert!(pruned.rewritten);
    let report: gc::FootprintReport = call(&mut cache, &store, Request::Footprint);
    assert_eq!(report.repos.len(), 1);
    let collected: gc::Collected = call(&mut cache, &store, Request::Collect(gc::CollectOptions::new(i64::MAX)));
    assert!(collected.deleted > 0, "the pruned history goes");
    let deleted = admin(&mut cache, &store, Request::DeleteRepo { repo: "agent".into() });
    assert!(matches!(deleted, AdminOutput::Deleted(refs) if !refs.is_empty()));
}

#[test]
fn bad_requests_are_refused_before_any_io_with_a_typed_error() {
    let cache = ObjectCache::new(HashKind::Sha1);
    let id = ObjectId::null(HashKind::Sha1);
    let bad = [
        Request::DeleteRepo { repo: "../x".into() },
        Request::ListBranches { repo: "".into() },
        Request::ReadHead {
            repo: "agent".into(),
            branch: "a..b".into(),
        },
        Request::Resolve {
            repo: "agent".into(),
            rev: "main~x".into(),
        },
        Request::ReadFile {
            commit: id,
            path: "../etc/passwd".into(),
        },
        Request::ListTree {
            commit: id,
            path: "/abs".into(),
            recursive: false,
        },
        Request::ReadFiles {
            commit: id,
            path: "a/.git/b".into(),
        },
        Request::Commit(CommitRequest::new(
            "agent",
            "main",
            vec![Change::put(".git/config", "x")],
            me(),
            "m",
        )),
        Request::Log(history::Request::new(id, 0)),
    ];
    for request in bad {
        let name = request.name();
        let err = Op::new(&cache, request).expect_err(name);
        assert_eq!(err.code(), Code::InvalidInput, "{name}: {err}");
    }
}

#[test]
fn an_output_is_only_taken_as_its_own_operations() {
    let output = api::Output::Resolve(ObjectId::null(HashKind::Sha1));
    let back = read::File::try_from(output).expect_err("a resolve gives no file");
    assert!(matches!(back, api::Output::Resolve(_)));
}
