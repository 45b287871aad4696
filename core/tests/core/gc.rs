//! Retention, the footprint report and GC, on the in-memory store and its clock.

use std::collections::{BTreeSet, HashSet};

use snapgit_core::{
    ObjectCache, ObjectId, Operation, Step,
    commit::{self, Change, Signature},
    drive::{self, MemoryStore, ObjectStore},
    gc::{Collect, CollectError, CollectOptions, Footprint, Phase, Prune, PruneError, PruneRequest, Pruned, Retention},
    object::{self, Object},
    read::{self, CommitInfo},
    step::{Answer, CasOutcome, CasRef},
    store::NameKind,
};

use crate::support::{files, sha1};

const HOUR_MS: i64 = 60 * 60 * 1000;

fn key(repo: &str, branch: &str) -> String {
    format!("refs/namespaces/{repo}/refs/heads/{branch}")
}

/// Move the ref at `key` to `id`, whatever it holds now.
fn set_ref(store: &MemoryStore, key: &str, id: ObjectId) {
    let expected = store.read_ref(key).expect("memory store");
    let outcome = store
        .cas_ref(&CasRef {
            key: key.into(),
            expected,
            new: Some(id),
        })
        .expect("memory store");
    assert!(matches!(outcome, CasOutcome::Won { .. }), "{outcome:?}");
}

/// Commit `changes` on `parent` at `seconds`, store the objects, and return the commit.
fn commit_at(
    cache: &mut ObjectCache,
    store: &MemoryStore,
    parent: Option<ObjectId>,
    changes: Vec<Change>,
    seconds: i64,
    message: &str,
) -> ObjectId {
    let me = Signature::new("Agent", "agent@example.com", seconds);
    let mut request = commit::Request::new(parent, changes, me.clone(), message);
    request.committer = Signature::new("Committer", "committer@example.com", seconds + 1);
    let mut op = commit::Commit::new(cache, request).expect("valid request");
    let out = drive::run(&mut op, cache, store).expect("commit succeeds");
    store.put_many(&out.objects).expect("memory store");
    out.id
}

/// A branch of `count` commits, one file changed per commit, committed `1000 * i`
/// seconds after the epoch; the ref points at the last. Returns the commits, oldest first.
fn branch(store: &MemoryStore, repo: &str, name: &str, parent: Option<ObjectId>, count: usize) -> Vec<ObjectId> {
    let mut cache = sha1();
    let mut head = parent;
    let mut ids = Vec::new();
    for i in 0..count {
        let changes = vec![
            Change::put(format!("{repo}/{name}/turn.md"), format!("turn {i}\n")),
            Change::put(format!("log/{i}.md"), format!("{name} {i}\n")),
        ];
        let id = commit_at(
            &mut cache,
            store,
            head,
            changes,
            1000 * (i as i64 + 1),
            &format!("{name} {i}"),
        );
        ids.push(id);
        head = Some(id);
    }
    if let Some(head) = head {
        set_ref(store, &key(repo, name), head);
    }
    ids
}

fn info(store: &MemoryStore, id: ObjectId) -> CommitInfo {
    drive::run(&mut read::ReadCommit::new(id), &mut sha1(), store).expect("commit is stored")
}

/// The first-parent history from `head`, newest first.
fn log(store: &MemoryStore, head: ObjectId) -> Vec<CommitInfo> {
    let mut out = Vec::new();
    let mut next = Some(head);
    while let Some(id) = next {
        let commit = info(store, id);
        next = commit.parents.first().copied();
        out.push(commit);
    }
    out
}

fn prune(store: &MemoryStore, request: PruneRequest) -> Result<Pruned, PruneError> {
    let mut cache = sha1();
    drive::run(&mut Prune::new(request)?, &mut cache, store)
}

fn collect(store: &MemoryStore, now_ms: i64) -> snapgit_core::gc::Collected {
    let mut cache = sha1();
    let mut op = Collect::new(&cache, CollectOptions::new(now_ms)).expect("valid options");
    drive::run(&mut op, &mut cache, store).expect("gc succeeds")
}

/// Every object reachable from the store's refs, found by decoding objects here, blobs
/// and all: a second implementation to check GC against.
fn reachable(store: &MemoryStore) -> BTreeSet<ObjectId> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<ObjectId> = store.refs().into_iter().map(|(_, id)| id).collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let stored = store
            .get(&id)
            .unwrap_or_else(|| panic!("reachable object {id} is missing"));
        match object::decode_loose(&id, &stored, u64::MAX).expect("stored objects are valid") {
            Object::Commit(commit) => {
                stack.push(commit.tree);
                stack.extend(commit.parents.iter().copied());
            }
            Object::Tree(tree) => stack.extend(tree.entries.iter().map(|e| e.oid)),
            Object::Blob(_) | Object::Tag(_) => {}
        }
    }
    seen
}

fn kind_of(store: &MemoryStore, id: &ObjectId) -> gix_object::Kind {
    let stored = store.get(id).expect("stored");
    object::decode_loose(id, &stored, u64::MAX).expect("valid").kind()
}

fn stored(store: &MemoryStore) -> BTreeSet<ObjectId> {
    store.ids().into_iter().collect()
}

