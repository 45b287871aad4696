//! The operations' serde form (`api::Request`, `api::Output`): what the npm package and
//! the HTTP API exchange, defined once by core's types.

use serde_json::{Value, json};
use snapgit_core::{
    HashKind, ObjectId,
    api::{self, Request},
    commit::{Change, Signature},
    diff, gc, history, read,
    repo::{CommitRequest, RestoreRequest, Start},
};

fn me() -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000)
}

fn id(n: u8) -> ObjectId {
    ObjectId::from_hex(format!("{n:02x}").repeat(20).as_bytes()).unwrap()
}

#[test]
fn a_commit_request_leaves_out_what_core_defaults() {
    let text = json!({ "commit": {
        "repo": "agent",
        "branch": "main",
        "changes": [
            { "type": "put", "path": "a.md", "data": [104, 105] },
            { "type": "put", "path": "run.sh", "data": [], "mode": "executable" },
            { "type": "delete", "path": "old.md" },
            { "type": "rename", "from": "x.md", "to": "y.md" },
        ],
        "author": { "name": "Agent", "email": "agent@example.com", "time": { "seconds": 1_700_000_000, "offsetMinutes": 0 } },
        "message": "turn",
    }});
    let Request::Commit(request) = serde_json::from_value(text).unwrap() else {
        panic!("a commit")
    };
    let mut expected = CommitRequest::new(
        "agent",
        "main",
        vec![
            Change::put("a.md", "hi"),
            Change::Put {
                path: "run.sh".into(),
                data: Vec::new(),
                mode: snapgit_core::Mode::Executable,
            },
            Change::delete("old.md"),
            Change::rename("x.md", "y.md"),
        ],
        me(),
        "turn",
    );
    assert_eq!(format!("{request:?}"), format!("{expected:?}"));
    expected.max_attempts = 3;
    expected.expected_head = Some(id(1));
    let back: Request =
        serde_json::from_value(serde_json::to_value(Request::Commit(expected.clone())).unwrap()).unwrap();
    assert_eq!(format!("{back:?}"), format!("{:?}", Request::Commit(expected)));
}

