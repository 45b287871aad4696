use proptest::prelude::*;
use snapgit_core::{
    Mode, ObjectCache, ObjectId, Operation,
    commit::Change,
    diff::{
        self, ChangeKind, FileChange, LineStats, patch,
        tree::{Diff, Error, Output, Request},
    },
    drive::MemoryStore,
    path::Reason,
};

use crate::support::{commit, drive, sha1};

fn run(store: &MemoryStore, cache: &mut ObjectCache, request: Request) -> Result<Output, Error> {
    let mut op = Diff::new(request)?;
    drive(&mut op, cache, store).result
}

fn kinds(files: &[FileChange]) -> Vec<(String, ChangeKind)> {
    files.iter().map(|f| (f.path.to_string(), f.kind.clone())).collect()
}

/// Two commits with every kind of change, and a large folder that does not change.
fn two(store: &MemoryStore) -> (ObjectId, ObjectId) {
    let mut cache = sha1();
    let mut changes = vec![
        Change::put("docs/a.md", "one\ntwo\nthree\n"),
        Change::put("docs/gone.md", "gone\n"),
        Change::put("move/me.txt", "moving\n"),
        Change::put("tool.sh", "echo\n"),
        Change::put("link", "target\n"),
    ];
    for i in 0..50 {
        changes.push(Change::put(format!("big/{i}/file.md"), format!("{i}\n")));
    }
    let first = commit(&mut cache, store, None, changes);
    let second = commit(
        &mut cache,
        store,
        Some(first.id),
        vec![
            Change::put("docs/a.md", "one\n2\nthree\nfour\n"),
            Change::delete("docs/gone.md"),
            Change::rename("move/me.txt", "moved/me.txt"),
            Change::Put {
                path: "tool.sh".into(),
                data: b"echo\n".to_vec(),
                mode: Mode::Executable,
            },
            Change::Put {
                path: "link".into(),
                data: b"target".to_vec(),
                mode: Mode::Symlink,
            },
            Change::put("new.bin", b"\0\x01\x02".to_vec()),
        ],
    );
    (first.id, second.id)
}

#[test]
fn name_status_with_and_without_renames() {
    let store = MemoryStore::new();
    let (first, second) = two(&store);
    let out = run(&store, &mut sha1(), Request::new(None, second).without_line_stats()).expect("diff");
    assert_eq!(out.from, Some(first));
    assert_eq!(out.to, second);
    assert_eq!(
        kinds(&out.files),
        vec![
            ("docs/a.md".into(), ChangeKind::Modified),
            ("docs/gone.md".into(), ChangeKind::Deleted),
            ("link".into(), ChangeKind::TypeChanged),
            (
                "moved/me.txt".into(),
                ChangeKind::Renamed {
                    from: "move/me.txt".into()
                }
            ),
            ("new.bin".into(), ChangeKind::Added),
            ("tool.sh".into(), ChangeKind::Modified),
        ]
    );
    let tool = &out.files[5];
    assert_eq!(tool.old.map(|o| o.1), Some(Mode::Regular));
    assert_eq!(tool.new.map(|n| n.1), Some(Mode::Executable));
    assert!(out.files.iter().all(|f| f.lines.is_none() && !f.binary));
    assert!(out.patch.is_none());

    let mut request = Request::new(Some(first), second);
    request.renames = false;
    let out = run(&store, &mut sha1(), request).expect("diff");
    let paths: Vec<String> = out.files.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(
        paths,
        [
            "docs/a.md",
            "docs/gone.md",
            "link",
            "move/me.txt",
            "moved/me.txt",
            "new.bin",
            "tool.sh"
        ]
    );
}

#[test]
fn line_counts_and_binary_flags() {
    let store = MemoryStore::new();
    let (_, second) = two(&store);
    let out = run(&store, &mut sha1(), Request::new(None, second)).expect("diff");
    let lines: Vec<(String, Option<LineStats>, bool)> = out
        .files
        .iter()
        .map(|f| (f.path.to_string(), f.lines, f.binary))
        .collect();
    let l = |added, removed| Some(LineStats { added, removed });
    assert_eq!(
        lines,
        vec![
            ("docs/a.md".into(), l(2, 1), false),
            ("docs/gone.md".into(), l(0, 1), false),
            ("link".into(), l(1, 1), false),
            ("moved/me.txt".into(), l(0, 0), false),
            ("new.bin".into(), None, true),
            ("tool.sh".into(), l(0, 0), false),
        ]
    );
}

