//! Tree entries as snapgit names them, and lookups in decoded trees.

use bstr::BStr;
use gix_object::tree::{Entry, EntryKind};

/// The mode of a tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// A regular file, `100644`.
    Regular,
    /// An executable file, `100755`.
    Executable,
    /// A symbolic link whose target is the blob's content, `120000`.
    Symlink,
    /// A folder, `40000`.
    Tree,
    /// A submodule: a commit of another repository, `160000`.
    Submodule,
}

impl Mode {
    /// `true` for the modes a file written by a commit may have.
    pub fn is_file(self) -> bool {
        matches!(self, Mode::Regular | Mode::Executable | Mode::Symlink)
    }

    /// The mode as git writes it in trees: `100644`, `100755`, `120000`, `40000`, `160000`.
    pub fn as_octal(self) -> &'static str {
        match self {
            Mode::Regular => "100644",
            Mode::Executable => "100755",
            Mode::Symlink => "120000",
            Mode::Tree => "40000",
            Mode::Submodule => "160000",
        }
    }

    /// The mode as a number, `0o100644` for a regular file.
    pub fn as_u32(self) -> u32 {
        match self {
            Mode::Regular => 0o100644,
            Mode::Executable => 0o100755,
            Mode::Symlink => 0o120000,
            Mode::Tree => 0o040000,
            Mode::Submodule => 0o160000,
        }
    }

    /// The mode of a number as git writes it; `None` for modes git does not write.
    pub fn from_u32(mode: u32) -> Option<Mode> {
        Some(match mode {
            0o100644 => Mode::Regular,
            0o100755 => Mode::Executable,
            0o120000 => Mode::Symlink,
            0o040000 => Mode::Tree,
            0o160000 => Mode::Submodule,
            _ => return None,
        })
    }

    pub(crate) fn of(entry: &Entry) -> Mode {
        match entry.mode.kind() {
            EntryKind::Tree => Mode::Tree,
            EntryKind::Blob => Mode::Regular,
            EntryKind::BlobExecutable => Mode::Executable,
            EntryKind::Link => Mode::Symlink,
            EntryKind::Commit => Mode::Submodule,
        }
    }

    pub(crate) fn entry_mode(self) -> gix_object::tree::EntryMode {
        match self {
            Mode::Regular => EntryKind::Blob,
            Mode::Executable => EntryKind::BlobExecutable,
            Mode::Symlink => EntryKind::Link,
            Mode::Tree => EntryKind::Tree,
            Mode::Submodule => EntryKind::Commit,
        }
        .into()
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_octal())
    }
}

/// The entry called `name` in a canonical tree (names are unique there).
pub(crate) fn find<'a>(tree: &'a gix_object::Tree, name: &BStr) -> Option<&'a Entry> {
    // Entries sort as if folders ended in '/', so the name is looked for as both.
    let search = |is_tree| {
        tree.entries
            .binary_search_by(|e| gix_object::tree::name_order(&e.filename, e.mode.is_tree(), name, is_tree))
            .ok()
    };
    search(false).or_else(|| search(true)).and_then(|i| tree.entries.get(i))
}
