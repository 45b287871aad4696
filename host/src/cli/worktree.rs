//! A folder on disk as a work tree: scanned with a stat cache (only files whose stat
//! changed are read and hashed, as git's index does), and written back from a
//! [`CheckoutPlan`] that core checked. Core decides what differs, what to write and
//! what is unsafe; this module only does the folder's IO.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use bstr::{BStr, BString, ByteSlice};
use snapgit_core::{
    HashKind, Mode, ObjectId, object,
    policy::Policy,
    worktree::{self, CheckoutPlan, File, Skip, Stat, StatCache},
};

use super::Error;

/// A folder to snapshot, compare or roll back.
#[derive(Debug, Clone)]
pub struct Folder {
    root: PathBuf,
    /// Files and folders left out (gitignore patterns on repo paths) and the largest file
    /// taken.
    pub policy: Policy,
    /// Folders never read (a local store below the folder).
    pub skip: Vec<PathBuf>,
    /// Read every `.gitignore` of the folder too, as git does: each one's patterns apply
    /// below its own folder, a deeper one's winning ([`Policy::exclude_file`]).
    pub gitignore: bool,
    /// Counts files as a scan finds them (its length: files found), then as it reads
    /// them (its position: files read), for a progress display.
    pub progress: Option<indicatif::ProgressBar>,
}

/// A file found by a scan.
#[derive(Debug, Clone)]
pub struct Found {
    /// The file as core takes it: content given when it was read and hashed.
    pub file: File,
    /// Its stat when it was scanned.
    pub stat: Stat,
    /// Its id came from the stat cache (it was not read).
    pub clean: bool,
}

/// One entry of a folder's listing.
enum Listed {
    File(Found),
    /// A folder, by its repo path.
    Folder(BString),
}

/// What a scan's thread keeps from folder to folder: what it passed over, and a list it
/// reads each folder's entries into.
#[derive(Default)]
struct Scratch {
    skipped: Vec<(BString, Skip)>,
    entries: Vec<(std::ffi::OsString, Option<fs::FileType>, fs::DirEntry)>,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every file taken, sorted by path.
    pub files: Vec<Found>,
    /// Paths passed over (excluded, too large, not a file), with why.
    pub skipped: Vec<(BString, Skip)>,
    /// Files read and hashed (the others' stat was clean in the cache).
    pub hashed: usize,
    /// Files the stat cache knew.
    pub cached: usize,
}

impl Scan {
    /// The files without their stats, for a core request; content kept when `with_data`.
    pub fn files(&self, with_data: bool) -> Vec<File> {
        self.files
            .iter()
            .map(|f| File {
                data: if with_data { f.file.data.clone() } else { None },
                ..f.file.clone()
            })
            .collect()
    }

    /// The paths a rollback must not write onto or below.
    pub fn untracked(&self) -> Vec<BString> {
        self.skipped.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The files for a core request, every folder the stat cache knows unchanged given
    /// whole by its tree id ([`StatCache::collapse`]); content kept when `with_data`.
    pub fn collapsed(&self, cache: &StatCache, with_data: bool) -> Vec<File> {
        let clean: Vec<bool> = self.files.iter().map(|f| f.clean).collect();
        cache.collapse(self.files(with_data), &clean)
    }

    /// [`Scan::collapsed`] with content, the files moved out of the scan rather than
    /// copied.
    pub fn into_collapsed(self, cache: &StatCache) -> Vec<File> {
        let clean: Vec<bool> = self.files.iter().map(|f| f.clean).collect();
        cache.collapse(self.files.into_iter().map(|f| f.file).collect(), &clean)
    }

    /// A stat cache of every file found (less `stale` ones), with its folders' trees, to
    /// write after a snapshot committed them.
    pub fn cache(&self, hash_kind: HashKind, stale: &std::collections::HashSet<BString>) -> StatCache {
        let entries = self
            .files
            .iter()
            .filter(|f| !stale.contains(&f.file.path))
            .map(|f| (f.file.path.clone(), f.stat, f.file.id))
            .collect();
        StatCache::from_files(hash_kind, entries).with_folder_trees()
    }
}

/// A scan with the count of files its stat cache knew.
fn loaded<C: std::borrow::Borrow<StatCache>>(cache: C, mut scan: Scan) -> (C, Scan) {
    scan.cached = cache.borrow().len();
    (cache, scan)
}

impl Folder {
    /// The folder at `root`, which must exist.
    pub fn new(root: &Path) -> Result<Self, Error> {
        let root = fs::canonicalize(root).map_err(|source| Error::Unreadable {
            path: root.to_owned(),
            source,
        })?;
        if !root.is_dir() {
            return Err(Error::invalid(format!("{} is not a folder", root.display())));
        }
        Ok(Folder {
            root,
            policy: Policy::new(),
            skip: Vec::new(),
            gitignore: false,
            progress: None,
        })
    }

