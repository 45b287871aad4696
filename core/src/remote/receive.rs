//! Serving a push (`git push`): the received pack checked and stored, then each ref
//! updated by compare-and-swap.
//!
//! [`Receive`] does what `git receive-pack` does with one push:
//!
//! 1. Every command must name a branch (`refs/heads/<name>`) or a tag
//!    (`refs/tags/<name>`) by git's rules; a ref named twice is refused.
//! 2. The pack is indexed ([`ingest`]): every object is hashed and checked as on
//!    any read — trees canonical, with no `.git` or other refused names, commits
//!    canonical — and no file may exceed [`Limits::max_file_bytes`](crate::Limits). A pack
//!    that fails refuses every command (`unpack` fails) and nothing is written.
//! 3. Connectivity: everything the new tips reach must be in the pack or in the store,
//!    and a commit the pack leaves out must be reachable from the repo's refs (the client
//!    only leaves out what the refs it was shown reach).
//! 4. An update whose old id is not what the ref holds is refused (`stale info`).
//!    A branch may only move forward (its old commit an ancestor of the new one) unless
//!    the server allows non-fast-forward updates; an existing tag may only move then too.
//! 5. The pack and its index are stored (when any command is accepted: a push refused
//!    whole writes nothing), then each ref is compare-and-swapped from the old id the
//!    client sent: a ref someone else moved meanwhile is refused, never overwritten.
//!
//! Each command's outcome is reported as git's report-status gives it.
//!
//! A fetch from a remote stores its pack the same way, with what the remote cut out of
//! it ([`Cut`]): objects a partial fetch filtered out may be missing (the pack is marked
//! `.promisor`, as git marks packs from a promisor remote), and a shallow fetch's
//! boundary commits may lack their parents.
//!
//! ## The `shallow` file
//! git keeps the commits whose parents a repository lacks in one file, `shallow`, and
//! treats each as having no parents. A store is one repository for many repos, so an
//! entry whose parents *are* present would cut another repo's history short for git (and
//! git's gc would then delete it). So after every pack is stored — a fetch's and a push's
//! alike — the file is rewritten by [`Step::Swap`] to list exactly the commits, of its
//! own and of the new boundary, that still lack a parent; an entry whose parents arrived
//! goes. A fetch that added entries reads their parents once more after the swap: a pack
//! another writer stored meanwhile may have brought them, and then the file is settled
//! again. Either that writer, which reads the file after storing its pack, or this one
//! sees the other's write, so no entry outlives its parents' arrival.

use gix_hash::ObjectId;
use gix_object::Kind;

use bstr::BString;

use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object::{self, Object},
    pack::ingest,
    policy::{Policy, Violation},
    step::{Answer, CasOutcome, CasRef, Misuse, Operation, Step},
    store::{BranchName, RepoName},
};

use super::{
    OpError as Error,
    ancestry::{Ancestry, Parents},
    refs::{ListRefs, Refs},
};

/// One ref update a client asks for: `<old> <new> <name>`, a null id meaning "absent".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The ref, as the client names it: `refs/heads/main`.
    pub name: String,
    /// What the client believes it holds (null: that it does not exist).
    pub old: ObjectId,
    /// What it should hold (null: delete it).
    pub new: ObjectId,
}

/// One push.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The repo pushed to. A push to a repo that does not exist creates it.
    pub repo: String,
    /// The ref updates, in the client's order.
    pub updates: Vec<RefUpdate>,
    /// The pack (empty when every update is a delete).
    pub pack: Vec<u8>,
    /// Whether a branch may move to a commit that does not descend from its old one.
    pub allow_non_fast_forward: bool,
    /// The repo's write policy: excluded paths and the largest file, checked on every
    /// tree and blob the pack brings (a push that breaks it is refused whole).
    pub policy: Policy,
    /// What the sender cut out of the pack: nothing for a push.
    pub cut: Cut,
}

/// What a remote left out of a fetched pack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cut {
    /// Trees and blobs the pack's objects name may be missing: a partial fetch (a
    /// `filter`) from a promisor remote. The pack gets a `.promisor` marker.
    pub promisor: bool,
    /// Commits the pack brings without their parents: a shallow fetch's boundary (the
    /// shallow-info section's `shallow` lines).
    pub shallow: Vec<ObjectId>,
    /// The pack deepens the history of refs that are up to date: it comes with no ref
    /// update, every object it names must be in it or in the store (or be a boundary
    /// commit's parent, or left out by the filter), and it is stored, and the `shallow`
    /// file settled, like any other.
    pub deepen: bool,
}

