//! Local files as changes: the paths named on the command line, read from disk, with
//! their paths in the repo relative to a root folder.

use std::{
    collections::BTreeMap,
    fs,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use bstr::{BString, ByteSlice};
use snapgit_core::{
    Mode,
    commit::Change,
    policy::Policy,
    worktree::{self, Found, Skip},
};

use super::{
    Error,
    worktree::{ignores_above, lists_file, read_ignores},
};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Paths in the repo are relative to this folder (the current directory by default).
    pub root: PathBuf,
    /// Files and folders to commit; a folder brings every file below it.
    pub paths: Vec<PathBuf>,
    /// Folders never read (the store's own folder, when it lies below the root).
    pub skip: Vec<PathBuf>,
    /// Files and folders left out: gitignore-style patterns, matched on repo paths.
    pub policy: Policy,
    /// Read every `.gitignore` of the folders too, as git does (each folder's
    /// `.snapgitignore` is always read): core's [`worktree::ignore_files`].
    pub gitignore: bool,
}

/// Files read from disk.
#[derive(Debug, Default)]
pub struct Collected {
    /// One put per file, sorted by path.
    pub changes: Vec<Change>,
    /// The repo path of each folder named (empty for the root), for `--sync`.
    pub folders: Vec<BString>,
    /// Files passed over, with why: excluded by a pattern, or not a file.
    pub skipped: Vec<(BString, Skip)>,
}

impl Inputs {
    /// Read every file named, or below a folder named. A path outside the root, or one
    /// that cannot be read, fails the whole collection: nothing is committed.
    pub fn collect(&self) -> Result<Collected, Error> {
        let root = absolute(&self.root)?;
        let skip: Vec<PathBuf> = self.skip.iter().filter_map(|p| fs::canonicalize(p).ok()).collect();
        let mut files = BTreeMap::new();
        let mut out = Collected::default();
        for path in &self.paths {
            let full = absolute(&root.join(path))?;
            let repo_path = repo_path(&root, &full, path)?;
            let meta = fs::symlink_metadata(&full).map_err(|source| Error::Unreadable {
                path: path.clone(),
                source,
            })?;
            // The ignore files of the folders above count, as in a walk from the root.
            let policy = ignores_above(
                &root,
                repo_path.as_bstr(),
                self.gitignore,
                Arc::new(self.policy.clone()),
            )?;
            if meta.is_dir() {
                out.folders.push(repo_path.clone());
                self.walk(&root, &full, repo_path, policy, &skip, &mut files, &mut out.skipped)?;
            } else if repo_path.is_empty() {
                return Err(Error::invalid(format!("{} is not a file", path.display())));
            } else {
                self.file(&policy, &full, repo_path, &meta, true, &mut files, &mut out.skipped)?;
            }
        }
        out.changes = files.into_values().collect();
        Ok(out)
    }

    /// The repo path of the folder `dir` below `root` (both resolved on disk, links
    /// followed): `/`-separated, empty for the root itself; `given` names it in errors.
    pub fn repo_path_of(root: &Path, dir: &Path, given: &Path) -> Result<BString, Error> {
        let full = fs::canonicalize(dir).map_err(|source| Error::Unreadable {
            path: given.to_owned(),
            source,
        })?;
        repo_path(root, &full, given)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        root: &Path,
        dir: &Path,
        repo_dir: BString,
        policy: Arc<Policy>,
        skip: &[PathBuf],
        files: &mut BTreeMap<BString, Change>,
        skipped: &mut Vec<(BString, Skip)>,
    ) -> Result<(), Error> {
        if fs::canonicalize(dir).is_ok_and(|real| skip.contains(&real)) {
            return Ok(());
        }
        let unreadable = |source| Error::Unreadable {
            path: dir.to_owned(),
            source,
        };
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            entries.push((entry.file_name(), entry));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // This folder's ignore files first: their patterns decide its entries and all below.
        let policy = read_ignores(root, repo_dir.as_bstr(), self.gitignore, policy, |name| {
            lists_file(entries.iter().map(|(n, e)| (n.as_os_str(), e.file_type().ok())), name)
        })?;
        for (name, entry) in entries {
            let Some(name) = name.to_str() else {
                skipped.push((BString::from(entry.path().to_string_lossy().as_bytes()), Skip::NotUtf8));
                continue;
            };
            // A nested git repository's own folder is never part of a snapshot.
            if name.eq_ignore_ascii_case(".git") {
                continue;
            }
            let repo_path = if repo_dir.is_empty() {
                BString::from(name)
            } else {
                BString::from(format!("{repo_dir}/{name}"))
            };
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(|source| Error::Unreadable {
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
                if let Some(pattern) = policy.excluded(format!("{repo_path}/").as_bytes().as_bstr()) {
                    let skip = Skip::Excluded { by: pattern.to_owned() };
                    skipped.push((repo_path, skip));
                    continue;
                }
                self.walk(root, &path, repo_path, policy.clone(), skip, files, skipped)?;
            } else {
                self.file(&policy, &path, repo_path, &meta, false, files, skipped)?;
            }
        }
        Ok(())
    }

    /// A file: read, or skipped by core's rule ([`worktree::skip`]). One `named` on the
    /// command line is read whatever its size: the commit refuses it if it is too large.
    #[allow(clippy::too_many_arguments)]
    fn file(
        &self,
        policy: &Policy,
        path: &Path,
        repo_path: BString,
        meta: &fs::Metadata,
        named: bool,
        files: &mut BTreeMap<BString, Change>,
        skipped: &mut Vec<(BString, Skip)>,
    ) -> Result<(), Error> {
        // The whole path: a file named on the command line has folders no walk checked.
        if let Some(pattern) = policy.excluded(repo_path.as_bstr()) {
            let skip = Skip::Excluded { by: pattern.to_owned() };
            skipped.push((repo_path, skip));
            return Ok(());
        }
        let found = if meta.file_type().is_symlink() {
            Found::Symlink
        } else if meta.is_file() {
            Found::File { size: meta.len() }
        } else {
            Found::Other
        };
        match worktree::skip(policy, repo_path.as_bstr(), found) {
            Some(Skip::TooLarge { .. }) if named => {}
            Some(skip) => {
                skipped.push((repo_path, skip));
                return Ok(());
            }
            None => {}
        }
        let unreadable = |source| Error::Unreadable {
            path: path.to_owned(),
            source,
        };
        let (data, mode) = if found == Found::Symlink {
            let target = fs::read_link(path).map_err(unreadable)?;
            (target.into_os_string().into_encoded_bytes(), Mode::Symlink)
        } else {
            (fs::read(path).map_err(unreadable)?, file_mode(meta))
        };
        files.insert(
            repo_path.clone(),
            Change::Put {
                path: repo_path,
                data,
                mode,
            },
        );
        Ok(())
    }
}

/// A regular file's mode: executable when any execute bit is set, as git records it.
#[cfg(unix)]
pub(super) fn file_mode(meta: &fs::Metadata) -> Mode {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        Mode::Executable
    } else {
        Mode::Regular
    }
}