    /// The folder's absolute path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every file below `scope` (a repo path; empty for the whole folder): stat each,
    /// take the blob id from `cache` where the stat is clean, else read and hash it.
    pub fn scan(&self, scope: &BStr, cache: &StatCache, hash_kind: HashKind) -> Result<Scan, Error> {
        self.scan_loading(scope, || cache, hash_kind).map(|(_, scan)| scan)
    }

    /// [`Folder::scan`] with the stat cache `load` gives, loaded while the folder is
    /// listed (only comparing stats needs it): the cache and the scan.
    pub fn scan_loading<C: std::borrow::Borrow<StatCache> + Send>(
        &self,
        scope: &BStr,
        load: impl FnOnce() -> C + Send,
        hash_kind: HashKind,
    ) -> Result<(C, Scan), Error> {
        let skip: Vec<PathBuf> = self.skip.iter().filter_map(|p| fs::canonicalize(p).ok()).collect();
        let mut scan = Scan::default();
        let start = if scope.is_empty() {
            self.root.clone()
        } else {
            self.root
                .join(scope.to_str().map_err(|_| Error::invalid("the path is not UTF-8"))?)
        };
        let meta = match fs::symlink_metadata(&start) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(loaded(load(), scan)),
            Err(source) => return Err(Error::Unreadable { path: start, source }),
        };
        // The ignore files of the folders above the scope count too.
        let policy = ignores_above(&self.root, scope, self.gitignore, Arc::new(self.policy.clone()))?;
        // Below an excluded folder, or excluded itself: nothing to take.
        if !scope.is_empty() {
            let mut named = scope.to_owned();
            if meta.is_dir() {
                named.push(b'/');
            }
            if let Some(pattern) = policy.excluded(named.as_bstr()) {
                let skip = worktree::Skip::Excluded { by: pattern.to_owned() };
                scan.skipped.push((scope.to_owned(), skip));
                return Ok(loaded(load(), scan));
            }
        }
        if !meta.is_dir() {
            self.take(&policy, scope.to_owned(), &meta, &mut scan);
            let (cache, mut scan) = loaded(load(), scan);
            self.identify(&mut scan, cache.borrow(), hash_kind)?;
            return Ok((cache, scan));
        }
        let (cache, walked) = std::thread::scope(|s| {
            let loader = s.spawn(load);
            let walked = self.walk(start, scope.to_owned(), policy, &skip, &mut scan);
            (loader.join(), walked)
        });
        let cache = cache.map_err(|_| Error::invalid("the stat cache's loader panicked"))?;
        walked?;
        let (cache, mut scan) = loaded(cache, scan);
        self.identify(&mut scan, cache.borrow(), hash_kind)?;
        Ok((cache, scan))
    }

