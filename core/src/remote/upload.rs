//! Serving a fetch (`git clone`, `git fetch`): which objects a client lacks, and the pack
//! that carries them.
//!
//! [`Upload`] does what `git upload-pack` does for one request of protocol v2's `fetch`
//! command:
//!
//! 1. It reads the repo's refs. A client may want their tips; any other object it wants
//!    must be reachable from them (a partial clone fetching blobs on demand), which is
//!    checked by a walk, so that no client reads another repo's objects by id.
//! 2. It answers the client's `have`s: those the store holds are common. A request that
//!    is not `done` and has nothing in common ends there (the client sends more).
//! 3. It walks the commits from the wants, one level per round, stopping where the
//!    common commits' history begins, at the client's shallow commits, and at the depth
//!    asked for (`deepen`), reporting the new shallow boundary and the commits no longer
//!    shallow.
//! 4. It walks the trees of the commits to send, leaving out what the trees of the
//!    common commits at the boundary hold, and blobs the filter leaves out (`blob:none`,
//!    `blob:limit=<n>`; a blob wanted by id is always sent).
//! 5. It reads what is sent and writes it as one pack with deltas.
//!
//! Every object read is hashed and checked as on any read. What is sent may include
//! objects the client already has (history it holds beyond the boundary); it never lacks
//! one the client needs.

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object::{self, Object},
    pack::write,
    step::{Answer, Misuse, Operation, Step},
};

use super::{
    OpError as Error,
    refs::{ListRefs, Refs},
};

/// Which blobs a partial clone leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every blob reached through a tree (`blob:none`).
    BlobNone,
    /// Blobs of this many bytes or more (`blob:limit=<n>`).
    BlobLimit(u64),
}

/// One `fetch` request of a client.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// The repo fetched from.
    pub repo: String,
    /// What the client wants.
    pub wants: Vec<ObjectId>,
    /// What it has.
    pub haves: Vec<ObjectId>,
    /// It sends no more haves: the pack comes now.
    pub done: bool,
    /// Its shallow commits (whose parents it lacks).
    pub shallows: Vec<ObjectId>,
    /// How many commits deep from the wants to send (`deepen <n>`), if limited.
    pub depth: Option<u32>,
    /// The depth counts from the client's shallow commits, not from the wants
    /// (`deepen-relative`: `git fetch --deepen <n>`).
    pub relative: bool,
    /// The blobs it leaves out.
    pub filter: Option<Filter>,
    /// Annotated tags of the repo that name a commit sent are sent too
    /// (`include-tag`: git creates the tags it follows from them).
    pub include_tag: bool,
    /// How hard the pack looks for deltas.
    pub pack: write::Options,
}

impl FetchRequest {
    /// A request for `wants` of `repo`, with nothing in common, done.
    pub fn new(repo: impl Into<String>, wants: Vec<ObjectId>) -> Self {
        FetchRequest {
            repo: repo.into(),
            wants,
            haves: Vec::new(),
            done: true,
            shallows: Vec::new(),
            depth: None,
            relative: false,
            filter: None,
            include_tag: false,
            pack: DEFAULT_PACK,
        }
    }
}

/// Deltas for what a fetch sends: a small window keeps a clone fast; stored deltas are
/// not reused yet.
pub const DEFAULT_PACK: write::Options = write::Options {
    window: 10,
    depth: 50,
    level: 6,
};

/// The most haves one request may carry (git sends them in rounds of at most 256 when
/// it negotiates, and 32 on a stateless connection's first round).
pub const MAX_HAVES: usize = 100_000;

/// The most wants one request may carry.
pub const MAX_WANTS: usize = 1_000_000;

/// The most boundary commits whose trees are read to leave out what the client has;
/// past it, what they hold may be sent again.
pub const MAX_EDGES: usize = 16;

/// What to answer a `fetch` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The haves the store holds (`ACK`s), in the order the client sent them.
    pub common: Vec<ObjectId>,
    /// The pack, if it is sent now (`ready`): `None` while the client should send more
    /// haves.
    pub pack: Option<SentPack>,
}

/// A pack sent to a client, and the shallow boundary that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPack {
    /// Commits whose parents the client does not get (`shallow` lines), new ones only.
    pub shallow: Vec<ObjectId>,
    /// The client's shallow commits whose parents it now gets (`unshallow` lines).
    pub unshallow: Vec<ObjectId>,
    /// The pack.
    pub bytes: Vec<u8>,
    /// How many objects it holds.
    pub objects: usize,
    /// How many of them are deltas.
    pub deltas: usize,
    /// How many were copied from stored packs as they are.
    pub copied: usize,
    /// How many rounds of reads the walk took.
    pub rounds: u32,
}

/// A commit read: its parents and tree.
#[derive(Debug)]
struct Walked {
    parents: Vec<ObjectId>,
    tree: ObjectId,
}

