//! Whether one commit is an ancestor of another: a walk back from the descendant, one
//! level of parents per round, until the ancestor is found or history runs out.

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    cache::ObjectCache,
    id::IdSet,
    object::{self, Object},
    step::Misuse,
};

use super::OpError as Error;

/// How far before the ancestor's commit time the walk still follows parents, in seconds:
/// committers' clocks may disagree by this much.
pub const SLOP_SECONDS: i64 = 86_400;

/// A commit as the walk needs it: its parents and commit time.
#[derive(Debug, Clone)]
pub(crate) struct Parents {
    pub(crate) parents: Vec<ObjectId>,
    pub(crate) time: i64,
}

/// A walk from `descendant` looking for `ancestor`. Ask for [`next`](Self::next)'s ids
/// with a `Get` and pass the answer to [`provide`](Self::provide) until it gives none;
/// then [`found`](Self::found) says. Commits the caller holds already (a pack being
/// received) are passed to `next` and never read.
#[derive(Debug)]
pub(crate) struct Ancestry {
    ancestor: ObjectId,
    /// Commits much older than the ancestor are not followed.
    horizon: Option<i64>,
    frontier: Vec<ObjectId>,
    seen: IdSet,
    asked: Vec<ObjectId>,
    found: bool,
    /// The ancestor is not in the store.
    absent: bool,
}

impl Ancestry {
    pub(crate) fn new(descendant: ObjectId, ancestor: ObjectId) -> Self {
        let mut seen = IdSet::default();
        seen.insert(descendant);
        Ancestry {
            ancestor,
            horizon: None,
            frontier: vec![descendant],
            seen,
            asked: Vec::new(),
            found: descendant == ancestor,
            absent: false,
        }
    }

    /// The commits to read next; `None` once the walk is over. `known` gives the commits
    /// the caller holds.
    pub(crate) fn next(&mut self, known: &dyn Fn(&ObjectId) -> Option<Parents>) -> Option<Vec<ObjectId>> {
        loop {
            if self.found || self.absent || self.frontier.is_empty() {
                return None;
            }
            if self.horizon.is_none()
                && let Some(ancestor) = known(&self.ancestor)
            {
                self.horizon = Some(ancestor.time.saturating_sub(SLOP_SECONDS));
            }
            let (held, unknown): (Vec<ObjectId>, Vec<ObjectId>) = std::mem::take(&mut self.frontier)
                .into_iter()
                .partition(|id| known(id).is_some());
            self.frontier = unknown;
            if held.is_empty() {
                let mut ids = self.frontier.clone();
                if self.horizon.is_none() {
                    ids.push(self.ancestor);
                }
                self.asked.clone_from(&ids);
                return Some(ids);
            }
            for id in held {
                if let Some(commit) = known(&id) {
                    self.expand(&commit);
                }
            }
        }
    }

    fn expand(&mut self, commit: &Parents) {
        if commit.time < self.horizon.unwrap_or(i64::MIN) {
            return;
        }
        for parent in &commit.parents {
            if *parent == self.ancestor {
                self.found = true;
            }
            if self.seen.insert(*parent) {
                self.frontier.push(*parent);
            }
        }
    }

    pub(crate) fn provide(&mut self, cache: &ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        let asked = std::mem::take(&mut self.asked);
        if asked.len() != objects.len() {
            return Err(Misuse("provide must answer every id of the Get, in order").into());
        }
        let max = cache.limits().max_object_bytes;
        let mut read = Vec::with_capacity(asked.len());
        for (id, stored) in asked.into_iter().zip(objects) {
            let walked = self.seen.contains(&id);
            self.frontier.retain(|f| *f != id);
            let Some(stored) = stored else {
                if id == self.ancestor {
                    self.absent = true;
                }
                continue;
            };
            let (kind, content) = object::decode_content(&id, &stored, max)?;
            if kind != Kind::Commit {
                continue;
            }
            let Object::Commit(commit) = object::parse(&id, kind, &content)? else {
                continue;
            };
            let parents = Parents {
                parents: commit.parents.iter().copied().collect(),
                time: commit.committer.time.seconds,
            };
            if id == self.ancestor && self.horizon.is_none() {
                self.horizon = Some(parents.time.saturating_sub(SLOP_SECONDS));
            }
            // The ancestor is read for its time; it is walked only if reached.
            if walked {
                read.push(parents);
            }
        }
        for parents in read {
            self.expand(&parents);
        }
        Ok(())
    }

    pub(crate) fn found(&self) -> bool {
        self.found
    }
}
