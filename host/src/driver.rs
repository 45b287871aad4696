//! The async driver: carries out core's steps against a [`Storage`] and, optionally, a
//! [`Locks`] service. It makes no decisions of its own beyond IO: which objects, which
//! ref, what to compare, when to retry and how long to wait before it all come from core
//! (a [`Step::Wait`] is slept through). What it adds is doing each batch in parallel,
//! with a bound.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use snapgit_core::{ObjectCache, Operation, Step, StorageError, object::loose_key, step::Answer};

use crate::{
    lock::Locks,
    storage::{self, Object, Storage},
};

/// How the driver does IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The most storage calls in flight for one `Get` or `Put` batch.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { concurrency: 32 }
    }
}

/// An operation asked for a lock, and no lock service was given.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the operation asked for the lock {name:?}, but no lock service was given")]
pub struct NoLocks {
    /// The lock asked for.
    pub name: String,
}

/// Run `op` to completion with default [`Options`], keeping what it reads in `cache`.
///
/// `locks` serves the operation's `Lock` and `Unlock` steps (asked for only when the
/// request sets a lock ttl); without it such a step fails with [`NoLocks`]. Storage and
/// lock errors reach the caller inside the operation's error, boxed whole (downcast to
/// [`storage::Error`] or [`crate::lock::Error`]).
pub async fn run<O: Operation>(
    op: &mut O,
    cache: &mut ObjectCache,
    storage: &dyn Storage,
    locks: Option<&dyn Locks>,
) -> Result<O::Output, O::Error>
where
    O::Error: From<snapgit_core::object::Error>,
{
    run_with(op, cache, storage, locks, &Options::default()).await
}

/// Run `op` to completion with these options. Dropping the future cancels the run
/// between two steps (a storage call under way is dropped with it).
pub async fn run_with<O: Operation>(
    op: &mut O,
    cache: &mut ObjectCache,
    storage: &dyn Storage,
    locks: Option<&dyn Locks>,
    options: &Options,
) -> Result<O::Output, O::Error>
where
    O::Error: From<snapgit_core::object::Error>,
{
    // Objects that are not loose are read from the store's packs.
    let mut op = snapgit_core::pack::Packed::new(op);
    loop {
        let answer = match op.poll(cache)? {
            Step::Done(output) => return Ok(output),
            Step::Get(ids) => {
                let keys = ids.iter().map(loose_key).collect();
                let objects = get_all(storage, keys, options.concurrency)
                    .await
                    .map_err(|err| <O::Error as From<StorageError>>::from(err.boxed()))?;
                op.provide(cache, objects)?;
                continue;
            }
            step => carry_out(step, storage, locks, options)
                .await
                .map_err(<O::Error as From<StorageError>>::from)?,
        };
        op.answer(cache, answer)?;
    }
}

