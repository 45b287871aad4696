//! Revisions resolved by snapgit equal `git rev-parse`: `~N`, `^N` and their chains on a
//! history with merges, from a branch, a full id, an abbreviated id (loose and packed)
//! and an annotated tag; an ambiguous abbreviation names its candidates.

use snapgit_core::{
    ObjectCache, ObjectId,
    drive::{self, MemoryStore, ObjectStore},
    rev::{self, Resolve},
    step::CasRef,
};
use snapgit_tests::{GitRepo, oid};

use crate::generated;

fn resolve(store: &MemoryStore, text: &str) -> Result<ObjectId, rev::Error> {
    let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
    let mut op = Resolve::new(&cache, "agent", text)?;
    drive::run(&mut op, &mut cache, store)
}

/// The generated history's store with its main line as the branch `main` of repo `agent`.
fn with_branch(store: MemoryStore, main: ObjectId) -> MemoryStore {
    let cas = CasRef {
        key: "refs/namespaces/agent/refs/heads/main".into(),
        expected: None,
        new: Some(main),
    };
    store.cas_ref(&cas).unwrap();
    store
}

fn git_rev_parse(git: &GitRepo, text: &str) -> Option<ObjectId> {
    let out = git.git_output(
        &["rev-parse", "--verify", "--quiet", &format!("{text}^{{commit}}")],
        &[],
        &[],
    );
    out.status
        .success()
        .then(|| oid(String::from_utf8_lossy(&out.stdout).trim()))
}

#[test]
fn ancestry_equals_git_rev_parse() {
    let h = generated::history();
    let store = with_branch(h.git.to_store(), h.main);
    let main = h.main.to_string();
    // The newest merge: its second parents are reached with ^2.
    let merge = h
        .parents
        .iter()
        .rposition(|parents| parents.len() > 1)
        .map(|i| h.commits[i].to_string())
        .expect("the history has merges");
    let (mut checked, mut second_parents) = (0, 0);
    for suffix in [
        "", "~", "~1", "~3", "~17", "^", "^1", "^2", "^0", "^^", "~2^2", "^2~3", "~5^2^", "~40", "~299", "~300", "^3",
        "~8^2~2^2",
    ] {
        for (base, as_git) in [
            ("main", main.as_str()),
            (main.as_str(), main.as_str()),
            (merge.as_str(), merge.as_str()),
        ] {
            let expected = git_rev_parse(&h.oracle, &format!("{as_git}{suffix}"));
            let ours = resolve(&store, &format!("{base}{suffix}"));
            match expected {
                Some(id) => {
                    assert_eq!(ours.unwrap(), id, "{base}{suffix}");
                    checked += 1;
                    second_parents += usize::from(suffix.contains("^2"));
                }
                None => assert!(
                    matches!(ours, Err(rev::Error::NoParent { .. })),
                    "{base}{suffix}: git finds nothing, snapgit {ours:?}"
                ),
            }
        }
    }
    assert!(
        checked >= 16 && second_parents > 0,
        "{checked} revisions existed, {second_parents} through a merge"
    );
}

#[test]
fn abbreviated_ids_resolve_loose_and_packed_and_ambiguity_is_an_error() {
    let h = generated::history();
    let loose = with_branch(h.git.to_store(), h.main);
    // The same objects packed by git.
    let packed_git = GitRepo::new();
    packed_git.git(&[
        "fetch",
        "-q",
        h.git.path().to_str().unwrap(),
        "+refs/heads/*:refs/heads/*",
    ]);
    let packed = with_branch(packed_git.to_full_store(), h.main);
    assert!(packed.is_empty(), "every object is packed");
    for store in [&loose, &packed] {
        for commit in h.commits.iter().step_by(37) {
            let hex = commit.to_string();
            assert_eq!(resolve(store, &hex[..10]).unwrap(), *commit);
            assert_eq!(
                resolve(store, &format!("{}~0", &hex[..12].to_uppercase())).unwrap(),
                *commit
            );
        }
        // Some 4-digit prefix names two objects of this history: the error names both.
        let ids: Vec<String> = loose.ids().iter().map(ToString::to_string).collect();
        let shared = ids
            .iter()
            .find(|a| ids.iter().filter(|b| b[..4] == a[..4]).count() > 1)
            .map(|a| a[..4].to_owned())
            .expect("300 commits and their trees share some 4-digit prefix");
        match resolve(store, &shared) {
            Err(rev::Error::Ambiguous { prefix, candidates }) => {
                assert_eq!(prefix, shared);
                assert!(candidates.len() > 1 && candidates.iter().all(|c| c.to_string().starts_with(&shared)));
            }
            other => panic!("{shared}: {other:?}"),
        }
        assert!(matches!(resolve(store, "0000000"), Err(rev::Error::Unknown { .. })));
        assert!(matches!(
            resolve(store, &"0".repeat(40)),
            Err(rev::Error::Unknown { .. })
        ));
        assert!(matches!(
            resolve(store, "no-such-branch"),
            Err(rev::Error::Unknown { .. })
        ));
    }
}

#[test]
fn a_tag_of_the_repo_names_its_commit() {
    let h = generated::history();
    let store = with_branch(h.git.to_store(), h.main);
    let third = h.commits[3];
    let git = GitRepo::new();
    git.write_store(&store);
    git.git(&["tag", "-a", "v1", "-m", "one", &third.to_string()]);
    let tag = oid(&git.git(&["rev-parse", "refs/tags/v1"]));
    for (id, bytes) in git.loose_objects() {
        if id == tag {
            store.insert_raw(id, bytes);
        }
    }
    let cas = CasRef {
        key: "refs/namespaces/agent/refs/tags/v1".into(),
        expected: None,
        new: Some(tag),
    };
    store.cas_ref(&cas).unwrap();
    assert_eq!(resolve(&store, "v1").unwrap(), third);
    assert_eq!(resolve(&store, "v1^0").unwrap(), third);
    assert_eq!(resolve(&store, &tag.to_string()).unwrap(), third);
}
