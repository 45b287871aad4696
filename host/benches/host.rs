//! The host's benchmark: what the core component costs under the runtime, and what a
//! commit costs against object storage with a realistic round trip.
//!
//! ```text
//! bash host/scripts/bench.sh              # builds, starts ministack, runs this, stops it
//! # (a bench target of snapgit-host, `cargo bench -p snapgit-host --bench host`: no
//! # benchmark code is in the product crate)
//! bash host/scripts/bench.sh --release    # the same with a release build (slow to build)
//! ```
//!
//! It prints, in one run:
//!
//! 1. loading the component: compiling it, and from wasmtime's disk cache; one call (a
//!    fresh instance, then `list-repos`);
//! 2. a commit workload (one changed file in a repo of 1,000 files, in memory) through
//!    native core and through the component, as ratios;
//! 3. against the S3 server named by `SNAPGIT_S3_BUCKET` and the `AWS_*` variables (the
//!    script starts ministack on loopback), with a fixed delay added to every request
//!    ([`Metered`]): the latency and requests of a one-file commit into a repo of 1,000
//!    files, cold (new process state: new storage client, empty caches) and warm (the
//!    same writer's next commit), for native core through the host's driver, for the
//!    component through the runtime, and for downloading everything then committing
//!    locally, as agent servers do today.
//!
//! The component is read from `SNAPGIT_COMPONENT`, or `target/component/snapgit.wasm`.
//! Nothing is asserted: the figures are medians and ratios of one run.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use snapgit_core::{
    HashKind, ObjectCache,
    api::Request,
    commit::{Change, Signature},
    repo::{self, AdminOutput, RepoOp},
    step::CasRef,
};
#[path = "../tests/support/metered.rs"]
mod metered;
#[path = "../tests/support/requests.rs"]
mod requests;

use metered::{Counts, Metered};
use snapgit_host::{
    driver,
    runtime::{self, Config, Io, Runtime},
    storage::{
        Object, Storage,
        fs::{FsOptions, FsStorage},
        memory::MemoryStorage,
        object_store::{CloudOptions, ObjectStoreStorage},
    },
};

type BoxError = Box<dyn std::error::Error>;

/// What to measure.
#[derive(Debug, Parser)]
#[command(
    name = "bench-host",
    about = "The host's benchmark: the component, and commits against S3"
)]
struct Args {
    /// Files in the benchmark's repo.
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// Commits of the in-memory workload.
    #[arg(long, default_value_t = 200)]
    commits: usize,
    /// Delay added to every S3 request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// Repetitions of each cold/warm pair against S3; the median is printed.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Requests in flight when downloading or uploading everything (`aws s3 sync`
    /// runs 10).
    #[arg(long, default_value_t = 10)]
    sync_concurrency: usize,
    /// Skip the S3 part even if a server is configured.
    #[arg(long)]
    no_s3: bool,
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let path = std::env::var("SNAPGIT_COMPONENT").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/component/snapgit.wasm")
    });
    let bytes =
        std::fs::read(&path).map_err(|err| format!("cannot read {path} ({err}); run wasm/component/build.sh"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(&args, &bytes, &path))
}

async fn run(args: &Args, bytes: &[u8], path: &str) -> Result<(), BoxError> {
    // host/scripts/bench.sh builds snapgit-core and snapgit-host at opt-level 3 in dev too.
    let profile = if cfg!(debug_assertions) {
        "dev (debug assertions on)"
    } else {
        "release"
    };
    println!("snapgit host benchmark, {profile} profile");
    println!("component: {path} ({} KiB)", bytes.len() / 1024);
    let scratch = Scratch::new()?;
    let config = Config {
        cache_dir: Some(scratch.dir("wasmtime-cache")?),
        ..Config::default()
    };

    println!("\n1. loading the component");
    let started = Instant::now();
    drop(Runtime::new(bytes, config.clone())?);
    let compiled = started.elapsed();
    let started = Instant::now();
    let component = Runtime::new(bytes, config.clone())?;
    let cached = started.elapsed();
    let io = Io::new(Arc::new(MemoryStorage::new()));
    let calls = 500;
    let started = Instant::now();
    for _ in 0..calls {
        component.call::<AdminOutput>(&io, Request::ListRepos).await?;
    }
    let one_call = started.elapsed() / calls;
    println!("   compiling                                   {:>10}", ms(compiled));
    println!("   from the disk cache                         {:>10}", ms(cached));
    println!("   one call (instantiate + list-repos), mean   {:>10}", ms(one_call));

    let files = repo_files(args.files);
    in_memory(args, bytes, &config, &files).await?;

    if args.no_s3 {
        return Ok(());
    }
    match S3::from_env() {
        Some(s3) => against_s3(args, bytes, &config, &files, &s3, &scratch).await?,
        None => println!(
            "\n3. against S3: skipped, SNAPGIT_S3_BUCKET is not set (run host/scripts/bench.sh, which starts \
             ministack on loopback)"
        ),
    }
    Ok(())
}

