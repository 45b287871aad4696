//! Locks inside one process: a map from name to token and deadline.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{Error, Locks, ttl_ms};
use crate::util::token;

/// Locks shared by the tasks of this process (not by other processes).
#[derive(Debug, Default)]
pub struct MemoryLocks {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryLocks {
    /// No lock held.
    pub fn new() -> Self {
        Self::default()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        // Every critical section is a few map operations that cannot panic halfway.
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn deadline(ttl: Duration) -> Result<Instant, Error> {
    ttl_ms(ttl)?;
    let now = Instant::now();
    // A ttl too long to represent never expires in practice.
    Ok(now
        .checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400)))
}

#[async_trait::async_trait]
impl Locks for MemoryLocks {
    async fn acquire(&self, name: &str, ttl: Duration) -> Result<Option<String>, Error> {
        let until = deadline(ttl)?;
        let mut held = self.held();
        if held.get(name).is_some_and(|(_, until)| *until > Instant::now()) {
            return Ok(None);
        }
        let token = token();
        held.insert(name.to_owned(), (token.clone(), until));
        Ok(Some(token))
    }

    async fn release(&self, name: &str, token: &str) -> Result<bool, Error> {
        let mut held = self.held();
        let ours = held
            .get(name)
            .is_some_and(|(held, until)| held == token && *until > Instant::now());
        if ours {
            held.remove(name);
        }
        Ok(ours)
    }

    async fn renew(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, Error> {
        let until = deadline(ttl)?;
        let mut held = self.held();
        match held.get_mut(name) {
            Some((held, deadline)) if held == token && *deadline > Instant::now() => {
                *deadline = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