    /// Every file below `start`, in path order, its folders listed and its files
    /// stat'ed by as many threads as there are cores (git's `core.preloadIndex` does the
    /// same for its index): each takes the next folder to list, and queues the folders
    /// it finds. Each listing is sorted on its own, a folder's name taken as `name/`,
    /// so that reading the listings depth first gives every path in byte order with no
    /// sort of the whole.
    fn walk(
        &self,
        start: PathBuf,
        repo_start: BString,
        policy: Arc<Policy>,
        skip: &[PathBuf],
        scan: &mut Scan,
    ) -> Result<(), Error> {
        struct Queue {
            /// Each folder with the policy its `.gitignore` files above it make.
            folders: Vec<(PathBuf, BString, Arc<Policy>)>,
            busy: usize,
            failed: Option<Error>,
        }
        let queue = std::sync::Mutex::new(Queue {
            folders: vec![(start, repo_start.clone(), policy)],
            busy: 0,
            failed: None,
        });
        let wake = std::sync::Condvar::new();
        let found = std::sync::Mutex::new(Vec::new());
        let threads = crate::util::cores().clamp(1, 8);
        let work = || {
            let mut listings = Vec::new();
            let mut scratch = Scratch::default();
            loop {
                let Some((dir, repo_dir, policy)) = ({
                    let Ok(mut q) = queue.lock() else { break };
                    loop {
                        if q.failed.is_some() {
                            break None;
                        }
                        if let Some(next) = q.folders.pop() {
                            q.busy += 1;
                            break Some(next);
                        }
                        if q.busy == 0 {
                            break None;
                        }
                        q = match wake.wait(q) {
                            Ok(q) => q,
                            Err(_) => break None,
                        };
                    }
                }) else {
                    wake.notify_all();
                    break;
                };
                let mut below = Vec::new();
                let listed = self.list(&dir, repo_dir.as_bstr(), policy, skip, &mut below, &mut scratch);
                if let Ok(mut q) = queue.lock() {
                    q.busy -= 1;
                    q.folders.extend(below);
                    match listed {
                        Ok(entries) => listings.push((repo_dir, entries)),
                        Err(err) => {
                            q.failed.get_or_insert(err);
                        }
                    }
                }
                wake.notify_all();
            }
            if let Ok(mut all) = found.lock() {
                all.push((listings, scratch.skipped));
            }
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(work);
            }
            work();
        });
        let queue = queue
            .into_inner()
            .map_err(|_| Error::invalid("a folder scan thread panicked"))?;
        if let Some(err) = queue.failed {
            return Err(err);
        }
        let mut listings = std::collections::HashMap::new();
        for (part, skipped) in found
            .into_inner()
            .map_err(|_| Error::invalid("a folder scan thread panicked"))?
        {
            listings.extend(part);
            scan.skipped.extend(skipped);
        }
        scan.files.reserve(listings.values().map(Vec::len).sum());
        // Depth first, each listing in its order: every file in path order.
        let mut stack = Vec::new();
        if let Some(entries) = listings.remove(&repo_start) {
            stack.push(entries.into_iter());
        }
        while let Some(entries) = stack.last_mut() {
            match entries.next() {
                Some(Listed::File(file)) => scan.files.push(file),
                Some(Listed::Folder(path)) => {
                    if let Some(below) = listings.remove(&path) {
                        stack.push(below.into_iter());
                    }
                }
                None => {
                    stack.pop();
                }
            }
        }
        Ok(())
    }

    /// List one folder: its files and folders in the order their paths sort in (a
    /// folder's as `name/`), its folders also into `below`.
    fn list(
        &self,
        dir: &Path,
        repo_dir: &BStr,
        policy: Arc<Policy>,
        skip: &[PathBuf],
        below: &mut Vec<(PathBuf, BString, Arc<Policy>)>,
        scratch: &mut Scratch,
    ) -> Result<Vec<Listed>, Error> {
        let Scratch { skipped, entries } = scratch;
        if skip.iter().any(|s| s == dir) {
            // Listed, so that a rollback never writes into the store.
            if !repo_dir.is_empty() {
                skipped.push((repo_dir.to_owned(), worktree::Skip::StoreFolder));
            }
            return Ok(Vec::new());
        }
        let unreadable = |source| Error::Unreadable {
            path: dir.to_owned(),
            source,
        };
        // A scratch list the thread reuses from folder to folder.
        entries.clear();
        for entry in fs::read_dir(dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            // The type the listing gives (a stat only where the file system gives none).
            entries.push((entry.file_name(), entry.file_type().ok(), entry));
        }
        // In the order of their paths, a folder's taken as `name/` (the order of the
        // paths below it among its neighbours): sorted here, the entries are small.
        entries.sort_unstable_by(|(a, a_type, _), (b, b_type, _)| {
            let (a, b) = (a.as_encoded_bytes(), b.as_encoded_bytes());
            let n = a.len().min(b.len());
            a[..n].cmp(&b[..n]).then_with(|| {
                let next = |name: &[u8], kind: &Option<fs::FileType>| {
                    name.get(n)
                        .copied()
                        .or(kind.is_some_and(|t| t.is_dir()).then_some(b'/'))
                };
                next(a, a_type).cmp(&next(b, b_type))
            })
        });
        // This folder's ignore files first: their patterns decide its entries and all below.
        let policy = read_ignores(&self.root, repo_dir, self.gitignore, policy, |name| {
            lists_file(entries.iter().map(|(n, t, _)| (n.as_os_str(), *t)), name)
        })?;
        let mut scan = Scan::default();
        let mut listed = Vec::with_capacity(entries.len());
        for (name, kind, entry) in entries.drain(..) {
            let Some(name) = name.to_str() else {
                // Named by its repo path, the name made readable.
                let shown = snapgit_core::path::join(repo_dir, name.to_string_lossy().as_bytes().as_bstr());
                skipped.push((shown, worktree::Skip::NotUtf8));
                continue;
            };
            // A nested git repository's own folder is never part of a snapshot.
            if name.eq_ignore_ascii_case(".git") {
                continue;
            }
            let repo_path = snapgit_core::path::join(repo_dir, name.as_bytes().as_bstr());
            let unreadable = |source| Error::Unreadable {
                path: entry.path(),
                source,
            };
            // The type the folder listing gives: no stat for folders.
            let kind = match kind {
                Some(kind) => kind,
                None => entry.file_type().map_err(unreadable)?,
            };
            if kind.is_dir() {
                if let Some(skip) = worktree::skip(&policy, repo_path.as_bstr(), worktree::Found::Folder) {
                    skipped.push((repo_path, skip));
                } else {
                    below.push((entry.path(), repo_path.clone(), policy.clone()));
                    listed.push(Listed::Folder(repo_path));
                }
            } else {
                let meta = entry.metadata().map_err(unreadable)?;
                self.take(&policy, repo_path, &meta, &mut scan);
                listed.extend(scan.files.pop().map(Listed::File));
            }
        }
        skipped.append(&mut scan.skipped);
        // Once per folder: the bar's counter is shared by the scan's threads.
        if let Some(bar) = &self.progress {
            bar.inc_length(listed.iter().filter(|l| matches!(l, Listed::File(_))).count() as u64);
        }
        Ok(listed)
    }

    /// One file: skipped (core's rule, [`worktree::skip`]), or taken with its stat.
    fn take(&self, policy: &Policy, repo_path: BString, meta: &fs::Metadata, scan: &mut Scan) {
        let (found, mode) = if meta.file_type().is_symlink() {
            (worktree::Found::Symlink, Mode::Symlink)
        } else if meta.is_file() {
            (
                worktree::Found::File { size: meta.len() },
                super::input::file_mode(meta),
            )
        } else {
            (worktree::Found::Other, Mode::Regular)
        };
        // Its folders were checked on the way down.
        if let Some(skip) = worktree::skip(policy, repo_path.as_bstr(), found) {
            scan.skipped.push((repo_path, skip));
            return;
        }
        // The id comes once every file is found, in path order (see `scan`).
        scan.files.push(Found {
            file: File {
                path: repo_path,
                mode,
                id: ObjectId::null(HashKind::Sha1),
                data: None,
            },
            stat: stat_of(meta, mode),
            clean: false,
        });
    }

    /// Each file's id: from the cache where its stat is clean, else read and hashed.
    fn identify(&self, scan: &mut Scan, cache: &StatCache, hash_kind: HashKind) -> Result<(), Error> {
        let mut known = cache.in_order();
        for found in &mut scan.files {
            match known.id(found.file.path.as_bstr(), &found.stat) {
                Some(id) => {
                    found.file.id = id;
                    found.clean = true;
                }
                None => {
                    let data = self.read(found.file.path.as_bstr(), found.file.mode)?;
                    scan.hashed += 1;
                    if let Some(bar) = &self.progress {
                        bar.inc(1);
                    }
                    found.file.id = blob_id(hash_kind, &data)?;
                    found.file.data = Some(data);
                }
            }
        }
        Ok(())
    }

    /// The content of the file at `path` (a symlink's target), as a snapshot commits it.
    pub fn read(&self, path: &BStr, mode: Mode) -> Result<Vec<u8>, Error> {
        read(&self.full(path)?, mode)
    }

    fn full(&self, path: &BStr) -> Result<PathBuf, Error> {
        let text = path
            .to_str()
            .map_err(|_| Error::invalid(format!("{path:?} is not UTF-8")))?;
        Ok(self.root.join(text))
    }

    /// Carry out a checked plan: check every folder on the way of every write first
    /// (nothing is written if one is a symlink or a file that stays), then delete, then
    /// write each file to a temporary name beside it and rename it into place. Reports
    /// each file done to `on_file`; when `cancel` is set, stops before the next file, so
    /// every file is either as it was or as the plan has it, and says which were done.
    pub fn apply(
        &self,
        plan: &CheckoutPlan,
        cancel: &std::sync::atomic::AtomicBool,
        mut on_file: impl FnMut(&BStr),
    ) -> Result<Applied, Error> {
        use std::sync::atomic::Ordering;
        let deleted: std::collections::HashSet<&BStr> = plan.deletes.iter().map(|p| p.as_bstr()).collect();
        for write in &plan.writes {
            self.check_parents(write.path.as_bstr(), &deleted)?;
        }
        let mut applied = Applied {
            deleted: Vec::with_capacity(plan.deletes.len()),
            written: Vec::with_capacity(plan.writes.len()),
            complete: false,
        };
        for path in &plan.deletes {
            if cancel.load(Ordering::Relaxed) {
                return Ok(applied);
            }
            let full = self.full(path.as_bstr())?;
            match fs::remove_file(&full) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Unwritable {
                        path: full,
                        source: err,
                    });
                }
                _ => {}
            }
            // Folders left empty go too, up to the folder itself.
            let mut dir = full.parent();
            while let Some(d) = dir {
                if d == self.root || fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            applied.deleted.push(path.clone());
            on_file(path.as_bstr());
        }
        for (n, write) in plan.writes.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return Ok(applied);
            }
            let full = self.full(write.path.as_bstr())?;
            let parent = full.parent().unwrap_or(&self.root);
            fs::create_dir_all(parent).map_err(|source| Error::Unwritable {
                path: parent.to_owned(),
                source,
            })?;
            // A folder where the file goes: empty now that its tracked files are gone.
            if fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir(&full).map_err(|_| Error::Unsafe {
                    path: full.clone(),
                    reason: "a folder with untracked files stands where the file goes".into(),
                })?;
            }
            let name = full
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let temp = parent.join(format!(".{name}.snapgit-{}-{n}", std::process::id()));
            write_file(&temp, write.file.mode, &write.file.data).map_err(|source| Error::Unwritable {
                path: temp.clone(),
                source,
            })?;
            fs::rename(&temp, &full).map_err(|source| {
                let _ = fs::remove_file(&temp);
                Error::Unwritable {
                    path: full.clone(),
                    source,
                }
            })?;
            let meta = fs::symlink_metadata(&full).map_err(|source| Error::Unreadable {
                path: full.clone(),
                source,
            })?;
            applied
                .written
                .push((write.path.clone(), stat_of(&meta, write.file.mode), write.file.id));
            on_file(write.path.as_bstr());
        }
        applied.complete = true;
        Ok(applied)
    }

    /// Every folder on the way to `path` that exists must be a real folder, or a file or
    /// symlink the plan deletes first.
    fn check_parents(&self, path: &BStr, deleted: &std::collections::HashSet<&BStr>) -> Result<(), Error> {
        let mut at = 0;
        while let Some(slash) = path[at..].find_byte(b'/') {
            at += slash;
            let prefix = path[..at].as_bstr();
            let full = self.full(prefix)?;
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) if deleted.contains(prefix) => return Ok(()),
                Ok(meta) => {
                    let what = if meta.file_type().is_symlink() {
                        "a symlink"
                    } else {
                        "a file"
                    };
                    return Err(Error::Unsafe {
                        path: full,
                        reason: format!("{what} the rollback does not track stands where a folder goes"),
                    });
                }
                Err(_) => return Ok(()),
            }
            at += 1;
        }
        Ok(())
    }
}

