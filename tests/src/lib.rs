//! Helpers shared by the cross-part tests and benchmarks: real `git` as the oracle.
//!
//! A [`GitRepo`] is a temporary bare repository driven through git plumbing with a fixed
//! identity and clock, so its ids are reproducible and comparable with snapgit's.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use snapgit_core::{
    ObjectCache, ObjectId,
    commit::{self, Signature},
    drive::{self, MemoryStore, ObjectStore},
    object::NewObject,
};

/// Where the benchmarks that run the `snapgit` command find it: the release build in the
/// workspace's target folder (`CARGO_TARGET_DIR` if set).
pub fn release_snapgit() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("release/snapgit")
}

/// Build `snapgit` in release (native engine, as the benchmarks measure it) when `path`
/// does not exist yet.
pub fn build_snapgit_if_missing(path: &Path) {
    if path.exists() {
        return;
    }
    eprintln!("building {} ...", path.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "snapgit-host",
            "--no-default-features",
            "--bin",
            "snapgit",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .expect("cargo runs");
    assert!(status.success() && path.exists(), "the snapgit build failed");
}

/// The identity every oracle commit uses.
pub const NAME: &str = "Agent Smith";
/// The email every oracle commit uses.
pub const EMAIL: &str = "agent@example.com";

/// A signature at `seconds` with the oracle identity and a `+0130` offset.
pub fn signature(seconds: i64) -> Signature {
    Signature {
        name: NAME.into(),
        email: EMAIL.into(),
        time: commit::Time {
            seconds,
            offset_minutes: 90,
        },
    }
}

/// A git repository: a temporary bare one, or an existing `.git` folder.
pub struct GitRepo {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepo {
    /// `git init --bare` in a fresh temporary folder.
    pub fn new() -> Self {
        let temp = tempfile::tempdir().expect("a temporary folder can be created");
        let repo = GitRepo {
            dir: temp.path().to_owned(),
            _temp: Some(temp),
        };
        repo.git(&["init", "--quiet", "--bare", "--initial-branch=main", "."]);
        repo
    }

    /// An existing git folder (a bare repository or a work tree's `.git`).
    pub fn from_existing(git_dir: PathBuf) -> Self {
        GitRepo {
            dir: git_dir,
            _temp: None,
        }
    }

    /// The repository folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A `git` command in this repository with a fixed, isolated environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(self.path())
            .env("GIT_DIR", self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", NAME)
            .env("GIT_AUTHOR_EMAIL", EMAIL)
            .env("GIT_COMMITTER_NAME", NAME)
            .env("GIT_COMMITTER_EMAIL", EMAIL)
            .env("LC_ALL", "C");
        cmd
    }

    /// Run git; panic with its stderr if it fails. Returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_with_input(args, &[])
    }

    /// Run git with `input` on stdin; panic with its stderr if it fails. Returns stdout.
    pub fn git_with_input(&self, args: &[&str], input: &[u8]) -> String {
        let out = self.git_output(args, input, &[]);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run git with `input` and extra environment; return its raw output, success or not.
    pub fn git_output(&self, args: &[&str], input: &[u8], env: &[(&str, String)]) -> std::process::Output {
        let mut cmd = self.command(args);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git runs");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            // git may exit before reading everything; a broken pipe then is its answer.
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("git finishes");
        let _ = writer.join();
        out
    }

    /// `git hash-object -w` for `data`; returns the blob id.
    pub fn write_blob(&self, data: &[u8]) -> ObjectId {
        oid(&self.git_with_input(&["hash-object", "-w", "--stdin"], data))
    }

    /// Write every object snapgit produced as a loose object file, as git lays them out.
    pub fn write_objects(&self, objects: &[NewObject]) {
        for object in objects {
            let path = self.path().join(object.key());
            std::fs::create_dir_all(path.parent().expect("object keys have a folder")).expect("mkdir");
            std::fs::write(&path, &object.loose).expect("object file written");
        }
    }

    /// Copy every object of a [`MemoryStore`] into this repository.
    pub fn write_store(&self, store: &MemoryStore) {
        for id in store.ids() {
            let loose = store.get(&id).expect("listed ids are stored");
            let key = snapgit_core::object::loose_key(&id);
            let path = self.path().join(key);
            std::fs::create_dir_all(path.parent().expect("object keys have a folder")).expect("mkdir");
            std::fs::write(&path, &loose).expect("object file written");
        }
    }

    /// `git fsck --strict` must pass, with no warnings about our objects.
    pub fn fsck(&self) {
        let out = self.git_output(&["fsck", "--strict", "--no-dangling", "--no-progress"], &[], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Notices about an unborn HEAD or no refs say nothing about the objects.
        let complaints = stderr.lines().filter(|l| !l.starts_with("notice:")).count();
        assert!(
            out.status.success() && complaints == 0,
            "git fsck --strict failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Point `refs/heads/<branch>` at `id`.
    pub fn set_branch(&self, branch: &str, id: &ObjectId) {
        self.git(&["update-ref", &format!("refs/heads/{branch}"), &id.to_string()]);
    }

    /// Every loose object file of this repository, as (id, stored bytes).
    pub fn loose_objects(&self) -> Vec<(ObjectId, Vec<u8>)> {
        let mut out = Vec::new();
        let objects = self.path().join("objects");
        for dir in std::fs::read_dir(&objects).expect("objects folder") {
            let dir = dir.expect("entry").path();
            let Some(prefix) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if prefix.len() != 2 {
                continue;
            }
            for file in std::fs::read_dir(&dir).expect("fan-out folder") {
                let file: PathBuf = file.expect("entry").path();
                let rest = file.file_name().and_then(|n| n.to_str()).expect("hex name").to_owned();
                let id = oid(&format!("{prefix}{rest}"));
                out.push((id, std::fs::read(&file).expect("object file")));
            }
        }
        out
    }

    /// A [`MemoryStore`] holding every file of this repository as a store keeps it:
    /// loose objects as objects, everything else (packs, refs, `HEAD`) as files.
    pub fn to_full_store(&self) -> MemoryStore {
        let store = MemoryStore::new();
        let dir = self.path();
        let mut stack = vec![dir.to_owned()];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).expect("a readable folder") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let key = path
                    .strip_prefix(dir)
                    .expect("below")
                    .to_string_lossy()
                    .replace('\\', "/");
                let bytes = std::fs::read(&path).expect("a readable file");
                let loose = key
                    .strip_prefix("objects/")
                    .and_then(|rest| rest.split_once('/'))
                    .filter(|(fan, rest)| fan.len() == 2 && rest.len() == 38)
                    .map(|(fan, rest)| oid(&format!("{fan}{rest}")));
                match loose {
                    Some(id) => store.insert_raw(id, bytes),
                    None => store.insert_file(key, bytes),
                }
            }
        }
        store
    }

    /// A repository holding every key of `store` as a file: loose objects, packs, refs,
    /// `HEAD` and the rest, as a copy of a store on disk would.
    pub fn from_store(store: &MemoryStore) -> Self {
        use snapgit_core::drive::ObjectStore;
        let repo = GitRepo::new();
        for listed in store.list("").expect("a memory store lists") {
            let bytes = store
                .read(std::slice::from_ref(&listed.key))
                .expect("a memory store reads")
                .pop()
                .flatten()
                .expect("a listed key reads");
            let path = repo.path().join(&listed.key);
            std::fs::create_dir_all(path.parent().expect("keys have a folder")).expect("mkdir");
            std::fs::write(&path, bytes).expect("a file written");
        }
        repo
    }

    /// A [`MemoryStore`] holding every loose object of this repository.
    pub fn to_store(&self) -> MemoryStore {
        let store = MemoryStore::new();
        for (id, bytes) in self.loose_objects() {
            store.insert_raw(id, bytes);
        }
        store
    }
}

/// Parse a hex id printed by git.
pub fn oid(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.trim().as_bytes()).unwrap_or_else(|_| panic!("{hex:?} is not an object id"))
}

/// Run a snapgit commit to completion and store its objects.
pub fn commit(
    cache: &mut ObjectCache,
    store: &MemoryStore,
    request: commit::Request,
) -> Result<commit::Output, commit::Error> {
    let mut op = commit::Commit::new(cache, request)?;
    let out = drive::run(&mut op, cache, store)?;
    store
        .put_many(&out.objects)
        .expect("the memory store accepts every put");
    Ok(out)
}

/// The large history of the pack tests and `bench-packs`, as a `git fast-import` stream:
/// 10,000 files three folders deep, then 999 commits of 10 changed files each.
pub mod fast_import {
    /// Files in the first commit.
    pub const FILES: usize = 10_000;
    /// Commits in all.
    pub const COMMITS: usize = 1_000;
    /// Files each later commit changes.
    pub const CHANGED: usize = 10;

    /// The path of file `i`.
    pub fn path(i: usize) -> String {
        format!("d{}/e{}/f{}/file{i}.md", i % 10, (i / 10) % 10, (i / 100) % 10)
    }

    /// The stream, onto `refs/heads/main`; the same bytes on every call.
    pub fn stream() -> Vec<u8> {
        let mut out = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for c in 0..COMMITS {
            out.extend_from_slice(
                format!(
                    "commit refs/heads/main\ncommitter A <a@example.com> {} +0000\ndata 8\ncommit {:>1}\n",
                    1_700_000_000 + c,
                    c % 10
                )
                .as_bytes(),
            );
            let files: Vec<usize> = if c == 0 {
                (0..FILES).collect()
            } else {
                (0..CHANGED).map(|_| (next() as usize) % FILES).collect()
            };
            for i in files {
                let body = format!("# note {i}\n\nturn {c}: {}\n", "memory line ".repeat(4));
                out.extend_from_slice(format!("M 100644 inline {}\ndata {}\n{body}\n", path(i), body.len()).as_bytes());
            }
        }
        out
    }
}