/// Drive `op` against `store`; `hook` sees each step first and may stop the run (a
/// crash), which returns `None`.
fn run_hooked<O: Operation>(
    op: &mut O,
    cache: &mut ObjectCache,
    store: &MemoryStore,
    mut hook: impl FnMut(&Step<O::Output>, &O) -> bool,
) -> Option<Result<O::Output, O::Error>>
where
    O::Output: std::fmt::Debug,
{
    loop {
        let step = match op.poll(cache) {
            Ok(step) => step,
            Err(err) => return Some(Err(err)),
        };
        if !hook(&step, op) {
            return None;
        }
        let answer = match step {
            Step::Get(ids) => {
                let objects = ids.iter().map(|id| store.get(id)).collect();
                if let Err(err) = op.provide(cache, objects) {
                    return Some(Err(err));
                }
                continue;
            }
            Step::Done(out) => return Some(Ok(out)),
            Step::Put(objects) => {
                store.put_many(&objects).expect("memory store");
                Answer::Put
            }
            Step::ReadRef(key) => Answer::Ref(store.read_ref(&key).expect("memory store")),
            Step::Read(keys) => Answer::Read(store.read(&keys).expect("memory store")),
            Step::CasRef(cas) => Answer::Cas(store.cas_ref(&cas).expect("memory store")),
            Step::List(prefix) => Answer::List(store.list(&prefix).expect("memory store")),
            Step::Delete(keys) => {
                store.delete(&keys).expect("memory store");
                Answer::Deleted
            }
            Step::Wait { ms } => {
                store.wait(ms).expect("memory store");
                Answer::Waited
            }
            other => panic!("unexpected step {other:?}"),
        };
        if let Err(err) = op.answer(cache, answer) {
            return Some(Err(err));
        }
    }
}

#[test]
fn prune_keeps_the_last_commits_as_a_new_chain() {
    let store = MemoryStore::new();
    let old = branch(&store, "agent-1", "main", None, 6);
    let old_head = *old.last().expect("six commits");
    let before = stored(&store);

    let pruned = prune(&store, PruneRequest::new("agent-1", "main", Retention::last(3))).expect("prune");
    assert_eq!(pruned.old_head, old_head);
    assert!(pruned.rewritten);
    assert_eq!((pruned.kept, pruned.dropped, pruned.attempts), (3, Some(3), 1));
    assert_eq!(
        store.read_ref(&key("agent-1", "main")).expect("ref").map(|r| r.value),
        Some(pruned.new_head)
    );

    // The new chain: the same trees and metadata as the last three, on a new root.
    let new_log = log(&store, pruned.new_head);
    let old_kept: Vec<CommitInfo> = old[3..].iter().rev().map(|id| info(&store, *id)).collect();
    assert_eq!(new_log.len(), 3);
    let mut written: Vec<ObjectId> = new_log.iter().map(|c| c.id).collect();
    written.reverse();
    assert_eq!(pruned.written, written);
    for (new, old) in new_log.iter().zip(&old_kept) {
        assert_eq!(
            (&new.tree, &new.author, &new.committer),
            (&old.tree, &old.author, &old.committer)
        );
        assert_eq!(new.message, old.message);
        assert_ne!(new.id, old.id);
    }
    assert!(new_log[2].parents.is_empty(), "the oldest kept commit becomes a root");
    assert_eq!(files(&store, pruned.new_head), files(&store, old_head));

    // Only the three commits were written; the old ones stay until GC.
    let after = stored(&store);
    assert!(before.is_subset(&after));
    assert_eq!(after.len() - before.len(), 3);
    for id in &pruned.written {
        assert_eq!(kind_of(&store, id), gix_object::Kind::Commit);
    }

    // Pruning again finds nothing to drop.
    let again = prune(&store, PruneRequest::new("agent-1", "main", Retention::last(3))).expect("prune");
    assert!(!again.rewritten);
    assert_eq!((again.old_head, again.new_head), (pruned.new_head, pruned.new_head));
    assert_eq!((again.kept, again.dropped), (3, Some(0)));
}

#[test]
fn prune_with_nothing_to_drop_writes_nothing() {
    let store = MemoryStore::new();
    let old = branch(&store, "agent-1", "main", None, 3);
    for keep in [3, 4, 100] {
        let counts = store.counts();
        let pruned = prune(&store, PruneRequest::new("agent-1", "main", Retention::last(keep))).expect("prune");
        assert!(!pruned.rewritten);
        assert_eq!((pruned.old_head, pruned.new_head), (old[2], old[2]));
        assert_eq!((pruned.kept, pruned.dropped, pruned.written.len()), (3, Some(0), 0));
        let after = store.counts();
        assert_eq!(after.put_rounds, counts.put_rounds, "nothing is put");
        assert_eq!(
            after.other,
            counts.other + 2,
            "only the ref is read and the packs listed (a cold cache): no compare-and-swap"
        );
    }
    assert_eq!(
        store.read_ref(&key("agent-1", "main")).expect("ref").map(|r| r.value),
        Some(old[2])
    );
}

