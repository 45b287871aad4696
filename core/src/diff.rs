//! Per-file changes and their line counts, with `git diff --numstat` semantics.
//!
//! [`tree`] compares the trees of two commits; [`patch`] writes unified patch text.

pub mod patch;
pub mod tree;

use bstr::BString;
use gix_hash::ObjectId;

use crate::tree::Mode;

/// How a file changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[derive(serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    /// The file is new.
    Added,
    /// The content or mode of the file changed.
    Modified,
    /// The file is gone.
    Deleted,
    /// The file moved from `from`, with its content unchanged (the mode may change
    /// between regular and executable).
    Renamed {
        /// The path it had before.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        #[serde(with = "crate::api::wire::path")]
        from: BString,
    },
    /// The path changed its type: a regular file became a symlink or a submodule, or
    /// the other way round (git's `T` status).
    TypeChanged,
}

/// Lines added and removed, as `git diff --numstat` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LineStats {
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
}

/// One file that a commit or diff changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    /// The file's path (after the change, for a rename).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::path")]
    pub path: BString,
    /// What happened to it.
    pub kind: ChangeKind,
    /// Blob id and mode before, `None` if the file was added.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::api::schema::Side>))]
    #[serde(with = "crate::api::wire::side")]
    pub old: Option<(ObjectId, Mode)>,
    /// Blob id and mode after, `None` if the file was deleted.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::api::schema::Side>))]
    #[serde(with = "crate::api::wire::side")]
    pub new: Option<(ObjectId, Mode)>,
    /// `true` if either side is binary (git's rule: a NUL byte in the first 8000 bytes).
    pub binary: bool,
    /// Lines added and removed; `None` for binary files or when line counts were not asked for.
    pub lines: Option<LineStats>,
}

/// How much of a file git looks at to decide it is binary.
const BINARY_PROBE: usize = 8000;

/// `true` if git would treat `data` as binary.
pub fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(BINARY_PROBE)].contains(&0)
}

/// The number of lines in `data`: a last line without a newline still counts.
pub fn count_lines(data: &[u8]) -> u64 {
    let newlines = data.iter().filter(|b| **b == b'\n').count() as u64;
    newlines + u64::from(!data.is_empty() && !data.ends_with(b"\n"))
}

/// Lines added and removed between `old` and `new` (`None` for an absent side), or
/// `None` if either side is binary.
pub fn line_stats(old: Option<&[u8]>, new: Option<&[u8]>) -> Option<LineStats> {
    if old.is_some_and(is_binary) || new.is_some_and(is_binary) {
        return None;
    }
    Some(match (old, new) {
        (None, None) => LineStats::default(),
        (Some(old), None) => LineStats {
            added: 0,
            removed: count_lines(old),
        },
        (None, Some(new)) => LineStats {
            added: count_lines(new),
            removed: 0,
        },
        (Some(old), Some(new)) if old == new => LineStats::default(),
        (Some(old), Some(new)) => {
            let input = imara_diff::InternedInput::new(old, new);
            let diff = imara_diff::Diff::compute(imara_diff::Algorithm::Myers, &input);
            LineStats {
                added: u64::from(diff.count_additions()),
                removed: u64::from(diff.count_removals()),
            }
        }
    })
}

/// The text git diffs for a submodule entry.
pub(crate) fn submodule_text(id: &ObjectId) -> Vec<u8> {
    format!("Subproject commit {id}\n").into_bytes()
}
