//! Folders on disk, as checkpoint tools use them: what a face found in a folder
//! ([`File`]), a cache of file stats so a snapshot hashes only files that changed
//! ([`StatCache`]), a folder compared with a commit ([`diff()`]) and a commit
//! written back into a folder ([`Checkout`]).
//!
//! Core does no IO here either. A face walks the folder, asks the [`StatCache`] which
//! files it must read and hash, and hands the list to an operation; core decides what
//! differs, what to write and delete, and refuses anything unsafe before the face writes
//! a byte.
//!
//! ```
//! use snapgit_core::{
//!     HashKind, ObjectCache, Mode,
//!     commit::{self, Change, Signature},
//!     diff::ChangeKind,
//!     drive::{self, MemoryStore, ObjectStore},
//!     object,
//!     worktree::{self, Checkout, CheckoutRequest, DiffRequest, File},
//! };
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(HashKind::Sha1);
//! let me = Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let changes = vec![Change::put("notes.md", "one\n"), Change::put("old.md", "old\n")];
//! let mut op = commit::Commit::new(&cache, commit::Request::new(None, changes, me, "checkpoint"))?;
//! let out = drive::run(&mut op, &mut cache, &store)?;
//! store.put_many(&out.objects)?;
//!
//! // The folder now: notes.md edited (its content read, as its stat changed), old.md gone.
//! let edited = b"one\ntwo\n".to_vec();
//! let id = object::blob_id(HashKind::Sha1, &edited)?;
//! let folder = vec![File { path: "notes.md".into(), mode: Mode::Regular, id, data: Some(edited) }];
//! let diff = drive::run(&mut worktree::diff(&cache, DiffRequest::new(out.id, folder.clone()))?, &mut cache, &store)?;
//! assert_eq!(diff.files[0].kind, ChangeKind::Modified);
//! assert_eq!(diff.files[1].kind, ChangeKind::Deleted);
//!
//! // Roll the folder back to the commit: one file to write, nothing to delete.
//! let plan = drive::run(&mut Checkout::new(&cache, CheckoutRequest::new(out.id, folder))?, &mut cache, &store)?;
//! assert_eq!(plan.writes.len(), 2);
//! assert_eq!(plan.writes[0].file.data, b"one\n");
//! assert!(plan.deletes.is_empty());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use std::sync::Arc;

use bstr::{BStr, BString, ByteSlice};
use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    diff::{self, tree::Diff},
    object::{self, Object},
    order, path, read,
    step::{Fetch, Misuse, Operation, Step, StorageError},
    tree::Mode,
};

/// What checkpoint tools leave out of a snapshot by default (gitignore syntax):
/// dependency and build folders, caches, environment files with secrets, archives and
/// audio or video. A face applies them when asked (`snapgit --checkpoint-excludes`).
pub const CHECKPOINT_EXCLUDES: &[&str] = &[
    "node_modules/",
    "bower_components/",
    ".venv/",
    "venv/",
    "__pycache__/",
    ".tox/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    "target/",
    "dist/",
    "build/",
    ".next/",
    ".nuxt/",
    ".turbo/",
    ".gradle/",
    ".cache/",
    ".DS_Store",
    ".env",
    ".env.*",
    "*.zip",
    "*.tar",
    "*.tar.gz",
    "*.tgz",
    "*.7z",
    "*.rar",
    "*.mp4",
    "*.mov",
    "*.avi",
    "*.mkv",
    "*.mp3",
    "*.wav",
    "*.flac",
];

/// What a face found at a path of a folder, as far as [`skip`] needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// A folder (not followed if it is a symlink: that is a [`Found::Symlink`]).
    Folder,
    /// A regular file, executable or not, of this many bytes.
    File {
        /// Its size.
        size: u64,
    },
    /// A symlink, whatever it points to.
    Symlink,
    /// Anything else: a socket, a FIFO, a device.
    Other,
}

/// Why a scan of a folder leaves a path out: a snapshot keeps what the branch has there,
/// a diff shows no change there, a rollback never touches it. Its text is what every face
/// reports (`excluded by ".snapgitignore: *.log"`, `larger than 1024 bytes (2000 bytes)`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// An exclude pattern matched it: the pattern, or its ignore file and line.
    Excluded {
        /// What names the pattern.
        by: String,
    },
    /// A file over the size cap.
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Neither a file, a symlink nor a folder.
    NotAFile,
    /// Its name is not UTF-8, which a path in a commit must be.
    NotUtf8,
    /// The store's own folder, inside the folder scanned.
    StoreFolder,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Excluded { by } => write!(f, "excluded by {by:?}"),
            Skip::TooLarge { size, limit } => write!(f, "larger than {limit} bytes ({size} bytes)"),
            Skip::NotAFile => f.write_str("not a regular file, folder or symlink"),
            Skip::NotUtf8 => f.write_str("its name is not UTF-8"),
            Skip::StoreFolder => f.write_str("the store's own folder"),
        }
    }
}

/// What a scan of a folder leaves out before it reads any folder's own ignore files, as
/// every face takes it from its user: built by [`ScanExcludes::policy`] in one order, a
/// later pattern winning, as in a `.gitignore`.
#[derive(Debug, Clone, Default)]
pub struct ScanExcludes<'a> {
    /// What checkpoint tools leave out ([`CHECKPOINT_EXCLUDES`]), first.
    pub checkpoint: bool,
    /// The text of the `.snapgitignore` at the folder's root, next.
    pub snapgitignore: Option<&'a str>,
    /// Ignore files kept anywhere, as if at the folder's root (`--exclude-from`): how each
    /// is named in a verdict, and its text; then.
    pub files: Vec<(&'a str, &'a str)>,
    /// Patterns given one by one (`--exclude`), last.
    pub patterns: Vec<String>,
    /// The size cap (default [`DEFAULT_MAX_FILE_BYTES`]).
    pub max_file_bytes: Option<u64>,
}

impl ScanExcludes<'_> {
    /// The policy a scan starts from; a pattern git cannot parse is refused.
    pub fn policy(&self) -> Result<crate::policy::Policy, crate::policy::PatternError> {
        let mut policy = crate::policy::Policy::new();
        if self.checkpoint {
            policy = policy.exclude(CHECKPOINT_EXCLUDES.iter().copied())?;
        }
        if let Some(text) = self.snapgitignore {
            policy = policy.exclude_file(".snapgitignore".into(), text)?;
        }
        for (shown, text) in &self.files {
            policy = policy.exclude_from(shown, text)?;
        }
        let mut policy = policy.exclude(self.patterns.iter().cloned())?;
        policy.max_file_bytes = self.max_file_bytes;
        Ok(policy)
    }
}

