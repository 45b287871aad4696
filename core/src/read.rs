//! Reading commits: one file, a tree listing, all files, a commit's metadata.
//!
//! Every read is a sans-IO [`Operation`]. Trees are fetched one level per round with every
//! path of that level in the same round; listings never read blobs.

use bstr::{BStr, BString, ByteSlice};
use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    commit::{Signature, Time},
    object, path,
    step::{Fetch, Misuse, Operation, Step, StorageError},
    tree::{self, Mode},
};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path is not acceptable.
    #[error(transparent)]
    InvalidPath(#[from] path::Error),
    /// Nothing exists at the path in that commit.
    #[error("path {path:?} does not exist in commit {commit}")]
    PathNotFound {
        /// The path.
        path: BString,
        /// The commit read.
        commit: ObjectId,
    },
    /// A file was asked for, but the path is a folder or submodule.
    #[error("path {path:?} is a {mode:?}, not a file")]
    NotAFile {
        /// The path.
        path: BString,
        /// What it is.
        mode: Mode,
    },
    /// No commit with this id exists in the store.
    #[error("commit {id} not found")]
    UnknownCommit {
        /// The id given.
        id: ObjectId,
    },
    /// The id names an object that is not a commit.
    #[error("{id} is a {kind}, not a commit")]
    NotACommit {
        /// The id given.
        id: ObjectId,
        /// What it is.
        kind: gix_object::Kind,
    },
    /// A folder was asked for, but the path is something else.
    #[error("path {path:?} is not a folder")]
    NotAFolder {
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

/// A file's content at a commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct File {
    /// The blob id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub id: ObjectId,
    /// Regular, executable or symlink.
    pub mode: Mode,
    /// The content (a symlink's target).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::api::schema::Bytes))]
    #[serde(with = "crate::api::wire::bytes")]
    pub data: Vec<u8>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The full path from the root of the tree.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::path")]
    pub path: BString,
    /// The mode.
    pub mode: Mode,
    /// The blob, tree or submodule commit id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub id: ObjectId,
}

/// A file with its content, from [`ReadFiles`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FileWithPath {
    /// The full path.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::path")]
    pub path: BString,
    /// The file.
    pub file: File,
}

/// A commit's metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    /// The commit id.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub id: ObjectId,
    /// Its root tree.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub tree: ObjectId,
    /// Its parents, first parent first.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(with = "crate::api::wire::ids")]
    pub parents: Vec<ObjectId>,
    /// Who wrote it.
    pub author: Signature,
    /// Who committed it.
    pub committer: Signature,
    /// The message (invalid UTF-8 replaced).
    pub message: String,
}

impl CommitInfo {
    pub(crate) fn from_gix(id: ObjectId, commit: &gix_object::Commit) -> Self {
        CommitInfo {
            id,
            tree: commit.tree,
            parents: commit.parents.to_vec(),
            author: signature(&commit.author),
            committer: signature(&commit.committer),
            message: commit.message.to_str_lossy().into_owned(),
        }
    }
}

fn signature(s: &gix_actor::Signature) -> Signature {
    Signature {
        name: s.name.to_str_lossy().into_owned(),
        email: s.email.to_str_lossy().into_owned(),
        time: Time {
            seconds: s.time.seconds,
            offset_minutes: s.time.offset / 60,
        },
    }
}

/// What a path names in a commit.
pub(crate) enum Target {
    /// The root tree.
    Root(ObjectId),
    /// An entry.
    Entry(gix_object::tree::Entry),
}

/// Find `components` below the root of `commit`; `Ok(None)` while objects are missing.
pub(crate) fn locate(
    fetch: &mut Fetch,
    cache: &ObjectCache,
    commit: &ObjectId,
    path: &BStr,
    components: &[BString],
) -> Result<Option<Target>, Error> {
    let Some((_, info)) = fetch.peeled_commit(cache, commit)? else {
        return Ok(None);
    };
    let mut target = Target::Root(info.tree);
    for component in components {
        let tree_id = match &target {
            Target::Root(id) => *id,
            Target::Entry(e) if e.mode.is_tree() => e.oid,
            Target::Entry(_) => {
                return Err(Error::PathNotFound {
                    path: path.to_owned(),
                    commit: *commit,
                });
            }
        };
        let Some(tree) = fetch.tree(cache, &tree_id)? else {
            return Ok(None);
        };
        match tree::find(&tree, component.as_bstr()) {
            Some(entry) => target = Target::Entry(entry.clone()),
            None => {
                return Err(Error::PathNotFound {
                    path: path.to_owned(),
                    commit: *commit,
                });
            }
        }
    }
    Ok(Some(target))
}