#[derive(Debug)]
enum Stage {
    Refs(ListRefs),
    /// Reading the commit-graph: its files, then a split graph's layers.
    Graph,
    GraphLayers(Vec<(String, ObjectId)>),
    /// Reading the haves.
    Haves,
    /// Proving wants that are not tips reachable: a walk from the tips until each is
    /// found.
    Reach {
        frontier: Vec<ObjectId>,
        reached: IdSet,
        unproven: IdSet,
    },
    /// Reading the wants, peeling tags.
    Wants {
        pending: Vec<ObjectId>,
    },
    /// Finding the shallow boundary: a walk from the wants, `deepen` levels deep.
    Deepen {
        frontier: Vec<ObjectId>,
        level: u32,
    },
    /// Walking the commits to send.
    Commits {
        frontier: Vec<ObjectId>,
    },
    /// Reading the trees of the common commits at the boundary.
    Edges {
        commits: Vec<ObjectId>,
        frontier: Vec<ObjectId>,
    },
    /// Walking the trees to send.
    Trees {
        frontier: Vec<(ObjectId, u32)>,
    },
    /// Reading the annotated tags that name commits sent (`include-tag`).
    Tags,
    /// Reading the stored pack entries of what is sent, to copy them as they are.
    Reuse,
    /// Reading the blobs to send, from this position of `blobs`.
    Blobs {
        next: usize,
    },
    Done,
}

/// How many objects one `Get` of blobs asks for.
const BLOB_BATCH: usize = 4096;

/// Serve one `fetch` request: see the [module](self). Drive it through
/// [`Packed`](crate::pack::Packed) so that packed objects are read too.
#[derive(Debug)]
pub struct Upload {
    request: FetchRequest,
    stage: Stage,
    refs: Refs,
    common: Vec<ObjectId>,
    /// The ids of the `Get` that is out.
    asked: Vec<ObjectId>,
    /// Objects read, as stored content, until they are sent or done with.
    content: IdMap<(Kind, Vec<u8>)>,
    /// Objects storage does not have.
    absent: IdSet,
    /// Commits read, or known from the commit-graph.
    commits: IdMap<Walked>,
    /// The store's commit-graph, if it has one that reads.
    graph: Option<crate::graph::Chain>,
    /// Commits reached by the walk; those the client has; those whose parents were
    /// walked.
    visited: IdSet,
    uninteresting: IdSet,
    expanded: IdSet,
    /// The client's shallow commits: what it has ends there.
    graft: IdSet,
    /// The store's own shallow commits (git's `shallow` file): their parents are not
    /// stored, so the walk ends there and the client is told they are shallow, as git's
    /// upload-pack does in a shallow repository.
    cut: IdSet,
    /// Commits whose parents are not sent: the client's shallow commits still shallow,
    /// and the new boundary.
    stop: IdSet,
    /// Commits the depth walk reached.
    deepened: IdSet,
    /// Commits wanted (tags peeled).
    commit_wants: Vec<ObjectId>,
    /// Commits, in the order reached, not known to be the client's when reached.
    order: Vec<ObjectId>,
    shallow: Vec<ObjectId>,
    unshallow: Vec<ObjectId>,
    /// Objects the client has: the trees (and what they hold) of boundary commits.
    has: IdSet,
    /// Tags and trees to send, in order, with their name hash.
    send: Vec<(ObjectId, u32)>,
    sending: IdSet,
    /// Blobs to send (those found through trees are filtered when read).
    blobs: Vec<(ObjectId, u32)>,
    /// Blobs wanted by id: never filtered.
    wanted_blobs: IdSet,
    /// Entries of stored packs being read to copy: (id, pack, offset, end), by pack and
    /// offset; the ranges asked for.
    reading: Vec<(ObjectId, usize, u64, u64)>,
    ranges: Vec<crate::step::Range>,
    /// Stored entries copied as they are, and where each is in the stored packs' order.
    reused: IdMap<write::Reused>,
    stored_order: IdMap<usize>,
    rounds: u32,
}

impl Upload {
    /// Start serving `request`; a repo name git would refuse, or too many wants or haves,
    /// is refused here.
    pub fn new(request: FetchRequest) -> Result<Self, Error> {
        if request.wants.is_empty() {
            return Err(Error::Refused("a fetch must want at least one object".into()));
        }
        if request.wants.len() > MAX_WANTS {
            return Err(Error::Refused(format!(
                "{} wants, over the limit of {MAX_WANTS}",
                request.wants.len()
            )));
        }
        if request.haves.len() > MAX_HAVES {
            return Err(Error::Refused(format!(
                "{} haves, over the limit of {MAX_HAVES}",
                request.haves.len()
            )));
        }
        if request.depth == Some(0) {
            return Err(Error::Refused("deepen 0 asks for no commits".into()));
        }
        let refs = ListRefs::new(&request.repo)?;
        let graft = request.shallows.iter().copied().collect();
        Ok(Upload {
            request,
            stage: Stage::Refs(refs),
            refs: Refs::default(),
            common: Vec::new(),
            asked: Vec::new(),
            content: IdMap::default(),
            absent: IdSet::default(),
            commits: IdMap::default(),
            graph: None,
            visited: IdSet::default(),
            uninteresting: IdSet::default(),
            expanded: IdSet::default(),
            graft,
            cut: IdSet::default(),
            stop: IdSet::default(),
            deepened: IdSet::default(),
            commit_wants: Vec::new(),
            order: Vec::new(),
            shallow: Vec::new(),
            unshallow: Vec::new(),
            has: IdSet::default(),
            send: Vec::new(),
            sending: IdSet::default(),
            blobs: Vec::new(),
            wanted_blobs: IdSet::default(),
            reading: Vec::new(),
            ranges: Vec::new(),
            reused: IdMap::default(),
            stored_order: IdMap::default(),
            rounds: 0,
        })
    }

