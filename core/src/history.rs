//! History: the commits reachable from a start, newest first, a page at a time; and the
//! history of one file with its line counts.
//!
//! [`Log`] walks as `git log` does. With a path it keeps only the commits in which that
//! path differs from the parent, deciding it by comparing tree entry ids along the path
//! (never by diffing whole trees or reading blobs), with git's history simplification:
//! a merge whose path equals one parent's follows only that parent and is not shown. It
//! follows first parents by default (`git log --first-parent`); with all parents it
//! orders commits by committer time, as `git log` does.
//!
//! Commits form a chain that can only be read one link per round, so a walk over `n`
//! commits needs about `n` rounds; the trees along the path are fetched in the same
//! rounds, a level per round for each commit still being decided, so a path of depth
//! `d` adds about `d` rounds to the whole walk, not to each commit.
//!
//! With a commit-graph ([`crate::graph`], read by [`Packed`](crate::pack::Packed) with
//! the pack indexes and kept in the cache) the chain is known without reading it:
//! parents, committer times and root trees come from the graph, its changed-path Bloom
//! filters rule out the commits that did not change the path (for a commit whose first
//! parent is all that matters) without reading a tree, and only the commits a page shows
//! are read, the rest of the page in one round. Commits newer than the graph are walked
//! as objects, as without one.
//!
//! [`FileLog`] runs the same walk for one file and adds, for each commit, how the file
//! changed and its lines added and removed.
//!
//! ```
//! use snapgit_core::{
//!     ObjectCache, commit::{self, Change, Signature}, drive::{self, MemoryStore, ObjectStore},
//!     history::{FileLog, Log, Request},
//! };
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
//! let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let mut head = None;
//! for turn in 0..3 {
//!     let changes = vec![Change::put("notes.md", format!("turn {turn}\n")), Change::put(format!("log/{turn}"), "")];
//!     let request = commit::Request::new(head, changes, me.clone(), format!("turn {turn}"));
//!     let mut op = commit::Commit::new(&cache, request)?;
//!     let out = drive::run(&mut op, &mut cache, &store)?;
//!     store.put_many(&out.objects)?;
//!     head = Some(out.id);
//! }
//! let head = head.expect("three commits");
//!
//! // Two commits per page, only those that changed `notes.md`.
//! let request = Request::new(head, 2).with_path("notes.md");
//! let page = drive::run(&mut Log::new(request.clone())?, &mut cache, &store)?;
//! assert_eq!(page.commits[0].message, "turn 2\n");
//! let rest = drive::run(&mut Log::new(request.clone().after(page.next.expect("a next page")))?, &mut cache, &store)?;
//! assert_eq!(rest.commits.len(), 1);
//! assert!(rest.next.is_none());
//!
//! // The same walk with the file's lines added and removed in each commit.
//! let file = drive::run(&mut FileLog::new(request)?, &mut cache, &store)?;
//! let lines = file.commits[0].change.lines.expect("text");
//! assert_eq!((lines.added, lines.removed), (1, 1));
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use std::sync::Arc;

use bstr::{BString, ByteSlice};
use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    diff::{
        self, FileChange,
        tree::{Side, entry_at, file_change},
    },
    graph::Chain,
    id::IdSet,
    object, path,
    read::CommitInfo,
    step::{Answer, Fetch, Misuse, Operation, Step, StorageError},
    tree::{self, Mode},
};

/// The most commits a walk with the commit-graph looks ahead of the first undecided one.
const MAX_READ_AHEAD: usize = 256;

/// How many commits a page holds when a request names no limit.
pub const DEFAULT_LIMIT: usize = 50;

/// What to walk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// The newest commit of the walk.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub start: ObjectId,
    /// Keep only commits that changed this file or folder; `None` (or empty) keeps all.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_path")]
    #[serde(default)]
    pub path: Option<BString>,
    /// Follow only first parents (`git log --first-parent`); otherwise every parent,
    /// newest committer time first.
    #[serde(default = "crate::api::wire::default::yes")]
    pub first_parent: bool,
    /// The most commits one page holds; at least 1.
    #[serde(default = "crate::api::wire::default::limit")]
    pub limit: usize,
    /// Where the previous page of this same walk stopped.
    #[serde(default)]
    pub cursor: Option<Cursor>,
}

