//! The storage contract: one async trait every backend implements, its errors, and
//! opening a backend from a URL.
//!
//! A store is a bare git repository laid out under one prefix (see
//! [`snapgit_core::store`]): loose objects at `objects/ab/cdef…`, refs at
//! `refs/namespaces/<repo>/refs/heads/<branch>` holding `<hex id>\n`, and `HEAD`. Core
//! decides every key and every write; a backend only moves bytes, with two guarantees
//! core builds on:
//!
//! - [`Storage::put_many`] stores an object only if its key is absent (objects are
//!   content-addressed, so an existing one is identical), and refreshes the modification
//!   time of one that exists where the backend can, so a garbage collection running at
//!   the same time sees it as young.
//! - [`Storage::cas_ref`] is a linearizable compare-and-swap: it changes the ref only if
//!   it is still in the expected state, and otherwise reports the state it found.
//!
//! | backend | version of a ref | compare-and-swap | refresh of an existing object |
//! |---|---|---|---|
//! | [`memory`] | a counter | a mutex | yes |
//! | [`fs`] | the value itself | git's `<ref>.lock` protocol | `futimens` (owner only) |
//! | [`object_store`] | ETag (+ generation) | `If-Match` / `If-None-Match` | rewrite of the same bytes |

pub mod fs;
pub mod memory;
pub mod object_store;

use std::{fmt, path::PathBuf, sync::Arc};

use bytes::Bytes;
use snapgit_core::{
    ObjectId,
    step::{CasOutcome, CasRef, Listed, RefState, Swap},
};

/// One object to store: its key and its stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The key inside the store, e.g. `objects/ab/cdef…`.
    pub key: String,
    /// The bytes to store (for a git object, its loose form).
    pub bytes: Bytes,
}

impl From<snapgit_core::object::NewObject> for Object {
    fn from(object: snapgit_core::object::NewObject) -> Self {
        Object {
            key: object.key(),
            bytes: Bytes::from(object.loose),
        }
    }
}

/// Where the bytes of one store live. Object-safe: pick a backend at run time with
/// [`open`] and hold it as `Arc<dyn Storage>`.
///
/// Every method takes keys relative to the store; a key that could reach outside it
/// (empty, absolute, with an empty, `.` or `..` component) or that ends in `.lock` (the
/// suffix git reserves for lock files) is refused with [`Error::InvalidKey`]. Calls handle
/// their keys one after another; [`crate::driver`] runs several calls at once.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Where this store is, for messages: a URL or a folder.
    fn location(&self) -> String;

    /// The most [`Storage::get_many`] calls worth running at once: a remote store's reads
    /// wait on round trips, so many at once pay (the default: no bound of its own); a
    /// local folder's are bounded by the cores. The driver runs no more than this.
    fn read_parallelism(&self) -> usize {
        usize::MAX
    }

    /// The stored bytes at each key, `None` where absent, in the order asked. A value
    /// larger than the configured [`Limits::max_read_bytes`] fails with
    /// [`Error::TooLarge`] before it is read.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error>;

    /// Store each object unless its key exists; refresh the modification time of one
    /// that exists where the backend can (see the module overview).
    async fn put_many(&self, objects: Vec<Object>) -> Result<(), Error>;

    /// Every key that starts with `prefix` (any string; `""` lists the store), sorted,
    /// with its size and modification time; lock and temporary files included (core
    /// leaves locks out of every listing of refs, and GC removes stale ones).
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error>;

    /// The bytes of each range (`key`, first byte, length), `None` where the key is absent,
    /// in the order asked; a range past the end of its key gives what there is. Reads
    /// whole values and cuts them unless the backend reads ranges itself.
    async fn get_ranges(&self, ranges: &[(String, u64, u64)]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let keys: Vec<String> = ranges.iter().map(|(key, _, _)| key.clone()).collect();
        let values = self.get_many(&keys).await?;
        Ok(values
            .into_iter()
            .zip(ranges)
            .map(|(value, (_, start, len))| value.map(|bytes| cut(&bytes, *start, *len)))
            .collect())
    }

    /// Delete these keys; absent ones are fine. Deleting a ref this way is unconditional.
    async fn delete(&self, keys: &[String]) -> Result<(), Error>;

    /// The value and version of the ref at `key`, `None` if it does not exist.
    async fn read_ref(&self, key: &str) -> Result<Option<RefState>, Error>;

    /// Set the ref `cas.key` to `cas.new` (`None` deletes it) only if it is in the state
    /// `cas.expected` (`None`: only if it does not exist). On a mismatch nothing changes
    /// and the outcome is [`CasOutcome::Lost`] with the state found.
    async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, Error>;

    /// Replace the file `swap.key` (one of core's [`SWAPPABLE`](snapgit_core::step::SWAPPABLE)
    /// files) with `swap.new` (`None` removes it) only if it holds exactly
    /// `swap.expected` (`None`: only if it does not exist): `true` if it was replaced,
    /// `false` (and nothing changed) if not.
    async fn swap(&self, swap: &Swap) -> Result<bool, Error>;
}

