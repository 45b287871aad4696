//! Restore: a new commit on top of the head whose tree (or one path of it) equals an
//! earlier commit's. History is never rewritten: the head becomes the new commit's
//! parent, so what was there before the restore stays reachable.
//!
//! [`Restore`] is a sans-IO operation made of two parts: a [`Diff`] of the head and the
//! restored commit, restricted to the path (trees only, its `Get`s passed through), which
//! gives the files the restore changes; then the new trees along the path and the commit.
//! No blob is read or rewritten: the restored entries point at the objects the earlier
//! commit already has, so the new objects are only the trees along the path and the
//! commit.
//!
//! ```
//! use snapgit_core::{
//!     ObjectCache, commit::{self, Change, Signature}, drive::{self, MemoryStore, ObjectStore},
//!     read::ReadFile, restore::{Request, Restore},
//! };
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(gix_hash::Kind::Sha1);
//! let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let mut commit = |parent, text: &str| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
//!     let changes = vec![Change::put("memory.md", text), Change::put("other.md", format!("{text} elsewhere"))];
//!     let mut op = commit::Commit::new(&cache, commit::Request::new(parent, changes, me.clone(), "turn"))?;
//!     let out = drive::run(&mut op, &mut cache, &store)?;
//!     store.put_many(&out.objects)?;
//!     Ok(out.id)
//! };
//! let good = commit(None, "good\n")?;
//! let bad = commit(Some(good), "bad\n")?;
//!
//! // Bring back `memory.md` as it was in `good`, in a new commit on top of `bad`.
//! let request = Request::new(bad, good, me.clone()).with_path("memory.md");
//! let restored = drive::run(&mut Restore::new(&cache, request)?, &mut cache, &store)?;
//! store.put_many(&restored.objects)?; // then move the ref from `bad` to `restored.id`
//! assert_eq!(restored.parent, Some(bad));
//!
//! let file = drive::run(&mut ReadFile::new(restored.id, "memory.md")?, &mut cache, &store)?;
//! assert_eq!(file.data, b"good\n");
//! let other = drive::run(&mut ReadFile::new(restored.id, "other.md")?, &mut cache, &store)?;
//! assert_eq!(other.data, b"bad\n elsewhere");
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use std::sync::Arc;

use bstr::{BString, ByteSlice};
use gix_hash::ObjectId;
use gix_object::tree::Entry;

use crate::{
    cache::ObjectCache,
    commit::{self, Signature},
    diff::{
        FileChange,
        tree::{self as tree_diff, Diff, Side, entry_at},
    },
    id::IdSet,
    object::{self, CollisionError, NewObject, Object},
    order, path,
    step::{Fetch, Misuse, Operation, Step, StorageError},
    tree::{self, Mode},
};

/// What to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The current head: the new commit's parent.
    pub head: ObjectId,
    /// The commit whose content comes back.
    pub target: ObjectId,
    /// Restore only this file or folder (it is deleted if the target does not have it);
    /// `None` (or empty) for the whole tree.
    pub path: Option<BString>,
    /// Who restores.
    pub author: Signature,
    /// Who commits; usually the author.
    pub committer: Signature,
    /// The message; `None` for one naming the path and the restored commit.
    pub message: Option<String>,
    /// Make a commit even when the head already has the target's content.
    pub allow_empty: bool,
    /// Count lines added and removed per restored file (reads their blobs).
    pub line_stats: bool,
}

impl Request {
    /// Restore the whole tree of `target` on top of `head`, with a message naming it.
    pub fn new(head: ObjectId, target: ObjectId, author: Signature) -> Self {
        Request {
            head,
            target,
            path: None,
            committer: author.clone(),
            author,
            message: None,
            allow_empty: false,
            line_stats: true,
        }
    }

    /// Restore only `path` (a file or folder).
    pub fn with_path(mut self, path: impl Into<BString>) -> Self {
        self.path = Some(path.into());
        self
    }
}

