//! Size limits that arrive as arguments, so that no input can make core allocate without bound.

/// The longest path core accepts, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Bounds applied to everything core reads and builds.
///
/// The defaults suit agent memory (text files, transcripts); raise them for larger files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default)]
pub struct Limits {
    /// The largest inflated size of any object read from storage, in bytes. Objects
    /// claiming or inflating to more are rejected before they are fully inflated.
    pub max_object_bytes: u64,
    /// The largest file a commit may write, in bytes.
    pub max_file_bytes: u64,
    /// The most changes one commit may carry.
    pub max_changes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 100 << 20,
            max_file_bytes: crate::worktree::DEFAULT_MAX_FILE_BYTES,
            max_changes: 100_000,
        }
    }
}