/// The ignore files a scan reads in each folder it lists, in the order their patterns
/// apply below that folder (a later one winning, as a deeper folder's win over those
/// above): its `.gitignore` when the folder's `.gitignore` files count (`gitignore`), then
/// its `.snapgitignore`, always — except at the root, whose `.snapgitignore` a face reads
/// first, into the policy the scan starts from, before the patterns given on the side.
pub fn ignore_files(root: bool, gitignore: bool) -> &'static [&'static str] {
    match (root, gitignore) {
        (true, true) => &[".gitignore"],
        (true, false) => &[],
        (false, true) => &[".gitignore", ".snapgitignore"],
        (false, false) => &[".snapgitignore"],
    }
}

/// The size cap of a scan whose policy sets none: the largest file a commit may write
/// ([`Limits`](crate::Limits)' default), so that one file too large to commit is left out
/// and listed instead of failing the snapshot.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 << 20;

/// Whether a scan of a folder leaves `path` out, and why: the one rule of every face.
/// Folders above `path` were decided on the way down, as a walk does. `policy`'s exclude
/// patterns leave out what they match; files over its `max_file_bytes` (default
/// [`DEFAULT_MAX_FILE_BYTES`]) and what is neither a file, a symlink nor a folder are left
/// out too. A symlink is never too large: its content is its target.
pub fn skip(policy: &crate::policy::Policy, path: &BStr, found: Found) -> Option<Skip> {
    if let Some(by) = policy.excluded_here(path, found == Found::Folder) {
        return Some(Skip::Excluded { by: by.to_owned() });
    }
    match found {
        Found::Other => Some(Skip::NotAFile),
        Found::File { size } => {
            let limit = policy.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES);
            (size > limit).then_some(Skip::TooLarge { size, limit })
        }
        Found::Folder | Found::Symlink => None,
    }
}

/// A file a face found in a folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct File {
    /// Its path below the folder, `/`-separated.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::path")]
    pub path: BString,
    /// Regular, executable or symlink; in a [`DiffRequest`] also [`Mode::Tree`]: a
    /// folder given whole by its tree id, which storage has ([`StatCache::collapse`]).
    pub mode: Mode,
    /// Its blob id: from the [`StatCache`] when its stat is unchanged, else hashed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub id: ObjectId,
    /// Its content (a symlink's target), when storage may not have it: every file read
    /// and hashed for this call. Core checks it hashes to `id`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::api::schema::Bytes>))]
    #[serde(default, with = "crate::api::wire::opt_bytes")]
    pub data: Option<Vec<u8>>,
}

/// Why a folder's files were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    /// A file's path is not one a tree can hold.
    #[error(transparent)]
    InvalidPath(#[from] path::Error),
    /// A file was listed twice, or as both a file and a folder.
    #[error("folder file {path:?} is listed twice, or also as a folder")]
    Duplicate {
        /// The path.
        path: BString,
    },
    /// A file's mode is not a file's (tree or submodule).
    #[error("folder file {path:?} has mode {mode}, not a file's")]
    NotAFile {
        /// The path.
        path: BString,
        /// The mode given.
        mode: Mode,
    },
    /// A file's content does not hash to the id given with it.
    #[error("folder file {path:?}: its content hashes to {actual}, not {id}")]
    WrongId {
        /// The path.
        path: BString,
        /// The id given.
        id: ObjectId,
        /// The id of the content.
        actual: ObjectId,
    },
    /// Content that hashing refused.
    #[error(transparent)]
    Collision(#[from] object::CollisionError),
}

/// Why a checkout was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The folder's files were refused.
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// A checkout would write somewhere unsafe: through a symlink, or onto a path that
    /// another entry of the same tree also names on a case-insensitive disk.
    #[error("refusing to write {path:?}: {reason}")]
    Unsafe {
        /// The entry of the commit.
        path: BString,
        /// Why.
        reason: Unsafe,
    },
    /// A checkout would write onto or below a path of the folder that is not tracked
    /// (excluded or skipped by the snapshot), which no undo checkpoint could bring back.
    #[error("refusing to write {path:?}: {kept:?} in the folder is not tracked, and would be lost")]
    Untracked {
        /// The entry of the commit.
        path: BString,
        /// The untracked path in its way.
        kept: BString,
    },
    /// Reading the commit failed: unknown commit or path, a bad path, a broken object,
    /// storage.
    #[error(transparent)]
    Read(#[from] read::Error),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        Error::Read(read::Error::from(err))
    }
}

impl From<object::Error> for Error {
    fn from(err: object::Error) -> Self {
        Error::Read(read::Error::Object(err))
    }
}

impl From<path::Error> for Error {
    fn from(err: path::Error) -> Self {
        Error::Folder(FolderError::InvalidPath(err))
    }
}

/// Why a checkout refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsafe {
    /// A folder on its path is a symlink in the same commit (in some case spelling):
    /// writing it would follow the link out of the folder.
    SymlinkParent,
    /// Another entry of the commit differs from it only in case: on a case-insensitive
    /// disk one would overwrite the other.
    CaseCollision,
}

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unsafe::SymlinkParent => "a folder on its path is a symlink in the same commit",
            Unsafe::CaseCollision => "another entry differs from it only in case",
        })
    }
}

/// Check a folder's files: valid paths, file modes, no path twice or both a file and a
/// folder, content hashing to its id. Sorts them by path.
fn check_files(hash_kind: gix_hash::Kind, files: &mut Vec<File>, trees: bool) -> Result<(), FolderError> {
    order::sort_by(files, |a, b| a.path.cmp(&b.path));
    for (i, file) in files.iter().enumerate() {
        path::validate(file.path.as_bstr(), file.mode == Mode::Symlink)?;
        let tree = trees && file.mode == Mode::Tree && file.data.is_none();
        if !file.mode.is_file() && !tree {
            return Err(FolderError::NotAFile {
                path: file.path.clone(),
                mode: file.mode,
            });
        }
        if let Some(next) = files.get(i + 1)
            && (next.path == file.path || is_below(next.path.as_bstr(), file.path.as_bstr()))
        {
            return Err(FolderError::Duplicate {
                path: next.path.clone(),
            });
        }
        if let Some(data) = &file.data {
            let actual = object::blob_id(hash_kind, data)?;
            if actual != file.id {
                return Err(FolderError::WrongId {
                    path: file.path.clone(),
                    id: file.id,
                    actual,
                });
            }
        }
    }
    Ok(())
}

