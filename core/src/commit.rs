//! Building a commit from a parent and a set of changes.
//!
//! [`Commit`] is a sans-IO operation: it asks for the parent commit, then for the trees
//! along every touched path one level per round (all paths at once), then for the old
//! blobs it needs for line counts. From a cold cache a commit whose deepest touched path
//! has `d` components needs at most `d + 2` rounds (`d + 1` without line counts); with
//! every touched tree and blob cached it needs none. Its result holds only the objects
//! the parent does not already have.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use bstr::{BStr, BString, ByteSlice};
use gix_hash::ObjectId;
use gix_object::{Kind, tree::Entry};

use crate::{
    cache::ObjectCache,
    diff::{self, ChangeKind, FileChange},
    id::IdSet,
    object::{self, CollisionError, NewObject, Object},
    order, path,
    step::{Fetch, Misuse, Operation, Step, StorageError},
    tree::{self, Mode},
};

/// A point in time as git records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Time {
    /// Seconds since the Unix epoch, UTC.
    pub seconds: i64,
    /// The local time zone's offset from UTC in minutes (`120` for `+0200`).
    pub offset_minutes: i32,
}

/// Who made a change, and when.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signature {
    /// The name; no `<`, `>`, newline or NUL.
    pub name: String,
    /// The email address; no `<`, `>`, newline or NUL.
    pub email: String,
    /// When.
    pub time: Time,
}

impl Signature {
    /// A signature at `seconds` since the epoch, in UTC.
    pub fn new(name: impl Into<String>, email: impl Into<String>, seconds: i64) -> Self {
        Signature {
            name: name.into(),
            email: email.into(),
            time: Time {
                seconds,
                offset_minutes: 0,
            },
        }
    }
}

/// One change to the tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", tag = "type", deny_unknown_fields)]
pub enum Change {
    /// Write a file, creating folders as needed.
    Put {
        /// Where.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        #[serde(with = "crate::api::wire::path")]
        path: BString,
        /// The file's content (for a symlink, its target).
        #[cfg_attr(feature = "openapi", schema(value_type = crate::api::schema::Bytes))]
        #[serde(with = "crate::api::wire::bytes")]
        data: Vec<u8>,
        /// [`Mode::Regular`], [`Mode::Executable`] or [`Mode::Symlink`].
        #[serde(default = "crate::api::wire::default::regular")]
        mode: Mode,
    },
    /// Remove a file or a whole folder. A folder left empty disappears.
    Delete {
        /// What.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        #[serde(with = "crate::api::wire::path")]
        path: BString,
    },
    /// Move a file or folder, keeping content and mode. The target must not exist.
    Rename {
        /// Where it is.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        #[serde(with = "crate::api::wire::path")]
        from: BString,
        /// Where it goes.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        #[serde(with = "crate::api::wire::path")]
        to: BString,
    },
}

impl Change {
    /// Write a regular file.
    pub fn put(path: impl Into<BString>, data: impl Into<Vec<u8>>) -> Self {
        Change::Put {
            path: path.into(),
            data: data.into(),
            mode: Mode::Regular,
        }
    }

    /// Remove a file or folder.
    pub fn delete(path: impl Into<BString>) -> Self {
        Change::Delete { path: path.into() }
    }

    /// Move a file or folder.
    pub fn rename(from: impl Into<BString>, to: impl Into<BString>) -> Self {
        Change::Rename {
            from: from.into(),
            to: to.into(),
        }
    }
}

/// Everything a commit is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The commit to build on; `None` for a root commit.
    pub parent: Option<ObjectId>,
    /// The changes, applied together. No path may be touched twice, and no touched path
    /// may lie inside another touched path.
    pub changes: Vec<Change>,
    /// Who wrote the change.
    pub author: Signature,
    /// Who committed it.
    pub committer: Signature,
    /// The message, stored as given plus a final newline if it lacks one (as
    /// `git commit -m` does); an empty message stays empty.
    pub message: String,
    /// Make a commit even when the tree does not change.
    pub allow_empty: bool,
    /// Count lines added and removed per file (reads the old blobs of modified and
    /// deleted files).
    pub line_stats: bool,
}