/// The most times the `shallow` file is read and swapped again after losing to another
/// writer.
const SHALLOW_ATTEMPTS: u32 = 16;

/// How a push went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `Ok` if the pack was indexed and checked, else why not (git's `unpack <reason>`).
    pub unpack: Result<(), String>,
    /// Each update's outcome, in the client's order: `Ok`, or why it was refused.
    pub refs: Vec<(String, Result<(), String>)>,
    /// How many objects the pack held.
    pub objects: usize,
    /// The pack stored, if one was.
    pub pack_key: Option<String>,
    /// The store's `shallow` file as this push left it: the commits it holds without
    /// their parents.
    pub shallow: Vec<ObjectId>,
}

/// What is known of an object of the pack.
#[derive(Debug)]
struct Node {
    kind: Kind,
    /// What it names: a commit's tree and parents, a tree's entries, a tag's target.
    children: Vec<ObjectId>,
}

#[derive(Debug)]
struct Update {
    request: RefUpdate,
    /// The storage key of the ref.
    key: String,
    /// Why it is refused, once it is.
    refused: Option<String>,
    /// It is written or refused for good.
    settled: bool,
}

#[derive(Debug)]
enum Stage {
    Index,
    Refs(ListRefs),
    /// Reading the objects the pack leaves out, the new tips not in it, and old tips.
    Exist,
    /// A walk from the refs to the commits the pack leaves out.
    Reach {
        frontier: Vec<ObjectId>,
        seen: IdSet,
    },
    /// Fast-forward checks, one update at a time: a walk from its new commit.
    Forward {
        at: usize,
        walk: Option<Ancestry>,
    },
    /// A deepening pack: reading what it names outside itself.
    Closure(Vec<ObjectId>),
    Write,
    /// Reading the `shallow` file, once the pack is stored.
    ShallowRead,
    /// Reading the parents of the file's entries and the new boundary.
    ShallowParents,
    /// Swapping the file to the entries that still lack a parent.
    ShallowSwap,
    /// After the refs: reading the parents of the entries this pack added once more
    /// (`true` once they are asked for).
    ShallowRecheck(bool),
    /// Updating refs: reading update `at`, or (`Some`) swapping it.
    Swap {
        at: usize,
        cas: Option<CasRef>,
    },
    Done,
}

/// Serve one push: see the [module](self). Drive it through
/// [`Packed`](crate::pack::Packed) so that packed objects are read too.
#[derive(Debug)]
pub struct Receive {
    repo: RepoName,
    pack: Vec<u8>,
    allow_non_fast_forward: bool,
    policy: Policy,
    updates: Vec<Update>,
    stage: Stage,
    unpack: Result<(), String>,
    indexed: Option<ingest::Indexed>,
    nodes: IdMap<Node>,
    /// Commits of the pack with their parents and time.
    commits: IdMap<Parents>,
    refs: Refs,
    /// Objects read from the store, by kind; absent ones.
    stored: IdMap<Kind>,
    absent: IdSet,
    /// Commits the pack names but leaves out, not yet found from the refs.
    outside_commits: IdSet,
    /// Per update, what it needs from the store: (objects that must exist, commits that
    /// must be reachable).
    needs: Vec<(Vec<ObjectId>, Vec<ObjectId>)>,
    asked: Vec<ObjectId>,
    pack_key: Option<String>,
    objects: usize,
    cut: Cut,
    shallow: Shallow,
}

/// The `shallow` file as this push sees it.
#[derive(Debug, Default)]
struct Shallow {
    /// Its bytes as read (`None`: absent), and their entries.
    read: Option<Vec<u8>>,
    entries: Vec<ObjectId>,
    /// What it is swapped to.
    new: Option<Vec<u8>>,
    /// Its entries once settled.
    kept: Vec<ObjectId>,
    /// The entries this push added, checked again after the refs.
    added: Vec<ObjectId>,
    /// Reads of the file so far.
    attempts: u32,
}