/// The first index in `lo..hi` for which `test` fails, where it holds for a prefix of
/// the range and fails for the rest (a binary search).
fn partition(mut lo: usize, mut hi: usize, test: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if test(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// `true` if `path` lies below the folder `dir`.
fn is_below(path: &BStr, dir: &BStr) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// A folder's trees, built in memory.
struct Built {
    /// The root tree's id.
    root: ObjectId,
    /// Every tree built, and every content given, to hold.
    objects: Vec<(ObjectId, Object)>,
    /// Every folder built: its path (empty for the root), tree id and the number of
    /// files below it (a tree given whole counts as none).
    folders: Vec<(BString, ObjectId, u64)>,
}

/// The trees of a folder's checked, sorted files (and trees given whole, which are not
/// held: storage has them), built in memory. Builds without recursion (a path may be
/// 2,047 folders deep).
fn build_trees(hash_kind: gix_hash::Kind, files: Vec<File>) -> Result<Built, FolderError> {
    use gix_object::tree::Entry;
    struct Open {
        path: BString,
        name: BString,
        entries: Vec<Entry>,
        files: u64,
    }
    let mut built = Built {
        root: ObjectId::null(hash_kind),
        objects: Vec::new(),
        folders: Vec::new(),
    };
    // Open folders from the root down.
    let mut open = vec![Open {
        path: BString::default(),
        name: BString::default(),
        entries: Vec::new(),
        files: 0,
    }];
    let close = |open: &mut Vec<Open>, built: &mut Built| {
        let mut folder = open.pop().expect("a folder is open");
        // In git's order: a tree given whole sorts as its name and `/`.
        order::sort_by(&mut folder.entries, |a, b| a.cmp(b));
        let tree = gix_object::Tree {
            entries: folder.entries,
        };
        let id = object::tree_id(hash_kind, &tree)?;
        built.objects.push((id, Object::Tree(Arc::new(tree))));
        built.folders.push((folder.path, id, folder.files));
        if let Some(parent) = open.last_mut() {
            parent.files += folder.files;
            parent.entries.push(Entry {
                mode: Mode::Tree.entry_mode(),
                filename: folder.name,
                oid: id,
            });
        }
        Ok::<_, FolderError>(id)
    };
    for file in files {
        let components: Vec<&[u8]> = file.path.split(|&b| b == b'/').collect();
        let (name, folders) = components.split_last().expect("validated paths have a component");
        // Close the folders this file is not in, then open the ones it is in.
        let shared = open[1..]
            .iter()
            .zip(folders)
            .take_while(|(open, folder)| open.name.as_slice() == **folder)
            .count();
        while open.len() > shared + 1 {
            close(&mut open, &mut built)?;
        }
        for folder in &folders[shared..] {
            let parent = &open.last().expect("the root is open").path;
            open.push(Open {
                path: path::join(parent.as_bstr(), folder.as_bstr()),
                name: BString::from(*folder),
                entries: Vec::new(),
                files: 0,
            });
        }
        let folder = open.last_mut().expect("the root is open");
        folder.files += u64::from(file.mode != Mode::Tree);
        folder.entries.push(Entry {
            mode: file.mode.entry_mode(),
            filename: BString::from(*name),
            oid: file.id,
        });
        if let Some(data) = file.data {
            built.objects.push((file.id, Object::Blob(Arc::from(data))));
        }
    }
    while open.len() > 1 {
        close(&mut open, &mut built)?;
    }
    built.root = close(&mut open, &mut built)?;
    Ok(built)
}

/// Every folder's tree id and file count, for a [`StatCache`]: what a folder's files
/// (every one, no tree given whole) make as trees. The root is the empty path.
pub fn folder_trees(
    hash_kind: gix_hash::Kind,
    mut files: Vec<File>,
) -> Result<Vec<(BString, ObjectId, u64)>, FolderError> {
    for file in &mut files {
        file.data = None;
    }
    check_files(hash_kind, &mut files, false)?;
    let mut folders = build_trees(hash_kind, files)?.folders;
    order::sort_by(&mut folders, |a, b| a.0.cmp(&b.0));
    Ok(folders)
}

/// A folder compared with a commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DiffRequest {
    /// The commit (the old side).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub from: ObjectId,
    /// Every file of the folder (the new side), with content for the files read for it.
    pub files: Vec<File>,
    /// Compare only this file or folder; `None` (or empty) for the whole tree.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, with = "crate::api::wire::opt_path")]
    pub path: Option<BString>,
    /// Pair deleted and added files with identical content as renames.
    #[serde(default = "crate::api::wire::default::yes")]
    pub renames: bool,
    /// Count lines added and removed per file.
    #[serde(default = "crate::api::wire::default::yes")]
    pub line_stats: bool,
    /// Write a unified patch.
    #[serde(default)]
    pub patch: bool,
    /// Binary files as `GIT binary patch` data in the patch.
    #[serde(default)]
    pub binary_patch: bool,
    /// Paths of the folder its files leave out (excluded or skipped files, excluded
    /// folders): what the commit has at and below them is no change, as a snapshot of
    /// the folder keeps it.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(default, with = "crate::api::wire::paths")]
    pub untracked: Vec<BString>,
}

impl DiffRequest {
    /// Compare the folder's `files` with the commit `from`: paths, renames, line counts.
    pub fn new(from: ObjectId, files: Vec<File>) -> Self {
        DiffRequest {
            from,
            files,
            path: None,
            renames: true,
            line_stats: true,
            patch: false,
            binary_patch: false,
            untracked: Vec::new(),
        }
    }
}

/// The difference between a commit and a folder, as `git diff <commit>` in a work tree
/// reports it: a [`Diff`] whose output has `to` the id the tree of the folder's `files`
/// would have (the commit's tree id when nothing differs and nothing is untracked).
/// What the commit has at or below an `untracked` path is left out of the comparison.
///
/// Only the commit's folders whose ids differ from the folder's are read, a level per
/// round; blobs only for line counts and patches. A file of the folder that differs from
/// the commit and comes without content must be in storage (a file whose stat the cache
/// knew was committed by an earlier snapshot); when it is not, the operation fails with
/// [`object::Error::NotFound`] naming its id, and the face hashes again with content.
pub fn diff(cache: &ObjectCache, request: DiffRequest) -> Result<Diff, diff::tree::Error> {
    let mut files = request.files;
    check_files(cache.hash_kind(), &mut files, true)?;
    for untracked in &request.untracked {
        path::validate(untracked.as_bstr(), false).map_err(FolderError::from)?;
    }
    let Built { root, objects, .. } = build_trees(cache.hash_kind(), files)?;
    let diff = diff::tree::Request {
        from: Some(request.from),
        to: root,
        path: request.path,
        renames: request.renames,
        line_stats: request.line_stats,
        patch: request.patch,
        binary_patch: request.binary_patch,
    };
    Diff::against_tree(diff, root, objects, request.untracked)
}

/// A commit's tree (or one path of it) to write into a folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequest {
    /// The commit to bring back.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub commit: ObjectId,
    /// Only this file or folder; `None` (or empty) for the whole tree.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, with = "crate::api::wire::opt_path")]
    pub path: Option<BString>,
    /// The folder's tracked files as they are now (contents not needed): those the
    /// commit does not have are deleted, those it has unchanged are left alone.
    pub files: Vec<File>,
    /// Paths in the folder that are not tracked (excluded or skipped files, and
    /// excluded folders): nothing may be written onto or below them.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(default, with = "crate::api::wire::paths")]
    pub untracked: Vec<BString>,
}

