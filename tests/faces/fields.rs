//! No face declares a request or result field that core's definition lacks. Core's
//! definition is the serde form of `api::Request` and `api::Output`; every field name it
//! has is collected from samples with every optional field set. The WIT world's records
//! (each reachable from a `request` or `output` case) and the names the npm package packs
//! (`js/src/api.ts`) must each be one of them, or a listed spelling of one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use snapgit_core::{
    HashKind, Mode, ObjectId,
    api::{Output, Request},
    commit::{Change, Signature},
    diff::{self, ChangeKind, FileChange, LineStats},
    gc, history,
    merge::{Conflict, ConflictPolicy},
    policy::Policy,
    read,
    remote::client::{FetchRequest, Fetched, FetchedRef, PushRequest, Pushed, Remote},
    repo::{AdminOutput, CommitOutput, CommitRequest, RestoreRequest, Start},
    store::{BranchName, RepoName},
    worktree,
};

use super::{block, camel, read as read_file};

fn me() -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000)
}

fn id() -> ObjectId {
    ObjectId::null(HashKind::Sha1)
}

/// Every request, each optional field set.
fn requests() -> Vec<Request> {
    let mut commit = CommitRequest::new(
        "agent",
        "main",
        vec![Change::put("a", "a"), Change::delete("b"), Change::rename("c", "d")],
        me(),
        "m",
    );
    commit.committer = Some(me());
    commit.expected_head = Some(id());
    commit.on_conflict = ConflictPolicy::Ours;
    commit.lock_ttl_ms = Some(1);
    commit.policy = Policy::new().exclude(["*.log"]).unwrap();
    commit.policy.max_file_bytes = Some(1);
    commit.policy.max_objects_per_commit = Some(1);
    let mut restore = RestoreRequest::new("agent", "main", id(), me());
    restore.path = Some("a".into());
    restore.message = Some("m".into());
    restore.expected_head = Some(id());
    restore.lock_ttl_ms = Some(1);
    let mut log = history::Request::new(id(), 1).with_path("a");
    log.cursor = Some("c".into());
    let mut diff = diff::tree::Request::new(Some(id()), id());
    diff.path = Some("a".into());
    let retention = gc::Retention {
        keep_last: Some(1),
        keep_within: Some(gc::Within {
            duration_ms: 1,
            now_ms: 1,
        }),
    };
    vec![
        Request::CreateRepo {
            repo: "agent".into(),
            branch: "main".into(),
            // Puts only, by core's rule; the others here for their field names.
            files: vec![Change::put("a", "a"), Change::rename("c", "d")],
            author: me(),
            message: "m".into(),
        },
        Request::ListRepos,
        Request::DeleteRepo { repo: "agent".into() },
        Request::CreateBranch {
            repo: "agent".into(),
            branch: "exp".into(),
            start: Start::Commit(id()),
        },
        Request::ListBranches { repo: "agent".into() },
        Request::DeleteBranch {
            repo: "agent".into(),
            branch: "exp".into(),
        },
        Request::ReadHead {
            repo: "agent".into(),
            branch: "main".into(),
        },
        Request::Resolve {
            repo: "agent".into(),
            rev: "main".into(),
        },
        Request::Commit(commit),
        Request::Restore(restore),
        Request::ReadFile {
            commit: id(),
            path: "a".into(),
        },
        Request::ListTree {
            commit: id(),
            path: "a".into(),
            recursive: true,
        },
        Request::ReadFiles {
            commit: id(),
            path: "a".into(),
        },
        Request::ReadCommit { commit: id() },
        Request::Log(log.clone()),
        Request::FileLog(log),
        Request::Diff(diff),
        Request::DiffFolder(worktree::DiffRequest {
            path: Some("a".into()),
            patch: true,
            binary_patch: true,
            untracked: vec!["b".into()],
            ..worktree::DiffRequest::new(id(), vec![folder_file()])
        }),
        Request::Checkout(worktree::CheckoutRequest {
            path: Some("a".into()),
            untracked: vec!["b".into()],
            ..worktree::CheckoutRequest::new(id(), vec![folder_file()])
        }),
        Request::Prune(gc::PruneRequest::new("agent", "main", retention)),
        Request::Footprint,
        Request::Collect(gc::CollectOptions::new(1)),
        Request::Compact(gc::CompactOptions {
            min_loose: Some(1),
            min_packs: Some(1),
            drop_unreachable: true,
            ..gc::CompactOptions::new(1)
        }),
        Request::Cap(gc::CapRequest {
            keep_last: 2,
            ..gc::CapRequest::new(1)
        }),
        Request::Push(PushRequest {
            repo: "agent".into(),
            branch: "main".into(),
            remote: remote(),
            remote_ref: Some("refs/heads/main".into()),
            force: true,
        }),
        Request::Fetch(FetchRequest {
            repo: "agent".into(),
            remote: remote(),
            refs: vec!["main".into()],
            into: Some("main".into()),
            force: true,
            depth: Some(1),
            filter: Some("blob:none".into()),
        }),
    ]
}

