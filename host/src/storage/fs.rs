//! A store in a local folder that is a bare git repository: `git --git-dir=<folder>` (or
//! `cd <folder> && git log`) works on it, even while snapgit writes.
//!
//! # Objects
//!
//! Written as git writes loose objects: to a temporary file in the fan-out folder
//! (`objects/ab/tmp_obj_…`), flushed with `fsync`, made read-only, then hard-linked to
//! its name, which fails if the name exists — a put never replaces an object. The folder
//! is flushed after the link so the name survives a crash. An object that already exists
//! gets its modification time set to now (`futimens`, as git's "freshen" does), so a
//! concurrent GC sees it as young; that needs the file to belong to this process's user,
//! and is silently skipped otherwise. On file systems without hard links the temporary
//! file is renamed instead, only if the name is still absent.
//!
//! Packs that `git gc`, `git repack` or a push leave in `objects/pack/` are read by core,
//! a byte range at a time ([`Storage::get_ranges`] seeks), and never written or deleted
//! here.
//!
//! Listings hold every file, lock and temporary files included: core leaves locks out
//! of every listing of refs, and its GC removes what killed writers left behind.
//!
//! # Refs: git's lock-file protocol
//!
//! A ref is the file `refs/…` holding `<hex id>\n`; its version is that value. A
//! compare-and-swap creates `<ref>.lock` exclusively (`O_CREAT|O_EXCL`), re-reads the ref
//! under the lock (the loose file, then `packed-refs`), compares, writes the new value to
//! the lock file, flushes it, renames it over the ref and flushes the folder. On a
//! mismatch or any failure the lock file is removed. This is exactly what
//! `git update-ref <ref> <new> <old>` does, so a `git` process and snapgit can update the
//! same refs at the same time. A delete also rewrites `packed-refs` (under
//! `packed-refs.lock`) when the ref is packed, before removing the loose file, as git does.
//!
//! A lock held by another writer is waited for, up to [`FsOptions::lock_wait`].
//!
//! # Stale locks
//!
//! A writer that crashes leaves its lock file behind, and git would refuse every later
//! update of that ref until someone deletes it by hand. Here a lock file whose modification
//! time is older than [`FsOptions::lock_stale`] (30 s by default) is broken. Why that is
//! safe:
//!
//! - A holder here publishes (renames its lock over the ref) only if it took the lock less
//!   than [`FsOptions::lock_hold`] (5 s) ago, checked right before the rename, and
//!   otherwise gives the lock up and starts over. A lock older than `lock_stale` therefore
//!   belongs to a writer that has crashed or will not publish. Git itself holds a ref lock
//!   for milliseconds. The one remaining risk is a holder paused for more than
//!   `lock_stale - lock_hold` between its deadline check and its rename, the same bound
//!   every lease on a clock has.
//! - Two writers that find the same stale lock must not both break it: the second would
//!   remove the fresh lock the first created after breaking. So breaking takes a guard,
//!   `<ref>.lock.lock` (created exclusively; git never uses that name, and no ref can be
//!   called `<ref>.lock`), and, holding it, removes the lock file only if it is still the
//!   same file (same device, inode and modification time) and still stale. A fresh lock
//!   is never removed. A guard is held for microseconds; one older than `lock_stale` is
//!   from a crashed breaker and is removed.
//! - A writer gives up its own lock only if the lock file is still its own (same inode).
//!
//! Clocks: staleness compares the file's modification time with this machine's clock, so
//! on a network file system the machines' clocks must agree to well within `lock_stale`.

