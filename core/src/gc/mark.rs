//! Reachability, shared by the footprint report and GC: a walk from roots through tags,
//! commits and trees, one level per round.

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object::{self, Object},
    step::Misuse,
};

/// A walk from roots through tags, commits (every parent) and trees, fetching one level
/// per round. Blobs are reached by id only, unless a ref names one.
#[derive(Debug, Default)]
pub(super) struct Mark {
    /// Every object found reachable, blobs included.
    pub(super) reachable: IdSet,
    /// Objects found but not yet looked into, with the kind they must have (`None`: a
    /// root, which may be of any kind).
    pub(super) queue: Vec<(ObjectId, Option<Kind>)>,
    /// The ids of the `Get` that is out.
    pub(super) asked: Vec<(ObjectId, Option<Kind>)>,
    /// Roots that may be absent (reflog entries: git skips those it cannot find).
    pub(super) optional: IdSet,
    /// Children of every commit and tree looked into, if recorded.
    pub(super) edges: Option<IdMap<Vec<ObjectId>>>,
    /// When each object was first reached (a count) and the hash of the name it was
    /// reached under ([`name_hash`](crate::pack::write::name_hash), 0 for commits and
    /// root trees), if recorded: compaction's order and delta grouping.
    pub(super) seen: Option<IdMap<(u32, u32)>>,
    /// Every commit looked into, if the order is recorded: what a commit-graph holds.
    pub(super) commits: Vec<crate::graph::Commit>,
    pub(super) rounds: u32,
}

impl Mark {
    pub(super) fn recording_edges() -> Self {
        Mark {
            edges: Some(IdMap::default()),
            ..Mark::default()
        }
    }

    pub(super) fn recording_order() -> Self {
        Mark {
            seen: Some(IdMap::default()),
            ..Mark::default()
        }
    }

    fn note(&mut self, id: ObjectId, name: u32) {
        if let Some(seen) = &mut self.seen {
            let next = seen.len() as u32;
            seen.entry(id).or_insert((next, name));
        }
    }

    /// A root that must exist: a ref or a detached `HEAD`, of any kind.
    pub(super) fn root(&mut self, id: ObjectId) {
        self.note(id, 0);
        if self.reachable.insert(id) {
            self.queue.push((id, None));
        }
    }

    /// A root that may be absent: an entry of a reflog.
    pub(super) fn optional_root(&mut self, id: ObjectId) {
        self.note(id, 0);
        if self.reachable.insert(id) {
            self.optional.insert(id);
            self.queue.push((id, None));
        }
    }

    pub(super) fn reach(&mut self, id: ObjectId, kind: Kind) {
        if self.reachable.insert(id) && kind != Kind::Blob {
            self.queue.push((id, Some(kind)));
        }
    }

    /// Look into everything the cache holds; the ids still needed, all in one batch
    /// (empty once the walk is complete).
    pub(super) fn advance(&mut self, cache: &ObjectCache) -> Result<Vec<ObjectId>, object::Error> {
        while let Some((id, kind)) = self.queue.pop() {
            match cache.get(&id) {
                Some(object) => {
                    let object = object.clone();
                    self.expand(id, kind, &object)?;
                }
                None => self.asked.push((id, kind)),
            }
        }
        if !self.asked.is_empty() {
            self.rounds += 1;
        }
        Ok(self.asked.iter().map(|(id, _)| *id).collect())
    }

    pub(super) fn provide<E: From<object::Error> + From<Misuse>>(
        &mut self,
        cache: &mut ObjectCache,
        answers: Vec<Option<Vec<u8>>>,
    ) -> Result<(), E> {
        let asked = std::mem::take(&mut self.asked);
        if asked.is_empty() {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        if answers.len() != asked.len() {
            return Err(Misuse("provide must answer every id of the Get, in order").into());
        }
        let max = cache.limits().max_object_bytes;
        for ((id, kind), answer) in asked.into_iter().zip(answers) {
            let stored = match answer {
                Some(stored) => stored,
                None if self.optional.contains(&id) => {
                    // Nothing to keep, and nothing to count.
                    self.reachable.remove(&id);
                    continue;
                }
                None => return Err(object::Error::NotFound { id }.into()),
            };
            let object = object::decode_loose(&id, &stored, max)?;
            self.expand(id, kind, &object)?;
            cache.insert(id, object);
        }
        Ok(())
    }

    pub(super) fn expand(
        &mut self,
        id: ObjectId,
        expected: Option<Kind>,
        object: &Object,
    ) -> Result<(), object::Error> {
        if let Some(expected) = expected.filter(|kind| *kind != object.kind()) {
            return Err(object::Error::WrongKind {
                id,
                expected,
                actual: object.kind(),
            });
        }
        let mut children = Vec::new();
        match object {
            Object::Commit(commit) => {
                if self.seen.is_some() {
                    self.commits.push(crate::graph::Commit {
                        id,
                        tree: commit.tree,
                        parents: commit.parents.to_vec(),
                        time: commit.committer.time.seconds,
                        changed: None,
                        filter: None,
                    });
                }
                children.push(commit.tree);
                self.note(commit.tree, 0);
                self.reach(commit.tree, Kind::Tree);
                for parent in &commit.parents {
                    children.push(*parent);
                    self.note(*parent, 0);
                    self.reach(*parent, Kind::Commit);
                }
            }
            Object::Tree(tree) => {
                for entry in &tree.entries {
                    // A submodule names a commit of another repository: not ours to keep.
                    if entry.mode.is_commit() {
                        continue;
                    }
                    children.push(entry.oid);
                    if self.seen.is_some() {
                        self.note(entry.oid, crate::pack::write::name_hash(&entry.filename));
                    }
                    let kind = if entry.mode.is_tree() { Kind::Tree } else { Kind::Blob };
                    self.reach(entry.oid, kind);
                }
            }
            Object::Tag(tag) => {
                children.push(tag.target);
                self.note(tag.target, 0);
                self.reach(tag.target, tag.target_kind);
            }
            Object::Blob(_) => {}
        }
        if let Some(edges) = &mut self.edges {
            edges.insert(id, children);
        }
        Ok(())
    }
}