/// `policy` with the patterns of the ignore files core reads in the folder `repo_dir` of
/// the folder `root` ([`worktree::ignore_files`]: its `.gitignore` when `gitignore`, its
/// `.snapgitignore` below the root) that it has (files, not symlinks: git does not follow
/// one either) and `listed` says it holds.
pub(super) fn read_ignores(
    root: &Path,
    repo_dir: &BStr,
    gitignore: bool,
    mut policy: Arc<Policy>,
    listed: impl Fn(&str) -> bool,
) -> Result<Arc<Policy>, Error> {
    for &name in worktree::ignore_files(repo_dir.is_empty(), gitignore) {
        if !listed(name) {
            continue;
        }
        let path = snapgit_core::path::join(repo_dir, name.as_bytes().as_bstr());
        let text = path
            .to_str()
            .map_err(|_| Error::invalid(format!("{path:?} is not UTF-8")))?;
        let full = root.join(text);
        if !fs::symlink_metadata(&full).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let text = fs::read(&full).map_err(|source| Error::Unreadable {
            path: full.clone(),
            source,
        })?;
        let next = Policy::clone(&policy)
            .exclude_file(path.as_bstr(), &String::from_utf8_lossy(&text))
            .map_err(|err| Error::invalid(format!("{}: {err}", full.display())))?;
        policy = Arc::new(next);
    }
    Ok(policy)
}

