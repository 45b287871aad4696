//! Validated repository paths: relative, `/`-separated, and unable to escape the tree.

use bstr::{BStr, BString, ByteSlice};

use crate::limits::MAX_PATH_BYTES;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The path is empty.
    Empty,
    /// The path starts with `/`.
    Absolute,
    /// The path ends with `/`.
    TrailingSlash,
    /// Two `/` follow each other.
    EmptyComponent,
    /// A component is `.` or `..`.
    Relative,
    /// A component is `.git` in some spelling (any case, NTFS short names, HFS ignorables).
    DotGit,
    /// The path contains a NUL byte.
    Nul,
    /// The path is longer than [`MAX_PATH_BYTES`].
    TooLong,
    /// A component is refused by git's checks for another reason.
    Invalid,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Empty => "it is empty",
            Reason::Absolute => "it is absolute",
            Reason::TrailingSlash => "it ends with '/'",
            Reason::EmptyComponent => "it has an empty component",
            Reason::Relative => "it has a '.' or '..' component",
            Reason::DotGit => "it has a '.git' component",
            Reason::Nul => "it contains a NUL byte",
            Reason::TooLong => "it is longer than 4096 bytes",
            Reason::Invalid => "git refuses one of its components",
        })
    }
}

/// A path that cannot be used in a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct Error {
    /// The offending path, as given.
    pub path: BString,
    /// Why it was refused.
    pub reason: Reason,
}

/// Check that `path` can name a file or folder in a tree, returning its components.
///
/// `is_symlink` applies git's extra rule for symlinks (a symlink may not be named `.gitmodules`).
pub fn validate(path: &BStr, is_symlink: bool) -> Result<Vec<&BStr>, Error> {
    let fail = |reason| Error {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(fail(Reason::Empty));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(fail(Reason::TooLong));
    }
    if path.contains(&0) {
        return Err(fail(Reason::Nul));
    }
    if path.starts_with(b"/") {
        return Err(fail(Reason::Absolute));
    }
    if path.ends_with(b"/") {
        return Err(fail(Reason::TrailingSlash));
    }
    let components: Vec<&BStr> = path.split(|&b| b == b'/').map(|c| c.as_bstr()).collect();
    let last = components.len() - 1;
    for (index, component) in components.iter().enumerate() {
        let mode = (is_symlink && index == last).then_some(gix_validate::path::component::Mode::Symlink);
        validate_component(component, mode).map_err(fail)?;
    }
    Ok(components)
}

/// Check one tree entry name, as read from storage or built from a path.
pub(crate) fn validate_name(name: &BStr) -> Result<(), Reason> {
    if name.contains(&b'/') {
        return Err(Reason::Invalid);
    }
    if name.contains(&0) {
        return Err(Reason::Nul);
    }
    validate_component(name, None)
}

fn validate_component(component: &BStr, mode: Option<gix_validate::path::component::Mode>) -> Result<(), Reason> {
    use gix_validate::path::component::Error as E;
    let options = gix_validate::path::component::Options {
        // Windows device names and characters are legal in git trees; only the `.git`
        // spellings that NTFS and HFS+ would map onto `.git` are dangerous everywhere.
        protect_windows: false,
        protect_hfs: true,
        protect_ntfs: true,
    };
    match gix_validate::path::component(component, mode, options) {
        Ok(_) => Ok(()),
        Err(E::Empty) => Err(Reason::EmptyComponent),
        Err(E::Relative) => Err(Reason::Relative),
        Err(E::DotGitDir) => Err(Reason::DotGit),
        Err(_) => Err(Reason::Invalid),
    }
}

/// Join a folder path (empty for the root) and an entry name: `dir/name`.
pub fn join(dir: &BStr, name: &BStr) -> BString {
    if dir.is_empty() {
        name.to_owned()
    } else {
        let mut out = BString::from(Vec::with_capacity(dir.len() + 1 + name.len()));
        out.extend_from_slice(dir);
        out.push(b'/');
        out.extend_from_slice(name);
        out
    }
}
