//! A blocking driver over a small store trait, and an in-memory store.
//!
//! This is the convenience for native callers and tests; the state machines are the API.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
};

use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    object::{NewObject, loose_key},
    step::{Answer, CasOutcome, CasRef, Listed, LockRequest, Operation, Range, RefState, Step, StorageError},
};

/// Where objects (and, for stores that hold repositories, refs and locks) live, as the
/// blocking driver sees it. Only the object methods are required; the others answer
/// with an error saying the store does not support them.
pub trait ObjectStore {
    /// The stored (loose, compressed) bytes of each object, `None` where absent, in order;
    /// an object may be given inflated instead (`<kind> <size>\0<content>`).
    fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Option<Vec<u8>>>, StorageError>;
    /// Store objects; an object already present is left as it is.
    fn put_many(&self, objects: &[NewObject]) -> Result<(), StorageError>;

    /// Store files at their keys; a key already present is left as it is.
    fn write(&self, files: &[crate::step::Stored]) -> Result<(), StorageError> {
        Err(unsupported(
            "writing files",
            files.first().map_or("", |f| f.key.as_str()),
        ))
    }

    /// The stored bytes at each key, as they are, `None` where absent, in order (files
    /// that are not loose objects: `HEAD`, `packed-refs`, reflogs, loose refs).
    fn read(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        Err(unsupported("reading keys", keys.first().map_or("", String::as_str)))
    }
    /// The bytes of each range, `None` where its key is absent, in order. By default the
    /// whole keys are read and cut: a store that can read ranges should say so here.
    fn read_ranges(&self, ranges: &[Range]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let keys: Vec<String> = ranges.iter().map(|r| r.key.clone()).collect();
        Ok(self
            .read(&keys)?
            .into_iter()
            .zip(ranges)
            .map(|(bytes, range)| bytes.map(|bytes| cut(&bytes, range)))
            .collect())
    }
    /// The value and version of the ref at `key`.
    fn read_ref(&self, key: &str) -> Result<Option<RefState>, StorageError> {
        Err(unsupported("refs", key))
    }
    /// Compare-and-swap the ref `cas.key`.
    fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, StorageError> {
        Err(unsupported("refs", &cas.key))
    }
    /// Replace a file only if it still holds `swap.expected` ([`Step::Swap`]): `true`
    /// if it was replaced.
    fn swap(&self, swap: &crate::step::Swap) -> Result<bool, StorageError> {
        Err(unsupported("replacing files", &swap.key))
    }
    /// Every key under `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StorageError> {
        Err(unsupported("listing", prefix))
    }
    /// Delete `keys`; absent keys are fine.
    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        Err(unsupported("deletes", keys.first().map_or("", String::as_str)))
    }
    /// Take the lock, returning its token, or `None` if it is held.
    fn acquire(&self, lock: &LockRequest) -> Result<Option<String>, StorageError> {
        Err(unsupported("locks", &lock.name))
    }
    /// Release the lock if `token` still holds it.
    fn release(&self, name: &str, token: &str) -> Result<(), StorageError> {
        let _ = token;
        Err(unsupported("locks", name))
    }
    /// Send an HTTP request to a git remote.
    fn http(&self, request: &crate::step::HttpRequest) -> Result<crate::step::HttpResponse, StorageError> {
        Err(unsupported("HTTP", &request.url))
    }
    /// Wait `ms` milliseconds ([`Step::Wait`]: core met contention and chose the wait).
    /// By default it returns at once: core has no clock, and a store in memory has no
    /// other writer to make room for. A store shared with other threads or processes
    /// should sleep here; [`MemoryStore`] moves its clock instead.
    fn wait(&self, ms: u64) -> Result<(), StorageError> {
        let _ = ms;
        Ok(())
    }
}

/// The bytes of `range` within `bytes` (fewer where it reaches past the end).
pub fn cut(bytes: &[u8], range: &Range) -> Vec<u8> {
    let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(bytes.len());
    let end = usize::try_from(range.start.saturating_add(range.len))
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    bytes[start..end].to_vec()
}

fn unsupported(what: &str, key: &str) -> StorageError {
    format!("this store does not support {what} (at {key:?})").into()
}

/// Run `op` to completion against `store`, keeping what it reads in `cache`. The waits
/// core asks for after contention are the store's ([`ObjectStore::wait`]).
pub fn run<O: Operation>(op: &mut O, cache: &mut ObjectCache, store: &impl ObjectStore) -> Result<O::Output, O::Error>
where
    O::Error: From<crate::object::Error>,
{
    // Objects that are not loose are read from the store's packs.
    let mut op = crate::pack::Packed::new(op);
    loop {
        if let Some(output) = step(&mut op, cache, store)? {
            return Ok(output);
        }
    }
}