    /// How many rounds of object reads it took so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Ask for the objects of `ids` not read yet, if any.
    fn need(&mut self, ids: impl IntoIterator<Item = ObjectId>) -> Option<Step<Fetched>> {
        let mut seen = IdSet::default();
        let ids: Vec<ObjectId> = ids.into_iter().collect();
        let ids: Vec<ObjectId> = ids
            .into_iter()
            .filter(|id| !self.known_from_graph(id))
            .collect::<Vec<_>>()
            .into_iter()
            .filter(|id| {
                !self.content.contains_key(id)
                    && !self.absent.contains(id)
                    && !self.commits.contains_key(id)
                    && seen.insert(*id)
            })
            .collect();
        if ids.is_empty() {
            return None;
        }
        self.rounds += 1;
        self.asked.clone_from(&ids);
        Some(Step::Get(ids))
    }

    /// Whether the commit-graph knows `id` as a commit: then its parents and tree are
    /// taken from there and it is not read (until it is sent).
    fn known_from_graph(&mut self, id: &ObjectId) -> bool {
        if self.commits.contains_key(id) {
            return true;
        }
        let Some(graph) = &self.graph else { return false };
        let Some(entry) = graph.find(id).and_then(|pos| graph.commit(pos)) else {
            return false;
        };
        let parents: Option<Vec<ObjectId>> = entry.parents.iter().map(|&p| graph.id(p)).collect();
        let Some(parents) = parents else { return false };
        self.commits.insert(
            *id,
            Walked {
                parents,
                tree: entry.tree,
            },
        );
        true
    }

    /// The object `id` read, parsed (its content is kept).
    fn parsed(&self, id: &ObjectId) -> Result<Option<Object>, Error> {
        match self.content.get(id) {
            Some((kind, content)) => Ok(Some(object::parse(id, *kind, content)?)),
            None => Ok(None),
        }
    }

    fn queue_send(&mut self, id: ObjectId, name: u32) {
        if self.sending.insert(id) {
            self.send.push((id, name));
        }
    }