/// Parse a path for reading: empty means the root.
pub(crate) fn components(path: &BStr) -> Result<Vec<BString>, Error> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    Ok(path::validate(path, false)?.into_iter().map(|c| c.to_owned()).collect())
}

/// List `tree_id` into `out` (files and submodules only when `recursive`, else one level),
/// in git's order (depth first, each tree's entries in order), without recursion: a tree
/// may be 2,047 folders deep, more than a wasm stack holds frames for. Returns `false`
/// while subtrees are missing (every missing one is asked for in the same pass).
pub(crate) fn list(
    fetch: &mut Fetch,
    cache: &ObjectCache,
    tree_id: &ObjectId,
    prefix: &BStr,
    recursive: bool,
    out: &mut Vec<Entry>,
) -> Result<bool, Error> {
    let Some(tree) = fetch.tree(cache, tree_id)? else {
        return Ok(false);
    };
    let mut complete = true;
    // Trees being listed: the tree, its path, the next entry.
    let mut stack = vec![(tree, prefix.to_owned(), 0)];
    while let Some((tree, prefix, next)) = stack.last_mut() {
        let Some(e) = tree.entries.get(*next) else {
            stack.pop();
            continue;
        };
        *next += 1;
        let entry_path = path::join(prefix.as_bstr(), e.filename.as_bstr());
        let mode = Mode::of(e);
        if recursive && mode == Mode::Tree {
            let id = e.oid;
            match fetch.tree(cache, &id)? {
                Some(sub) => stack.push((sub, entry_path, 0)),
                None => complete = false,
            }
        } else {
            out.push(Entry {
                path: entry_path,
                mode,
                id: e.oid,
            });
        }
    }
    Ok(complete)
}

/// Run one pass of `attempt`; turn missing objects into a `Get`.
pub(crate) fn drive<T>(
    fetch: &mut Fetch,
    done: &mut bool,
    attempt: impl FnOnce(&mut Fetch) -> Result<Option<T>, Error>,
) -> Result<Step<T>, Error> {
    if *done {
        return Err(Misuse("poll called after Done").into());
    }
    fetch.reset_want();
    match attempt(fetch)? {
        Some(out) if fetch.complete() => {
            *done = true;
            Ok(Step::Done(out))
        }
        _ => Ok(fetch.take_get().unwrap_or(Step::Get(Vec::new()))),
    }
}

/// Name the commit the caller gave when it is missing or not a commit.
pub(crate) fn named(commit: &ObjectId, err: Error) -> Error {
    match err {
        Error::Object(object::Error::NotFound { id }) if id == *commit => Error::UnknownCommit { id },
        Error::Object(object::Error::WrongKind { id, actual, .. }) if id == *commit => {
            Error::NotACommit { id, kind: actual }
        }
        other => other,
    }
}

macro_rules! operation {
    ($ty:ty, $out:ty) => {
        impl Operation for $ty {
            type Output = $out;
            type Error = Error;

            fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<$out>, Error> {
                let mut fetch = std::mem::take(&mut self.fetch);
                let mut done = self.done;
                let result = drive(&mut fetch, &mut done, |fetch| self.attempt(fetch, cache));
                self.fetch = fetch;
                self.done = done;
                result.map_err(|err| named(&self.commit, err))
            }

            fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
                self.fetch
                    .provide(cache, objects)
                    .map_err(|err| named(&self.commit, err))
            }
        }

        impl $ty {
            /// The number of `Get` rounds asked for so far.
            pub fn rounds(&self) -> u32 {
                self.fetch.rounds()
            }
        }
    };
}

/// Read one file at a commit.
#[derive(Debug)]
pub struct ReadFile {
    commit: ObjectId,
    path: BString,
    components: Vec<BString>,
    fetch: Fetch,
    done: bool,
}

impl ReadFile {
    /// Read `path` at `commit`.
    pub fn new(commit: ObjectId, path: impl Into<BString>) -> Result<Self, Error> {
        let path = path.into();
        let components = path::validate(path.as_bstr(), false)?
            .into_iter()
            .map(|c| c.to_owned())
            .collect();
        Ok(ReadFile {
            commit,
            path,
            components,
            fetch: Fetch::default(),
            done: false,
        })
    }

