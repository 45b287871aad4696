//! The core component under wasmtime: snapgit-core's operations, sandboxed, with the
//! host answering the component's storage and lock imports.
//!
//! One [`Runtime`] holds one `Engine` (epoch interruption on, a ticker thread advancing
//! the epoch), the component compiled once (and cached on disk when a cache folder is
//! given), and an `InstancePre` made once. Every call gets a fresh `Store` with its own
//! memory limit and deadline, instantiates the component, runs one export, and drops the
//! store — after a trap too, so nothing of a failed call survives into the next.
//!
//! The component's imports are carried out like the native driver's steps
//! ([`crate::driver`]): each `get-many`, `put-many` and `delete` batch in parallel; a lost
//! compare-and-swap or a busy lock is answered after a jittered backoff, since the
//! component has no clock.
//!
//! ```no_run
//! use snapgit_host::{runtime::{Config, Io, Runtime}, storage};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let component = std::fs::read("target/component/snapgit.wasm")?; // wasm/component/build.sh
//! let runtime = Runtime::new(&component, Config::default())?;
//! let io = Io::new(storage::open("memory:", &storage::Options::default())?);
//! let repos = runtime.list_repos(&io).await?;
//! # Ok(())
//! # }
//! ```

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use snapgit_core::{
    HashKind, id,
    step::{self as core_step, CasOutcome},
};
use wasmtime::{
    Engine, ResourceLimiter, Store, Trap,
    component::{Component, HasSelf, Linker},
};

use crate::{
    cli::error::storage_error_code,
    driver,
    lock::{self, Locks},
    storage::{self as store_mod, Storage},
};

/// The host side of the `snapgit` world; WIT fields without docs stay undocumented.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wasm/wit",
        world: "snapgit",
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::{Snapgit, SnapgitPre, snapgit::core::storage as wit};
pub use bindings::{
    exports::snapgit::core::operations::{
        Change, ChangeKind, Collected, CommitInfo, CommitOutput, CommitRequest, ConflictPolicy, Created, DiffOutput,
        DiffRequest, Entry, File, FileChange, FileWithPath, FootprintReport, LineStats, LogPage, LogRequest, Mode,
        PruneRequest, Pruned, Put, Rename, RepoUsage, RestoreRequest, Side, Signature, Usage,
    },
    snapgit::core::types::{Code, Failure},
};

/// Bounds on every call into the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory one call may use, in bytes.
    pub memory_bytes: usize,
    /// The longest one call may take, storage calls included.
    pub deadline: Duration,
    /// How often the epoch advances: the deadline's resolution.
    pub tick: Duration,
}

impl Default for Limits {
    /// 256 MiB (core's default largest object is 100 MiB) and 60 s, ticking every 10 ms.
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            deadline: Duration::from_secs(60),
            tick: Duration::from_millis(10),
        }
    }
}

/// How a [`Runtime`] is set up.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Bounds on each call.
    pub limits: Limits,
    /// Keep compiled code in this folder, so the next process loads it instead of
    /// compiling (wasmtime's cache, keyed by the component's bytes, wasmtime's version
    /// and the engine's settings); `None` compiles in every process.
    pub cache_dir: Option<PathBuf>,
    /// How storage calls are made: batch concurrency and backoff.
    pub driver: driver::Options,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The component cannot be compiled or does not match the `snapgit` world.
    #[error("cannot load the snapgit component: {0:#}")]
    Load(#[source] wasmtime::Error),
    /// The call ran past its deadline; the store was dropped.
    #[error("the component call exceeded its deadline of {deadline:?} and was stopped")]
    Deadline {
        /// The deadline in force.
        deadline: Duration,
    },
    /// The call asked for more memory than its limit; the store was dropped.
    #[error("the component call exceeded its memory limit of {limit} bytes (it asked for {asked}) and was stopped")]
    Memory {
        /// The limit in force.
        limit: usize,
        /// The memory size it asked for.
        asked: usize,
    },
    /// The component trapped for another reason; the store was dropped.
    #[error("the component trapped: {0:#}")]
    Trap(#[source] wasmtime::Error),
    /// The operation failed: the component's code and message.
    #[error("{}", .0.message)]
    Failed(Failure),
}

impl Error {
    /// The operation's failure code, for [`Error::Failed`].
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Failed(failure) => Some(failure.code),
            _ => None,
        }
    }
}