/// Why a restore failed. Nothing is produced on any error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path is not acceptable.
    #[error(transparent)]
    InvalidPath(#[from] path::Error),
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
    /// The head or the target is not in storage.
    #[error("unknown commit {id}")]
    UnknownCommit {
        /// The id given.
        id: ObjectId,
    },
    /// The head or the target names an object that is not a commit.
    #[error("object {id} is a {kind}, not a commit")]
    NotACommit {
        /// The id given.
        id: ObjectId,
        /// What it is.
        kind: gix_object::Kind,
    },
    /// The path exists neither in the head nor in the target.
    #[error("path {path:?} exists neither in the head nor in the restored commit")]
    PathNotFound {
        /// The path.
        path: BString,
    },
    /// A file in the head stands where the restored path needs a folder.
    #[error("cannot restore {path:?}: the head has a file at {at:?}")]
    PathConflict {
        /// The path being restored.
        path: BString,
        /// Where the file is.
        at: BString,
    },
    /// The head already has the target's content there, and empty commits were not allowed.
    #[error("nothing to restore: the head already has that content (allow empty commits to commit anyway)")]
    NothingToRestore,
    /// The commit (through its message) would carry a SHA-1 collision attack.
    #[error("the restore commit is refused: {0}")]
    Collision(#[from] CollisionError),
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

impl From<tree_diff::Error> for Error {
    fn from(err: tree_diff::Error) -> Self {
        match err {
            tree_diff::Error::InvalidPath(e) => Error::InvalidPath(e),
            tree_diff::Error::UnknownCommit { id } => Error::UnknownCommit { id },
            tree_diff::Error::NotACommit { id, kind } => Error::NotACommit { id, kind },
            tree_diff::Error::PathNotFound { path } => Error::PathNotFound { path },
            tree_diff::Error::Object(e) => Error::Object(e),
            tree_diff::Error::Storage(e) => Error::Storage(e),
            tree_diff::Error::Misuse(e) => Error::Misuse(e),
            tree_diff::Error::Folder(_) => Error::Misuse(Misuse("a restore compares no folder")),
        }
    }
}

/// The restore operation. Create it with [`Restore::new`], then call
/// [`poll`](Operation::poll) until it returns [`Step::Done`], answering every
/// [`Step::Get`] with [`provide`](Operation::provide). The output is a commit like any
/// other: write its objects, then move the ref from `head` to it.
#[derive(Debug)]
pub struct Restore {
    head: ObjectId,
    target: ObjectId,
    path: BString,
    components: Vec<BString>,
    author: Signature,
    committer: Signature,
    message: BString,
    allow_empty: bool,
    hash_kind: gix_hash::Kind,
    diff: Diff,
    files: Option<Vec<FileChange>>,
    fetch: Fetch,
    done: bool,
}

impl Restore {
    /// Validate `request` and prepare the operation. Every input error is reported here,
    /// before any object is asked for.
    pub fn new(cache: &ObjectCache, request: Request) -> Result<Self, Error> {
        let components = tree_diff::components(request.path.as_ref())?;
        check_signature(&request.author)?;
        check_signature(&request.committer)?;
        let path = BString::from(bstr::join("/", &components));
        let message = match request.message {
            Some(message) => message,
            None if path.is_empty() => format!("Restore all files from commit {}", request.target),
            None => format!("Restore {} from commit {}", path.to_str_lossy(), request.target),
        };
        if message.contains('\0') {
            return Err(Error::InvalidMessage);
        }
        let mut message = BString::from(message);
        if !message.is_empty() && !message.ends_with(b"\n") {
            message.push(b'\n');
        }
        let diff = Diff::new(tree_diff::Request {
            from: Some(request.head),
            to: request.target,
            path: request.path,
            renames: false,
            line_stats: request.line_stats,
            patch: false,
            binary_patch: false,
        })?;
        Ok(Restore {
            head: request.head,
            target: request.target,
            path,
            components,
            author: request.author,
            committer: request.committer,
            message,
            allow_empty: request.allow_empty,
            hash_kind: cache.hash_kind(),
            diff,
            files: None,
            fetch: Fetch::default(),
            done: false,
        })
    }

    /// The number of `Get` rounds asked for so far.
    pub fn rounds(&self) -> u32 {
        self.diff.rounds() + self.fetch.rounds()
    }

    /// The new root tree and the trees to write, once every tree along the path is here.
    fn build(&mut self, cache: &ObjectCache) -> Result<Option<(ObjectId, Vec<NewObject>)>, Error> {
        let head = self.fetch.commit(cache, &self.head)?;
        let target = self.fetch.peeled_commit(cache, &self.target)?.map(|(_, commit)| commit);
        let (Some(head), Some(target)) = (head, target) else {
            return Ok(None);
        };
        if self.components.is_empty() {
            return Ok(Some((target.tree, Vec::new())));
        }
        let Some(replacement) = entry_at(&mut self.fetch, cache, &target.tree, &self.components)? else {
            return Ok(None);
        };
        // The head's folders along the path, `None` below where the path leaves its tree.
        let mut folders: Vec<Option<Arc<gix_object::Tree>>> = Vec::with_capacity(self.components.len());
        let mut next = Some(head.tree);
        for (depth, component) in self.components.iter().enumerate() {
            let folder = match next {
                None => None,
                Some(id) => match self.fetch.tree(cache, &id)? {
                    None => return Ok(None),
                    Some(tree) => Some(tree),
                },
            };
            next = None;
            let last = depth + 1 == self.components.len();
            if let Some(entry) = folder.as_deref().and_then(|t| tree::find(t, component.as_bstr()))
                && !last
            {
                match Mode::of(entry) {
                    Mode::Tree => next = Some(entry.oid),
                    // A file in the way: the path cannot exist in the head, so there is
                    // nothing to remove, but nothing can be put there either.
                    _ if replacement.is_some() => {
                        return Err(Error::PathConflict {
                            path: self.path.clone(),
                            at: BString::from(bstr::join("/", &self.components[..=depth])),
                        });
                    }
                    _ => return Ok(Some((head.tree, Vec::new()))),
                }
            }
            folders.push(folder);
        }
        let known = self.known();
        let mut trees = Vec::new();
        let mut child: Side = replacement;
        for (folder, name) in folders.iter().zip(&self.components).rev() {
            let mut entries: Vec<Entry> = folder.as_ref().map(|t| t.entries.clone()).unwrap_or_default();
            entries.retain(|e| e.filename != *name);
            if let Some((id, mode)) = child {
                entries.push(Entry {
                    mode: mode.entry_mode(),
                    filename: name.clone(),
                    oid: id,
                });
            }
            order::sort(&mut entries);
            child = if entries.is_empty() {
                None
            } else {
                Some((
                    self.emit_tree(gix_object::Tree { entries }, &known, &mut trees)?,
                    Mode::Tree,
                ))
            };
        }
        let root = match child {
            Some((id, _)) => id,
            // Everything was removed: the root is the empty tree.
            None => self.emit_tree(gix_object::Tree::empty(), &known, &mut trees)?,
        };
        Ok(Some((root, trees)))
    }

    /// Every object this operation has seen, and every entry of the trees among them.
    fn known(&self) -> IdSet {
        let mut known = IdSet::default();
        for (id, object) in self.fetch.held_objects() {
            known.insert(*id);
            if let Object::Tree(tree) = object {
                known.extend(tree.entries.iter().map(|e| e.oid));
            }
        }
        known
    }

    fn emit_tree(&self, tree: gix_object::Tree, known: &IdSet, out: &mut Vec<NewObject>) -> Result<ObjectId, Error> {
        let encoded = object::encode_tree(self.hash_kind, &tree)?;
        let id = encoded.id;
        if !known.contains(&id) && !out.iter().any(|o| o.id == id) {
            out.push(encoded);
        }
        Ok(id)
    }

    fn finish(
        &mut self,
        cache: &mut ObjectCache,
        root: ObjectId,
        mut objects: Vec<NewObject>,
        files: Vec<FileChange>,
    ) -> Result<commit::Output, Error> {
        for tree in &objects {
            let decoded = object::decode_loose(&tree.id, &tree.loose, u64::MAX)?;
            cache.insert(tree.id, decoded);
        }
        let commit = gix_object::Commit {
            tree: root,
            parents: vec![self.head].into(),
            author: commit::to_actor(&self.author),
            committer: commit::to_actor(&self.committer),
            encoding: None,
            message: self.message.clone(),
            extra_headers: Vec::new(),
        };
        let encoded = object::encode_commit(self.hash_kind, &commit)?;
        let id = encoded.id;
        cache.insert(id, Object::Commit(Arc::new(commit)));
        objects.push(encoded);
        Ok(commit::Output {
            id,
            tree: root,
            parent: Some(self.head),
            objects,
            files,
        })
    }
}

impl Operation for Restore {
    type Output = commit::Output;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<commit::Output>, Error> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        if self.files.is_none() {
            match self.diff.poll(cache)? {
                Step::Get(ids) => return Ok(Step::Get(ids)),
                Step::Done(diff) => {
                    if diff.files.is_empty() && !self.allow_empty {
                        self.done = true;
                        return Err(Error::NothingToRestore);
                    }
                    self.files = Some(diff.files);
                }
                _ => return Err(Misuse("a diff only reads objects").into()),
            }
        }
        self.fetch.reset_want();
        let Some((root, trees)) = self.build(cache)? else {
            return Ok(self.fetch.take_get().unwrap_or(Step::Get(Vec::new())));
        };
        let files = self.files.take().unwrap_or_default();
        let output = self.finish(cache, root, trees, files)?;
        self.done = true;
        Ok(Step::Done(output))
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if self.files.is_some() {
            self.fetch.provide(cache, objects)
        } else {
            Ok(self.diff.provide(cache, objects)?)
        }
    }
}

fn check_signature(signature: &Signature) -> Result<(), Error> {
    match commit::signature_problem(signature) {
        Some((value, reason)) => Err(Error::InvalidSignature { value, reason }),
        None => Ok(()),
    }
}