#[test]
fn prune_by_age_keeps_recent_commits_and_always_the_head() {
    let store = MemoryStore::new();
    // Committed at 1001, 2001, ... 6001 seconds.
    let old = branch(&store, "agent-1", "main", None, 6);
    let now_ms = 6_001_000;

    // Within 2.5 ks: 4001, 5001 and 6001.
    let request = PruneRequest::new("agent-1", "main", Retention::within(2_500_000, now_ms));
    let pruned = prune(&store, request).expect("prune");
    assert_eq!((pruned.kept, pruned.dropped), (3, Some(3)));
    let trees: Vec<ObjectId> = log(&store, pruned.new_head).iter().map(|c| c.tree).collect();
    let expected: Vec<ObjectId> = old[3..].iter().rev().map(|id| info(&store, *id).tree).collect();
    assert_eq!(trees, expected);

    // Nothing is that recent: the head stays, alone.
    let request = PruneRequest::new("agent-1", "main", Retention::within(1, now_ms + 10 * HOUR_MS));
    let pruned = prune(&store, request).expect("prune");
    assert_eq!((pruned.kept, pruned.dropped), (1, Some(2)));
    let head = log(&store, pruned.new_head);
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].tree, info(&store, old[5]).tree);
}

#[test]
fn prune_rules_combine_as_a_union() {
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 8);
    let now_ms = 8_001_000;
    // Within 1.5 ks keeps two; the last five keeps five: five are kept.
    let retention = Retention::within(1_500_000, now_ms).and_last(5);
    let pruned = prune(&store, PruneRequest::new("agent-1", "main", retention)).expect("prune");
    assert_eq!((pruned.kept, pruned.dropped), (5, Some(3)));
    // Within 3.5 ks keeps four (4 of the 5 left); the last two keeps two: four are kept.
    let retention = Retention::last(2).and_within(3_500_000, now_ms);
    let pruned = prune(&store, PruneRequest::new("agent-1", "main", retention)).expect("prune");
    assert_eq!((pruned.kept, pruned.dropped), (4, Some(1)));
}

#[test]
fn prune_without_counting_reads_only_the_kept_commits() {
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 10);
    let mut request = PruneRequest::new("agent-1", "main", Retention::last(2));
    request.count_dropped = false;
    let mut cache = sha1();
    let mut op = Prune::new(request).expect("valid");
    let pruned = drive::run(&mut op, &mut cache, &store).expect("prune");
    assert_eq!((pruned.kept, pruned.dropped), (2, None));
    assert!(pruned.rewritten);
    assert_eq!(op.rounds(), 2, "one round per kept commit");
    assert_eq!(log(&store, pruned.new_head).len(), 2);

    // Counting walks the rest.
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 10);
    let mut op = Prune::new(PruneRequest::new("agent-1", "main", Retention::last(2))).expect("valid");
    let pruned = drive::run(&mut op, &mut sha1(), &store).expect("prune");
    assert_eq!(pruned.dropped, Some(8));
    assert_eq!(op.rounds(), 10);
}

#[test]
fn prune_keeps_only_the_first_parent_of_a_merge() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let main = branch(&store, "agent-1", "main", None, 3);
    let side = commit_at(
        &mut cache,
        &store,
        Some(main[0]),
        vec![Change::put("side.md", "x\n")],
        5000,
        "side",
    );
    let side_tree = info(&store, side).tree;
    // A merge of `side` into main's head, written by hand, then one commit on top.
    let merge_text = format!(
        "tree {side_tree}\nparent {}\nparent {side}\nauthor A <a@example.com> 6000 +0000\n\
         committer A <a@example.com> 6000 +0000\n\nmerge side\n",
        main[2]
    );
    let merge = object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Commit, merge_text.as_bytes())
        .expect("no collision");
    store.put_many(std::slice::from_ref(&merge)).expect("memory store");
    let top = commit_at(
        &mut cache,
        &store,
        Some(merge.id),
        vec![Change::put("top.md", "y\n")],
        7000,
        "top",
    );
    set_ref(&store, &key("agent-1", "main"), top);

    let pruned = prune(&store, PruneRequest::new("agent-1", "main", Retention::last(3))).expect("prune");
    assert_eq!((pruned.kept, pruned.dropped), (3, Some(2)));
    let new_log = log(&store, pruned.new_head);
    assert_eq!(new_log.len(), 3);
    assert_eq!(new_log[1].tree, side_tree);
    assert_eq!(
        new_log[1].parents,
        vec![new_log[2].id],
        "the merge keeps only its first parent"
    );
    assert_eq!(new_log[1].message, "merge side\n");
    assert_eq!(new_log[2].tree, info(&store, main[2]).tree);
}

#[test]
fn prune_starts_over_when_the_branch_moves() {
    let store = MemoryStore::new();
    let old = branch(&store, "agent-1", "main", None, 5);
    let main = key("agent-1", "main");
    let mut cache = sha1();
    let mut op = Prune::new(PruneRequest::new("agent-1", "main", Retention::last(2))).expect("valid");
    let mut moved = None;
    let mut cas_seen = 0;
    let mut steps = Vec::new();
    let pruned = run_hooked(&mut op, &mut cache, &store, |step, _| {
        steps.push(match step {
            Step::Wait { .. } => "wait",
            Step::ReadRef(_) => "read-ref",
            Step::CasRef(_) => "cas",
            _ => "other",
        });
        if let Step::CasRef(_) = step {
            cas_seen += 1;
            if moved.is_none() {
                // Another writer commits first.
                let mut other = sha1();
                let id = commit_at(
                    &mut other,
                    &store,
                    Some(old[4]),
                    vec![Change::put("late.md", "late\n")],
                    9000,
                    "late",
                );
                set_ref(&store, &main, id);
                moved = Some(id);
            }
        }
        true
    })
    .expect("no crash")
    .expect("prune succeeds on the second attempt");
    let moved = moved.expect("the branch moved");
    assert_eq!(cas_seen, 2);
    // After the lost swap: wait, then read the ref again (what the swap answered is
    // stale by then).
    let after = steps.iter().position(|s| *s == "cas").expect("a swap") + 1;
    assert_eq!(steps[after..after + 2], ["wait", "read-ref"]);
    assert_eq!(store.counts().waits, 1);
    assert_eq!(
        (pruned.attempts, pruned.old_head, pruned.kept, pruned.dropped),
        (2, moved, 2, Some(4))
    );
    let new_log = log(&store, pruned.new_head);
    assert_eq!(
        store.read_ref(&main).expect("ref").map(|r| r.value),
        Some(pruned.new_head)
    );
    assert_eq!(
        new_log[0].tree,
        info(&store, moved).tree,
        "the concurrent commit survives"
    );
    assert_eq!(new_log[1].tree, info(&store, old[4]).tree);
    assert_eq!(new_log.len(), 2);
}