impl CheckoutRequest {
    /// Bring the whole tree of `commit` into a folder whose tracked files are `files`.
    pub fn new(commit: ObjectId, files: Vec<File>) -> Self {
        CheckoutRequest {
            commit,
            path: None,
            files,
            untracked: Vec::new(),
        }
    }
}

/// What to write into a folder and delete from it, in the order to do it: deletes
/// first, then writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CheckoutPlan {
    /// The commit brought back.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub commit: ObjectId,
    /// Tracked files to delete, deepest first (a face then removes folders left empty).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(with = "crate::api::wire::paths")]
    pub deletes: Vec<BString>,
    /// Files to create or overwrite, by path, with their mode and content.
    pub writes: Vec<read::FileWithPath>,
    /// Files already as the commit has them.
    pub unchanged: u64,
    /// Submodules of the commit, which a checkout does not write.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(with = "crate::api::wire::paths")]
    pub submodules: Vec<BString>,
}

#[derive(Debug)]
enum Stage {
    List,
    Blobs(CheckoutPlan, Vec<ObjectId>),
}

/// Plan a checkout: read the commit's tree below the path, check every entry is safe
/// to write, compare with the folder, and read the blobs of the files to write (in one
/// round). Nothing is written: the face carries out the [`CheckoutPlan`].
#[derive(Debug)]
pub struct Checkout {
    request: CheckoutRequest,
    components: Vec<BString>,
    stage: Option<Stage>,
    fetch: Fetch,
    done: bool,
}

impl Checkout {
    /// Check the request: the path and the folder's files.
    pub fn new(cache: &ObjectCache, mut request: CheckoutRequest) -> Result<Self, Error> {
        let path = request.path.clone().unwrap_or_default();
        let components = read::components(path.as_bstr())?;
        check_files(cache.hash_kind(), &mut request.files, false)?;
        for untracked in &request.untracked {
            path::validate(untracked.as_bstr(), false)?;
        }
        Ok(Checkout {
            request,
            components,
            stage: Some(Stage::List),
            fetch: Fetch::default(),
            done: false,
        })
    }

    fn attempt(&mut self, cache: &ObjectCache) -> Result<Option<CheckoutPlan>, Error> {
        match self.stage.take() {
            Some(Stage::List) => {
                let Some(entries) = self.list(cache)? else {
                    self.stage = Some(Stage::List);
                    return Ok(None);
                };
                let (plan, blobs) = self.plan(entries)?;
                self.stage = Some(Stage::Blobs(plan, blobs));
                self.attempt(cache)
            }
            Some(Stage::Blobs(mut plan, blobs)) => {
                let mut complete = true;
                for id in &blobs {
                    complete &= self.fetch.blob(cache, id)?.is_some();
                }
                if !complete {
                    self.stage = Some(Stage::Blobs(plan, blobs));
                    return Ok(None);
                }
                for (write, id) in plan.writes.iter_mut().zip(&blobs) {
                    let data = self.fetch.held_blob(id).expect("every blob was read");
                    write.file.data = data.to_vec();
                }
                Ok(Some(plan))
            }
            None => Err(Misuse("poll called after Done").into()),
        }
    }

    /// Every entry below the path at the commit (the one entry, for a file).
    fn list(&mut self, cache: &ObjectCache) -> Result<Option<Vec<read::Entry>>, Error> {
        let path = self.request.path.clone().unwrap_or_default();
        let commit = self.request.commit;
        let Some(target) = read::locate(&mut self.fetch, cache, &commit, path.as_bstr(), &self.components)? else {
            return Ok(None);
        };
        let root = match target {
            read::Target::Root(id) => id,
            read::Target::Entry(e) if e.mode.is_tree() => e.oid,
            read::Target::Entry(e) => {
                let mode = Mode::of(&e);
                return Ok(Some(vec![read::Entry { path, mode, id: e.oid }]));
            }
        };
        let mut out = Vec::new();
        let complete = read::list(&mut self.fetch, cache, &root, path.as_bstr(), true, &mut out)?;
        Ok(complete.then_some(out))
    }