/// Carry out exactly one step of `op`: its result once it is done, else `None`. Drivers
/// that interleave many operations (simulations, schedulers) call this in their own order.
/// Wrap `op` in [`Packed`](crate::pack::Packed) to read packed objects too, as [`run`]
/// does.
pub fn step<O: Operation>(
    op: &mut O,
    cache: &mut ObjectCache,
    store: &impl ObjectStore,
) -> Result<Option<O::Output>, O::Error> {
    let polled = op.poll(cache)?;
    carry(op, cache, store, polled)
}

/// Carry out `step`, which `op` asked for, against `store` and answer it: its result
/// once it is done, else `None`. A driver that looks at each step before it is carried
/// out (a test that interleaves writers at chosen points) polls itself and calls this.
pub fn carry<O: Operation>(
    op: &mut O,
    cache: &mut ObjectCache,
    store: &impl ObjectStore,
    step: Step<O::Output>,
) -> Result<Option<O::Output>, O::Error> {
    let answer = match step {
        Step::Get(ids) => {
            let objects = store.get_many(&ids)?;
            op.provide(cache, objects)?;
            return Ok(None);
        }
        Step::Done(output) => return Ok(Some(output)),
        Step::Put(objects) => {
            store.put_many(&objects)?;
            Answer::Put
        }
        Step::Write(files) => {
            store.write(&files)?;
            Answer::Put
        }
        Step::Read(keys) => Answer::Read(store.read(&keys)?),
        Step::ReadRanges(ranges) => Answer::Ranges(store.read_ranges(&ranges)?),
        Step::ReadRef(key) => Answer::Ref(store.read_ref(&key)?),
        Step::CasRef(cas) => Answer::Cas(store.cas_ref(&cas)?),
        Step::Swap(swap) => {
            if !swap.allowed() {
                return Err(StorageError::from(format!("a swap of {:?} is not allowed", swap.key)).into());
            }
            Answer::Swapped(store.swap(&swap)?)
        }
        Step::List(prefix) => Answer::List(store.list(&prefix)?),
        Step::Delete(keys) => {
            store.delete(&keys)?;
            Answer::Deleted
        }
        Step::Lock(lock) => Answer::Lock(store.acquire(&lock)?),
        Step::Unlock { name, token } => {
            store.release(&name, &token)?;
            Answer::Unlocked
        }
        Step::Http(request) => Answer::Http(store.http(&request)?),
        Step::Wait { ms } => {
            store.wait(ms)?;
            Answer::Waited
        }
    };
    op.answer(cache, answer)?;
    Ok(None)
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
    /// Ref reads, compare-and-swaps, lists, deletes and lock calls.
    pub other: u64,
    /// Waits asked for (not requests: nothing reaches storage).
    pub waits: u64,
    /// Milliseconds waited: how far the waits moved the clock.
    pub waited_ms: u64,
}

impl Counts {
    /// Every request, each batch counted once.
    pub fn requests(&self) -> u64 {
        self.get_rounds + self.put_rounds + self.other
    }
}

#[derive(Debug, Default)]
struct Stored {
    bytes: Vec<u8>,
    modified_ms: i64,
}

#[derive(Debug, Default)]
struct State {
    objects: HashMap<ObjectId, Stored>,
    refs: HashMap<String, (ObjectId, u64, i64)>,
    /// Keys that are neither objects nor refs written by a compare-and-swap: `HEAD`,
    /// reflogs, `packed-refs`, files a test puts there.
    files: HashMap<String, Stored>,
    locks: HashMap<String, (String, i64)>,
    next_version: u64,
}

/// A store in memory: objects, refs with compare-and-swap, locks, request counters, and
/// a clock that tests set. Waiting moves the clock forward instead of sleeping, so a
/// test sees leases run out as time passes, without taking that time.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    now_ms: AtomicI64,
    get_rounds: AtomicU64,
    gets: AtomicU64,
    put_rounds: AtomicU64,
    puts: AtomicU64,
    put_bytes: AtomicU64,
    other: AtomicU64,
    waits: AtomicU64,
    waited_ms: AtomicU64,
}