#[test]
fn prune_gives_up_after_the_last_attempt() {
    let store = MemoryStore::new();
    let old = branch(&store, "agent-1", "main", None, 4);
    let main = key("agent-1", "main");
    let mut request = PruneRequest::new("agent-1", "main", Retention::last(1));
    request.max_attempts = 3;
    let mut op = Prune::new(request).expect("valid");
    let mut head = old[3];
    let mut turn = 0;
    let result = run_hooked(&mut op, &mut sha1(), &store, |step, _| {
        if let Step::CasRef(_) = step {
            turn += 1;
            let change = vec![Change::put("busy.md", format!("{turn}\n"))];
            head = commit_at(&mut sha1(), &store, Some(head), change, 9000 + turn, "busy");
            set_ref(&store, &main, head);
        }
        true
    })
    .expect("no crash");
    assert!(
        matches!(&result, Err(PruneError::Contention { repo, branch, attempts: 3 })
            if repo.as_str() == "agent-1" && branch.as_str() == "main"),
        "{result:?}"
    );
    assert_eq!(
        store.read_ref(&main).expect("ref").map(|r| r.value),
        Some(head),
        "the other writer's head stays"
    );

    // A branch deleted while pruning is reported as not found.
    let mut op = Prune::new(PruneRequest::new("agent-1", "main", Retention::last(1))).expect("valid");
    let result = run_hooked(&mut op, &mut sha1(), &store, |step, _| {
        if let Step::CasRef(_) = step {
            store.delete(std::slice::from_ref(&main)).expect("memory store");
        }
        true
    })
    .expect("no crash");
    assert!(matches!(result, Err(PruneError::BranchNotFound { .. })), "{result:?}");
}

#[test]
fn prune_refuses_bad_input() {
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 2);
    let bad = |repo: &str, branch: &str, retention: Retention| Prune::new(PruneRequest::new(repo, branch, retention));

    for repo in ["", "a/b", "..", "a..b", "x.lock", "with space", "a\0b"] {
        match bad(repo, "main", Retention::last(1)) {
            Err(PruneError::InvalidName(err)) => assert_eq!((err.kind, err.name.as_str()), (NameKind::Repo, repo)),
            other => panic!("repo {repo:?}: {other:?}"),
        }
    }
    for name in [
        "",
        "a..b",
        "x.lock",
        "with space",
        "/main",
        "main/",
        "a//b",
        "@{x}",
        "b\\c",
    ] {
        match bad("agent-1", name, Retention::last(1)) {
            Err(PruneError::InvalidName(err)) => assert_eq!((err.kind, err.name.as_str()), (NameKind::Branch, name)),
            other => panic!("branch {name:?}: {other:?}"),
        }
    }
    assert!(matches!(
        bad("agent-1", "main", Retention::last(0)),
        Err(PruneError::ZeroKeepCount)
    ));
    assert!(matches!(
        bad("agent-1", "main", Retention::within(10, 0).and_last(0)),
        Err(PruneError::ZeroKeepCount)
    ));
    assert!(matches!(
        bad("agent-1", "main", Retention::default()),
        Err(PruneError::NoRule)
    ));
    let mut request = PruneRequest::new("agent-1", "main", Retention::last(1));
    request.max_attempts = 0;
    assert!(matches!(
        Prune::new(request),
        Err(PruneError::InvalidOption {
            option: "max_attempts",
            ..
        })
    ));

    for (repo, branch) in [("agent-1", "nope"), ("nobody", "main")] {
        let result = prune(&store, PruneRequest::new(repo, branch, Retention::last(1)));
        assert!(
            matches!(&result, Err(PruneError::BranchNotFound { repo: r, branch: b })
                if r.as_str() == repo && b.as_str() == branch),
            "{result:?}"
        );
    }

    // A driver that answers the wrong step is told so.
    let mut op = Prune::new(PruneRequest::new("agent-1", "main", Retention::last(1))).expect("valid");
    let mut cache = sha1();
    assert!(matches!(op.poll(&mut cache), Ok(Step::ReadRef(_))));
    assert!(matches!(op.answer(&mut cache, Answer::Put), Err(PruneError::Misuse(_))));
}

