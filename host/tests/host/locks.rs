//! The lock contract on every lock service: in-process, and a real Redis
//! (`SNAPGIT_SERVICES=1`); and locks taken by core's commits through the driver.

use std::{sync::Arc, time::Duration};

use snapgit_core::{
    ObjectCache,
    commit::Change,
    repo::{self, Commit, CommitRequest, RepoOp},
};
use snapgit_host::{
    Locks,
    driver::{self, NoLocks},
    lock::Error,
    storage::memory::MemoryStorage,
};

use crate::support::me;

macro_rules! services {
    ($($property:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $property() {
                super::$property(std::sync::Arc::new(snapgit_host::lock::memory::MemoryLocks::new())).await
            })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $property() {
                let Some(locks) = crate::support::redis().await else { return };
                super::$property(std::sync::Arc::new(locks)).await
            })*
        }
    };
}

services!(
    a_held_lock_excludes_others,
    only_the_token_releases,
    only_the_token_renews,
    leases_expire,
    a_zero_ttl_is_refused,
    one_of_many_racing_takes_it,
    commits_take_and_release_the_branch_lock,
);

const MINUTE: Duration = Duration::from_secs(60);

async fn a_held_lock_excludes_others(locks: Arc<dyn Locks>) {
    let token = locks.acquire("locks/r/main", MINUTE).await.unwrap().unwrap();
    assert_eq!(locks.acquire("locks/r/main", MINUTE).await.unwrap(), None);
    // Another name is another lock.
    let other = locks.acquire("locks/r/other", MINUTE).await.unwrap().unwrap();
    assert_ne!(token, other);
    assert!(locks.release("locks/r/main", &token).await.unwrap());
    let again = locks.acquire("locks/r/main", MINUTE).await.unwrap().unwrap();
    assert_ne!(again, token, "every acquire gets a fresh token");
}

async fn only_the_token_releases(locks: Arc<dyn Locks>) {
    let token = locks.acquire("l", MINUTE).await.unwrap().unwrap();
    assert!(!locks.release("l", "someone-else").await.unwrap());
    assert_eq!(locks.acquire("l", MINUTE).await.unwrap(), None, "still held");
    assert!(locks.release("l", &token).await.unwrap());
    assert!(!locks.release("l", &token).await.unwrap(), "released once");
}

async fn only_the_token_renews(locks: Arc<dyn Locks>) {
    let token = locks.acquire("l", Duration::from_millis(300)).await.unwrap().unwrap();
    assert!(!locks.renew("l", "someone-else", MINUTE).await.unwrap());
    assert!(locks.renew("l", &token, MINUTE).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        locks.acquire("l", MINUTE).await.unwrap(),
        None,
        "renewed past its first ttl"
    );
    assert!(locks.release("l", &token).await.unwrap());
}

async fn leases_expire(locks: Arc<dyn Locks>) {
    let token = locks.acquire("l", Duration::from_millis(100)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = locks.acquire("l", MINUTE).await.unwrap().unwrap();
    // The first holder's lease is over: it can neither release nor renew the next one's.
    assert!(!locks.release("l", &token).await.unwrap());
    assert!(!locks.renew("l", &token, MINUTE).await.unwrap());
    assert!(locks.release("l", &next).await.unwrap());
}

async fn a_zero_ttl_is_refused(locks: Arc<dyn Locks>) {
    assert!(matches!(
        locks.acquire("l", Duration::ZERO).await,
        Err(Error::InvalidTtl { .. })
    ));
}

async fn one_of_many_racing_takes_it(locks: Arc<dyn Locks>) {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let locks = locks.clone();
        tasks.push(tokio::spawn(
            async move { locks.acquire("race", MINUTE).await.unwrap() },
        ));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(winners, 1);
}

async fn commits_take_and_release_the_branch_lock(locks: Arc<dyn Locks>) {
    let store = MemoryStorage::new();
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let mut op = RepoOp::create_repo(&cache, "r", "main", vec![], me(), "create").unwrap();
    driver::run(&mut op, &mut cache, &store, None).await.unwrap();

    let mut request = CommitRequest::new("r", "main", vec![Change::put("a.md", "a\n")], me(), "locked");
    request.lock_ttl_ms = Some(60_000);
    let mut op = Commit::new(&cache, request.clone()).unwrap();
    let out = driver::run(&mut op, &mut cache, &store, Some(&*locks)).await.unwrap();
    assert!(out.locked);
    // Released: it can be taken again.
    let token = locks.acquire("locks/r/main", MINUTE).await.unwrap().unwrap();

    // Held by someone else for longer than our lease: the commit queues for one lease
    // (its own ttl), then goes ahead without the lock: the CAS is the fence.
    request.changes = vec![Change::put("b.md", "b\n")];
    request.lock_ttl_ms = Some(200);
    let mut op = Commit::new(&cache, request.clone()).unwrap();
    let out = driver::run(&mut op, &mut cache, &store, Some(&*locks)).await.unwrap();
    assert!(out.created && !out.locked);

    // Released while the commit queues for it: the commit takes it.
    request.changes = vec![Change::put("c.md", "c\n")];
    request.lock_ttl_ms = Some(60_000);
    let holder = locks.clone();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        holder.release("locks/r/main", &token).await.unwrap()
    });
    let mut op = Commit::new(&cache, request).unwrap();
    let out = driver::run(&mut op, &mut cache, &store, Some(&*locks)).await.unwrap();
    assert!(out.created && out.locked);
    assert!(release.await.unwrap(), "the first holder still held it when it let go");
}

#[tokio::test]
async fn a_lock_without_a_lock_service_is_an_error() {
    let store = MemoryStorage::new();
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let mut op = RepoOp::create_repo(&cache, "r", "main", vec![], me(), "create").unwrap();
    driver::run(&mut op, &mut cache, &store, None).await.unwrap();
    let mut request = CommitRequest::new("r", "main", vec![Change::put("a.md", "a\n")], me(), "m");
    request.lock_ttl_ms = Some(1000);
    let mut op = Commit::new(&cache, request).unwrap();
    match driver::run(&mut op, &mut cache, &store, None).await {
        Err(repo::Error::Storage(err)) => {
            let err = err.downcast_ref::<NoLocks>().expect("a NoLocks error");
            assert_eq!(err.name, "locks/r/main");
        }
        other => panic!("{other:?}"),
    }
}