    /// Check the commit's entries and compare them with the folder: what to delete,
    /// what to write (with the blob ids to read, in the same order).
    fn plan(&self, entries: Vec<read::Entry>) -> Result<(CheckoutPlan, Vec<ObjectId>), Error> {
        check_safe(&entries)?;
        let scope = self.request.path.clone().unwrap_or_default();
        let in_scope = |p: &BStr| scope.is_empty() || p == scope.as_bstr() || is_below(p, scope.as_bstr());
        // The folder's files are sorted by path (`check_files`), and so are the entries of
        // a tree listed depth first in git's order.
        let folder: Vec<&File> = self
            .request
            .files
            .iter()
            .filter(|f| in_scope(f.path.as_bstr()))
            .collect();
        let find = |path: &BStr| {
            folder
                .binary_search_by(|f| f.path.as_bstr().cmp(path))
                .ok()
                .map(|i| folder[i])
        };
        let mut untracked: Vec<(BString, &BString)> = self.request.untracked.iter().map(|p| (fold(p), p)).collect();
        order::sort_by(&mut untracked, |a, b| a.0.cmp(&b.0));
        let mut plan = CheckoutPlan {
            commit: self.request.commit,
            deletes: Vec::new(),
            writes: Vec::new(),
            unchanged: 0,
            submodules: Vec::new(),
        };
        let mut blobs = Vec::new();
        let mut targets: Vec<&BStr> = Vec::with_capacity(entries.len());
        for entry in &entries {
            targets.push(entry.path.as_bstr());
            if entry.mode == Mode::Submodule {
                plan.submodules.push(entry.path.clone());
                continue;
            }
            if find(entry.path.as_bstr()).is_some_and(|f| f.id == entry.id && f.mode == entry.mode) {
                plan.unchanged += 1;
                continue;
            }
            if let Some(kept) = in_the_way(&untracked, fold(&entry.path).as_bstr()) {
                return Err(Error::Untracked {
                    path: entry.path.clone(),
                    kept: kept.clone(),
                });
            }
            blobs.push(entry.id);
            plan.writes.push(read::FileWithPath {
                path: entry.path.clone(),
                file: read::File {
                    id: entry.id,
                    mode: entry.mode,
                    data: Vec::new(),
                },
            });
        }
        order::sort_by(&mut targets, |a, b| a.cmp(b));
        plan.deletes = folder
            .iter()
            .filter(|f| targets.binary_search(&f.path.as_bstr()).is_err())
            .map(|f| f.path.clone())
            .collect();
        // Deepest first, then by path: a folder's files go before the folder would.
        order::sort_by(&mut plan.deletes, |a, b| {
            let depth = |p: &BString| p.iter().filter(|&&c| c == b'/').count();
            depth(b).cmp(&depth(a)).then_with(|| a.cmp(b))
        });
        Ok((plan, blobs))
    }
}

/// The untracked path (of `untracked`, sorted by its folded form) that `folded` is, lies
/// below, or lies above.
fn in_the_way<'a>(untracked: &[(BString, &'a BString)], folded: &BStr) -> Option<&'a BString> {
    let find = |p: &[u8]| untracked.binary_search_by(|u| u.0.as_slice().cmp(p)).ok();
    // The path itself, or a folder on its way.
    let mut at = folded.len();
    loop {
        if let Some(i) = find(&folded[..at]) {
            return Some(untracked[i].1);
        }
        match folded[..at].rfind_byte(b'/') {
            Some(slash) => at = slash,
            None => break,
        }
    }
    // Something untracked below it: the first path after `folded/`.
    let mut below = folded.to_owned();
    below.push(b'/');
    let first = untracked.partition_point(|u| u.0 < below);
    untracked
        .get(first)
        .filter(|u| u.0.starts_with(below.as_slice()))
        .map(|u| u.1)
}

/// `path` folded as git folds names on a case-insensitive disk (`core.ignoreCase`:
/// ASCII letters only).
fn fold(path: &BString) -> BString {
    BString::from(path.to_ascii_lowercase())
}

/// Refuse a commit's entries that a checkout could not write safely on every disk: a
/// file below a path that is a symlink in the same tree, and two entries that differ
/// only in case (git's own trees cannot hold `.git` spellings, `..` or duplicate names:
/// core refuses them when it reads the tree).
fn check_safe(entries: &[read::Entry]) -> Result<(), Error> {
    let mut folded: Vec<(BString, usize)> = entries.iter().enumerate().map(|(i, e)| (fold(&e.path), i)).collect();
    order::sort_by(&mut folded, |a, b| a.0.cmp(&b.0));
    if let Some(pair) = folded.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::Unsafe {
            path: entries[pair[1].1].path.clone(),
            reason: Unsafe::CaseCollision,
        });
    }
    let symlinks: Vec<&BString> = folded
        .iter()
        .filter(|(_, i)| entries[*i].mode == Mode::Symlink)
        .map(|(f, _)| f)
        .collect();
    if symlinks.is_empty() {
        return Ok(());
    }
    for (folded, i) in &folded {
        // Every folder on the path, as a case-insensitive disk would find it.
        let mut at = 0;
        while let Some(slash) = folded[at..].find_byte(b'/') {
            at += slash;
            if symlinks.binary_search_by(|s| s.as_slice().cmp(&folded[..at])).is_ok() {
                return Err(Error::Unsafe {
                    path: entries[*i].path.clone(),
                    reason: Unsafe::SymlinkParent,
                });
            }
            at += 1;
        }
    }
    Ok(())
}

impl Operation for Checkout {
    type Output = CheckoutPlan;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<CheckoutPlan>, Error> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        self.fetch.reset_want();
        let commit = self.request.commit;
        let attempt = self.attempt(cache).map_err(|err| match err {
            Error::Read(err) => Error::Read(read::named(&commit, err)),
            other => other,
        })?;
        match attempt {
            Some(plan) if self.fetch.complete() => {
                self.done = true;
                Ok(Step::Done(plan))
            }
            _ => Ok(self.fetch.take_get().unwrap_or(Step::Get(Vec::new()))),
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        let commit = self.request.commit;
        self.fetch
            .provide(cache, objects)
            .map_err(|err: read::Error| Error::Read(read::named(&commit, err)))
    }
}

/// A file's stat as a face reads it: what git's index compares to tell that a file has
/// not changed since it was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes.
    pub size: u64,
    /// Last modification: seconds since the Unix epoch, and nanoseconds.
    pub mtime: (i64, u32),
    /// Last status change: seconds and nanoseconds (0 where the system has none).
    pub ctime: (i64, u32),
    /// Inode number (0 where the system has none).
    pub inode: u64,
    /// Regular, executable or symlink.
    pub mode: Mode,
}

/// Why a stat cache's bytes were not used. A face starts from an empty cache then: a
/// damaged cache costs a full hash of the folder, never a wrong snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// Not a stat cache of this version, or of another hash kind.
    #[error("not a snapgit stat cache of this version and hash kind")]
    Format,
    /// Cut short, or damaged: the checksum does not match.
    #[error("the stat cache is truncated or damaged")]
    Damaged,
}