#[test]
fn gc_keeps_what_refs_reach_and_young_objects_and_deletes_old_garbage() {
    let store = MemoryStore::new();
    let one = branch(&store, "agent-1", "main", None, 6);
    branch(&store, "agent-1", "pinned", Some(one[1]), 1);
    branch(&store, "agent-2", "main", None, 4);
    let three = branch(&store, "agent-3", "main", None, 1);

    // Retention on two branches; their dropped history becomes garbage.
    prune(&store, PruneRequest::new("agent-1", "main", Retention::last(2))).expect("prune");
    prune(&store, PruneRequest::new("agent-2", "main", Retention::last(1))).expect("prune");

    // Later, a commit is in flight: its objects are stored, its ref not yet moved.
    store.set_time_ms(10 * HOUR_MS);
    let mut cache = sha1();
    let request = commit::Request::new(
        Some(three[0]),
        vec![Change::put("in-flight.md", "not yet visible\n")],
        Signature::new("Agent", "agent@example.com", 36_000),
        "in flight",
    );
    let in_flight = drive::run(
        &mut commit::Commit::new(&cache, request).expect("valid"),
        &mut cache,
        &store,
    )
    .expect("commit builds");
    store.put_many(&in_flight.objects).expect("memory store");
    let young: BTreeSet<ObjectId> = in_flight.objects.iter().map(|o| o.id).collect();

    let before = stored(&store);
    let live = reachable(&store);
    assert!(young.is_disjoint(&live));
    let garbage: BTreeSet<ObjectId> = before
        .difference(&live)
        .filter(|id| !young.contains(*id))
        .copied()
        .collect();
    assert!(garbage.len() > 10, "retention left garbage: {}", garbage.len());

    let garbage_bytes: u64 = garbage
        .iter()
        .map(|id| store.get(id).expect("stored").len() as u64)
        .sum();

    let collected = collect(&store, 10 * HOUR_MS + 60_000);
    let after = stored(&store);
    assert_eq!(
        after,
        live.union(&young).copied().collect(),
        "exactly the reachable and the young objects stay"
    );
    assert_eq!(collected.deleted, garbage.len() as u64);
    assert_eq!(collected.young, young.len() as u64);
    assert_eq!(collected.reachable, live.len() as u64);
    assert_eq!(collected.refs, 4);
    assert_eq!(collected.listed, before.len() as u64);
    assert_eq!(collected.deleted_bytes, garbage_bytes);
    for (_, head) in store.refs() {
        files(&store, head);
    }

    // Running it again changes nothing; once the in-flight objects are old, they go.
    let again = collect(&store, 10 * HOUR_MS + 60_000);
    assert_eq!((again.deleted, again.young), (0, young.len() as u64));
    let later = collect(&store, 12 * HOUR_MS);
    assert_eq!((later.deleted, later.young), (young.len() as u64, 0));
    assert_eq!(stored(&store), live);
}

#[test]
fn gc_spares_objects_up_to_the_grace_period() {
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 3);
    prune(&store, PruneRequest::new("agent-1", "main", Retention::last(1))).expect("prune");
    let garbage = stored(&store).len() - reachable(&store).len();
    // Written at 0: exactly an hour later they are not yet older than an hour.
    let collected = collect(&store, HOUR_MS);
    assert_eq!((collected.deleted, collected.young), (0, garbage as u64));
    let mut cache = sha1();
    let mut options = CollectOptions::new(HOUR_MS);
    options.grace_ms = (HOUR_MS - 1) as u64;
    let collected = drive::run(&mut Collect::new(&cache, options).expect("valid"), &mut cache, &store).expect("gc");
    assert_eq!((collected.deleted, collected.young), (garbage as u64, 0));
    assert_eq!(stored(&store), reachable(&store));
}

#[test]
fn gc_deletes_in_batches_reports_progress_and_finishes_after_a_crash() {
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 8);
    branch(&store, "agent-2", "main", None, 2);
    prune(&store, PruneRequest::new("agent-1", "main", Retention::last(1))).expect("prune");
    let live = reachable(&store);
    let garbage = stored(&store).len() - live.len();
    assert!(garbage > 12);
    let options = CollectOptions {
        batch: 4,
        ..CollectOptions::new(2 * HOUR_MS)
    };

    // Crash after the second batch.
    let mut cache = sha1();
    let mut op = Collect::new(&cache, options).expect("valid");
    let mut phases = Vec::new();
    let mut batches = 0;
    let mut deleted_seen = 0;
    let crashed = run_hooked(&mut op, &mut cache, &store, |step, op| {
        let progress = op.progress();
        if phases.last() != Some(&progress.phase) {
            phases.push(progress.phase);
        }
        assert!(progress.deleted >= deleted_seen);
        deleted_seen = progress.deleted;
        if let Step::Delete(keys) = step {
            assert!(!keys.is_empty() && keys.len() <= 4, "batch of {}", keys.len());
            batches += 1;
            // The third batch is never carried out.
            return batches <= 2;
        }
        true
    });
    assert!(crashed.is_none());
    // Reading the refs again before each batch is part of the sweep.
    assert_eq!(
        phases,
        [
            Phase::ListRefs,
            Phase::ReadRefs,
            Phase::Mark,
            Phase::ListObjects,
            Phase::Sweep
        ]
    );
    assert_eq!(deleted_seen, 8, "two batches were carried out before the crash");
    assert_eq!(stored(&store).len(), live.len() + garbage - 8);

    // A new run finishes the job, in batches of at most four.
    let mut cache = sha1();
    let mut op = Collect::new(&cache, options).expect("valid");
    let mut sizes = Vec::new();
    let collected = run_hooked(&mut op, &mut cache, &store, |step, _| {
        if let Step::Delete(keys) = step {
            sizes.push(keys.len());
        }
        true
    })
    .expect("no crash")
    .expect("gc succeeds");
    assert_eq!(collected.deleted as usize, garbage - 8);
    assert!(sizes.iter().all(|n| *n <= 4));
    assert_eq!(sizes.len(), (garbage - 8).div_ceil(4));
    assert_eq!(op.progress().phase, Phase::Done);
    assert_eq!(op.progress().deleted, collected.deleted);
    assert_eq!(stored(&store), live);
}