/// Whether a folder's listing (each entry with its name) holds a file, not a folder or a
/// symlink, named `name`.
pub(super) fn lists_file<'a>(
    entries: impl IntoIterator<Item = (&'a std::ffi::OsStr, Option<fs::FileType>)>,
    name: &str,
) -> bool {
    entries
        .into_iter()
        .any(|(n, kind)| n == name && kind.is_some_and(|t| t.is_file()))
}

/// `policy` with the ignore files of every folder above `path` (a repo path of `root`):
/// what a walk down from the root would have read before reaching it.
pub(super) fn ignores_above(
    root: &Path,
    path: &BStr,
    gitignore: bool,
    mut policy: Arc<Policy>,
) -> Result<Arc<Policy>, Error> {
    if path.is_empty() {
        return Ok(policy);
    }
    let mut above = BString::default();
    for part in path.split(|&b| b == b'/') {
        policy = read_ignores(root, above.as_bstr(), gitignore, policy, |_| true)?;
        if !above.is_empty() {
            above.push(b'/');
        }
        above.extend_from_slice(part);
    }
    Ok(policy)
}

fn blob_id(hash_kind: HashKind, data: &[u8]) -> Result<ObjectId, Error> {
    object::blob_id(hash_kind, data).map_err(|err| Error::invalid(err.to_string()))
}