/// Refuse a swap of anything but core's [`SWAPPABLE`](snapgit_core::step::SWAPPABLE)
/// files.
pub(crate) fn check_swap(swap: &Swap, location: impl FnOnce() -> String) -> Result<(), Error> {
    if swap.allowed() {
        return Ok(());
    }
    Err(Error::Unsupported {
        location: location(),
        what: "replacing files other than `shallow` and `config`",
    })
}

/// The bytes from `start` for `len` within `bytes`, fewer where they end first.
pub fn cut(bytes: &[u8], start: u64, len: u64) -> Vec<u8> {
    let from = usize::try_from(start).unwrap_or(usize::MAX).min(bytes.len());
    let to = usize::try_from(start.saturating_add(len))
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    bytes[from..to].to_vec()
}

/// Bounds every backend applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest stored value [`Storage::get_many`] reads, in bytes.
    pub max_read_bytes: u64,
}

impl Default for Limits {
    /// 128 MiB: above core's default largest object (100 MiB inflated), whose loose form
    /// can be slightly larger than its content when it does not compress.
    fn default() -> Self {
        Limits {
            max_read_bytes: 128 << 20,
        }
    }
}

/// The error of a backend or its source, kept as raised.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key cannot name anything in a store.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The stored value is larger than [`Limits::max_read_bytes`]; nothing was read.
    #[error("{key:?} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The key.
        key: String,
        /// Its stored size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A ref holds something other than `<hex id>\n`.
    #[error("ref {key:?} is corrupt: {reason}")]
    CorruptRef {
        /// The ref's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL, options or credentials cannot work.
    #[error("invalid storage configuration: {reason}")]
    Config {
        /// What is wrong, and what to set.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The server does not honour conditional writes, so writing could lose updates;
    /// every write is refused.
    #[error("refusing to write to {location}: {reason}")]
    Unsafe {
        /// The store.
        location: String,
        /// What the server got wrong.
        reason: String,
    },
    /// The backend cannot do this.
    #[error("{location} does not support {what}")]
    Unsupported {
        /// The store.
        location: String,
        /// What was asked.
        what: &'static str,
    },
    /// Another writer held the ref's lock file for longer than the wait allows, and it
    /// is not yet old enough to be broken as stale.
    #[error("ref {key:?} stayed locked by another writer ({lock}) for {waited_ms} ms")]
    Locked {
        /// The ref's key.
        key: String,
        /// The lock file.
        lock: PathBuf,
        /// How long this call waited.
        waited_ms: u64,
    },
    /// A file system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An object store request failed.
    #[error("{op} {key:?} at {location}: {source}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The key.
        key: String,
        /// The store.
        location: String,
        /// The object store's error.
        #[source]
        source: BoxError,
    },
    /// A blocking task running file system calls panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl Error {
    /// Its stable code (core's classification), which the CLI's exit code and the
    /// component's failures carry: bad keys and options are invalid input, an object over
    /// the read cap a limit, a ref that does not parse corrupt, the rest a storage failure.
    pub fn code(&self) -> snapgit_core::error::Code {
        use snapgit_core::error::Code;
        match self {
            Error::InvalidKey { .. } | Error::Config { .. } => Code::InvalidInput,
            Error::TooLarge { .. } => Code::Limit,
            Error::CorruptRef { .. } => Code::Corrupt,
            _ => Code::Storage,
        }
    }
}

