//! The difference between the trees of two commits, as `git diff` reports it.
//!
//! [`Diff`] is a sans-IO operation. It reads the two commits, then walks both trees a
//! level per round, descending only into folders whose ids differ, so unchanged parts
//! of the tree are never read. Blobs are read (all in one round) only when line counts
//! or a patch are asked for. Renames are found by identical content, as
//! `git diff -M100%` finds them.
//!
//! ```
//! use snapgit_core::{
//!     ObjectCache, commit::{self, Change, Signature}, diff::{ChangeKind, tree::{Diff, Request}},
//!     drive::{self, MemoryStore, ObjectStore},
//! };
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
//! let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let mut commit = |parent, changes| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
//!     let mut op = commit::Commit::new(&cache, commit::Request::new(parent, changes, me.clone(), "turn"))?;
//!     let out = drive::run(&mut op, &mut cache, &store)?;
//!     store.put_many(&out.objects)?;
//!     Ok(out.id)
//! };
//! let first = commit(None, vec![Change::put("a.md", "one\ntwo\n"), Change::put("b.md", "b\n")])?;
//! let second = commit(Some(first), vec![Change::put("a.md", "one\n2\n"), Change::rename("b.md", "c.md")])?;
//!
//! // The commit against its parent, with line counts and a patch `git apply` accepts.
//! let request = Request::new(None, second).with_patch();
//! let out = drive::run(&mut Diff::new(request)?, &mut cache, &store)?;
//! assert_eq!(out.files[0].kind, ChangeKind::Modified);
//! assert_eq!(out.files[1].kind, ChangeKind::Renamed { from: "b.md".into() });
//! let lines = out.files[0].lines.expect("text");
//! assert_eq!((lines.added, lines.removed), (1, 1));
//! assert!(out.patch.expect("asked for").starts_with(b"diff --git a/a.md b/a.md\n"));
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use std::cmp::Ordering;
use std::sync::Arc;

use bstr::{BStr, BString, ByteSlice};
use gix_hash::ObjectId;
use gix_object::tree::Entry;

use crate::{
    cache::ObjectCache,
    diff::{self, ChangeKind, FileChange, patch},
    id::IdMap,
    object, order, path,
    step::{Fetch, Misuse, Operation, Step, StorageError},
    tree::{self, Mode},
};

/// What to compare, and how much to report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// The old side; `None` for the first parent of `to` (nothing, for a root commit).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_id")]
    #[serde(default)]
    pub from: Option<ObjectId>,
    /// The new side.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub to: ObjectId,
    /// Compare only this file or folder; `None` (or empty) for the whole tree.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_path")]
    #[serde(default)]
    pub path: Option<BString>,
    /// Pair deleted and added files with identical content as renames.
    #[serde(default = "crate::api::wire::default::yes")]
    pub renames: bool,
    /// Count lines added and removed per file (reads the blobs of changed files).
    #[serde(default = "crate::api::wire::default::yes")]
    pub line_stats: bool,
    /// Write a unified patch for every changed file (reads their blobs).
    #[serde(default)]
    pub patch: bool,
    /// In the patch, write binary files as `GIT binary patch` data (as `git diff
    /// --binary`) instead of a `Binary files ... differ` line.
    #[serde(default)]
    pub binary_patch: bool,
}

impl Request {
    /// Compare `from` (or the first parent of `to`) with `to`: changed paths, renames and
    /// line counts, as a commit reports them (line counts on by default everywhere; see
    /// [`Request::without_line_stats`]).
    pub fn new(from: Option<ObjectId>, to: ObjectId) -> Self {
        Request {
            from,
            to,
            path: None,
            renames: true,
            line_stats: true,
            patch: false,
            binary_patch: false,
        }
    }