fn read(path: &Path, mode: Mode) -> Result<Vec<u8>, Error> {
    let unreadable = |source| Error::Unreadable {
        path: path.to_owned(),
        source,
    };
    if mode == Mode::Symlink {
        Ok(fs::read_link(path)
            .map_err(unreadable)?
            .into_os_string()
            .into_encoded_bytes())
    } else {
        fs::read(path).map_err(unreadable)
    }
}

#[cfg(unix)]
fn write_file(path: &Path, mode: Mode, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if mode == Mode::Symlink {
        use std::os::unix::ffi::OsStrExt;
        return std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(data), path);
    }
    fs::write(path, data)?;
    let bits = if mode == Mode::Executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(bits))
}

#[cfg(not(unix))]
fn write_file(path: &Path, _mode: Mode, data: &[u8]) -> std::io::Result<()> {
    fs::write(path, data)
}

#[cfg(unix)]
fn stat_of(meta: &fs::Metadata, mode: Mode) -> Stat {
    use std::os::unix::fs::MetadataExt;
    Stat {
        size: meta.size(),
        mtime: (meta.mtime(), meta.mtime_nsec() as u32),
        ctime: (meta.ctime(), meta.ctime_nsec() as u32),
        inode: meta.ino(),
        mode,
    }
}