    /// `id` and every commit it reaches that the walk expanded are the client's.
    fn mark_uninteresting(&mut self, id: ObjectId) {
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if !self.uninteresting.insert(id) || self.graft.contains(&id) || !self.expanded.contains(&id) {
                continue;
            }
            if let Some(walked) = self.commits.get(&id) {
                stack.extend(walked.parents.iter().copied());
            }
        }
    }

    /// A commit read: parsed, remembered, its content kept (it may be sent).
    fn commit(&mut self, id: &ObjectId) -> Result<Option<&Walked>, Error> {
        if !self.commits.contains_key(id) {
            match self.parsed(id)? {
                None => return Ok(None),
                Some(Object::Commit(commit)) => {
                    let parents = if self.cut.contains(id) {
                        Vec::new()
                    } else {
                        commit.parents.iter().copied().collect()
                    };
                    self.commits.insert(
                        *id,
                        Walked {
                            parents,
                            tree: commit.tree,
                        },
                    );
                }
                Some(other) => {
                    return Err(object::Error::WrongKind {
                        id: *id,
                        expected: Kind::Commit,
                        actual: other.kind(),
                    }
                    .into());
                }
            }
        }
        Ok(self.commits.get(id))
    }

    fn advance(&mut self, cache: &mut ObjectCache) -> Result<Step<Fetched>, Error> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Refs(mut list) => match list.poll(cache)? {
                    Step::Done(refs) => {
                        self.refs = refs;
                        self.stage = Stage::Graph;
                        let mut keys = crate::graph::FILES.map(str::to_owned).to_vec();
                        keys.push(super::receive::SHALLOW.to_owned());
                        return Ok(Step::Read(keys));
                    }
                    step => {
                        self.stage = Stage::Refs(list);
                        return Ok(step.map(|_| unreachable!("only a step other than Done is passed on")));
                    }
                },
                Stage::Haves => {
                    let haves = self.request.haves.clone();
                    if let Some(step) = self.need(haves) {
                        self.stage = Stage::Haves;
                        return Ok(step);
                    }
                    let mut common = Vec::new();
                    for have in &self.request.haves {
                        let is_commit = self.commits.contains_key(have)
                            || self.content.get(have).is_some_and(|(kind, _)| *kind == Kind::Commit);
                        if is_commit && !common.contains(have) {
                            common.push(*have);
                        }
                    }
                    self.common = common;
                    let ready = self.request.done || !self.common.is_empty() || self.request.haves.is_empty();
                    if !ready {
                        return Ok(Step::Done(Fetched {
                            common: std::mem::take(&mut self.common),
                            pack: None,
                        }));
                    }
                    for have in self.common.clone() {
                        self.commit(&have)?;
                        self.visited.insert(have);
                        self.uninteresting.insert(have);
                    }
                    // Haves the store holds that are not commits are not walked.
                    self.content.retain(|id, _| self.commits.contains_key(id));
                    let tips: IdSet = self.refs.tips().collect();
                    let unproven: IdSet = self
                        .request
                        .wants
                        .iter()
                        .filter(|w| !tips.contains(*w))
                        .copied()
                        .collect();
                    self.stage = if unproven.is_empty() {
                        Stage::Wants {
                            pending: self.request.wants.clone(),
                        }
                    } else {
                        Stage::Reach {
                            frontier: self.refs.tips().collect(),
                            reached: tips,
                            unproven,
                        }
                    };
                }
                Stage::Reach {
                    frontier,
                    mut reached,
                    mut unproven,
                } => {
                    if unproven.is_empty() {
                        self.stage = Stage::Wants {
                            pending: self.request.wants.clone(),
                        };
                        continue;
                    }
                    if frontier.is_empty() {
                        let first = self.request.wants.iter().find(|w| unproven.contains(*w)).copied();
                        return Err(Error::NotOurRef {
                            id: first.unwrap_or_else(|| ObjectId::null(cache.hash_kind())),
                        });
                    }
                    if let Some(step) = self.need(frontier.iter().copied()) {
                        self.stage = Stage::Reach {
                            frontier,
                            reached,
                            unproven,
                        };
                        return Ok(step);
                    }
                    let mut next = Vec::new();
                    for id in &frontier {
                        unproven.remove(id);
                        if let Some(walked) = self.commits.get(id) {
                            let children = std::iter::once(walked.tree).chain(walked.parents.iter().copied());
                            next.extend(children.filter(|c| reached.insert(*c)).collect::<Vec<_>>());
                            continue;
                        }
                        let children: Vec<ObjectId> = match self.parsed(id)? {
                            None => continue,
                            Some(Object::Commit(c)) => {
                                std::iter::once(c.tree).chain(c.parents.iter().copied()).collect()
                            }
                            Some(Object::Tree(t)) => {
                                for entry in &t.entries {
                                    unproven.remove(&entry.oid);
                                }
                                t.entries.iter().filter(|e| e.mode.is_tree()).map(|e| e.oid).collect()
                            }
                            Some(Object::Tag(t)) => vec![t.target],
                            Some(Object::Blob(_)) => Vec::new(),
                        };
                        // What was read only as proof is not kept.
                        if !self.commits.contains_key(id) {
                            self.content.remove(id);
                        }
                        next.extend(children.into_iter().filter(|c| reached.insert(*c)));
                    }
                    self.stage = Stage::Reach {
                        frontier: next,
                        reached,
                        unproven,
                    };
                }
                Stage::Wants { pending } => {
                    if let Some(step) = self.need(pending.iter().copied()) {
                        self.stage = Stage::Wants { pending };
                        return Ok(step);
                    }
                    let mut next = Vec::new();
                    for id in pending {
                        if self.commits.contains_key(&id) {
                            if !self.commit_wants.contains(&id) {
                                self.commit_wants.push(id);
                            }
                            continue;
                        }
                        match self.parsed(&id)? {
                            None => return Err(object::Error::NotFound { id }.into()),
                            Some(Object::Commit(_)) => {
                                self.commit(&id)?;
                                if !self.commit_wants.contains(&id) {
                                    self.commit_wants.push(id);
                                }
                            }
                            Some(Object::Tag(tag)) => {
                                self.queue_send(id, 0);
                                if tag.target_kind == Kind::Tag
                                    && self.sending.len() > crate::step::MAX_TAG_DEPTH * MAX_WANTS
                                {
                                    return Err(Error::Refused(format!("the tag {id} names too many tags")));
                                }
                                next.push(tag.target);
                            }
                            Some(Object::Tree(_)) => self.queue_send(id, 0),
                            Some(Object::Blob(_)) => {
                                self.wanted_blobs.insert(id);
                                if self.sending.insert(id) {
                                    self.blobs.push((id, 0));
                                }
                            }
                        }
                    }
                    if !next.is_empty() {
                        self.stage = Stage::Wants { pending: next };
                        continue;
                    }
                    self.stage = match self.request.depth {
                        // Relative to the client's boundary: its shallow commits are
                        // the first level, and the depth asked for lies beyond them.
                        Some(_) if self.request.relative => {
                            let frontier: Vec<ObjectId> = self.request.shallows.clone();
                            self.deepened.extend(frontier.iter().copied());
                            Stage::Deepen { frontier, level: 0 }
                        }
                        Some(_) => {
                            let frontier = self.commit_wants.clone();
                            self.deepened.extend(frontier.iter().copied());
                            Stage::Deepen { frontier, level: 1 }
                        }
                        None => {
                            self.stop = self.graft.clone();
                            self.start_commits()
                        }
                    };
                }
                Stage::Deepen { frontier, level } => {
                    if let Some(step) = self.need(frontier.iter().copied()) {
                        self.stage = Stage::Deepen { frontier, level };
                        return Ok(step);
                    }
                    let depth = self.request.depth.unwrap_or(u32::MAX);
                    let mut next = Vec::new();
                    for id in frontier {
                        let Some(walked) = self.commit(&id)? else {
                            return Err(object::Error::NotFound { id }.into());
                        };
                        let parents = walked.parents.clone();
                        if level >= depth {
                            if !parents.is_empty() {
                                self.stop.insert(id);
                                if !self.graft.contains(&id) {
                                    self.shallow.push(id);
                                }
                            }
                            continue;
                        }
                        if self.graft.contains(&id) && !parents.is_empty() {
                            self.unshallow.push(id);
                        }
                        for parent in parents {
                            // The depth a commit is first reached at is its least.
                            if self.deepened.insert(parent) {
                                next.push(parent);
                            }
                        }
                    }
                    if next.is_empty() {
                        // Client shallow commits the walk did not reach stay shallow.
                        let unshallowed: IdSet = self.unshallow.iter().copied().collect();
                        for id in self.graft.clone() {
                            if !unshallowed.contains(&id) {
                                self.stop.insert(id);
                            }
                        }
                        // The parents of a commit no longer shallow are wanted: the
                        // client has the commit, not what lies behind it.
                        for id in self.unshallow.clone() {
                            let parents = self.commits.get(&id).map(|w| w.parents.clone()).unwrap_or_default();
                            for parent in parents {
                                if !self.commit_wants.contains(&parent) {
                                    self.commit_wants.push(parent);
                                }
                            }
                        }
                        self.stage = self.start_commits();
                    } else {
                        self.stage = Stage::Deepen {
                            frontier: next,
                            level: level + 1,
                        };
                    }
                }
                Stage::Commits { frontier } => {
                    if frontier.iter().all(|c| self.uninteresting.contains(c)) {
                        self.stage = self.start_edges();
                        continue;
                    }
                    if let Some(step) = self.need(frontier.iter().copied()) {
                        self.stage = Stage::Commits { frontier };
                        return Ok(step);
                    }
                    let mut next = Vec::new();
                    for id in frontier {
                        let uninteresting = self.uninteresting.contains(&id);
                        let Some(walked) = self.commit(&id)? else {
                            if uninteresting {
                                // What the client has may be gone from the store.
                                continue;
                            }
                            return Err(object::Error::NotFound { id }.into());
                        };
                        let parents = walked.parents.clone();
                        if !uninteresting && self.expanded.insert(id) {
                            self.order.push(id);
                        }
                        if (uninteresting && self.graft.contains(&id)) || (!uninteresting && self.stop.contains(&id)) {
                            continue;
                        }
                        self.expanded.insert(id);
                        for parent in parents {
                            if uninteresting {
                                self.mark_uninteresting(parent);
                            }
                            if self.visited.insert(parent) {
                                next.push(parent);
                            }
                        }
                    }
                    self.stage = Stage::Commits { frontier: next };
                }
                Stage::Edges { commits, frontier } => {
                    if !commits.is_empty() {
                        if let Some(step) = self.need(commits.iter().copied()) {
                            self.stage = Stage::Edges { commits, frontier };
                            return Ok(step);
                        }
                        let mut trees = Vec::new();
                        for id in &commits {
                            if let Some(tree) = self.commit(id)?.map(|w| w.tree)
                                && self.has.insert(tree)
                            {
                                trees.push(tree);
                            }
                        }
                        self.stage = Stage::Edges {
                            commits: Vec::new(),
                            frontier: trees,
                        };
                        continue;
                    }
                    if frontier.is_empty() {
                        self.stage = self.start_trees();
                        continue;
                    }
                    if let Some(step) = self.need(frontier.iter().copied()) {
                        self.stage = Stage::Edges { commits, frontier };
                        return Ok(step);
                    }
                    let mut next = Vec::new();
                    for id in &frontier {
                        if let Some(Object::Tree(tree)) = self.parsed(id)? {
                            for entry in &tree.entries {
                                if self.has.insert(entry.oid) && entry.mode.is_tree() {
                                    next.push(entry.oid);
                                }
                            }
                        }
                        self.content.remove(id);
                    }
                    self.stage = Stage::Edges {
                        commits,
                        frontier: next,
                    };
                }
                Stage::Trees { frontier } => {
                    if frontier.is_empty() {
                        self.stage = Stage::Tags;
                        continue;
                    }
                    if let Some(step) = self.need(frontier.iter().map(|(id, _)| *id)) {
                        self.stage = Stage::Trees { frontier };
                        return Ok(step);
                    }
                    let blobs_filtered = self.request.filter == Some(Filter::BlobNone);
                    let mut next = Vec::new();
                    for (id, name) in frontier {
                        let tree = match self.parsed(&id)? {
                            Some(Object::Tree(tree)) => tree,
                            Some(other) => {
                                return Err(object::Error::WrongKind {
                                    id,
                                    expected: Kind::Tree,
                                    actual: other.kind(),
                                }
                                .into());
                            }
                            None => return Err(object::Error::NotFound { id }.into()),
                        };
                        self.send.push((id, name));
                        for entry in &tree.entries {
                            let name = write::name_hash(&entry.filename);
                            if self.has.contains(&entry.oid) || entry.mode.is_commit() {
                                continue;
                            }
                            if entry.mode.is_tree() {
                                if self.sending.insert(entry.oid) {
                                    next.push((entry.oid, name));
                                }
                            } else if !blobs_filtered && self.sending.insert(entry.oid) {
                                self.blobs.push((entry.oid, name));
                            }
                        }
                    }
                    self.stage = Stage::Trees { frontier: next };
                }
                Stage::Tags => {
                    let tags = if self.request.include_tag {
                        self.followed_tags()
                    } else {
                        Vec::new()
                    };
                    if let Some(step) = self.need(tags.iter().copied()) {
                        self.stage = Stage::Tags;
                        return Ok(step);
                    }
                    for tag in tags {
                        self.queue_send(tag, 0);
                    }
                    self.stage = Stage::Reuse;
                    if let Some(ranges) = self.plan_reuse(cache) {
                        return Ok(Step::ReadRanges(ranges));
                    }
                    self.stage = Stage::Blobs { next: 0 };
                }
                Stage::GraphLayers(layers) => {
                    let keys = layers.iter().map(|(key, _)| key.clone()).collect();
                    self.stage = Stage::GraphLayers(layers);
                    return Ok(Step::Read(keys));
                }
                Stage::Reuse | Stage::Graph => return Err(Misuse("poll called before the step was answered").into()),
                Stage::Blobs { next } => {
                    // Commits known from the commit-graph and not copied are read now.
                    if next == 0 {
                        let unread: Vec<ObjectId> = self
                            .order
                            .iter()
                            .filter(|id| {
                                !self.content.contains_key(*id)
                                    && !self.reused.contains_key(*id)
                                    && !self.absent.contains(*id)
                            })
                            .copied()
                            .collect();
                        if !unread.is_empty() {
                            self.stage = Stage::Blobs { next: 0 };
                            self.rounds += 1;
                            self.asked.clone_from(&unread);
                            return Ok(Step::Get(unread));
                        }
                    }
                    if next < self.blobs.len() {
                        let end = (next + BLOB_BATCH).min(self.blobs.len());
                        let batch: Vec<ObjectId> = self.blobs[next..end]
                            .iter()
                            .map(|(id, _)| *id)
                            .filter(|id| !self.reused.contains_key(id))
                            .collect();
                        self.stage = Stage::Blobs { next: end };
                        if let Some(step) = self.need(batch) {
                            return Ok(step);
                        }
                        continue;
                    }
                    return Ok(Step::Done(self.pack()?));
                }
                Stage::Done => return Err(Misuse("poll called after Done").into()),
            }
        }
    }

    fn start_commits(&mut self) -> Stage {
        let mut frontier: Vec<ObjectId> = self.common.clone();
        for id in self.commit_wants.clone() {
            if self.visited.insert(id) {
                frontier.push(id);
            }
        }
        Stage::Commits { frontier }
    }

    /// The commits to send are known: read the trees of the client's commits at their
    /// boundary.
    fn start_edges(&mut self) -> Stage {
        self.order.retain(|id| !self.uninteresting.contains(id));
        // Commits sent whose parents the store lacks are shallow for the client too.
        for id in &self.order {
            if self.cut.contains(id) && !self.graft.contains(id) && !self.shallow.contains(id) {
                self.shallow.push(*id);
            }
        }
        let mut edges = Vec::new();
        for id in &self.order {
            for parent in self.commits.get(id).map(|w| w.parents.as_slice()).unwrap_or_default() {
                if self.uninteresting.contains(parent) && !edges.contains(parent) && edges.len() < MAX_EDGES {
                    edges.push(*parent);
                }
            }
        }
        if self.order.is_empty() {
            // Nothing new to send but what was wanted by id (or all of it is the client's).
            for id in &self.common {
                if edges.len() < MAX_EDGES && !edges.contains(id) {
                    edges.push(*id);
                }
            }
        }
        // Commits not sent need not stay in memory.
        let order: IdSet = self.order.iter().copied().collect();
        self.content
            .retain(|id, (kind, _)| *kind != Kind::Commit || order.contains(id));
        Stage::Edges {
            commits: edges,
            frontier: Vec::new(),
        }
    }

    fn start_trees(&mut self) -> Stage {
        let mut frontier = Vec::new();
        for id in self.order.clone() {
            if let Some(tree) = self.commits.get(&id).map(|w| w.tree)
                && !self.has.contains(&tree)
                && self.sending.insert(tree)
            {
                frontier.push((tree, 0));
            }
        }
        // Trees wanted by id are walked too (they are queued to send already).
        let wanted: Vec<(ObjectId, u32)> = self
            .send
            .iter()
            .filter(|(id, _)| self.content.get(id).is_some_and(|(kind, _)| *kind == Kind::Tree))
            .copied()
            .collect();
        self.send.retain(|(id, _)| !wanted.iter().any(|(w, _)| w == id));
        frontier.extend(wanted);
        Stage::Trees { frontier }
    }

    /// The annotated tags of the repo whose commit is sent and which the client lacks.
    fn followed_tags(&self) -> Vec<ObjectId> {
        let sent: IdSet = self.order.iter().copied().collect();
        self.refs
            .refs
            .iter()
            .filter(|r| r.name.starts_with("refs/tags/"))
            .filter(|r| r.peeled.is_some_and(|p| sent.contains(&p)))
            .filter(|r| !self.sending.contains(&r.id) && !self.has.contains(&r.id))
            .map(|r| r.id)
            .collect()
    }

    /// Plan the reads of the stored entries of what is sent, which are copied as they are
    /// (a whole object, or a delta whose base is sent too): no deltas to search, nothing
    /// to compress again. `None` when the store has no packs holding any of it.
    fn plan_reuse(&mut self, cache: &ObjectCache) -> Option<Vec<crate::step::Range>> {
        let packs = cache.packs()?;
        // Blobs are filtered by size after they are read: with a size filter, none is
        // copied unread.
        let blobs = !matches!(self.request.filter, Some(Filter::BlobLimit(_)));
        let ids = self
            .order
            .iter()
            .chain(self.send.iter().map(|(id, _)| id))
            .chain(self.blobs.iter().filter(|_| blobs).map(|(id, _)| id));
        let mut reading = Vec::new();
        for id in ids {
            for (at, pack) in packs.iter().enumerate() {
                if let Some(offset) = pack.index.lookup(id) {
                    let pack_end = pack.size.saturating_sub(id.kind().len_in_bytes() as u64);
                    if let Some(end) = pack.index.entry_end(offset, pack_end) {
                        reading.push((*id, at, offset, end));
                    }
                    break;
                }
            }
        }
        if reading.is_empty() {
            return None;
        }
        reading.sort_by_key(|&(_, at, offset, _)| (at, offset));
        let mut ranges: Vec<crate::step::Range> = Vec::new();
        let mut last: Option<(usize, u64)> = None;
        for &(_, at, offset, end) in &reading {
            let pack = &packs[at];
            let (start, end) = if pack.size <= crate::pack::SMALL_PACK_BYTES {
                (0, pack.size)
            } else {
                (offset, end)
            };
            match (last, ranges.last_mut()) {
                (Some((last_at, last_end)), Some(range))
                    if last_at == at && start <= last_end.saturating_add(crate::pack::MERGE_GAP_BYTES) =>
                {
                    let new_end = end.max(last_end);
                    range.len = new_end - range.start;
                    last = Some((at, new_end));
                }
                _ => {
                    ranges.push(crate::step::Range {
                        key: pack.key.clone(),
                        start,
                        len: end - start,
                    });
                    last = Some((at, end));
                }
            }
        }
        self.reading = reading;
        self.ranges.clone_from(&ranges);
        self.rounds += 1;
        Some(ranges)
    }

    /// The stored entries read: each copied if its CRC matches the index's and it is a
    /// whole object or a delta whose base is sent too; the rest are packed afresh.
    fn take_reused(&mut self, cache: &ObjectCache, chunks: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        let ranges = std::mem::take(&mut self.ranges);
        let reading = std::mem::take(&mut self.reading);
        if chunks.len() != ranges.len() {
            return Err(Misuse("a ReadRanges must be answered with one value per range").into());
        }
        let Some(packs) = cache.packs() else {
            return Ok(());
        };
        let sent: IdSet = self
            .order
            .iter()
            .chain(self.send.iter().map(|(id, _)| id))
            .chain(self.blobs.iter().map(|(id, _)| id))
            .copied()
            .collect();
        // The ids of the entries of each pack read, by offset, for deltas' bases.
        let mut by_offset: foldhash::HashMap<(usize, u64), ObjectId> = foldhash::HashMap::default();
        let mut bases_known: foldhash::HashSet<usize> = foldhash::HashSet::default();
        for (position, (id, at, offset, end)) in reading.into_iter().enumerate() {
            let Some((range, Some(bytes))) = ranges
                .iter()
                .zip(&chunks)
                .find(|(r, _)| r.key == packs[at].key && r.start <= offset && end <= r.start + r.len)
            else {
                continue;
            };
            let from = (offset - range.start) as usize;
            let Some(entry) = bytes.get(from..(end - range.start) as usize) else {
                continue;
            };
            if packs[at].index.entry_crc(offset) != Some(crate::pack::entry::crc32(entry)) {
                continue;
            }
            let Ok(header) = crate::pack::entry::parse_header(entry, offset, cache.hash_kind()) else {
                continue;
            };
            let kind = match header.kind {
                crate::pack::entry::EntryKind::Object(kind) => Ok(kind),
                crate::pack::entry::EntryKind::Delta(crate::pack::entry::Base::Id(base)) => Err(base),
                crate::pack::entry::EntryKind::Delta(crate::pack::entry::Base::Offset(base_offset)) => {
                    if bases_known.insert(at) {
                        for entry_id in packs[at].index.ids() {
                            if let Some(o) = packs[at].index.lookup(&entry_id) {
                                by_offset.insert((at, o), entry_id);
                            }
                        }
                    }
                    match by_offset.get(&(at, base_offset)) {
                        Some(base) => Err(*base),
                        None => continue,
                    }
                }
            };
            if let Err(base) = kind
                && !sent.contains(&base)
            {
                continue;
            }
            let data = entry[header.data_start..].to_vec();
            self.stored_order.insert(id, position);
            self.reused.insert(
                id,
                write::Reused {
                    id,
                    kind,
                    size: header.size,
                    data,
                },
            );
        }
        // A delta whose base is neither copied nor sent afresh cannot be copied: its base
        // is sent afresh only if its content is at hand (read already, or a blob still to
        // read), so chains whose base is neither are dropped.
        let blobs: IdSet = self.blobs.iter().map(|(id, _)| *id).collect();
        loop {
            let orphans: Vec<ObjectId> = self
                .reused
                .values()
                .filter_map(|r| match r.kind {
                    Err(base)
                        if !self.reused.contains_key(&base)
                            && !self.content.contains_key(&base)
                            && !blobs.contains(&base) =>
                    {
                        Some(r.id)
                    }
                    _ => None,
                })
                .collect();
            if orphans.is_empty() {
                break;
            }
            for id in orphans {
                self.reused.remove(&id);
            }
        }
        Ok(())
    }

    /// Everything to send is read: the pack, the copied entries first (in stored order),
    /// then commits, tags, trees and blobs.
    fn pack(&mut self) -> Result<Fetched, Error> {
        let limit = match self.request.filter {
            Some(Filter::BlobLimit(limit)) => limit,
            _ => u64::MAX,
        };
        let mut reused: Vec<write::Reused> = Vec::with_capacity(self.reused.len());
        let mut objects = Vec::with_capacity(self.order.len() + self.send.len() + self.blobs.len());
        let mut take = |id: ObjectId,
                        name: u32,
                        content: &mut IdMap<(Kind, Vec<u8>)>,
                        reuse: &mut IdMap<write::Reused>|
         -> Result<(), Error> {
            if let Some(entry) = reuse.remove(&id) {
                content.remove(&id);
                reused.push(entry);
                return Ok(());
            }
            let (kind, data) = content.remove(&id).ok_or(object::Error::NotFound { id })?;
            objects.push(write::Object { id, kind, data, name });
            Ok(())
        };
        let mut reuse = std::mem::take(&mut self.reused);
        for id in std::mem::take(&mut self.order) {
            take(id, 0, &mut self.content, &mut reuse)?;
        }
        let send = std::mem::take(&mut self.send);
        for kind in [Kind::Tag, Kind::Tree] {
            for (id, name) in &send {
                let is_kind = match (self.content.get(id), reuse.get(id)) {
                    (Some((k, _)), _) => *k == kind,
                    (None, Some(_)) => kind == Kind::Tree || self.request.include_tag,
                    (None, None) => false,
                };
                if is_kind {
                    take(*id, *name, &mut self.content, &mut reuse)?;
                }
            }
        }
        for (id, name) in std::mem::take(&mut self.blobs) {
            if !reuse.contains_key(&id) {
                let size = self.content.get(&id).map_or(0, |(_, data)| data.len() as u64);
                if size >= limit && !self.wanted_blobs.contains(&id) {
                    self.content.remove(&id);
                    continue;
                }
            }
            take(id, name, &mut self.content, &mut reuse)?;
        }
        self.content = IdMap::default();
        // Stored order: a delta's base before it, as the stored pack had it.
        reused.sort_by_key(|r| self.stored_order.get(&r.id).copied().unwrap_or(usize::MAX));
        let copied = reused.len();
        let written = write::write_reusing(self.commits_hash_kind(), &reused, &objects, &self.request.pack);
        Ok(Fetched {
            common: std::mem::take(&mut self.common),
            pack: Some(SentPack {
                shallow: std::mem::take(&mut self.shallow),
                unshallow: std::mem::take(&mut self.unshallow),
                bytes: written.pack,
                objects: written.objects,
                deltas: written.deltas,
                copied,
                rounds: self.rounds,
            }),
        })
    }

    fn commits_hash_kind(&self) -> gix_hash::Kind {
        self.request.wants.first().map_or(gix_hash::Kind::Sha1, |id| id.kind())
    }
}