impl Request {
    /// The first page of at most `limit` commits from `start`, first parents only.
    pub fn new(start: ObjectId, limit: usize) -> Self {
        Request {
            start,
            path: None,
            first_parent: true,
            limit,
            cursor: None,
        }
    }

    /// Keep only commits that changed `path`.
    pub fn with_path(mut self, path: impl Into<BString>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Follow every parent, not only the first.
    pub fn all_parents(mut self) -> Self {
        self.first_parent = false;
        self
    }

    /// Continue where the page that returned `cursor` stopped.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.cursor = Some(cursor);
        self
    }
}

/// Where a walk stopped: pass it back with the same request to get the next page.
///
/// It is an opaque string (hex), safe in URLs and JSON. It holds the commits the walk
/// will look at next, and is bound to the walk's start, path and parent mode: a cursor
/// given to another walk is refused.
///
/// Pages joined always equal one walk when following first parents. Following all
/// parents, a cursor also carries the commits already shown that a later branch could
/// lead back to; that is exact when committer times never decrease from parent to child
/// (ties included). Where a clock went backwards, a later page can repeat a commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Cursor(String);

impl Cursor {
    /// The cursor as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Cursor {
    fn from(text: String) -> Self {
        Cursor(text)
    }
}

impl From<&str> for Cursor {
    fn from(text: &str) -> Self {
        Cursor(text.to_owned())
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a walk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// The commits, newest first.
    pub commits: Vec<CommitInfo>,
    /// Where to continue, `None` when the walk is complete.
    pub next: Option<Cursor>,
}

/// Why a walk failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path is not acceptable.
    #[error(transparent)]
    InvalidPath(#[from] path::Error),
    /// The page size is 0.
    #[error("invalid limit {limit}: a page holds at least one commit")]
    InvalidLimit {
        /// The limit given.
        limit: usize,
    },
    /// The cursor is not one this engine writes.
    #[error("malformed cursor {cursor:?}: {reason}")]
    InvalidCursor {
        /// The cursor given (cut to 100 characters).
        cursor: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The cursor belongs to a walk with another start, path or parent mode.
    #[error("cursor {cursor:?} belongs to another walk (start, path or parent mode differ)")]
    ForeignCursor {
        /// The cursor given (cut to 100 characters).
        cursor: String,
    },
    /// The start commit is not in storage.
    #[error("unknown commit {id}")]
    UnknownCommit {
        /// The id given.
        id: ObjectId,
    },
    /// The start names an object that is not a commit.
    #[error("object {id} is a {kind}, not a commit")]
    NotACommit {
        /// The id given.
        id: ObjectId,
        /// What it is.
        kind: gix_object::Kind,
    },
    /// File history was asked for a path that is a folder in a commit that changed it.
    #[error("path {path:?} is a folder in commit {commit}, not a file")]
    NotAFile {
        /// The path.
        path: BString,
        /// The commit.
        commit: ObjectId,
    },
    /// An object from storage is missing, corrupt or of the wrong kind.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// The storage adapter failed.
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        Error::Storage(err)
    }
}

/// A commit waiting to be looked at, with its committer time (which orders the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Queued {
    id: ObjectId,
    time: i64,
}

/// What looking at one commit decides.
enum Outcome {
    /// Everything needed is at hand.
    Ready {
        /// The commit is part of the result.
        shown: bool,
        /// The parents the walk continues with, with their times.
        follow: Vec<Queued>,
    },
    /// Objects are missing (and were asked for). `candidates` are the parents whose
    /// commits are at hand, to read ahead while waiting.
    Pending { candidates: Vec<Queued> },
}

/// The walk proper: git's revision walk with its default history simplification.
#[derive(Debug)]
struct Walk {
    components: Vec<BString>,
    /// The path, as the commit-graph's Bloom filters hash it.
    path: BString,
    first_parent: bool,
    /// Commits to look at, newest first; among equal times, first queued first.
    queue: Vec<Queued>,
    /// Every commit ever queued.
    seen: IdSet,
    /// Commits looked at, for the cursor (a first-parent chain never leads back to one).
    popped: Vec<Queued>,
    /// The store's shallow commits (git's `shallow` file): their parents are not stored,
    /// and the walk ends there as git's does.
    cut: IdSet,
}

