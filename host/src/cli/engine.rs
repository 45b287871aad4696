//! Which engine carries out the `snapgit` command's operations, and the one place where
//! each engine's results become the command's values.
//!
//! - [`EngineKind::Component`], the default (feature `component`): snapgit-core as the
//!   WebAssembly component, embedded in the binary ([`COMPONENT`]) and run under wasmtime
//!   ([`crate::runtime`]), sandboxed, with a memory limit and a deadline per call. Its
//!   compiled code is kept in a cache folder ([`default_cache_dir`]), so a process loads
//!   it instead of compiling it.
//! - [`EngineKind::Native`]: snapgit-core compiled into the binary, driven by
//!   [`crate::driver`] — the only engine of a build without the `component` feature.
//!
//! Both run core's operations through one interface, `Engine::run`: an
//! [`api::Request`] in, an [`api::Output`] out, whichever engine. The component engine
//! carries them across as the WIT types through the conversion the component itself is
//! built with, so everything the command does around an operation is one code path; the
//! tests run the commands under both engines and compare their JSON.
//!
//! The component runs `gc` as one call, so its progress is what the host sees of it: the
//! storage calls made so far ([`GcProgress::Calls`]).

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use snapgit_core::{HashKind, ObjectCache, Operation, api, gc, step::Misuse};

use super::Error;
use crate::{driver, lock::Locks, storage::Storage};

/// The environment variable that picks the engine (`component` or `native`).
pub const ENGINE_ENV: &str = "SNAPGIT_ENGINE";

/// The environment variable naming the folder for compiled code (empty: keep none).
pub const CACHE_DIR_ENV: &str = "SNAPGIT_CACHE_DIR";

/// The core component (`wasm/component`), as build.rs built or found it.
#[cfg(feature = "component")]
pub const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/snapgit.wasm"));

/// [`COMPONENT`]'s SHA-256 in hex, computed when the binary was built: it names the
/// component's compiled code in the cache folder.
#[cfg(feature = "component")]
pub const COMPONENT_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/snapgit.wasm.sha256"));

/// Which engine runs core's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// snapgit-core as a WebAssembly component under wasmtime.
    Component,
    /// snapgit-core compiled into the binary.
    Native,
}

impl EngineKind {
    /// The component when this build has it (feature `component`), else native.
    pub const DEFAULT: EngineKind = if cfg!(feature = "component") {
        EngineKind::Component
    } else {
        EngineKind::Native
    };

    /// Its name: `component` or `native`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Component => "component",
            EngineKind::Native => "native",
        }
    }
}

impl Default for EngineKind {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for EngineKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "component" => Ok(EngineKind::Component),
            "native" => Ok(EngineKind::Native),
            _ => Err(Error::invalid(format!(
                "unknown engine {text:?}: expected \"component\" or \"native\""
            ))),
        }
    }
}

/// Where compiled code is kept unless told otherwise: `$SNAPGIT_CACHE_DIR` (empty: no
/// cache), else `$XDG_CACHE_HOME/snapgit/wasmtime`, else `$HOME/.cache/snapgit/wasmtime`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV) {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("snapgit").join("wasmtime"))
}

/// How far a `gc` has got, as far as the engine can tell.
#[derive(Debug, Clone, Copy)]
pub enum GcProgress<'a> {
    /// Core's own account, after every step (native engine).
    Core(&'a gc::Progress),
    /// The storage calls made so far (component engine: the collection is one call).
    Calls(StorageCalls),
}

/// Storage calls a component call made, counted by the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageCalls {
    /// Refs read.
    pub refs_read: u64,
    /// Objects read.
    pub objects_read: u64,
    /// Keys listed.
    pub keys_listed: u64,
    /// Keys deleted.
    pub deleted: u64,
}

/// A store, optional locks, and the engine that runs operations against them.
#[derive(Debug)]
pub(crate) struct Engine {
    storage: Arc<dyn Storage>,
    locks: Option<Arc<dyn Locks>>,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// Core in this process; the cache lives as long as the session.
    Native(ObjectCache),
    /// The component: the runtime, and one instance for the session's calls (its object
    /// cache lasts as long) over the storage and locks its imports reach.
    #[cfg(feature = "component")]
    Component {
        runtime: Arc<crate::runtime::Runtime>,
        session: crate::runtime::Session,
    },
}

