use snapgit_core::{
    ObjectCache, ObjectId, Operation, Step,
    commit::Change,
    drive::{self, MemoryStore, ObjectStore},
    merge::ConflictPolicy,
    policy::{Policy, Violation},
    repo::{AdminOutput, Commit, CommitRequest, Error, RepoOp, Start},
    step::{Answer, LockRequest},
};

use crate::support::{files, me, sha1};

fn admin(cache: &mut ObjectCache, store: &MemoryStore, mut op: RepoOp) -> Result<AdminOutput, Error> {
    drive::run(&mut op, cache, store)
}

fn create(store: &MemoryStore, repo: &str) -> ObjectId {
    let mut cache = sha1();
    let op = RepoOp::create_repo(
        &cache,
        repo,
        "main",
        vec![Change::put("README.md", "hello\n")],
        me(),
        "create",
    )
    .unwrap();
    match admin(&mut cache, store, op).unwrap() {
        AdminOutput::Created { commit, .. } => commit,
        other => panic!("{other:?}"),
    }
}

fn commit_to(
    cache: &mut ObjectCache,
    store: &MemoryStore,
    request: CommitRequest,
) -> Result<snapgit_core::repo::CommitOutput, Error> {
    let mut op = Commit::new(cache, request)?;
    drive::run(&mut op, cache, store)
}

fn put(path: &str, data: &str) -> Change {
    Change::put(path, data)
}

#[test]
fn repos_and_branches() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let first = create(&store, "agent-1");
    create(&store, "agent-2");
    assert_eq!(
        admin(&mut cache, &store, RepoOp::list_repos()).unwrap(),
        AdminOutput::Repos(vec!["agent-1".into(), "agent-2".into()])
    );
    let op = RepoOp::create_repo(&cache, "agent-1", "main", vec![], me(), "again").unwrap();
    assert!(matches!(admin(&mut cache, &store, op), Err(Error::RepoExists { repo }) if repo == "agent-1"));

    let op = RepoOp::create_branch("agent-1", "feature/x", Start::Branch("main".into())).unwrap();
    assert_eq!(
        admin(&mut cache, &store, op).unwrap(),
        AdminOutput::BranchCreated(first)
    );
    let op = RepoOp::create_branch("agent-1", "pinned", Start::Commit(first)).unwrap();
    admin(&mut cache, &store, op).unwrap();
    let op = RepoOp::create_branch("agent-1", "pinned", Start::Commit(first)).unwrap();
    assert!(matches!(admin(&mut cache, &store, op), Err(Error::BranchExists { .. })));
    let op = RepoOp::create_branch("agent-1", "other", Start::Branch("nope".into())).unwrap();
    assert!(matches!(admin(&mut cache, &store, op), Err(Error::BranchNotFound { branch, .. }) if branch == "nope"));
    let unknown = ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap();
    let op = RepoOp::create_branch("agent-1", "other", Start::Commit(unknown)).unwrap();
    assert!(matches!(admin(&mut cache, &store, op), Err(Error::Object(_))));

    let op = RepoOp::list_branches("agent-1").unwrap();
    assert_eq!(
        admin(&mut cache, &store, op).unwrap(),
        AdminOutput::Branches(vec!["feature/x".into(), "main".into(), "pinned".into()])
    );
    let op = RepoOp::read_head("agent-1", "feature/x").unwrap();
    assert_eq!(admin(&mut cache, &store, op).unwrap(), AdminOutput::Head(first));
    let op = RepoOp::delete_branch("agent-1", "feature/x").unwrap();
    admin(&mut cache, &store, op).unwrap();
    let op = RepoOp::read_head("agent-1", "feature/x").unwrap();
    assert!(matches!(
        admin(&mut cache, &store, op),
        Err(Error::BranchNotFound { .. })
    ));

    let op = RepoOp::delete_repo("agent-2").unwrap();
    admin(&mut cache, &store, op).unwrap();
    assert_eq!(
        admin(&mut cache, &store, RepoOp::list_repos()).unwrap(),
        AdminOutput::Repos(vec!["agent-1".into()])
    );
    let op = RepoOp::delete_repo("agent-2").unwrap();
    assert!(matches!(admin(&mut cache, &store, op), Err(Error::RepoNotFound { .. })));
    let op = RepoOp::list_branches("agent-2").unwrap();
    assert!(matches!(admin(&mut cache, &store, op), Err(Error::RepoNotFound { .. })));
}