/// The benchmark repo: `n` small Markdown files in 10 folders.
fn repo_files(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("dir-{}/file-{i}.md", i % 10),
                format!("# file {i}\n\nSome notes.\n").into_bytes(),
            )
        })
        .collect()
}

/// The change of turn `turn`: one existing file rewritten.
fn turn_change(files: &[(String, Vec<u8>)], turn: usize) -> (String, Vec<u8>) {
    let path = files
        .get(turn % files.len().max(1))
        .map_or_else(|| "file.md".to_owned(), |(path, _)| path.clone());
    (path, format!("# turn {turn}\n").into_bytes())
}

fn me() -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000)
}

/// The commit of turn `turn`, for native core and the component alike.
fn commit_request(path: String, data: Vec<u8>, turn: usize) -> repo::CommitRequest {
    requests::commit_request(vec![Change::put(path, data)], me(), &format!("turn {turn}"))
}

/// Create the benchmark repo with native core.
async fn create_repo(storage: &dyn Storage, files: &[(String, Vec<u8>)]) -> Result<(), BoxError> {
    let mut cache = ObjectCache::new(HashKind::Sha1);
    let puts = files.iter().map(|(p, d)| Change::put(p.as_str(), d.clone())).collect();
    let mut op = RepoOp::create_repo(&cache, "agent", "main", puts, me(), "create")?;
    driver::run(&mut op, &mut cache, storage, None).await?;
    Ok(())
}

/// Part 2: the commit workload in memory, native core beside the component. The four
/// ways take turns commit by commit, so a change in the machine's load hits them alike.
async fn in_memory(args: &Args, bytes: &[u8], config: &Config, files: &[(String, Vec<u8>)]) -> Result<(), BoxError> {
    let commits = args.commits.max(1);
    let mut native = Vec::new();
    for _ in 0..2 {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        create_repo(storage.as_ref(), files).await?;
        native.push((storage, ObjectCache::new(HashKind::Sha1), Duration::ZERO));
    }
    let mut component = Vec::new();
    for object_cache_bytes in [0, runtime::DEFAULT_OBJECT_CACHE_BYTES] {
        let runtime = Runtime::new(
            bytes,
            Config {
                object_cache_bytes,
                ..config.clone()
            },
        )?;
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        create_repo(storage.as_ref(), files).await?;
        component.push((runtime, Io::new(storage), Duration::ZERO));
    }
    for turn in 0..commits {
        for (lane, (storage, cache, spent)) in native.iter_mut().enumerate() {
            if lane == 0 {
                *cache = ObjectCache::new(HashKind::Sha1);
            }
            let (path, data) = turn_change(files, turn);
            let started = Instant::now();
            let mut op = repo::Commit::new(cache, commit_request(path, data, turn))?;
            driver::run(&mut op, cache, storage.as_ref(), None).await?;
            *spent += started.elapsed();
        }
        for (runtime, io, spent) in &mut component {
            let (path, data) = turn_change(files, turn);
            let request = Request::Commit(commit_request(path, data, turn));
            let started = Instant::now();
            runtime.call::<repo::CommitOutput>(io, request).await?;
            *spent += started.elapsed();
        }
    }
    let mean = |spent: Duration| spent / count(commits);
    let (native_cold, native_warm) = (mean(native[0].2), mean(native[1].2));
    let (component_cold, component_warm) = (mean(component[0].2), mean(component[1].2));
    println!(
        "\n2. commit of 1 file into {} files, in memory, mean of {commits} (each rewrites another file)",
        files.len()
    );
    println!("   native core, empty cache per commit         {:>10}", ms(native_cold));
    println!("   native core, warm cache                     {:>10}", ms(native_warm));
    println!(
        "   component, host object cache off            {:>10}   {:.2}x native with an empty cache",
        ms(component_cold),
        ratio(component_cold, native_cold)
    );
    println!(
        "   component, host object cache on             {:>10}   {:.2}x native with a warm cache",
        ms(component_warm),
        ratio(component_warm, native_warm)
    );
    Ok(())
}