use std::{
    collections::BTreeSet,
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use snapgit_core::{
    ObjectId,
    step::{CasOutcome, CasRef, Listed, RefState, Swap},
};

use super::{
    Error, Limits, Object, Storage, check_delete_key, check_key, check_prefix, check_swap, parse_ref, ref_bytes,
};
use crate::util::{jitter, millis, token};

/// How a folder store writes and waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsOptions {
    /// Bounds on reads.
    pub limits: Limits,
    /// Flush files and folders to disk (`fsync`) before a write counts as done. Turning
    /// it off is only for throwaway stores: a crash can then lose acknowledged commits.
    pub fsync: bool,
    /// A lock file older than this is stale and is broken (see the module overview).
    pub lock_stale: Duration,
    /// A holder publishes only within this long after taking its lock; must be well
    /// below `lock_stale`.
    pub lock_hold: Duration,
    /// How long a compare-and-swap waits for another writer's lock before failing with
    /// [`Error::Locked`]. Longer than `lock_stale`, so a crashed writer's lock is always
    /// broken rather than reported.
    pub lock_wait: Duration,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            limits: Limits::default(),
            fsync: true,
            lock_stale: Duration::from_secs(30),
            lock_hold: Duration::from_secs(5),
            lock_wait: Duration::from_secs(35),
        }
    }
}

/// The content of `config` in a new store, as `git init --bare` writes it.
const CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n";

/// The largest loose ref file read; a ref is 41 or 65 bytes.
const MAX_REF_BYTES: u64 = 4096;

/// A store in a folder that is a bare git repository.
#[derive(Debug, Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    options: FsOptions,
}