/// A commit that lands while GC sweeps, reusing an old object nothing reached when GC
/// listed the store (a file set back to a version retention dropped): GC reads the refs
/// again before each batch, and keeps it.
#[test]
fn gc_keeps_an_old_object_a_commit_reuses_while_it_sweeps() {
    let store = MemoryStore::new();
    let main = key("agent-1", "main");
    let ids = branch(&store, "agent-1", "main", None, 3);
    // An old blob nothing reaches: what a dropped commit once held.
    let old =
        object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Blob, b"the dropped version\n").expect("hashed");
    store.put_many(std::slice::from_ref(&old)).expect("memory store");
    let mut cache = sha1();
    let mut op = Collect::new(&cache, CollectOptions::new(2 * HOUR_MS)).expect("valid");
    let mut listed = false;
    let mut committed = None;
    let collected = run_hooked(&mut op, &mut cache, &store, |step, _| {
        match step {
            Step::List(prefix) if prefix == "objects/" => listed = true,
            // After the listing, before the sweep: a writer commits the old content.
            Step::List(_) | Step::Delete(_) if listed && committed.is_none() => {
                store.set_time_ms(2 * HOUR_MS);
                let mut writer = sha1();
                let change = Change::put("restored.md", "the dropped version\n");
                let id = commit_at(
                    &mut writer,
                    &store,
                    ids.last().copied(),
                    vec![change],
                    99_999,
                    "restore",
                );
                set_ref(&store, &main, id);
                committed = Some(id);
            }
            _ => {}
        }
        true
    })
    .expect("no crash")
    .expect("gc succeeds");
    assert!(committed.is_some(), "the writer committed during the sweep");
    assert!(store.get(&old.id).is_some(), "the reused object stays: {collected:?}");
    assert_eq!(stored(&store), reachable(&store));
}

#[test]
fn gc_and_footprint_read_commits_and_trees_only_one_level_per_round() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let a = commit_at(
        &mut cache,
        &store,
        None,
        vec![Change::put("a/b/c.md", "deep\n")],
        1000,
        "a",
    );
    let b = commit_at(&mut cache, &store, None, vec![Change::put("x.md", "flat\n")], 1000, "b");
    set_ref(&store, &key("agent-1", "main"), a);
    set_ref(&store, &key("agent-2", "main"), b);
    let blobs: HashSet<ObjectId> = store
        .ids()
        .into_iter()
        .filter(|id| kind_of(&store, id) == gix_object::Kind::Blob)
        .collect();
    assert_eq!(blobs.len(), 2);

    let check = |asked: &[Vec<ObjectId>]| {
        assert_eq!(asked.len(), 4, "commits, root trees, a/, a/b/: {asked:?}");
        assert_eq!(
            asked[0].iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([a, b])
        );
        let all: Vec<ObjectId> = asked.iter().flatten().copied().collect();
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len(), "no id asked twice");
        assert!(all.iter().all(|id| !blobs.contains(id)), "no blob is read");
    };

    let mut asked = Vec::new();
    let mut cache = sha1();
    let mut op = Collect::new(&cache, CollectOptions::new(0)).expect("valid");
    run_hooked(&mut op, &mut cache, &store, |step, _| {
        if let Step::Get(ids) = step {
            asked.push(ids.clone());
        }
        true
    })
    .expect("no crash")
    .expect("gc");
    check(&asked);

    let mut asked = Vec::new();
    let mut cold = sha1();
    let mut op = Footprint::new(&cold);
    run_hooked(&mut op, &mut cold, &store, |step, _| {
        if let Step::Get(ids) = step {
            asked.push(ids.clone());
        }
        true
    })
    .expect("no crash")
    .expect("footprint");
    check(&asked);

    // With the blobs gone both still finish: they never needed them.
    for id in &blobs {
        store.remove(id);
    }
    collect(&store, 0);
    drive::run(&mut Footprint::new(&sha1()), &mut sha1(), &store).expect("footprint");

    // A warm cache needs no reads at all.
    let mut op = Collect::new(&cold, CollectOptions::new(0)).expect("valid");
    drive::run(&mut op, &mut cold, &store).expect("gc");
    assert_eq!(op.progress().rounds, 0);
}