/// The S3 server to measure against, from the environment `scripts/services.sh` sets.
struct S3 {
    bucket: String,
    options: CloudOptions,
}

impl S3 {
    fn from_env() -> Option<S3> {
        let bucket = std::env::var("SNAPGIT_S3_BUCKET").ok().filter(|b| !b.is_empty())?;
        Some(S3 {
            bucket,
            options: CloudOptions::from_env(),
        })
    }

    /// A new client for the store at `prefix`, with every request counted and delayed.
    /// Its check of conditional writes (made once per client, before its first write) is
    /// made here, outside what is measured.
    async fn open(&self, prefix: &str, delay: Duration) -> Result<Arc<Metered>, BoxError> {
        let url = format!("s3://{}/{prefix}", self.bucket);
        let store = ObjectStoreStorage::from_url(&url, &self.options)?;
        store.check_conditional_writes().await?;
        Ok(Arc::new(Metered::new(Arc::new(store)).with_delay(delay)))
    }
}

/// One measured commit: how long it took and what it asked of storage.
#[derive(Debug, Clone, Copy)]
struct Sample {
    time: Duration,
    counts: Counts,
}

/// Cold and warm samples of one approach, over the repetitions.
#[derive(Debug, Default)]
struct Samples {
    cold: Vec<Sample>,
    warm: Vec<Sample>,
}

/// The sample of median time.
fn median(samples: &[Sample]) -> Option<Sample> {
    let mut sorted = samples.to_vec();
    sorted.sort_by_key(|s| s.time);
    sorted.get(sorted.len() / 2).copied()
}

async fn measure<F: Future<Output = Result<(), BoxError>>>(store: &Metered, commit: F) -> Result<Sample, BoxError> {
    let before = store.counts();
    let started = Instant::now();
    commit.await?;
    Ok(Sample {
        time: started.elapsed(),
        counts: store.counts().since(&before),
    })
}