    fn attempt(&self, fetch: &mut Fetch, cache: &ObjectCache) -> Result<Option<File>, Error> {
        let Some(target) = locate(fetch, cache, &self.commit, self.path.as_bstr(), &self.components)? else {
            return Ok(None);
        };
        let entry = match target {
            Target::Entry(e) => e,
            Target::Root(_) => {
                return Err(Error::NotAFile {
                    path: self.path.clone(),
                    mode: Mode::Tree,
                });
            }
        };
        let mode = Mode::of(&entry);
        if !mode.is_file() {
            return Err(Error::NotAFile {
                path: self.path.clone(),
                mode,
            });
        }
        Ok(fetch.blob(cache, &entry.oid)?.map(|data| File {
            id: entry.oid,
            mode,
            data: data.to_vec(),
        }))
    }
}
operation!(ReadFile, File);

/// List a folder at a commit, one level or recursively, without reading any blob.
#[derive(Debug)]
pub struct ListTree {
    commit: ObjectId,
    path: BString,
    components: Vec<BString>,
    recursive: bool,
    fetch: Fetch,
    done: bool,
}

impl ListTree {
    /// List the folder `path` (empty for the root) at `commit`. One level lists files,
    /// folders and submodules; `recursive` lists every file and submodule below it.
    pub fn new(commit: ObjectId, path: impl Into<BString>, recursive: bool) -> Result<Self, Error> {
        let path = path.into();
        let components = components(path.as_bstr())?;
        Ok(ListTree {
            commit,
            path,
            components,
            recursive,
            fetch: Fetch::default(),
            done: false,
        })
    }

    fn attempt(&self, fetch: &mut Fetch, cache: &ObjectCache) -> Result<Option<Vec<Entry>>, Error> {
        list_below(
            fetch,
            cache,
            &self.commit,
            self.path.as_bstr(),
            &self.components,
            self.recursive,
        )
    }
}
operation!(ListTree, Vec<Entry>);

fn list_below(
    fetch: &mut Fetch,
    cache: &ObjectCache,
    commit: &ObjectId,
    path: &BStr,
    components: &[BString],
    recursive: bool,
) -> Result<Option<Vec<Entry>>, Error> {
    let Some(target) = locate(fetch, cache, commit, path, components)? else {
        return Ok(None);
    };
    let tree_id = match target {
        Target::Root(id) => id,
        Target::Entry(e) if e.mode.is_tree() => e.oid,
        Target::Entry(_) => return Err(Error::NotAFolder { path: path.to_owned() }),
    };
    let mut out = Vec::new();
    let complete = list(fetch, cache, &tree_id, path, recursive, &mut out)?;
    Ok(complete.then_some(out))
}

/// Read every file below a folder (or the whole tree) at a commit.
///
/// Trees are fetched a level per round, then every blob in one round. Submodules are
/// not files and are left out.
#[derive(Debug)]
pub struct ReadFiles {
    commit: ObjectId,
    path: BString,
    components: Vec<BString>,
    fetch: Fetch,
    done: bool,
}

impl ReadFiles {
    /// Read every file below `path` (empty for all files) at `commit`.
    pub fn new(commit: ObjectId, path: impl Into<BString>) -> Result<Self, Error> {
        let path = path.into();
        let components = components(path.as_bstr())?;
        Ok(ReadFiles {
            commit,
            path,
            components,
            fetch: Fetch::default(),
            done: false,
        })
    }

    fn attempt(&self, fetch: &mut Fetch, cache: &ObjectCache) -> Result<Option<Vec<FileWithPath>>, Error> {
        let Some(entries) = list_below(fetch, cache, &self.commit, self.path.as_bstr(), &self.components, true)? else {
            return Ok(None);
        };
        let mut files = Vec::with_capacity(entries.len());
        for entry in entries {
            if !entry.mode.is_file() {
                continue;
            }
            if let Some(data) = fetch.blob(cache, &entry.id)? {
                files.push(FileWithPath {
                    path: entry.path,
                    file: File {
                        id: entry.id,
                        mode: entry.mode,
                        data: data.to_vec(),
                    },
                });
            }
        }
        Ok(Some(files))
    }
}
operation!(ReadFiles, Vec<FileWithPath>);

/// Read a commit's metadata.
#[derive(Debug)]
pub struct ReadCommit {
    commit: ObjectId,
    fetch: Fetch,
    done: bool,
}

impl ReadCommit {
    /// Read the commit `commit`.
    pub fn new(commit: ObjectId) -> Self {
        ReadCommit {
            commit,
            fetch: Fetch::default(),
            done: false,
        }
    }

    fn attempt(&self, fetch: &mut Fetch, cache: &ObjectCache) -> Result<Option<CommitInfo>, Error> {
        Ok(fetch
            .peeled_commit(cache, &self.commit)?
            .map(|(id, c)| CommitInfo::from_gix(id, &c)))
    }
}
operation!(ReadCommit, CommitInfo);
