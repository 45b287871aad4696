//! Diffs against `git diff-tree`: name-status with and without exact renames, numstat,
//! and patches that `git apply` accepts and that give the new tree.

use std::collections::{BTreeMap, HashMap};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{Change, Request as CommitRequest},
    diff::{
        ChangeKind, FileChange,
        tree::{Diff, Output, Request},
    },
    drive::{self, MemoryStore},
    tree::Mode,
};
use snapgit_tests::{GitRepo, oid, signature};

use crate::generated::{self, History};

/// The empty tree, which git knows without storing it.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

fn cache() -> ObjectCache {
    ObjectCache::new(gix_hash::Kind::Sha1)
}

/// Commit id -> (tree, parents), as git lists them.
fn commits(h: &History) -> HashMap<ObjectId, (String, Vec<ObjectId>)> {
    h.oracle
        .git(&["log", "--all", "--format=%H %T %P"])
        .lines()
        .map(|line| {
            let mut parts = line.split(' ');
            let id = oid(parts.next().expect("id"));
            let tree = parts.next().expect("tree").to_owned();
            (id, (tree, parts.filter(|p| !p.is_empty()).map(oid).collect()))
        })
        .collect()
}

/// The pairs compared: every commit with its first parent (`None`), every merge with its
/// other parents, and some commits far apart.
fn pairs(h: &History) -> Vec<(Option<ObjectId>, ObjectId)> {
    let mut pairs: Vec<(Option<ObjectId>, ObjectId)> = h.commits.iter().map(|&c| (None, c)).collect();
    for (i, parents) in h.parents.iter().enumerate() {
        for &p in parents.iter().skip(1) {
            pairs.push((Some(h.commits[p]), h.commits[i]));
        }
    }
    let n = h.commits.len();
    for k in 0..40 {
        pairs.push((Some(h.commits[(k * 37) % n]), h.commits[(k * 91 + 13) % n]));
    }
    pairs.push((Some(h.commits[0]), h.main));
    pairs.push((Some(h.main), h.commits[0]));
    pairs
}

/// The trees git compares for a pair.
fn trees(info: &HashMap<ObjectId, (String, Vec<ObjectId>)>, pair: &(Option<ObjectId>, ObjectId)) -> (String, String) {
    let to = info[&pair.1].0.clone();
    let from = match pair.0 {
        Some(from) => info[&from].0.clone(),
        None => match info[&pair.1].1.first() {
            Some(parent) => info[parent].0.clone(),
            None => EMPTY_TREE.to_owned(),
        },
    };
    (from, to)
}

/// Run `git diff-tree --stdin -r -z <args>` over every tree pair at once; records per pair.
fn diff_tree(h: &History, pairs: &[(String, String)], args: &[&str]) -> HashMap<(String, String), Vec<String>> {
    let mut input = String::new();
    let unique: std::collections::BTreeSet<&(String, String)> = pairs.iter().collect();
    for (a, b) in unique {
        input.push_str(&format!("{a} {b}\n"));
    }
    let mut command = vec!["diff-tree", "--stdin", "-r", "-z"];
    command.extend_from_slice(args);
    let out = h.oracle.git_with_input(&command, input.as_bytes());
    parse_z(&out, args.contains(&"--numstat"))
}

/// Split `-z` output into records keyed by the `<tree> <tree>` header lines.
fn parse_z(out: &str, numstat: bool) -> HashMap<(String, String), Vec<String>> {
    let mut result: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut key = (String::new(), String::new());
    let mut tokens = out.split('\0').peekable();
    while let Some(mut token) = tokens.next() {
        // Every pair is echoed, even one without changes.
        while token.len() >= 82 && token.as_bytes()[40] == b' ' && token.as_bytes()[81] == b'\n' {
            key = (token[..40].to_owned(), token[41..81].to_owned());
            token = &token[82..];
        }
        if token.is_empty() && tokens.peek().is_none() {
            break;
        }
        let record = if numstat {
            // `added\tremoved\tpath`, or for a rename `added\tremoved\t` then old and new.
            if token.ends_with('\t') {
                let old = tokens.next().unwrap_or_default();
                let new = tokens.next().unwrap_or_default();
                format!("{token}{old}\t{new}")
            } else {
                token.to_owned()
            }
        } else if token.starts_with('R') || token.starts_with('C') {
            let old = tokens.next().unwrap_or_default();
            let new = tokens.next().unwrap_or_default();
            format!("{token}\t{old}\t{new}")
        } else {
            format!("{token}\t{}", tokens.next().unwrap_or_default())
        };
        result.entry(key.clone()).or_default().push(record);
    }
    result
}