impl FsStorage {
    /// Open the store in `path` with default options, creating the folder, `HEAD`,
    /// `config`, `objects/` and `refs/` where missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, FsOptions::default())
    }

    /// Open the store in `path` with these options.
    pub fn open_with(path: impl AsRef<Path>, options: FsOptions) -> Result<Self, Error> {
        if options.lock_hold >= options.lock_stale {
            return Err(Error::Config {
                reason: format!(
                    "lock_hold ({:?}) must be shorter than lock_stale ({:?})",
                    options.lock_hold, options.lock_stale
                ),
                source: None,
            });
        }
        let root = std::path::absolute(path.as_ref()).map_err(Error::io("resolve", path.as_ref()))?;
        for folder in ["objects", "refs"] {
            let folder = root.join(folder);
            fs::create_dir_all(&folder).map_err(Error::io("create folder", &folder))?;
        }
        let inner = Inner { root, options };
        let mut folders = BTreeSet::new();
        for (key, content) in [("HEAD", snapgit_core::store::HEAD), ("config", CONFIG)] {
            if fs::symlink_metadata(inner.path(key)).is_err() {
                inner.put_one(key, content.as_bytes(), &mut folders)?;
            }
        }
        inner.sync_folders(folders)?;
        Ok(FsStorage { inner: Arc::new(inner) })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(Error::Task)?
    }

    /// Carry out a compare-and-swap (or an unconditional delete), waiting for other
    /// writers' locks.
    async fn update_ref(&self, key: String, expect: Expect, new: Option<ObjectId>) -> Result<CasOutcome, Error> {
        self.under_lock(key.clone(), move |inner| inner.try_update(&key, &expect, new))
            .await
    }

    /// Try `attempt` until it is not [`Attempt::Busy`], waiting for other writers' locks
    /// up to the configured wait.
    async fn under_lock<T: Send + 'static>(
        &self,
        key: String,
        attempt: impl Fn(&Inner) -> Result<Attempt<T>, Error> + Send + Sync + 'static,
    ) -> Result<T, Error> {
        let attempt = Arc::new(attempt);
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let once = attempt.clone();
            match self.blocking(move |inner| once(inner)).await? {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Busy(lock) => {
                    let waited = started.elapsed();
                    if waited >= self.inner.options.lock_wait {
                        return Err(Error::Locked {
                            key,
                            lock,
                            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                        });
                    }
                    tokio::time::sleep(pause / 2 + jitter(pause / 2)).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }
}

/// What a ref must hold for an update to go ahead.
#[derive(Debug, Clone)]
enum Expect {
    /// Exactly this state (`None`: absent).
    State(Option<RefState>),
    /// Whatever it holds (an unconditional delete).
    Anything,
}

/// One try at an update under a lock file.
enum Attempt<T = CasOutcome> {
    Done(T),
    /// Another writer holds this lock file (or our hold ran out): try again later.
    Busy(PathBuf),
}

impl Inner {
    fn path(&self, key: &str) -> PathBuf {
        // Keys are checked: relative, `/`-separated, no `.`/`..`/empty component.
        self.root.join(key)
    }

    fn fsync(&self) -> bool {
        self.options.fsync
    }

    fn get_one(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(key);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if absent(&err) => return Ok(None),
            Err(err) => return Err(Error::io("open", &path)(err)),
        };
        let meta = file.metadata().map_err(Error::io("stat", &path))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let limit = self.options.limits.max_read_bytes;
        if meta.len() > limit {
            return Err(Error::TooLarge {
                key: key.to_owned(),
                size: meta.len(),
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        // Read at most one byte past the limit, in case the file grew after the stat.
        (&mut file)
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(Error::io("read", &path))?;
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                key: key.to_owned(),
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(Some(bytes))
    }

    /// `len` bytes of `key` from `start` (fewer at its end), `None` if it is absent.
    fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Option<Vec<u8>>, Error> {
        use std::io::{Seek, SeekFrom};
        let path = self.path(key);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if absent(&err) => return Ok(None),
            Err(err) => return Err(Error::io("open", &path)(err)),
        };
        let limit = self.options.limits.max_read_bytes;
        if len > limit {
            return Err(Error::TooLarge {
                key: key.to_owned(),
                size: len,
                limit,
            });
        }
        file.seek(SeekFrom::Start(start)).map_err(Error::io("seek", &path))?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 20));
        (&mut file)
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(Error::io("read", &path))?;
        Ok(Some(bytes))
    }

    /// Store `bytes` at `key` unless it exists (then refresh its time); remember the
    /// folder to flush.
    fn put_one(&self, key: &str, bytes: &[u8], folders: &mut BTreeSet<PathBuf>) -> Result<(), Error> {
        let path = self.path(key);
        if fs::symlink_metadata(&path).is_ok() {
            refresh(&path);
            return Ok(());
        }
        let folder = path.parent().map_or_else(|| self.root.clone(), Path::to_path_buf);
        let temp = folder.join(format!("tmp_obj_{}", token()));
        let mut file = create_new(&temp)?;
        let written = file
            .write_all(bytes)
            .and_then(|()| if self.fsync() { file.sync_all() } else { Ok(()) })
            .and_then(|()| read_only(&file));
        drop(file);
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            return Err(Error::io("write", &temp)(err));
        }
        let linked = match fs::hard_link(&temp, &path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                refresh(&path);
                Ok(())
            }
            // No hard links here: rename, which would replace, so only if still absent.
            // The object is content-addressed, so losing that race replaces it with
            // identical bytes.
            Err(_) if fs::symlink_metadata(&path).is_err() => fs::rename(&temp, &path),
            Err(_) => {
                refresh(&path);
                Ok(())
            }
        };
        let _ = fs::remove_file(&temp);
        linked.map_err(Error::io("link", &path))?;
        folders.insert(folder);
        Ok(())
    }

    fn sync_folders(&self, folders: BTreeSet<PathBuf>) -> Result<(), Error> {
        if self.fsync() {
            for folder in folders {
                sync_folder(&folder)?;
            }
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let base = prefix.rsplit_once('/').map_or("", |(folders, _)| folders);
        let mut out = Vec::new();
        let start = if base.is_empty() {
            self.root.clone()
        } else {
            self.path(base)
        };
        let key_base = if base.is_empty() {
            String::new()
        } else {
            format!("{base}/")
        };
        self.walk(&start, &key_base, prefix, &mut out)?;
        let refs_listed = prefix.starts_with("refs/") || "refs/".starts_with(prefix);
        if refs_listed && let Some((content, modified_ms)) = self.read_packed()? {
            let loose: BTreeSet<String> = out.iter().map(|l| l.key.clone()).collect();
            for (name, id) in packed_entries(&content) {
                let shadowed = loose.contains(name) || fs::symlink_metadata(self.path(name)).is_ok();
                if name.starts_with(prefix) && !shadowed {
                    out.push(Listed {
                        key: name.to_owned(),
                        size: id.kind().len_in_hex() as u64 + 1,
                        modified_ms,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn walk(&self, folder: &Path, key_base: &str, prefix: &str, out: &mut Vec<Listed>) -> Result<(), Error> {
        let entries = match fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(err) if absent(&err) => return Ok(()),
            Err(err) => return Err(Error::io("list", folder)(err)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("list", folder))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let key = format!("{key_base}{name}");
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                let sub = format!("{key}/");
                if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                    self.walk(&entry.path(), &sub, prefix, out)?;
                }
            } else if kind.is_file() && key.starts_with(prefix) {
                // Lock and temporary files are listed too: core leaves them out of every
                // listing of refs, and GC removes the ones killed writers left behind.
                // A file deleted since the folder was read is simply not listed.
                let Ok(meta) = entry.metadata() else { continue };
                out.push(Listed {
                    key,
                    size: meta.len(),
                    modified_ms: meta.modified().map_or(0, millis),
                });
            }
        }
        Ok(())
    }

    fn delete_object(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if absent(&err) => Ok(()),
            Err(err) => Err(Error::io("delete", &path)(err)),
        }
    }

    /// The content of `packed-refs` and its modification time, if it exists.
    fn read_packed(&self) -> Result<Option<(String, i64)>, Error> {
        let path = self.root.join("packed-refs");
        match fs::read(&path) {
            Ok(bytes) => {
                let modified = fs::metadata(&path).and_then(|m| m.modified()).map_or(0, millis);
                Ok(Some((String::from_utf8_lossy(&bytes).into_owned(), modified)))
            }
            Err(err) if absent(&err) => Ok(None),
            Err(err) => Err(Error::io("read", &path)(err)),
        }
    }

    fn read_ref(&self, key: &str) -> Result<Option<RefState>, Error> {
        let path = self.path(key);
        let loose = match File::open(&path) {
            Ok(file) => {
                let meta = file.metadata().map_err(Error::io("stat", &path))?;
                if meta.is_file() {
                    let mut bytes = Vec::new();
                    file.take(MAX_REF_BYTES + 1)
                        .read_to_end(&mut bytes)
                        .map_err(Error::io("read", &path))?;
                    if bytes.len() as u64 > MAX_REF_BYTES {
                        return Err(Error::CorruptRef {
                            key: key.to_owned(),
                            reason: format!("it is larger than {MAX_REF_BYTES} bytes"),
                        });
                    }
                    Some(bytes)
                } else {
                    None
                }
            }
            Err(err) if absent(&err) => None,
            Err(err) => return Err(Error::io("open", &path)(err)),
        };
        let value = match loose {
            Some(bytes) => Some(parse_ref(key, &bytes)?),
            None => match self.read_packed()? {
                Some((content, _)) => packed_entries(&content)
                    .find(|(name, _)| *name == key)
                    .map(|(_, id)| id),
                None => None,
            },
        };
        Ok(value.map(|value| RefState {
            version: value.to_string(),
            value,
        }))
    }

    fn try_update(&self, key: &str, expect: &Expect, new: Option<ObjectId>) -> Result<Attempt, Error> {
        let path = self.path(key);
        let lock_path = suffixed(&path, ".lock");
        let Some(mut lock) = LockFile::acquire(&lock_path, self.options.lock_stale)? else {
            return Ok(Attempt::Busy(lock_path));
        };
        let current = self.read_ref(key)?;
        if let Expect::State(expected) = expect
            && *expected != current
        {
            return Ok(Attempt::Done(CasOutcome::Lost { current }));
        }
        match new {
            Some(new) => {
                lock.write(&ref_bytes(&new), self.fsync())?;
                if lock.taken.elapsed() > self.options.lock_hold {
                    return Ok(Attempt::Busy(lock_path));
                }
                lock.commit(&path, self.fsync())?;
                Ok(Attempt::Done(CasOutcome::Won {
                    version: new.to_string(),
                }))
            }
            None => {
                if current.is_none() {
                    return Ok(Attempt::Done(CasOutcome::Won { version: String::new() }));
                }
                // Packed first, loose second: removing the loose file first would let
                // the old packed value show through if the rewrite failed.
                if let Some((content, _)) = self.read_packed()?
                    && packed_entries(&content).any(|(name, _)| name == key)
                {
                    let packed = self.root.join("packed-refs");
                    let packed_lock = suffixed(&packed, ".lock");
                    let Some(mut plock) = LockFile::acquire(&packed_lock, self.options.lock_stale)? else {
                        return Ok(Attempt::Busy(packed_lock));
                    };
                    // Re-read under its lock: another writer may have rewritten it.
                    let content = self.read_packed()?.map(|(content, _)| content).unwrap_or_default();
                    plock.write(without_packed(&content, key).as_bytes(), self.fsync())?;
                    if lock.taken.elapsed() > self.options.lock_hold {
                        return Ok(Attempt::Busy(lock_path));
                    }
                    plock.commit(&packed, self.fsync())?;
                }
                if lock.taken.elapsed() > self.options.lock_hold {
                    return Ok(Attempt::Busy(lock_path));
                }
                self.remove_synced(&path)?;
                drop(lock);
                self.remove_empty_parents(&path);
                Ok(Attempt::Done(CasOutcome::Won { version: String::new() }))
            }
        }
    }

    /// One try at a [`Swap`]: under `<key>.lock` (git's own lock for `shallow` and
    /// `config`), the file re-read and compared, then replaced by a rename or removed.
    fn try_swap(&self, swap: &Swap) -> Result<Attempt<bool>, Error> {
        let path = self.path(&swap.key);
        let lock_path = suffixed(&path, ".lock");
        let Some(mut lock) = LockFile::acquire(&lock_path, self.options.lock_stale)? else {
            return Ok(Attempt::Busy(lock_path));
        };
        let current = match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(err) if absent(&err) => None,
            Err(err) => return Err(Error::io("read", &path)(err)),
        };
        if current != swap.expected {
            return Ok(Attempt::Done(false));
        }
        match &swap.new {
            Some(bytes) => {
                lock.write(bytes, self.fsync())?;
                if lock.taken.elapsed() > self.options.lock_hold {
                    return Ok(Attempt::Busy(lock_path));
                }
                lock.commit(&path, self.fsync())?;
            }
            None => {
                self.remove_synced(&path)?;
                drop(lock);
            }
        }
        Ok(Attempt::Done(true))
    }

    /// Remove the file at `path` (absent is fine), syncing its folder when asked to.
    fn remove_synced(&self, path: &Path) -> Result<(), Error> {
        match fs::remove_file(path) {
            Ok(()) => {
                if self.fsync()
                    && let Some(folder) = path.parent()
                {
                    sync_folder(folder)?;
                }
                Ok(())
            }
            Err(err) if absent(&err) => Ok(()),
            Err(err) => Err(Error::io("delete", path)(err)),
        }
    }

    /// Remove the folders a deleted ref leaves empty, up to `refs/`, as git does. A
    /// writer creating a ref there at the same time recreates the folder.
    fn remove_empty_parents(&self, path: &Path) {
        let refs = self.root.join("refs");
        let mut folder = path.parent();
        while let Some(current) = folder {
            if current == refs || !current.starts_with(&refs) || fs::remove_dir(current).is_err() {
                break;
            }
            folder = current.parent();
        }
    }
}

/// An exclusively created lock file, removed on drop unless committed, and only if it is
/// still ours.
struct LockFile {
    path: PathBuf,
    file: File,
    identity: Identity,
    taken: Instant,
    committed: bool,
}

impl LockFile {
    /// Create `path` exclusively, breaking it first if it is stale; `None` if another
    /// writer holds it.
    fn acquire(path: &Path, stale: Duration) -> Result<Option<LockFile>, Error> {
        for _ in 0..4 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(file) => {
                    let identity = identity(&file.metadata().map_err(Error::io("stat", path))?);
                    return Ok(Some(LockFile {
                        path: path.to_owned(),
                        file,
                        identity,
                        taken: Instant::now(),
                        committed: false,
                    }));
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    if !break_stale(path, stale)? {
                        return Ok(None);
                    }
                }
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    // The folder does not exist yet, or a delete just removed it.
                    if let Some(folder) = path.parent() {
                        fs::create_dir_all(folder).map_err(Error::io("create folder", folder))?;
                    }
                }
                Err(err) => return Err(Error::io("create lock file", path)(err)),
            }
        }
        Ok(None)
    }

    fn write(&mut self, bytes: &[u8], fsync: bool) -> Result<(), Error> {
        self.file
            .write_all(bytes)
            .and_then(|()| if fsync { self.file.sync_all() } else { Ok(()) })
            .map_err(Error::io("write", &self.path))?;
        // Writing moved the modification time, which is part of the identity.
        self.identity = identity(&self.file.metadata().map_err(Error::io("stat", &self.path))?);
        Ok(())
    }

    /// Publish: rename the lock file over `target`, then flush the folder.
    fn commit(mut self, target: &Path, fsync: bool) -> Result<(), Error> {
        let mut renamed = fs::rename(&self.path, target);
        if renamed.is_err() && target.is_dir() {
            // An empty folder left where a ref of this name once had children.
            let _ = fs::remove_dir(target);
            renamed = fs::rename(&self.path, target);
        }
        renamed.map_err(Error::io("rename lock file onto", target))?;
        self.committed = true;
        if fsync && let Some(folder) = target.parent() {
            sync_folder(folder)?;
        }
        Ok(())
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if !self.committed && fs::symlink_metadata(&self.path).is_ok_and(|m| identity(&m) == self.identity) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Break the lock file at `path` if it is stale. `true` if it is gone (try again),
/// `false` if it is held.
fn break_stale(path: &Path, stale: Duration) -> Result<bool, Error> {
    let seen = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if absent(&err) => return Ok(true),
        Err(err) => return Err(Error::io("stat", path)(err)),
    };
    if !is_stale(&seen, stale) {
        return Ok(false);
    }
    let guard_path = suffixed(path, ".lock");
    let guard = match OpenOptions::new().write(true).create_new(true).open(&guard_path) {
        Ok(guard) => guard,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(&guard_path).is_ok_and(|m| is_stale(&m, stale)) {
                let _ = fs::remove_file(&guard_path);
            }
            return Ok(false);
        }
        Err(err) => return Err(Error::io("create lock file", &guard_path)(err)),
    };
    let unchanged =
        fs::symlink_metadata(path).is_ok_and(|now| identity(&now) == identity(&seen) && is_stale(&now, stale));
    let removed = if unchanged {
        match fs::remove_file(path) {
            Err(err) if !absent(&err) => Err(Error::io("remove stale lock file", path)(err)),
            _ => Ok(()),
        }
    } else {
        Ok(())
    };
    drop(guard);
    let _ = fs::remove_file(&guard_path);
    removed.map(|()| true)
}