impl MemoryStore {
    /// An empty store whose clock reads 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the clock that stamps writes and expires locks, in ms since the epoch.
    pub fn set_time_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::Relaxed);
    }

    fn now(&self) -> i64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// The request counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            get_rounds: self.get_rounds.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            put_rounds: self.put_rounds.load(Ordering::Relaxed),
            puts: self.puts.load(Ordering::Relaxed),
            put_bytes: self.put_bytes.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            waited_ms: self.waited_ms.load(Ordering::Relaxed),
        }
    }

    /// Number of objects stored.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    /// `true` if no object is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().objects.is_empty()
    }

    /// The stored bytes of `id`.
    pub fn get(&self, id: &ObjectId) -> Option<Vec<u8>> {
        self.lock().objects.get(id).map(|s| s.bytes.clone())
    }

    /// Store raw bytes under `id` as they are, unverified (for tests that need bad data).
    pub fn insert_raw(&self, id: ObjectId, bytes: Vec<u8>) {
        let modified_ms = self.now();
        self.lock().objects.insert(id, Stored { bytes, modified_ms });
    }

    /// Store `bytes` at `key` as they are: a file of the repository that is not a loose
    /// object (`HEAD`, a reflog, `packed-refs`, a symbolic ref), stamped with the clock.
    pub fn insert_file(&self, key: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let modified_ms = self.now();
        let stored = Stored {
            bytes: bytes.into(),
            modified_ms,
        };
        self.lock().files.insert(key.into(), stored);
    }

    /// The bytes of a file stored with [`MemoryStore::insert_file`], if still there.
    pub fn file(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().files.get(key).map(|s| s.bytes.clone())
    }

    /// Remove an object (for tests that need a missing one).
    pub fn remove(&self, id: &ObjectId) {
        self.lock().objects.remove(id);
    }

    /// Every stored object id.
    pub fn ids(&self) -> Vec<ObjectId> {
        self.lock().objects.keys().copied().collect()
    }

    /// Every ref, as (key, value).
    pub fn refs(&self) -> Vec<(String, ObjectId)> {
        let mut refs: Vec<_> = self.lock().refs.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        refs.sort();
        refs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few map operations that cannot panic halfway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count_other(&self) {
        self.other.fetch_add(1, Ordering::Relaxed);
    }
}

impl ObjectStore for MemoryStore {
    fn get_many(&self, ids: &[ObjectId]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.get_rounds.fetch_add(1, Ordering::Relaxed);
        self.gets.fetch_add(ids.len() as u64, Ordering::Relaxed);
        let state = self.lock();
        Ok(ids
            .iter()
            .map(|id| state.objects.get(id).map(|s| s.bytes.clone()))
            .collect())
    }

    fn read(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.get_rounds.fetch_add(1, Ordering::Relaxed);
        self.gets.fetch_add(keys.len() as u64, Ordering::Relaxed);
        let state = self.lock();
        Ok(keys
            .iter()
            .map(|key| {
                if let Some(stored) = state.files.get(key) {
                    return Some(stored.bytes.clone());
                }
                if let Some((value, _, _)) = state.refs.get(key) {
                    return Some(format!("{value}\n").into_bytes());
                }
                let (fan, tail) = key.strip_prefix(crate::store::OBJECTS)?.split_once('/')?;
                let id = crate::id::from_hex(format!("{fan}{tail}").as_bytes())?;
                state.objects.get(&id).map(|s| s.bytes.clone())
            })
            .collect())
    }

    fn read_ranges(&self, ranges: &[Range]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.get_rounds.fetch_add(1, Ordering::Relaxed);
        self.gets.fetch_add(ranges.len() as u64, Ordering::Relaxed);
        let state = self.lock();
        Ok(ranges
            .iter()
            .map(|range| state.files.get(&range.key).map(|s| cut(&s.bytes, range)))
            .collect())
    }

    fn put_many(&self, new: &[NewObject]) -> Result<(), StorageError> {
        self.put_rounds.fetch_add(1, Ordering::Relaxed);
        self.puts.fetch_add(new.len() as u64, Ordering::Relaxed);
        let bytes: u64 = new.iter().map(|o| o.loose.len() as u64).sum();
        self.put_bytes.fetch_add(bytes, Ordering::Relaxed);
        let now = self.now();
        let mut state = self.lock();
        // An object already stored keeps its bytes and gets a fresh time, as every
        // storage backend does, so a GC never takes it for old garbage while a commit
        // that reuses it is in flight.
        for object in new {
            state
                .objects
                .entry(object.id)
                .and_modify(|stored| stored.modified_ms = now)
                .or_insert_with(|| Stored {
                    bytes: object.loose.clone(),
                    modified_ms: now,
                });
        }
        Ok(())
    }