fn name_status(files: &[FileChange]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            let path = String::from_utf8_lossy(&f.path);
            match &f.kind {
                ChangeKind::Added => format!("A\t{path}"),
                ChangeKind::Deleted => format!("D\t{path}"),
                ChangeKind::Modified => format!("M\t{path}"),
                ChangeKind::TypeChanged => format!("T\t{path}"),
                ChangeKind::Renamed { from } => format!("R100\t{}\t{path}", String::from_utf8_lossy(from)),
                other => panic!("unexpected change kind {other:?}"),
            }
        })
        .collect()
}

fn numstat(files: &[FileChange]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            let counts = match f.lines {
                Some(l) => format!("{}\t{}", l.added, l.removed),
                None => "-\t-".to_owned(),
            };
            let path = String::from_utf8_lossy(&f.path);
            match &f.kind {
                ChangeKind::Renamed { from } => format!("{counts}\t{}\t{path}", String::from_utf8_lossy(from)),
                _ => format!("{counts}\t{path}"),
            }
        })
        .collect()
}

fn run(h: &History, cache: &mut ObjectCache, request: Request) -> Output {
    let mut op = Diff::new(request).expect("valid request");
    drive::run(&mut op, cache, &h.store).expect("diff")
}

#[test]
fn name_status_and_numstat_equal_git() {
    let h = generated::history();
    let info = commits(h);
    let pairs = pairs(h);
    let tree_pairs: Vec<(String, String)> = pairs.iter().map(|p| trees(&info, p)).collect();
    let renames = diff_tree(h, &tree_pairs, &["-M100%", "--name-status"]);
    let no_renames = diff_tree(h, &tree_pairs, &["--name-status"]);
    let stats = diff_tree(h, &tree_pairs, &["-M100%", "--numstat"]);
    let mut cache = cache();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (pair, trees) in pairs.iter().zip(&tree_pairs) {
        let empty = Vec::new();
        let mut request = Request::new(pair.0, pair.1).without_line_stats();
        let plain = run(h, &mut cache, request.clone());
        assert_eq!(
            plain.files.iter().map(|f| f.lines).collect::<Vec<_>>(),
            vec![None; plain.files.len()]
        );
        request.line_stats = true;
        let ours = run(h, &mut cache, request.clone());
        let expected = renames.get(trees).unwrap_or(&empty);
        assert_eq!(&name_status(&ours.files), expected, "name-status -M100% of {pair:?}");
        assert_eq!(
            &numstat(&ours.files),
            stats.get(trees).unwrap_or(&empty),
            "numstat of {pair:?}"
        );
        request.renames = false;
        let ours = run(h, &mut cache, request);
        let expected = no_renames.get(trees).unwrap_or(&empty);
        assert_eq!(
            &name_status(&ours.files),
            expected,
            "name-status --no-renames of {pair:?}"
        );
        for record in renames.get(trees).unwrap_or(&empty) {
            *seen.entry(record[..1].to_owned()).or_default() += 1;
        }
    }
    // The history exercised every kind of change.
    for status in ["A", "D", "M", "R", "T"] {
        assert!(
            seen.get(status).copied().unwrap_or(0) >= 3,
            "few {status} changes: {seen:?}"
        );
    }
}