#[test]
fn names_follow_git_rules() {
    for bad in [
        "", "a/b", "..", "a..b", "a.lock", "a b", "a~b", "a^b", "a:b", "-", "@{x", ".hidden", "x\u{7f}",
    ] {
        assert!(
            matches!(RepoOp::delete_repo(bad), Err(Error::InvalidName(_))),
            "repo {bad:?}"
        );
    }
    for bad in ["", "a..b", "a/", "/a", "a//b", "x.lock", "a b", "HEAD", "a/.b"] {
        assert!(
            matches!(RepoOp::read_head("r", bad), Err(Error::InvalidName(_))),
            "branch {bad:?}"
        );
    }
    assert!(RepoOp::read_head("agent-7", "feature/sub-topic").is_ok());
    let err = RepoOp::delete_repo("a..b").unwrap_err();
    assert!(err.to_string().contains("\"a..b\""), "{err}");
}

#[test]
fn a_warm_commit_is_one_put_and_one_swap() {
    let store = MemoryStore::new();
    create(&store, "r");
    let mut cache = sha1();
    let first = commit_to(
        &mut cache,
        &store,
        CommitRequest::new("r", "main", vec![put("a.md", "1\n")], me(), "m"),
    )
    .unwrap();
    assert_eq!(first.attempts, 1);
    let before = store.counts();
    let second = commit_to(
        &mut cache,
        &store,
        CommitRequest::new("r", "main", vec![put("a.md", "2\n")], me(), "m"),
    )
    .unwrap();
    let after = store.counts();
    assert_eq!(second.parent, first.commit);
    assert_eq!(after.get_rounds - before.get_rounds, 0, "no reads");
    assert_eq!(after.requests() - before.requests(), 2, "one Put, one CAS");
    assert_eq!(second.objects_written, 3, "blob, root tree, commit");
}

#[test]
fn a_cold_commit_reads_the_ref_then_depth_plus_two_object_rounds() {
    let store = MemoryStore::new();
    create(&store, "r");
    let mut cache = sha1();
    commit_to(
        &mut cache,
        &store,
        CommitRequest::new("r", "main", vec![put("a/b/c.md", "1\n")], me(), "m"),
    )
    .unwrap();
    let before = store.counts();
    let mut cold = sha1();
    commit_to(
        &mut cold,
        &store,
        CommitRequest::new("r", "main", vec![put("a/b/c.md", "2\n")], me(), "m"),
    )
    .unwrap();
    let after = store.counts();
    // ref + the packs listed (a cold cache) + (commit, root, a, a/b, old blob) + put + cas
    assert_eq!(after.requests() - before.requests(), 9);
    assert_eq!(after.get_rounds - before.get_rounds, 5);
}

