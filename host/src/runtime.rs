//! The core component under wasmtime: snapgit-core's operations, sandboxed, with the
//! host answering the component's storage, lock and HTTP imports.
//!
//! One [`Runtime`] holds one `Engine` (epoch interruption on, a ticker thread advancing
//! the epoch), the component compiled once (and cached on disk when a cache folder is
//! given), and an `InstancePre` made once. Every call ([`Runtime::run`]) gets a fresh
//! `Store` with its own memory limit and deadline, instantiates the component, runs one
//! export, and drops the store — after a trap too, so nothing of a failed call survives
//! into the next. A [`Session`]'s calls ([`Runtime::run_in`]) share one instance instead,
//! each with a deadline of its own; a trap still drops it.
//! Instances live in wasmtime's pooling allocator ([`Limits::concurrent_calls`] slots):
//! a slot's memory is zeroed and reused, never shared by two calls at once.
//!
//! The component's imports are carried out like the native driver's steps
//! ([`crate::driver`]): each `get-many`, `put-many` and `delete` batch in parallel; a
//! `wait` (core's backoff after a lost compare-and-swap or a busy lock: the component
//! has no clock) is slept. A push's or fetch's HTTP requests are sent by
//! [`crate::http::send`], as the native driver sends them. Waits and HTTP count against
//! the call's deadline like storage calls.
//!
//! A [`Session`] keeps one instance for a run of calls against one store (a command's
//! reads, folder diff and commit): the component's own object cache then lasts from
//! call to call, as native core's does. A call that traps or passes its deadline drops
//! its instance; the session's next call starts a fresh one.
//!
//! Since a call outside a session starts with an empty guest, the component's own object
//! cache never outlives it. The runtime keeps one for it instead: loose objects
//! (`objects/ab/cdef…`) the component read or wrote, by store, bounded in bytes
//! ([`Config::object_cache_bytes`], 64 MiB by default), least recently used dropped
//! first. A loose object's key is its content's hash, so a cached one can never be
//! stale, and the component verifies every object it is given anyway. Refs and every
//! other key are always read from storage. So a commit on a branch this runtime committed
//! to before reads no object from storage.
//!
//! An [`Io`] also remembers the last state of each ref its calls saw (read, or set or
//! found by a compare-and-swap). `commit` and `restore` start from that state instead of
//! reading the ref, as native core does with a warm cache: the compare-and-swap is the
//! fence, so a stale head costs a lost swap and a replay onto the current head, never an
//! update. Every other call reads refs from storage. A commit after a commit through the
//! same `Io` is then one batch of puts and one compare-and-swap.
//!
//! ```no_run
//! use snapgit_host::{runtime::{Config, Io, Runtime}, storage};
//! use snapgit_core::api;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let component = std::fs::read("target/component/snapgit.wasm")?; // wasm/component/build.sh
//! let runtime = Runtime::new(&component, Config::default())?;
//! let io = Io::new(storage::open("memory:", &storage::Options::default())?);
//! let repos = runtime.run(&io, api::Request::ListRepos).await?;
//! # Ok(())
//! # }
//! ```

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;

use snapgit_core::{
    HashKind, api, id,
    step::{self as core_step, CasOutcome},
};
use wasmtime::{
    Engine, ResourceLimiter, Store, Trap,
    component::{Component, HasSelf, Linker},
};

use crate::{
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

pub use bindings::snapgit::core::types::{Code, Failure};
use bindings::{Snapgit, SnapgitPre, snapgit::core::storage as wit};

/// Core's code for a WIT failure's code: the same cause.
pub fn core_code(code: Code) -> snapgit_core::error::Code {
    code.to_core().unwrap_or(snapgit_core::error::Code::Misuse)
}

mod compiled;

/// The conversion between core's operations and the WIT types, shared with the component.
#[path = "../../wasm/component/src/convert.rs"]
mod convert;
use convert::{ToCore, ToWit};

/// Bounds on every call into the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most linear memory one call may use, in bytes.
    pub memory_bytes: usize,
    /// The longest one call may take, storage calls included.
    pub deadline: Duration,
    /// How often the epoch advances: the deadline's resolution.
    pub tick: Duration,
    /// How many calls may run at once; more wait for a free slot. Each slot reserves
    /// address space (not memory) for one instance.
    pub concurrent_calls: u32,
}

