//! A store wrapped to count its requests by kind and, optionally, to add a fixed delay to
//! each: how many requests an operation makes, and what they cost over a slow link.
//!
//! Requests are counted as an object store (S3) receives them, which has no batch read
//! or write: a [`Storage::get_many`] of n keys is n GETs, a [`Storage::put_many`] of n
//! objects n PUTs, a [`Storage::delete`] of n keys n DELETEs, and a [`Storage::list`] one
//! request per page of [`LIST_PAGE`] keys. The delay is added once per request; the
//! requests of one call are sequential, as every backend makes them (the driver runs
//! several calls at once). Requests a backend makes on its own (a first write's check of
//! conditional writes, the re-read after a lost compare-and-swap) are not seen here.
//!
//! Test and benchmark code, not part of the product: `host/tests/component` and
//! `host/benches/host.rs` include this file (`#[path]`), each using part of it.

#![allow(dead_code)]

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use snapgit_core::step::{CasOutcome, CasRef, Listed, RefState};

use snapgit_host::storage::{Error, Object, Storage};

/// The keys one list request returns at most (S3's `ListObjectsV2` page).
pub const LIST_PAGE: usize = 1000;

/// Requests made, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Object reads: one per key of [`Storage::get_many`].
    pub get: u64,
    /// Object writes: one per object of [`Storage::put_many`].
    pub put: u64,
    /// List requests: one per page of [`LIST_PAGE`] keys (at least one per call).
    pub list: u64,
    /// Ref reads ([`Storage::read_ref`]).
    pub read_ref: u64,
    /// Ref compare-and-swaps ([`Storage::cas_ref`]).
    pub cas: u64,
    /// Deletes: one per key of [`Storage::delete`].
    pub delete: u64,
}

impl Counts {
    /// Every request, of any kind.
    pub fn total(&self) -> u64 {
        self.get + self.put + self.list + self.read_ref + self.cas + self.delete
    }

    /// The requests made since `earlier` (a snapshot of the same store's counts).
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            get: self.get.saturating_sub(earlier.get),
            put: self.put.saturating_sub(earlier.put),
            list: self.list.saturating_sub(earlier.list),
            read_ref: self.read_ref.saturating_sub(earlier.read_ref),
            cas: self.cas.saturating_sub(earlier.cas),
            delete: self.delete.saturating_sub(earlier.delete),
        }
    }
}

impl fmt::Display for Counts {
    /// The total and the kinds that occurred: `6 (1 ref, 4 put, 1 cas)`, or `0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.total())?;
        let kinds = [
            (self.list, "list"),
            (self.read_ref, "ref"),
            (self.get, "get"),
            (self.put, "put"),
            (self.cas, "cas"),
            (self.delete, "delete"),
        ];
        let mut first = true;
        for (n, kind) in kinds.into_iter().filter(|(n, _)| *n > 0) {
            write!(f, "{}{n} {kind}", if first { " (" } else { ", " })?;
            first = false;
        }
        if !first {
            write!(f, ")")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Counters {
    get: AtomicU64,
    put: AtomicU64,
    list: AtomicU64,
    read_ref: AtomicU64,
    cas: AtomicU64,
    delete: AtomicU64,
}

/// A store that counts the requests made to `inner` and delays each by a fixed time.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn Storage>,
    delay: Duration,
    counters: Counters,
}

impl Metered {
    /// Count the requests made to `inner`, without delay.
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Metered {
            inner,
            delay: Duration::ZERO,
            counters: Counters::default(),
        }
    }

    /// Add `delay` to every request (see the module overview for what one request is).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The delay added to each request.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The store being measured.
    pub fn inner(&self) -> &Arc<dyn Storage> {
        &self.inner
    }

    /// The requests made so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            get: c.get.load(Ordering::Relaxed),
            put: c.put.load(Ordering::Relaxed),
            list: c.list.load(Ordering::Relaxed),
            read_ref: c.read_ref.load(Ordering::Relaxed),
            cas: c.cas.load(Ordering::Relaxed),
            delete: c.delete.load(Ordering::Relaxed),
        }
    }

    /// Count `n` requests on `counter` and wait their delay, one after another.
    async fn requests(&self, counter: &AtomicU64, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        counter.fetch_add(n, Ordering::Relaxed);
        if self.delay.is_zero() || n == 0 {
            return;
        }
        let wait = self.delay.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        tokio::time::sleep(wait).await;
    }
}

#[async_trait::async_trait]
impl Storage for Metered {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        self.requests(&self.counters.get, keys.len()).await;
        self.inner.get_many(keys).await
    }

    async fn put_many(&self, objects: Vec<Object>) -> Result<(), Error> {
        self.requests(&self.counters.put, objects.len()).await;
        self.inner.put_many(objects).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let listed = self.inner.list(prefix).await?;
        self.requests(&self.counters.list, listed.len().div_ceil(LIST_PAGE).max(1))
            .await;
        Ok(listed)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        self.requests(&self.counters.delete, keys.len()).await;
        self.inner.delete(keys).await
    }

    async fn read_ref(&self, key: &str) -> Result<Option<RefState>, Error> {
        self.requests(&self.counters.read_ref, 1).await;
        self.inner.read_ref(key).await
    }

    async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, Error> {
        self.requests(&self.counters.cas, 1).await;
        self.inner.cas_ref(cas).await
    }

    async fn swap(&self, swap: &snapgit_core::step::Swap) -> Result<bool, Error> {
        self.requests(&self.counters.cas, 1).await;
        self.inner.swap(swap).await
    }
}