/// A cache of file stats and the blob ids they were hashed to, so that a snapshot reads
/// and hashes only files whose stat changed, as git's index does. It lives outside the
/// store (beside the folder or in the user's cache folder), and a face keeps one per
/// folder.
///
/// A file is clean when its stat equals the cached one and it was not modified in the
/// second the cache was written or later (git's "racily clean" rule: such a file could
/// change again within the same second without its stat showing it), so a file edited
/// in the same second as a snapshot is hashed again by the next one.
///
/// The files' entries stay in the bytes they were decoded from (or encoded to), found by
/// where each starts: a cache of 100,000 files is one buffer and one list of offsets, not
/// 100,000 paths of their own.
#[derive(Clone)]
pub struct StatCache {
    hash_kind: gix_hash::Kind,
    /// Holds the entries, one after another in path order, as [`StatCache::encode`]
    /// writes them (and possibly more: a decoded file is kept whole).
    bytes: Vec<u8>,
    /// Where each entry starts in `bytes`.
    starts: Vec<usize>,
    /// Where the last entry ends.
    end: usize,
    /// Each folder's tree id and file count when the cache was written, sorted by path.
    trees: Vec<(BString, ObjectId, u64)>,
    written: i64,
}

/// The first bytes of a stat cache, version 2.
const MAGIC: &[u8; 20] = b"snapgit stat cache\x00\x02";

/// An entry's bytes after its path: mode (u32), size (u64), mtime and ctime (seconds u64,
/// nanoseconds u32 each) and inode (u64); the id follows.
const ENTRY_FIXED: usize = 4 + 8 + 12 + 12 + 8;

impl StatCache {
    /// An empty cache: every file is hashed.
    pub fn new(hash_kind: gix_hash::Kind) -> Self {
        StatCache {
            hash_kind,
            bytes: Vec::new(),
            starts: Vec::new(),
            end: 0,
            trees: Vec::new(),
            written: i64::MIN,
        }
    }

