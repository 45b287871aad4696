//! A blocking driver over a small object-store trait, and an in-memory store.
//!
//! This is the convenience for native callers and tests; the state machines are the API.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    object::NewObject,
    step::{Operation, Step, StorageError},
};

/// Where objects live, as the blocking driver sees it.
pub trait ObjectStore {
    /// The stored (loose, compressed) bytes of each object, `None` where absent, in order.
    fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Option<Vec<u8>>>, StorageError>;
    /// Store objects; an object already present is left as it is.
    fn put_many(&self, objects: &[NewObject]) -> Result<(), StorageError>;
}

/// Run `op` to completion against `store`, keeping what it reads in `cache`.
pub fn run<O: Operation>(op: &mut O, cache: &mut ObjectCache, store: &impl ObjectStore) -> Result<O::Output, O::Error> {
    loop {
        match op.poll(cache)? {
            Step::Get(ids) => {
                let objects = store.get_many(&ids)?;
                op.provide(cache, objects)?;
            }
            Step::Done(output) => return Ok(output),
        }
    }
}

/// Request counts of a [`MemoryStore`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// `get_many` calls (rounds).
    pub get_rounds: u64,
    /// Objects asked for.
    pub gets: u64,
    /// `put_many` calls.
    pub put_rounds: u64,
    /// Objects written (including ones already present).
    pub puts: u64,
    /// Bytes written.
    pub put_bytes: u64,
}

/// Objects in memory, with request counters.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<HashMap<ObjectId, Vec<u8>>>,
    get_rounds: AtomicU64,
    gets: AtomicU64,
    put_rounds: AtomicU64,
    puts: AtomicU64,
    put_bytes: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The request counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            get_rounds: self.get_rounds.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            put_rounds: self.put_rounds.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            put_bytes: self.put_bytes.load(Ordering::Relaxed),
        }
    }

    /// Number of objects stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The stored bytes of `id`.
    pub fn get(&self, id: &ObjectId) -> Option<Vec<u8>> {
        self.lock().get(id).cloned()
    }

    /// Store raw bytes under `id` as they are, unverified (for tests that need bad data).
    pub fn insert_raw(&self, id: ObjectId, bytes: Vec<u8>) {
        self.lock().insert(id, bytes);
    }

    /// Every stored object id.
    pub fn ids(&self) -> Vec<ObjectId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectId, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-updated: every
        // critical section is a single map operation.
        self.objects.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ObjectStore for MemoryStore {
    fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.get_rounds.fetch_add(1, Ordering::Relaxed);
        self.gets.fetch_add(ids.len() as u64, Ordering::Relaxed);
        let objects = self.lock();
        Ok(ids.iter().map(|id| objects.get(id).cloned()).collect())
    }

    fn put_many(&self, new: &[NewObject]) -> Result<(), StorageError> {
        self.put_rounds.fetch_add(1, Ordering::Relaxed);
        self.puts.fetch_add(new.len() as u64, Ordering::Relaxed);
        let bytes: u64 = new.iter().map(|o| o.loose.len() as u64).sum();
        self.put_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut objects = self.lock();
        for object in new {
            objects.entry(object.id).or_insert_with(|| object.loose.clone());
        }
        Ok(())
    }
}