impl Walk {
    fn filtered(&self) -> bool {
        !self.components.is_empty()
    }

    /// Queue `item` after every commit at least as new, as git's `commit_list_insert_by_date`.
    fn push(&mut self, item: Queued) {
        let at = self
            .queue
            .iter()
            .position(|q| q.time < item.time)
            .unwrap_or(self.queue.len());
        self.queue.insert(at, item);
    }

    /// How many commits past the first undecided one to read ahead. With a path: enough
    /// for the tree comparisons of the commits in between to overlap with reading the
    /// chain. Without one, following all parents: a few queued commits, whose parents
    /// can be read together when branches run side by side. A first-parent chain without
    /// a path has nothing to overlap.
    fn window(&self) -> usize {
        match (self.filtered(), self.first_parent) {
            (true, _) => self.components.len() + 3,
            (false, false) => 4,
            (false, true) => 0,
        }
    }

    /// Decide `id` from the commit-graph when it holds it: parents, their times and the
    /// root tree come from the graph, and with a path the commit's changed-path Bloom
    /// filter rules it out without a tree read when it says the path did not change (for
    /// a commit whose first parent is all that matters). Only a commit that is shown is
    /// read, for the page. `None` when the graph does not hold `id` (a commit newer than
    /// the graph): the objects decide.
    fn decide_by_graph(
        &self,
        fetch: &mut Fetch,
        cache: &ObjectCache,
        graph: &Chain,
        id: &ObjectId,
    ) -> Result<Option<Outcome>, Error> {
        let Some((at, entry)) = graph.find(id).and_then(|at| Some((at, graph.commit(at)?))) else {
            return Ok(None);
        };
        let mut parents = Vec::with_capacity(entry.parents.len());
        for &p in &entry.parents {
            let (Some(id), Some(parent)) = (graph.id(p), graph.commit(p)) else {
                return Ok(None);
            };
            parents.push((Queued { id, time: parent.time }, parent.tree));
            if self.first_parent {
                break;
            }
        }
        let candidates: Vec<Queued> = parents.iter().map(|(q, _)| *q).collect();
        // A shown commit is read for the page.
        let show = |fetch: &mut Fetch, follow: Vec<Queued>| -> Result<Outcome, Error> {
            Ok(match fetch.commit(cache, id)? {
                Some(_) => Outcome::Ready { shown: true, follow },
                None => Outcome::Pending { candidates: follow },
            })
        };
        if !self.filtered() {
            return show(fetch, candidates).map(Some);
        }
        let Some(&(first, _)) = parents.first() else {
            return Ok(Some(match self.differs(fetch, cache, Some(entry.tree), None)? {
                Some(true) => show(fetch, Vec::new())?,
                Some(false) => Outcome::Ready {
                    shown: false,
                    follow: Vec::new(),
                },
                None => Outcome::Pending { candidates },
            }));
        };
        if (self.first_parent || parents.len() == 1) && graph.may_have_changed(at, &self.path) == Some(false) {
            return Ok(Some(Outcome::Ready {
                shown: false,
                follow: vec![first],
            }));
        }
        let mut pending = false;
        for &(queued, tree) in &parents {
            match self.differs(fetch, cache, Some(entry.tree), Some(tree))? {
                // The first parent with the same path is the only one followed.
                Some(false) if !pending => {
                    return Ok(Some(Outcome::Ready {
                        shown: false,
                        follow: vec![queued],
                    }));
                }
                Some(false) => break,
                Some(true) => {}
                None => pending = true,
            }
        }
        if pending {
            return Ok(Some(Outcome::Pending { candidates }));
        }
        show(fetch, candidates).map(Some)
    }