/// Carry out one step other than `Get` and `Done`: the answer to give.
async fn carry_out<T>(
    step: Step<T>,
    storage: &dyn Storage,
    locks: Option<&dyn Locks>,
    options: &Options,
) -> Result<Answer, StorageError> {
    Ok(match step {
        Step::Put(objects) => {
            let objects = objects.into_iter().map(Object::from).collect();
            put_all(storage, objects, options.concurrency).await?;
            Answer::Put
        }
        Step::Write(files) => {
            let files = files
                .into_iter()
                .map(|f| Object {
                    key: f.key,
                    bytes: f.bytes.into(),
                })
                .collect();
            put_all(storage, files, options.concurrency).await?;
            Answer::Put
        }
        Step::Read(keys) => Answer::Read(get_all(storage, keys, options.concurrency).await?),
        Step::ReadRanges(ranges) => {
            let ranges: Vec<_> = ranges.into_iter().map(|r| (r.key, r.start, r.len)).collect();
            Answer::Ranges(storage.get_ranges(&ranges).await?)
        }
        Step::ReadRef(key) => Answer::Ref(storage.read_ref(&key).await?),
        Step::CasRef(cas) => Answer::Cas(storage.cas_ref(&cas).await?),
        Step::Swap(swap) => Answer::Swapped(storage.swap(&swap).await?),
        Step::List(prefix) => Answer::List(storage.list(&prefix).await?),
        Step::Delete(keys) => {
            delete_all(storage, keys, options.concurrency).await?;
            Answer::Deleted
        }
        Step::Lock(request) => {
            let locks = locks.ok_or_else(|| NoLocks {
                name: request.name.clone(),
            })?;
            let ttl = Duration::from_millis(request.ttl_ms);
            Answer::Lock(locks.acquire(&request.name, ttl).await?)
        }
        Step::Unlock { name, token } => {
            let locks = locks.ok_or_else(|| NoLocks { name: name.clone() })?;
            locks.release(&name, &token).await?;
            Answer::Unlocked
        }
        Step::Http(request) => Answer::Http(crate::http::send(request).await?),
        Step::Wait { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Answer::Waited
        }
        // `Step` may grow: an unknown step means this driver is older than core.
        _ => return Err("core asked for a step this driver does not know".into()),
    })
}

/// The size of each call when `n` keys are spread over at most `concurrency` calls.
fn chunk_size(n: usize, concurrency: usize) -> usize {
    n.div_ceil(concurrency.max(1)).max(1)
}

/// Read `keys` with at most `concurrency` [`Storage::get_many`] calls in flight (fewer
/// if the storage's [`Storage::read_parallelism`] says so): the stored bytes per key, in
/// order.
pub async fn get_all(
    storage: &dyn Storage,
    keys: Vec<String>,
    concurrency: usize,
) -> Result<Vec<Option<Vec<u8>>>, storage::Error> {
    let concurrency = concurrency.min(storage.read_parallelism());
    let size = chunk_size(keys.len(), concurrency);
    // Named async fns, not closures returning futures: their futures are provably `Send`
    // for every lifetime, so a caller can run the driver in `tokio::spawn`.
    let calls: Vec<_> = keys.chunks(size).map(|chunk| get_chunk(storage, chunk)).collect();
    let parts: Vec<Vec<Option<Vec<u8>>>> = stream::iter(calls).buffered(concurrency.max(1)).try_collect().await?;
    Ok(parts.into_iter().flatten().collect())
}

async fn get_chunk(storage: &dyn Storage, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, storage::Error> {
    let got = storage.get_many(keys).await?;
    if got.len() != keys.len() {
        return Err(storage::Error::Unsupported {
            location: storage.location(),
            what: "answering every key of a get (the backend returned another count)",
        });
    }
    Ok(got)
}

/// Write `objects` (put-if-absent) with at most `concurrency` [`Storage::put_many`]
/// calls in flight.
pub async fn put_all(storage: &dyn Storage, objects: Vec<Object>, concurrency: usize) -> Result<(), storage::Error> {
    let size = chunk_size(objects.len(), concurrency);
    let mut calls = Vec::new();
    let mut objects = objects.into_iter().peekable();
    while objects.peek().is_some() {
        calls.push(storage.put_many(objects.by_ref().take(size).collect()));
    }
    stream::iter(calls)
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Delete `keys` with at most `concurrency` [`Storage::delete`] calls in flight.
pub async fn delete_all(storage: &dyn Storage, keys: Vec<String>, concurrency: usize) -> Result<(), storage::Error> {
    let size = chunk_size(keys.len(), concurrency);
    let calls: Vec<_> = keys.chunks(size).map(|chunk| storage.delete(chunk)).collect();
    stream::iter(calls)
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_key() {
        assert_eq!(chunk_size(0, 32), 1);
        assert_eq!(chunk_size(5, 32), 1);
        assert_eq!(chunk_size(100, 32), 4);
        assert_eq!(chunk_size(100, 0), 100);
    }
}