impl Error {
    /// Box this error as core's [`snapgit_core::StorageError`], which keeps it whole
    /// (callers can `downcast_ref::<Error>()`).
    pub fn boxed(self) -> snapgit_core::StorageError {
        Box::new(self)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// The longest key accepted, in bytes (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// Refuse keys that could reach outside a store, or collide with lock files.
pub fn check_key(key: &str) -> Result<(), Error> {
    let fail = |reason| {
        Err(Error::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return fail("it is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return fail("it is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return fail("it is absolute");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return fail("it contains a control character or a backslash");
    }
    for part in key.split('/') {
        match part {
            "" => return fail("it has an empty component"),
            "." | ".." => return fail("it has a '.' or '..' component"),
            _ => {}
        }
    }
    if key.ends_with(".lock") {
        return fail("it ends in '.lock', which is reserved for lock files");
    }
    Ok(())
}

/// [`check_key`] for a delete, which may also remove a lock file (`<key>.lock`): GC
/// removes the ones killed writers left behind.
pub fn check_delete_key(key: &str) -> Result<(), Error> {
    match key.strip_suffix(".lock") {
        Some(locked) if !locked.is_empty() && !locked.ends_with('/') => check_key(locked),
        _ => check_key(key),
    }
}

/// Refuse list prefixes that could reach outside a store. `""` is the whole store; the
/// last component may be partial.
pub fn check_prefix(prefix: &str) -> Result<(), Error> {
    if prefix.is_empty() {
        return Ok(());
    }
    let fail = |reason| {
        Err(Error::InvalidKey {
            key: prefix.to_owned(),
            reason,
        })
    };
    if prefix.starts_with('/') {
        return fail("it is absolute");
    }
    if prefix.chars().any(|c| c.is_control() || c == '\\') {
        return fail("it contains a control character or a backslash");
    }
    let folders = prefix.rsplit_once('/').map_or("", |(folders, _)| folders);
    for part in folders.split('/').filter(|_| !folders.is_empty()) {
        match part {
            "" => return fail("it has an empty component"),
            "." | ".." => return fail("it has a '.' or '..' component"),
            _ => {}
        }
    }
    Ok(())
}

/// Parse a ref's stored bytes: `<hex id>\n`, as git writes loose refs.
pub(crate) fn parse_ref(key: &str, bytes: &[u8]) -> Result<ObjectId, Error> {
    let corrupt = |reason: &str| Error::CorruptRef {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.starts_with(b"ref:") {
        return Err(corrupt("it is a symbolic ref, and only direct refs are supported"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("it is not text"))?;
    let hex = text.strip_suffix('\n').unwrap_or(text);
    ObjectId::from_hex(hex.as_bytes()).map_err(|_| corrupt("it does not hold a full hex object id"))
}

/// The bytes of a ref pointing at `id`: `<hex id>\n`.
pub(crate) fn ref_bytes(id: &ObjectId) -> Vec<u8> {
    format!("{id}\n").into_bytes()
}

/// What [`open`] builds a store with.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Bounds for every backend.
    pub limits: Limits,
    /// Object-store configuration (credentials, endpoint), see
    /// [`object_store::CloudOptions`].
    pub cloud: object_store::CloudOptions,
    /// File system options.
    pub fs: fs::FsOptions,
}

impl Options {
    /// Default limits, file system options, and cloud configuration from the environment
    /// (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn from_env() -> Self {
        Options {
            cloud: object_store::CloudOptions::from_env(),
            ..Options::default()
        }
    }
}

/// Open the store named by `url`:
///
/// - `memory:` — in this process only;
/// - `file:///abs/path`, or a plain path without a scheme — a folder that is a bare git
///   repository (created if missing);
/// - `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` — object storage
///   through the `object_store` crate, configured by [`Options::cloud`].
pub fn open(url: &str, options: &Options) -> Result<Arc<dyn Storage>, Error> {
    check_url(url)?;
    let scheme = url.split_once(':').map(|(scheme, _)| scheme).filter(|s| {
        // A single letter is a Windows drive, not a scheme.
        s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    match scheme {
        None => Ok(Arc::new(fs::FsStorage::open_with(url, fs_options(options))?)),
        Some("memory") => Ok(Arc::new(memory::MemoryStorage::with_limits(options.limits))),
        Some("file") => {
            let parsed = url::Url::parse(url).map_err(|err| Error::Config {
                reason: format!("invalid file URL {url:?}"),
                source: Some(Box::new(err)),
            })?;
            let path = parsed.to_file_path().map_err(|()| Error::Config {
                reason: format!("{url:?} does not name a local folder (use file:///absolute/path)"),
                source: None,
            })?;
            Ok(Arc::new(fs::FsStorage::open_with(path, fs_options(options))?))
        }
        Some(_) => {
            let mut cloud = options.cloud.clone();
            cloud.limits = options.limits;
            Ok(Arc::new(object_store::ObjectStoreStorage::from_url(url, &cloud)?))
        }
    }
}

/// Refuse a store URL that is empty, or whose path has an empty, `.` or `..` segment
/// (`s3://b/zz/../prefix` would otherwise silently mean `s3://b/prefix`).
pub fn check_url(url: &str) -> Result<(), Error> {
    let refuse = |reason: &str| {
        Err(Error::Config {
            reason: format!("invalid store URL {url:?}: {reason}"),
            source: None,
        })
    };
    if url.trim().is_empty() {
        return refuse("it is empty");
    }
    // The path after `scheme://host`, or the whole of a plain path.
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let dots = |segment: &str| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    };
    if url.contains("://") && path.split('/').any(dots) {
        return refuse("a `.` or `..` segment in its path");
    }
    Ok(())
}

fn fs_options(options: &Options) -> fs::FsOptions {
    fs::FsOptions {
        limits: options.limits,
        ..options.fs.clone()
    }
}