    /// A cache of these files' stats and ids, to write after a snapshot.
    pub fn from_files(hash_kind: gix_hash::Kind, mut entries: Vec<(BString, Stat, ObjectId)>) -> Self {
        order::sort_by(&mut entries, |a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let id_len = hash_kind.len_in_bytes();
        let mut bytes = Vec::with_capacity(entries.iter().map(|e| 4 + e.0.len() + ENTRY_FIXED + id_len).sum());
        let mut starts = Vec::with_capacity(entries.len());
        for (path, stat, id) in &entries {
            starts.push(bytes.len());
            bytes.extend_from_slice(&(path.len() as u32).to_le_bytes());
            bytes.extend_from_slice(path);
            bytes.extend_from_slice(&stat.mode.as_u32().to_le_bytes());
            bytes.extend_from_slice(&stat.size.to_le_bytes());
            bytes.extend_from_slice(&(stat.mtime.0 as u64).to_le_bytes());
            bytes.extend_from_slice(&stat.mtime.1.to_le_bytes());
            bytes.extend_from_slice(&(stat.ctime.0 as u64).to_le_bytes());
            bytes.extend_from_slice(&stat.ctime.1.to_le_bytes());
            bytes.extend_from_slice(&stat.inode.to_le_bytes());
            bytes.extend_from_slice(id.as_bytes());
        }
        StatCache {
            hash_kind,
            end: bytes.len(),
            bytes,
            starts,
            trees: Vec::new(),
            written: i64::MIN,
        }
    }

    /// The cache with each folder's tree id and file count ([`folder_trees`] of the same
    /// files), so that a folder none of whose files changed can be given whole
    /// ([`StatCache::collapse`]).
    pub fn with_trees(mut self, mut trees: Vec<(BString, ObjectId, u64)>) -> Self {
        order::sort_by(&mut trees, |a, b| a.0.cmp(&b.0));
        trees.dedup_by(|a, b| a.0 == b.0);
        self.trees = trees;
        self
    }

    /// The cache with its folders' trees made from its own files ([`folder_trees`]), as
    /// a snapshot writes it. Files whose paths cannot make trees leave it without: it
    /// then still spares reading files, only collapsing is lost.
    pub fn with_folder_trees(self) -> Self {
        let files = (0..self.len()).filter_map(|i| self.file(i)).collect();
        match folder_trees(self.hash_kind, files) {
            Ok(trees) => self.with_trees(trees),
            Err(_) => self,
        }
    }

    /// The folders a scan can give whole: for files sorted by path (`count` of them,
    /// `path(i)` the path of file `i`, `clean[i]` whether its stat showed it unchanged),
    /// each folder the cache knows whose files are all clean and exactly as many as the
    /// cache knew below it, outermost only, in the order of their files. The root is never
    /// one, and none if the paths are not in strictly ascending byte order.
    /// [`StatCache::collapse`] replaces each by one entry.
    pub fn whole_folders<'p>(
        &self,
        count: usize,
        path: impl Fn(usize) -> &'p [u8],
        clean: &[bool],
    ) -> Vec<WholeFolder<'_>> {
        // The ranges below are found by binary search: files out of order (a face that
        // sorts otherwise) are compared one by one instead.
        if self.trees.is_empty() || (1..count).any(|i| path(i - 1) >= path(i)) {
            return Vec::new();
        }
        // Files not clean before each index: a range is all clean when the counts at its
        // two ends agree.
        let mut unclean = Vec::with_capacity(count + 1);
        unclean.push(0usize);
        for i in 0..count {
            let dirty = !clean.get(i).copied().unwrap_or(false);
            unclean.push(unclean[i] + usize::from(dirty));
        }
        let partition = |lo: usize, test: &dyn Fn(&[u8]) -> bool| partition(lo, count, |i| test(path(i)));
        // The folders that can be given whole, as ranges of files: the files below a
        // folder are those whose path starts with `dir/`, side by side in path order.
        let mut prefix = Vec::new();
        let mut whole = Vec::new();
        for (dir, id, files) in self.trees.iter().filter(|t| !t.0.is_empty()) {
            prefix.clear();
            prefix.extend_from_slice(dir);
            prefix.push(b'/');
            let lo = partition(0, &|p| p < prefix.as_slice());
            let hi = partition(lo, &|p| p.starts_with(&prefix));
            if hi > lo && (hi - lo) as u64 == *files && unclean[hi] == unclean[lo] {
                whole.push(WholeFolder {
                    files: lo..hi,
                    path: dir.as_bstr(),
                    id: *id,
                });
            }
        }
        // By first file, the widest first: a folder comes before the folders inside it
        // (folders' own path order differs: `a.b/` sorts before `a/`). Then those inside
        // one already given whole go.
        order::sort_by(&mut whole, |a, b| {
            a.files.start.cmp(&b.files.start).then(b.files.end.cmp(&a.files.end))
        });
        let mut end = 0;
        whole.retain(|w| {
            let outermost = w.files.start >= end;
            if outermost {
                end = w.files.end;
            }
            outermost
        });
        whole
    }

    /// The trees of the folders that `files` (a scan's files, as [`StatCache::collapse`]
    /// gives them) has a file in, as they were when the cache was written: built from
    /// the cache's own files, every other folder given whole by the tree id the cache
    /// keeps for it. A diff or snapshot against the commit the cache was written for
    /// reads exactly these trees of it; an [`ObjectCache`] that [keeps](ObjectCache::keep)
    /// them reads none. A tree is its contents' hash whatever the cache holds, so a stale
    /// cache only builds trees no commit has; one whose files cannot make trees builds
    /// none.
    pub fn known_trees(&self, files: &[File]) -> crate::cache::Built {
        let mut built = crate::cache::Built::default();
        if self.trees.is_empty() {
            return built;
        }
        // Every folder a file of `files` is in (a folder given whole has none).
        let mut touched: foldhash::HashSet<&[u8]> = foldhash::HashSet::default();
        for file in files.iter().filter(|f| f.mode != Mode::Tree) {
            for i in file.path.find_iter("/") {
                touched.insert(&file.path[..i]);
            }
        }
        let mut known = Vec::new();
        let mut at = 0;
        while at < self.len() {
            let path = self.path(at);
            // The outermost folder of this path that no file of `files` is in, if the
            // cache has its tree: one entry for all the cache's files below it (side by
            // side in path order).
            let untouched = path
                .find_iter("/")
                .map(|i| &path[..i])
                .find(|dir| !touched.contains(dir.as_bytes()))
                .and_then(|dir| {
                    let found = self.trees.binary_search_by(|t| t.0.as_slice().cmp(dir)).ok()?;
                    Some((dir, self.trees[found].1))
                });
            if let Some((dir, id)) = untouched {
                known.push(File {
                    path: dir.into(),
                    mode: Mode::Tree,
                    id,
                    data: None,
                });
                at = partition(at + 1, self.len(), |i| is_below(self.path(i), dir));
                continue;
            }
            let Some(file) = self.file(at) else {
                return built;
            };
            known.push(file);
            at += 1;
        }
        if check_files(self.hash_kind, &mut known, true).is_ok()
            && let Ok(trees) = build_trees(self.hash_kind, known)
        {
            built.objects = trees.objects;
        }
        built
    }

    /// `files` (sorted by path, as a scan found them) with every folder whose files are
    /// all `clean` (known by their stat: `clean[i]` for `files[i]`) and exactly those the
    /// cache knew below it replaced by one entry of mode [`Mode::Tree`] and the folder's
    /// tree id ([`StatCache::whole_folders`]): what [`diff()`] compares without looking
    /// inside (git's cache-tree). The files are moved within their own list, not copied.
    pub fn collapse(&self, mut files: Vec<File>, clean: &[bool]) -> Vec<File> {
        let whole: Vec<(std::ops::Range<usize>, BString, ObjectId)> = self
            .whole_folders(files.len(), |i| files[i].path.as_slice(), clean)
            .into_iter()
            .map(|w| (w.files, w.path.to_owned(), w.id))
            .collect();
        if whole.is_empty() {
            return files;
        }
        let mut whole = whole.into_iter().peekable();
        // Compacted in place: `files[..kept]` is the result so far, `files[kept..at]`
        // entries already used up, `files[at..]` still to go.
        let (mut kept, mut at) = (0, 0);
        while at < files.len() {
            if let Some((range, path, id)) = whole.next_if(|w| w.0.start == at) {
                files[kept] = File {
                    path,
                    mode: Mode::Tree,
                    id,
                    data: None,
                };
                at = range.end;
            } else {
                files.swap(kept, at);
                at += 1;
            }
            kept += 1;
        }
        files.truncate(kept);
        files
    }

    /// The cache in `bytes` (taken as they are when given owned), written at `written`
    /// (seconds since the Unix epoch: the cache file's modification time, as the file
    /// system reports it).
    pub fn decode(hash_kind: gix_hash::Kind, bytes: impl Into<Vec<u8>>, written: i64) -> Result<Self, CacheError> {
        let bytes = bytes.into();
        let body_len = bytes.len().checked_sub(8).ok_or(CacheError::Damaged)?;
        let (body, sum) = bytes.split_at(body_len);
        let header = MAGIC.len() + 1 + 8;
        if !body.starts_with(MAGIC) || body.len() < header {
            return Err(CacheError::Format);
        }
        if body[MAGIC.len()] != hash_kind_byte(hash_kind) {
            return Err(CacheError::Format);
        }
        if checksum(body).to_le_bytes() != sum {
            return Err(CacheError::Damaged);
        }
        let mut reader = Reader {
            bytes: &body[MAGIC.len() + 1..],
        };
        let count = reader.u64()?;
        let id_len = hash_kind.len_in_bytes();
        let mut starts = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(body.len() / 60));
        let mut last: Option<&[u8]> = None;
        for _ in 0..count {
            starts.push(body.len() - reader.bytes.len());
            let (path, _, _) = reader.entry(id_len)?;
            if last.is_some_and(|last| last >= path) {
                return Err(CacheError::Damaged);
            }
            last = Some(path);
        }
        let end = body.len() - reader.bytes.len();
        let count = reader.u64()?;
        let mut trees = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(body.len() / 40));
        for _ in 0..count {
            let len = reader.u32()? as usize;
            let path = BString::from(reader.take(len)?);
            // `take` gives exactly the id's length: no panic (and no gix-error formatting,
            // floats included, in the npm package's `.wasm`, which `try_from` would link).
            let id = ObjectId::from_bytes_or_panic(reader.take(id_len)?);
            let files = reader.u64()?;
            if trees
                .last()
                .is_some_and(|(last, _, _): &(BString, ObjectId, u64)| *last >= path)
            {
                return Err(CacheError::Damaged);
            }
            trees.push((path, id, files));
        }
        if !reader.bytes.is_empty() {
            return Err(CacheError::Damaged);
        }
        Ok(StatCache {
            hash_kind,
            bytes,
            starts,
            end,
            trees,
            written,
        })
    }

    /// The cache's bytes, to write to its file (through a temporary file and a rename).
    pub fn encode(&self) -> Vec<u8> {
        let records = self.records();
        let mut out = Vec::with_capacity(48 + records.len() + self.trees.iter().map(|t| t.0.len() + 40).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.push(hash_kind_byte(self.hash_kind));
        out.extend_from_slice(&(self.starts.len() as u64).to_le_bytes());
        out.extend_from_slice(records);
        out.extend_from_slice(&(self.trees.len() as u64).to_le_bytes());
        for (path, id, files) in &self.trees {
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path);
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&files.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// The entries' bytes, all of them.
    fn records(&self) -> &[u8] {
        let first = self.starts.first().copied().unwrap_or(self.end);
        self.bytes.get(first..self.end).unwrap_or_default()
    }

    /// The path of the entry at `index`, read from where it starts (empty if out of
    /// range, which a checked cache never is).
    fn path(&self, index: usize) -> &BStr {
        let entry = self.starts.get(index).and_then(|&at| self.bytes.get(at..));
        let path = entry.and_then(|entry| {
            let len = u32::from_le_bytes(entry.get(..4)?.try_into().ok()?) as usize;
            entry.get(4..4 + len)
        });
        path.unwrap_or_default().as_bstr()
    }

    /// The entry at `index`: its path, stat and id (`None` if it does not read, which a
    /// checked cache's never fails to).
    fn entry(&self, index: usize) -> Option<(&[u8], Stat, ObjectId)> {
        let bytes = self.bytes.get(*self.starts.get(index)?..)?;
        Reader { bytes }.entry(self.hash_kind.len_in_bytes()).ok()
    }

    /// The entry at `index` as a file of a folder, known by its id.
    fn file(&self, index: usize) -> Option<File> {
        let (path, stat, id) = self.entry(index)?;
        Some(File {
            path: path.into(),
            mode: stat.mode,
            id,
            data: None,
        })
    }

    /// The id of the entry at `index` if `stat` is its stat and not racy.
    fn clean(&self, index: usize, stat: &Stat) -> Option<ObjectId> {
        let (_, cached, id) = self.entry(index)?;
        (cached == *stat && stat.mtime.0 < self.written).then_some(id)
    }

    /// The blob id of the file at `path` if its stat shows it unchanged since it was
    /// hashed; `None` if it must be read and hashed.
    pub fn id(&self, path: &BStr, stat: &Stat) -> Option<ObjectId> {
        let at = self.search(path).ok()?;
        self.clean(at, stat)
    }

    /// Where `path` is among the entries ([`slice::binary_search`]).
    fn search(&self, path: &BStr) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.starts.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path(mid).cmp(path) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// A lookup for files asked in path order (a sorted scan): [`StatCache::id`] without
    /// a search per file.
    pub fn in_order(&self) -> InOrder<'_> {
        InOrder { cache: self, at: 0 }
    }

    /// The number of files the cache knows.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// `true` if the cache knows no file.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

impl PartialEq for StatCache {
    fn eq(&self, other: &Self) -> bool {
        // An entry's bytes are its one encoding: equal bytes, equal entries.
        self.hash_kind == other.hash_kind
            && self.written == other.written
            && self.starts.len() == other.starts.len()
            && self.records() == other.records()
            && self.trees == other.trees
    }
}

impl Eq for StatCache {}

impl std::fmt::Debug for StatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatCache")
            .field("hash_kind", &self.hash_kind)
            .field("files", &self.starts.len())
            .field("trees", &self.trees.len())
            .field("written", &self.written)
            .finish()
    }
}

