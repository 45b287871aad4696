//! The object cache: verified, decoded objects that outlive one operation.

use std::cell::Cell;

use foldhash::HashMap;
use gix_hash::ObjectId;

use std::sync::Arc;

use crate::{graph::Chain, id::IdMap, limits::Limits, object::Object, pack::index::Packs, store::RefState};

/// Decoded objects by id, shared by every operation that is given it.
///
/// Objects enter only verified (read from storage and hashed, or built by core), so the
/// cache is never wrong, only incomplete. Keep one per store for as long as the process
/// lives (a Worker isolate, a server) and warm commits need no reads at all.
///
/// The cache holds at most [`ObjectCache::capacity`] bytes (approximate); past that the
/// least recently used objects are dropped. Operations keep what they are using, so a
/// small capacity costs rounds, never correctness.
#[derive(Debug)]
pub struct ObjectCache {
    hash_kind: gix_hash::Kind,
    limits: Limits,
    capacity: usize,
    weight: usize,
    clock: Cell<u64>,
    objects: IdMap<Slot>,
    refs: HashMap<String, RefState>,
    packs: Option<Packs>,
    /// The store's commit-graph as read with the pack listing: `None` before any
    /// operation that uses it looked, `Some(None)` when there is none (or it did not read
    /// as git writes it: it is derived data, and reads then walk the commits).
    graph: Option<Option<Arc<Chain>>>,
}

#[derive(Debug)]
struct Slot {
    object: Object,
    weight: usize,
    used: Cell<u64>,
}

/// Objects core built itself, so that each id is its object's own hash (as an
/// [`ObjectCache`] requires of what it holds), for a cache to [keep](ObjectCache::keep):
/// a face hands them over without being able to make or change one.
#[derive(Debug, Default)]
pub struct Built {
    pub(crate) objects: Vec<(ObjectId, Object)>,
}

impl Built {
    /// The number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// `true` if there are none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Each tree with its storage key, in git's loose form before compression
    /// (`tree <size>\0<entries>`), as a host that inflates loose objects for a guest keeps
    /// them: the guest's core checks every byte against the id, as it does what storage
    /// gives.
    pub fn inflated(&self) -> Vec<(String, Vec<u8>)> {
        self.objects
            .iter()
            .filter_map(|(id, object)| match object {
                Object::Tree(tree) => Some((crate::object::loose_key(id), crate::object::raw_tree(tree).0)),
                _ => None,
            })
            .collect()
    }
}

/// The default capacity of a cache, in bytes.
pub const DEFAULT_CAPACITY: usize = 64 << 20;

impl ObjectCache {
    /// An empty cache for objects hashed with `hash_kind`, with default limits and capacity.
    pub fn new(hash_kind: gix_hash::Kind) -> Self {
        Self::with_limits(hash_kind, Limits::default())
    }

    /// An empty cache with the given limits, applied to every operation that uses it.
    pub fn with_limits(hash_kind: gix_hash::Kind, limits: Limits) -> Self {
        ObjectCache {
            hash_kind,
            limits,
            capacity: DEFAULT_CAPACITY,
            weight: 0,
            clock: Cell::new(0),
            objects: IdMap::default(),
            refs: HashMap::default(),
            packs: None,
            graph: None,
        }
    }

    /// Set the approximate number of bytes the cache may hold.
    pub fn set_capacity(&mut self, bytes: usize) {
        self.capacity = bytes;
        self.shrink();
    }

    /// The approximate number of bytes the cache may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The hash kind of every id in this cache.
    pub fn hash_kind(&self) -> gix_hash::Kind {
        self.hash_kind
    }

    /// The limits operations on this cache apply.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The number of objects held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// `true` if no object is held.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The object `id`, if held.
    pub fn get(&self, id: &ObjectId) -> Option<&Object> {
        self.objects.get(id).map(|slot| {
            slot.used.set(self.tick());
            &slot.object
        })
    }

