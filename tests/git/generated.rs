//! Generated histories written by real git (`git fast-import`, loose objects only):
//! hundreds of commits with merges (some taking one side whole, some octopus), renames,
//! mode and type changes, binary, empty and duplicate files, symlinks, a submodule, whole
//! folders deleted, files turned into folders and back, names with spaces and non-ASCII
//! bytes, and committer times with ties.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use snapgit_core::{ObjectId, drive::MemoryStore};
use snapgit_tests::{EMAIL, GitRepo, NAME, oid};

/// A file as the generator models it: git mode and content (a gitlink's is its hex id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub mode: u32,
    pub data: Vec<u8>,
}

pub type Tree = BTreeMap<String, File>;

/// A history made by git, and its objects loaded into a store.
pub struct History {
    /// The repository git wrote, with loose objects only.
    pub git: GitRepo,
    /// A packed copy for asking git questions: git reads packs much faster than
    /// thousands of loose files.
    pub oracle: GitRepo,
    pub store: MemoryStore,
    /// Every commit, in the order made.
    pub commits: Vec<ObjectId>,
    /// The parents of each commit (by index into `commits`).
    pub parents: Vec<Vec<usize>>,
    /// The tip of the main line.
    pub main: ObjectId,
    /// Every file path that ever existed, and every folder above one.
    pub paths: BTreeSet<String>,
    /// Paths that were a folder at some point.
    pub folders: BTreeSet<String>,
}

/// The shared history: 300 commits, committer times never decreasing along an edge.
pub fn history() -> &'static History {
    static HISTORY: OnceLock<History> = OnceLock::new();
    HISTORY.get_or_init(|| generate(0x5eed_1234_abcd_0001, 300, false))
}

/// A second history whose clock sometimes goes backwards.
pub fn skewed() -> &'static History {
    static HISTORY: OnceLock<History> = OnceLock::new();
    HISTORY.get_or_init(|| generate(0x5eed_0000_5ce4_0002, 200, true))
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }
}

const FOLDERS: &[&str] = &[
    "",
    "docs",
    "docs/api",
    "src",
    "src/core",
    "src/core/deep",
    "notes",
    "d e",
    "\u{fc}ber",
    "bin",
];
const NAMES: &[&str] = &[
    "a.txt",
    "b.txt",
    "c.md",
    "README",
    "notes.md",
    "a b.md",
    "\u{e9}t\u{e9}.txt",
    "data.bin",
    "run.sh",
    "x",
];

/// Text with lines drawn from a small vocabulary, so versions share lines.
pub fn text(rng: &mut Rng) -> Vec<u8> {
    let lines = rng.below(25);
    let mut out = Vec::new();
    for _ in 0..lines {
        out.extend_from_slice(format!("line {}\n", rng.below(30)).as_bytes());
    }
    if !out.is_empty() && rng.chance(15) {
        out.pop();
    }
    out
}

/// Edit a text: replace, insert and delete a few lines; sometimes flip the last newline.
pub fn edit(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = data.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(lines.len() + 1);
        let new = format!("line {}\n", rng.below(40)).into_bytes();
        match rng.below(3) {
            0 if at < lines.len() => lines[at] = new,
            1 if at < lines.len() => {
                lines.remove(at);
            }
            _ => lines.insert(at, new),
        }
    }
    let mut out: Vec<u8> = lines.concat();
    if !out.is_empty() && rng.chance(10) {
        if out.ends_with(b"\n") {
            out.pop();
        } else {
            out.push(b'\n');
        }
    }
    if out == data {
        out.extend_from_slice(b"changed\n");
    }
    out
}

fn binary(rng: &mut Rng) -> Vec<u8> {
    let mut out: Vec<u8> = (0..rng.below(200) + 1).map(|_| rng.next() as u8).collect();
    out.insert(rng.below(out.len()), 0);
    out
}

fn new_file(rng: &mut Rng, name: &str) -> File {
    match rng.below(100) {
        0..=9 => File {
            mode: 0o100644,
            data: binary(rng),
        },
        10..=14 => File {
            mode: 0o100644,
            data: Vec::new(),
        },
        15..=19 => File {
            mode: 0o120000,
            data: format!("../target/{}", rng.below(5)).into_bytes(),
        },
        20..=21 => File {
            mode: 0o160000,
            data: format!("{:016x}{:016x}{:08x}", rng.next(), rng.next(), rng.next() as u32).into_bytes(),
        },
        _ if name.ends_with(".sh") => File {
            mode: 0o100755,
            data: text(rng),
        },
        _ => File {
            mode: 0o100644,
            data: text(rng),
        },
    }
}

