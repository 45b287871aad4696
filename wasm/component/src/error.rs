//! Every failure the component returns, made here and nowhere else: core's errors as the
//! WIT `failure` (a stable code and a message). Core decides the code
//! ([`Classify`]); this maps it to WIT's and hands the host's own failures back unchanged.

use snapgit_core::error::{Classify, Code as CoreCode};

use crate::bindings::snapgit::core::types::{Code, Failure};

/// A failure the host's storage or lock import returned, carried through core as its
/// storage error and handed back with its code unchanged.
#[derive(Debug)]
pub struct HostFailure(pub Failure);

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for HostFailure {}

/// Turn an error into the WIT failure.
pub trait Fail<T> {
    /// The value, or the failure.
    fn fail(self) -> Result<T, Failure>;
}

impl<T, E: Classify> Fail<T> for Result<T, E> {
    fn fail(self) -> Result<T, Failure> {
        self.map_err(
            |err| match err.storage().and_then(|e| e.downcast_ref::<HostFailure>()) {
                Some(HostFailure(failure)) => Failure {
                    code: failure.code,
                    message: format!("storage failed: {}", failure.message),
                },
                None => Failure {
                    code: code(err.code()),
                    message: err.to_string(),
                },
            },
        )
    }
}

/// Core's code as WIT's.
fn code(code: CoreCode) -> Code {
    match code {
        CoreCode::InvalidInput => Code::InvalidInput,
        CoreCode::NotFound => Code::NotFound,
        CoreCode::AlreadyExists => Code::AlreadyExists,
        CoreCode::Corrupt => Code::Corrupt,
        CoreCode::Conflict => Code::Conflict,
        CoreCode::LostRace => Code::LostRace,
        CoreCode::HeadMoved => Code::HeadMoved,
        CoreCode::EmptyCommit => Code::EmptyCommit,
        CoreCode::Policy => Code::Policy,
        CoreCode::Limit => Code::Limit,
        CoreCode::Storage => Code::Storage,
        CoreCode::Unsupported => Code::Unsupported,
        CoreCode::Misuse => Code::Misuse,
    }
}
