//! A store in this process's memory: objects and refs in one sorted map behind a mutex.
//!
//! Versions are a counter that grows with every write of a ref, so a ref set back to an
//! earlier value still has a new version. Writes stamp the wall clock; a put of an
//! existing key leaves its bytes and refreshes its stamp.

use std::{collections::BTreeMap, sync::Mutex};

use snapgit_core::step::{CasOutcome, CasRef, Listed, RefState, Swap};

use super::{
    Error, Limits, Object, Storage, check_delete_key, check_key, check_prefix, check_swap, parse_ref, ref_bytes,
};
use crate::util::now_ms;

#[derive(Debug)]
struct Entry {
    bytes: Vec<u8>,
    modified_ms: i64,
    version: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    next_version: u64,
}

impl State {
    fn insert(&mut self, key: String, bytes: Vec<u8>) -> u64 {
        self.next_version += 1;
        let version = self.next_version;
        self.entries.insert(
            key,
            Entry {
                bytes,
                modified_ms: now_ms(),
                version,
            },
        );
        version
    }

    fn read_ref(&self, key: &str) -> Result<Option<RefState>, Error> {
        self.entries
            .get(key)
            .map(|entry| {
                Ok(RefState {
                    value: parse_ref(key, &entry.bytes)?,
                    version: entry.version.to_string(),
                })
            })
            .transpose()
    }
}

/// A store in memory. It starts with `HEAD`, like every store.
#[derive(Debug)]
pub struct MemoryStorage {
    state: Mutex<State>,
    limits: Limits,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// An empty store with default limits.
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// An empty store with these limits.
    pub fn with_limits(limits: Limits) -> Self {
        let mut state = State::default();
        state.insert("HEAD".to_owned(), snapgit_core::store::HEAD.as_bytes().to_vec());
        MemoryStorage {
            state: Mutex::new(state),
            limits,
        }
    }

    /// Set the modification time of `key`, for tests of time-based decisions (GC's grace
    /// period). Returns `false` if the key is absent.
    pub fn set_modified_ms(&self, key: &str, modified_ms: i64) -> bool {
        match self.lock().entries.get_mut(key) {
            Some(entry) => {
                entry.modified_ms = modified_ms;
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section is a few map operations that cannot panic halfway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    fn location(&self) -> String {
        "memory:".to_owned()
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        for key in keys {
            check_key(key)?;
        }
        let state = self.lock();
        keys.iter()
            .map(|key| match state.entries.get(key) {
                None => Ok(None),
                Some(entry) if entry.bytes.len() as u64 > self.limits.max_read_bytes => Err(Error::TooLarge {
                    key: key.clone(),
                    size: entry.bytes.len() as u64,
                    limit: self.limits.max_read_bytes,
                }),
                Some(entry) => Ok(Some(entry.bytes.clone())),
            })
            .collect()
    }

    async fn put_many(&self, objects: Vec<Object>) -> Result<(), Error> {
        for object in &objects {
            check_key(&object.key)?;
        }
        let now = now_ms();
        let mut state = self.lock();
        for object in objects {
            match state.entries.get_mut(&object.key) {
                Some(entry) => entry.modified_ms = now,
                None => {
                    state.insert(object.key, object.bytes.to_vec());
                }
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        check_prefix(prefix)?;
        let state = self.lock();
        Ok(state
            .entries
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, entry)| Listed {
                key: key.clone(),
                size: entry.bytes.len() as u64,
                modified_ms: entry.modified_ms,
            })
            .collect())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        for key in keys {
            check_delete_key(key)?;
        }
        let mut state = self.lock();
        for key in keys {
            state.entries.remove(key);
        }
        Ok(())
    }

    async fn read_ref(&self, key: &str) -> Result<Option<RefState>, Error> {
        check_key(key)?;
        self.lock().read_ref(key)
    }

    async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, Error> {
        check_key(&cas.key)?;
        let mut state = self.lock();
        let current = state.read_ref(&cas.key)?;
        if current != cas.expected {
            return Ok(CasOutcome::Lost { current });
        }
        Ok(match cas.new {
            Some(new) => CasOutcome::Won {
                version: state.insert(cas.key.clone(), ref_bytes(&new)).to_string(),
            },
            None => {
                state.entries.remove(&cas.key);
                CasOutcome::Won { version: String::new() }
            }
        })
    }

    async fn swap(&self, swap: &Swap) -> Result<bool, Error> {
        check_key(&swap.key)?;
        check_swap(swap, || self.location())?;
        let mut state = self.lock();
        let current = state.entries.get(&swap.key).map(|entry| entry.bytes.as_slice());
        if current != swap.expected.as_deref() {
            return Ok(false);
        }
        match &swap.new {
            Some(bytes) => {
                state.insert(swap.key.clone(), bytes.clone());
            }
            None => {
                state.entries.remove(&swap.key);
            }
        }
        Ok(true)
    }
}