/// The most linear memory a [`Session`] keeps an instance with: its object cache (64 MiB
/// at most) and room to work. A call that grew it further ends the instance.
const SESSION_MEMORY_BYTES: usize = 128 << 20;

/// Core instances (and tables) one instance of the component may take from the pool.
const CORE_INSTANCES_PER_CALL: u32 = 8;

/// How much of a slot's memory and tables stays resident between calls.
const KEEP_RESIDENT: usize = 4 << 20;

/// The linear memory a call needs to commit a file of `max_file_bytes`: 256 MiB for
/// everything else, and four times the file (it arrives in the call, is copied once with
/// its loose header and compressed once, and the compressed buffer grows by doubling).
/// At most what a 32-bit memory can address.
pub fn memory_for_files(max_file_bytes: u64) -> usize {
    let bytes = (256u64 << 20).saturating_add(max_file_bytes.saturating_mul(4));
    usize::try_from(bytes.min(u64::from(u32::MAX))).unwrap_or(usize::MAX)
}

impl Default for Limits {
    /// Memory for a commit of the largest file core accepts by default
    /// ([`memory_for_files`] of 100 MiB: 656 MiB), so that the component commits every
    /// file native core does; 60 s, ticking every 10 ms; 64 calls at once.
    fn default() -> Self {
        Limits {
            memory_bytes: memory_for_files(snapgit_core::Limits::default().max_file_bytes),
            deadline: Duration::from_secs(60),
            tick: Duration::from_millis(10),
            concurrent_calls: 64,
        }
    }
}

/// The default of [`Config::object_cache_bytes`]: 64 MiB.
pub const DEFAULT_OBJECT_CACHE_BYTES: usize = 64 << 20;

/// How a [`Runtime`] is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bounds on each call.
    pub limits: Limits,
    /// Keep compiled code in this folder, so the next process maps it into memory instead
    /// of compiling (a file per component and engine settings, mapped as it is); `None`
    /// compiles in every process.
    pub cache_dir: Option<PathBuf>,
    /// How storage calls are made: batch concurrency.
    pub driver: driver::Options,
    /// The most bytes of loose objects kept between calls, for every store together (see
    /// the module overview); `0` keeps none. Objects larger than half of it are not kept.
    /// [`DEFAULT_OBJECT_CACHE_BYTES`] by default.
    pub object_cache_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            cache_dir: None,
            driver: driver::Options::default(),
            object_cache_bytes: DEFAULT_OBJECT_CACHE_BYTES,
        }
    }
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

/// The storage and optional locks one call works against, and the refs its calls saw.
///
/// The runtime's object cache is per store instance: pass clones of one `Io` (or of its
/// `Arc`) to share it across calls. Clones share the remembered refs too.
#[derive(Debug, Clone)]
pub struct Io {
    /// The store.
    pub storage: Arc<dyn Storage>,
    /// Advisory locks, for commits that ask for them.
    pub locks: Option<Arc<dyn Locks>>,
    refs: Arc<Mutex<HashMap<String, wit::RefState>>>,
    /// The last listing of the packs, for commits: the guest's cache starts empty in
    /// every call, and would list them each time.
    packs: Arc<Mutex<Option<Vec<wit::Listed>>>>,
}

/// The most refs an [`Io`] remembers; past it, it forgets them all and starts again.
const REMEMBERED_REFS: usize = 4096;

impl Io {
    /// `storage` without locks.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Io {
            storage,
            locks: None,
            refs: Arc::default(),
            packs: Arc::default(),
        }
    }

    /// Add advisory locks.
    pub fn with_locks(mut self, locks: Arc<dyn Locks>) -> Self {
        self.locks = Some(locks);
        self
    }

    fn remembered(&self, key: &str) -> Option<wit::RefState> {
        self.refs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Remember what `key` holds; `None` forgets it (an absent ref is always read again,
    /// so a branch made meanwhile is never reported missing).
    fn remember(&self, key: &str, state: Option<wit::RefState>) {
        let mut refs = self.refs.lock().unwrap_or_else(PoisonError::into_inner);
        match state {
            Some(state) => {
                if refs.len() >= REMEMBERED_REFS && !refs.contains_key(key) {
                    refs.clear();
                }
                refs.insert(key.to_owned(), state);
            }
            None => {
                refs.remove(key);
            }
        }
    }
}

/// Whether a call may start from a remembered ref state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refs {
    /// Read every ref from storage.
    Fresh,
    /// Answer ref reads from the states the `Io` remembers (commits and restores, which
    /// end in a compare-and-swap).
    Remembered,
}