#[test]
fn gc_stops_before_deleting_when_a_reachable_object_is_missing_or_corrupt() {
    let store = MemoryStore::new();
    let old = branch(&store, "agent-1", "main", None, 4);
    prune(&store, PruneRequest::new("agent-1", "main", Retention::last(1))).expect("prune");
    let tree = info(&store, log(&store, store.refs()[0].1)[0].id).tree;

    let saved = store.get(&tree).expect("stored");
    store.remove(&tree);
    let before = stored(&store);
    let mut cache = sha1();
    let mut op = Collect::new(&cache, CollectOptions::new(10 * HOUR_MS)).expect("valid");
    let result = drive::run(&mut op, &mut cache, &store);
    assert!(
        matches!(&result, Err(CollectError::Object(object::Error::NotFound { id })) if *id == tree),
        "{result:?}"
    );
    assert_eq!(stored(&store), before, "nothing deleted");

    // Corrupt bytes, and a ref that names a tree instead of a commit.
    let mut corrupt = saved.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x55;
    store.insert_raw(tree, corrupt);
    let mut cache = sha1();
    let result = drive::run(
        &mut Collect::new(&cache, CollectOptions::new(10 * HOUR_MS)).expect("valid"),
        &mut cache,
        &store,
    );
    assert!(matches!(result, Err(CollectError::Object(_))), "{result:?}");
    store.insert_raw(tree, saved);
    // A tag that says it tags a commit, but names a tree.
    let content = format!("object {tree}\ntype commit\ntag v1\ntagger A <a@example.com> 0 +0000\n\nv1\n");
    let tag =
        object::encode_loose(gix_hash::Kind::Sha1, gix_object::Kind::Tag, content.as_bytes()).expect("no collision");
    store.put_many(std::slice::from_ref(&tag)).expect("memory store");
    set_ref(&store, "refs/tags/v1", tag.id);
    let mut cache = sha1();
    let result = drive::run(
        &mut Collect::new(&cache, CollectOptions::new(10 * HOUR_MS)).expect("valid"),
        &mut cache,
        &store,
    );
    assert!(
        matches!(result, Err(CollectError::Object(object::Error::WrongKind { .. }))),
        "{result:?}"
    );
    assert_eq!(
        stored(&store),
        before.union(&BTreeSet::from([tree, tag.id])).copied().collect()
    );
    assert!(store.get(&old[0]).is_some());
}

#[test]
fn gc_refuses_bad_options_and_misuse() {
    let cache = sha1();
    let options = CollectOptions {
        batch: 0,
        ..CollectOptions::new(0)
    };
    assert!(matches!(
        Collect::new(&cache, options),
        Err(CollectError::InvalidOption { option: "batch", .. })
    ));

    let mut cache = sha1();
    let mut op = Collect::new(&cache, CollectOptions::new(0)).expect("valid");
    assert!(matches!(op.poll(&mut cache), Ok(Step::List(prefix)) if prefix == "refs/"));
    assert!(
        matches!(op.poll(&mut cache), Err(CollectError::Misuse(_))),
        "poll before the answer"
    );
    assert!(matches!(
        op.answer(&mut cache, Answer::Deleted),
        Err(CollectError::Misuse(_))
    ));
    assert!(matches!(op.provide(&mut cache, vec![]), Err(CollectError::Misuse(_))));
    op.answer(&mut cache, Answer::List(vec![])).expect("the listing");
    // The other places git keeps roots, or things GC must refuse.
    for expected in [
        "logs/",
        "objects/pack/",
        "objects/info/",
        "worktrees/",
        "HEAD.lock",
        "packed-refs.lock",
    ] {
        assert!(matches!(op.poll(&mut cache), Ok(Step::List(prefix)) if prefix == expected));
        op.answer(&mut cache, Answer::List(vec![])).expect("the listing");
    }
    let Ok(Step::Read(keys)) = op.poll(&mut cache) else {
        panic!("HEAD and the refs are read next")
    };
    assert_eq!(keys, ["HEAD", "shallow", "index"]);
    assert!(matches!(
        op.answer(&mut cache, Answer::Read(vec![None])),
        Err(CollectError::Misuse(_))
    ));
    op.answer(&mut cache, Answer::Read(vec![None, None, None]))
        .expect("the files");
    assert!(matches!(op.poll(&mut cache), Ok(Step::Read(keys)) if keys == ["packed-refs"]));
    op.answer(&mut cache, Answer::Read(vec![None])).expect("packed-refs");
    assert!(matches!(op.poll(&mut cache), Ok(Step::List(prefix)) if prefix == "objects/"));
    op.answer(&mut cache, Answer::List(vec![])).expect("the listing");
    assert!(matches!(op.poll(&mut cache), Ok(Step::Done(c)) if c.deleted == 0));
    assert!(
        matches!(op.poll(&mut cache), Err(CollectError::Misuse(_))),
        "poll after Done"
    );
}

#[test]
fn footprint_counts_objects_per_repo_shared_ones_in_each() {
    let store = MemoryStore::new();
    let mut cache = sha1();
    let shared = Change::put("shared.md", "the same in both\n");
    let a = commit_at(
        &mut cache,
        &store,
        None,
        vec![shared.clone(), Change::put("a.md", "a\n")],
        1000,
        "a",
    );
    let b = commit_at(
        &mut cache,
        &store,
        None,
        vec![shared, Change::put("b.md", "b\n")],
        1000,
        "b",
    );
    set_ref(&store, &key("agent-1", "main"), a);
    set_ref(&store, &key("agent-2", "main"), b);
    set_ref(&store, &key("agent-2", "copy"), b);
    set_ref(&store, "refs/heads/outside", a);
    let orphan = commit_at(
        &mut cache,
        &store,
        None,
        vec![Change::put("orphan.md", "o\n")],
        1000,
        "orphan",
    );

    let size = |id: &ObjectId| store.get(id).expect("stored").len() as u64;
    let sum = |ids: &[ObjectId]| ids.iter().map(size).sum::<u64>();
    let objects_of = |commit: ObjectId| {
        let c = info(&store, commit);
        let mut ids = vec![commit, c.tree];
        ids.extend(files_ids(&store, commit));
        ids
    };
    let in_a = objects_of(a);
    let in_b = objects_of(b);
    let in_orphan = objects_of(orphan);
    assert_eq!((in_a.len(), in_b.len()), (4, 4));

    let mut cache = sha1();
    let mut op = Footprint::new(&cache);
    let report = drive::run(&mut op, &mut cache, &store).expect("footprint");
    assert_eq!(report.objects.count, store.len() as u64);
    assert_eq!(report.objects.bytes, sum(&store.ids()));
    assert_eq!(report.repos.len(), 2);
    assert_eq!(report.repos[0].repo.as_str(), "agent-1");
    assert_eq!((report.repos[0].refs, report.repos[0].reachable.count), (1, 4));
    assert_eq!(report.repos[0].reachable.bytes, sum(&in_a));
    assert_eq!(report.repos[1].repo.as_str(), "agent-2");
    assert_eq!((report.repos[1].refs, report.repos[1].reachable.count), (2, 4));
    assert_eq!(report.repos[1].reachable.bytes, sum(&in_b));
    assert_eq!(report.other_refs.count, 4);
    assert_eq!(report.unreachable.count, 3);
    assert_eq!(report.unreachable.bytes, sum(&in_orphan));
    assert_eq!(report.other_keys.count, 0);
    assert_eq!(op.progress().phase, Phase::Done);
    // Seven distinct objects are reachable (one blob shared), plus three unreachable.
    assert_eq!(store.len(), 10);
}