/// A remote with a header.
fn remote() -> Remote {
    Remote {
        url: "https://example.com/agent.git".into(),
        headers: vec![("Authorization".into(), "Bearer t".into())],
    }
}

/// A folder's file, its content given.
fn folder_file() -> worktree::File {
    worktree::File {
        path: "a".into(),
        mode: Mode::Regular,
        id: id(),
        data: Some(b"a".to_vec()),
    }
}

/// Every output, each optional field set.
fn outputs() -> Vec<Output> {
    let side = Some((id(), Mode::Regular));
    let change = FileChange {
        path: "b".into(),
        kind: ChangeKind::Renamed { from: "a".into() },
        old: side,
        new: side,
        binary: false,
        lines: Some(LineStats { added: 1, removed: 1 }),
    };
    let info = read::CommitInfo {
        id: id(),
        tree: id(),
        parents: vec![id()],
        author: me(),
        committer: me(),
        message: "m".into(),
    };
    let file = read::File {
        id: id(),
        mode: Mode::Regular,
        data: Vec::new(),
    };
    let usage = gc::Usage { count: 1, bytes: 1 };
    let repo = RepoName::new("agent").unwrap();
    let pruned = gc::Pruned {
        repo: repo.clone(),
        branch: BranchName::new("main").unwrap(),
        old_head: id(),
        new_head: id(),
        rewritten: true,
        kept: 1,
        dropped: Some(1),
        written: vec![id()],
        attempts: 1,
    };
    vec![
        Output::Admin(AdminOutput::Created {
            commit: id(),
            files: vec![change.clone()],
        }),
        Output::Commit(CommitOutput {
            commit: id(),
            tree: id(),
            parent: id(),
            created: true,
            files: vec![change.clone()],
            attempts: 1,
            settled: vec![Conflict {
                path: "a".into(),
                ours: side,
                theirs: side,
            }],
            objects_written: 1,
            bytes_written: 1,
            locked: true,
        }),
        Output::ReadFile(file.clone()),
        Output::ListTree(vec![read::Entry {
            path: "a".into(),
            mode: Mode::Regular,
            id: id(),
        }]),
        Output::ReadFiles(vec![read::FileWithPath { path: "a".into(), file }]),
        Output::ReadCommit(info.clone()),
        Output::Log(history::Page {
            commits: vec![info.clone()],
            next: Some("c".into()),
        }),
        Output::FileLog(history::FilePage {
            commits: vec![history::FileCommit {
                commit: info,
                change: change.clone(),
            }],
            next: Some("c".into()),
        }),
        Output::Checkout(worktree::CheckoutPlan {
            commit: id(),
            deletes: vec!["b".into()],
            writes: vec![read::FileWithPath {
                path: "a".into(),
                file: read::File {
                    id: id(),
                    mode: Mode::Regular,
                    data: b"a".to_vec(),
                },
            }],
            unchanged: 1,
            submodules: vec!["s".into()],
        }),
        Output::Diff(diff::tree::Output {
            from: Some(id()),
            to: id(),
            files: vec![change],
            patch: Some("p".into()),
        }),
        Output::Prune(pruned.clone()),
        Output::Cap(gc::Capped {
            max_bytes: 1,
            stored_bytes: 1,
            reachable_bytes: 1,
            estimated_bytes: 1,
            under_cap: true,
            pruned: vec![pruned],
        }),
        Output::Footprint(gc::FootprintReport {
            objects: usage,
            repos: vec![gc::RepoUsage {
                repo,
                refs: 1,
                reachable: usage,
            }],
            other_refs: usage,
            unreachable: usage,
            other_keys: usage,
        }),
        Output::Collect(gc::Collected {
            refs: 1,
            reachable: 1,
            listed: 1,
            deleted: 1,
            deleted_bytes: 1,
            young: 1,
            young_bytes: 1,
            rounds: 1,
        }),
        Output::Compact(gc::Compacted {
            pack: Some("objects/pack/pack-1.pack".into()),
            objects: 1,
            deltas: 1,
            pack_bytes: 1,
            loose_packed: 1,
            packs_merged: 1,
            loose_deleted: 1,
            packs_deleted: 1,
            deleted_bytes: 1,
            waiting: 1,
            loose_before: 1,
            packs_before: 1,
            packs_after: 1,
            unreachable_loose: 1,
            dropped: 1,
            skipped: true,
            graph_commits: 1,
        }),
        Output::Push(Pushed {
            remote_ref: "refs/heads/main".into(),
            old: Some(id()),
            new: id(),
            up_to_date: true,
            objects: 1,
            pack_bytes: 1,
            requests: 1,
        }),
        Output::Fetch(Fetched {
            refs: vec![FetchedRef {
                remote_ref: "refs/heads/main".into(),
                local_ref: "refs/heads/main".into(),
                old: Some(id()),
                new: id(),
            }],
            objects: 1,
            pack_bytes: 1,
            requests: 1,
            shallow: vec![id()],
            filter: Some("blob:none".into()),
        }),
    ]
}

