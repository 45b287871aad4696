//! Running the built `snapgit` binary, and real git as the oracle.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Once,
};

use serde_json::Value;
use snapgit_host::storage::{self, Options, object_store::CloudOptions};
use tempfile::TempDir;

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_snapgit");

/// A fixed commit time, so runs are reproducible.
pub const DATE: &str = "1700000000";

/// What a run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Succeeded; its stdout as text.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(self.code, 0, "snapgit failed: {}\nstdout: {}", self.stderr, self.text());
        self.text()
    }

    /// Succeeded; its stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
    }

    /// Failed with `code`, printing one `error:` line naming `needle`, and nothing on stdout.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code,
            code,
            "expected exit {code}; stderr: {}; stdout: {}",
            self.stderr,
            self.text()
        );
        assert!(
            self.stderr.starts_with("error: ") && self.stderr.contains(needle),
            "expected an error naming {needle:?}, got: {}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "a failed command printed data: {}", self.text());
    }
}

/// A `snapgit` command with none of the caller's snapgit or cloud settings.
pub fn snapgit(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if ["SNAPGIT_", "AWS_", "GOOGLE_", "AZURE_"]
            .iter()
            .any(|p| key.starts_with(p))
        {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        // Compiled code is shared by the tests' runs, and kept out of the home folder.
        .env(
            "SNAPGIT_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/snapgit-cache"),
        )
        .env("SNAPGIT_AUTHOR", "Agent <agent@example.com>")
        .env("SNAPGIT_DATE", DATE)
        .stdin(Stdio::null());
    command
}

/// Run `snapgit` in `dir` with `args`.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    Run::from(snapgit(dir).args(args).output().expect("snapgit runs"))
}

/// Run `snapgit` in `dir` with `args`, `input` on stdin.
pub fn run_with_stdin(mut command: Command, args: &[&str], input: &[u8]) -> Run {
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("snapgit starts");
    child
        .stdin
        .take()
        .expect("a pipe")
        .write_all(input)
        .expect("stdin takes the input");
    Run::from(child.wait_with_output().expect("snapgit runs"))
}

/// A work folder with a store in `.snapgit`.
pub struct Work {
    pub dir: TempDir,
}

impl Work {
    /// An empty work folder, no store yet.
    pub fn empty() -> Self {
        Work {
            dir: tempfile::tempdir().expect("a temp folder"),
        }
    }

    /// A work folder with an initialised store.
    pub fn init() -> Self {
        let work = Self::empty();
        work.run(&["init"]).ok();
        work
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.path().join(".snapgit")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(self.path(), args)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all).json()
    }

    pub fn write(&self, path: &str, content: &str) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("folders");
        std::fs::write(full, content).expect("write");
    }

    /// `git --git-dir <store> <args>`, which must succeed; its stdout.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.store(), args)
    }
}

/// `git --git-dir <dir> <args>`, which must succeed; its stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("git prints UTF-8 here")
}

/// The ref of a branch of the default repo.
pub fn branch_ref(branch: &str) -> String {
    format!("refs/namespaces/default/refs/heads/{branch}")
}

/// Every file of a folder with its content: a store before and after a refused command
/// must be equal.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let content = std::fs::read(&path).unwrap_or_default();
                out.insert(path.strip_prefix(dir).expect("below").to_owned(), content);
            }
        }
    }
    out
}

/// The S3 and Redis servers of `host/scripts/test.sh`, or `None` (with a notice) when
/// `SNAPGIT_SERVICES` is not `1`.
pub struct Services {
    /// The AWS_* variables that reach the server.
    pub aws: Vec<(String, String)>,
    pub bucket: String,
    pub redis_url: String,
}

pub fn services() -> Option<Services> {
    if std::env::var("SNAPGIT_SERVICES").as_deref() != Ok("1") {
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "\nnote: the snapgit command's S3 and Redis tests did NOT run: SNAPGIT_SERVICES is not set; run \
                 host/scripts/test.sh\n"
            );
        });
        return None;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set with SNAPGIT_SERVICES=1"));
    let aws = [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ALLOW_HTTP",
    ]
    .iter()
    .map(|name| (name.to_string(), var(name)))
    .collect();
    Some(Services {
        aws,
        bucket: var("SNAPGIT_S3_BUCKET"),
        redis_url: var("SNAPGIT_REDIS_URL"),
    })
}

/// A prefix no other test run uses.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// Copy every key under the store `url` into the folder `to`.
pub fn download(url: &str, aws: &[(String, String)], to: &Path) {
    let mut cloud = CloudOptions::default();
    for (key, value) in aws {
        cloud = cloud.with(key, value);
    }
    let options = Options {
        cloud,
        ..Options::default()
    };
    let store = storage::open(url, &options).expect("the store opens");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let keys: Vec<String> = store
            .list("")
            .await
            .expect("a listing")
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert!(keys.iter().any(|k| k == "HEAD"), "the store has HEAD: {keys:?}");
        let values = store.get_many(&keys).await.expect("the values");
        for (key, value) in keys.iter().zip(values) {
            let path = to.join(key);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("folders");
            std::fs::write(path, value.expect("listed keys exist")).expect("write");
        }
    });
    std::fs::create_dir_all(to.join("refs")).expect("refs");
}
