//! Advisory locks: optional, and only there to reduce contention.
//!
//! Writers that take a branch's lock before committing rarely lose a compare-and-swap,
//! so they rarely rebuild. Correctness never depends on a lock: the compare-and-swap of
//! the ref stays the fence, so a lease that expires while its holder still works (a
//! paused process, a slow network) can cost a retry, never an update.
//!
//! A lock is held by a token: [`Locks::acquire`] returns a fresh unguessable one, and
//! [`Locks::release`] and [`Locks::renew`] act only if that token still holds the lock,
//! so a holder whose lease expired cannot release or extend the next holder's lock.

pub mod memory;
pub mod redis;

use std::{fmt, time::Duration};

/// A lock service.
#[async_trait::async_trait]
pub trait Locks: Send + Sync + fmt::Debug {
    /// Take the lock `name` for `ttl` unless someone holds it: its token, or `None` if
    /// it is held.
    async fn acquire(&self, name: &str, ttl: Duration) -> Result<Option<String>, Error>;

    /// Release the lock if `token` still holds it; `true` if it did.
    async fn release(&self, name: &str, token: &str) -> Result<bool, Error>;

    /// Extend the lock to `ttl` from now if `token` still holds it; `true` if it did.
    async fn renew(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, Error>;
}

/// Why a lock call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A lease must last at least a millisecond.
    #[error("invalid lock ttl {ttl:?}: it must be at least 1 ms")]
    InvalidTtl {
        /// The ttl asked for.
        ttl: Duration,
    },
    /// The lock service's address or options cannot work.
    #[error("invalid lock configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The Redis server failed or could not be reached.
    #[error("redis lock {op} {name:?}: {source}")]
    Redis {
        /// What was being done.
        op: &'static str,
        /// The lock.
        name: String,
        /// Redis's error.
        #[source]
        source: ::redis::RedisError,
    },
}

impl Error {
    /// Its stable code (core's classification): bad options are invalid input, the rest
    /// a storage failure.
    pub fn code(&self) -> snapgit_core::error::Code {
        use snapgit_core::error::Code;
        match self {
            Error::InvalidTtl { .. } | Error::Config { .. } => Code::InvalidInput,
            Error::Redis { .. } => Code::Storage,
        }
    }
}

/// The ttl in whole milliseconds, at least 1.
pub(crate) fn ttl_ms(ttl: Duration) -> Result<u64, Error> {
    match u64::try_from(ttl.as_millis()) {
        Ok(0) => Err(Error::InvalidTtl { ttl }),
        Ok(ms) => Ok(ms),
        Err(_) => Ok(u64::MAX),
    }
}