    /// Compare only `path` (a file or folder).
    pub fn with_path(mut self, path: impl Into<BString>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Count no lines: only paths, kinds and ids, without reading any blob (unless a
    /// patch is asked for).
    pub fn without_line_stats(mut self) -> Self {
        self.line_stats = false;
        self
    }

    /// Write a unified patch.
    pub fn with_patch(mut self) -> Self {
        self.patch = true;
        self
    }
}

/// The difference between two commits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Diff))]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// The commit compared from; `None` when `to` is a root commit compared with nothing.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_id")]
    pub from: Option<ObjectId>,
    /// The commit compared to.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub to: ObjectId,
    /// Every changed file, sorted by path (the new path, for a rename). `binary` is only
    /// known, and `lines` only set, when line counts or a patch were asked for.
    pub files: Vec<FileChange>,
    /// The unified patch of every changed file, when asked for: what `git diff` prints,
    /// except that binary files always carry full ids on their `index` line, so that
    /// `git apply` can find their content in the repository.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::api::schema::Bytes>))]
    #[serde(with = "crate::api::wire::opt_bytes")]
    pub patch: Option<BString>,
}

/// Why a diff failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path is not acceptable.
    #[error(transparent)]
    InvalidPath(#[from] path::Error),
    /// A commit to compare is not in storage.
    #[error("unknown commit {id}")]
    UnknownCommit {
        /// The id given.
        id: ObjectId,
    },
    /// An id to compare names an object that is not a commit.
    #[error("object {id} is a {kind}, not a commit")]
    NotACommit {
        /// The id given.
        id: ObjectId,
        /// What it is.
        kind: gix_object::Kind,
    },
    /// The folder compared with the commit was refused ([`crate::worktree`]).
    #[error(transparent)]
    Folder(#[from] crate::worktree::FolderError),
    /// The path exists in neither commit.
    #[error("path {path:?} exists in neither commit")]
    PathNotFound {
        /// The path.
        path: BString,
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

/// An entry as the diff sees it: mode and id.
pub(crate) type Side = Option<(ObjectId, Mode)>;

/// Two entries at the same path still to compare.
#[derive(Debug)]
struct Pair {
    path: BString,
    old: Side,
    new: Side,
}

#[derive(Debug)]
enum Stage {
    Commits,
    Locate { old: Option<ObjectId>, new: ObjectId },
    Walk,
    Blobs,
}

/// The diff operation. Create it with [`Diff::new`], then call
/// [`poll`](Operation::poll) until it returns [`Step::Done`], answering every
/// [`Step::Get`] with [`provide`](Operation::provide).
///
/// From a cold cache it needs one round for the commits (two when the old side is the
/// first parent), one per tree level that differs, and one for blobs if they are read.
#[derive(Debug)]
pub struct Diff {
    request: Request,
    components: Vec<BString>,
    from: Option<ObjectId>,
    stage: Stage,
    pairs: Vec<Pair>,
    files: Vec<FileChange>,
    fetch: Fetch,
    /// The new side's root tree when it is a folder built in memory
    /// ([`crate::worktree`]) rather than a commit.
    folder: Option<ObjectId>,
    /// Paths the folder leaves out: no change at or below them.
    untracked: std::collections::HashSet<BString>,
    done: bool,
}

impl Diff {
    /// Validate `request` and prepare the operation.
    pub fn new(request: Request) -> Result<Self, Error> {
        let components = components(request.path.as_ref())?;
        Ok(Diff {
            from: request.from,
            request,
            components,
            stage: Stage::Commits,
            pairs: Vec::new(),
            files: Vec::new(),
            fetch: Fetch::default(),
            folder: None,
            untracked: Default::default(),
            done: false,
        })
    }

    /// Compare the commit `request.from` with the tree `root`, held in memory with the
    /// objects below it (`held`) that storage may not have: a folder on disk.
    /// What the commit has at or below an `untracked` path is no change (the folder left
    /// it out).
    pub(crate) fn against_tree(
        request: Request,
        root: ObjectId,
        held: Vec<(ObjectId, object::Object)>,
        untracked: Vec<BString>,
    ) -> Result<Self, Error> {
        let mut diff = Diff::new(request)?;
        for (id, object) in held {
            diff.fetch.hold(id, object);
        }
        diff.folder = Some(root);
        diff.untracked = untracked.into_iter().collect();
        Ok(diff)
    }

    /// `path` is untracked, or below an untracked folder.
    fn untracked(&self, path: &BStr) -> bool {
        !self.untracked.is_empty()
            && (self.untracked.contains(path)
                || path
                    .iter()
                    .enumerate()
                    .any(|(i, &b)| b == b'/' && self.untracked.contains(&path[..i])))
    }

    /// The number of `Get` rounds asked for so far.
    pub fn rounds(&self) -> u32 {
        self.fetch.rounds()
    }

    /// The root trees to compare, once both commits are at hand.
    fn roots(&mut self, cache: &ObjectCache) -> Result<Option<(Option<ObjectId>, ObjectId)>, Error> {
        if let Some(root) = self.folder {
            let from = self.request.from.unwrap_or(root);
            return Ok(self.fetch.peeled_commit(cache, &from)?.map(|(id, commit)| {
                self.request.from = Some(id);
                self.from = Some(id);
                (Some(commit.tree), root)
            }));
        }
        // Tags are peeled: the result names the commits compared.
        let new = self.fetch.peeled_commit(cache, &self.request.to)?.map(|(id, commit)| {
            self.request.to = id;
            commit
        });
        let old = match self.request.from {
            Some(from) => self.fetch.peeled_commit(cache, &from)?.map(|(id, commit)| {
                self.request.from = Some(id);
                self.from = Some(id);
                Some(commit.tree)
            }),
            None => match &new {
                None => None,
                Some(new) => match new.parents.first().copied() {
                    None => Some(None),
                    Some(parent) => {
                        self.from = Some(parent);
                        // The parent is not a commit the caller named: its absence is a
                        // broken repository, not an unknown id.
                        self.fetch.commit(cache, &parent)?.map(|c| Some(c.tree))
                    }
                },
            },
        };
        Ok(match (old, new) {
            (Some(old), Some(new)) => Some((old, new.tree)),
            _ => None,
        })
    }

    /// Walk every pair whose trees are at hand; keep the others for the next round.
    fn walk(&mut self, cache: &ObjectCache) -> Result<(), Error> {
        let mut work = std::mem::take(&mut self.pairs);
        while let Some(pair) = work.pop() {
            if pair.old == pair.new || self.untracked(pair.path.as_bstr()) {
                continue;
            }
            let old_tree = tree_of(&mut self.fetch, cache, pair.old)?;
            let new_tree = tree_of(&mut self.fetch, cache, pair.new)?;
            if matches!(old_tree, Some(None)) || matches!(new_tree, Some(None)) {
                self.pairs.push(pair);
                continue;
            }
            let (old_tree, new_tree) = (old_tree.flatten(), new_tree.flatten());
            if old_tree.is_none() && new_tree.is_none() {
                self.files.push(file_change(pair.path, pair.old, pair.new));
                continue;
            }
            // A file facing a folder: the file is deleted or added on its own.
            if old_tree.is_none() && pair.old.is_some() {
                self.files.push(file_change(pair.path.clone(), pair.old, None));
            }
            if new_tree.is_none() && pair.new.is_some() {
                self.files.push(file_change(pair.path.clone(), None, pair.new));
            }
            let old_entries = old_tree.as_deref().map_or(&[][..], |t| &t.entries[..]);
            let new_entries = new_tree.as_deref().map_or(&[][..], |t| &t.entries[..]);
            merge_entries(old_entries, new_entries, |old, new| {
                let name = old.or(new).map(|e| e.filename.as_bstr()).unwrap_or_default();
                work.push(Pair {
                    path: path::join(pair.path.as_bstr(), name),
                    old: old.map(side),
                    new: new.map(side),
                });
            });
        }
        Ok(())
    }

    /// Read the blobs line counts and patches need; `false` while some are missing.
    fn blobs(&mut self, cache: &ObjectCache) -> Result<bool, Error> {
        let mut complete = true;
        for file in &self.files {
            for (id, mode) in [file.old, file.new].into_iter().flatten() {
                if mode != Mode::Submodule {
                    complete &= self.fetch.blob(cache, &id)?.is_some();
                }
            }
        }
        Ok(complete)
    }

    fn finish(&mut self) -> Output {
        let mut files = std::mem::take(&mut self.files);
        let mut text = self.request.patch.then(Vec::new);
        let options = patch::Options {
            binary: self.request.binary_patch,
            ..patch::Options::default()
        };
        if self.request.line_stats || self.request.patch {
            for file in &mut files {
                let old = file.old.map(|side| self.content(side));
                let new = file.new.map(|side| self.content(side));
                file.binary =
                    old.as_deref().is_some_and(diff::is_binary) || new.as_deref().is_some_and(diff::is_binary);
                if self.request.line_stats {
                    file.lines = diff::line_stats(old.as_deref(), new.as_deref());
                }
                if let Some(out) = &mut text {
                    patch::write(out, file, old.as_deref(), new.as_deref(), &options);
                }
            }
        }
        Output {
            from: self.from,
            to: self.request.to,
            files,
            patch: text.map(BString::from),
        }
    }

    /// The content git diffs for one side: the blob, or a submodule's commit line.
    fn content(&self, (id, mode): (ObjectId, Mode)) -> Arc<[u8]> {
        if mode == Mode::Submodule {
            return Arc::from(diff::submodule_text(&id));
        }
        // Every blob was read in the blob stage; an absent one cannot reach here.
        self.fetch.held_blob(&id).unwrap_or_else(|| Arc::from(&[][..]))
    }

    fn step(&mut self, cache: &ObjectCache) -> Result<Step<Output>, Error> {
        loop {
            match &self.stage {
                Stage::Commits => {
                    let Some((old, new)) = self.roots(cache)? else {
                        return Ok(self.get());
                    };
                    self.stage = Stage::Locate { old, new };
                }
                Stage::Locate { old, new } => {
                    let (old, new) = (*old, *new);
                    let old = match old {
                        None => Some(None),
                        Some(root) => entry_at(&mut self.fetch, cache, &root, &self.components)?,
                    };
                    let new = entry_at(&mut self.fetch, cache, &new, &self.components)?;
                    let (Some(old), Some(new)) = (old, new) else {
                        return Ok(self.get());
                    };
                    if old.is_none() && new.is_none() {
                        return Err(Error::PathNotFound {
                            path: self.request.path.clone().unwrap_or_default(),
                        });
                    }
                    self.pairs.push(Pair {
                        path: BString::from(bstr::join("/", &self.components)),
                        old,
                        new,
                    });
                    self.stage = Stage::Walk;
                }
                Stage::Walk => {
                    self.walk(cache)?;
                    if !self.pairs.is_empty() {
                        return Ok(self.get());
                    }
                    order::sort_by(&mut self.files, |a, b| a.path.cmp(&b.path));
                    if self.request.renames {
                        detect_renames(&mut self.files);
                    }
                    self.stage = Stage::Blobs;
                }
                Stage::Blobs => {
                    if (self.request.line_stats || self.request.patch) && !self.blobs(cache)? {
                        return Ok(self.get());
                    }
                    self.done = true;
                    return Ok(Step::Done(self.finish()));
                }
            }
        }
    }

    fn get(&mut self) -> Step<Output> {
        self.fetch.take_get().unwrap_or(Step::Get(Vec::new()))
    }

    /// Name the commit the caller gave when it is missing or not a commit.
    fn named(&self, err: object::Error) -> Error {
        let named = |id: &ObjectId| *id == self.request.to || self.request.from == Some(*id);
        match err {
            object::Error::NotFound { id } if named(&id) => Error::UnknownCommit { id },
            object::Error::WrongKind { id, actual, .. } if named(&id) => Error::NotACommit { id, kind: actual },
            other => Error::Object(other),
        }
    }
}

impl Operation for Diff {
    type Output = Output;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Output>, Error> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        self.fetch.reset_want();
        match self.step(cache) {
            Err(Error::Object(err)) => Err(self.named(err)),
            other => other,
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        match self.fetch.provide(cache, objects) {
            Err(Error::Object(err)) => Err(self.named(err)),
            other => other,
        }
    }
}

/// Parse an optional path to compare: `None` or empty means the whole tree.
pub(crate) fn components(path: Option<&BString>) -> Result<Vec<BString>, path::Error> {
    match path {
        None => Ok(Vec::new()),
        Some(p) if p.is_empty() => Ok(Vec::new()),
        Some(p) => Ok(path::validate(p.as_bstr(), false)?
            .into_iter()
            .map(|c| c.to_owned())
            .collect()),
    }
}

/// The entry at `components` below the tree `root` (`Some(None)` if nothing is there),
/// or `None` while trees along the way must be fetched.
pub(crate) fn entry_at(
    fetch: &mut Fetch,
    cache: &ObjectCache,
    root: &ObjectId,
    components: &[BString],
) -> Result<Option<Side>, object::Error> {
    let mut current = (*root, Mode::Tree);
    for component in components {
        if current.1 != Mode::Tree {
            return Ok(Some(None));
        }
        let Some(tree) = fetch.tree(cache, &current.0)? else {
            return Ok(None);
        };
        match tree::find(&tree, component.as_bstr()) {
            None => return Ok(Some(None)),
            Some(entry) => current = side(entry),
        }
    }
    Ok(Some(Some(current)))
}

/// The tree of a side: `None` if the side is not a folder, `Some(None)` while it must be
/// fetched.
#[allow(clippy::type_complexity)]
fn tree_of(
    fetch: &mut Fetch,
    cache: &ObjectCache,
    side: Side,
) -> Result<Option<Option<Arc<gix_object::Tree>>>, object::Error> {
    match side {
        Some((id, Mode::Tree)) => Ok(Some(fetch.tree(cache, &id)?)),
        _ => Ok(None),
    }
}

pub(crate) fn side(entry: &Entry) -> (ObjectId, Mode) {
    (entry.oid, Mode::of(entry))
}

/// Call `pair` for every name in either list, in git's order, with the entry on each
/// side. A file and a folder of the same name are different names, as in git.
fn merge_entries<'a>(old: &'a [Entry], new: &'a [Entry], mut pair: impl FnMut(Option<&'a Entry>, Option<&'a Entry>)) {
    let (mut i, mut j) = (0, 0);
    loop {
        match (old.get(i), new.get(j)) {
            (None, None) => break,
            (Some(a), None) => {
                pair(Some(a), None);
                i += 1;
            }
            (None, Some(b)) => {
                pair(None, Some(b));
                j += 1;
            }
            (Some(a), Some(b)) => match a.cmp(b) {
                Ordering::Less => {
                    pair(Some(a), None);
                    i += 1;
                }
                Ordering::Greater => {
                    pair(None, Some(b));
                    j += 1;
                }
                Ordering::Equal => {
                    pair(Some(a), Some(b));
                    i += 1;
                    j += 1;
                }
            },
        }
    }
}

/// git's file types: a mode change within one type is a modification, across types a
/// type change.
fn file_type(mode: Mode) -> u8 {
    match mode {
        Mode::Regular | Mode::Executable => 0,
        Mode::Symlink => 1,
        Mode::Submodule => 2,
        Mode::Tree => 3,
    }
}

/// A change of one file, blobs not read yet.
pub(crate) fn file_change(path: BString, old: Side, new: Side) -> FileChange {
    let kind = match (old, new) {
        (None, _) => ChangeKind::Added,
        (_, None) => ChangeKind::Deleted,
        (Some((_, a)), Some((_, b))) if file_type(a) != file_type(b) => ChangeKind::TypeChanged,
        _ => ChangeKind::Modified,
    };
    FileChange {
        path,
        kind,
        old,
        new,
        binary: false,
        lines: None,
    }
}

/// How many identical sources git looks at for one destination before it picks one.
const MAX_IDENTICAL_CANDIDATES: usize = 100;

/// Pair deleted and added files with identical content, as git's exact rename detection
/// does: destinations in path order each take the first unused source with the same id
/// (and the same mode unless both are regular files), preferring one with the same
/// file name.
fn detect_renames(files: &mut Vec<FileChange>) {
    let sources: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].kind == ChangeKind::Deleted)
        .collect();
    if sources.is_empty() {
        return;
    }
    let mut by_id: IdMap<Vec<usize>> = IdMap::default();
    for &i in &sources {
        if let Some((id, _)) = files[i].old {
            by_id.entry(id).or_default().push(i);
        }
    }
    let mut used = vec![false; files.len()];
    let mut renames = Vec::new();
    for dst in 0..files.len() {
        let Some((dst_id, dst_mode)) = files[dst].new.filter(|_| files[dst].kind == ChangeKind::Added) else {
            continue;
        };
        let Some(candidates) = by_id.get(&dst_id) else {
            continue;
        };
        let mut best: Option<(usize, u8)> = None;
        let mut left = MAX_IDENTICAL_CANDIDATES;
        for &src in candidates {
            let Some((_, src_mode)) = files[src].old else {
                continue;
            };
            let regular = |m: Mode| matches!(m, Mode::Regular | Mode::Executable);
            if !(regular(src_mode) && regular(dst_mode)) && src_mode != dst_mode {
                continue;
            }
            if used[src] {
                continue;
            }
            let score = 1 + u8::from(basename_same(files[src].path.as_bstr(), files[dst].path.as_bstr()));
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((src, score));
                if score == 2 {
                    break;
                }
            }
            left -= 1;
            if left == 0 {
                break;
            }
        }
        if let Some((src, _)) = best {
            used[src] = true;
            renames.push((src, dst));
        }
    }
    for &(src, dst) in &renames {
        let from = files[src].path.clone();
        let old = files[src].old;
        let file = &mut files[dst];
        file.kind = ChangeKind::Renamed { from };
        file.old = old;
    }
    let mut index = 0;
    files.retain(|_| {
        let keep = !used[index];
        index += 1;
        keep
    });
}

/// `true` if both paths end in the same file name (git's `basename_same`).
fn basename_same(a: &BStr, b: &BStr) -> bool {
    let name = |p: &BStr| p.rfind_byte(b'/').map_or(p.to_owned(), |i| p[i + 1..].into());
    name(a) == name(b)
}