/// One instance of the component kept for a run of calls against one store
/// ([`Runtime::run_in`]), and the pool slot it holds: a command's calls share the
/// guest's object cache this way. Dropping it frees the slot.
pub struct Session {
    io: Io,
    kept: Option<(Store<Call>, Snapgit, Option<tokio::sync::OwnedSemaphorePermit>)>,
}

impl Session {
    /// A session against `io`'s store (no instance until its first call).
    pub fn new(io: &Io) -> Self {
        Session {
            io: io.clone(),
            kept: None,
        }
    }

    /// Let the kept instance go, and the pool slot with it.
    pub fn release(&mut self) {
        self.kept = None;
    }

    /// Whether an instance is kept for the next call.
    pub fn has_instance(&self) -> bool {
        self.kept.is_some()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("io", &self.io)
            .field("instance", &self.kept.is_some())
            .finish()
    }
}

/// The component, compiled and ready to instantiate.
pub struct Runtime {
    engine: Engine,
    pre: SnapgitPre<Call>,
    limits: Limits,
    driver: driver::Options,
    objects: Option<Arc<SharedObjects>>,
    ticker: Arc<AtomicBool>,
    slots: Arc<tokio::sync::Semaphore>,
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

/// What one call's store holds: its IO and limits.
struct Call {
    io: Io,
    refs: Refs,
    driver: driver::Options,
    objects: Option<Arc<SharedObjects>>,
    memory_limit: usize,
    memory_asked: Option<usize>,
    /// The guest's linear memory, in bytes, as it last grew.
    memory_bytes: usize,
    /// The packs were listed in this call: a second listing goes to storage.
    packs_listed: bool,
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
        self.memory_bytes = desired;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl Runtime {
    /// Compile `component` (the bytes `wasm/component/build.sh` writes) and check it
    /// against the `snapgit` world: it must import nothing but snapgit's storage, lock,
    /// HTTP and type interfaces.
    pub fn new(component: &[u8], config: Config) -> Result<Self, Error> {
        Self::load(component, None, config)
    }

    /// [`Runtime::new`] for a component whose SHA-256 (in hex) is known, such as the one
    /// embedded in the binary: it names the compiled code in [`Config::cache_dir`], so
    /// loading it need not hash the component. It must be `component`'s: compiled code
    /// kept under it is loaded as it is. A value that is not 64 hex digits is ignored.
    pub fn with_sha256(component: &[u8], sha256: &str, config: Config) -> Result<Self, Error> {
        Self::load(component, Some(sha256), config)
    }

    fn load(component: &[u8], sha256: Option<&str>, config: Config) -> Result<Self, Error> {
        let mut wasm = wasmtime::Config::new();
        wasm.epoch_interruption(true);
        // Instances come from a pool of slots made once: a call reuses a slot's memory
        // (its first MiBs kept resident and zeroed in place) instead of mapping fresh
        // pages and faulting them in. About a third off a small commit.
        // The component instantiates a few core modules (its code, and the shims the
        // encoder adds for indirect calls), one memory and a few tables.
        let slots = config.limits.concurrent_calls.max(1);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.max_memory_size(config.limits.memory_bytes)
            .total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_CALL))
            .total_memories(slots)
            // One fiber stack per call (wasmtime's default pool makes 1,000, each with a
            // guard page set up when the runtime is made: most of a command's start).
            .total_stacks(slots)
            .total_tables(slots.saturating_mul(CORE_INSTANCES_PER_CALL))
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        wasm.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(Error::Load)?;
        let component = match &config.cache_dir {
            Some(dir) => compiled::load(&engine, component, sha256, dir)?,
            None => Component::new(&engine, component).map_err(Error::Load)?,
        };
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
            objects: (config.object_cache_bytes > 0).then(|| Arc::new(SharedObjects::new(config.object_cache_bytes))),
            ticker,
            slots: Arc::new(tokio::sync::Semaphore::new(slots as usize)),
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

    /// Hold these loose objects of `storage` (each key with its inflated bytes) between
    /// calls, as if the component had read them: its next reads of them need no storage
    /// call. The component checks every byte against the id, so a wrong one fails the
    /// read as a damaged object would. Nothing is held when the runtime keeps no objects
    /// ([`Config::object_cache_bytes`] is 0).
    pub fn hold(&self, storage: &Arc<dyn Storage>, objects: Vec<(String, Vec<u8>)>) {
        if let Some(cache) = &self.objects {
            cache.insert(
                storage,
                objects.into_iter().map(|(key, bytes)| (key, Bytes::from(bytes))),
            );
        }
    }