    /// `true` if `id` is held.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.objects.contains_key(id)
    }

    /// Keep objects core built itself ([`Built`]), as if they had been read.
    pub fn keep(&mut self, built: Built) {
        for (id, object) in built.objects {
            self.insert(id, object);
        }
    }

    /// Drop every object and remembered ref.
    pub fn clear(&mut self) {
        self.objects.clear();
        self.refs.clear();
        self.packs = None;
        self.graph = None;
        self.weight = 0;
    }

    /// Forget the store's pack listing, and keep the objects and the remembered refs: a
    /// cache that outlives one operation (a server's) calls this before an operation
    /// that may start after another process compacted the store, whose new packs the
    /// old listing lacks. Objects never change under their ids, and a remembered ref is
    /// only the expected value of a compare-and-swap, so both stay valid.
    ///
    /// The commit-graph read with the listing stays: it is read again when a listing
    /// finds packs this cache did not know (a compaction writes both), and until then a
    /// walk reads the objects of commits newer than it.
    pub fn forget_packs(&mut self) {
        self.packs = None;
    }

    /// The last state of the ref at `key` that an operation saw, if any. It may be stale:
    /// it is only ever used as the expected value of a compare-and-swap, which catches that.
    pub fn known_ref(&self, key: &str) -> Option<&RefState> {
        self.refs.get(key)
    }

    /// Remember (or, with `None`, forget) the state of the ref at `key`.
    pub fn remember_ref(&mut self, key: &str, state: Option<RefState>) {
        match state {
            Some(state) => {
                self.refs.insert(key.to_owned(), state);
            }
            None => {
                self.refs.remove(key);
            }
        }
    }

    /// The packs of the store as last listed, with their indexes; `None` before any
    /// operation looked.
    pub(crate) fn packs(&self) -> Option<Packs> {
        self.packs.clone()
    }

    /// Remember the packs of the store.
    pub(crate) fn set_packs(&mut self, packs: Packs) {
        self.packs = Some(packs);
    }

    /// The store's commit-graph, if one was read and is usable.
    pub(crate) fn graph(&self) -> Option<Arc<Chain>> {
        self.graph.clone().flatten()
    }

    /// `true` once the commit-graph was looked for (found or not).
    pub(crate) fn graph_known(&self) -> bool {
        self.graph.is_some()
    }

    /// Remember the store's commit-graph, or that it has none.
    pub(crate) fn set_graph(&mut self, graph: Option<Arc<Chain>>) {
        self.graph = Some(graph);
    }

    /// Whether an object of about `bytes` would be kept: one over a quarter of the
    /// capacity would only push out everything else, so it is not (and a caller need not
    /// copy its bytes to offer it).
    pub(crate) fn keeps(&self, bytes: usize) -> bool {
        bytes <= self.capacity / 4
    }

    /// Add an object whose id was verified by the caller (unless it is too large to keep).
    pub(crate) fn insert(&mut self, id: ObjectId, object: Object) {
        let weight = object.weight();
        if !self.keeps(weight) {
            return;
        }
        let used = Cell::new(self.tick());
        if let Some(old) = self.objects.insert(id, Slot { object, weight, used }) {
            self.weight -= old.weight;
        }
        self.weight += weight;
        if self.weight > self.capacity {
            self.shrink();
        }
    }

    fn tick(&self) -> u64 {
        let now = self.clock.get().wrapping_add(1);
        self.clock.set(now);
        now
    }

    /// Drop the least recently used objects until at most three quarters of the capacity
    /// is used; evicting in batches keeps the cost per insert constant on average.
    fn shrink(&mut self) {
        if self.weight <= self.capacity {
            return;
        }
        let target = self.capacity / 4 * 3;
        let mut by_age: Vec<(u64, ObjectId)> = self.objects.iter().map(|(id, s)| (s.used.get(), *id)).collect();
        // The pairs are distinct (one per id), so a stable sort gives the same order.
        crate::order::sort(&mut by_age);
        for (_, id) in by_age {
            if self.weight <= target {
                break;
            }
            if let Some(slot) = self.objects.remove(&id) {
                self.weight -= slot.weight;
            }
        }
    }
}