fn is_stale(meta: &fs::Metadata, stale: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > stale)
}

/// What tells one file from another at the same path.
#[cfg(unix)]
type Identity = (u64, u64, Option<SystemTime>);
#[cfg(not(unix))]
type Identity = (u64, Option<SystemTime>);

#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), meta.modified().ok())
}

#[cfg(not(unix))]
fn identity(meta: &fs::Metadata) -> Identity {
    (meta.len(), meta.created().ok())
}

fn create_new(path: &Path) -> Result<File, Error> {
    let mut result = OpenOptions::new().write(true).create_new(true).open(path);
    if let Err(err) = &result
        && err.kind() == ErrorKind::NotFound
        && let Some(folder) = path.parent()
    {
        fs::create_dir_all(folder).map_err(Error::io("create folder", folder))?;
        result = OpenOptions::new().write(true).create_new(true).open(path);
    }
    result.map_err(Error::io("create", path))
}

/// Make a written object read-only, as git does.
fn read_only(file: &File) -> std::io::Result<()> {
    let mut permissions = file.metadata()?.permissions();
    permissions.set_readonly(true);
    file.set_permissions(permissions)
}

/// Set the modification time of an existing object to now. Best effort: it fails for
/// files owned by another user, and the object is still there either way.
fn refresh(path: &Path) {
    if let Ok(file) = File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[cfg(unix)]
fn sync_folder(folder: &Path) -> Result<(), Error> {
    File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(Error::io("flush folder", folder))
}

#[cfg(not(unix))]
fn sync_folder(_folder: &Path) -> Result<(), Error> {
    Ok(())
}

fn absent(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The `(name, id)` entries of a `packed-refs` file, skipping its header and peeled lines.
fn packed_entries(content: &str) -> impl Iterator<Item = (&str, ObjectId)> {
    content.lines().filter_map(|line| {
        if line.starts_with('#') || line.starts_with('^') {
            return None;
        }
        let (hex, name) = line.split_once(' ')?;
        Some((name, ObjectId::from_hex(hex.as_bytes()).ok()?))
    })
}

/// `packed-refs` without the entry for `key` (and its peeled line).
fn without_packed(content: &str, key: &str) -> String {
    let mut out = String::with_capacity(content.len());
    let mut skipping = false;
    for line in content.lines() {
        if skipping && line.starts_with('^') {
            continue;
        }
        skipping = line.split_once(' ').is_some_and(|(_, name)| name == key) && !line.starts_with('#');
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[async_trait::async_trait]
impl Storage for FsStorage {
    fn location(&self) -> String {
        self.inner.root.display().to_string()
    }

    /// Reads from the page cache keep a core busy each: more calls than cores only add
    /// threads (each call is one blocking task).
    fn read_parallelism(&self) -> usize {
        crate::util::cores()
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        for key in keys {
            check_key(key)?;
        }
        let keys = keys.to_vec();
        self.blocking(move |inner| keys.iter().map(|key| inner.get_one(key)).collect())
            .await
    }

    async fn get_ranges(&self, ranges: &[(String, u64, u64)]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        for (key, _, _) in ranges {
            check_key(key)?;
        }
        let ranges = ranges.to_vec();
        self.blocking(move |inner| {
            ranges
                .iter()
                .map(|(key, start, len)| inner.get_range(key, *start, *len))
                .collect()
        })
        .await
    }

    async fn put_many(&self, objects: Vec<Object>) -> Result<(), Error> {
        for object in &objects {
            check_key(&object.key)?;
        }
        self.blocking(move |inner| {
            let mut folders = BTreeSet::new();
            for object in &objects {
                inner.put_one(&object.key, &object.bytes, &mut folders)?;
            }
            inner.sync_folders(folders)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        check_prefix(prefix)?;
        let prefix = prefix.to_owned();
        self.blocking(move |inner| inner.list(&prefix)).await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        for key in keys {
            check_delete_key(key)?;
        }
        // A ref is deleted under git's lock protocol; a lock file a killed writer left
        // behind is a plain file.
        let (refs, others): (Vec<String>, Vec<String>) = keys
            .iter()
            .cloned()
            .partition(|key| key.starts_with("refs/") && !key.ends_with(".lock"));
        self.blocking(move |inner| others.iter().try_for_each(|key| inner.delete_object(key)))
            .await?;
        for key in refs {
            self.update_ref(key, Expect::Anything, None).await?;
        }
        Ok(())
    }

    async fn read_ref(&self, key: &str) -> Result<Option<RefState>, Error> {
        check_key(key)?;
        let key = key.to_owned();
        self.blocking(move |inner| inner.read_ref(&key)).await
    }

    async fn swap(&self, swap: &Swap) -> Result<bool, Error> {
        check_key(&swap.key)?;
        check_swap(swap, || self.location())?;
        let swap = swap.clone();
        self.under_lock(swap.key.clone(), move |inner| inner.try_swap(&swap))
            .await
    }

    async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, Error> {
        check_key(&cas.key)?;
        self.update_ref(cas.key.clone(), Expect::State(cas.expected.clone()), cas.new)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_refs_parse_and_rewrite() {
        let a = "1111111111111111111111111111111111111111";
        let b = "2222222222222222222222222222222222222222";
        let content =
            format!("# pack-refs with: peeled fully-peeled sorted \n{a} refs/heads/a\n^{b}\n{b} refs/heads/b\n");
        let entries: Vec<_> = packed_entries(&content)
            .map(|(n, id)| (n.to_owned(), id.to_string()))
            .collect();
        assert_eq!(
            entries,
            vec![
                ("refs/heads/a".into(), a.to_owned()),
                ("refs/heads/b".into(), b.to_owned())
            ]
        );
        let rewritten = without_packed(&content, "refs/heads/a");
        assert_eq!(
            rewritten,
            format!("# pack-refs with: peeled fully-peeled sorted \n{b} refs/heads/b\n")
        );
        assert_eq!(without_packed(&content, "refs/heads/zzz"), content);
    }
}