impl Engine {
    /// `kind` over `storage` and `locks`; the component is loaded from `cache_dir` when
    /// compiled there before.
    pub(crate) fn new(
        kind: EngineKind,
        storage: Arc<dyn Storage>,
        locks: Option<Arc<dyn Locks>>,
        cache_dir: Option<&Path>,
    ) -> Result<Self, Error> {
        let inner = match kind {
            EngineKind::Native => Inner::Native(ObjectCache::new(HashKind::Sha1)),
            #[cfg(feature = "component")]
            EngineKind::Component => {
                let mut io = crate::runtime::Io::new(storage.clone());
                io.locks = locks.clone();
                Inner::Component {
                    runtime: component::runtime(cache_dir)?,
                    session: crate::runtime::Session::new(&io),
                }
            }
            #[cfg(not(feature = "component"))]
            EngineKind::Component => {
                let _ = cache_dir;
                return Err(Error::invalid(
                    "this snapgit was built without the component engine (cargo feature `component`); use --engine native",
                ));
            }
        };
        Ok(Engine { storage, locks, inner })
    }

    /// Which engine this is.
    pub(crate) fn kind(&self) -> EngineKind {
        match self.inner {
            Inner::Native(_) => EngineKind::Native,
            #[cfg(feature = "component")]
            Inner::Component { .. } => EngineKind::Component,
        }
    }

