//! 32 writers on one branch at the defaults: no commit loses the race, and every
//! acknowledged commit is in the branch's history. On a folder store (git checks it), on
//! S3, and on S3 with Redis locks (`SNAPGIT_SERVICES=1`).

use std::{collections::HashSet, sync::Arc};

use snapgit_host::{Locks, Storage};

use crate::{
    race::{self, Race},
    support::{self, Fixture},
};

const WRITERS: usize = 32;
const COMMITS: usize = 20;

/// Every commit acknowledged, none lost, all in the history (which holds nothing else).
async fn check(store: &dyn Storage, race: &Race) {
    assert_eq!(
        (race.lost_race, race.failed, race.first_error.as_deref()),
        (0, 0, None),
        "every commit lands"
    );
    assert_eq!(race.commits(), (WRITERS * COMMITS) as u64);
    let history = race::history(store).await;
    assert_eq!(
        history.len(),
        WRITERS * COMMITS + 1,
        "one commit per turn, after the first"
    );
    let seen: HashSet<_> = history.iter().collect();
    for id in race.landed.iter().flatten() {
        assert!(seen.contains(id), "acknowledged commit {id} is not in the history");
    }
    eprintln!(
        "[{}] {} commits from {WRITERS} writers: {:.2} attempts (at most {}) and {:.2} waits ({} ms) per commit, {} held the lock, {:?}",
        store.location(),
        race.commits(),
        race.attempts as f64 / race.commits() as f64,
        race.most_attempts,
        race.waits as f64 / race.commits() as f64,
        race.waited_ms / race.commits().max(1),
        race.locked,
        race.elapsed,
    );
}

async fn contend(fixture: Fixture, locks: Option<Arc<dyn Locks>>) -> Fixture {
    race::create(&*fixture.store).await;
    let race = race::race(fixture.store.clone(), locks, 30_000, WRITERS, COMMITS).await;
    check(&*fixture.store, &race).await;
    fixture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_on_a_folder_store_never_lose_the_race() {
    let fixture = support::fs(Default::default()).unwrap();
    let fixture = contend(fixture, None).await;
    support::fsck(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_on_s3_never_lose_the_race() {
    let Some(fixture) = support::s3(Default::default()) else {
        return;
    };
    contend(fixture, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_on_s3_with_redis_locks_never_lose_the_race() {
    let Some(fixture) = support::s3(Default::default()) else {
        return;
    };
    let Some(locks) = support::redis().await else { return };
    contend(fixture, Some(Arc::new(locks))).await;
}
