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
    /// An object read or received is missing, corrupt, or not what it must be.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// The pack received cannot be used.
    #[error(transparent)]
    Pack(#[from] pack::Error),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}
