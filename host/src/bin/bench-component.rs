//! Prints what the core component costs under the host's runtime: loading it (compiled,
//! and from the on-disk cache), one call (a fresh instance each time), and a commit
//! workload through the component beside native core in the same run.
//!
//! ```text
//! bash wasm/component/build.sh
//! cargo run --release -p snapgit-host --features component --bin bench-component
//! ```
//!
//! The component is read from `SNAPGIT_COMPONENT`, or `target/component/snapgit.wasm`.
//! Nothing is asserted: the figures are ratios of one run.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use snapgit_core::{
    HashKind, ObjectCache,
    commit::{Change as CoreChange, Signature as CoreSignature},
    repo::{self, RepoOp},
};
use snapgit_host::{
    driver,
    runtime::{Change, CommitRequest, Config, ConflictPolicy, Io, Mode, Put, Runtime, Signature},
    storage::{Storage, memory::MemoryStorage},
};

const FILES: usize = 1000;
const COMMITS: usize = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("SNAPGIT_COMPONENT").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/component/snapgit.wasm")
    });
    let bytes =
        std::fs::read(&path).map_err(|err| format!("cannot read {path} ({err}); run wasm/component/build.sh"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(&bytes, &path))
}

async fn run(bytes: &[u8], path: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("component: {path} ({} KiB)", bytes.len() / 1024);
    let cache = tempdir()?;
    let config = Config {
        cache_dir: Some(cache.clone()),
        ..Config::default()
    };
    let started = Instant::now();
    drop(Runtime::new(bytes, config.clone())?);
    let compiled = started.elapsed();
    let started = Instant::now();
    let component = Runtime::new(bytes, config)?;
    let cached = started.elapsed();
    println!("load, compiling:            {}", ms(compiled));
    println!("load, from the disk cache:  {}", ms(cached));

    // One call: a fresh store and instance, then an export that lists the refs.
    let io = Io::new(Arc::new(MemoryStorage::new()));
    let calls = 500;
    let started = Instant::now();
    for _ in 0..calls {
        component.list_repos(&io).await?;
    }
    println!(
        "one call (instantiate + list-repos), mean: {}",
        ms(started.elapsed() / calls)
    );

    // The commit workload: a repo of FILES files in 10 folders, then COMMITS commits of
    // one changed file each, on separate stores.
    let files: Vec<(String, Vec<u8>)> = (0..FILES)
        .map(|i| {
            (
                format!("dir-{}/file-{i}.md", i % 10),
                format!("# file {i}\n").into_bytes(),
            )
        })
        .collect();
    let sig = Signature {
        name: "Agent".into(),
        email: "agent@example.com".into(),
        time: 1_700_000_000,
        offset_minutes: 0,
    };
    let puts: Vec<Change> = files
        .iter()
        .map(|(path, data)| {
            Change::Put(Put {
                path: path.clone(),
                data: data.clone(),
                mode: Mode::Regular,
            })
        })
        .collect();
    component
        .create_repo(&io, "agent", "main", &puts, &sig, "create")
        .await?;
    let started = Instant::now();
    for turn in 0..COMMITS {
        let change = Change::Put(Put {
            path: files[turn % FILES].0.clone(),
            data: format!("turn {turn}\n").into_bytes(),
            mode: Mode::Regular,
        });
        component.commit(&io, &commit_request(change, &sig, turn)).await?;
    }
    let through_component = started.elapsed() / COMMITS as u32;

    let mut native = Vec::new();
    for warm in [false, true] {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let mut cache = ObjectCache::new(HashKind::Sha1);
        let me = CoreSignature::new("Agent", "agent@example.com", 1_700_000_000);
        let puts = files
            .iter()
            .map(|(p, d)| CoreChange::put(p.as_str(), d.clone()))
            .collect();
        let mut op = RepoOp::create_repo(&cache, "agent", "main", puts, me.clone(), "create")?;
        driver::run(&mut op, &mut cache, storage.as_ref(), None).await?;
        let started = Instant::now();
        for turn in 0..COMMITS {
            if !warm {
                cache = ObjectCache::new(HashKind::Sha1);
            }
            let change = CoreChange::put(files[turn % FILES].0.as_str(), format!("turn {turn}\n"));
            let request = repo::CommitRequest::new("agent", "main", vec![change], me.clone(), format!("turn {turn}"));
            let mut op = repo::Commit::new(&cache, request)?;
            driver::run(&mut op, &mut cache, storage.as_ref(), None).await?;
        }
        native.push(started.elapsed() / COMMITS as u32);
    }
    println!("commit of 1 file into {FILES} files, mean of {COMMITS} (in-memory store):");
    println!("  native, cold cache per commit: {}", ms(native[0]));
    println!("  native, warm cache:            {}", ms(native[1]));
    println!(
        "  component (cold per call):     {}  = {:.2}x native cold, {:.2}x native warm",
        ms(through_component),
        ratio(through_component, native[0]),
        ratio(through_component, native[1])
    );
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

fn commit_request(change: Change, sig: &Signature, turn: usize) -> CommitRequest {
    CommitRequest {
        repo: "agent".into(),
        branch: "main".into(),
        changes: vec![change],
        author: sig.clone(),
        committer: sig.clone(),
        message: format!("turn {turn}"),
        allow_empty: false,
        line_stats: true,
        expected_head: None,
        on_conflict: ConflictPolicy::Fail,
        max_attempts: 10,
        lock_ttl_ms: None,
        max_file_bytes: None,
        exclude: Vec::new(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn tempdir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("snapgit-bench-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