    /// The store.
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Run one operation to completion, reporting the progress of long ones (footprint,
    /// gc) to `on_progress`: the one path every command takes, under either engine. The
    /// future is `Send` (so is `on_progress`), so a server may run it on any thread.
    pub(crate) async fn run(
        &mut self,
        request: api::Request,
        on_progress: &mut (dyn FnMut(GcProgress<'_>) + Send),
    ) -> Result<api::Output, Error> {
        match &mut self.inner {
            Inner::Native(cache) => {
                let mut op = Observed {
                    op: api::Op::new(cache, request)?,
                    on_step: |op: &api::Op| {
                        if let Some(progress) = op.progress() {
                            on_progress(GcProgress::Core(&progress));
                        }
                    },
                };
                let locks = self.locks.as_deref();
                Ok(driver::run(&mut op, cache, self.storage.as_ref(), locks).await?)
            }
            #[cfg(feature = "component")]
            Inner::Component { runtime, session } => {
                if matches!(
                    request,
                    api::Request::Collect(_) | api::Request::Compact(_) | api::Request::Footprint
                ) {
                    // Its own instance, metered: the kept one (objects gc may delete) goes.
                    session.release();
                    return component::counted(runtime, &self.storage, request, on_progress).await;
                }
                Ok(runtime.run_in(session, request).await?)
            }
        }
    }

    /// Objects core built for the next operations (a stat cache's trees:
    /// [`snapgit_core::worktree::StatCache::known_trees`]), so that they need not read
    /// them from storage. The native engine keeps them in its object cache; the
    /// component's runtime holds them inflated, as it holds what the component read
    /// ([`crate::runtime::Runtime::hold`]), and the component checks them as it reads.
    pub(crate) fn keep(&mut self, built: impl FnOnce() -> snapgit_core::cache::Built) {
        match &mut self.inner {
            Inner::Native(cache) => cache.keep(built()),
            #[cfg(feature = "component")]
            Inner::Component { runtime, .. } => runtime.hold(&self.storage, built().inflated()),
        }
    }

    /// Run one operation and take its output as the type it gives.
    pub(crate) async fn call<T: TryFrom<api::Output>>(&mut self, request: api::Request) -> Result<T, Error> {
        let name = request.name();
        let output = self.run(request, &mut |_| {}).await?;
        T::try_from(output).map_err(|_| Misuse(name).into())
    }
}

/// Drives an operation and reports its progress after every step.
struct Observed<O, F> {
    op: O,
    on_step: F,
}

impl<O: Operation, F: FnMut(&O)> Operation for Observed<O, F> {
    type Output = O::Output;
    type Error = O::Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<snapgit_core::Step<O::Output>, O::Error> {
        let step = self.op.poll(cache);
        (self.on_step)(&self.op);
        step
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), O::Error> {
        self.op.provide(cache, objects)
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: snapgit_core::step::Answer) -> Result<(), O::Error> {
        self.op.answer(cache, answer)
    }

    fn wants_graph(&self) -> bool {
        self.op.wants_graph()
    }

    fn fetches_promised(&self) -> bool {
        self.op.fetches_promised()
    }
}

/// The component's runtime, and the storage calls of its long operations.
#[cfg(feature = "component")]
mod component {
    use std::{
        collections::HashMap,
        path::{Path, PathBuf},
        sync::{
            Arc, Mutex, OnceLock,
            atomic::{AtomicU64, Ordering},
        },
        time::Duration,
    };

    use snapgit_core::{
        api,
        step::{CasOutcome, CasRef, Listed, RefState, Swap},
    };

    use super::{Error, GcProgress, StorageCalls};
    use crate::{
        runtime::{self as rt, Io, Runtime},
        storage::{self, Object, Storage},
    };

    /// One runtime per cache folder for the whole process: compiled (or loaded) once.
    /// Calls a command's runtime runs at once.
    const CLI_CALLS: u32 = 2;

    pub(super) fn runtime(cache_dir: Option<&Path>) -> Result<Arc<Runtime>, Error> {
        static RUNTIMES: OnceLock<Mutex<HashMap<Option<PathBuf>, Arc<Runtime>>>> = OnceLock::new();
        let runtimes = RUNTIMES.get_or_init(Default::default);
        let key = cache_dir.map(Path::to_owned);
        let mut runtimes = runtimes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(runtime) = runtimes.get(&key) {
            return Ok(runtime.clone());
        }
        let mut config = rt::Config {
            cache_dir: key.clone(),
            ..rt::Config::default()
        };
        // A command makes one call at a time: one slot of the pool, not a server's 64
        // (each slot's stack and guard pages are set up when the runtime is made).
        config.limits.concurrent_calls = CLI_CALLS;
        let runtime = Arc::new(Runtime::with_sha256(super::COMPONENT, super::COMPONENT_SHA256, config)?);
        runtimes.insert(key, runtime.clone());
        Ok(runtime)
    }

    /// A long operation as one call, with the storage calls it makes reported every
    /// tenth of a second.
    pub(super) async fn counted(
        runtime: &Runtime,
        storage: &Arc<dyn Storage>,
        request: api::Request,
        on_progress: &mut (dyn FnMut(GcProgress<'_>) + Send),
    ) -> Result<api::Output, Error> {
        let counted = Arc::new(Counted {
            inner: storage.clone(),
            counts: Counts::default(),
        });
        let io = Io::new(counted.clone());
        let mut call = std::pin::pin!(runtime.run(&io, request));
        loop {
            match tokio::time::timeout(Duration::from_millis(100), &mut call).await {
                Ok(result) => return Ok(result?),
                Err(_) => on_progress(GcProgress::Calls(counted.counts.get())),
            }
        }
    }

    #[derive(Debug, Default)]
    struct Counts {
        refs_read: AtomicU64,
        objects_read: AtomicU64,
        keys_listed: AtomicU64,
        deleted: AtomicU64,
    }

    impl Counts {
        fn get(&self) -> StorageCalls {
            StorageCalls {
                refs_read: self.refs_read.load(Ordering::Relaxed),
                objects_read: self.objects_read.load(Ordering::Relaxed),
                keys_listed: self.keys_listed.load(Ordering::Relaxed),
                deleted: self.deleted.load(Ordering::Relaxed),
            }
        }
    }

    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A store that counts what is asked of it.
    #[derive(Debug)]
    struct Counted {
        inner: Arc<dyn Storage>,
        counts: Counts,
    }

    #[async_trait::async_trait]
    impl Storage for Counted {
        fn location(&self) -> String {
            self.inner.location()
        }

        fn read_parallelism(&self) -> usize {
            self.inner.read_parallelism()
        }

        async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, storage::Error> {
            let found = self.inner.get_many(keys).await?;
            add(&self.counts.objects_read, keys.len());
            Ok(found)
        }

        async fn put_many(&self, objects: Vec<Object>) -> Result<(), storage::Error> {
            self.inner.put_many(objects).await
        }

        async fn list(&self, prefix: &str) -> Result<Vec<Listed>, storage::Error> {
            let listed = self.inner.list(prefix).await?;
            add(&self.counts.keys_listed, listed.len());
            Ok(listed)
        }

        async fn delete(&self, keys: &[String]) -> Result<(), storage::Error> {
            self.inner.delete(keys).await?;
            add(&self.counts.deleted, keys.len());
            Ok(())
        }

        async fn read_ref(&self, key: &str) -> Result<Option<RefState>, storage::Error> {
            let state = self.inner.read_ref(key).await?;
            add(&self.counts.refs_read, 1);
            Ok(state)
        }

        async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, storage::Error> {
            self.inner.cas_ref(cas).await
        }

        async fn swap(&self, swap: &Swap) -> Result<bool, storage::Error> {
            self.inner.swap(swap).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_named() {
        for kind in [EngineKind::Component, EngineKind::Native] {
            assert_eq!(kind.as_str().parse::<EngineKind>().expect("a name"), kind);
        }
        let err = "jit".parse::<EngineKind>().expect_err("not an engine");
        assert!(err.to_string().contains("\"jit\""), "{err}");
        assert_eq!(
            EngineKind::default() == EngineKind::Component,
            cfg!(feature = "component")
        );
    }
}