/// A folder a scan can give whole by its tree id ([`StatCache::whole_folders`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeFolder<'a> {
    /// Its files: indices into the scan's sorted files.
    pub files: std::ops::Range<usize>,
    /// Its path.
    pub path: &'a BStr,
    /// Its tree id when the cache was written.
    pub id: ObjectId,
}

/// [`StatCache::id`] for paths asked in ascending order, walking the cache once.
#[derive(Debug)]
pub struct InOrder<'a> {
    cache: &'a StatCache,
    at: usize,
}

impl InOrder<'_> {
    /// The blob id of the file at `path` if its stat shows it unchanged; paths must be
    /// asked in ascending order (a path asked out of order is looked up by search).
    pub fn id(&mut self, path: &BStr, stat: &Stat) -> Option<ObjectId> {
        let cache = self.cache;
        // One comparison per entry passed: a merge of two sorted lists.
        while self.at < cache.len() {
            match cache.path(self.at).cmp(path) {
                std::cmp::Ordering::Less => self.at += 1,
                std::cmp::Ordering::Equal => {
                    self.at += 1;
                    return cache.clean(self.at - 1, stat);
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        // Not at the walk's place: a path the cache lacks, or one asked out of order.
        if self.at > 0 && cache.path(self.at - 1) >= path {
            return cache.id(path, stat);
        }
        None
    }
}

fn hash_kind_byte(kind: gix_hash::Kind) -> u8 {
    match kind {
        gix_hash::Kind::Sha1 => 1,
        #[allow(unreachable_patterns, reason = "other hash kinds when gix-hash has them enabled")]
        _ => 2,
    }
}

/// A checksum that catches a damaged or cut file (not an attack: whoever can write the
/// cache can write the folder), a word at a time.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(31);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 29)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CacheError> {
        if self.bytes.len() < n {
            return Err(CacheError::Damaged);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, CacheError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn u64(&mut self) -> Result<u64, CacheError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }

    /// One file's entry: its path, stat and id.
    fn entry(&mut self, id_len: usize) -> Result<(&'a [u8], Stat, ObjectId), CacheError> {
        let len = self.u32()? as usize;
        let path = self.take(len)?;
        let mode = Mode::from_u32(self.u32()?).ok_or(CacheError::Damaged)?;
        let size = self.u64()?;
        let mtime = (self.u64()? as i64, self.u32()?);
        let ctime = (self.u64()? as i64, self.u32()?);
        let inode = self.u64()?;
        // `take` gives exactly the id's length: no panic (and no gix-error formatting,
        // floats included, in the npm package's `.wasm`, which `try_from` would link).
        let id = ObjectId::from_bytes_or_panic(self.take(id_len)?);
        let stat = Stat {
            size,
            mtime,
            ctime,
            inode,
            mode,
        };
        Ok((path, stat, id))
    }
}
