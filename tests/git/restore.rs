//! Restore against git: the new commit has exactly the earlier contents where restored
//! and the head's everywhere else, passes `git fsck`, and keeps the old head reachable.

use std::collections::BTreeMap;

use snapgit_core::{
    ObjectCache, ObjectId,
    diff::ChangeKind,
    drive::{self, MemoryStore, ObjectStore},
    restore::{Error, Request, Restore},
};
use snapgit_tests::{GitRepo, signature};

use crate::generated;

/// A history of its own: restores write objects into its repository.
struct Repo {
    git: GitRepo,
    store: MemoryStore,
    commits: Vec<ObjectId>,
    main: ObjectId,
    paths: Vec<String>,
}

fn repo(seed: u64) -> Repo {
    let (nodes, main) = generated::graph(seed, 60, false);
    let (git, commits) = generated::import(&nodes);
    let store = git.to_store();
    let mut paths: Vec<String> = nodes.iter().flat_map(|n| n.tree.keys().cloned()).collect();
    for path in paths.clone() {
        if let Some((folder, _)) = path.rsplit_once('/') {
            paths.push(folder.to_owned());
        }
    }
    paths.sort();
    paths.dedup();
    Repo {
        git,
        store,
        main: commits[main],
        commits,
        paths,
    }
}

/// Every file of a commit as git lists it: path -> (mode, id).
fn listing(git: &GitRepo, commit: &ObjectId) -> BTreeMap<String, (String, String)> {
    let out = git.git(&["ls-tree", "-r", "-z", "--full-tree", &commit.to_string()]);
    out.split('\0')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (meta, path) = line.split_once('\t').expect("`meta\\tpath`");
            let mut meta = meta.split(' ');
            let mode = meta.next().expect("mode").to_owned();
            let _kind = meta.next();
            let id = meta.next().expect("id").to_owned();
            (path.to_owned(), (mode, id))
        })
        .collect()
}

fn under(path: &str, candidate: &str) -> bool {
    path.is_empty() || candidate == path || candidate.starts_with(&format!("{path}/"))
}

fn restore(repo: &Repo, head: ObjectId, target: ObjectId, path: &str) -> Result<snapgit_core::commit::Output, Error> {
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let request = Request::new(head, target, signature(1_700_000_500)).with_path(path);
    let mut op = Restore::new(&cache, request)?;
    let out = drive::run(&mut op, &mut cache, &repo.store)?;
    repo.store.put_many(&out.objects).expect("memory store");
    repo.git.write_objects(&out.objects);
    Ok(out)
}

/// Check a restore against git: contents, parent, message, reachability, fsck.
fn check(repo: &Repo, head: ObjectId, target: ObjectId, path: &str) -> Option<snapgit_core::commit::Output> {
    let before = listing(&repo.git, &head);
    let earlier = listing(&repo.git, &target);
    let mut expected: BTreeMap<String, (String, String)> = before
        .iter()
        .filter(|(p, _)| !under(path, p))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    expected.extend(
        earlier
            .iter()
            .filter(|(p, _)| under(path, p))
            .map(|(p, v)| (p.clone(), v.clone())),
    );
    let out = match restore(repo, head, target, path) {
        Ok(out) => out,
        Err(Error::NothingToRestore) => {
            assert_eq!(expected, before, "nothing to restore, yet {path:?} differs");
            return None;
        }
        Err(Error::PathNotFound { .. }) => {
            assert!(before.keys().chain(earlier.keys()).all(|p| !under(path, p)));
            return None;
        }
        Err(Error::PathConflict { at, .. }) => {
            // A file of the head stands where the restored path needs a folder.
            assert!(before.contains_key(&at.to_string()) && expected.keys().any(|p| p.starts_with(&format!("{at}/"))));
            return None;
        }
        Err(err) => panic!("restore {path:?} from {target}: {err}"),
    };
    assert_eq!(listing(&repo.git, &out.id), expected, "restore {path:?} from {target}");
    assert_eq!(out.parent, Some(head));
    // The previous head stays reachable from the new one.
    repo.git.set_branch("restored", &out.id);
    let ancestor = repo.git.git_output(
        &["merge-base", "--is-ancestor", &head.to_string(), &out.id.to_string()],
        &[],
        &[],
    );
    assert!(ancestor.status.success());
    let message = repo.git.git(&["log", "-1", "--format=%B", &out.id.to_string()]);
    assert!(message.contains(&target.to_string()), "{message}");
    // The files reported are git's own diff of the head and the restore.
    let git_changes = repo.git.git(&[
        "--literal-pathspecs",
        "diff-tree",
        "-r",
        "-z",
        "--no-renames",
        "--name-only",
        &head.to_string(),
        &out.id.to_string(),
    ]);
    let git_changes: Vec<&str> = git_changes.split('\0').filter(|p| !p.is_empty()).collect();
    let ours: Vec<String> = out.files.iter().map(|f| f.path.to_string()).collect();
    assert_eq!(ours, git_changes);
    assert!(out.files.iter().all(|f| !matches!(f.kind, ChangeKind::Renamed { .. })));
    Some(out)
}

#[test]
fn restoring_the_whole_tree_gives_the_earlier_tree() {
    let repo = repo(0x0e57_0e01);
    let mut restored = 0;
    for target in repo.commits.iter().step_by(9) {
        if let Some(out) = check(&repo, repo.main, *target, "") {
            let target_tree = repo.git.git(&["rev-parse", &format!("{target}^{{tree}}")]);
            assert_eq!(out.tree.to_string(), target_tree.trim());
            // Nothing is written but the commit: every tree is the earlier commit's.
            assert_eq!(out.objects.len(), 1);
            restored += 1;
        }
    }
    assert!(restored >= 5);
    repo.git.fsck();
}

#[test]
fn restoring_one_path_changes_only_that_path() {
    let repo = repo(0x0e57_0e02);
    let mut restored = 0;
    for (k, path) in repo.paths.iter().enumerate() {
        let target = repo.commits[(k * 13) % repo.commits.len()];
        restored += usize::from(check(&repo, repo.main, target, path).is_some());
    }
    assert!(restored > 10, "{restored} restores made");
    repo.git.fsck();
}

#[test]
fn a_restore_can_be_undone_by_restoring_the_previous_head() {
    let repo = repo(0x0e57_0e03);
    let target = repo.commits[5];
    let first = restore(&repo, repo.main, target, "").expect("restore");
    let undo = restore(&repo, first.id, repo.main, "").expect("undo");
    let head_tree = repo.git.git(&["rev-parse", &format!("{}^{{tree}}", repo.main)]);
    assert_eq!(undo.tree.to_string(), head_tree.trim());
    assert_eq!(undo.parent, Some(first.id));
    repo.git.set_branch("main", &undo.id);
    let log = repo.git.git(&["log", "--format=%H", "-3", "main"]);
    let ids: Vec<&str> = log.lines().collect();
    assert_eq!(ids, [undo.id.to_string(), first.id.to_string(), repo.main.to_string()]);
    repo.git.fsck();
}