/// `true` if a file can be put at `path` without a file standing on its way or a
/// folder standing at it.
pub fn fits(tree: &Tree, path: &str) -> bool {
    if tree.contains_key(path) || tree.keys().any(|p| p.starts_with(&format!("{path}/"))) {
        return false;
    }
    let mut prefix = String::new();
    for part in path.split('/').take(path.split('/').count() - 1) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if tree.contains_key(&prefix) {
            return false;
        }
    }
    true
}

fn random_path(rng: &mut Rng) -> String {
    let folder = rng.pick(FOLDERS).copied().unwrap_or("");
    let name = rng.pick(NAMES).copied().unwrap_or("f");
    let name = if rng.chance(50) {
        name.to_owned()
    } else {
        format!("{}{}", rng.below(6), name)
    };
    if folder.is_empty() {
        name
    } else {
        format!("{folder}/{name}")
    }
}

/// One random change to `tree`.
pub fn mutate(rng: &mut Rng, tree: &mut Tree) {
    let files: Vec<String> = tree.keys().cloned().collect();
    let text_files: Vec<String> = tree
        .iter()
        .filter(|(_, f)| f.mode & 0o170000 == 0o100000 && !f.data.contains(&0))
        .map(|(p, _)| p.clone())
        .collect();
    match rng.below(100) {
        // Edit a text file.
        0..=34 => {
            if let Some(path) = rng.pick(&text_files).cloned() {
                let file = tree.get_mut(&path).expect("listed");
                file.data = edit(rng, &file.data);
                return;
            }
        }
        // Add a file, sometimes with the content of another.
        35..=54 => {
            let path = random_path(rng);
            if fits(tree, &path) {
                let file = match rng.pick(&files) {
                    Some(other) if rng.chance(20) => tree[other].clone(),
                    _ => new_file(rng, &path),
                };
                tree.insert(path, file);
                return;
            }
        }
        // Delete a file.
        55..=62 => {
            if let Some(path) = rng.pick(&files) {
                tree.remove(path);
                return;
            }
        }
        // Rename a file, to another folder or keeping its name.
        63..=74 => {
            if let Some(from) = rng.pick(&files).cloned() {
                let to = if rng.chance(50) {
                    let name = from.rsplit('/').next().unwrap_or("f").to_owned();
                    let folder = rng.pick(FOLDERS).copied().unwrap_or("");
                    if folder.is_empty() {
                        name
                    } else {
                        format!("{folder}/{name}")
                    }
                } else {
                    random_path(rng)
                };
                let file = tree.remove(&from).expect("listed");
                if fits(tree, &to) {
                    tree.insert(to, file);
                } else {
                    tree.insert(from, file);
                }
                return;
            }
        }
        // Flip the executable bit.
        75..=80 => {
            let regular: Vec<&String> = tree
                .iter()
                .filter(|(_, f)| f.mode & 0o170000 == 0o100000)
                .map(|(p, _)| p)
                .collect();
            if let Some(&path) = rng.pick(&regular) {
                let path = path.clone();
                let file = tree.get_mut(&path).expect("listed");
                file.mode = if file.mode == 0o100644 { 0o100755 } else { 0o100644 };
                return;
            }
        }
        // Turn a file into a symlink or back.
        81..=84 => {
            if let Some(path) = rng.pick(&files).cloned() {
                let file = tree.get_mut(&path).expect("listed");
                if file.mode == 0o120000 {
                    file.mode = 0o100644;
                } else if file.mode != 0o160000 {
                    file.mode = 0o120000;
                    if file.data.is_empty() || file.data.contains(&0) || rng.chance(50) {
                        file.data = b"somewhere/else".to_vec();
                    }
                }
                return;
            }
        }
        // Delete a whole folder.
        85..=89 => {
            let folder = rng.pick(&FOLDERS[1..]).copied().unwrap_or("docs");
            let prefix = format!("{folder}/");
            if tree.keys().any(|p| p.starts_with(&prefix)) {
                tree.retain(|p, _| !p.starts_with(&prefix));
                return;
            }
        }
        // A file becomes a folder of the same name.
        90..=94 => {
            if let Some(path) = rng.pick(&files).cloned() {
                tree.remove(&path);
                tree.insert(format!("{path}/inside.txt"), new_file(rng, "inside.txt"));
                return;
            }
        }
        // A folder becomes a file of the same name.
        _ => {
            let folder = rng.pick(&FOLDERS[1..]).copied().unwrap_or("docs");
            let prefix = format!("{folder}/");
            if tree.keys().any(|p| p.starts_with(&prefix)) {
                tree.retain(|p, _| !p.starts_with(&prefix));
                if fits(tree, folder) {
                    tree.insert(folder.to_owned(), new_file(rng, folder));
                }
                return;
            }
        }
    }
    // Nothing applied: add a file somewhere.
    for _ in 0..20 {
        let path = random_path(rng);
        if fits(tree, &path) {
            let file = new_file(rng, &path);
            tree.insert(path, file);
            return;
        }
    }
}