#[test]
fn restricted_diffs_equal_git() {
    let h = generated::history();
    let info = commits(h);
    let mut cache = cache();
    let all_pairs = pairs(h);
    let paths: Vec<&String> = h.paths.iter().collect();
    let mut compared = 0;
    for (k, pair) in all_pairs.iter().step_by(5).enumerate() {
        // A changed file, the folder above it, or any path at all.
        let whole = run(h, &mut cache, Request::new(pair.0, pair.1));
        let changed = whole
            .files
            .get(k % whole.files.len().max(1))
            .map(|f| f.path.to_string());
        let path = match (k % 3, changed) {
            (0, Some(file)) => file,
            (1, Some(file)) => file
                .rsplit_once('/')
                .map_or(file.clone(), |(folder, _)| folder.to_owned()),
            _ => paths[(k * 7) % paths.len()].clone(),
        };
        let path = &path;
        let (a, b) = trees(&info, pair);
        let out = h.oracle.git(&[
            "--literal-pathspecs",
            "diff-tree",
            "-r",
            "-z",
            "-M100%",
            "--name-status",
            &a,
            &b,
            "--",
            path,
        ]);
        let expected = parse_z(&format!("{a} {b}\n{out}"), false)
            .remove(&(a, b))
            .unwrap_or_default();
        let mut op = Diff::new(Request::new(pair.0, pair.1).with_path(path.as_str())).expect("valid");
        match drive::run(&mut op, &mut cache, &h.store) {
            Ok(ours) => {
                assert_eq!(name_status(&ours.files), expected, "{pair:?} restricted to {path:?}");
                compared += usize::from(!expected.is_empty());
            }
            Err(snapgit_core::diff::tree::Error::PathNotFound { .. }) => {
                assert!(expected.is_empty(), "{pair:?} restricted to {path:?}")
            }
            Err(err) => panic!("{err}"),
        }
    }
    assert!(compared > 5);
}

/// Apply `patch` with `git apply --cached` onto an index holding `from`; the tree it writes.
fn apply(git: &GitRepo, from: &str, patch: &[u8]) -> Result<String, String> {
    let index = tempfile::NamedTempFile::new().expect("temporary index");
    let env = [("GIT_INDEX_FILE", index.path().display().to_string())];
    let read = git.git_output(&["read-tree", from], &[], &env);
    assert!(read.status.success());
    for args in [&["apply", "--cached", "--check"][..], &["apply", "--cached"][..]] {
        let out = git.git_output(args, patch, &env);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    let written = git.git_output(&["write-tree"], &[], &env);
    Ok(String::from_utf8_lossy(&written.stdout).trim().to_owned())
}

#[test]
fn git_apply_accepts_our_patches() {
    let h = generated::history();
    let info = commits(h);
    let mut cache = cache();
    let mut applied = 0;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for pair in pairs(h) {
        let mut request = Request::new(pair.0, pair.1).with_patch();
        request.renames = applied % 2 == 0;
        let ours = run(h, &mut cache, request);
        let patch = ours.patch.expect("a patch was asked for");
        if ours.files.is_empty() {
            assert!(patch.is_empty());
            continue;
        }
        // Every file has one section, a type change two.
        let sections = sections(&patch);
        let expected = ours.files.len() + ours.files.iter().filter(|f| f.kind == ChangeKind::TypeChanged).count();
        assert_eq!(sections, expected, "{pair:?}");
        let interesting = ours
            .files
            .iter()
            .any(|f| f.binary || f.kind != ChangeKind::Modified || f.old.map(|o| o.1) != f.new.map(|n| n.1));
        if !interesting && applied > 30 {
            continue;
        }
        for f in &ours.files {
            let kind = match &f.kind {
                ChangeKind::Renamed { .. } => "renamed".to_owned(),
                other => format!("{other:?}"),
            };
            *kinds.entry(kind).or_default() += 1;
            if f.binary {
                *kinds.entry("binary".into()).or_default() += 1;
            }
            if f.new.is_some_and(|n| n.1 == Mode::Submodule) || f.old.is_some_and(|o| o.1 == Mode::Submodule) {
                *kinds.entry("submodule".into()).or_default() += 1;
            }
        }
        let (from, to) = trees(&info, &pair);
        match apply(&h.oracle, &from, &patch) {
            Ok(tree) => assert_eq!(tree, to, "applying the patch of {pair:?} gives another tree:\n{patch}"),
            Err(err) => panic!("git apply refused the patch of {pair:?}: {err}\n{patch}"),
        }
        applied += 1;
        if applied >= 80 {
            break;
        }
    }
    for kind in [
        "Added",
        "Deleted",
        "Modified",
        "TypeChanged",
        "renamed",
        "binary",
        "submodule",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} change was applied: {kinds:?}");
    }
}

/// The number of file sections in a patch.
fn sections(patch: &[u8]) -> usize {
    patch
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"diff --git "))
        .count()
}

