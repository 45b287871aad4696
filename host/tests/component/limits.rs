//! What the component may import, and what a call may use: memory and time.

use std::{sync::Arc, time::Duration};

use snapgit_core::{
    api::Request,
    commit::Change,
    history,
    read::Entry,
    repo::CommitOutput,
    step::{CasOutcome, CasRef, Listed, RefState},
};
use snapgit_host::{
    runtime::{Config, Error, Io, Limits, Runtime},
    storage::{self, Object, Storage, memory::MemoryStorage},
};

use crate::{commit_request, component, create_repo, names, read_head, runtime, signature};

fn commit_of(path: &str, data: Vec<u8>) -> Request {
    Request::Commit(commit_request(vec![Change::put(path, data)], signature(), "big"))
}

/// Bytes that do not compress: deflate and hashing get real work.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

async fn store_with_repo(runtime: &snapgit_host::runtime::Runtime) -> Io {
    let io = Io::new(Arc::new(MemoryStorage::new()));
    create_repo(runtime, &io, Vec::new()).await;
    io
}

#[tokio::test]
async fn the_component_imports_only_snapgit_interfaces() {
    let runtime = runtime(Config::default());
    let mut imports = runtime.imports();
    imports.sort();
    assert_eq!(
        imports,
        [
            "snapgit:core/http@0.1.0",
            "snapgit:core/locks@0.1.0",
            "snapgit:core/storage@0.1.0",
            "snapgit:core/types@0.1.0",
            "snapgit:core/wait@0.1.0"
        ]
    );
    // Bytes that are not a component do not load.
    let err = snapgit_host::runtime::Runtime::new(b"\0asm not really", Config::default()).unwrap_err();
    assert!(matches!(err, Error::Load(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_its_memory_limit_fails_and_the_next_works() {
    let config = Config {
        limits: Limits {
            memory_bytes: 24 << 20,
            ..Limits::default()
        },
        ..Config::default()
    };
    let runtime = runtime(config);
    let io = store_with_repo(&runtime).await;
    let err = runtime
        .run(&io, commit_of("big.bin", vec![7; 32 << 20]))
        .await
        .unwrap_err();
    match &err {
        Error::Memory { limit, asked } => {
            assert_eq!(*limit, 24 << 20);
            assert!(*asked > 24 << 20);
        }
        other => panic!("expected a memory error, got {other}"),
    }
    assert!(err.to_string().contains("memory limit"), "{err}");
    // Nothing was committed, and the next call on the same runtime works.
    let head = read_head(&runtime, &io, "main").await.unwrap();
    let page: history::Page = runtime
        .call(&io, Request::Log(history::Request::new(head, 10)))
        .await
        .unwrap();
    assert_eq!(page.commits.len(), 1);
    let small: CommitOutput = runtime
        .call(&io, commit_of("small.md", b"fits\n".to_vec()))
        .await
        .unwrap();
    assert!(small.created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_is_stopped_and_the_next_works() {
    let config = Config {
        limits: Limits {
            deadline: Duration::from_millis(50),
            tick: Duration::from_millis(5),
            ..Limits::default()
        },
        ..Config::default()
    };
    let runtime = runtime(config);
    let io = store_with_repo(&runtime).await;
    // Hashing and compressing 48 MiB of noise takes far longer than 50 ms.
    let err = runtime
        .run(&io, commit_of("noise.bin", noise(48 << 20)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    let branches = names(&runtime, &io, Request::ListBranches { repo: "agent".into() }).await;
    assert_eq!(branches, ["main"]);
}

/// A store whose ref reads never answer.
#[derive(Debug)]
struct Hanging(MemoryStorage);

#[async_trait::async_trait]
impl Storage for Hanging {
    fn location(&self) -> String {
        "hanging:".into()
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, storage::Error> {
        self.0.get_many(keys).await
    }
    async fn put_many(&self, objects: Vec<Object>) -> Result<(), storage::Error> {
        self.0.put_many(objects).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, storage::Error> {
        self.0.list(prefix).await
    }
    async fn delete(&self, keys: &[String]) -> Result<(), storage::Error> {
        self.0.delete(keys).await
    }
    async fn read_ref(&self, _key: &str) -> Result<Option<RefState>, storage::Error> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(None)
    }
    async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, storage::Error> {
        self.0.cas_ref(cas).await
    }

    async fn swap(&self, swap: &snapgit_core::step::Swap) -> Result<bool, storage::Error> {
        self.0.swap(swap).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_call_that_hangs_ends_at_the_deadline() {
    let config = Config {
        limits: Limits {
            deadline: Duration::from_millis(200),
            ..Limits::default()
        },
        ..Config::default()
    };
    let runtime = runtime(config);
    let hanging = Io::new(Arc::new(Hanging(MemoryStorage::new())));
    let err = read_head(&runtime, &hanging, "main").await.unwrap_err();
    assert!(matches!(err, Error::Deadline { .. }), "{err}");
    let io = store_with_repo(&runtime).await;
    assert_eq!(names(&runtime, &io, Request::ListRepos).await, ["agent"]);
}

#[tokio::test]
async fn compiled_code_is_kept_on_disk_and_loaded_from_there() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        cache_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    drop(runtime(config.clone()));
    let kept = walk(dir.path());
    assert_eq!(kept.len(), 1, "one compiled component and nothing else: {kept:?}");
    let file = &kept[0];
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("cwasm"));
    let inode = std::fs::metadata(file).unwrap().ino();
    // A second runtime maps the same file (not compiled and written again) and works,
    // also when told the component's digest rather than hashing it.
    let second = runtime(config.clone());
    let io = store_with_repo(&second).await;
    assert_eq!(names(&second, &io, Request::ListRepos).await, ["agent"]);
    let name = file.file_name().unwrap().to_str().unwrap();
    let sha256 = name.strip_prefix("snapgit-").unwrap().split('-').next().unwrap();
    let third = Runtime::with_sha256(component(), sha256, config.clone()).unwrap();
    assert_eq!(names(&third, &io, Request::ListRepos).await, ["agent"]);
    assert_eq!(
        std::fs::metadata(file).unwrap().ino(),
        inode,
        "the kept file was written again"
    );
    assert_eq!(walk(dir.path()), kept);
}

#[tokio::test]
async fn a_damaged_compiled_component_is_compiled_again_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        cache_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    drop(runtime(config.clone()));
    let file = walk(dir.path()).remove(0);
    let whole = std::fs::read(&file).unwrap();
    let damaged: [Vec<u8>; 3] = [
        b"not compiled code".to_vec(),
        whole[..whole.len() / 2].to_vec(),
        Vec::new(),
    ];
    for bytes in damaged {
        std::fs::write(&file, &bytes).unwrap();
        let runtime = runtime(config.clone());
        let io = store_with_repo(&runtime).await;
        assert_eq!(names(&runtime, &io, Request::ListRepos).await, ["agent"]);
        assert_eq!(
            std::fs::read(&file).unwrap().len(),
            whole.len(),
            "not replaced after {} bytes",
            bytes.len()
        );
        assert_eq!(walk(dir.path()), std::slice::from_ref(&file));
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_calls_than_instance_slots_wait_for_a_slot() {
    let config = Config {
        limits: Limits {
            concurrent_calls: 2,
            ..Limits::default()
        },
        ..Config::default()
    };
    let runtime = Arc::new(runtime(config));
    let io = store_with_repo(&runtime).await;
    // Eight writers at once on two slots, each in a call that also waits on storage.
    let writers = (0..8).map(|n| {
        let (runtime, io) = (runtime.clone(), io.clone());
        tokio::spawn(async move {
            runtime
                .call::<CommitOutput>(&io, commit_of(&format!("writer-{n}.md"), format!("{n}\n").into_bytes()))
                .await
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap().unwrap();
    }
    let head = read_head(&runtime, &io, "main").await.unwrap();
    let files: Vec<Entry> = runtime
        .call(
            &io,
            Request::ListTree {
                commit: head,
                path: "".into(),
                recursive: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(files.len(), 8, "{files:?}");
}