    fn write(&self, files: &[crate::step::Stored]) -> Result<(), StorageError> {
        self.put_rounds.fetch_add(1, Ordering::Relaxed);
        self.puts.fetch_add(files.len() as u64, Ordering::Relaxed);
        let bytes: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
        self.put_bytes.fetch_add(bytes, Ordering::Relaxed);
        let now = self.now();
        let mut state = self.lock();
        for file in files {
            state
                .files
                .entry(file.key.clone())
                .and_modify(|stored| stored.modified_ms = now)
                .or_insert_with(|| Stored {
                    bytes: file.bytes.clone(),
                    modified_ms: now,
                });
        }
        Ok(())
    }

    fn read_ref(&self, key: &str) -> Result<Option<RefState>, StorageError> {
        self.count_other();
        Ok(self.lock().refs.get(key).map(|(value, version, _)| RefState {
            value: *value,
            version: version.to_string(),
        }))
    }

    fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, StorageError> {
        self.count_other();
        let now = self.now();
        let mut state = self.lock();
        let current = state.refs.get(&cas.key).map(|(value, version, _)| RefState {
            value: *value,
            version: version.to_string(),
        });
        if current != cas.expected {
            return Ok(CasOutcome::Lost { current });
        }
        match cas.new {
            Some(new) => {
                state.next_version += 1;
                let version = state.next_version;
                state.refs.insert(cas.key.clone(), (new, version, now));
                Ok(CasOutcome::Won {
                    version: version.to_string(),
                })
            }
            None => {
                state.refs.remove(&cas.key);
                Ok(CasOutcome::Won { version: String::new() })
            }
        }
    }

    fn swap(&self, swap: &crate::step::Swap) -> Result<bool, StorageError> {
        self.count_other();
        let now = self.now();
        let mut state = self.lock();
        let current = state.files.get(&swap.key).map(|stored| stored.bytes.as_slice());
        if current != swap.expected.as_deref() {
            return Ok(false);
        }
        match &swap.new {
            Some(bytes) => {
                state.files.insert(
                    swap.key.clone(),
                    Stored {
                        bytes: bytes.clone(),
                        modified_ms: now,
                    },
                );
            }
            None => {
                state.files.remove(&swap.key);
            }
        }
        Ok(true)
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StorageError> {
        self.count_other();
        let state = self.lock();
        let mut out: Vec<Listed> = state
            .objects
            .iter()
            .map(|(id, s)| Listed {
                key: loose_key(id),
                size: s.bytes.len() as u64,
                modified_ms: s.modified_ms,
            })
            .chain(state.refs.iter().map(|(key, (value, _, modified_ms))| Listed {
                key: key.clone(),
                size: value.to_string().len() as u64 + 1,
                modified_ms: *modified_ms,
            }))
            .chain(state.files.iter().map(|(key, s)| Listed {
                key: key.clone(),
                size: s.bytes.len() as u64,
                modified_ms: s.modified_ms,
            }))
            .filter(|l| l.key.starts_with(prefix))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        self.count_other();
        let mut state = self.lock();
        for key in keys {
            if let Some(hex) = key.strip_prefix("objects/") {
                let hex: String = hex.chars().filter(|c| *c != '/').collect();
                if let Some(id) = crate::id::from_hex(hex.as_bytes()) {
                    state.objects.remove(&id);
                }
            } else {
                state.refs.remove(key);
            }
            state.files.remove(key);
        }
        Ok(())
    }

    fn acquire(&self, lock: &LockRequest) -> Result<Option<String>, StorageError> {
        self.count_other();
        let now = self.now();
        let mut state = self.lock();
        if let Some((_, expires)) = state.locks.get(&lock.name)
            && *expires > now
        {
            return Ok(None);
        }
        state.next_version += 1;
        let token = format!("token-{}", state.next_version);
        let expires = now.saturating_add(i64::try_from(lock.ttl_ms).unwrap_or(i64::MAX));
        state.locks.insert(lock.name.clone(), (token.clone(), expires));
        Ok(Some(token))
    }

    fn release(&self, name: &str, token: &str) -> Result<(), StorageError> {
        self.count_other();
        let mut state = self.lock();
        if state.locks.get(name).is_some_and(|(held, _)| held == token) {
            state.locks.remove(name);
        }
        Ok(())
    }

    fn wait(&self, ms: u64) -> Result<(), StorageError> {
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.waited_ms.fetch_add(ms, Ordering::Relaxed);
        self.now_ms
            .fetch_add(i64::try_from(ms).unwrap_or(i64::MAX), Ordering::Relaxed);
        Ok(())
    }
}