/// Every object key in `value`, at any depth, and every externally tagged case name.
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                out.insert(key.clone());
                keys(value, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
        _ => {}
    }
}

/// The field names of core's definition: of each request by its operation's name, and of
/// all outputs together.
fn core_fields() -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
    let mut by_op = BTreeMap::new();
    for request in requests() {
        let mut names = BTreeSet::new();
        let value = serde_json::to_value(&request).unwrap();
        let inner = match &value {
            Value::Object(map) => map.values().next().unwrap().clone(),
            _ => Value::Null,
        };
        keys(&inner, &mut names);
        by_op.insert(request.name().to_owned(), names);
    }
    let mut outputs_fields = BTreeSet::new();
    for output in outputs() {
        keys(&serde_json::to_value(&output).unwrap(), &mut outputs_fields);
    }
    (by_op, outputs_fields)
}

/// Fields the faces spell differently from core, each with what it is in core.
const SPELLINGS: &[(&str, &str)] = &[
    // WIT: a file change's kind is an enum, and a rename's old path a field beside it.
    ("renamedFrom", "kind.renamed.from"),
    // npm: the public API names a revision `ref` (core: the resolved `commit` or `start`).
    ("ref", "commit / start"),
    // npm: `allParents` is the negation of core's `firstParent`.
    ("allParents", "firstParent"),
    // npm: `keepWithinMs` with `nowMs` packs core's `retention.keepWithin`.
    ("keepWithinMs", "retention.keepWithin.durationMs"),
    // npm: `fromCommit` marks `createBranch`'s start as core's `start.commit`.
    ("fromCommit", "start.commit"),
    // npm: a signature's time as a `Date` (core: `time.seconds`, `time.offsetMinutes`).
    ("date", "time.seconds"),
    // npm: a file's content as text or bytes (core: `data`, bytes).
    ("content", "data"),
    // npm: the engine's options, not an operation's: its object cache's size.
    ("cacheBytes", "ObjectCache::set_capacity"),
    // npm: restore's target revision, resolved by core into `target`.
    ("target", "target"),
];

fn spelled(name: &str) -> bool {
    SPELLINGS.iter().any(|(face, _)| *face == name)
}

/// WIT records: name -> (field names camelCased, the record and variant names they use).
fn wit_records(wit: &str) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let body = block(wit, "interface operations");
    let mut out = BTreeMap::new();
    let mut lines = body.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let (kind, rest) = match line.split_once(' ') {
            Some((kind @ ("record" | "variant"), rest)) => (kind, rest),
            _ => continue,
        };
        let name = rest.trim_end_matches(" {").to_owned();
        let (mut fields, mut uses) = (Vec::new(), Vec::new());
        for line in lines.by_ref() {
            if line == "}" {
                break;
            }
            if line.starts_with("//") || line.is_empty() {
                continue;
            }
            let (field, ty) = match line.split_once(':') {
                Some((field, ty)) => (Some(field.trim_start_matches('%')), ty),
                None => (None, line),
            };
            if let (Some(field), "record") = (field, kind) {
                fields.push(camel(field));
            }
            let ty = ty.trim_end_matches(',');
            for word in ty.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
                if !word.is_empty() {
                    uses.push(word.to_owned());
                }
            }
        }
        out.insert(name, (fields, uses));
    }
    out
}

