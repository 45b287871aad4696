//! Why a remote operation (serving a fetch or a push) failed.

use gix_hash::ObjectId;

use crate::{
    object, pack,
    step::{Misuse, StorageError},
    store::NameError,
};

/// Why serving a fetch or a push failed. The message is what the client is shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The repo name is not one snapgit accepts.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The client asked for an object this repo does not show it.
    #[error("not our ref {id}: no ref of this repo reaches it")]
    NotOurRef {
        /// The object asked for.
        id: ObjectId,
    },
    /// The request asks for something this server does not do, or is not allowed.
    #[error("{0}")]
    Refused(String),
    /// The remote failed or answered what git would not: an HTTP error, a malformed
    /// message, a pack it could not unpack.
    #[error("{0}")]
    Remote(String),
    /// The remote (or, for a fetch, the store) refused a ref update.
    #[error("{name} was rejected: {reason}")]
    Rejected {
        /// The ref.
        name: String,
        /// Why.
        reason: String,
    },
    /// A message to or from the remote does not read as git's protocol.
    #[error(transparent)]
    Protocol(#[from] super::Error),
    /// An object read or received is missing, corrupt, or not what it must be.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// The pack received cannot be used.
    #[error(transparent)]
    Pack(#[from] pack::Error),
    /// A branch or ref that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Storage, or the network to a remote, failed.
    #[error("storage or network failed: {0}")]
    Storage(#[from] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl crate::error::Classify for OpError {
    fn code(&self) -> crate::error::Code {
        use crate::error::Code;
        match self {
            OpError::Name(_) | OpError::Refused(_) | OpError::NotOurRef { .. } => Code::InvalidInput,
            OpError::Protocol(err) => err.code(),
            OpError::Remote(_) => Code::Storage,
            OpError::Rejected { .. } => Code::Conflict,
            OpError::NotFound(_) => Code::NotFound,
            OpError::Object(err) => err.code(),
            OpError::Pack(_) => Code::Corrupt,
            OpError::Storage(_) => Code::Storage,
            OpError::Misuse(err) => err.code(),
        }
    }

    fn fields(&self) -> Vec<(&'static str, crate::error::Value<'_>)> {
        use crate::error::Value;
        match self {
            OpError::NotOurRef { id } => vec![("value", Value::Id(id))],
            OpError::Rejected { name, .. } => vec![("value", Value::Text(name))],
            OpError::Object(err) => err.fields(),
            _ => Vec::new(),
        }
    }

    fn storage(&self) -> Option<&StorageError> {
        match self {
            OpError::Storage(err) => Some(err),
            _ => None,
        }
    }
}
