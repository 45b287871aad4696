//! Locks in Redis, shared by every process that uses the same server and prefix.
//!
//! `acquire` is `SET <prefix><name> <token> NX PX <ttl>`; `release` and `renew` are Lua
//! scripts that compare the token and delete or `PEXPIRE` in one atomic step, so only
//! the holder can release or extend its lock. Connections go through a
//! `ConnectionManager`, which reconnects after a dropped connection.

use std::time::Duration;

use redis::{Script, aio::ConnectionManager};

use super::{Error, Locks, ttl_ms};
use crate::util::token;

const RELEASE: &str =
    r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;
const RENEW: &str =
    r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end"#;

/// The default prefix of every lock key.
pub const DEFAULT_PREFIX: &str = "snapgit:";

/// Locks in one Redis database.
#[derive(Clone)]
pub struct RedisLocks {
    connection: ConnectionManager,
    prefix: String,
    release: Script,
    renew: Script,
}

impl std::fmt::Debug for RedisLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocks")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLocks {
    /// Connect to `url` (`redis://host:port/db`, `redis+unix:///path`). Lock keys are
    /// `snapgit:<name>`; give each store its own prefix with [`RedisLocks::with_prefix`]
    /// when stores share a Redis, since core names locks by repo and branch only.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|err| Error::Config {
            reason: format!("invalid Redis URL {url:?}"),
            source: Some(Box::new(err)),
        })?;
        let connection = ConnectionManager::new(client).await.map_err(|source| Error::Redis {
            op: "connect for",
            name: url.to_owned(),
            source,
        })?;
        Ok(RedisLocks {
            connection,
            prefix: DEFAULT_PREFIX.to_owned(),
            release: Script::new(RELEASE),
            renew: Script::new(RENEW),
        })
    }

    /// Use `prefix` before every lock name.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

fn failed(op: &'static str, name: &str) -> impl FnOnce(redis::RedisError) -> Error {
    let name = name.to_owned();
    move |source| Error::Redis { op, name, source }
}

#[async_trait::async_trait]
impl Locks for RedisLocks {
    async fn acquire(&self, name: &str, ttl: Duration) -> Result<Option<String>, Error> {
        let ttl = ttl_ms(ttl)?;
        let token = token();
        let mut connection = self.connection.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(name))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl)
            .query_async(&mut connection)
            .await
            .map_err(failed("acquire", name))?;
        Ok(set.map(|_| token))
    }

    async fn release(&self, name: &str, token: &str) -> Result<bool, Error> {
        let mut connection = self.connection.clone();
        let deleted: i64 = self
            .release
            .key(self.key(name))
            .arg(token)
            .invoke_async(&mut connection)
            .await
            .map_err(failed("release", name))?;
        Ok(deleted == 1)
    }

    async fn renew(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, Error> {
        let ttl = ttl_ms(ttl)?;
        let mut connection = self.connection.clone();
        let renewed: i64 = self
            .renew
            .key(self.key(name))
            .arg(token)
            .arg(ttl)
            .invoke_async(&mut connection)
            .await
            .map_err(failed("renew", name))?;
        Ok(renewed == 1)
    }
}