#[test]
fn blobs_are_read_only_for_line_counts_and_patches() {
    let store = MemoryStore::new();
    let (_, second) = two(&store);
    let mut op = Diff::new(Request::new(None, second).without_line_stats()).expect("valid");
    let run = drive(&mut op, &mut sha1(), &store);
    run.result.expect("diff");
    let asked: Vec<ObjectId> = run.asked.concat();
    let blobs = ["one\ntwo\nthree\n", "gone\n", "echo\n"].map(|text| {
        snapgit_core::object::hash(gix_hash::Kind::Sha1, gix_object::Kind::Blob, text.as_bytes()).expect("hash")
    });
    for blob in blobs {
        assert!(!asked.contains(&blob));
    }
    // Commits (2), then root trees, then the changed folders: `big` is never opened
    // below its own id.
    assert!(asked.len() <= 2 + 2 + 6, "{} objects", asked.len());
    assert_eq!(run.rounds, 4, "to, its parent, roots, changed folders");

    let mut op = Diff::new(Request::new(None, second)).expect("valid");
    let run = drive(&mut op, &mut sha1(), &store);
    run.result.expect("diff");
    assert_eq!(run.rounds, 5, "one more round for every blob at once");
    let last = run.asked.last().expect("rounds");
    assert!(blobs.iter().all(|b| last.contains(b)));
}

#[test]
fn a_warm_cache_needs_no_round() {
    let store = MemoryStore::new();
    let (first, second) = two(&store);
    let mut cache = sha1();
    run(&store, &mut cache, Request::new(Some(first), second).with_patch()).expect("cold");
    let mut op = Diff::new(Request::new(Some(first), second).with_patch()).expect("valid");
    let again = drive(&mut op, &mut cache, &store);
    again.result.expect("warm");
    assert_eq!(again.rounds, 0);
}

