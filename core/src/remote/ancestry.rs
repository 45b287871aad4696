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

/// A walk from `descendant` looking for `ancestor`. Ask for [`next`](Self::next)'s ids
/// with a `Get` and pass the answer to [`provide`](Self::provide) until it gives none;
/// then [`found`](Self::found) says.
#[derive(Debug)]
pub(crate) struct Ancestry {
    ancestor: ObjectId,
    /// The ancestor's commit time, once read (commits much older are not followed).
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

    /// The commits to read next; `None` once the walk is over.
    pub(crate) fn next(&mut self) -> Option<Vec<ObjectId>> {
        if self.found || self.absent || self.frontier.is_empty() {
            return None;
        }
        let mut ids = std::mem::take(&mut self.frontier);
        if self.horizon.is_none() {
            ids.push(self.ancestor);
        }
        self.asked.clone_from(&ids);
        Some(ids)
    }

    pub(crate) fn provide(&mut self, cache: &ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        let asked = std::mem::take(&mut self.asked);
        if asked.len() != objects.len() {
            return Err(Misuse("provide must answer every id of the Get, in order").into());
        }
        let max = cache.limits().max_object_bytes;
        let mut commits = Vec::with_capacity(asked.len());
        for (id, stored) in asked.into_iter().zip(objects) {
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
            if id == self.ancestor && self.horizon.is_none() {
                self.horizon = Some(commit.committer.time.seconds.saturating_sub(SLOP_SECONDS));
                // Read as the ancestor, not as part of the walk (unless it is both).
                if !self.seen.contains(&id) {
                    continue;
                }
            }
            commits.push(commit);
        }
        let horizon = self.horizon.unwrap_or(i64::MIN);
        for commit in commits {
            if commit.committer.time.seconds < horizon {
                continue;
            }
            for parent in commit.parents.iter() {
                if *parent == self.ancestor {
                    self.found = true;
                }
                if self.seen.insert(*parent) {
                    self.frontier.push(*parent);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn found(&self) -> bool {
        self.found
    }
}