impl Request {
    /// A request with the author as committer, line counts on and empty commits refused.
    pub fn new(parent: Option<ObjectId>, changes: Vec<Change>, author: Signature, message: impl Into<String>) -> Self {
        Request {
            parent,
            changes,
            committer: author.clone(),
            author,
            message: message.into(),
            allow_empty: false,
            line_stats: true,
        }
    }
}

/// A built commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The new commit's id.
    pub id: ObjectId,
    /// Its root tree.
    pub tree: ObjectId,
    /// The commit it was built on.
    pub parent: Option<ObjectId>,
    /// The objects the parent does not have: blobs, then trees (children before their
    /// parents), then the commit. Write them in this order, then move the ref.
    pub objects: Vec<NewObject>,
    /// Every file that changed, sorted by path.
    pub files: Vec<FileChange>,
}

/// What kind of thing already stands at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// A file (or symlink).
    File,
    /// A folder.
    Folder,
    /// A submodule.
    Submodule,
}

impl std::fmt::Display for Existing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Existing::File => "a file",
            Existing::Folder => "a folder",
            Existing::Submodule => "a submodule",
        })
    }
}

/// Why a commit could not be built. Nothing is produced on any error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path is not acceptable in a tree.
    #[error(transparent)]
    InvalidPath(#[from] path::Error),
    /// A file was given a mode files cannot have.
    #[error("invalid mode {mode} for file {path:?}: use regular, executable or symlink")]
    InvalidMode {
        /// The file.
        path: BString,
        /// The mode given.
        mode: Mode,
    },
    /// A name, email or time zone cannot be written into a commit.
    #[error("invalid signature {value:?}: {reason}")]
    InvalidSignature {
        /// The offending name, email or offset.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The message contains a NUL byte.
    #[error("invalid commit message: it contains a NUL byte")]
    InvalidMessage,
    /// Two changes touch the same path.
    #[error("path {path:?} is changed twice")]
    DuplicatePath {
        /// The path.
        path: BString,
    },
    /// One change's path lies inside another's (a file and a folder at the same path).
    #[error("path {path:?} lies inside {parent:?}, which is changed too")]
    OverlappingPaths {
        /// The inner path.
        path: BString,
        /// The changed path that contains it.
        parent: BString,
    },
    /// Nothing would change, and empty commits were not allowed.
    #[error("the commit changes nothing (allow empty commits to make it anyway)")]
    EmptyCommit,
    /// A path to delete or rename does not exist in the parent.
    #[error("path {path:?} does not exist in the parent commit")]
    PathNotFound {
        /// The path.
        path: BString,
    },
    /// Something already stands where the change needs to write.
    #[error("cannot write {path:?}: {existing} is in the way at {at:?}")]
    PathConflict {
        /// The path being written.
        path: BString,
        /// Where the obstacle is.
        at: BString,
        /// What it is.
        existing: Existing,
    },
    /// A file is larger than the limit.
    #[error("file {path:?} is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// The file.
        path: BString,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The commit carries more changes than the limit.
    #[error("the commit has {count} changes, over the limit of {limit}")]
    TooManyChanges {
        /// Changes given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A file's content is a SHA-1 collision attack.
    #[error("file {path:?} refused: {source}")]
    Collision {
        /// The file.
        path: BString,
        /// Details.
        source: CollisionError,
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

/// Trees a commit writes, children first, with their decoded form for the cache.
#[derive(Default)]
struct NewTrees {
    trees: Vec<(NewObject, gix_object::Tree)>,
    ids: IdSet,
}

/// A file to write, validated and hashed.
#[derive(Debug)]
struct Put {
    path: BString,
    data: Vec<u8>,
    mode: Mode,
    id: ObjectId,
}

/// The edits of a request as a tree of folders, each the edits below it by entry name,
/// kept flat in one list (folder 0 is the root) rather than nested. A path may be 2,047
/// folders deep, so nothing that walks the edits recurses once per folder: a wasm stack
/// holds far fewer frames than a native one.
#[derive(Debug)]
struct Dirs {
    dirs: Vec<BTreeMap<BString, Node>>,
}

#[derive(Debug, Clone)]
enum Node {
    /// A folder: its position in [`Dirs`].
    Dir(usize),
    Put(usize),
    Delete,
    RenameFrom,
    RenameTo(BString),
}

/// A file-level event found while resolving, turned into a [`FileChange`] at the end.
#[derive(Debug)]
struct Event {
    path: BString,
    kind: ChangeKind,
    old: Option<(ObjectId, Mode)>,
    new: Option<(ObjectId, Mode)>,
    put: Option<usize>,
}

/// A folder being compared with the parent's: its edits, the parent's tree there, the
/// position of the next edit.
struct Frame {
    dir: usize,
    old: Option<Arc<gix_object::Tree>>,
    path: BString,
    next: usize,
}

impl Frame {
    /// Start on folder `dir` at `path`, whose tree in the parent is `tree_id`; `None`
    /// while that tree must be fetched (the folder waits for the next pass).
    fn open(
        fetch: &mut Fetch,
        cache: &ObjectCache,
        dir: usize,
        tree_id: Option<ObjectId>,
        path: BString,
    ) -> Result<Option<Frame>, Error> {
        let old = match tree_id {
            None => None,
            Some(id) => match fetch.tree(cache, &id)? {
                None => return Ok(None),
                Some(tree) => Some(tree),
            },
        };
        Ok(Some(Frame {
            dir,
            old,
            path,
            next: 0,
        }))
    }
}

/// The commit operation. Create it with [`Commit::new`], then drive it: call
/// [`poll`](Operation::poll) until it returns [`Step::Done`], answering every
/// [`Step::Get`] with [`provide`](Operation::provide).
#[derive(Debug)]
pub struct Commit {
    parent: Option<ObjectId>,
    edits: Edits,
    puts: Vec<Put>,
    author: Signature,
    committer: Signature,
    message: BString,
    allow_empty: bool,
    line_stats: bool,
    hash_kind: gix_hash::Kind,
    fetch: Fetch,
    events: Vec<Event>,
    renames: Vec<(BString, BString)>,
    sources: HashMap<BString, Entry>,
    done: bool,
}

impl Commit {
    /// Validate `request` and prepare the operation. Every input error is reported here,
    /// before any object is asked for.
    pub fn new(cache: &ObjectCache, request: Request) -> Result<Self, Error> {
        let limits = cache.limits();
        let hash_kind = cache.hash_kind();
        if request.changes.len() > limits.max_changes {
            return Err(Error::TooManyChanges {
                count: request.changes.len(),
                limit: limits.max_changes,
            });
        }
        if request.changes.is_empty() && !request.allow_empty {
            return Err(Error::EmptyCommit);
        }
        check_signature(&request.author)?;
        check_signature(&request.committer)?;
        if request.message.contains('\0') {
            return Err(Error::InvalidMessage);
        }
        let mut message = BString::from(request.message);
        if !message.is_empty() && !message.ends_with(b"\n") {
            message.push(b'\n');
        }

        let mut touched = Touched::default();
        let mut edits = Dirs::new();
        let mut puts = Vec::new();
        let mut renames = Vec::new();
        for change in request.changes {
            match change {
                Change::Put { path, data, mode } => {
                    if !mode.is_file() {
                        return Err(Error::InvalidMode { path, mode });
                    }
                    let components = path::validate(path.as_bstr(), mode == Mode::Symlink)?;
                    if data.len() as u64 > limits.max_file_bytes {
                        return Err(Error::FileTooLarge {
                            size: data.len() as u64,
                            limit: limits.max_file_bytes,
                            path,
                        });
                    }
                    touched.add(&path)?;
                    let id = match object::hash(hash_kind, Kind::Blob, &data) {
                        Ok(id) => id,
                        Err(source) => return Err(Error::Collision { path, source }),
                    };
                    edits.insert(&components, Node::Put(puts.len()));
                    puts.push(Put { path, data, mode, id });
                }
                Change::Delete { path } => {
                    let components = path::validate(path.as_bstr(), false)?;
                    touched.add(&path)?;
                    edits.insert(&components, Node::Delete);
                }
                Change::Rename { from, to } => {
                    let from_components = path::validate(from.as_bstr(), false)?;
                    let to_components = path::validate(to.as_bstr(), false)?;
                    touched.add(&from)?;
                    touched.add(&to)?;
                    edits.insert(&from_components, Node::RenameFrom);
                    edits.insert(&to_components, Node::RenameTo(from.clone()));
                    renames.push((from, to));
                }
            }
        }
        touched.check_overlaps()?;

        Ok(Commit {
            parent: request.parent,
            edits: edits.freeze(),
            puts,
            author: request.author,
            committer: request.committer,
            message,
            allow_empty: request.allow_empty,
            line_stats: request.line_stats,
            hash_kind,
            fetch: Fetch::default(),
            events: Vec::new(),
            renames,
            sources: HashMap::default(),
            done: false,
        })
    }

    /// The number of `Get` rounds this operation has asked for so far.
    pub fn rounds(&self) -> u32 {
        self.fetch.rounds()
    }

    /// Walk what is known, noting every object still needed. Returns the parent's root
    /// tree (`None` for a root commit) once nothing is missing.
    fn resolve(&mut self, cache: &ObjectCache) -> Result<Option<Option<ObjectId>>, Error> {
        self.fetch.reset_want();
        self.events.clear();
        self.sources.clear();
        let base = match self.parent {
            None => None,
            Some(parent) => match self.fetch.commit(cache, &parent)? {
                None => return Ok(None),
                Some(commit) => Some(commit.tree),
            },
        };
        let edits = std::mem::take(&mut self.edits);
        let result = self.resolve_dirs(cache, &edits, base);
        self.edits = edits;
        result?;
        Ok(self.fetch.complete().then_some(base))
    }

    /// Compare every edited folder with the parent's, depth first in name order, noting
    /// events and asking for the trees not at hand (a folder whose tree is missing is
    /// skipped until the next pass).
    fn resolve_dirs(&mut self, cache: &ObjectCache, edits: &Edits, base: Option<ObjectId>) -> Result<(), Error> {
        let mut stack: Vec<Frame> = Vec::new();
        if let Some(root) = Frame::open(&mut self.fetch, cache, 0, base, BString::default())? {
            stack.push(root);
        }
        while let Some(frame) = stack.last_mut() {
            let Some((name, node)) = edits.dirs[frame.dir].get(frame.next) else {
                stack.pop();
                continue;
            };
            frame.next += 1;
            let child_path = path::join(frame.path.as_bstr(), name.as_bstr());
            let entry = frame
                .old
                .as_deref()
                .and_then(|t| tree::find(t, name.as_bstr()))
                .cloned();
            let entry_mode = entry.as_ref().map(Mode::of);
            match node {
                Node::Dir(sub) => {
                    let tree_id = match entry {
                        None => None,
                        Some(e) if e.mode.is_tree() => Some(e.oid),
                        Some(e) => return Err(blocked(edits, *sub, child_path, existing(Mode::of(&e)))),
                    };
                    if let Some(frame) = Frame::open(&mut self.fetch, cache, *sub, tree_id, child_path)? {
                        stack.push(frame);
                    }
                }
                Node::Put(index) => {
                    let put = &self.puts[*index];
                    let new = Some((put.id, put.mode));
                    match (entry, entry_mode) {
                        (None, _) => self.events.push(Event {
                            path: child_path,
                            kind: ChangeKind::Added,
                            old: None,
                            new,
                            put: Some(*index),
                        }),
                        (Some(e), Some(mode)) if mode.is_file() => {
                            if e.oid == put.id && mode == put.mode {
                                continue;
                            }
                            if self.line_stats && e.oid != put.id && !diff::is_binary(&put.data) {
                                self.fetch.blob(cache, &e.oid)?;
                            }
                            // A file becoming a symlink or back is git's type change.
                            let type_changed = (mode == Mode::Symlink) != (put.mode == Mode::Symlink);
                            self.events.push(Event {
                                path: child_path,
                                kind: if type_changed {
                                    ChangeKind::TypeChanged
                                } else {
                                    ChangeKind::Modified
                                },
                                old: Some((e.oid, mode)),
                                new,
                                put: Some(*index),
                            });
                        }
                        (Some(e), _) => {
                            return Err(Error::PathConflict {
                                path: put.path.clone(),
                                at: child_path,
                                existing: existing(Mode::of(&e)),
                            });
                        }
                    }
                }
                Node::Delete => {
                    let Some(e) = entry else {
                        return Err(Error::PathNotFound { path: child_path });
                    };
                    let line_stats = self.line_stats;
                    self.resolve_files(cache, &e, child_path, line_stats, &mut |path, id, mode| Event {
                        path,
                        kind: ChangeKind::Deleted,
                        old: Some((id, mode)),
                        new: None,
                        put: None,
                    })?;
                }
                Node::RenameFrom => {
                    let Some(e) = entry else {
                        return Err(Error::PathNotFound { path: child_path });
                    };
                    self.sources.insert(child_path, e);
                }
                Node::RenameTo(from) => {
                    if let Some(e) = entry {
                        return Err(Error::PathConflict {
                            path: child_path.clone(),
                            at: child_path,
                            existing: existing(Mode::of(&e)),
                        });
                    }
                    // The source is resolved in its own folder, which may come later in
                    // this walk; rename events are listed once everything is resolved.
                    debug_assert!(!from.is_empty());
                }
            }
        }
        Ok(())
    }

    /// Note an event for `entry` at `path`, or for every file below it if it is a folder,
    /// asking for subtrees (and with `blobs`, file contents) as needed.
    fn resolve_files(
        &mut self,
        cache: &ObjectCache,
        entry: &Entry,
        entry_path: BString,
        blobs: bool,
        event: &mut dyn FnMut(BString, ObjectId, Mode) -> Event,
    ) -> Result<(), Error> {
        // Depth first, without recursion (see `Dirs`): entries still to visit, next last.
        let mut pending = vec![(entry.clone(), entry_path)];
        while let Some((entry, entry_path)) = pending.pop() {
            let mode = Mode::of(&entry);
            match mode {
                Mode::Tree => {
                    let Some(tree) = self.fetch.tree(cache, &entry.oid)? else {
                        continue;
                    };
                    for child in tree.entries.iter().rev() {
                        let child_path = path::join(entry_path.as_bstr(), child.filename.as_bstr());
                        pending.push((child.clone(), child_path));
                    }
                }
                Mode::Submodule => self.events.push(event(entry_path, entry.oid, mode)),
                _ => {
                    if blobs {
                        self.fetch.blob(cache, &entry.oid)?;
                    }
                    self.events.push(event(entry_path, entry.oid, mode));
                }
            }
        }
        Ok(())
    }

    /// List the files each rename moves (needs the source folders' subtrees).
    fn resolve_renames(&mut self, cache: &ObjectCache) -> Result<(), Error> {
        for index in 0..self.renames.len() {
            let (from, to) = self.renames[index].clone();
            let Some(source) = self.sources.get(&from).cloned() else {
                continue;
            };
            self.resolve_files(cache, &source, to.clone(), false, &mut |path, id, mode| {
                let old_path = rebase(path.as_bstr(), to.as_bstr(), from.as_bstr());
                Event {
                    path,
                    kind: ChangeKind::Renamed { from: old_path },
                    old: Some((id, mode)),
                    new: Some((id, mode)),
                    put: None,
                }
            })?;
        }
        Ok(())
    }

    /// Build the new trees bottom-up, children before their folder, without recursion
    /// (see `Dirs`). Returns the new root tree id, or `None` if empty.
    fn build_dirs(
        &self,
        edits: &Edits,
        base: Option<ObjectId>,
        known: &IdSet,
        out: &mut NewTrees,
    ) -> Result<Option<ObjectId>, Error> {
        /// A folder being built: the parent's tree there, its entries so far, the next edit.
        struct Building {
            dir: usize,
            tree_id: Option<ObjectId>,
            old: Option<Arc<gix_object::Tree>>,
            entries: Vec<Entry>,
            next: usize,
        }
        let start = |dir: usize, tree_id: Option<ObjectId>| {
            let old = tree_id.and_then(|id| self.fetch.held_tree(&id));
            let entries = old.as_ref().map(|t| t.entries.clone()).unwrap_or_default();
            Building {
                dir,
                tree_id,
                old,
                entries,
                next: 0,
            }
        };
        let mut stack = vec![start(0, base)];
        // The id a finished subfolder left for its entry in the folder below it on the stack.
        let mut finished: Option<Option<ObjectId>> = None;
        while let Some(folder) = stack.last_mut() {
            if let Some(built) = finished.take() {
                let name = &edits.dirs[folder.dir][folder.next - 1].0;
                set_entry(&mut folder.entries, name, built.map(|id| (id, Mode::Tree)));
            }
            if let Some((name, node)) = edits.dirs[folder.dir].get(folder.next) {
                folder.next += 1;
                let replacement = match node {
                    Node::Dir(sub) => {
                        let old_sub = folder.entries.iter().find(|e| e.filename == *name).map(|e| e.oid);
                        let sub = start(*sub, old_sub);
                        stack.push(sub);
                        continue;
                    }
                    Node::Put(index) => Some((self.puts[*index].id, self.puts[*index].mode)),
                    Node::Delete | Node::RenameFrom => None,
                    Node::RenameTo(from) => self.sources.get(from).map(|e| (e.oid, Mode::of(e))),
                };
                set_entry(&mut folder.entries, name, replacement);
                continue;
            }
            let Building {
                tree_id,
                old,
                mut entries,
                ..
            } = stack.pop().expect("the loop holds a folder");
            order::sort(&mut entries);
            finished = Some(if entries.is_empty() {
                None
            } else if old.as_ref().is_some_and(|old| old.entries == entries) {
                tree_id
            } else {
                Some(self.emit_tree(gix_object::Tree { entries }, known, out)?)
            });
        }
        Ok(finished.flatten())
    }

    /// Encode a tree and add it to `out` unless the parent or `out` has it already.
    fn emit_tree(&self, tree: gix_object::Tree, known: &IdSet, out: &mut NewTrees) -> Result<ObjectId, Error> {
        let encoded = object::encode_tree(self.hash_kind, &tree).map_err(internal_collision)?;
        let id = encoded.id;
        if !known.contains(&id) && out.ids.insert(id) {
            out.trees.push((encoded, tree));
        }
        Ok(id)
    }

    fn finish(&mut self, cache: &mut ObjectCache, base: Option<ObjectId>) -> Result<Output, Error> {
        // Everything reachable from the parent that this operation has seen.
        let mut known = IdSet::default();
        for (id, object) in self.fetch.held_objects() {
            known.insert(*id);
            if let Object::Tree(tree) = object {
                known.extend(tree.entries.iter().map(|e| e.oid));
            }
        }

        let mut trees = NewTrees::default();
        let built = self.build_dirs(&self.edits, base, &known, &mut trees);
        let tree_id = match built? {
            Some(id) => id,
            // Everything was deleted: the root is the empty tree.
            None => self.emit_tree(gix_object::Tree::empty(), &known, &mut trees)?,
        };
        if base == Some(tree_id) && !self.allow_empty {
            return Err(Error::EmptyCommit);
        }

        let mut objects = Vec::new();
        let mut emitted = IdSet::default();
        let written: IdSet = self.events.iter().filter_map(|e| e.new.map(|(id, _)| id)).collect();
        for put in &self.puts {
            if known.contains(&put.id) || !written.contains(&put.id) || !emitted.insert(put.id) {
                continue;
            }
            // Hashed (and checked for collision attacks) when the request was taken.
            let blob = object::encode_hashed_blob(put.id, &put.data);
            if cache.keeps(put.data.len()) {
                cache.insert(put.id, Object::Blob(Arc::from(put.data.as_slice())));
            }
            objects.push(blob);
        }
        for (encoded, tree) in trees.trees {
            cache.insert(encoded.id, Object::Tree(Arc::new(tree)));
            objects.push(encoded);
        }

        let commit = gix_object::Commit {
            tree: tree_id,
            parents: self.parent.into_iter().collect(),
            author: to_actor(&self.author),
            committer: to_actor(&self.committer),
            encoding: None,
            message: self.message.clone(),
            extra_headers: Vec::new(),
        };
        let encoded = object::encode_commit(self.hash_kind, &commit).map_err(internal_collision)?;
        let id = encoded.id;
        cache.insert(id, Object::Commit(Arc::new(commit)));
        objects.push(encoded);

        let files = self.file_changes();
        Ok(Output {
            id,
            tree: tree_id,
            parent: self.parent,
            objects,
            files,
        })
    }

    fn file_changes(&mut self) -> Vec<FileChange> {
        let mut files: Vec<FileChange> = Vec::with_capacity(self.events.len());
        for event in std::mem::take(&mut self.events) {
            let new_data = event.put.map(|i| self.puts[i].data.as_slice());
            let old_data = match event.old {
                Some((id, Mode::Submodule)) => Some(Arc::from(diff::submodule_text(&id))),
                Some((id, _)) if self.line_stats && !matches!(event.kind, ChangeKind::Renamed { .. }) => {
                    self.fetch.held_blob(&id)
                }
                _ => None,
            };
            let same_content = matches!((event.old, event.new), (Some((a, _)), Some((b, _))) if a == b);
            let (binary, lines) = match event.kind {
                _ if same_content => (false, Some(diff::LineStats::default())),
                _ => {
                    let old_side = event.old.map(|_| old_data.as_deref().unwrap_or_default());
                    let binary =
                        old_data.as_deref().is_some_and(diff::is_binary) || new_data.is_some_and(diff::is_binary);
                    let lines = if self.line_stats {
                        diff::line_stats(old_side, new_data)
                    } else {
                        None
                    };
                    (binary, lines)
                }
            };
            files.push(FileChange {
                path: event.path,
                kind: event.kind,
                old: event.old,
                new: event.new,
                binary,
                lines,
            });
        }
        order::sort_by(&mut files, |a, b| a.path.cmp(&b.path));
        files
    }
}

impl Operation for Commit {
    type Output = Output;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Output>, Error> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        let resolved = self.resolve(cache)?;
        let base = match resolved {
            Some(base) => {
                self.resolve_renames(cache)?;
                if !self.fetch.complete() {
                    return Ok(self.fetch.take_get().unwrap_or(Step::Get(Vec::new())));
                }
                base
            }
            None => return Ok(self.fetch.take_get().unwrap_or(Step::Get(Vec::new()))),
        };
        let output = self.finish(cache, base)?;
        self.done = true;
        Ok(Step::Done(output))
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        self.fetch.provide(cache, objects)
    }
}

/// Paths touched by a request, to refuse duplicates and overlaps.
#[derive(Default)]
struct Touched {
    paths: HashSet<BString>,
}

impl Touched {
    fn add(&mut self, path: &BString) -> Result<(), Error> {
        if !self.paths.insert(path.clone()) {
            return Err(Error::DuplicatePath { path: path.clone() });
        }
        Ok(())
    }

    fn check_overlaps(&self) -> Result<(), Error> {
        for path in &self.paths {
            let mut end = path.len();
            while let Some(slash) = path[..end].rfind_byte(b'/') {
                let parent = BString::from(&path[..slash]);
                if self.paths.contains(&parent) {
                    return Err(Error::OverlappingPaths {
                        path: path.clone(),
                        parent,
                    });
                }
                end = slash;
            }
        }
        Ok(())
    }
}

impl Dirs {
    fn new() -> Self {
        Dirs {
            dirs: vec![BTreeMap::new()],
        }
    }

    fn insert(&mut self, components: &[&BStr], leaf: Node) {
        let Some((last, folders)) = components.split_last() else {
            return;
        };
        let mut dir = 0;
        for folder in folders {
            let name = BString::from(folder.as_bytes());
            dir = match self.dirs[dir].get(&name) {
                Some(Node::Dir(sub)) => *sub,
                // Overlaps are refused before any insert, so a leaf never stands on the
                // way to another path; keep the first leaf if it ever does.
                Some(_) => return,
                None => {
                    let sub = self.dirs.len();
                    self.dirs.push(BTreeMap::new());
                    self.dirs[dir].insert(name, Node::Dir(sub));
                    sub
                }
            };
        }
        self.dirs[dir].insert(BString::from(last.as_bytes()), leaf);
    }

    /// Each folder's edits as a list in name order, for walks that resume by position.
    fn freeze(self) -> Edits {
        Edits {
            dirs: self.dirs.into_iter().map(|dir| dir.into_iter().collect()).collect(),
        }
    }
}

/// [`Dirs`] once complete: each folder's edits in name order.
#[derive(Debug, Default)]
struct Edits {
    dirs: Vec<Vec<(BString, Node)>>,
}

/// Put `replacement` at `name` in `entries` (`None` removes it).
fn set_entry(entries: &mut Vec<Entry>, name: &BString, replacement: Option<(ObjectId, Mode)>) {
    let position = entries.iter().position(|e| e.filename == *name);
    match (position, replacement) {
        (Some(i), Some((id, mode))) => {
            entries[i] = Entry {
                mode: mode.entry_mode(),
                filename: name.clone(),
                oid: id,
            }
        }
        (Some(i), None) => {
            entries.remove(i);
        }
        (None, Some((id, mode))) => entries.push(Entry {
            mode: mode.entry_mode(),
            filename: name.clone(),
            oid: id,
        }),
        (None, None) => {}
    }
}

/// The error for a tree or commit path that names where a request is blocked by an
/// existing file: a conflict if the request writes below it, not-found if it only removes.
fn blocked(edits: &Edits, dir: usize, at: BString, existing: Existing) -> Error {
    let (path, writes) = first_leaf(edits, dir, at.as_bstr());
    if writes {
        Error::PathConflict { path, at, existing }
    } else {
        Error::PathNotFound { path }
    }
}

/// The first path below folder `dir` that writes, or else the first path below it at
/// all: depth first in name order, without recursion.
fn first_leaf(edits: &Edits, dir: usize, prefix: &BStr) -> (BString, bool) {
    let children = |dir: usize, prefix: &BStr| {
        edits.dirs[dir]
            .iter()
            .rev()
            .map(|(name, node)| (path::join(prefix, name.as_bstr()), node))
            .collect::<Vec<_>>()
    };
    let mut fallback = None;
    let mut pending = children(dir, prefix);
    while let Some((here, node)) = pending.pop() {
        match node {
            Node::Dir(sub) => pending.extend(children(*sub, here.as_bstr())),
            Node::Put(_) | Node::RenameTo(_) => return (here, true),
            Node::Delete | Node::RenameFrom => {
                fallback.get_or_insert(here);
            }
        }
    }
    (fallback.unwrap_or_else(|| prefix.to_owned()), false)
}

fn existing(mode: Mode) -> Existing {
    match mode {
        Mode::Tree => Existing::Folder,
        Mode::Submodule => Existing::Submodule,
        _ => Existing::File,
    }
}

/// `path`, which lies below `from`, moved below `to`.
fn rebase(path: &BStr, from: &BStr, to: &BStr) -> BString {
    let mut out = BString::from(to.as_bytes());
    out.extend_from_slice(&path[from.len()..]);
    out
}

fn internal_collision(source: CollisionError) -> Error {
    // Trees and commits core encodes hold only ids and validated text; a collision
    // attack here would have to come through a file, which is checked first.
    Error::Collision {
        path: BString::from(""),
        source,
    }
}

pub(crate) fn to_actor(signature: &Signature) -> gix_actor::Signature {
    gix_actor::Signature {
        name: signature.name.as_str().into(),
        email: signature.email.as_str().into(),
        time: gix_object::date::Time::new(signature.time.seconds, signature.time.offset_minutes * 60),
    }
}

/// The largest offset git can write (`+9959`), in minutes.
const MAX_OFFSET_MINUTES: i32 = 99 * 60 + 59;

/// What makes `signature` unwritable, if anything: the offending value and why.
pub(crate) fn signature_problem(signature: &Signature) -> Option<(String, &'static str)> {
    for value in [&signature.name, &signature.email] {
        if value.contains(['<', '>', '\n', '\0']) {
            return Some((
                value.clone(),
                "names and emails may not contain '<', '>', a newline or NUL",
            ));
        }
    }
    if signature.time.offset_minutes.abs() > MAX_OFFSET_MINUTES {
        return Some((
            signature.time.offset_minutes.to_string(),
            "the time zone offset must be within +/-99:59",
        ));
    }
    None
}

fn check_signature(signature: &Signature) -> Result<(), Error> {
    match signature_problem(signature) {
        Some((value, reason)) => Err(Error::InvalidSignature { value, reason }),
        None => Ok(()),
    }
}
