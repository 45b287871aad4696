//! Commit-graphs against git: the files core writes are byte for byte those `git
//! commit-graph write` writes (one file, and a split chain), `git commit-graph verify`
//! accepts them, and git's `log` answers the same with them as without, using their
//! Bloom filters; the files git writes read back as git's own objects say; hostile
//! files are typed errors, never panics.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use bstr::BString;
use proptest::prelude::*;
use snapgit_core::{
    HashKind, ObjectId,
    graph::{self, Chain, Commit, Error, Graph},
};

const SHA1: HashKind = HashKind::Sha1;

/// A work tree with a fixed identity, isolated from the machine's git configuration.
struct Repo {
    temp: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let repo = Repo {
            temp: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "--quiet", "--initial-branch=main", "."]);
        // No automatic gc or maintenance: it would write commit-graphs of its own.
        repo.git(&["config", "gc.auto", "0"]);
        repo.git(&["config", "maintenance.auto", "false"]);
        repo
    }

    fn path(&self) -> &Path {
        self.temp.path()
    }

    fn info(&self) -> PathBuf {
        self.path().join(".git/objects/info")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Agent")
            .env("GIT_AUTHOR_EMAIL", "agent@example.com")
            .env("GIT_COMMITTER_NAME", "Agent")
            .env("GIT_COMMITTER_EMAIL", "agent@example.com")
            .env("LC_ALL", "C");
        cmd
    }

    fn output(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = self.output(args, &[]);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Commit everything in the work tree at `time`.
    fn commit(&self, message: &str, time: i64) {
        self.git(&["add", "--all"]);
        let date = format!("@{time} +0000");
        let env = [
            ("GIT_AUTHOR_DATE", date.as_str()),
            ("GIT_COMMITTER_DATE", date.as_str()),
        ];
        let out = self.output(&["commit", "--quiet", "--allow-empty", "-m", message], &env);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn merge(&self, branches: &[&str], time: i64, unrelated: bool) {
        let date = format!("@{time} +0000");
        let env = [
            ("GIT_AUTHOR_DATE", date.as_str()),
            ("GIT_COMMITTER_DATE", date.as_str()),
        ];
        let mut args = vec!["merge", "--quiet", "--no-ff", "-m", "merge"];
        if unrelated {
            args.push("--allow-unrelated-histories");
        }
        args.extend_from_slice(branches);
        let out = self.output(&args, &env);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Every commit of every ref, as the writer takes them, with the paths each changed
    /// against its first parent as `git diff-tree` lists them.
    fn commits(&self, revs: &[&str]) -> Vec<Commit> {
        let mut args = vec!["log", "--format=%H %T %ct %P"];
        args.extend_from_slice(revs);
        self.git(&args)
            .lines()
            .map(|line| {
                let mut words = line.split(' ');
                let mut next_id = || ObjectId::from_hex(words.next().unwrap().as_bytes()).unwrap();
                let (id, tree) = (next_id(), next_id());
                let time = words.next().unwrap().parse().unwrap();
                let parents: Vec<ObjectId> = words
                    .filter(|hex| !hex.is_empty())
                    .map(|hex| ObjectId::from_hex(hex.as_bytes()).unwrap())
                    .collect();
                Commit {
                    id,
                    tree,
                    time,
                    changed: Some(self.changed(id, parents.first())),
                    filter: None,
                    parents,
                }
            })
            .collect()
    }

    fn changed(&self, id: ObjectId, parent: Option<&ObjectId>) -> Vec<BString> {
        let (id, parent) = (id.to_string(), parent.map(ToString::to_string));
        let mut args = vec!["diff-tree", "-r", "-z", "--name-only", "--no-commit-id"];
        match &parent {
            Some(parent) => args.push(parent),
            None => args.push("--root"),
        }
        args.push(&id);
        let out = self.output(&args, &[]);
        assert!(out.status.success());
        out.stdout
            .split(|&b| b == 0)
            .filter(|path| !path.is_empty())
            .map(BString::from)
            .collect()
    }

    fn remove_graphs(&self) {
        let _ = std::fs::remove_file(self.info().join("commit-graph"));
        let _ = std::fs::remove_dir_all(self.info().join("commit-graphs"));
    }

    fn read(&self, key: &str) -> Vec<u8> {
        std::fs::read(self.path().join(".git").join(key)).unwrap()
    }

    fn put(&self, key: &str, bytes: &[u8]) {
        let path = self.path().join(".git").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// `git log` with and without the commit-graph, and the Bloom statistics of the run
    /// with it (from trace2), if git reported any.
    fn log_both_ways(&self, args: &[&str]) -> (String, String, Option<serde_json::Value>) {
        let without = [&["-c", "core.commitGraph=false", "log"], args].concat();
        let trace = self.path().join(".git/trace2.json");
        let _ = std::fs::remove_file(&trace);
        let trace_env = trace.to_str().unwrap();
        let with = [&["log"], args].concat();
        let out = self.output(&with, &[("GIT_TRACE2_EVENT", trace_env)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.stderr.is_empty(),
            "git warns: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let statistics = std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|event| event["category"] == "bloom" && event["key"] == "statistics")
            .map(|event| event["value"].clone());
        (self.git(&without), String::from_utf8(out.stdout).unwrap(), statistics)
    }

    fn verify(&self) {
        let out = self.output(&["commit-graph", "verify"], &[]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "git commit-graph verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const DAY: i64 = 86_400;
const T0: i64 = 1_600_000_000;

/// A history with every shape the format has: two roots, merges, an octopus merge, an
/// empty commit, a rename, a file that becomes a folder, a non-ASCII path, a commit of
/// more than 512 paths, and a commit older than its parent by more than 2^31 seconds
/// (its generation offset goes to GDO2). The tag `base` marks its first part.
fn history() -> Repo {
    let repo = Repo::new();
    repo.write("a.txt", "a\n");
    repo.write("dir/b.txt", "b\n");
    repo.write("dir/sub/c.txt", "c\n");
    repo.write("caf\u{e9}/\u{e9}t\u{e9}.txt", "summer\n");
    repo.commit("root", T0);
    repo.write("dir/sub/c.txt", "c2\n");
    repo.commit("change c", T0 + DAY);
    for (branch, path, at) in [("x", "a.txt", 2), ("y", "other/d.txt", 3), ("z", "dir/sub/e.txt", 4)] {
        repo.git(&["checkout", "--quiet", "-b", branch, "main"]);
        repo.write(path, branch);
        repo.commit(branch, T0 + at * DAY);
    }
    repo.git(&["checkout", "--quiet", "main"]);
    repo.write("main.txt", "main\n");
    repo.commit("main", T0 + 5 * DAY);
    repo.merge(&["x", "y", "z"], T0 + 6 * DAY, false);
    repo.git(&["tag", "base"]);

    repo.commit("nothing", T0 + 7 * DAY);
    repo.git(&["checkout", "--quiet", "--orphan", "second-root"]);
    repo.git(&["rm", "-r", "--quiet", "--force", "."]);
    repo.write("root2/file.txt", "another root\n");
    repo.commit("second root", T0 + 8 * DAY);
    repo.git(&["checkout", "--quiet", "main"]);
    repo.merge(&["second-root"], T0 + 9 * DAY, true);
    repo.git(&["mv", "a.txt", "renamed.txt"]);
    std::fs::remove_file(repo.path().join("main.txt")).unwrap();
    repo.write("main.txt/inside", "a folder now\n");
    repo.commit("rename, file to folder", T0 + 10 * DAY);
    for i in 0..600 {
        repo.write(&format!("bulk/{}/{i}.txt", i % 7), "bulk\n");
    }
    repo.commit("bulk", T0 + 11 * DAY);
    // Below 2^32: git 2.47 truncates larger parent generations (fixed in later git).
    repo.write("future.txt", "from the future\n");
    repo.commit("future", 4_000_000_000);
    repo.write("past.txt", "back to the past\n");
    repo.commit("past", T0 + 12 * DAY);
    repo
}

/// Paths to ask git's log and the filters about: files, folders, gone and never there.
const PATHS: &[&str] = &[
    "a.txt",
    "dir",
    "dir/sub",
    "dir/sub/c.txt",
    "dir/sub/e.txt",
    "other/d.txt",
    "main.txt",
    "main.txt/inside",
    "renamed.txt",
    "root2",
    "bulk/3",
    "caf\u{e9}/\u{e9}t\u{e9}.txt",
    "past.txt",
    "never/there.txt",
];

fn git_log_agrees(repo: &Repo) {
    let (without, with, _) = repo.log_both_ways(&["--graph", "--oneline", "--all"]);
    assert_eq!(with, without);
    let (mut maybe, mut definitely_not) = (0, 0);
    for path in PATHS {
        let (without, with, statistics) = repo.log_both_ways(&["--format=%H", "--", path]);
        assert_eq!(with, without, "git log -- {path}");
        let statistics = statistics.unwrap_or_else(|| panic!("git log -- {path} did not use Bloom filters"));
        assert_eq!(statistics["filter_not_present"], 0, "{path}: {statistics}");
        maybe += statistics["maybe"].as_u64().unwrap();
        definitely_not += statistics["definitely_not"].as_u64().unwrap();
    }
    assert!(
        definitely_not > maybe,
        "filters rule out most commits: {definitely_not} vs {maybe}"
    );
}

#[test]
fn a_graph_is_what_git_writes_and_git_uses_it() {
    let repo = history();
    let commits = repo.commits(&["--all"]);
    assert_eq!(commits.len(), 14);
    assert!(commits.iter().any(|c| c.parents.len() == 4), "an octopus merge");

    repo.git(&[
        "-c",
        "commitGraph.changedPathsVersion=2",
        "commit-graph",
        "write",
        "--reachable",
        "--changed-paths",
    ]);
    let theirs = repo.read(graph::GRAPH);
    repo.remove_graphs();

    let ours = graph::write(SHA1, &commits, None).unwrap();
    for name in [b"EDGE", b"GDO2", b"BIDX", b"BDAT"] {
        chunk(&ours, name);
    }
    assert_eq!(ours, theirs, "the bytes git writes");
    repo.put(graph::GRAPH, &ours);
    repo.verify();
    git_log_agrees(&repo);
}

#[test]
fn a_split_chain_is_what_git_writes_and_git_uses_it() {
    let repo = history();
    let base_commits = repo.commits(&["base"]);
    let top_commits = repo.commits(&["--all", "^base"]);
    assert!(
        top_commits
            .iter()
            .any(|c| c.parents.iter().any(|p| base_commits.iter().any(|b| b.id == *p)))
    );

    // git: a layer of what `base` reaches, then one of the rest.
    let version = ["-c", "commitGraph.changedPathsVersion=2", "commit-graph", "write"];
    let out = repo
        .command(
            &[
                &version[..],
                &["--split=no-merge", "--changed-paths", "--stdin-commits"],
            ]
            .concat(),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(repo.git(&["rev-parse", "base"]).as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    repo.git(&[&version[..], &["--split=no-merge", "--changed-paths", "--reachable"]].concat());
    let chain_text = repo.read(graph::CHAIN);
    let hashes = graph::parse_chain(graph::CHAIN, &chain_text, SHA1).unwrap();
    assert_eq!(hashes.len(), 2);
    let theirs: Vec<Vec<u8>> = hashes.iter().map(|hash| repo.read(&graph::layer_key(hash))).collect();
    repo.remove_graphs();

    let base = graph::write(SHA1, &base_commits, None).unwrap();
    let chain = Chain::new(vec![Graph::from_bytes("base", base.clone(), SHA1).unwrap()]).unwrap();
    let top = graph::write(SHA1, &top_commits, Some(&chain)).unwrap();
    assert_eq!([&base, &top], [&theirs[0], &theirs[1]], "the layers git writes");

    let mut layers = chain.into_layers();
    layers.push(Graph::from_bytes("top", top.clone(), SHA1).unwrap());
    let chain = Chain::new(layers).unwrap();
    let ours: Vec<ObjectId> = chain.layers().iter().map(Graph::checksum).collect();
    assert_eq!(graph::format_chain(&ours).as_bytes(), chain_text);
    for (layer, bytes) in ours.iter().zip([base, top]) {
        repo.put(&graph::layer_key(layer), &bytes);
    }
    repo.put(graph::CHAIN, graph::format_chain(&ours).as_bytes());
    repo.verify();
    git_log_agrees(&repo);
    check_against_git(&repo, &chain);
}

/// Every commit of `repo` as `chain` records it: tree, parents, time, a generation above
/// its parents' and at least its time, and filters that hold every path it changed.
fn check_against_git(repo: &Repo, chain: &Chain) {
    let commits = repo.commits(&["--all"]);
    assert_eq!(chain.len() as usize, commits.len());
    let by_id: BTreeMap<ObjectId, &Commit> = commits.iter().map(|c| (c.id, c)).collect();
    let mut ruled_out = 0;
    // Parents before children, for the corrected commit dates.
    let mut corrected = BTreeMap::new();
    for line in repo.git(&["rev-list", "--topo-order", "--reverse", "--all"]).lines() {
        let commit = by_id[&ObjectId::from_hex(line.as_bytes()).unwrap()];
        let pos = chain.find(&commit.id).expect("every commit is in the graph");
        assert_eq!(chain.id(pos), Some(commit.id));
        let entry = chain.commit(pos).unwrap();
        assert_eq!(entry.tree, commit.tree);
        assert_eq!(entry.time, commit.time);
        let parents: Vec<ObjectId> = entry.parents.iter().map(|&p| chain.id(p).unwrap()).collect();
        assert_eq!(parents, commit.parents);
        let above = commit.parents.iter().map(|p| corrected[p] + 1).max().unwrap_or(0);
        let generation = above.max(commit.time as u64);
        assert_eq!(entry.generation, generation, "corrected commit date of {}", commit.id);
        corrected.insert(commit.id, generation);

        let changed = commit.changed.as_ref().unwrap();
        for path in changed {
            let mut path = &path[..];
            loop {
                assert_eq!(
                    chain.may_have_changed(pos, path),
                    Some(true),
                    "{} changed {path:?}",
                    commit.id
                );
                match path.iter().rposition(|&b| b == b'/') {
                    Some(slash) => path = &path[..slash],
                    None => break,
                }
            }
        }
        for path in PATHS {
            let answer = chain
                .may_have_changed(pos, path.as_bytes())
                .expect("a filter for every commit");
            ruled_out += usize::from(!answer);
            if changed.is_empty() {
                assert!(!answer, "{} changed nothing", commit.id);
            }
            if changed.len() > 512 {
                assert!(answer, "{} changed too much to filter", commit.id);
            }
        }
    }
    assert!(
        ruled_out > commits.len() * PATHS.len() / 2,
        "{ruled_out} answers were no"
    );
}

#[test]
fn graphs_git_writes_read_back() {
    let repo = history();
    for version in ["1", "2"] {
        let setting = format!("commitGraph.changedPathsVersion={version}");
        repo.remove_graphs();
        repo.git(&[
            "-c",
            &setting,
            "commit-graph",
            "write",
            "--reachable",
            "--changed-paths",
        ]);
        let graph = Graph::from_bytes(graph::GRAPH, repo.read(graph::GRAPH), SHA1).unwrap();
        assert!(graph.has_filters() && graph.has_generation_data());
        check_against_git(&repo, &Chain::new(vec![graph]).unwrap());

        // A chain of three layers, as git splits.
        repo.remove_graphs();
        for rev in ["base~1", "base", "main"] {
            let stdin = format!("{}\n", repo.git(&["rev-parse", rev]).trim());
            let mut child = repo
                .command(&[
                    "-c",
                    &setting,
                    "commit-graph",
                    "write",
                    "--split=no-merge",
                    "--changed-paths",
                    "--stdin-commits",
                ])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
            assert!(child.wait().unwrap().success());
        }
        let hashes = graph::parse_chain(graph::CHAIN, &repo.read(graph::CHAIN), SHA1).unwrap();
        assert_eq!(hashes.len(), 3);
        let layers = hashes
            .iter()
            .map(|hash| {
                let key = graph::layer_key(hash);
                Graph::from_bytes(&key, repo.read(&key), SHA1).unwrap()
            })
            .collect();
        let chain = Chain::new(layers).unwrap();
        assert_eq!(chain.layers()[2].bases().collect::<Vec<_>>(), hashes[..2]);
        check_against_git(&repo, &chain);
    }
}

#[test]
fn dates_beyond_32_bits_pass_git_verify() {
    let repo = Repo::new();
    repo.write("a", "a\n");
    repo.commit("future", 1 << 33);
    repo.write("a", "b\n");
    repo.commit("past", T0);
    let ours = graph::write(SHA1, &repo.commits(&["--all"]), None).unwrap();
    repo.put(graph::GRAPH, &ours);
    repo.verify();
    let chain = Chain::new(vec![Graph::from_bytes(graph::GRAPH, ours, SHA1).unwrap()]).unwrap();
    let past = chain.find(&repo.commits(&["main"])[0].id).unwrap();
    assert_eq!(chain.commit(past).unwrap().generation, (1 << 33) + 1);
}

// Hostile input and misuse, without git.

fn id(n: u32) -> ObjectId {
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&n.wrapping_mul(0x9e37_79b9).to_be_bytes());
    bytes[19] = 1;
    ObjectId::from_bytes_or_panic(&bytes)
}

fn commit(n: u32, parents: &[u32]) -> Commit {
    Commit {
        id: id(n),
        tree: id(n + 1000),
        parents: parents.iter().map(|&p| id(p)).collect(),
        time: T0 + i64::from(n),
        changed: Some(vec![format!("dir/{n}.txt").into()]),
        filter: None,
    }
}

/// A small graph with an octopus merge and a clock skew beyond GDO2's limit.
fn small() -> Vec<Commit> {
    let mut commits = vec![
        commit(1, &[]),
        commit(2, &[1]),
        commit(3, &[1]),
        commit(4, &[1]),
        commit(5, &[2, 3, 4]),
        commit(6, &[5]),
        commit(7, &[6, 2]),
    ];
    commits[5].time = 4_000_000_000;
    commits[6].time = 1;
    commits
}

fn small_bytes() -> Vec<u8> {
    graph::write(SHA1, &small(), None).unwrap()
}

fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - 20;
    let mut hasher = gix_hash::hasher(SHA1);
    hasher.update(&bytes[..body]);
    bytes[body..].copy_from_slice(hasher.try_finalize().unwrap().as_slice());
}

fn parse(bytes: Vec<u8>) -> Result<Chain, Error> {
    Chain::new(vec![Graph::from_bytes("objects/info/commit-graph", bytes, SHA1)?])
}

fn corrupt_reason(result: Result<Chain, Error>) -> String {
    match result {
        Err(Error::Corrupt { key, reason }) => {
            assert_eq!(key, "objects/info/commit-graph");
            reason
        }
        other => panic!("not a corrupt error: {other:?}"),
    }
}

/// Where chunk `id` starts, from the table of contents.
fn chunk(bytes: &[u8], name: &[u8; 4]) -> usize {
    (8..)
        .step_by(12)
        .find(|&at| &bytes[at..at + 4] == name)
        .map(|at| u64::from_be_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize)
        .unwrap()
}

#[test]
fn small_graph_reads_back() {
    let chain = parse(small_bytes()).unwrap();
    assert_eq!(chain.len(), 7);
    let at = |n| chain.find(&id(n)).unwrap();
    let octopus = chain.commit(at(5)).unwrap();
    assert_eq!(octopus.parents, [at(2), at(3), at(4)]);
    let skewed = chain.commit(at(7)).unwrap();
    assert_eq!((skewed.time, skewed.generation), (1, 4_000_000_001));
    assert_eq!(chain.may_have_changed(at(7), b"dir/7.txt"), Some(true));
    assert_eq!(chain.may_have_changed(at(7), b"dir/"), Some(true));
    assert_eq!(chain.find(&id(99)), None);
    assert_eq!(chain.commit(7), None);
    assert_eq!(chain.may_have_changed(7, b"dir"), None);
    let mut no_filters = small();
    no_filters[0].changed = None;
    let chain = parse(graph::write(SHA1, &no_filters, None).unwrap()).unwrap();
    assert_eq!(chain.may_have_changed(chain.find(&id(1)).unwrap(), b"dir/1.txt"), None);
    assert_eq!(
        chain.may_have_changed(chain.find(&id(2)).unwrap(), b"dir/2.txt"),
        Some(true)
    );
}

#[test]
fn writing_refuses_what_cannot_be_a_graph() {
    let mut commits = small();
    commits.push(commit(8, &[42]));
    assert_eq!(
        graph::write(SHA1, &commits, None),
        Err(Error::MissingParent {
            commit: id(8),
            parent: id(42)
        })
    );
    let mut commits = small();
    commits.push(commit(3, &[1]));
    assert_eq!(graph::write(SHA1, &commits, None), Err(Error::Duplicate { id: id(3) }));
    let chain = parse(small_bytes()).unwrap();
    assert_eq!(
        graph::write(SHA1, &[commit(2, &[1])], Some(&chain)),
        Err(Error::Duplicate { id: id(2) })
    );
    let commits = [commit(1, &[3]), commit(2, &[1]), commit(3, &[2])];
    assert!(matches!(graph::write(SHA1, &commits, None), Err(Error::Cycle { .. })));
    assert!(matches!(
        graph::write(SHA1, &[commit(1, &[1])], None),
        Err(Error::Cycle { .. })
    ));
    let mut commits = small();
    commits[0].time = -1;
    assert_eq!(
        graph::write(SHA1, &commits, None),
        Err(Error::TimeOutOfRange { id: id(1), time: -1 })
    );
    // A deep history: no recursion.
    let deep: Vec<Commit> = (1..200_000)
        .map(|n| commit(n, &[n - 1][..usize::from(n > 1)]))
        .collect();
    let chain = parse(graph::write(SHA1, &deep, None).unwrap()).unwrap();
    assert_eq!(
        chain.commit(chain.find(&id(199_999)).unwrap()).unwrap().generation,
        (T0 + 199_999) as u64
    );
}

#[test]
fn hostile_graphs_are_typed_errors() {
    let good = small_bytes();
    for len in 0..good.len() {
        parse(good[..len].to_vec()).unwrap_err();
    }
    let mut flipped = good.clone();
    flipped[100] ^= 1;
    assert!(corrupt_reason(parse(flipped)).contains("checksum"));

    // Resealed, so the checksum holds and the structure is what fails.
    let edit = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        change(&mut bytes);
        reseal(&mut bytes);
        corrupt_reason(parse(bytes))
    };
    let oidl = chunk(&good, b"OIDL");
    let cdat = chunk(&good, b"CDAT");
    let edge = chunk(&good, b"EDGE");
    assert!(edit(&|b| b[8 + 12 + 4..8 + 12 + 12].copy_from_slice(&(1u64 << 40).to_be_bytes())).contains("offsets"));
    assert!(edit(&|b| b[8 + 4..8 + 12].copy_from_slice(&3u64.to_be_bytes())).contains("offsets"));
    assert!(edit(&|b| b[8..12].copy_from_slice(b"CDAT")).contains("twice"));
    assert!(edit(&|b| b[6] = 2).contains("does not end"));
    assert!(edit(&|b| b[4] = 2).contains("version"));
    assert!(edit(&|b| b[5] = 2).contains("hash version"));
    assert!(edit(&|b| b[7] = 1).contains("BASE"));
    assert!(edit(&|b| b.copy_within(oidl..oidl + 20, oidl + 20)).contains("not sorted"));
    assert!(edit(&|b| b[oidl..oidl + 40].rotate_left(20)).contains("fan-out"));
    let high = edit(&|b| b[oidl] = 0xff);
    assert!(high.contains("sorted") || high.contains("fan-out"), "{high}");
    // Parents: beyond the graph, the commit itself, a second one without a first.
    let row = |n: u32| cdat + 36 * position_of(&good, n) as usize;
    let (one, six) = (row(1), row(6));
    assert!(edit(&|b| b[one + 20..one + 24].copy_from_slice(&12u32.to_be_bytes())).contains("beyond"));
    let itself = position_of(&good, 6).to_be_bytes();
    assert!(edit(&|b| b[six + 20..six + 24].copy_from_slice(&itself)).contains("generation"));
    assert!(edit(&|b| b[one + 24..one + 28].copy_from_slice(&5u32.to_be_bytes())).contains("second"));
    // The octopus list: pointing past EDGE, and without its last-parent flag.
    let five = row(5);
    let past_edge = (0x8000_0000u32 | 7).to_be_bytes();
    assert!(edit(&|b| b[five + 24..five + 28].copy_from_slice(&past_edge)).contains("EDGE"));
    assert!(edit(&|b| b[edge + 4] &= 0x7f).contains("EDGE"));
    // A generation offset into a GDO2 that is not there.
    let gda2 = chunk(&good, b"GDA2");
    assert!(edit(&|b| b[gda2..gda2 + 4].copy_from_slice(&0x8000_0005u32.to_be_bytes())).contains("generation"));
    // A Bloom filter index that runs past BDAT.
    let bidx = chunk(&good, b"BIDX");
    assert!(edit(&|b| b[bidx..bidx + 4].copy_from_slice(&1000u32.to_be_bytes())).contains("Bloom"));
}

/// The position of `id(n)` in a graph.
fn position_of(bytes: &[u8], n: u32) -> u32 {
    parse(bytes.to_vec()).unwrap().find(&id(n)).unwrap()
}

#[test]
fn chains_refuse_layers_that_do_not_stack() {
    let base = Graph::from_bytes("base", small_bytes(), SHA1).unwrap();
    let chain = Chain::new(vec![base.clone()]).unwrap();
    let top = graph::write(SHA1, &[commit(8, &[7]), commit(9, &[8, 1])], Some(&chain)).unwrap();
    let top = Graph::from_bytes("top", top, SHA1).unwrap();
    assert_eq!(top.bases().collect::<Vec<_>>(), [base.checksum()]);
    let chain = Chain::new(vec![base.clone(), top.clone()]).unwrap();
    let nine = chain.commit(chain.find(&id(9)).unwrap()).unwrap();
    assert_eq!(nine.parents, [chain.find(&id(8)).unwrap(), chain.find(&id(1)).unwrap()]);
    assert_eq!(nine.generation, 4_000_000_003);

    let other = Graph::from_bytes("other", graph::write(SHA1, &[commit(1, &[])], None).unwrap(), SHA1).unwrap();
    assert!(matches!(Chain::new(vec![other, top.clone()]), Err(Error::Corrupt { key, .. }) if key == "top"));
    assert!(matches!(Chain::new(vec![top]), Err(Error::Corrupt { key, .. }) if key == "top"));

    assert_eq!(graph::parse_chain("chain", b"", SHA1), Ok(vec![]));
    let text = graph::format_chain(&[id(1), id(2)]);
    assert_eq!(
        graph::parse_chain("chain", text.as_bytes(), SHA1),
        Ok(vec![id(1), id(2)])
    );
    assert_eq!(
        graph::parse_chain("chain", text.trim_end().as_bytes(), SHA1),
        Ok(vec![id(1), id(2)])
    );
    assert!(matches!(
        graph::parse_chain("chain", b"not a hash\n", SHA1),
        Err(Error::Corrupt { key, .. }) if key == "chain"
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes changed anywhere, resealed or not: an error or a chain whose every
    /// answer comes back without a panic.
    #[test]
    fn flipped_bytes_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6), seal in any::<bool>()) {
        let mut bytes = small_bytes();
        for (at, value) in flips {
            let at = at % (bytes.len() - 20);
            bytes[at] = value;
        }
        if seal {
            reseal(&mut bytes);
        }
        if let Ok(chain) = parse(bytes) {
            for pos in 0..chain.len() + 2 {
                if let Some(entry) = chain.commit(pos) {
                    for parent in entry.parents {
                        prop_assert!(chain.commit(parent).unwrap().generation < entry.generation);
                    }
                }
                let _ = (chain.id(pos), chain.may_have_changed(pos, b"dir/1.txt"), chain.may_have_changed(pos, b""));
            }
            for n in 0..10 {
                let _ = chain.find(&id(n));
            }
        }
    }
}