impl Operation for Upload {
    type Output = Fetched;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Fetched>, Error> {
        self.advance(cache)
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if let Stage::Refs(list) = &mut self.stage {
            return list.provide(cache, objects);
        }
        let asked = std::mem::take(&mut self.asked);
        if asked.len() != objects.len() || asked.is_empty() {
            return Err(Misuse("provide must answer every id of the Get, in order").into());
        }
        let max = cache.limits().max_object_bytes;
        for (id, stored) in asked.into_iter().zip(objects) {
            match stored {
                Some(stored) => {
                    let content = object::decode_content(&id, &stored, max)?;
                    self.content.insert(id, content);
                }
                None => {
                    self.absent.insert(id);
                }
            }
        }
        Ok(())
    }

    /// Blobs to send that a partial fetch left out of the store are fetched from its
    /// promisor remote, as git's upload-pack does in a partial clone; nothing else is
    /// (haves the store lacks are the client's own).
    fn fetches_promised(&self) -> bool {
        matches!(self.stage, Stage::Blobs { .. })
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        let hash_kind = self.commits_hash_kind();
        match (&mut self.stage, answer) {
            (Stage::Refs(list), answer) => list.answer(cache, answer),
            (Stage::Graph, Answer::Read(mut files)) => {
                if let Some(shallow) = files.pop().flatten() {
                    self.cut = super::client::parse_ids(&shallow, hash_kind)?.into_iter().collect();
                }
                // A graph that does not read is not used: commits are read instead.
                let chain = files.pop().flatten();
                let graph = files.pop().flatten();
                match crate::graph::load(graph, chain, hash_kind) {
                    crate::graph::Loaded::Graph(graph) => {
                        self.graph = graph;
                        self.stage = Stage::Haves;
                    }
                    crate::graph::Loaded::Layers(layers) => self.stage = Stage::GraphLayers(layers),
                }
                Ok(())
            }
            (Stage::GraphLayers(layers), Answer::Read(files)) => {
                self.graph = crate::graph::load_layers(layers, files, hash_kind);
                self.stage = Stage::Haves;
                Ok(())
            }
            (Stage::Reuse, Answer::Ranges(chunks)) => {
                self.take_reused(cache, chunks)?;
                self.stage = Stage::Blobs { next: 0 };
                Ok(())
            }
            _ => Err(Misuse("this step asked for no such answer").into()),
        }
    }
}