/// The storage and optional locks one call works against.
#[derive(Debug, Clone)]
pub struct Io {
    /// The store.
    pub storage: Arc<dyn Storage>,
    /// Advisory locks, for commits that ask for them.
    pub locks: Option<Arc<dyn Locks>>,
}

impl Io {
    /// `storage` without locks.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Io { storage, locks: None }
    }
}

/// The component, compiled and ready to instantiate.
pub struct Runtime {
    engine: Engine,
    pre: SnapgitPre<Call>,
    limits: Limits,
    driver: driver::Options,
    ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

/// What one call's store holds: its IO, limits and contention counters.
struct Call {
    io: Io,
    driver: driver::Options,
    memory_limit: usize,
    memory_asked: Option<usize>,
    lost: u32,
    busy: u32,
}

impl ResourceLimiter for Call {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_asked = Some(desired);
            // A trap, not a failed grow: the guest cannot recover from running out.
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded (asked for {desired})",
                self.memory_limit
            )));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl Runtime {
    /// Compile `component` (the bytes `wasm/component/build.sh` writes) and check it
    /// against the `snapgit` world: it must import nothing but snapgit's storage, lock and
    /// type interfaces.
    pub fn new(component: &[u8], config: Config) -> Result<Self, Error> {
        let mut wasm = wasmtime::Config::new();
        wasm.epoch_interruption(true);
        if let Some(dir) = &config.cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            wasm.cache(Some(wasmtime::Cache::new(cache).map_err(Error::Load)?));
        }
        let engine = Engine::new(&wasm).map_err(Error::Load)?;
        let component = Component::new(&engine, component).map_err(Error::Load)?;
        let mut linker = Linker::<Call>::new(&engine);
        Snapgit::add_to_linker::<Call, HasSelf<Call>>(&mut linker, |call| call).map_err(Error::Load)?;
        // Instantiating through the linker fails for any import it does not define.
        let pre = SnapgitPre::new(linker.instantiate_pre(&component).map_err(Error::Load)?).map_err(Error::Load)?;
        let ticker = Arc::new(AtomicBool::new(false));
        spawn_ticker(&engine, config.limits.tick, ticker.clone());
        Ok(Runtime {
            engine,
            pre,
            limits: config.limits,
            driver: config.driver,
            ticker,
        })
    }

    /// The names of the component's imports.
    pub fn imports(&self) -> Vec<String> {
        self.pre
            .instance_pre()
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// A fresh store and instance for one call.
    async fn instance(&self, io: &Io) -> Result<(Store<Call>, Snapgit), Error> {
        let call = Call {
            io: io.clone(),
            driver: self.driver,
            memory_limit: self.limits.memory_bytes,
            memory_asked: None,
            lost: 0,
            busy: 0,
        };
        let mut store = Store::new(&self.engine, call);
        store.limiter(|call| call as &mut dyn ResourceLimiter);
        let ticks = self.limits.deadline.as_nanos() / self.limits.tick.as_nanos().max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        let instance = self.pre.instantiate_async(&mut store).await;
        match instance {
            Ok(instance) => Ok((store, instance)),
            Err(err) => Err(self.trapped(&store, err)),
        }
    }

    /// The error for a call that ended in a trap or an error of wasmtime's.
    fn trapped(&self, store: &Store<Call>, err: wasmtime::Error) -> Error {
        if let Some(asked) = store.data().memory_asked {
            return Error::Memory {
                limit: self.limits.memory_bytes,
                asked,
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Error::Deadline {
                deadline: self.limits.deadline,
            },
            _ => Error::Trap(err),
        }
    }

    /// Settle a call: its value, or why it failed. The store is dropped either way.
    fn settle<T>(&self, store: Store<Call>, result: Option<wasmtime::Result<Result<T, Failure>>>) -> Result<T, Error> {
        match result {
            None => Err(Error::Deadline {
                deadline: self.limits.deadline,
            }),
            Some(Ok(Ok(value))) => Ok(value),
            Some(Ok(Err(failure))) => Err(Error::Failed(failure)),
            Some(Err(err)) => Err(self.trapped(&store, err)),
        }
    }

    /// Wait for `call`, but no longer than the deadline (plus a tick): a storage call
    /// that hangs is stopped too, not only guest code.
    async fn bounded<F: Future>(&self, call: F) -> Option<F::Output> {
        tokio::time::timeout(self.limits.deadline + self.limits.tick, call)
            .await
            .ok()
    }
}

/// Generates one method per export: a fresh instance, the call under the deadline, the
/// store dropped.
macro_rules! exports {
    ($($(#[$doc:meta])* $name:ident => $call:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        impl Runtime {
            $(
                $(#[$doc])*
                pub async fn $name(&self, io: &Io $(, $arg: $ty)*) -> Result<$out, Error> {
                    let (mut store, instance) = self.instance(io).await?;
                    let result = self
                        .bounded(instance.snapgit_core_operations().$call(&mut store $(, $arg)*))
                        .await;
                    self.settle(store, result)
                }
            )*
        }
    };
}

exports! {
    /// Create a repo with a first commit of `files` (puts only) on `branch`.
    create_repo => call_create_repo(repo: &str, branch: &str, files: &[Change], author: &Signature, message: &str) -> Created;
    /// Every repo of the store, sorted.
    list_repos => call_list_repos() -> Vec<String>;
    /// Delete every ref of a repo; the refs removed.
    delete_repo => call_delete_repo(repo: &str) -> Vec<String>;
    /// Create a branch at a commit.
    create_branch => call_create_branch(repo: &str, branch: &str, start: &str) -> String;
    /// The branches of a repo, sorted.
    list_branches => call_list_branches(repo: &str) -> Vec<String>;
    /// Delete a branch.
    delete_branch => call_delete_branch(repo: &str, branch: &str) -> ();
    /// A branch's head.
    read_head => call_read_head(repo: &str, branch: &str) -> String;
    /// Commit to a branch (compare-and-swap, replay after a lost race).
    commit => call_commit(request: &CommitRequest) -> CommitOutput;
    /// Restore a tree or path as a new commit on a branch.
    restore => call_restore(request: &RestoreRequest) -> CommitOutput;
    /// A page of history.
    log => call_log(request: &LogRequest) -> LogPage;
    /// One file at a commit.
    read_file => call_read_file(commit: &str, path: &str) -> File;
    /// A folder at a commit, without reading blobs.
    list_tree => call_list_tree(commit: &str, path: &str, recursive: bool) -> Vec<Entry>;
    /// Every file below a folder at a commit.
    read_files => call_read_files(commit: &str, path: &str) -> Vec<FileWithPath>;
    /// A commit's metadata.
    read_commit => call_read_commit(commit: &str) -> CommitInfo;
    /// Compare two commits.
    diff => call_diff(request: &DiffRequest) -> DiffOutput;
    /// Apply a retention to a branch.
    prune => call_prune(request: &PruneRequest) -> Pruned;
    /// Objects and bytes in the store.
    footprint => call_footprint() -> FootprintReport;
    /// Delete unreachable objects older than `grace_ms` at `now_ms`.
    gc => call_gc(now_ms: i64, grace_ms: u64) -> Collected;
}

/// Advance the engine's epoch every `tick` until `stop` is set or the engine is gone.
fn spawn_ticker(engine: &Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("snapgit-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        // Without a ticker deadlines cannot fire; calls still end at the host's timeout.
        .ok();
}

fn failure(code: Code, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

fn storage_failure(err: store_mod::Error) -> Failure {
    use crate::cli::Code as C;
    let code = match storage_error_code(&err) {
        C::InvalidInput => Code::InvalidInput,
        C::Limit => Code::Limit,
        C::Corrupt => Code::Corrupt,
        _ => Code::Storage,
    };
    failure(code, err.to_string())
}

fn lock_failure(err: lock::Error) -> Failure {
    let code = match err {
        lock::Error::InvalidTtl { .. } | lock::Error::Config { .. } => Code::InvalidInput,
        _ => Code::Storage,
    };
    failure(code, err.to_string())
}

fn ref_state_in(state: &wit::RefState) -> Result<core_step::RefState, Failure> {
    let value = id::parse(HashKind::Sha1, &state.value)
        .map_err(|err| failure(Code::InvalidInput, format!("the component sent a bad ref value: {err}")))?;
    Ok(core_step::RefState {
        value,
        version: state.version.clone(),
    })
}

fn ref_state_out(state: core_step::RefState) -> wit::RefState {
    wit::RefState {
        value: state.value.to_string(),
        version: state.version,
    }
}

impl Call {
    async fn wait(&self, n: u32) {
        let delay = self.driver.backoff.delay(n);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

impl bindings::snapgit::core::types::Host for Call {}

impl wit::Host for Call {
    async fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, Failure> {
        driver::get_all(self.io.storage.as_ref(), keys, self.driver.concurrency)
            .await
            .map_err(storage_failure)
    }

    async fn put_many(&mut self, objects: Vec<wit::Object>) -> Result<(), Failure> {
        let objects = objects
            .into_iter()
            .map(|o| store_mod::Object {
                key: o.key,
                bytes: o.bytes.into(),
            })
            .collect();
        driver::put_all(self.io.storage.as_ref(), objects, self.driver.concurrency)
            .await
            .map_err(storage_failure)
    }

    async fn list(&mut self, prefix: String) -> Result<Vec<wit::Listed>, Failure> {
        let listed = self.io.storage.list(&prefix).await.map_err(storage_failure)?;
        Ok(listed
            .into_iter()
            .map(|l| wit::Listed {
                key: l.key,
                size: l.size,
                modified_ms: l.modified_ms,
            })
            .collect())
    }

    async fn delete(&mut self, keys: Vec<String>) -> Result<(), Failure> {
        driver::delete_all(self.io.storage.as_ref(), keys, self.driver.concurrency)
            .await
            .map_err(storage_failure)
    }

    async fn read_ref(&mut self, key: String) -> Result<Option<wit::RefState>, Failure> {
        let state = self.io.storage.read_ref(&key).await.map_err(storage_failure)?;
        Ok(state.map(ref_state_out))
    }

    async fn cas_ref(&mut self, cas: wit::CasRequest) -> Result<wit::CasOutcome, Failure> {
        let new = cas
            .new
            .as_deref()
            .map(|hex| id::parse(HashKind::Sha1, hex))
            .transpose()
            .map_err(|err| failure(Code::InvalidInput, format!("the component sent a bad ref value: {err}")))?;
        let request = core_step::CasRef {
            key: cas.key,
            expected: cas.expected.as_ref().map(ref_state_in).transpose()?,
            new,
        };
        match self.io.storage.cas_ref(&request).await.map_err(storage_failure)? {
            CasOutcome::Won { version } => Ok(wit::CasOutcome::Won(version)),
            CasOutcome::Lost { current } => {
                // The component retries at once; the wait before it is ours.
                self.lost += 1;
                self.wait(self.lost).await;
                Ok(wit::CasOutcome::Lost(current.map(ref_state_out)))
            }
        }
    }
}

impl bindings::snapgit::core::locks::Host for Call {
    async fn acquire(&mut self, name: String, ttl_ms: u64) -> Result<Option<String>, Failure> {
        let Some(locks) = self.io.locks.clone() else {
            return Err(failure(
                Code::InvalidInput,
                format!("the operation asked for the lock {name:?}, but no lock service was given"),
            ));
        };
        let token = locks
            .acquire(&name, Duration::from_millis(ttl_ms))
            .await
            .map_err(lock_failure)?;
        if token.is_none() {
            self.busy += 1;
            self.wait(self.busy).await;
        }
        Ok(token)
    }

    async fn release(&mut self, name: String, token: String) -> Result<(), Failure> {
        let Some(locks) = self.io.locks.clone() else {
            return Err(failure(Code::InvalidInput, "no lock service was given"));
        };
        locks.release(&name, &token).await.map_err(lock_failure)?;
        Ok(())
    }
}