#[cfg(not(unix))]
fn stat_of(meta: &fs::Metadata, mode: Mode) -> Stat {
    let since = |t: std::io::Result<std::time::SystemTime>| {
        t.ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos()))
    };
    Stat {
        size: meta.len(),
        mtime: since(meta.modified()),
        ctime: since(meta.created()),
        inode: 0,
        mode,
    }
}

/// What a rollback did to the folder.
#[derive(Debug, Default)]
pub struct Applied {
    /// Files deleted.
    pub deleted: Vec<BString>,
    /// Files written, with their stats and ids (for the stat cache).
    pub written: Vec<(BString, Stat, ObjectId)>,
    /// `false` if it was cancelled: only the files listed were done.
    pub complete: bool,
}

/// Where stat caches are kept unless told otherwise: `$SNAPGIT_STAT_CACHE_DIR` (empty:
/// none, every file is hashed), else `$XDG_CACHE_HOME/snapgit/stat`, else
/// `$HOME/.cache/snapgit/stat`.
pub fn default_stat_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SNAPGIT_STAT_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("snapgit").join("stat"))
}

/// Where a folder's stat cache lives: one file per folder, store and repo in the
/// user's cache folder (never in the store or the folder itself).
#[derive(Debug, Clone)]
pub struct CacheFile {
    path: Option<PathBuf>,
}

impl CacheFile {
    /// The cache of `folder` for `repo` of `store`, below `dir` (`None`: no cache, every
    /// file is hashed).
    pub fn new(dir: Option<&Path>, folder: &Folder, store: &str, repo: &str) -> Self {
        let path = dir.map(|dir| {
            let key = format!("{}\0{store}\0{repo}", folder.root.display());
            let id = object::blob_id(HashKind::Sha1, key.as_bytes())
                .map(|id| id.to_string())
                .unwrap_or_default();
            dir.join(format!("{id}.stat"))
        });
        CacheFile { path }
    }

    /// The cache as last written; empty if there is none or it is damaged (a damaged
    /// cache only costs a full hash).
    pub fn load(&self, hash_kind: HashKind) -> StatCache {
        let Some(path) = &self.path else {
            return StatCache::new(hash_kind);
        };
        let written = fs::metadata(path).ok().and_then(|m| m.modified().ok());
        let (Some(written), Ok(bytes)) = (written, fs::read(path)) else {
            return StatCache::new(hash_kind);
        };
        let seconds = written
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        StatCache::decode(hash_kind, bytes, seconds).unwrap_or_else(|_| StatCache::new(hash_kind))
    }

    /// Write `cache`, through a temporary file and a rename. A cache that cannot be
    /// written only costs speed: the error is returned for the caller to ignore or show.
    pub fn save(&self, cache: &StatCache) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let temp = path.with_extension(format!("stat.{}", std::process::id()));
        fs::write(&temp, cache.encode())?;
        fs::rename(&temp, path)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use snapgit_core::read;

    use super::*;

    fn write(path: &str, data: &[u8]) -> read::FileWithPath {
        read::FileWithPath {
            path: path.into(),
            file: read::File {
                id: object::blob_id(HashKind::Sha1, data).expect("hashable"),
                mode: Mode::Regular,
                data: data.to_vec(),
            },
        }
    }