/// The records reachable from `start` (a record or variant name), with their fields.
fn reachable(records: &BTreeMap<String, (Vec<String>, Vec<String>)>, start: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some((fields, uses)) = records.get(&name) {
            out.extend(fields.iter().map(|f| (name.clone(), f.clone())));
            stack.extend(uses.iter().cloned());
        }
    }
    out
}

#[test]
fn the_wit_world_declares_no_field_core_lacks() {
    let (by_op, output_fields) = core_fields();
    let wit = read_file("wasm/wit/snapgit.wit");
    let records = wit_records(&wit);
    let (_, request_cases) = &records["request"];
    let mut checked = 0;
    // Each request case's payload: `commit(commit-request)` uses `commit-request`.
    for case in block(&wit, "variant request").lines().map(str::trim) {
        if case.starts_with("//") {
            continue;
        }
        let Some((op, payload)) = case.trim_end_matches(',').split_once('(') else {
            continue;
        };
        let payload = payload.trim_end_matches(')');
        let core = &by_op[op];
        for (record, field) in reachable(&records, payload) {
            checked += 1;
            assert!(
                core.contains(&field) || spelled(&field),
                "WIT {record}.{field} (in {op}) is not a field of core's {op} request"
            );
        }
    }
    assert!(
        request_cases.len() >= 20 && checked > 60,
        "the WIT request variant was read: {checked}"
    );
    for (record, field) in reachable(&records, "output") {
        assert!(
            output_fields.contains(&field) || spelled(&field),
            "WIT {record}.{field} is not a field of any of core's outputs"
        );
    }
}

#[test]
fn the_npm_package_packs_no_field_core_lacks() {
    let (by_op, output_fields) = core_fields();
    let mut core: BTreeSet<&String> = by_op.values().flatten().collect();
    core.extend(&output_fields);
    let limits = serde_json::to_value(snapgit_core::Limits::default()).unwrap();
    let mut limit_fields = BTreeSet::new();
    keys(&limits, &mut limit_fields);
    core.extend(&limit_fields);
    let api = read_file("js/src/api.ts");
    let mut packed = BTreeSet::new();
    // Every packed field is named for its error message: `.str(value, "repo")`.
    for (i, _) in api.match_indices(", \"") {
        let rest = &api[i + 3..];
        let name = &rest[..rest.find('"').unwrap()];
        if rest[name.len()..].starts_with("\")") && !name.contains(' ') && name != "options" {
            packed.insert(name.to_owned());
        }
    }
    assert!(packed.len() >= 25, "js/src/api.ts was read: {packed:?}");
    for name in &packed {
        assert!(
            core.contains(name) || spelled(name) || name == "now",
            "js/src/api.ts packs {name:?}, which core's definition does not have"
        );
    }
}

#[test]
fn the_npm_package_declares_no_result_field_core_lacks() {
    let (by_op, output_fields) = core_fields();
    let mut core: BTreeSet<String> = by_op.into_values().flatten().collect();
    core.extend(output_fields);
    let progress = gc::Progress {
        phase: gc::Phase::Mark,
        refs_listed: 0,
        refs_read: 0,
        reachable: 0,
        rounds: 0,
        objects_listed: 0,
        examined: 0,
        deleted: 0,
        deleted_bytes: 0,
        young: 0,
    };
    keys(&serde_json::to_value(progress).unwrap(), &mut core);
    let types = read_file("js/src/types.ts");
    let mut declared = 0;
    // Each `name: type;` or `name?: type;` of an interface or object type.
    for line in types.lines().map(str::trim) {
        if line.starts_with("//") || line.starts_with('*') || line.starts_with("/*") {
            continue;
        }
        for part in line.split(['{', ';', '|']) {
            let part = part.trim();
            let Some((name, _)) = part.split_once(':') else {
                continue;
            };
            let name = name.trim().trim_end_matches('?');
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric())
                || name.starts_with(char::is_uppercase)
            {
                continue;
            }
            declared += 1;
            assert!(
                core.contains(name) || spelled(name),
                "js/src/types.ts declares {name:?}, which core's definition does not have"
            );
        }
    }
    assert!(declared >= 60, "js/src/types.ts was read: {declared} fields");
}