    /// Decide `id`, asking for whatever is missing.
    fn decide(
        &self,
        fetch: &mut Fetch,
        cache: &ObjectCache,
        graph: Option<&Chain>,
        id: &ObjectId,
    ) -> Result<Outcome, Error> {
        if let Some(graph) = graph
            && let Some(outcome) = self.decide_by_graph(fetch, cache, graph, id)?
        {
            return Ok(outcome);
        }
        let Some(commit) = fetch.commit(cache, id)? else {
            return Ok(Outcome::Pending { candidates: Vec::new() });
        };
        let parents = match commit.parents.first() {
            _ if self.cut.contains(id) => &[][..],
            Some(first) if self.first_parent => std::slice::from_ref(first),
            _ => &commit.parents[..],
        };
        if !self.filtered() && self.first_parent {
            // A queue of one needs no order, so the parent need not be read yet.
            let follow = parents.iter().map(|&id| Queued { id, time: 0 }).collect();
            return Ok(Outcome::Ready { shown: true, follow });
        }
        if parents.is_empty() {
            // A root commit shows when the path exists in it.
            return Ok(match self.differs(fetch, cache, Some(commit.tree), None)? {
                Some(shown) => Outcome::Ready {
                    shown,
                    follow: Vec::new(),
                },
                None => Outcome::Pending { candidates: Vec::new() },
            });
        }
        let mut pending = false;
        let mut candidates = Vec::with_capacity(parents.len());
        for &parent in parents {
            let Some(parent_commit) = fetch.commit(cache, &parent)? else {
                pending = true;
                continue;
            };
            let queued = Queued {
                id: parent,
                time: parent_commit.committer.time.seconds,
            };
            candidates.push(queued);
            if !self.filtered() {
                continue;
            }
            match self.differs(fetch, cache, Some(commit.tree), Some(parent_commit.tree))? {
                // The first parent with the same path is the only one followed; the ones
                // after it do not matter.
                Some(false) if !pending => {
                    return Ok(Outcome::Ready {
                        shown: false,
                        follow: vec![queued],
                    });
                }
                Some(false) => break,
                Some(true) => {}
                None => pending = true,
            }
        }
        Ok(if pending {
            Outcome::Pending { candidates }
        } else {
            Outcome::Ready {
                shown: true,
                follow: candidates,
            }
        })
    }

    /// `Some(true)` if the entries at the path differ below the two root trees, `None`
    /// while trees must be fetched. Descends only while the ids differ, and asks for
    /// both sides of a level in the same round.
    fn differs(
        &self,
        fetch: &mut Fetch,
        cache: &ObjectCache,
        a: Option<ObjectId>,
        b: Option<ObjectId>,
    ) -> Result<Option<bool>, Error> {
        let mut a: Side = a.map(|id| (id, Mode::Tree));
        let mut b: Side = b.map(|id| (id, Mode::Tree));
        for component in &self.components {
            if a == b {
                return Ok(Some(false));
            }
            let a_tree = match a {
                Some((id, Mode::Tree)) => Some(fetch.tree(cache, &id)?),
                _ => None,
            };
            let b_tree = match b {
                Some((id, Mode::Tree)) => Some(fetch.tree(cache, &id)?),
                _ => None,
            };
            if matches!(a_tree, Some(None)) || matches!(b_tree, Some(None)) {
                return Ok(None);
            }
            let find = |t: Option<Arc<gix_object::Tree>>| {
                t.and_then(|t| tree::find(&t, component.as_bstr()).map(diff::tree::side))
            };
            a = find(a_tree.flatten());
            b = find(b_tree.flatten());
        }
        Ok(Some(a != b))
    }
}

/// The history operation. Create it with [`Log::new`], then call
/// [`poll`](Operation::poll) until it returns [`Step::Done`], answering every
/// [`Step::Get`] with [`provide`](Operation::provide).
#[derive(Debug)]
pub struct Log {
    start: ObjectId,
    limit: usize,
    fingerprint: u64,
    started: bool,
    walk: Walk,
    out: Vec<CommitInfo>,
    fetch: Fetch,
    done: bool,
    shallow: Shallow,
}

/// Whether a walk knows the store's shallow commits. It reads them only when an object
/// is missing, so a whole history costs nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shallow {
    Unread,
    /// An object was missing: the `shallow` file is to be read.
    Wanted,
    Asked,
    Read,
}