#[test]
fn every_request_survives_a_round_trip() {
    let requests = vec![
        Request::CreateRepo {
            repo: "agent".into(),
            branch: "main".into(),
            files: vec![Change::put("a.md", "a")],
            author: me(),
            message: "first".into(),
        },
        Request::ListRepos,
        Request::DeleteRepo { repo: "agent".into() },
        Request::CreateBranch {
            repo: "agent".into(),
            branch: "exp".into(),
            start: Start::Commit(id(2)),
        },
        Request::CreateBranch {
            repo: "agent".into(),
            branch: "exp".into(),
            start: Start::Branch("main".into()),
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
            rev: "main~2".into(),
        },
        Request::Restore(RestoreRequest::new("agent", "main", id(3), me())),
        Request::ReadFile {
            commit: id(4),
            path: "a.md".into(),
        },
        Request::ListTree {
            commit: id(4),
            path: "notes".into(),
            recursive: false,
        },
        Request::ReadFiles {
            commit: id(4),
            path: "".into(),
        },
        Request::ReadCommit { commit: id(4) },
        Request::Log(history::Request::new(id(5), 10).with_path("a.md")),
        Request::FileLog(history::Request::new(id(5), 10).with_path("a.md")),
        Request::Diff(diff::tree::Request::new(Some(id(6)), id(7))),
        Request::DiffFolder(snapgit_core::worktree::DiffRequest::new(
            id(6),
            vec![snapgit_core::worktree::File {
                path: "a.md".into(),
                mode: snapgit_core::Mode::Executable,
                id: id(8),
                data: Some(b"a\n".to_vec()),
            }],
        )),
        Request::Checkout(snapgit_core::worktree::CheckoutRequest {
            untracked: vec!["node_modules".into()],
            ..snapgit_core::worktree::CheckoutRequest::new(id(6), Vec::new())
        }),
        Request::Prune(gc::PruneRequest::new("agent", "main", gc::Retention::last(3))),
        Request::Footprint,
        Request::Collect(gc::CollectOptions::new(1_700_000_000_000)),
        Request::Compact(gc::CompactOptions {
            drop_unreachable: true,
            ..gc::CompactOptions::new(1_700_000_000_000)
        }),
        Request::Cap(gc::CapRequest::new(500 << 20)),
    ];
    for request in requests {
        let value = serde_json::to_value(&request).unwrap();
        let back: Request = serde_json::from_value(value.clone()).unwrap_or_else(|err| panic!("{value}: {err}"));
        assert_eq!(format!("{back:?}"), format!("{request:?}"), "{value}");
        let name = match &value {
            Value::String(name) => name.clone(),
            Value::Object(map) => map.keys().next().unwrap().clone(),
            other => panic!("{other}"),
        };
        let kebab: String = name
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['-', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect();
        assert_eq!(kebab, request.name(), "the serde tag is the operation's name");
    }
}

#[test]
fn short_forms_take_core_defaults() {
    let list: Request = serde_json::from_value(json!({ "listTree": { "commit": id(1).to_string() } })).unwrap();
    let Request::ListTree { path, recursive, .. } = list else {
        panic!()
    };
    assert!(path.is_empty() && recursive);
    let log: Request = serde_json::from_value(json!({ "log": { "start": id(1).to_string() } })).unwrap();
    let Request::Log(log) = log else { panic!() };
    assert_eq!((log.limit, log.first_parent), (history::DEFAULT_LIMIT, true));
    let diff: Request = serde_json::from_value(json!({ "diff": { "to": id(1).to_string() } })).unwrap();
    let Request::Diff(diff) = diff else { panic!() };
    assert!(diff.from.is_none() && diff.renames && diff.line_stats && !diff.patch);
    let gc: Request = serde_json::from_value(json!({ "gc": { "nowMs": 5 } })).unwrap();
    let Request::Collect(gc) = gc else { panic!() };
    assert_eq!(format!("{gc:?}"), format!("{:?}", gc::CollectOptions::new(5)));
    let cap: Request = serde_json::from_value(json!({ "cap": { "maxBytes": 1000 } })).unwrap();
    let Request::Cap(cap) = cap else { panic!() };
    assert_eq!(cap, gc::CapRequest::new(1000));
    let compact: Request = serde_json::from_value(json!({ "compact": { "nowMs": 5 } })).unwrap();
    let Request::Compact(compact) = compact else { panic!() };
    assert!(!compact.drop_unreachable);
}

#[test]
fn bad_values_are_refused_with_what_is_wrong() {
    let cases = [
        (json!({ "readCommit": { "commit": "xyz" } }), "xyz"),
        (json!({ "readCommit": {} }), "commit"),
        (json!({ "frobnicate": {} }), "frobnicate"),
        (json!({ "cap": {} }), "maxBytes"),
        (json!({ "cap": { "maxBytes": 1, "maxSize": 2 } }), "maxSize"),
        (
            json!({ "prune": { "repo": "agent", "branch": "main", "retention": {}, "maxAttempts": -1 } }),
            "-1",
        ),
        (
            json!({ "commit": { "repo": "a", "branch": "b", "changes": [{ "type": "put", "path": "a", "data": [] , "mode": "fifo" }],
                "author": { "name": "A", "email": "a@b", "time": { "seconds": 1, "offsetMinutes": 0 } }, "message": "m" } }),
            "fifo",
        ),
        (
            json!({ "commit": { "repo": "a", "branch": "b", "changes": [], "policy": { "exclude": [""] },
                "author": { "name": "A", "email": "a@b", "time": { "seconds": 1, "offsetMinutes": 0 } }, "message": "m" } }),
            "exclude",
        ),
    ];
    for (value, named) in cases {
        let err = serde_json::from_value::<Request>(value.clone()).expect_err("refused");
        assert!(err.to_string().contains(named), "{value}: {err}");
    }
}

#[test]
fn outputs_carry_hex_ids_text_paths_and_bytes() {
    let file = api::Output::ReadFile(read::File {
        id: id(8),
        mode: snapgit_core::Mode::Regular,
        data: b"hi".to_vec(),
    });
    assert_eq!(
        serde_json::to_value(&file).unwrap(),
        json!({ "id": id(8).to_string(), "mode": "regular", "data": [104, 105] })
    );
    let resolved = api::Output::Resolve(ObjectId::null(HashKind::Sha1));
    assert_eq!(serde_json::to_value(&resolved).unwrap(), json!("0".repeat(40)));
    let change = diff::FileChange {
        path: "b.md".into(),
        kind: diff::ChangeKind::Renamed { from: "a.md".into() },
        old: Some((id(1), snapgit_core::Mode::Regular)),
        new: None,
        binary: false,
        lines: Some(diff::LineStats { added: 1, removed: 2 }),
    };
    assert_eq!(
        serde_json::to_value(&change).unwrap(),
        json!({ "path": "b.md", "kind": { "renamed": { "from": "a.md" } },
            "old": { "id": id(1).to_string(), "mode": "regular" }, "new": null, "binary": false,
            "lines": { "added": 1, "removed": 2 } })
    );
}

#[test]
fn file_contents_read_as_text_as_base64_or_as_numbers() {
    let change = |data: Value| -> Result<Change, serde_json::Error> {
        serde_json::from_value(json!({ "type": "put", "path": "a.bin", "data": data }))
    };
    let data = |change: Change| match change {
        Change::Put { data, .. } => data,
        other => panic!("a put, not {other:?}"),
    };
    assert_eq!(data(change(json!("hi")).unwrap()), b"hi");
    assert_eq!(data(change(json!({ "text": "hé" })).unwrap()), "hé".as_bytes());
    assert_eq!(data(change(json!({ "base64": "AP8K" })).unwrap()), [0, 255, 10]);
    assert_eq!(data(change(json!([0, 255, 10])).unwrap()), [0, 255, 10]);
    assert_eq!(data(change(json!({ "base64": "" })).unwrap()), b"");
    for (bad, says) in [
        (json!({ "base64": "AP8" }), "invalid base64"),
        (json!({ "base64": "**" }), "invalid base64"),
        (json!({ "hex": "00" }), "unknown field `hex`"),
        (json!({}), "expected"),
        (json!({ "text": "a", "base64": "AA==" }), "not also"),
        (json!({ "text": 5 }), "invalid type"),
        (json!(5), "invalid type"),
        (json!([256]), "invalid value"),
    ] {
        let err = change(bad.clone()).expect_err(&bad.to_string()).to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn a_field_core_does_not_know_is_refused() {
    for text in [
        json!({ "commit": { "repo": "a", "branch": "main", "changes": [], "author": me(), "message": "m", "expected_head": "00" } }),
        json!({ "createRepo": { "repo": "a", "branch": "main", "files": [], "author": me(), "message": "m", "extra": 1 } }),
        json!({ "log": { "start": "1".repeat(40), "limt": 5 } }),
        json!({ "commit": { "repo": "a", "branch": "main", "changes": [{ "type": "put", "path": "a", "data": "", "mod": "x" }], "author": me(), "message": "m" } }),
    ] {
        let err = serde_json::from_value::<Request>(text.clone())
            .expect_err(&text.to_string())
            .to_string();
        assert!(err.contains("unknown field"), "{text}: {err}");
    }
}