#[test]
fn patch_text_matches_git_byte_for_byte_on_simple_changes() {
    let git = GitRepo::new();
    let store = MemoryStore::new();
    let mut cache = cache();
    let me = signature(1_700_000_000);
    let mut commit = |parent: Option<ObjectId>, changes: Vec<Change>| {
        let request = CommitRequest::new(parent, changes, me.clone(), "change");
        snapgit_tests::commit(&mut cache, &store, request).expect("commit")
    };
    let base: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    let edited = base.replace("line 5\n", "line five\n").replace("line 25\n", "") + "tail";
    let first = commit(
        None,
        vec![
            Change::put("notes/a.md", base.clone()),
            Change::put("gone.txt", "bye\n"),
            Change::put("same.txt", "same\n"),
            Change::Put {
                path: "tool.sh".into(),
                data: b"echo hi\n".to_vec(),
                mode: Mode::Regular,
            },
        ],
    );
    let second = commit(
        Some(first.id),
        vec![
            Change::put("notes/a.md", edited),
            Change::delete("gone.txt"),
            Change::rename("same.txt", "moved/same.txt"),
            Change::Put {
                path: "tool.sh".into(),
                data: b"echo hi\n".to_vec(),
                mode: Mode::Executable,
            },
            Change::put("new file.txt", "hello\nworld\n"),
        ],
    );
    git.write_store(&store);
    let expected = git.git(&[
        "diff",
        "-M100%",
        "--abbrev=7",
        &first.id.to_string(),
        &second.id.to_string(),
    ]);
    let mut op = Diff::new(Request::new(None, second.id).with_patch()).expect("valid");
    let ours = drive::run(&mut op, &mut self::cache(), &store).expect("diff");
    assert_eq!(ours.patch.expect("patch").to_string(), expected);
}

#[test]
fn binary_patches_apply_where_git_has_never_seen_the_new_content() {
    let store = MemoryStore::new();
    let mut cache = cache();
    let me = signature(1_700_000_000);
    let old: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut new = old.clone();
    new[100] = 7;
    new.extend_from_slice(b"\0more");
    let first = snapgit_tests::commit(
        &mut cache,
        &store,
        CommitRequest::new(
            None,
            vec![
                Change::put("blob.bin", old),
                Change::put("gone.bin", b"\0\x01".to_vec()),
            ],
            me.clone(),
            "first",
        ),
    )
    .expect("commit");
    let second = snapgit_tests::commit(
        &mut cache,
        &store,
        CommitRequest::new(
            Some(first.id),
            vec![
                Change::put("blob.bin", new),
                Change::delete("gone.bin"),
                Change::put("added.bin", b"\0new".to_vec()),
            ],
            me,
            "second",
        ),
    )
    .expect("commit");
    let mut request = Request::new(None, second.id).with_patch();
    request.binary_patch = true;
    let mut op = Diff::new(request).expect("valid");
    let ours = drive::run(&mut op, &mut self::cache(), &store).expect("diff");
    let patch = ours.patch.expect("patch");
    assert!(patch.to_string().contains("GIT binary patch"));

    // A repository holding only the first commit's objects.
    let git = GitRepo::new();
    git.write_objects(&first.objects);
    let tree = apply(&git, &first.tree.to_string(), &patch).expect("git apply accepts the binary patch");
    assert_eq!(tree, second.tree.to_string());
}

#[test]
fn patches_equal_git_diff_byte_for_byte() {
    // Binary files are left out: their index lines carry full ids on purpose.
    let h = generated::history();
    let mut cache = cache();
    let mut compared = 0;
    for (i, &commit) in h.commits.iter().enumerate() {
        let Some(&parent) = h.parents[i].first() else {
            continue;
        };
        let ours = run(h, &mut cache, Request::new(None, commit).with_patch());
        if ours.files.iter().any(|f| f.binary) {
            continue;
        }
        let parent = h.commits[parent].to_string();
        let expected = h
            .oracle
            .git(&["diff", "-M100%", "--abbrev=7", &parent, &commit.to_string()]);
        assert_eq!(ours.patch.expect("patch").to_string(), expected, "{parent}..{commit}");
        compared += 1;
    }
    assert!(compared > 100);
}