/// The blob ids of every file at `commit`.
fn files_ids(store: &MemoryStore, commit: ObjectId) -> Vec<ObjectId> {
    let mut op = read::ListTree::new(commit, "", true).expect("root");
    drive::run(&mut op, &mut sha1(), store)
        .expect("listing")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

#[test]
fn footprint_after_retention_and_gc() {
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 5);
    prune(&store, PruneRequest::new("agent-1", "main", Retention::last(2))).expect("prune");
    let live = reachable(&store);
    let report = drive::run(&mut Footprint::new(&sha1()), &mut sha1(), &store).expect("footprint");
    assert_eq!(report.repos[0].reachable.count, live.len() as u64);
    assert_eq!(report.unreachable.count, (store.len() - live.len()) as u64);
    collect(&store, 2 * HOUR_MS);
    let report = drive::run(&mut Footprint::new(&sha1()), &mut sha1(), &store).expect("footprint");
    assert_eq!(report.unreachable.count, 0);
    assert_eq!(report.objects.count, live.len() as u64);
}

#[test]
fn gc_and_footprint_leave_keys_that_are_not_loose_objects_alone() {
    let store = MemoryStore::new();
    branch(&store, "agent-1", "main", None, 3);
    prune(&store, PruneRequest::new("agent-1", "main", Retention::last(1))).expect("prune");
    let garbage = (store.len() - reachable(&store).len()) as u64;
    let some_id = store.ids()[0].to_hex().to_string();
    let strangers = [
        "objects/pack/pack-1234.pack".to_owned(),
        "objects/info/packs".to_owned(),
        format!("objects/{}/{}", &some_id[..2], some_id[2..].to_uppercase()),
        format!("objects/{some_id}"),
    ];
    let extra = |listed: &mut Vec<snapgit_core::step::Listed>| {
        listed.extend(strangers.iter().map(|key| snapgit_core::step::Listed {
            key: key.clone(),
            size: 7,
            modified_ms: 0,
        }));
    };

    // A driver whose listing of objects also holds packs and oddly spelled keys.
    fn run_listing<O: Operation>(
        op: &mut O,
        store: &MemoryStore,
        extra: &dyn Fn(&mut Vec<snapgit_core::step::Listed>),
        deleted: &mut Vec<String>,
    ) -> O::Output
    where
        O::Error: std::fmt::Debug,
    {
        let mut cache = sha1();
        loop {
            let answer = match op.poll(&mut cache).expect("no error") {
                Step::Get(ids) => {
                    let objects = ids.iter().map(|id| store.get(id)).collect();
                    op.provide(&mut cache, objects).expect("valid objects");
                    continue;
                }
                Step::Done(out) => return out,
                Step::ReadRef(key) => Answer::Ref(store.read_ref(&key).expect("memory store")),
                Step::Read(keys) => Answer::Read(store.read(&keys).expect("memory store")),
                Step::List(prefix) => {
                    let mut listed = store.list(&prefix).expect("memory store");
                    if prefix == "objects/" {
                        extra(&mut listed);
                    }
                    Answer::List(listed)
                }
                Step::Delete(keys) => {
                    store.delete(&keys).expect("memory store");
                    deleted.extend(keys);
                    Answer::Deleted
                }
                _ => panic!("unexpected step"),
            };
            op.answer(&mut cache, answer).expect("answer taken");
        }
    }

    let mut deleted = Vec::new();
    let mut footprint = Footprint::new(&sha1());
    let report = run_listing(&mut footprint, &store, &extra, &mut deleted);
    assert_eq!((report.other_keys.count, report.other_keys.bytes), (4, 28));
    assert_eq!(report.objects.count, store.len() as u64);

    let mut op = Collect::new(&sha1(), CollectOptions::new(10 * HOUR_MS)).expect("valid");
    let collected = run_listing(&mut op, &store, &extra, &mut deleted);
    assert_eq!(collected.deleted, garbage);
    assert_eq!(deleted.len() as u64, garbage);
    assert!(deleted.iter().all(|key| !strangers.contains(key)), "{deleted:?}");
}