impl Log {
    /// Validate `request` (path, limit, cursor) and prepare the walk.
    pub fn new(request: Request) -> Result<Self, Error> {
        if request.limit == 0 {
            return Err(Error::InvalidLimit { limit: request.limit });
        }
        let components = diff::tree::components(request.path.as_ref())?;
        let fingerprint = fingerprint(&request.start, &components, request.first_parent);
        let path = BString::from(bstr::join("/", &components));
        let mut walk = Walk {
            components,
            path,
            first_parent: request.first_parent,
            queue: Vec::new(),
            seen: IdSet::default(),
            popped: Vec::new(),
            cut: IdSet::default(),
        };
        let started = match &request.cursor {
            None => false,
            Some(cursor) => {
                let state = decode_cursor(cursor, request.start.kind(), fingerprint)?;
                walk.seen.extend(state.queue.iter().chain(&state.seen).map(|q| q.id));
                walk.queue = state.queue;
                walk.popped = state.seen;
                true
            }
        };
        Ok(Log {
            start: request.start,
            limit: request.limit,
            fingerprint,
            started,
            walk,
            out: Vec::new(),
            fetch: Fetch::default(),
            done: false,
            shallow: Shallow::Unread,
        })
    }

    /// Whether git's shallow file cuts history at `id`: its parents are not stored.
    fn is_cut(&self, id: &ObjectId) -> bool {
        self.walk.cut.contains(id)
    }

    /// Take the last `Get`'s answers, unless an object other than the start is missing
    /// while the shallow file is unread: then read it first and ask again.
    fn take_answers(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if self.shallow == Shallow::Unread && self.fetch.absent_in(&objects).iter().any(|id| *id != self.start) {
            self.shallow = Shallow::Wanted;
            return match self.fetch.provide_present(cache, objects) {
                Err(Error::Object(err)) => Err(self.named(err)),
                other => other,
            };
        }
        match self.fetch.provide(cache, objects) {
            Err(Error::Object(err)) => Err(self.named(err)),
            other => other,
        }
    }