/// Two writers build on the same head; the second to swap replays onto the first.
fn race(
    policy: ConflictPolicy,
    ours: Vec<Change>,
    theirs: Vec<Change>,
) -> (MemoryStore, Result<snapgit_core::repo::CommitOutput, Error>) {
    let store = MemoryStore::new();
    create(&store, "r");
    let mut slow = sha1();
    let mut request = CommitRequest::new("r", "main", ours, me(), "slow");
    request.on_conflict = policy;
    let mut op = Commit::new(&slow, request).unwrap();
    // Run the slow writer up to its compare-and-swap.
    loop {
        match op.poll(&mut slow).unwrap() {
            Step::CasRef(cas) => {
                // Meanwhile another writer lands.
                let mut fast = sha1();
                commit_to(&mut fast, &store, CommitRequest::new("r", "main", theirs, me(), "fast")).unwrap();
                let outcome = store.cas_ref(&cas).unwrap();
                op.answer(&mut slow, Answer::Cas(outcome)).unwrap();
                break;
            }
            Step::Get(ids) => {
                let objects = store.get_many(&ids).unwrap();
                op.provide(&mut slow, objects).unwrap();
            }
            Step::ReadRef(key) => op
                .answer(&mut slow, Answer::Ref(store.read_ref(&key).unwrap()))
                .unwrap(),
            Step::Put(objects) => {
                store.put_many(&objects).unwrap();
                op.answer(&mut slow, Answer::Put).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let result = drive::run(&mut op, &mut slow, &store);
    (store, result)
}

fn head(store: &MemoryStore) -> ObjectId {
    let mut cache = sha1();
    match admin(&mut cache, store, RepoOp::read_head("r", "main").unwrap()).unwrap() {
        AdminOutput::Head(id) => id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn disjoint_concurrent_commits_both_survive() {
    let (store, result) = race(
        ConflictPolicy::Fail,
        vec![put("ours.md", "o\n")],
        vec![put("theirs.md", "t\n")],
    );
    let out = result.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(head(&store), out.commit);
    let tree = files(&store, out.commit);
    assert_eq!(tree["ours.md"], b"o\n");
    assert_eq!(tree["theirs.md"], b"t\n");
    assert_eq!(tree["README.md"], b"hello\n");
}

#[test]
fn same_path_conflicts_follow_the_policy() {
    let (store, result) = race(
        ConflictPolicy::Fail,
        vec![put("README.md", "ours\n")],
        vec![put("README.md", "theirs\n")],
    );
    match result {
        Err(Error::Conflict(conflict)) => {
            assert_eq!(conflict.path, "README.md");
            assert!(conflict.ours.is_some() && conflict.theirs.is_some() && conflict.ours != conflict.theirs);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        files(&store, head(&store))["README.md"],
        b"theirs\n",
        "nothing of ours was published"
    );

    let (store, result) = race(
        ConflictPolicy::Ours,
        vec![put("README.md", "ours\n"), put("x.md", "x\n")],
        vec![put("README.md", "theirs\n")],
    );
    let out = result.unwrap();
    assert_eq!(out.settled.len(), 1);
    let tree = files(&store, head(&store));
    assert_eq!(
        (tree["README.md"].as_slice(), tree["x.md"].as_slice()),
        (&b"ours\n"[..], &b"x\n"[..])
    );

    let (store, result) = race(
        ConflictPolicy::Theirs,
        vec![put("README.md", "ours\n"), put("x.md", "x\n")],
        vec![put("README.md", "theirs\n")],
    );
    result.unwrap();
    let tree = files(&store, head(&store));
    assert_eq!(
        (tree["README.md"].as_slice(), tree["x.md"].as_slice()),
        (&b"theirs\n"[..], &b"x\n"[..])
    );

    // They already made our change: nothing left to commit, and that is success.
    let (store, result) = race(
        ConflictPolicy::Fail,
        vec![put("README.md", "same\n")],
        vec![put("README.md", "same\n")],
    );
    let out = result.unwrap();
    assert!(!out.created);
    assert_eq!(out.commit, head(&store));
}

#[test]
fn a_stale_remembered_head_is_not_a_merge_base() {
    // A writer's cache remembers the head from its last commit; meanwhile the same file
    // is committed from elsewhere (the writer's next turn through another process or
    // server). The writer never saw the remembered head, storage did not confirm it: a
    // lost swap on it starts over on the head read, instead of calling the other
    // commit's change to the same path a conflict.
    let store = MemoryStore::new();
    create(&store, "r");
    let mut stale = sha1();
    commit_to(
        &mut stale,
        &store,
        CommitRequest::new("r", "main", vec![put("memory.md", "1\n")], me(), "1"),
    )
    .unwrap();
    let elsewhere = commit_to(
        &mut sha1(),
        &store,
        CommitRequest::new("r", "main", vec![put("memory.md", "2\n")], me(), "2"),
    )
    .unwrap()
    .commit;
    let out = commit_to(
        &mut stale,
        &store,
        CommitRequest::new("r", "main", vec![put("memory.md", "3\n")], me(), "3"),
    )
    .unwrap();
    assert_eq!((out.attempts, out.parent), (2, elsewhere));
    assert_eq!(files(&store, head(&store))["memory.md"], b"3\n");

    // A head read from storage is a merge base: the same race from there conflicts.
    let mut fresh = sha1();
    let request = CommitRequest::new("r", "main", vec![put("memory.md", "4\n")], me(), "4");
    let mut op = Commit::new(&fresh, request).unwrap();
    let result = loop {
        match op.poll(&mut fresh).unwrap() {
            Step::CasRef(cas) => {
                commit_to(
                    &mut sha1(),
                    &store,
                    CommitRequest::new("r", "main", vec![put("memory.md", "5\n")], me(), "5"),
                )
                .unwrap();
                let outcome = store.cas_ref(&cas).unwrap();
                op.answer(&mut fresh, Answer::Cas(outcome)).unwrap();
                break drive::run(&mut op, &mut fresh, &store);
            }
            Step::Get(ids) => {
                let objects = store.get_many(&ids).unwrap();
                op.provide(&mut fresh, objects).unwrap();
            }
            Step::ReadRef(key) => op
                .answer(&mut fresh, Answer::Ref(store.read_ref(&key).unwrap()))
                .unwrap(),
            Step::Put(objects) => {
                store.put_many(&objects).unwrap();
                op.answer(&mut fresh, Answer::Put).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(matches!(result, Err(Error::Conflict(_))), "{result:?}");
}

#[test]
fn strict_expected_head_fails_instead_of_replaying() {
    let store = MemoryStore::new();
    let first = create(&store, "r");
    let mut cache = sha1();
    let moved = commit_to(
        &mut cache,
        &store,
        CommitRequest::new("r", "main", vec![put("a", "1")], me(), "m"),
    )
    .unwrap();
    let mut request = CommitRequest::new("r", "main", vec![put("b", "2")], me(), "m");
    request.expected_head = Some(first);
    let err = commit_to(&mut sha1(), &store, request).unwrap_err();
    assert!(
        matches!(err, Error::HeadMoved { expected, actual: Some(actual) } if expected == first && actual == moved.commit)
    );

    let mut request = CommitRequest::new("r", "main", vec![put("b", "2")], me(), "m");
    request.expected_head = Some(moved.commit);
    commit_to(&mut sha1(), &store, request).unwrap();
}

#[test]
fn locks_are_taken_and_released_but_never_required() {
    let store = MemoryStore::new();
    create(&store, "r");
    let mut request = CommitRequest::new("r", "main", vec![put("a", "1")], me(), "m");
    request.lock_ttl_ms = Some(5_000);
    let out = commit_to(&mut sha1(), &store, request.clone()).unwrap();
    assert!(out.locked);
    // Released: another holder can take it now; while held, commits still go through.
    let token = store
        .acquire(&LockRequest {
            name: "locks/r/main".into(),
            ttl_ms: 60_000,
        })
        .unwrap();
    assert!(token.is_some(), "the commit released its lock");
    request.changes = vec![put("a", "2")];
    let before = store.counts().waited_ms;
    let out = commit_to(&mut sha1(), &store, request).unwrap();
    assert!(!out.locked, "busy lock: the CAS alone keeps it safe");
    assert_eq!(
        store.counts().waited_ms - before,
        5_000,
        "it queued for one lease (its own ttl) before going ahead"
    );
}

#[test]
fn policies_and_bad_commits_are_refused_with_nothing_written() {
    let store = MemoryStore::new();
    create(&store, "r");
    let objects_before = store.len();
    let cache = sha1();
    let mut policy = Policy::new().exclude(["*.log", "node_modules/", "!keep.log"]).unwrap();
    policy.max_file_bytes = Some(10);
    policy.max_objects_per_commit = Some(3);
    let with = |changes: Vec<Change>| {
        let mut request = CommitRequest::new("r", "main", changes, me(), "m");
        request.policy = policy.clone();
        request
    };
    let err = Commit::new(&cache, with(vec![put("debug.log", "x")])).unwrap_err();
    assert!(
        matches!(err, Error::Policy(Violation::Excluded { ref path, ref pattern }) if path == "debug.log" && pattern == "*.log")
    );
    let err = Commit::new(&cache, with(vec![put("web/node_modules/x/y.js", "x")])).unwrap_err();
    assert!(matches!(err, Error::Policy(Violation::Excluded { .. })), "{err}");
    assert!(Commit::new(&cache, with(vec![put("keep.log", "x")])).is_ok());
    let err = Commit::new(&cache, with(vec![put("big.md", "01234567890")])).unwrap_err();
    assert!(matches!(
        err,
        Error::Policy(Violation::FileTooLarge {
            size: 11,
            limit: 10,
            ..
        })
    ));
    let err = commit_to(&mut sha1(), &store, with(vec![put("a/b/c.md", "x")])).unwrap_err();
    assert!(
        matches!(err, Error::Policy(Violation::TooManyObjects { count: 5, limit: 3 })),
        "{err}"
    );

    let err = commit_to(
        &mut sha1(),
        &store,
        CommitRequest::new("r", "nope", vec![put("a", "1")], me(), "m"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err}");
    let err = commit_to(
        &mut sha1(),
        &store,
        CommitRequest::new("ghost", "main", vec![put("a", "1")], me(), "m"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::RepoNotFound { .. }), "{err}");
    let err = Commit::new(
        &cache,
        CommitRequest::new("r", "main", vec![put("../x", "1")], me(), "m"),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Build(snapgit_core::commit::Error::InvalidPath(_))),
        "{err}"
    );
    assert_eq!(store.len(), objects_before, "nothing was written");
}

fn restore_on(
    cache: &mut ObjectCache,
    store: &MemoryStore,
    request: snapgit_core::repo::RestoreRequest,
) -> Result<snapgit_core::repo::CommitOutput, Error> {
    let mut op = Commit::restore(cache, request)?;
    drive::run(&mut op, cache, store)
}

#[test]
fn restore_on_a_branch_is_a_new_commit_with_the_old_content() {
    use snapgit_core::repo::RestoreRequest;
    let store = MemoryStore::new();
    let first = create(&store, "r");
    let mut cache = sha1();
    let second = commit_to(
        &mut cache,
        &store,
        CommitRequest::new(
            "r",
            "main",
            vec![put("README.md", "changed\n"), put("notes/a.md", "a\n")],
            me(),
            "m",
        ),
    )
    .unwrap();

    // One path back.
    let mut request = RestoreRequest::new("r", "main", first, me());
    request.path = Some("README.md".into());
    let out = restore_on(&mut cache, &store, request.clone()).unwrap();
    assert!(out.created);
    assert_eq!(out.parent, second.commit, "history is never rewritten");
    let tree = files(&store, out.commit);
    assert_eq!(tree["README.md"], b"hello\n");
    assert_eq!(tree["notes/a.md"], b"a\n");

    // Again: nothing to restore, which is success without a commit.
    let again = restore_on(&mut cache, &store, request).unwrap();
    assert!(!again.created);
    assert_eq!(again.commit, out.commit);

    // The whole tree, from a stale cache while another writer moved the branch.
    let mut stale = sha1();
    let AdminOutput::Head(_) = admin(&mut stale, &store, RepoOp::read_head("r", "main").unwrap()).unwrap() else {
        panic!()
    };
    let moved = commit_to(
        &mut sha1(),
        &store,
        CommitRequest::new("r", "main", vec![put("late.md", "l\n")], me(), "m"),
    )
    .unwrap();
    let out = restore_on(&mut stale, &store, RestoreRequest::new("r", "main", first, me())).unwrap();
    assert_eq!(out.attempts, 2, "lost the race once, rebuilt on the new head");
    assert_eq!(out.parent, moved.commit);
    assert_eq!(files(&store, out.commit).keys().collect::<Vec<_>>(), ["README.md"]);

    // Bad input.
    let unknown = ObjectId::from_hex(b"2222222222222222222222222222222222222222").unwrap();
    let err = restore_on(&mut sha1(), &store, RestoreRequest::new("r", "main", unknown, me())).unwrap_err();
    assert!(matches!(err, Error::Restore(_)), "{err}");
    let mut bad = RestoreRequest::new("r", "main", first, me());
    bad.path = Some("../x".into());
    assert!(matches!(Commit::restore(&sha1(), bad), Err(Error::Restore(_))));
    assert!(matches!(
        Commit::restore(&sha1(), RestoreRequest::new("r", "a..b", first, me())),
        Err(Error::InvalidName(_))
    ));
}

/// A store that answers every swap with "lost, still at the value you expected" must not
/// keep the commit swapping forever.
#[test]
fn a_store_that_always_loses_the_same_way_ends_in_lost_race() {
    use snapgit_core::step::{CasOutcome, RefState};
    let store = MemoryStore::new();
    create(&store, "r");
    let mut cache = sha1();
    let mut request = CommitRequest::new("r", "main", vec![put("a", "1")], me(), "m");
    request.max_attempts = 3;
    let mut op = Commit::new(&cache, request).unwrap();
    let mut swaps = 0;
    let err = loop {
        match op.poll(&mut cache) {
            Err(err) => break err,
            Ok(Step::Get(ids)) => {
                let objects = store.get_many(&ids).unwrap();
                op.provide(&mut cache, objects).unwrap();
            }
            Ok(Step::ReadRef(key)) => op
                .answer(&mut cache, Answer::Ref(store.read_ref(&key).unwrap()))
                .unwrap(),
            Ok(Step::Put(_)) => op.answer(&mut cache, Answer::Put).unwrap(),
            Ok(Step::CasRef(cas)) => {
                swaps += 1;
                assert!(swaps < 100, "the commit keeps swapping");
                let expected = cas.expected.unwrap();
                let current = RefState {
                    value: expected.value,
                    version: format!("{}x", expected.version),
                };
                op.answer(&mut cache, Answer::Cas(CasOutcome::Lost { current: Some(current) }))
                    .unwrap();
            }
            Ok(other) => panic!("unexpected {other:?}"),
        }
    };
    assert!(matches!(err, Error::LostRace { .. }), "{err}");
}

/// Branch keys parse back into their repo and branch; keys outside the layout do not.
#[test]
fn branch_keys_parse_back() {
    use snapgit_core::store::{BranchName, RepoName, parse_branch_key};
    let repo = RepoName::new("agent-1").unwrap();
    let branch = BranchName::new("feature/x").unwrap();
    let key = repo.branch_key(&branch);
    assert_eq!(parse_branch_key(&key), Some((repo, branch)));
    for key in [
        "refs/namespaces/agent-1/refs/tags/v1",
        "refs/namespaces/agent-1/refs/heads/",
        "refs/namespaces/a/b/refs/heads/main",
        "refs/heads/main",
        "refs/namespaces/agent-1",
    ] {
        assert_eq!(parse_branch_key(key), None, "{key}");
    }
}

/// What a commit asked for, step by step, as the driver below saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Get,
    ReadRef,
    Put,
    Cas,
    Lock,
    Unlock,
    Wait(u64),
}

/// Drive `op` against `store`, calling `before` with each step before carrying it out
/// (to let other writers move the branch), and recording every step.
fn drive_seeing(
    op: &mut Commit,
    cache: &mut ObjectCache,
    store: &MemoryStore,
    mut before: impl FnMut(&Seen),
) -> (Result<snapgit_core::repo::CommitOutput, Error>, Vec<Seen>) {
    let mut seen = Vec::new();
    let result = (|| loop {
        let step = op.poll(cache)?;
        let kind = match &step {
            Step::Done(_) => None,
            Step::Get(_) => Some(Seen::Get),
            Step::ReadRef(_) => Some(Seen::ReadRef),
            Step::Put(_) => Some(Seen::Put),
            Step::CasRef(_) => Some(Seen::Cas),
            Step::Lock(_) => Some(Seen::Lock),
            Step::Unlock { .. } => Some(Seen::Unlock),
            Step::Wait { ms } => Some(Seen::Wait(*ms)),
            other => panic!("unexpected {other:?}"),
        };
        if let Some(kind) = kind {
            before(&kind);
            seen.push(kind);
        }
        let answer = match step {
            Step::Done(out) => return Ok(out),
            Step::Get(ids) => {
                op.provide(cache, store.get_many(&ids)?)?;
                continue;
            }
            Step::ReadRef(key) => Answer::Ref(store.read_ref(&key)?),
            Step::Put(objects) => {
                store.put_many(&objects)?;
                Answer::Put
            }
            Step::CasRef(cas) => Answer::Cas(store.cas_ref(&cas)?),
            Step::Lock(lock) => Answer::Lock(store.acquire(&lock)?),
            Step::Unlock { name, token } => {
                store.release(&name, &token)?;
                Answer::Unlocked
            }
            Step::Wait { ms } => {
                store.wait(ms)?;
                Answer::Waited
            }
            other => panic!("unexpected {other:?}"),
        };
        op.answer(cache, answer)?;
    })();
    (result, seen)
}

/// Another writer lands a file of its own on `main`.
fn land(store: &MemoryStore, name: &str) -> ObjectId {
    commit_to(
        &mut sha1(),
        store,
        CommitRequest::new("r", "main", vec![put(name, "theirs\n")], me(), "other"),
    )
    .unwrap()
    .commit
}

#[test]
fn a_lost_swap_waits_then_reads_the_head_again() {
    let store = MemoryStore::new();
    create(&store, "r");
    let mut cache = sha1();
    let request = CommitRequest::new("r", "main", vec![put("ours.md", "o\n")], me(), "slow");
    let mut op = Commit::new(&cache, request).unwrap();
    let mut landed = Vec::new();
    let (out, seen) = drive_seeing(&mut op, &mut cache, &store, |step| {
        // One writer lands just before our first swap, another while we wait: what the
        // lost swap told us is stale by the end of the wait.
        let first_swap = *step == Seen::Cas && landed.is_empty();
        if first_swap || matches!(step, Seen::Wait(_)) {
            landed.push(land(&store, &format!("theirs-{}.md", landed.len())));
        }
    });
    let out = out.unwrap();
    assert_eq!(out.attempts, 2, "the head read after the wait was current: {seen:?}");
    assert_eq!(out.parent, landed[1]);
    let after = seen.iter().position(|s| *s == Seen::Cas).unwrap() + 1;
    assert!(matches!(seen[after], Seen::Wait(ms) if ms > 0), "{seen:?}");
    assert_eq!(seen[after + 1], Seen::ReadRef, "{seen:?}");
    assert_eq!(seen.last(), Some(&Seen::Cas));
    let tree = files(&store, out.commit);
    assert!(
        ["ours.md", "theirs-0.md", "theirs-1.md"]
            .iter()
            .all(|p| tree.contains_key(*p))
    );
}

/// A writer that keeps losing (another writer lands before each of its swaps) waits
/// longer each time, and stops at `max_attempts`, or at the wait budget.
#[test]
fn losing_writers_back_off_and_give_up_within_their_bounds() {
    let store = MemoryStore::new();
    create(&store, "r");
    let mut request = CommitRequest::new("r", "main", vec![put("ours.md", "o\n")], me(), "unlucky");
    request.max_attempts = 6;
    let mut cache = sha1();
    let mut op = Commit::new(&cache, request.clone()).unwrap();
    let mut n = 0;
    let (result, seen) = drive_seeing(&mut op, &mut cache, &store, |step| {
        if *step == Seen::Cas {
            n += 1;
            land(&store, &format!("theirs-{n}.md"));
        }
    });
    assert!(matches!(result, Err(Error::LostRace { attempts: 6 })), "{result:?}");
    let waits: Vec<u64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Wait(ms) => Some(*ms),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 5, "one wait between two attempts: {seen:?}");
    // Each ceiling doubles and a wait is at least half its ceiling, so a wait two places
    // on is always longer.
    for pair in waits.windows(3) {
        assert!(pair[2] > pair[0], "{waits:?}");
    }

    // Another writer's waits differ (its commits do).
    let mut other = request.clone();
    other.changes = vec![put("other.md", "x\n")];
    let mut op = Commit::new(&cache, other).unwrap();
    let (_, seen_other) = drive_seeing(&mut op, &mut cache, &store, |step| {
        if *step == Seen::Cas {
            n += 1;
            land(&store, &format!("theirs-{n}.md"));
        }
    });
    let waits_other: Vec<&Seen> = seen_other.iter().filter(|s| matches!(s, Seen::Wait(_))).collect();
    let waits_ours: Vec<&Seen> = seen.iter().filter(|s| matches!(s, Seen::Wait(_))).collect();
    assert_ne!(waits_other, waits_ours);

    // Unbounded attempts: the wait budget ends it.
    request.max_attempts = u32::MAX;
    let before = store.counts().waited_ms;
    let mut op = Commit::new(&cache, request).unwrap();
    let (result, _) = drive_seeing(&mut op, &mut cache, &store, |step| {
        if *step == Seen::Cas {
            n += 1;
            land(&store, &format!("theirs-{n}.md"));
        }
    });
    assert!(matches!(result, Err(Error::LostRace { .. })), "{result:?}");
    assert_eq!(store.counts().waited_ms - before, snapgit_core::retry::RACE_BUDGET_MS);
}

/// A busy lock is queued for: wait, ask again, until the holder's lease is over.
#[test]
fn a_busy_lock_is_waited_for() {
    let store = MemoryStore::new();
    create(&store, "r");
    let lock = LockRequest {
        name: "locks/r/main".into(),
        ttl_ms: 1_000,
    };
    // The cache remembers the head from the commit before; the holder commits again.
    let mut cache = sha1();
    commit_to(
        &mut cache,
        &store,
        CommitRequest::new("r", "main", vec![put("b", "1")], me(), "m"),
    )
    .unwrap();
    let holder = store.acquire(&lock).unwrap().unwrap();
    let moved = land(&store, "holder.md");
    let mut request = CommitRequest::new("r", "main", vec![put("a", "1")], me(), "m");
    request.lock_ttl_ms = Some(5_000);
    let mut op = Commit::new(&cache, request).unwrap();
    let (out, seen) = drive_seeing(&mut op, &mut cache, &store, |_| {});
    let out = out.unwrap();
    assert!(out.locked, "taken once the holder's lease ran out: {seen:?}");
    // Having queued, it reads the head instead of trusting the cache's: no lost swap.
    assert_eq!((out.attempts, out.parent), (1, moved), "{seen:?}");
    let taken = seen.iter().rposition(|s| *s == Seen::Lock).unwrap();
    assert_eq!(seen[taken + 1], Seen::ReadRef, "{seen:?}");
    // Every busy answer is followed by a wait and a new try.
    let locks = seen.iter().filter(|s| **s == Seen::Lock).count();
    let waits: u64 = seen
        .iter()
        .map(|s| match s {
            Seen::Wait(ms) => *ms,
            _ => 0,
        })
        .sum();
    assert!(locks > 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|s| matches!(s, Seen::Wait(_))).count(), locks - 1);
    assert!((1_000..5_000).contains(&waits), "{waits}");
    assert!(
        seen[..seen.len() - 2].iter().all(|s| *s != Seen::Cas),
        "nothing before the lock"
    );
    // The holder lost its lease: it cannot release the lock the commit took (and gave back).
    store.release("locks/r/main", &holder).unwrap();
}

/// A writer holding the lock does not wait after a lost swap (a writer without the lock
/// moved the branch): the queue behind it would wait as long.
#[test]
fn the_lock_holder_retries_at_once() {
    let store = MemoryStore::new();
    create(&store, "r");
    let mut request = CommitRequest::new("r", "main", vec![put("a", "1")], me(), "m");
    request.lock_ttl_ms = Some(5_000);
    let mut cache = sha1();
    let mut op = Commit::new(&cache, request).unwrap();
    let mut moved = false;
    let (out, seen) = drive_seeing(&mut op, &mut cache, &store, |step| {
        if *step == Seen::Cas && !moved {
            moved = true;
            land(&store, "lockless.md");
        }
    });
    let out = out.unwrap();
    assert!(out.locked && out.attempts == 2, "{seen:?}");
    assert!(!seen.iter().any(|s| matches!(s, Seen::Wait(_))), "{seen:?}");
}