#[test]
fn restricted_to_a_path() {
    let store = MemoryStore::new();
    let (first, second) = two(&store);
    let out = run(&store, &mut sha1(), Request::new(Some(first), second).with_path("docs")).expect("diff");
    assert_eq!(
        kinds(&out.files),
        vec![
            ("docs/a.md".into(), ChangeKind::Modified),
            ("docs/gone.md".into(), ChangeKind::Deleted)
        ]
    );
    let out = run(&store, &mut sha1(), Request::new(Some(first), second).with_path("big")).expect("diff");
    assert!(out.files.is_empty());
    // A rename out of the restricted folder is a deletion there.
    let out = run(&store, &mut sha1(), Request::new(Some(first), second).with_path("move")).expect("diff");
    assert_eq!(kinds(&out.files), vec![("move/me.txt".into(), ChangeKind::Deleted)]);
    match run(
        &store,
        &mut sha1(),
        Request::new(Some(first), second).with_path("nope/x"),
    ) {
        Err(Error::PathNotFound { path }) => assert_eq!(path, "nope/x"),
        other => panic!("{other:?}"),
    }
    match Diff::new(Request::new(Some(first), second).with_path("docs/../etc")) {
        Err(Error::InvalidPath(err)) => assert_eq!(err.reason, Reason::Relative),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_commits_and_non_commits_are_named() {
    let store = MemoryStore::new();
    let (first, second) = two(&store);
    let unknown = ObjectId::from_hex(b"1111111111111111111111111111111111111111").expect("hex");
    for request in [
        Request::new(Some(unknown), second),
        Request::new(Some(first), unknown),
        Request::new(None, unknown),
    ] {
        match run(&store, &mut sha1(), request) {
            Err(Error::UnknownCommit { id }) => assert_eq!(id, unknown),
            other => panic!("{other:?}"),
        }
    }
    let blob = snapgit_core::object::hash(gix_hash::Kind::Sha1, gix_object::Kind::Blob, b"gone\n").expect("hash");
    match run(&store, &mut sha1(), Request::new(Some(blob), second)) {
        Err(Error::NotACommit { id, kind }) => {
            assert_eq!(id, blob);
            assert_eq!(kind, gix_object::Kind::Blob);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn root_commits_are_compared_with_nothing() {
    let store = MemoryStore::new();
    let (first, _) = two(&store);
    let out = run(&store, &mut sha1(), Request::new(None, first)).expect("diff");
    assert_eq!(out.from, None);
    assert_eq!(out.files.len(), 55);
    assert!(out.files.iter().all(|f| f.kind == ChangeKind::Added));
}

#[test]
fn polling_after_done_is_a_misuse() {
    let store = MemoryStore::new();
    let (_, second) = two(&store);
    let mut cache = sha1();
    let mut op = Diff::new(Request::new(None, second)).expect("valid");
    drive(&mut op, &mut cache, &store).result.expect("diff");
    assert!(matches!(op.poll(&mut cache), Err(Error::Misuse(_))));
}

#[test]
fn patch_text_has_git_headers() {
    let store = MemoryStore::new();
    let (first, second) = two(&store);
    let out = run(&store, &mut sha1(), Request::new(Some(first), second).with_patch()).expect("diff");
    let text = out.patch.expect("patch").to_string();
    let expected = "\
diff --git a/docs/a.md b/docs/a.md
index 4cb29ea..ea14db2 100644
--- a/docs/a.md
+++ b/docs/a.md
@@ -1,3 +1,4 @@
 one
-two
+2
 three
+four
diff --git a/docs/gone.md b/docs/gone.md
deleted file mode 100644
index 286c5f5..0000000
--- a/docs/gone.md
+++ /dev/null
@@ -1 +0,0 @@
-gone
diff --git a/link b/link
deleted file mode 100644
index eb5a316..0000000
--- a/link
+++ /dev/null
@@ -1 +0,0 @@
-target
diff --git a/link b/link
new file mode 120000
index 0000000..1de5659
--- /dev/null
+++ b/link
@@ -0,0 +1 @@
+target
\\ No newline at end of file
diff --git a/move/me.txt b/moved/me.txt
similarity index 100%
rename from move/me.txt
rename to moved/me.txt
diff --git a/new.bin b/new.bin
new file mode 100644
index 0000000000000000000000000000000000000000..8352675d67aed6625ece79af41c27fdb4ee2e867
Binary files /dev/null and b/new.bin differ
diff --git a/tool.sh b/tool.sh
old mode 100644
new mode 100755
";
    assert_eq!(text, expected);
}

proptest! {
    /// The patch of any two texts has as many `+` and `-` lines as the line counts say,
    /// and writing it never panics.
    #[test]
    fn patch_lines_agree_with_line_counts(
        old in proptest::collection::vec(0u8..6, 0..40),
        new in proptest::collection::vec(0u8..6, 0..40),
        old_nl in any::<bool>(),
        new_nl in any::<bool>(),
    ) {
        let text = |lines: &[u8], newline: bool| {
            let mut out: Vec<u8> = lines.iter().flat_map(|l| format!("l{l}\n").into_bytes()).collect();
            if !newline && !out.is_empty() {
                out.pop();
            }
            out
        };
        let (old, new) = (text(&old, old_nl), text(&new, new_nl));
        let id = |data: &[u8]| {
            snapgit_core::object::hash(gix_hash::Kind::Sha1, gix_object::Kind::Blob, data).expect("hash")
        };
        let change = FileChange {
            path: "f".into(),
            kind: ChangeKind::Modified,
            old: Some((id(&old), Mode::Regular)),
            new: Some((id(&new), Mode::Regular)),
            binary: false,
            lines: None,
        };
        let mut out = Vec::new();
        patch::write(&mut out, &change, Some(&old), Some(&new), &patch::Options::default());
        let stats = diff::line_stats(Some(&old), Some(&new)).expect("text");
        let body: Vec<&[u8]> = out.split(|b| *b == b'\n').skip(4).collect();
        let added = body.iter().filter(|l| l.starts_with(b"+")).count() as u64;
        let removed = body.iter().filter(|l| l.starts_with(b"-")).count() as u64;
        prop_assert_eq!((added, removed), (stats.added, stats.removed));
    }
}

#[test]
#[ignore = "known divergence from git, not fixed yet: imara-diff's Myers prunes the only common line (patch and counts agree with each other, not with git)"]
fn line_stats_keep_the_one_common_line_as_git_does() {
    // git diff --numstat: 1 added, 4 removed ("alpha" stays).
    let old = b"beta\nbeta\nalpha\nbeta\nbeta\n";
    let new = b"alpha\nalpha\n";
    let stats = snapgit_core::diff::line_stats(Some(old), Some(new)).unwrap();
    assert_eq!((stats.added, stats.removed), (1, 4));
}