    /// The `shallow` file's answer.
    fn take_shallow(&mut self, cache: &ObjectCache, answer: Answer) -> Result<(), Error> {
        let (Shallow::Asked, Answer::Read(mut files)) = (self.shallow, answer) else {
            return Err(Misuse("the answer does not match the step asked").into());
        };
        self.shallow = Shallow::Read;
        if let Some(bytes) = files.pop().flatten() {
            for line in bytes.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
                let id = crate::id::from_hex(line)
                    .filter(|id| id.kind() == cache.hash_kind())
                    .ok_or_else(|| object::Error::Corrupt {
                        id: self.start,
                        reason: "the store's shallow file has a line that is not an object id".into(),
                    })?;
                self.walk.cut.insert(id);
            }
        }
        // A first-parent walk queues parents unread: those of a cut commit go again, as
        // if never met (another path may still lead to them).
        let cut_parents: IdSet = self
            .walk
            .cut
            .iter()
            .filter_map(|id| self.fetch.commit(cache, id).ok().flatten())
            .flat_map(|commit| commit.parents.iter().copied().collect::<Vec<_>>())
            .collect();
        self.fetch.reset_want();
        self.walk.queue.retain(|q| !cut_parents.contains(&q.id));
        for id in &cut_parents {
            self.walk.seen.remove(id);
        }
        Ok(())
    }

    /// The number of `Get` rounds asked for so far.
    pub fn rounds(&self) -> u32 {
        self.fetch.rounds()
    }

    fn step(&mut self, cache: &ObjectCache) -> Result<Step<Page>, Error> {
        let graph = cache.graph();
        if !self.started {
            let Some((id, commit)) = self.fetch.peeled_commit(cache, &self.start)? else {
                return Ok(self.get());
            };
            let time = commit.committer.time.seconds;
            self.walk.seen.insert(id);
            self.walk.queue.push(Queued { id, time });
            self.started = true;
        }
        loop {
            if self.out.len() >= self.limit {
                return Ok(Step::Done(self.finish()));
            }
            let Some(&head) = self.walk.queue.first() else {
                return Ok(Step::Done(self.finish()));
            };
            match self.walk.decide(&mut self.fetch, cache, graph.as_deref(), &head.id)? {
                Outcome::Ready { shown, follow } => {
                    self.walk.queue.remove(0);
                    if !self.walk.first_parent {
                        self.walk.popped.push(head);
                    }
                    for parent in follow {
                        if self.walk.seen.insert(parent.id) {
                            self.walk.push(parent);
                        }
                    }
                    if shown && let Some(commit) = self.fetch.commit(cache, &head.id)? {
                        self.out.push(CommitInfo::from_gix(head.id, &commit));
                    }
                }
                Outcome::Pending { .. } => break,
            }
        }
        self.read_ahead(cache, graph.as_deref())?;
        Ok(self.get())
    }

    /// While the first undecided commit waits, ask for what the next few will need, as
    /// if the walk went on through every parent they could follow.
    fn read_ahead(&mut self, cache: &ObjectCache, graph: Option<&Chain>) -> Result<(), Error> {
        // With the commit-graph, looking ahead reads only what the page will show (and
        // the trees of commits its filters cannot rule out): the rest of the page at once.
        let window = match graph {
            Some(_) => self
                .walk
                .window()
                .max(self.limit.saturating_sub(self.out.len()).min(MAX_READ_AHEAD)),
            None => self.walk.window(),
        };
        if window == 0 {
            return Ok(());
        }
        let mut queue = self.walk.queue.clone();
        let mut queued = IdSet::default();
        for _ in 0..=window {
            if queue.is_empty() {
                break;
            }
            let head = queue.remove(0);
            let parents = match self.walk.decide(&mut self.fetch, cache, graph, &head.id)? {
                Outcome::Ready { follow, .. } => follow,
                Outcome::Pending { candidates } => candidates,
            };
            for parent in parents {
                if !self.walk.seen.contains(&parent.id) && queued.insert(parent.id) {
                    let at = queue.iter().position(|q| q.time < parent.time).unwrap_or(queue.len());
                    queue.insert(at, parent);
                }
            }
        }
        Ok(())
    }

    fn get(&mut self) -> Step<Page> {
        self.fetch.take_get().unwrap_or(Step::Get(Vec::new()))
    }

    fn finish(&mut self) -> Page {
        self.done = true;
        let next = (!self.walk.queue.is_empty()).then(|| self.cursor());
        Page {
            commits: std::mem::take(&mut self.out),
            next,
        }
    }

    /// The walk's state: the queue, and the commits already looked at that a later
    /// commit could lead to again. With committer times that never decrease from parent
    /// to child, those are the ones with the newest queued time; commits a skewed clock
    /// made older than something still queued are kept as well.
    fn cursor(&self) -> Cursor {
        let newest = self.walk.queue.iter().map(|q| q.time).max().unwrap_or(i64::MIN);
        let seen: Vec<Queued> = self.walk.popped.iter().copied().filter(|q| q.time <= newest).collect();
        encode_cursor(self.fingerprint, &self.walk.queue, &seen)
    }

    /// Name the start commit when it is missing or not a commit.
    fn named(&self, err: object::Error) -> Error {
        match err {
            object::Error::NotFound { id } if id == self.start => Error::UnknownCommit { id },
            object::Error::WrongKind { id, actual, .. } if id == self.start => Error::NotACommit { id, kind: actual },
            other => Error::Object(other),
        }
    }
}

impl Operation for Log {
    type Output = Page;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Page>, Error> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        if self.shallow == Shallow::Wanted {
            self.shallow = Shallow::Asked;
            return Ok(Step::Read(vec![SHALLOW.to_owned()]));
        }
        self.fetch.reset_want();
        match self.step(cache) {
            Err(Error::Object(err)) => Err(self.named(err)),
            other => other,
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        self.take_answers(cache, objects)
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        self.take_shallow(cache, answer)
    }

    fn wants_graph(&self) -> bool {
        true
    }
}

/// The key of git's list of commits stored without their parents.
const SHALLOW: &str = crate::remote::receive::SHALLOW;

/// One commit of a file's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FileCommit {
    /// The commit.
    pub commit: CommitInfo,
    /// How the file changed from the commit's first parent: added, modified, deleted or
    /// type changed, with its ids, modes and lines added and removed (`None` if binary).
    pub change: FileChange,
}

/// One page of a file's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FilePage {
    /// The commits that changed the file, newest first.
    pub commits: Vec<FileCommit>,
    /// Where to continue, `None` when the walk is complete.
    pub next: Option<Cursor>,
}