/// Part 3: one-file commits against S3 with a delay per request.
async fn against_s3(
    args: &Args,
    bytes: &[u8],
    config: &Config,
    files: &[(String, Vec<u8>)],
    s3: &S3,
    scratch: &Scratch,
) -> Result<(), BoxError> {
    let delay = Duration::from_millis(args.delay_ms);
    let prefix = format!("bench-{}-{}", std::process::id(), unique());
    let setup = s3.open(&prefix, Duration::ZERO).await?;
    create_repo(setup.as_ref(), files).await?;
    let keys = setup.list("").await?.len();
    // Each cold/warm pair rewrites one file twice, as an agent rewrites its memory file
    // every turn; every pair takes another file.
    let (mut pair, mut turn) = (0, 0);
    let mut next = |warm: bool| {
        pair += usize::from(!warm);
        turn += 1;
        let (path, _) = turn_change(files, pair);
        let (_, data) = turn_change(files, turn);
        ((path, data), turn)
    };
    let (mut native, mut component, mut fresh, mut kept) = Default::default();
    for _ in 0..args.repeat.max(1) {
        // Native core through the host's driver: a new client and an empty cache.
        {
            let store = s3.open(&prefix, delay).await?;
            let mut cache = ObjectCache::new(HashKind::Sha1);
            let samples: &mut Samples = &mut native;
            for warm in [false, true] {
                let ((path, data), turn) = next(warm);
                let sample = measure(&store, async {
                    let mut op = repo::Commit::new(&cache, commit_request(path, data, turn))?;
                    driver::run(&mut op, &mut cache, store.as_ref(), None).await?;
                    Ok(())
                })
                .await?;
                push(samples, warm, sample);
            }
        }
        // The component through the runtime: a new client and a new runtime, loaded from
        // the disk cache (its load time is part 1's).
        {
            let store = s3.open(&prefix, delay).await?;
            let runtime = Runtime::new(bytes, config.clone())?;
            let io = Io::new(store.clone());
            let samples: &mut Samples = &mut component;
            for warm in [false, true] {
                let ((path, data), turn) = next(warm);
                let request = Request::Commit(commit_request(path, data, turn));
                let sample = measure(&store, async {
                    runtime.call::<repo::CommitOutput>(&io, request).await?;
                    Ok(())
                })
                .await?;
                push(samples, warm, sample);
            }
        }
        // Download everything into a temporary checkout, commit there, upload.
        for (keep, samples) in [(false, &mut fresh), (true, &mut kept)] {
            let store = s3.open(&prefix, delay).await?;
            let mut checkout = Checkout::new(scratch)?;
            for warm in [false, true] {
                if warm && !keep {
                    checkout = Checkout::new(scratch)?;
                }
                let ((path, data), turn) = next(warm);
                let sample = measure(&store, checkout.commit(&store, args.sync_concurrency, path, data, turn)).await?;
                push(samples, warm, sample);
            }
        }
    }

    println!(
        "\n3. commit of 1 file into {} files ({keys} keys) on S3 (ministack on loopback) with {} ms added to \
         every request; median of {}",
        files.len(),
        args.delay_ms,
        args.repeat.max(1)
    );
    println!(
        "   cold: a new process (new client, empty caches); warm: the same writer's next commit of the same file.\n   \
         requests: one per key read or written (S3 has no batch read), one per list page of 1000 keys."
    );
    let base = (median(&fresh.cold), median(&fresh.warm));
    let rows = [
        ("native core, host driver", &native),
        ("component, host runtime", &component),
        ("download all, new checkout", &fresh),
        ("download all, kept checkout", &kept),
    ];
    let time = |s: Option<Sample>| s.map_or_else(String::new, |s| ms(s.time));
    let requests = |s: Option<Sample>| s.map_or_else(String::new, |s| s.counts.to_string());
    println!(
        "\n   {:<28} {:>12} {:>7}   {:>12} {:>7}",
        "latency", "cold", "speedup", "warm", "speedup"
    );
    for (name, samples) in rows {
        let (cold, warm) = (median(&samples.cold), median(&samples.warm));
        println!(
            "   {name:<28} {:>12} {:>7}   {:>12} {:>7}",
            time(cold),
            versus(cold, base.0),
            time(warm),
            versus(warm, base.1),
        );
    }
    println!("\n   {:<28} {:<46} warm", "requests", "cold");
    for (name, samples) in rows {
        let (cold, warm) = (median(&samples.cold), median(&samples.warm));
        println!("   {name:<28} {:<46} {}", requests(cold), requests(warm));
    }
    println!(
        "\n   speedup: the time of downloading everything into a new checkout, divided by this row's.\n   \
         download all: list the prefix, GET every object and the ref ({n} in flight, as `aws s3 sync`), commit in \
         the\n   \
         checkout (a folder) with native core, PUT the new objects ({n} in flight), swap the ref. A kept checkout\n   \
         GETs only the keys it lacks, and the ref.\n   \
         Not measured: the storage client's one-time check of conditional writes (made before timing), and\n   \
         loading the component (part 1).",
        n = args.sync_concurrency
    );
    let cleanup = s3.open(&prefix, Duration::ZERO).await?;
    let keys: Vec<String> = cleanup.list("").await?.into_iter().map(|l| l.key).collect();
    driver::delete_all(cleanup.as_ref(), keys, 32).await?;
    Ok(())
}

fn push(samples: &mut Samples, warm: bool, sample: Sample) {
    if warm {
        samples.warm.push(sample);
    } else {
        samples.cold.push(sample);
    }
}

