//! The error of a pack or pack index that cannot be used.

/// A pack or pack index that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}{}: {reason}", offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
pub struct Error {
    /// The pack or index.
    pub key: String,
    /// Where in it, if known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl Error {
    pub(crate) fn corrupt(key: &str, offset: Option<u64>, reason: String) -> Self {
        Error {
            key: key.to_owned(),
            offset,
            reason,
        }
    }
}