/// The history of one file: the commits that changed it (a [`Log`] with the path), each
/// with the file's change and line counts against the commit's first parent.
///
/// After the walk it reads the file's two versions for every commit of the page: the
/// trees are those the walk already read, so this is usually one more round.
///
/// Create it with [`FileLog::new`], then call [`poll`](Operation::poll) until it returns
/// [`Step::Done`], answering every [`Step::Get`] with [`provide`](Operation::provide).
#[derive(Debug)]
pub struct FileLog {
    log: Log,
    path: BString,
    components: Vec<BString>,
    page: Option<Page>,
    fetch: Fetch,
    done: bool,
}

impl FileLog {
    /// Walk as `request` says; its path must name a file.
    pub fn new(request: Request) -> Result<Self, Error> {
        let path = request.path.clone().unwrap_or_default();
        let components = path::validate(path.as_bstr(), false)?
            .into_iter()
            .map(|c| c.to_owned())
            .collect();
        Ok(FileLog {
            log: Log::new(request)?,
            path,
            components,
            page: None,
            fetch: Fetch::default(),
            done: false,
        })
    }

    /// The number of `Get` rounds asked for so far.
    pub fn rounds(&self) -> u32 {
        self.log.rounds() + self.fetch.rounds()
    }

    /// The file's sides in every commit of the page, once all trees and blobs are here.
    fn changes(&mut self, cache: &ObjectCache, page: &Page) -> Result<Option<Vec<FileChange>>, Error> {
        let mut changes = Vec::with_capacity(page.commits.len());
        let mut complete = true;
        for info in &page.commits {
            let new = self.file_at(cache, Some(info.tree))?;
            let old = match info.parents.first() {
                // A shallow commit's file is new as far as the store knows.
                _ if self.log.is_cut(&info.id) => Some(None),
                None => Some(None),
                Some(parent) => match self.fetch.commit(cache, parent)? {
                    None => None,
                    Some(commit) => self.file_at(cache, Some(commit.tree))?,
                },
            };
            let (Some(old), Some(new)) = (old, new) else {
                complete = false;
                continue;
            };
            if old.is_none() && new.is_none() {
                return Err(Error::NotAFile {
                    path: self.path.clone(),
                    commit: info.id,
                });
            }
            for (id, mode) in [old, new].into_iter().flatten() {
                if mode != Mode::Submodule {
                    complete &= self.fetch.blob(cache, &id)?.is_some();
                }
            }
            changes.push(file_change(self.path.clone(), old, new));
        }
        Ok(complete.then_some(changes))
    }

    /// The file at the path below `root`: a folder counts as no file.
    fn file_at(&mut self, cache: &ObjectCache, root: Option<ObjectId>) -> Result<Option<Side>, Error> {
        let Some(root) = root else {
            return Ok(Some(None));
        };
        Ok(entry_at(&mut self.fetch, cache, &root, &self.components)?
            .map(|side| side.filter(|(_, mode)| *mode != Mode::Tree)))
    }

    fn content(&self, (id, mode): (ObjectId, Mode)) -> Arc<[u8]> {
        if mode == Mode::Submodule {
            return Arc::from(diff::submodule_text(&id));
        }
        self.fetch.held_blob(&id).unwrap_or_else(|| Arc::from(&[][..]))
    }
}

impl Operation for FileLog {
    type Output = FilePage;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<FilePage>, Error> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        let page = match self.page.take() {
            Some(page) => page,
            None => match self.log.poll(cache)? {
                Step::Done(page) => page,
                Step::Get(ids) => return Ok(Step::Get(ids)),
                Step::Read(keys) => return Ok(Step::Read(keys)),
                _ => return Err(Misuse("a history walk only reads objects and the shallow file").into()),
            },
        };
        self.fetch.reset_want();
        let Some(changes) = self.changes(cache, &page)? else {
            self.page = Some(page);
            return Ok(self.fetch.take_get().unwrap_or(Step::Get(Vec::new())));
        };
        let mut commits = Vec::with_capacity(changes.len());
        for (commit, mut change) in page.commits.into_iter().zip(changes) {
            let old = change.old.map(|side| self.content(side));
            let new = change.new.map(|side| self.content(side));
            change.binary = old.as_deref().is_some_and(diff::is_binary) || new.as_deref().is_some_and(diff::is_binary);
            change.lines = diff::line_stats(old.as_deref(), new.as_deref());
            commits.push(FileCommit { commit, change });
        }
        self.done = true;
        Ok(Step::Done(FilePage {
            commits,
            next: page.next,
        }))
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if self.page.is_some() {
            self.fetch.provide(cache, objects)
        } else {
            self.log.provide(cache, objects)
        }
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        self.log.answer(cache, answer)
    }

    fn wants_graph(&self) -> bool {
        true
    }
}