/// How many times faster than `base` (downloading everything) `sample` was.
fn versus(sample: Option<Sample>, base: Option<Sample>) -> String {
    match (sample, base) {
        (Some(s), Some(b)) => format!("{:.1}x", ratio(b.time, s.time)),
        _ => String::new(),
    }
}

/// A local copy of the store, as agent servers keep one per operation: a folder laid out
/// as a bare git repository, and which keys it holds.
struct Checkout {
    local: FsStorage,
    held: HashSet<String>,
}

impl Checkout {
    fn new(scratch: &Scratch) -> Result<Checkout, BoxError> {
        let dir = scratch.dir(&format!("checkout-{}", unique()))?;
        let options = FsOptions {
            // A throwaway copy: git does not flush loose objects either.
            fsync: false,
            ..FsOptions::default()
        };
        Ok(Checkout {
            local: FsStorage::open_with(dir, options)?,
            held: HashSet::new(),
        })
    }

    /// Bring the checkout up to date, commit one change in it, upload what is new.
    async fn commit(
        &mut self,
        remote: &Metered,
        concurrency: usize,
        path: String,
        data: Vec<u8>,
        turn: usize,
    ) -> Result<(), BoxError> {
        let listed = remote.list("").await?;
        let (refs, objects): (Vec<String>, Vec<String>) = listed
            .into_iter()
            .map(|l| l.key)
            .filter(|key| !self.held.contains(key))
            .partition(|key| key.starts_with("refs/"));
        let refs = futures::future::try_join_all(refs.iter().map(|key| remote.read_ref(key)));
        let got = driver::get_all(remote, objects.clone(), concurrency);
        let (states, got) = futures::future::try_join(refs, got).await?;
        let downloaded: Vec<Object> = objects
            .into_iter()
            .zip(got)
            .filter_map(|(key, bytes)| {
                Some(Object {
                    key,
                    bytes: bytes?.into(),
                })
            })
            .collect();
        self.held.extend(downloaded.iter().map(|o| o.key.clone()));
        self.local.put_many(downloaded).await?;
        let ref_key = "refs/namespaces/agent/refs/heads/main";
        let Some(Some(remote_head)) = states.into_iter().next() else {
            return Err("the benchmark repo's branch is missing".into());
        };
        let local_head = self.local.read_ref(ref_key).await?;
        if local_head.as_ref().map(|h| h.value) != Some(remote_head.value) {
            self.local
                .cas_ref(&CasRef {
                    key: ref_key.into(),
                    expected: local_head,
                    new: Some(remote_head.value),
                })
                .await?;
        }

        // Commit in the checkout, as `git commit` would: no cache from earlier runs.
        let before: HashSet<String> = self.local.list("objects/").await?.into_iter().map(|l| l.key).collect();
        let mut cache = ObjectCache::new(HashKind::Sha1);
        let mut op = repo::Commit::new(&cache, commit_request(path, data, turn))?;
        let out = driver::run(&mut op, &mut cache, &self.local, None).await?;
        let new: Vec<String> = self
            .local
            .list("objects/")
            .await?
            .into_iter()
            .map(|l| l.key)
            .filter(|key| !before.contains(key))
            .collect();
        let bytes = self.local.get_many(&new).await?;
        let upload: Vec<Object> = new
            .into_iter()
            .zip(bytes)
            .filter_map(|(key, bytes)| {
                Some(Object {
                    key,
                    bytes: bytes?.into(),
                })
            })
            .collect();
        self.held.extend(upload.iter().map(|o| o.key.clone()));
        driver::put_all(remote, upload, concurrency).await?;
        let outcome = remote
            .cas_ref(&CasRef {
                key: ref_key.into(),
                expected: Some(remote_head),
                new: Some(out.commit),
            })
            .await?;
        match outcome {
            snapgit_core::step::CasOutcome::Won { .. } => Ok(()),
            snapgit_core::step::CasOutcome::Lost { .. } => Err("another writer moved the benchmark branch".into()),
        }
    }
}

/// A folder for the run's files, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("snapgit-bench-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    fn dir(&self, name: &str) -> std::io::Result<PathBuf> {
        let dir = self.0.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> String {
    use std::hash::{BuildHasher, RandomState};
    format!("{:012x}", RandomState::new().hash_one(Instant::now()) >> 16)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}