impl Receive {
    /// Start serving `request`. A repo name git would refuse is an error; every other
    /// problem is reported per update.
    pub fn new(request: PushRequest) -> Result<Self, Error> {
        let repo = RepoName::new(&request.repo)?;
        let mut names = std::collections::HashSet::new();
        let updates = request
            .updates
            .into_iter()
            .map(|update| {
                let (key, mut refused) = match ref_key(&repo, &update.name) {
                    Ok(key) => (key, None),
                    Err(reason) => (String::new(), Some(reason)),
                };
                if !names.insert(update.name.clone()) {
                    refused = Some("the ref is named twice in one push".into());
                }
                if update.old.is_null() && update.new.is_null() {
                    refused = Some("deleting a ref that does not exist".into());
                }
                Update {
                    request: update,
                    key,
                    settled: refused.is_some(),
                    refused,
                }
            })
            .collect();
        let stage = Stage::Index;
        Ok(Receive {
            repo,
            pack: request.pack,
            allow_non_fast_forward: request.allow_non_fast_forward,
            policy: request.policy,
            updates,
            stage,
            unpack: Ok(()),
            indexed: None,
            nodes: IdMap::default(),
            commits: IdMap::default(),
            refs: Refs::default(),
            stored: IdMap::default(),
            absent: IdSet::default(),
            outside_commits: IdSet::default(),
            needs: Vec::new(),
            asked: Vec::new(),
            pack_key: None,
            objects: 0,
            cut: request.cut,
            shallow: Shallow::default(),
        })
    }

    /// A deepening pack, indexed: stored with no ref update.
    fn deepens(&self) -> bool {
        self.cut.deepen && self.updates.is_empty() && self.indexed.is_some()
    }

    /// What a deepening pack's objects name outside it, which must be stored: every
    /// child but a boundary commit's parents, and what the filter left out.
    fn closure(&self) -> Vec<ObjectId> {
        let mut named = Vec::new();
        let mut once = IdSet::default();
        for (id, node) in self.nodes.iter() {
            let is_commit = node.kind == Kind::Commit;
            for (i, child) in node.children.iter().enumerate() {
                let parent = is_commit && i > 0;
                let cut = parent && self.cut.shallow.contains(id);
                let filtered = self.cut.promisor && node.kind == Kind::Tree;
                if self.nodes.contains_key(child) || cut || filtered || !once.insert(*child) {
                    continue;
                }
                named.push(*child);
            }
        }
        named
    }

    /// The parents of `id`, if it is a commit of the pack or one read.
    fn parents_of(&self, id: &ObjectId) -> Option<&[ObjectId]> {
        self.commits.get(id).map(|c| c.parents.as_slice())
    }

    /// Whether `id` is known to be stored now (in the pack or read from the store).
    fn present(&self, id: &ObjectId) -> bool {
        self.nodes.contains_key(id) || self.stored.contains_key(id)
    }

    /// The candidates for the `shallow` file: its entries and the new boundary.
    fn shallow_candidates(&self) -> Vec<ObjectId> {
        let mut all: Vec<ObjectId> = self.shallow.entries.iter().chain(&self.cut.shallow).copied().collect();
        all.sort();
        all.dedup();
        all
    }

    fn refuse(&mut self, at: usize, reason: impl Into<String>) {
        let update = &mut self.updates[at];
        if update.refused.is_none() {
            update.refused = Some(reason.into());
        }
        update.settled = true;
    }