/// Drop files that a file above them makes impossible (after a merge of two sides).
fn make_consistent(tree: &mut Tree) {
    let paths: Vec<String> = tree.keys().cloned().collect();
    for path in paths {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if tree.contains_key(&prefix) {
                tree.remove(&path);
                break;
            }
        }
    }
}

/// `"..."` with `"` and `\` escaped, as fast-import reads paths.
fn quote(path: &str) -> String {
    format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A commit of the generated graph.
pub struct Node {
    pub tree: Tree,
    pub parents: Vec<usize>,
    pub time: i64,
    pub message: String,
}

/// Write `nodes` with `git fast-import` into a fresh bare repository, keeping every
/// object loose; returns the repository and the id of each node.
pub fn import(nodes: &[Node]) -> (GitRepo, Vec<ObjectId>) {
    let git = GitRepo::new();
    let mut stream: Vec<u8> = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let mark = index + 1;
        stream.extend_from_slice(format!("commit refs/heads/b{mark}\nmark :{mark}\n").as_bytes());
        for who in ["author", "committer"] {
            stream.extend_from_slice(format!("{who} {NAME} <{EMAIL}> {} +0130\n", node.time).as_bytes());
        }
        stream.extend_from_slice(format!("data {}\n{}\n", node.message.len(), node.message).as_bytes());
        let empty = Tree::new();
        let base = match node.parents.first() {
            Some(&p) => {
                stream.extend_from_slice(format!("from :{}\n", p + 1).as_bytes());
                &nodes[p].tree
            }
            None => &empty,
        };
        for &p in node.parents.iter().skip(1) {
            stream.extend_from_slice(format!("merge :{}\n", p + 1).as_bytes());
        }
        for path in base.keys() {
            if !node.tree.contains_key(path) {
                stream.extend_from_slice(format!("D {}\n", quote(path)).as_bytes());
            }
        }
        for (path, file) in &node.tree {
            if base.get(path) == Some(file) {
                continue;
            }
            if file.mode == 0o160000 {
                let hex = String::from_utf8_lossy(&file.data);
                stream.extend_from_slice(format!("M 160000 {hex} {}\n", quote(path)).as_bytes());
            } else {
                stream.extend_from_slice(format!("M {:o} inline {}\n", file.mode, quote(path)).as_bytes());
                stream.extend_from_slice(format!("data {}\n", file.data.len()).as_bytes());
                stream.extend_from_slice(&file.data);
                stream.push(b'\n');
            }
        }
        stream.push(b'\n');
    }
    let marks = git.path().join("marks");
    let marks_arg = format!("--export-marks={}", marks.display());
    git.git_with_input(
        &[
            "-c",
            "fastimport.unpackLimit=100000000",
            "fast-import",
            "--quiet",
            &marks_arg,
        ],
        &stream,
    );
    let text = std::fs::read_to_string(&marks).expect("marks written");
    let mut ids = vec![None; nodes.len()];
    for line in text.lines() {
        let (mark, hex) = line.split_once(' ').expect("`:mark id`");
        let mark: usize = mark.trim_start_matches(':').parse().expect("a mark number");
        ids[mark - 1] = Some(oid(hex));
    }
    let ids = ids.into_iter().map(|id| id.expect("every commit has a mark")).collect();
    (git, ids)
}

