//! Fixtures: a store per backend, the test servers, and real git as the oracle.

use std::{
    io::Write,
    path::Path,
    process::Command,
    sync::{Arc, Once},
};

use snapgit_core::{ObjectId, commit::Signature};
use snapgit_host::{
    Storage,
    lock::redis::RedisLocks,
    storage::{
        Limits,
        fs::{FsOptions, FsStorage},
        memory::MemoryStorage,
        object_store::{CloudOptions, ObjectStoreStorage},
    },
};
use tempfile::TempDir;

/// A store and whatever must live as long as it.
pub struct Fixture {
    pub store: Arc<dyn Storage>,
    /// The folder of a file system store.
    pub dir: Option<TempDir>,
}

impl std::ops::Deref for Fixture {
    type Target = dyn Storage;
    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

pub fn memory(limits: Limits) -> Option<Fixture> {
    Some(Fixture {
        store: Arc::new(MemoryStorage::with_limits(limits)),
        dir: None,
    })
}

pub fn fs(limits: Limits) -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let options = FsOptions {
        limits,
        ..FsOptions::default()
    };
    let store = FsStorage::open_with(dir.path(), options).unwrap();
    Some(Fixture {
        store: Arc::new(store),
        dir: Some(dir),
    })
}

/// The servers `scripts/services.sh` starts.
pub struct Services {
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub redis_url: String,
}

const HOW: &str = "run host/scripts/test.sh, or start the servers with `eval \"$(scripts/services.sh start)\"`";

/// The test servers, or `None` (with a notice on the terminal) when `SNAPGIT_SERVICES`
/// is not `1`. With it set, a missing variable fails the test: the servers were meant to
/// be there.
pub fn services() -> Option<Services> {
    if std::env::var("SNAPGIT_SERVICES").as_deref() != Ok("1") {
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            // Written past the test harness's capture, so it shows in a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "\nnote: the S3 (ministack) and Redis tests of snapgit-host did NOT run: SNAPGIT_SERVICES is \
                 not set; {HOW}\n"
            );
        });
        return None;
    }
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("SNAPGIT_SERVICES=1 but {name} is not set; {HOW}"));
    Some(Services {
        s3_endpoint: var("SNAPGIT_S3_ENDPOINT"),
        s3_bucket: var("SNAPGIT_S3_BUCKET"),
        s3_access_key_id: var("SNAPGIT_S3_ACCESS_KEY_ID"),
        s3_secret_access_key: var("SNAPGIT_S3_SECRET_ACCESS_KEY"),
        redis_url: var("SNAPGIT_REDIS_URL"),
    })
}

/// Object-store configuration for the test S3 server.
pub fn s3_options(services: &Services, limits: Limits) -> CloudOptions {
    CloudOptions {
        limits,
        ..CloudOptions::default()
    }
    .with("aws_endpoint_url", &services.s3_endpoint)
    .with("aws_access_key_id", &services.s3_access_key_id)
    .with("aws_secret_access_key", &services.s3_secret_access_key)
    .with("aws_region", "us-east-1")
    .with("aws_allow_http", "true")
}

/// A store under a fresh prefix of the test bucket.
pub fn s3(limits: Limits) -> Option<Fixture> {
    let services = services()?;
    let url = format!("s3://{}/test-{}", services.s3_bucket, unique());
    let store = ObjectStoreStorage::from_url(&url, &s3_options(&services, limits)).unwrap();
    Some(Fixture {
        store: Arc::new(store),
        dir: None,
    })
}

pub async fn redis() -> Option<RedisLocks> {
    let services = services()?;
    Some(
        RedisLocks::connect(&services.redis_url)
            .await
            .unwrap()
            .with_prefix(format!("snapgit-test-{}:", unique())),
    )
}

pub fn unique() -> String {
    use std::hash::{BuildHasher, RandomState};
    format!("{:016x}", RandomState::new().hash_one(std::time::SystemTime::now()))
}

/// An object id made from a number (not the hash of anything).
pub fn id(n: u64) -> ObjectId {
    ObjectId::from_hex(format!("{n:040x}").as_bytes()).unwrap()
}

pub fn number(id: &ObjectId) -> u64 {
    u64::from_str_radix(&id.to_string()[24..], 16).unwrap()
}

pub fn me() -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000)
}

/// Copy every key of `store` into `dir`, as a bare git repository.
pub async fn download(store: &dyn Storage, dir: &Path) {
    for folder in ["objects", "refs"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    let listed = store.list("").await.unwrap();
    let keys: Vec<String> = listed.into_iter().map(|l| l.key).collect();
    let values = store.get_many(&keys).await.unwrap();
    for (key, value) in keys.iter().zip(values) {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, value.unwrap_or_else(|| panic!("{key} listed but absent"))).unwrap();
    }
}

/// Run git on the repository `git_dir`; its stdout, or a panic with its stderr.
pub fn git(git_dir: &Path, args: &[&str]) -> String {
    let out = try_git(git_dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn try_git(git_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Git")
        .env("GIT_AUTHOR_EMAIL", "git@example.com")
        .env("GIT_COMMITTER_NAME", "Git")
        .env("GIT_COMMITTER_EMAIL", "git@example.com")
        .output()
        .unwrap()
}

/// A git directory holding the store: its folder, or a download of it.
pub struct GitDir {
    _copy: Option<TempDir>,
    pub path: std::path::PathBuf,
}

pub async fn git_dir(fixture: &Fixture) -> GitDir {
    match &fixture.dir {
        Some(dir) => GitDir {
            _copy: None,
            path: dir.path().to_owned(),
        },
        None => {
            let copy = tempfile::tempdir().unwrap();
            download(fixture.store.as_ref(), copy.path()).await;
            GitDir {
                path: copy.path().to_owned(),
                _copy: Some(copy),
            }
        }
    }
}

/// `git fsck --strict` passes on the store (a download of it unless it is a folder).
pub async fn fsck(fixture: &Fixture) -> GitDir {
    let dir = git_dir(fixture).await;
    git(&dir.path, &["fsck", "--strict", "--no-dangling"]);
    dir
}