    fn open(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.updates.len()).filter(|&i| !self.updates[i].settled)
    }

    fn need(&mut self, ids: impl IntoIterator<Item = ObjectId>) -> Option<Step<Pushed>> {
        let mut once = IdSet::default();
        let ids: Vec<ObjectId> = ids
            .into_iter()
            .filter(|id| {
                !self.nodes.contains_key(id)
                    && !self.stored.contains_key(id)
                    && !self.absent.contains(id)
                    && once.insert(*id)
            })
            .collect();
        if ids.is_empty() {
            return None;
        }
        self.asked.clone_from(&ids);
        Some(Step::Get(ids))
    }

    /// The kind of `id`, from the pack or the store, if known to exist.
    fn kind(&self, id: &ObjectId) -> Option<Kind> {
        self.nodes
            .get(id)
            .map(|n| n.kind)
            .or_else(|| self.stored.get(id).copied())
    }

    fn commit(&self, id: &ObjectId) -> Option<&Parents> {
        self.commits.get(id)
    }

    /// Index and check the pack; on failure every update is refused.
    fn index(&mut self, cache: &ObjectCache) {
        // No pack: a delete, or an update to what the store holds already (which the
        // connectivity check then finds reachable from the refs, or refuses).
        if self.pack.is_empty() {
            return;
        }
        let limits = *cache.limits();
        let mut nodes = IdMap::default();
        let mut commits = IdMap::default();
        // What the policy checks: the trees' entries by name, the blobs' sizes.
        let checks = self.policy.exclude_patterns().next().is_some() || self.policy.max_file_bytes.is_some();
        let mut trees: IdMap<Vec<(BString, ObjectId, bool)>> = IdMap::default();
        let mut sizes: IdMap<u64> = IdMap::default();
        let mut visit = |id: ObjectId, kind: Kind, content: &[u8]| -> Result<(), String> {
            if kind == Kind::Blob && content.len() as u64 > limits.max_file_bytes {
                return Err(format!(
                    "blob {id} is {} bytes, over the limit of {} bytes",
                    content.len(),
                    limits.max_file_bytes
                ));
            }
            let object = object::parse(&id, kind, content).map_err(|err| err.to_string())?;
            if checks {
                match &object {
                    Object::Tree(tree) => {
                        let entries = tree
                            .entries
                            .iter()
                            .filter(|e| !e.mode.is_commit())
                            .map(|e| (e.filename.clone(), e.oid, e.mode.is_tree()))
                            .collect();
                        trees.insert(id, entries);
                    }
                    Object::Blob(_) => {
                        sizes.insert(id, content.len() as u64);
                    }
                    _ => {}
                }
            }
            let children = match &object {
                Object::Blob(_) => Vec::new(),
                Object::Tree(tree) => tree
                    .entries
                    .iter()
                    .filter(|e| !e.mode.is_commit())
                    .map(|e| e.oid)
                    .collect(),
                Object::Commit(commit) => {
                    commits.insert(
                        id,
                        Parents {
                            parents: commit.parents.iter().copied().collect(),
                            time: commit.committer.time.seconds,
                        },
                    );
                    std::iter::once(commit.tree)
                        .chain(commit.parents.iter().copied())
                        .collect()
                }
                Object::Tag(tag) => vec![tag.target],
            };
            nodes.insert(id, Node { kind, children });
            Ok(())
        };
        let pack = std::mem::take(&mut self.pack);
        match ingest::index(
            cache.hash_kind(),
            "the pushed pack",
            pack,
            limits.max_object_bytes,
            &mut visit,
        ) {
            Ok(indexed) => {
                self.objects = indexed.objects.len();
                self.indexed = Some(indexed);
                self.nodes = nodes;
                self.commits = commits;
                if let Err(violation) = self.check_policy(&trees, &sizes) {
                    for at in 0..self.updates.len() {
                        self.refuse(at, format!("refused by the repo's policy: {violation}"));
                    }
                }
            }
            Err(err) => {
                self.unpack = Err(err.to_string());
                for at in 0..self.updates.len() {
                    self.refuse(at, "unpacker error");
                }
            }
        }
    }

    /// The paths the pack's commits bring, against the policy: every tree of the pack
    /// walked from each commit's root, with the path it is found at.
    fn check_policy(&self, trees: &IdMap<Vec<(BString, ObjectId, bool)>>, sizes: &IdMap<u64>) -> Result<(), Violation> {
        if trees.is_empty() && sizes.is_empty() {
            return Ok(());
        }
        let mut stack: Vec<(BString, ObjectId)> = Vec::new();
        let mut seen = IdSet::default();
        for node in self.nodes.values() {
            if node.kind == Kind::Commit
                && let Some(tree) = node.children.first()
                && seen.insert(*tree)
            {
                stack.push((BString::default(), *tree));
            }
        }
        while let Some((prefix, tree)) = stack.pop() {
            let Some(entries) = trees.get(&tree) else { continue };
            for (name, oid, is_tree) in entries {
                let mut path = prefix.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
                if let Some(pattern) = self.policy.excluded_here(path.as_ref(), *is_tree) {
                    return Err(Violation::Excluded {
                        path,
                        pattern: pattern.to_owned(),
                    });
                }
                if *is_tree {
                    // Each tree is walked once, at the first path it is met at: a pack
                    // naming one tree at many paths cannot make the walk explode.
                    if seen.insert(*oid) {
                        stack.push((path, *oid));
                    }
                } else if let (Some(size), Some(limit)) = (sizes.get(oid), self.policy.max_file_bytes)
                    && *size > limit
                {
                    return Err(Violation::FileTooLarge {
                        path,
                        size: *size,
                        limit,
                    });
                }
            }
        }
        Ok(())
    }

    /// For each open update, what its new tip reaches outside the pack.
    fn connectivity(&mut self) {
        let mut needs = Vec::with_capacity(self.updates.len());
        for at in 0..self.updates.len() {
            let new = self.updates[at].request.new;
            if self.updates[at].settled || new.is_null() {
                needs.push((Vec::new(), Vec::new()));
                continue;
            }
            let (mut objects, mut commits) = (Vec::new(), Vec::new());
            let mut seen = IdSet::default();
            let mut stack = vec![(new, None)];
            while let Some((id, parent_of_commit)) = stack.pop() {
                if !seen.insert(id) {
                    continue;
                }
                match self.nodes.get(&id) {
                    Some(node) => {
                        let is_commit = node.kind == Kind::Commit;
                        // A boundary commit of a shallow fetch comes without parents.
                        let cut = is_commit && self.cut.shallow.contains(&id);
                        for (i, child) in node.children.iter().enumerate() {
                            // A commit's first child is its tree; the rest are parents.
                            if !(cut && i > 0) {
                                stack.push((*child, Some(is_commit && i > 0)));
                            }
                        }
                    }
                    None if parent_of_commit == Some(true) => commits.push(id),
                    // A partial fetch leaves out what its filter took.
                    None if self.cut.promisor => {}
                    None => objects.push(id),
                }
            }
            needs.push((objects, commits));
        }
        self.needs = needs;
    }

    fn advance(&mut self, cache: &mut ObjectCache) -> Result<Step<Pushed>, Error> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Index => {
                    self.index(cache);
                    self.connectivity();
                    self.stage = if self.deepens() {
                        Stage::Closure(self.closure())
                    } else if self.open().next().is_none() {
                        Stage::Write
                    } else {
                        Stage::Refs(ListRefs::new(self.repo.as_str())?)
                    };
                }
                Stage::Closure(named) => {
                    if let Some(step) = self.need(named.iter().copied()) {
                        self.stage = Stage::Closure(named);
                        return Ok(step);
                    }
                    if let Some(id) = named.iter().find(|id| self.kind(id).is_none()) {
                        self.unpack = Err(format!("missing necessary objects: {id}"));
                        self.indexed = None;
                    }
                    self.stage = Stage::Write;
                }
                Stage::Refs(mut list) => match list.poll(cache)? {
                    Step::Done(refs) => {
                        self.refs = refs;
                        // A client that names an old id the ref does not hold is refused
                        // now, before the pack is stored; the swap still catches a ref
                        // that moves after this.
                        for at in self.open().collect::<Vec<_>>() {
                            let update = &self.updates[at].request;
                            let current = self.refs.get(&update.name).map(|r| r.id);
                            if current != (!update.old.is_null()).then_some(update.old) {
                                self.refuse(at, stale(current));
                            }
                        }
                        self.stage = Stage::Exist;
                    }
                    step => {
                        self.stage = Stage::Refs(list);
                        return Ok(step.map(|_| unreachable!("only a step other than Done is passed on")));
                    }
                },
                Stage::Exist => {
                    let mut wanted = Vec::new();
                    for at in self.open().collect::<Vec<_>>() {
                        let (objects, commits) = &self.needs[at];
                        wanted.extend(objects.iter().chain(commits).copied());
                        let update = &self.updates[at].request;
                        wanted.extend([update.old, update.new].into_iter().filter(|id| !id.is_null()));
                    }
                    if let Some(step) = self.need(wanted) {
                        self.stage = Stage::Exist;
                        return Ok(step);
                    }
                    for at in self.open().collect::<Vec<_>>() {
                        let (objects, commits) = &self.needs[at];
                        let missing = objects
                            .iter()
                            .chain(commits)
                            .find(|id| self.kind(id).is_none())
                            .copied();
                        let update = self.updates[at].request.clone();
                        if let Some(id) = missing {
                            self.refuse(at, format!("missing necessary objects: {id}"));
                            continue;
                        }
                        if !update.new.is_null() {
                            let kind = self.kind(&update.new);
                            if update.name.starts_with("refs/heads/") && kind != Some(Kind::Commit) {
                                self.refuse(at, format!("{} is not a commit", update.new));
                                continue;
                            }
                        }
                        self.outside_commits.extend(self.needs[at].1.iter().copied());
                        // The new commit itself, when the pack leaves it out, must be
                        // reachable as well.
                        if !update.new.is_null() && !self.nodes.contains_key(&update.new) {
                            self.outside_commits.insert(update.new);
                        }
                    }
                    let tips: Vec<ObjectId> = self.refs.tips().collect();
                    for tip in &tips {
                        self.outside_commits.remove(tip);
                    }
                    let seen = tips.iter().copied().collect();
                    self.stage = Stage::Reach { frontier: tips, seen };
                }
                Stage::Reach { frontier, mut seen } => {
                    if self.outside_commits.is_empty() || frontier.is_empty() {
                        for at in self.open().collect::<Vec<_>>() {
                            let unreached = self.needs[at]
                                .1
                                .iter()
                                .chain(std::iter::once(&self.updates[at].request.new))
                                .find(|id| self.outside_commits.contains(*id))
                                .copied();
                            if let Some(id) = unreached {
                                self.refuse(
                                    at,
                                    format!("missing necessary objects: {id} is not reachable from this repo's refs"),
                                );
                            }
                        }
                        self.stage = Stage::Forward { at: 0, walk: None };
                        continue;
                    }
                    if let Some(step) = self.need(frontier.iter().copied()) {
                        self.stage = Stage::Reach { frontier, seen };
                        return Ok(step);
                    }
                    let mut next = Vec::new();
                    for id in &frontier {
                        if let Some(commit) = self.commit(id) {
                            for parent in commit.parents.clone() {
                                self.outside_commits.remove(&parent);
                                if seen.insert(parent) {
                                    next.push(parent);
                                }
                            }
                        }
                    }
                    self.stage = Stage::Reach { frontier: next, seen };
                }
                Stage::Forward { at, walk } => {
                    if at >= self.updates.len() {
                        self.stage = Stage::Write;
                        continue;
                    }
                    let update = self.updates[at].request.clone();
                    let unchecked = self.updates[at].settled
                        || update.old.is_null()
                        || update.new.is_null()
                        || self.allow_non_fast_forward;
                    let next = Stage::Forward { at: at + 1, walk: None };
                    if unchecked {
                        self.stage = next;
                        continue;
                    }
                    if update.name.starts_with("refs/tags/") {
                        self.refuse(at, "already exists");
                        self.stage = next;
                        continue;
                    }
                    let mut walk = walk.unwrap_or_else(|| Ancestry::new(update.new, update.old));
                    let commits = &self.commits;
                    match walk.next(&|id| commits.get(id).cloned()) {
                        Some(ids) => {
                            self.stage = Stage::Forward { at, walk: Some(walk) };
                            return Ok(Step::Get(ids));
                        }
                        None => {
                            if !walk.found() {
                                self.refuse(at, "non-fast-forward");
                            }
                            self.stage = next;
                        }
                    }
                }
                Stage::Write => {
                    let accepted = self.open().next().is_some() || (self.deepens() && self.unpack.is_ok());
                    match self.indexed.take() {
                        Some(indexed) if accepted && !indexed.objects.is_empty() => {
                            let key = indexed.pack_key();
                            let mut files = indexed.files();
                            if self.cut.promisor {
                                files.push(crate::step::Stored {
                                    key: promisor_key(&key),
                                    bytes: Vec::new(),
                                });
                            }
                            self.pack_key = Some(key);
                            self.stage = Stage::ShallowRead;
                            return Ok(Step::Write(files));
                        }
                        // Nothing stored: the shallow file has nothing new to account for.
                        _ => self.stage = Stage::Swap { at: 0, cas: None },
                    }
                }
                Stage::ShallowRead => {
                    self.shallow.attempts += 1;
                    if self.shallow.attempts > SHALLOW_ATTEMPTS {
                        return Err(Error::Refused(format!(
                            "the shallow file kept changing under this push ({SHALLOW_ATTEMPTS} attempts); nothing was updated"
                        )));
                    }
                    self.stage = Stage::ShallowRead;
                    return Ok(Step::Read(vec![SHALLOW.to_owned()]));
                }
                Stage::ShallowParents => {
                    let candidates = self.shallow_candidates();
                    // The candidates' commits first, then their parents.
                    let unread: Vec<ObjectId> = candidates
                        .iter()
                        .filter(|id| self.parents_of(id).is_none())
                        .copied()
                        .collect();
                    if let Some(step) = self.need(unread) {
                        self.stage = Stage::ShallowParents;
                        return Ok(step);
                    }
                    let parents: Vec<ObjectId> = candidates
                        .iter()
                        .filter_map(|id| self.parents_of(id))
                        .flatten()
                        .copied()
                        .collect();
                    if let Some(step) = self.need(parents) {
                        self.stage = Stage::ShallowParents;
                        return Ok(step);
                    }
                    // An entry stays while a parent of it is missing.
                    let kept: Vec<ObjectId> = candidates
                        .into_iter()
                        .filter(|id| match self.parents_of(id) {
                            Some(parents) => parents.iter().any(|p| !self.present(p)),
                            // A boundary commit the store does not hold stays listed: git
                            // reads the file only for commits it has.
                            None => true,
                        })
                        .collect();
                    self.shallow.added = kept
                        .iter()
                        .filter(|id| !self.shallow.entries.contains(id))
                        .copied()
                        .collect();
                    let new = (!kept.is_empty()).then(|| {
                        kept.iter()
                            .flat_map(|id| format!("{id}\n").into_bytes())
                            .collect::<Vec<u8>>()
                    });
                    self.shallow.kept.clone_from(&kept);
                    if kept == self.shallow.entries || new == self.shallow.read {
                        self.stage = Stage::Swap { at: 0, cas: None };
                        continue;
                    }
                    self.shallow.new = new;
                    self.stage = Stage::ShallowSwap;
                }
                Stage::ShallowSwap => {
                    self.stage = Stage::ShallowSwap;
                    return Ok(Step::Swap(crate::step::Swap {
                        key: SHALLOW.to_owned(),
                        expected: self.shallow.read.clone(),
                        new: self.shallow.new.clone(),
                    }));
                }
                Stage::ShallowRecheck(asked) => {
                    // Read the parents afresh: another writer may have stored them.
                    if !asked {
                        let parents: Vec<ObjectId> = self
                            .shallow
                            .added
                            .iter()
                            .filter_map(|id| self.parents_of(id))
                            .flatten()
                            .copied()
                            .collect();
                        for parent in &parents {
                            self.absent.remove(parent);
                        }
                        if let Some(step) = self.need(parents) {
                            self.stage = Stage::ShallowRecheck(true);
                            return Ok(step);
                        }
                    }
                    let arrived = self.shallow.added.iter().any(|id| {
                        self.parents_of(id)
                            .is_some_and(|parents| parents.iter().all(|p| self.present(p)))
                    });
                    self.shallow.added.clear();
                    if arrived {
                        // Settle the file again; the refs are done.
                        self.stage = Stage::ShallowRead;
                        continue;
                    }
                    return Ok(Step::Done(self.report()));
                }
                Stage::Swap { at, cas } => {
                    let Some(at) = (at..self.updates.len()).find(|&i| !self.updates[i].settled) else {
                        if !self.shallow.added.is_empty() {
                            self.stage = Stage::ShallowRecheck(false);
                            continue;
                        }
                        return Ok(Step::Done(self.report()));
                    };
                    match cas {
                        None => {
                            let key = self.updates[at].key.clone();
                            self.stage = Stage::Swap { at, cas: None };
                            return Ok(Step::ReadRef(key));
                        }
                        Some(cas) => {
                            self.stage = Stage::Swap {
                                at,
                                cas: Some(cas.clone()),
                            };
                            return Ok(Step::CasRef(cas));
                        }
                    }
                }
                Stage::Done => return Err(Misuse("poll called after Done").into()),
            }
        }
    }

    fn report(&mut self) -> Pushed {
        self.stage = Stage::Done;
        Pushed {
            unpack: self.unpack.clone(),
            refs: self
                .updates
                .iter()
                .map(|u| {
                    let outcome = match &u.refused {
                        Some(reason) => Err(reason.clone()),
                        None => Ok(()),
                    };
                    (u.request.name.clone(), outcome)
                })
                .collect(),
            objects: self.objects,
            pack_key: self.pack_key.clone(),
            shallow: self.shallow.kept.clone(),
        }
    }
}