/// A random graph of `count` commits: a main line, side branches forked from it and
/// merged back (sometimes two at once), committer times with ties, and with `skew`,
/// some commits older than their parents.
pub fn graph(seed: u64, count: usize, skew: bool) -> (Vec<Node>, usize) {
    let mut rng = Rng::new(seed);
    let mut nodes: Vec<Node> = Vec::new();
    let mut clock: i64 = 1_600_000_000;
    let tick = |rng: &mut Rng, clock: &mut i64| {
        if !rng.chance(25) {
            *clock += 1 + rng.below(100) as i64;
        }
        if skew && rng.chance(8) { *clock - 5_000 } else { *clock }
    };
    let mut root = Tree::new();
    for _ in 0..6 {
        mutate(&mut rng, &mut root);
    }
    nodes.push(Node {
        tree: root,
        parents: vec![],
        time: tick(&mut rng, &mut clock),
        message: "root".into(),
    });
    let mut main = 0;
    // Side branches: (fork point, tip).
    let mut sides: Vec<(usize, usize)> = Vec::new();
    while nodes.len() < count {
        let roll = rng.below(100);
        if sides.len() < 2 && roll < 8 {
            sides.push((main, main));
            continue;
        }
        let ready = |s: &(usize, usize)| s.1 != s.0;
        let merged: Vec<(usize, usize)> = if sides.len() == 2 && roll < 12 && sides.iter().all(ready) {
            std::mem::take(&mut sides)
        } else if roll < 20 && sides.first().is_some_and(ready) {
            vec![sides.remove(0)]
        } else {
            Vec::new()
        };
        if !merged.is_empty() {
            let mut tree = nodes[main].tree.clone();
            let style = rng.below(10);
            for &(fork, tip) in &merged {
                let base = nodes[fork].tree.clone();
                let theirs = &nodes[tip].tree;
                if style == 0 {
                    // Take their side whole.
                    tree = theirs.clone();
                    continue;
                }
                if style == 1 {
                    // Keep ours whole.
                    continue;
                }
                let paths: BTreeSet<String> = base.keys().chain(theirs.keys()).chain(tree.keys()).cloned().collect();
                for path in paths {
                    let (b, t, o) = (base.get(&path), theirs.get(&path), tree.get(&path).cloned());
                    let pick = if o.as_ref() == b {
                        t.cloned()
                    } else if t == b || rng.chance(50) {
                        o
                    } else {
                        t.cloned()
                    };
                    match pick {
                        Some(file) => {
                            tree.insert(path, file);
                        }
                        None => {
                            tree.remove(&path);
                        }
                    }
                }
            }
            make_consistent(&mut tree);
            if style == 2 {
                // A change of its own in the merge.
                mutate(&mut rng, &mut tree);
            }
            let mut parents = vec![main];
            parents.extend(merged.iter().map(|s| s.1));
            let newest = parents.iter().map(|&p| nodes[p].time).max().unwrap_or(clock);
            clock = clock.max(newest);
            nodes.push(Node {
                tree,
                parents,
                time: tick(&mut rng, &mut clock),
                message: format!("merge {}", nodes.len()),
            });
            main = nodes.len() - 1;
            continue;
        }
        // An ordinary commit on the main line or on a side.
        let on_side = !sides.is_empty() && rng.chance(50);
        let side = rng.below(sides.len().max(1));
        let parent = if on_side { sides[side].1 } else { main };
        let mut tree = nodes[parent].tree.clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut tree);
        }
        if tree == nodes[parent].tree {
            continue;
        }
        nodes.push(Node {
            tree,
            parents: vec![parent],
            time: tick(&mut rng, &mut clock),
            message: format!("change {}", nodes.len()),
        });
        let id = nodes.len() - 1;
        if on_side {
            sides[side].1 = id;
        } else {
            main = id;
        }
    }
    (nodes, main)
}

fn generate(seed: u64, count: usize, skew: bool) -> History {
    let (nodes, main) = graph(seed, count, skew);
    let (git, commits) = import(&nodes);
    let store = git.to_store();
    let oracle = GitRepo::new();
    let source = git.path().display().to_string();
    oracle.git(&["fetch", "--quiet", &source, "+refs/heads/*:refs/heads/*"]);
    let mut paths = BTreeSet::new();
    let mut folders = BTreeSet::new();
    for node in &nodes {
        for path in node.tree.keys() {
            paths.insert(path.clone());
            let mut prefix = String::new();
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                paths.insert(prefix.clone());
                folders.insert(prefix.clone());
            }
        }
    }
    let main = commits[main];
    let parents = nodes.iter().map(|n| n.parents.clone()).collect();
    History {
        git,
        oracle,
        store,
        commits,
        parents,
        main,
        paths,
        folders,
    }
}