/// Binds a cursor to its walk; a cheap, stable hash (FNV-1a) is enough to catch a
/// cursor passed to the wrong walk.
fn fingerprint(start: &ObjectId, components: &[BString], first_parent: bool) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(b"snapgit log\0");
    eat(start.as_slice());
    for component in components {
        eat(b"/");
        eat(component);
    }
    eat(&[0, u8::from(first_parent)]);
    hash
}

const CURSOR_MAGIC: &[u8; 2] = b"L1";

/// A decoded cursor.
struct CursorState {
    queue: Vec<Queued>,
    seen: Vec<Queued>,
}

/// `L1`, fingerprint, id length, then the queue and the seen commits, each as a count
/// and (id, time) pairs; all in hex.
fn encode_cursor(fingerprint: u64, queue: &[Queued], seen: &[Queued]) -> Cursor {
    let id_len = queue.first().map_or(20, |q| q.id.as_slice().len());
    let mut bytes = Vec::with_capacity(16 + (queue.len() + seen.len()) * (id_len + 8));
    bytes.extend_from_slice(CURSOR_MAGIC);
    bytes.extend_from_slice(&fingerprint.to_be_bytes());
    bytes.push(id_len as u8);
    for list in [queue, seen] {
        bytes.extend_from_slice(&(list.len() as u32).to_be_bytes());
        for q in list {
            bytes.extend_from_slice(q.id.as_slice());
            bytes.extend_from_slice(&q.time.to_be_bytes());
        }
    }
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push_str(&format!("{b:02x}"));
    }
    Cursor(text)
}

fn decode_cursor(cursor: &Cursor, kind: gix_hash::Kind, fingerprint: u64) -> Result<CursorState, Error> {
    let text = cursor.as_str();
    let invalid = |reason| Error::InvalidCursor {
        cursor: text.chars().take(100).collect(),
        reason,
    };
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("it is not the hex a cursor is written in"));
    }
    let bytes: Vec<u8> = text
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("zz"), 16).unwrap_or(0))
        .collect();
    let mut reader = Reader { bytes: &bytes };
    if reader.take(2) != Some(&CURSOR_MAGIC[..]) {
        return Err(invalid("it does not start like a cursor of this version"));
    }
    let stored = reader.u64().ok_or_else(|| invalid("it is truncated"))?;
    let id_len = reader.take(1).ok_or_else(|| invalid("it is truncated"))?[0] as usize;
    if stored != fingerprint {
        return Err(Error::ForeignCursor {
            cursor: text.chars().take(100).collect(),
        });
    }
    if id_len != kind.len_in_bytes() {
        return Err(invalid("its ids have another length than this repository's"));
    }
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let count = reader.u32().ok_or_else(|| invalid("it is truncated"))? as usize;
        // Never trust a count for an allocation: it must fit in what is left.
        if count.checked_mul(id_len + 8).is_none_or(|n| n > reader.bytes.len()) {
            return Err(invalid("it is truncated"));
        }
        for _ in 0..count {
            let id = reader.take(id_len).ok_or_else(|| invalid("it is truncated"))?;
            // The length is the hash kind's, checked above.
            let mut id_bytes = ObjectId::null(kind);
            id_bytes.as_mut_slice().copy_from_slice(id);
            let id = id_bytes;
            let time = reader.u64().ok_or_else(|| invalid("it is truncated"))? as i64;
            list.push(Queued { id, time });
        }
    }
    if !reader.bytes.is_empty() {
        return Err(invalid("it has trailing bytes"));
    }
    let [queue, seen] = lists;
    if queue.is_empty() {
        return Err(invalid("it has nothing left to walk"));
    }
    if queue.windows(2).any(|w| w[0].time < w[1].time) {
        return Err(invalid("its queue is out of order"));
    }
    Ok(CursorState { queue, seen })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
    }
}