/// The key of git's list of commits without their parents.
pub const SHALLOW: &str = "shallow";

/// The marker git puts beside a pack fetched from a promisor remote.
fn promisor_key(pack_key: &str) -> String {
    format!("{}.promisor", pack_key.strip_suffix(".pack").unwrap_or(pack_key))
}

/// Why an update whose old id is not the ref's value is refused.
fn stale(current: Option<ObjectId>) -> String {
    let now = current.map_or("absent".to_owned(), |id| id.to_string());
    format!("stale info: the ref is {now}, fetch first")
}

/// The storage key of a ref a client names, if it is one a push may update.
fn ref_key(repo: &RepoName, name: &str) -> Result<String, String> {
    let short = name
        .strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("refs/tags/"))
        .ok_or_else(|| "only branches (refs/heads/*) and tags (refs/tags/*) can be pushed".to_owned())?;
    BranchName::new(short).map_err(|err| err.to_string())?;
    Ok(format!("{}{}", repo.refs_prefix(), &name["refs/".len()..]))
}

impl Operation for Receive {
    type Output = Pushed;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Pushed>, Error> {
        self.advance(cache)
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        match &mut self.stage {
            Stage::Refs(list) => return list.provide(cache, objects),
            Stage::Forward { walk: Some(walk), .. } => return walk.provide(cache, objects),
            _ => {}
        }
        let asked = std::mem::take(&mut self.asked);
        if asked.len() != objects.len() || asked.is_empty() {
            return Err(Misuse("provide must answer every id of the Get, in order").into());
        }
        let max = cache.limits().max_object_bytes;
        for (id, stored) in asked.into_iter().zip(objects) {
            let Some(stored) = stored else {
                self.absent.insert(id);
                continue;
            };
            let (kind, content) = object::decode_content(&id, &stored, max)?;
            if kind == Kind::Commit
                && let Object::Commit(commit) = object::parse(&id, kind, &content)?
            {
                self.commits.insert(
                    id,
                    Parents {
                        parents: commit.parents.iter().copied().collect(),
                        time: commit.committer.time.seconds,
                    },
                );
            }
            self.stored.insert(id, kind);
        }
        Ok(())
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (std::mem::replace(&mut self.stage, Stage::Done), answer) {
            (Stage::Refs(mut list), answer) => {
                let result = list.answer(cache, answer);
                self.stage = Stage::Refs(list);
                result
            }
            (Stage::Swap { at, cas: None }, Answer::Ref(state)) => {
                let update = &self.updates[at].request;
                let current = state.as_ref().map(|s| s.value);
                let expected = (!update.old.is_null()).then_some(update.old);
                if current != expected {
                    self.refuse(at, stale(current));
                    self.stage = Stage::Swap { at: at + 1, cas: None };
                    return Ok(());
                }
                let cas = CasRef {
                    key: self.updates[at].key.clone(),
                    expected: state,
                    new: (!update.new.is_null()).then_some(update.new),
                };
                self.stage = Stage::Swap { at, cas: Some(cas) };
                Ok(())
            }
            (Stage::Swap { at, cas: Some(cas) }, Answer::Cas(outcome)) => {
                match outcome {
                    CasOutcome::Won { version } => {
                        let state = cas.new.map(|value| crate::step::RefState { value, version });
                        cache.remember_ref(&cas.key, state);
                        self.updates[at].settled = true;
                    }
                    CasOutcome::Lost { .. } => {
                        self.refuse(at, "the ref changed while the push was checked; fetch first");
                    }
                }
                self.stage = Stage::Swap { at: at + 1, cas: None };
                Ok(())
            }
            // The pack is stored: the file is read next.
            (Stage::ShallowRead, Answer::Put) => {
                self.stage = Stage::ShallowRead;
                Ok(())
            }
            (Stage::ShallowRead, Answer::Read(mut files)) => {
                let read = files.pop().flatten();
                self.shallow.entries = match &read {
                    Some(bytes) => super::client::parse_ids(bytes, cache.hash_kind())?,
                    None => Vec::new(),
                };
                self.shallow.read = read;
                self.shallow.kept.clone_from(&self.shallow.entries);
                let untouched = self.shallow.entries.is_empty() && self.cut.shallow.is_empty();
                self.stage = if untouched {
                    Stage::Swap { at: 0, cas: None }
                } else {
                    Stage::ShallowParents
                };
                Ok(())
            }
            (Stage::ShallowSwap, Answer::Swapped(replaced)) => {
                if replaced {
                    // After the refs of a first settling; at once after a recheck's.
                    self.stage = if self.open().any(|_| true) {
                        Stage::Swap { at: 0, cas: None }
                    } else {
                        Stage::ShallowRecheck(false)
                    };
                } else {
                    self.stage = Stage::ShallowRead;
                }
                Ok(())
            }
            (Stage::Swap { at, cas: None }, Answer::Put) => {
                self.stage = Stage::Swap { at, cas: None };
                Ok(())
            }
            (stage, _) => {
                self.stage = stage;
                Err(Misuse("the answer does not match the step asked").into())
            }
        }
    }
}