    /// The loose objects held between calls: how many, and their bytes.
    pub fn cached_objects(&self) -> (usize, usize) {
        self.objects.as_ref().map_or((0, 0), |objects| objects.size())
    }

    /// A fresh store and instance for one call.
    async fn instance(&self, io: &Io, refs: Refs) -> Result<(Store<Call>, Snapgit), Error> {
        let call = Call {
            io: io.clone(),
            refs,
            driver: self.driver,
            objects: self.objects.clone(),
            memory_limit: self.limits.memory_bytes,
            memory_asked: None,
            memory_bytes: 0,
            packs_listed: false,
        };
        let mut store = Store::new(&self.engine, call);
        store.limiter(|call| call as &mut dyn ResourceLimiter);
        store.set_epoch_deadline(self.deadline_ticks());
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

impl Runtime {
    /// Run one of core's operations in a fresh instance, under the deadline and memory
    /// limit; the store is dropped after. The request and output cross as the WIT types
    /// through the conversion the component itself uses (`wasm/component/src/convert.rs`).
    pub async fn run(&self, io: &Io, request: api::Request) -> Result<api::Output, Error> {
        // A free instance slot, held until the store is dropped (the semaphore is never
        // closed, so this always gets one).
        let _slot = self.slots.acquire().await.ok();
        let refs = if request.writes_branch() {
            Refs::Remembered
        } else {
            Refs::Fresh
        };
        let (mut store, instance) = self.instance(io, refs).await?;
        let request = request.to_wit();
        let result = self
            .bounded(instance.snapgit_core_operations().call_run(&mut store, &request))
            .await;
        self.settle(store, result)?.to_core().map_err(Error::Failed)
    }

    /// [`Runtime::run`] in `session`'s instance: kept from the session's last call when
    /// that one ended (with an output or a failure), else a fresh one. Its object cache
    /// then lasts from call to call, as native core's does in a session. A call that
    /// traps or passes its deadline takes its instance with it.
    pub async fn run_in(&self, session: &mut Session, request: api::Request) -> Result<api::Output, Error> {
        let refs = if request.writes_branch() {
            Refs::Remembered
        } else {
            Refs::Fresh
        };
        let (mut store, instance, slot) = match session.kept.take() {
            Some(kept) => kept,
            None => {
                let slot = self.slots.clone().acquire_owned().await.ok();
                let (store, instance) = self.instance(&session.io, refs).await?;
                (store, instance, slot)
            }
        };
        let call = store.data_mut();
        call.refs = refs;
        call.memory_asked = None;
        call.packs_listed = false;
        store.set_epoch_deadline(self.deadline_ticks());
        let request = request.to_wit();
        let result = self
            .bounded(instance.snapgit_core_operations().call_run(&mut store, &request))
            .await;
        let output = match result {
            Some(Ok(output)) => {
                // A guest that grew large (a big file) is let go: wasm memory never
                // shrinks, and a long session (the MCP server) would hold it.
                if store.data().memory_bytes <= SESSION_MEMORY_BYTES {
                    session.kept = Some((store, instance, slot));
                }
                output.map_err(Error::Failed)?
            }
            other => self.settle(store, other)?,
        };
        output.to_core().map_err(Error::Failed)
    }

    fn deadline_ticks(&self) -> u64 {
        let ticks = self.limits.deadline.as_nanos() / self.limits.tick.as_nanos().max(1);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }

    /// [`Runtime::run`], with the output taken as the type the operation gives
    /// (`let commit: ObjectId = runtime.call(&io, Request::Resolve { .. }).await?`).
    pub async fn call<T: TryFrom<api::Output>>(&self, io: &Io, request: api::Request) -> Result<T, Error> {
        let name = request.name();
        T::try_from(self.run(io, request).await?).map_err(|_| {
            Error::Failed(failure(
                Code::Misuse,
                format!("the component's {name} gave another operation's output"),
            ))
        })
    }
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
    failure(err.code().to_wit(), err.to_string())
}

fn lock_failure(err: lock::Error) -> Failure {
    failure(err.code().to_wit(), err.to_string())
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

impl bindings::snapgit::core::types::Host for Call {}

impl bindings::snapgit::core::http::Host for Call {
    async fn send(
        &mut self,
        request: bindings::snapgit::core::http::HttpRequest,
    ) -> Result<bindings::snapgit::core::http::HttpResponse, Failure> {
        // The native driver's failures are storage failures of the operation; so are these.
        let response = crate::http::send(request.to_core()?)
            .await
            .map_err(|err| failure(Code::Storage, err.to_string()))?;
        Ok(response.to_wit())
    }
}

impl wit::Host for Call {
    async fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, Failure> {
        let storage = &self.io.storage;
        let Some(cache) = &self.objects else {
            let got = driver::get_all(storage.as_ref(), keys.clone(), self.driver.concurrency)
                .await
                .map_err(storage_failure)?;
            return Ok(keys.iter().zip(got).map(|(key, value)| inflated(key, value)).collect());
        };
        let mut out = Vec::with_capacity(keys.len());
        let (mut slots, mut missing) = (Vec::new(), Vec::new());
        for (slot, key) in keys.into_iter().enumerate() {
            match cache.get(storage, &key) {
                Some(bytes) => out.push(Some(bytes.to_vec())),
                None => {
                    out.push(None);
                    slots.push(slot);
                    missing.push(key);
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let got = driver::get_all(storage.as_ref(), missing.clone(), self.driver.concurrency)
            .await
            .map_err(storage_failure)?;
        let got: Vec<Option<Vec<u8>>> = missing
            .iter()
            .zip(got)
            .map(|(key, value)| inflated(key, value))
            .collect();
        cache.insert(
            storage,
            missing
                .into_iter()
                .zip(&got)
                .filter(|(key, _)| is_loose_object(key))
                .filter_map(|(key, value)| Some((key, Bytes::copy_from_slice(value.as_deref()?)))),
        );
        for (slot, value) in slots.into_iter().zip(got) {
            if let Some(place) = out.get_mut(slot) {
                *place = value;
            }
        }
        Ok(out)
    }

    async fn get_ranges(&mut self, ranges: Vec<wit::Range>) -> Result<Vec<Option<Vec<u8>>>, Failure> {
        let ranges: Vec<(String, u64, u64)> = ranges.into_iter().map(|r| (r.key, r.start, r.len)).collect();
        self.io.storage.get_ranges(&ranges).await.map_err(storage_failure)
    }

    async fn put_many(&mut self, objects: Vec<wit::Object>) -> Result<(), Failure> {
        let objects: Vec<store_mod::Object> = objects
            .into_iter()
            .map(|o| store_mod::Object {
                key: o.key,
                bytes: o.bytes.into(),
            })
            .collect();
        // Kept only once stored: a failed put may have stored none of them.
        let written: Vec<(String, Bytes)> = match &self.objects {
            Some(_) => objects.iter().map(|o| (o.key.clone(), o.bytes.clone())).collect(),
            None => Vec::new(),
        };
        driver::put_all(self.io.storage.as_ref(), objects, self.driver.concurrency)
            .await
            .map_err(storage_failure)?;
        if let Some(cache) = &self.objects {
            cache.insert(&self.io.storage, written);
        }
        Ok(())
    }

    async fn list(&mut self, prefix: String) -> Result<Vec<wit::Listed>, Failure> {
        let packs = prefix == snapgit_core::pack::PACK_DIR;
        // A commit's first listing of the packs is the one remembered from the last
        // call: a pack made since is found when an object is missing, as core lists
        // again then (and that listing is read from storage).
        if packs && self.refs == Refs::Remembered && !std::mem::replace(&mut self.packs_listed, true) {
            let remembered = self.io.packs.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(listed) = remembered {
                return Ok(listed);
            }
        }
        let listed: Vec<wit::Listed> = self
            .io
            .storage
            .list(&prefix)
            .await
            .map_err(storage_failure)?
            .into_iter()
            .map(|l| wit::Listed {
                key: l.key,
                size: l.size,
                modified_ms: l.modified_ms,
            })
            .collect();
        if packs {
            *self.io.packs.lock().unwrap_or_else(PoisonError::into_inner) = Some(listed.clone());
        }
        Ok(listed)
    }

    async fn delete(&mut self, keys: Vec<String>) -> Result<(), Failure> {
        // Forgotten before the delete: a failed delete may have removed some of them.
        if let Some(cache) = &self.objects {
            cache.remove(&self.io.storage, &keys);
        }
        driver::delete_all(self.io.storage.as_ref(), keys, self.driver.concurrency)
            .await
            .map_err(storage_failure)
    }

    async fn read_ref(&mut self, key: String) -> Result<Option<wit::RefState>, Failure> {
        if self.refs == Refs::Remembered
            && let Some(state) = self.io.remembered(&key)
        {
            return Ok(Some(state));
        }
        let state = self.io.storage.read_ref(&key).await.map_err(storage_failure)?;
        let state = state.map(ref_state_out);
        self.io.remember(&key, state.clone());
        Ok(state)
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
            CasOutcome::Won { version } => {
                let state = cas.new.map(|value| wit::RefState {
                    value,
                    version: version.clone(),
                });
                self.io.remember(&request.key, state);
                Ok(wit::CasOutcome::Won(version))
            }
            CasOutcome::Lost { current } => {
                self.io.remember(&request.key, current.clone().map(ref_state_out));
                Ok(wit::CasOutcome::Lost(current.map(ref_state_out)))
            }
        }
    }

    async fn swap(&mut self, key: String, expected: Option<Vec<u8>>, new: Option<Vec<u8>>) -> Result<bool, Failure> {
        let swap = core_step::Swap { key, expected, new };
        if !swap.allowed() {
            return Err(failure(
                Code::InvalidInput,
                format!(
                    "the component asked to replace {:?}, which is not a replaceable file",
                    swap.key
                ),
            ));
        }
        self.io.storage.swap(&swap).await.map_err(storage_failure)
    }
}

impl bindings::snapgit::core::wait::Host for Call {
    async fn wait(&mut self, ms: u64) -> Result<(), Failure> {
        // A wait past the call's deadline ends with the call, as a slow storage call does.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(())
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

/// Loose objects kept between calls, per store: two generations of at most half the budget
/// each. Inserts go to the newer one; a hit in the older one moves the object to the
/// newer; when the newer is full it becomes the older and the older is dropped. So the
/// cache stays within its budget and what was used recently survives.
///
/// A store is known by the address of its `Arc`; a weak reference to it is kept while
/// any of its objects is, so the address cannot be reused by another store meanwhile.
#[derive(Debug)]
struct SharedObjects {
    budget: usize,
    inner: Mutex<Generations>,
}

type StoreId = usize;

#[derive(Debug, Default)]
struct Generations {
    newer: HashMap<StoreId, HashMap<String, Bytes>>,
    newer_bytes: usize,
    newer_count: usize,
    older: HashMap<StoreId, HashMap<String, Bytes>>,
    older_bytes: usize,
    older_count: usize,
    stores: HashMap<StoreId, Weak<dyn Storage>>,
}

/// What an entry counts against the budget beyond its key and bytes: map and `Bytes`
/// bookkeeping, roughly.
const ENTRY_OVERHEAD: usize = 96;

fn store_id(storage: &Arc<dyn Storage>) -> StoreId {
    Arc::as_ptr(storage).cast::<()>() as usize
}

/// The largest loose object the host inflates for the guest: core's default object limit
/// and room for the loose header.
const INFLATE_CAP: u64 = (100 << 20) + 64;

/// A loose object as the guest reads it fastest: inflated here, in native code (several
/// times faster than in the guest), when it is a zlib stream of at most [`INFLATE_CAP`]
/// bytes. Core takes a loose object inflated as it takes one rebuilt from a pack, and
/// still checks every byte against its id. Anything else (another key, a stream that is
/// damaged, cut or larger) goes as stored, for the guest to refuse with its own error.
fn inflated(key: &str, value: Option<Vec<u8>>) -> Option<Vec<u8>> {
    inflated_within(key, value, INFLATE_CAP)
}

fn inflated_within(key: &str, value: Option<Vec<u8>>, cap: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let stored = value?;
    if !is_loose_object(key) || stored.first().is_none_or(|b| b & 0x0f != 8) {
        return Some(stored);
    }
    let mut raw = Vec::with_capacity(
        stored
            .len()
            .saturating_mul(3)
            .min(usize::try_from(cap).unwrap_or(usize::MAX)),
    );
    let inflated = flate2::read::ZlibDecoder::new(stored.as_slice())
        .take(cap.saturating_add(1))
        .read_to_end(&mut raw);
    Some(match inflated {
        Ok(n) if (n as u64) <= cap => raw,
        _ => stored,
    })
}

/// `objects/` + two hex digits + `/` + the rest of a SHA-1 or SHA-256 id in hex: the
/// only keys whose value never changes.
fn is_loose_object(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("objects/") else {
        return false;
    };
    matches!(rest.len(), 41 | 65)
        && rest.bytes().enumerate().all(|(i, b)| {
            if i == 2 {
                b == b'/'
            } else {
                matches!(b, b'0'..=b'9' | b'a'..=b'f')
            }
        })
}

impl SharedObjects {
    fn new(budget: usize) -> Self {
        SharedObjects {
            budget,
            inner: Mutex::new(Generations::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // The maps are consistent after every statement; a panic elsewhere cannot leave
        // them half-changed.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of objects held and their cost in bytes.
    fn size(&self) -> (usize, usize) {
        let g = self.lock();
        (g.newer_count + g.older_count, g.newer_bytes + g.older_bytes)
    }

    fn get(&self, storage: &Arc<dyn Storage>, key: &str) -> Option<Bytes> {
        if !is_loose_object(key) {
            return None;
        }
        let id = store_id(storage);
        let mut g = self.lock();
        if let Some(bytes) = g.newer.get(&id).and_then(|objects| objects.get(key)) {
            return Some(bytes.clone());
        }
        let bytes = g.older.get_mut(&id)?.remove(key)?;
        g.older_bytes = g.older_bytes.saturating_sub(cost(key, &bytes));
        g.older_count = g.older_count.saturating_sub(1);
        self.add(&mut g, storage, key.to_owned(), bytes.clone());
        Some(bytes)
    }

    fn insert(&self, storage: &Arc<dyn Storage>, objects: impl IntoIterator<Item = (String, Bytes)>) {
        let mut g = self.lock();
        for (key, bytes) in objects {
            if is_loose_object(&key) {
                self.add(&mut g, storage, key, bytes);
            }
        }
    }

    fn remove(&self, storage: &Arc<dyn Storage>, keys: &[String]) {
        let id = store_id(storage);
        let mut g = self.lock();
        for key in keys {
            if let Some(bytes) = g.newer.get_mut(&id).and_then(|objects| objects.remove(key)) {
                g.newer_bytes = g.newer_bytes.saturating_sub(cost(key, &bytes));
                g.newer_count = g.newer_count.saturating_sub(1);
            }
            if let Some(bytes) = g.older.get_mut(&id).and_then(|objects| objects.remove(key)) {
                g.older_bytes = g.older_bytes.saturating_sub(cost(key, &bytes));
                g.older_count = g.older_count.saturating_sub(1);
            }
        }
    }

    /// Put one object into the newer generation, turning generations over first if it
    /// would not fit.
    fn add(&self, g: &mut Generations, storage: &Arc<dyn Storage>, key: String, bytes: Bytes) {
        let half = self.budget / 2;
        let weight = cost(&key, &bytes);
        if weight > half {
            return;
        }
        let id = store_id(storage);
        if g.newer.get(&id).is_some_and(|objects| objects.contains_key(&key)) {
            return;
        }
        if g.newer_bytes + weight > half {
            g.older = std::mem::take(&mut g.newer);
            g.older_bytes = std::mem::take(&mut g.newer_bytes);
            g.older_count = std::mem::take(&mut g.newer_count);
            // Objects of stores that are gone can never be asked for again.
            let Generations { older, stores, .. } = &mut *g;
            older.retain(|id, _| stores.get(id).is_some_and(|store| store.strong_count() > 0));
            stores.retain(|id, _| older.contains_key(id));
            g.older_count = g.older.values().map(HashMap::len).sum();
            g.older_bytes = g
                .older
                .values()
                .flat_map(|objects| objects.iter().map(|(key, bytes)| cost(key, bytes)))
                .sum();
        }
        g.stores.entry(id).or_insert_with(|| Arc::downgrade(storage));
        g.newer.entry(id).or_default().insert(key, bytes);
        g.newer_bytes += weight;
        g.newer_count += 1;
    }
}

fn cost(key: &str, bytes: &Bytes) -> usize {
    key.len() + bytes.len() + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    fn key(n: usize) -> String {
        format!("objects/{:02x}/{n:038x}", n % 256)
    }

    #[test]
    fn the_host_inflates_only_a_sound_loose_object_within_its_cap() {
        let raw = b"blob 12\0hello world\n".to_vec();
        let stored = {
            use std::io::Write;
            let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            zlib.write_all(&raw).expect("compressed");
            zlib.finish().expect("compressed")
        };
        let loose = key(7);
        assert_eq!(inflated_within(&loose, Some(stored.clone()), 64), Some(raw.clone()));
        // At the cap exactly, and one byte over it: left for the guest.
        let len = raw.len() as u64;
        assert_eq!(inflated_within(&loose, Some(stored.clone()), len), Some(raw.clone()));
        assert_eq!(
            inflated_within(&loose, Some(stored.clone()), len - 1),
            Some(stored.clone())
        );
        // Not a loose object's key, already inflated, cut short, absent: as they are.
        assert_eq!(
            inflated_within("refs/heads/main", Some(stored.clone()), 64),
            Some(stored.clone())
        );
        assert_eq!(inflated_within(&loose, Some(raw.clone()), 64), Some(raw.clone()));
        let cut = stored[..stored.len() - 2].to_vec();
        assert_eq!(inflated_within(&loose, Some(cut.clone()), 64), Some(cut));
        assert_eq!(inflated_within(&loose, None, 64), None);
    }

    fn store() -> Arc<dyn Storage> {
        Arc::new(MemoryStorage::new())
    }

    #[test]
    fn only_loose_object_keys_are_kept() {
        assert!(is_loose_object(&key(7)));
        assert!(is_loose_object(&format!("objects/ab/{}", "c".repeat(62))));
        for other in [
            "HEAD",
            "refs/namespaces/a/refs/heads/main",
            "objects/info/packs",
            "objects/pack/pack-0000000000000000000000000000000000000000.pack",
            "objects/AB/cccccccccccccccccccccccccccccccccccccc",
            "objects/ab/ccc",
        ] {
            assert!(!is_loose_object(other), "{other}");
        }
        let cache = SharedObjects::new(1 << 20);
        let storage = store();
        cache.insert(
            &storage,
            [
                ("objects/info/packs".to_owned(), Bytes::from_static(b"P pack-1.pack\n")),
                (key(1), Bytes::from_static(b"one")),
            ],
        );
        assert_eq!(cache.get(&storage, "objects/info/packs"), None);
        assert_eq!(cache.get(&storage, &key(1)).as_deref(), Some(&b"one"[..]));
        assert_eq!(cache.size().0, 1);
    }

    #[test]
    fn stores_do_not_share_objects() {
        let cache = SharedObjects::new(1 << 20);
        let (a, b) = (store(), store());
        cache.insert(&a, [(key(1), Bytes::from_static(b"one"))]);
        assert!(cache.get(&a, &key(1)).is_some());
        assert!(cache.get(&b, &key(1)).is_none());
        cache.remove(&a, &[key(1)]);
        assert!(cache.get(&a, &key(1)).is_none());
        assert_eq!(cache.size(), (0, 0));
    }

    #[test]
    fn stays_within_budget_and_keeps_what_is_used() {
        let budget = 100 * (key(0).len() + 100 + ENTRY_OVERHEAD);
        let cache = SharedObjects::new(budget);
        let storage = store();
        let value = Bytes::from(vec![1; 100]);
        cache.insert(&storage, [(key(0), value.clone())]);
        for n in 1..1000 {
            cache.insert(&storage, [(key(n), value.clone())]);
            // Key 0 is used all along, so it stays.
            assert!(cache.get(&storage, &key(0)).is_some(), "lost at {n}");
            assert!(cache.size().1 <= budget);
        }
        assert!(cache.get(&storage, &key(1)).is_none(), "an unused early object stayed");
        assert!(cache.get(&storage, &key(999)).is_some());
        // Too large for the cache: not kept, and nothing else is dropped for it.
        let before = cache.size();
        cache.insert(&storage, [(key(5000), Bytes::from(vec![0; budget]))]);
        assert_eq!(cache.size(), before);
    }

    #[test]
    fn objects_of_dropped_stores_go_at_the_next_turn() {
        let budget = 10 * (key(0).len() + 10 + ENTRY_OVERHEAD);
        let cache = SharedObjects::new(budget);
        let (kept, dropped) = (store(), store());
        cache.insert(&dropped, (0..4).map(|n| (key(n), Bytes::from(vec![0; 10]))));
        drop(dropped);
        cache.insert(&kept, (10..15).map(|n| (key(n), Bytes::from(vec![0; 10]))));
        let g = cache.lock();
        assert_eq!(g.stores.len(), 1, "{:?}", g.stores.keys());
        assert_eq!(g.older_count + g.newer_count, 5);
    }
}