    #[test]
    fn a_cancelled_rollback_leaves_every_file_as_it_was_or_as_planned_and_says_which() {
        let dir = tempfile::tempdir().expect("a temp folder");
        fs::write(dir.path().join("gone.md"), "old").expect("write");
        let folder = Folder::new(dir.path()).expect("a folder");
        let plan = CheckoutPlan {
            commit: ObjectId::null(HashKind::Sha1),
            deletes: vec!["gone.md".into()],
            writes: vec![write("a/one.md", b"1"), write("two.md", b"2")],
            unchanged: 0,
            submodules: Vec::new(),
        };
        let cancel = AtomicBool::new(false);
        // Cancelled after the second file.
        let mut done = 0;
        let applied = folder
            .apply(&plan, &cancel, |_| {
                done += 1;
                if done == 2 {
                    cancel.store(true, Ordering::Relaxed);
                }
            })
            .expect("applied");
        assert!(!applied.complete);
        assert_eq!(applied.deleted, [BString::from("gone.md")]);
        assert_eq!(applied.written.len(), 1);
        assert_eq!(fs::read(dir.path().join("a/one.md")).expect("written"), b"1");
        assert!(!dir.path().join("two.md").exists());
        assert!(!dir.path().join("gone.md").exists());
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("a")).expect("a folder").collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_symlink_in_the_way_of_a_write_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("a temp folder");
        let outside = tempfile::tempdir().expect("another folder");
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), dir.path().join("a")).expect("a link");
        let folder = Folder::new(dir.path()).expect("a folder");
        let plan = CheckoutPlan {
            commit: ObjectId::null(HashKind::Sha1),
            deletes: Vec::new(),
            writes: vec![write("b.md", b"b"), write("a/escape.md", b"x")],
            unchanged: 0,
            submodules: Vec::new(),
        };
        let err = folder.apply(&plan, &AtomicBool::new(false), |_| {}).unwrap_err();
        assert!(matches!(err, Error::Unsafe { .. }), "{err:?}");
        assert!(!dir.path().join("b.md").exists());
        assert_eq!(fs::read_dir(outside.path()).expect("listed").count(), 0);
    }

    #[test]
    fn a_scan_lists_every_file_in_path_order_whatever_order_the_folders_list_them_in() {
        let dir = tempfile::tempdir().expect("a temp folder");
        // A folder sorts as `name/`: `a.txt` ('.' < '/') before `a/…`, `a0` ('0' > '/')
        // after it; deep and empty folders, and many folders for the scan's threads.
        let mut paths = vec![
            "a.txt",
            "a/b-",
            "a/b.c/d",
            "a/b/c",
            "a/b0",
            "a0",
            "a-b",
            "b",
            "c/d/e/f/g",
            "A",
            "_",
        ];
        let many: Vec<String> = (0..50).map(|i| format!("m/{}/{}", i % 7, i)).collect();
        paths.extend(many.iter().map(String::as_str));
        for path in &paths {
            let full = dir.path().join(path);
            fs::create_dir_all(full.parent().expect("a parent")).expect("folders");
            fs::write(&full, path).expect("a file");
        }
        fs::create_dir_all(dir.path().join("empty/deeper")).expect("an empty folder");
        let folder = Folder::new(dir.path()).expect("a folder");
        let scan = folder
            .scan(b"".as_bstr(), &StatCache::new(HashKind::Sha1), HashKind::Sha1)
            .expect("scanned");
        let found: Vec<&BString> = scan.files.iter().map(|f| &f.file.path).collect();
        let mut expected: Vec<BString> = paths.iter().map(|p| BString::from(*p)).collect();
        expected.sort();
        assert_eq!(found, expected.iter().collect::<Vec<_>>());
        assert_eq!(scan.hashed, paths.len());
        // One folder below: its paths only, still in order.
        let scan = folder
            .scan(b"a".as_bstr(), &StatCache::new(HashKind::Sha1), HashKind::Sha1)
            .expect("scanned");
        let found: Vec<&BString> = scan.files.iter().map(|f| &f.file.path).collect();
        assert_eq!(found, ["a/b-", "a/b.c/d", "a/b/c", "a/b0"]);
    }
}