#[cfg(not(unix))]
pub(super) fn file_mode(_meta: &fs::Metadata) -> Mode {
    Mode::Regular
}

/// `path` made absolute against the current directory, with `.` and `..` resolved by
/// name (as a shell does for `cd`), so `notes/../x` is `x`.
fn absolute(path: &Path) -> Result<PathBuf, Error> {
    let full = std::path::absolute(path).map_err(|source| Error::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let mut out = PathBuf::new();
    for component in full.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The repo path of `full` below `root`: `/`-separated, empty for the root itself.
fn repo_path(root: &Path, full: &Path, given: &Path) -> Result<BString, Error> {
    let relative = full.strip_prefix(root).map_err(|_| {
        Error::invalid(format!(
            "{} is outside the root folder {} (paths in the repo are relative to it; set it with --root)",
            given.display(),
            root.display()
        ))
    })?;
    let mut parts = Vec::new();
    for component in relative.components() {
        let part = component
            .as_os_str()
            .to_str()
            .ok_or_else(|| Error::invalid(format!("{} is not valid UTF-8", given.display())))?;
        parts.push(part);
    }
    Ok(BString::from(parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_paths(collected: &Collected) -> Vec<String> {
        collected
            .changes
            .iter()
            .map(|c| match c {
                Change::Put { path, .. } => path.to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn folders_bring_their_files_relative_to_the_root() {
        let dir = tempfile::tempdir().expect("a temp folder");
        let root = dir.path();
        fs::create_dir_all(root.join("notes/deep")).expect("folders");
        fs::create_dir_all(root.join(".git")).expect("folders");
        fs::create_dir_all(root.join("store")).expect("folders");
        fs::write(root.join("notes/a.md"), "a").expect("write");
        fs::write(root.join("notes/deep/b.log"), "b").expect("write");
        fs::write(root.join(".git/config"), "x").expect("write");
        fs::write(root.join("store/HEAD"), "x").expect("write");
        fs::write(root.join("top.md"), "t").expect("write");
        let inputs = Inputs {
            root: root.to_owned(),
            paths: vec![".".into(), "notes/../top.md".into()],
            skip: vec![root.join("store")],
            policy: Policy::new().exclude(["*.log"]).expect("a pattern"),
            gitignore: false,
        };
        let collected = inputs.collect().expect("readable");
        assert_eq!(put_paths(&collected), ["notes/a.md", "top.md"]);
        assert_eq!(collected.folders, [BString::from("")]);
        assert_eq!(collected.skipped[0].0, "notes/deep/b.log");
    }

    #[test]
    fn paths_outside_the_root_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().expect("a temp folder");
        let inputs = Inputs {
            root: dir.path().join("root"),
            paths: vec!["../elsewhere.md".into()],
            ..Inputs::default()
        };
        assert!(matches!(inputs.collect(), Err(Error::Invalid(m)) if m.contains("outside")));
        let inputs = Inputs {
            root: dir.path().to_owned(),
            paths: vec!["missing.md".into()],
            ..Inputs::default()
        };
        assert!(matches!(inputs.collect(), Err(Error::Unreadable { .. })));
    }
}
