//! Writers racing on one branch: `writers` tasks, each with its own cache (its own
//! process, as far as core can tell), commit `commits` files each to `main` of repo
//! `race` through the host's driver, with core's default retry policy, and report what
//! it cost. The host's contention test asserts on it; its contention benchmark prints it.
//!
//! Test and benchmark code, not part of the product: `host/tests/host` and
//! `host/benches/contention.rs` include this file (`#[path]`).

#![allow(dead_code)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use snapgit_core::{
    ObjectCache, ObjectId, Operation, Step,
    commit::{Change, Signature},
    history::{Log, Request},
    repo::{self, AdminOutput, Commit, CommitRequest, RepoOp},
    step::Answer,
};
use snapgit_host::{Locks, Storage, driver};

/// The repo the writers commit to.
pub const REPO: &str = "race";

/// What a race cost.
#[derive(Debug, Default)]
pub struct Race {
    /// Every acknowledged commit, per writer, in order.
    pub landed: Vec<Vec<ObjectId>>,
    /// Commits that failed with a lost race (`LOST_RACE`).
    pub lost_race: u64,
    /// Commits that failed otherwise, with the first such error.
    pub failed: u64,
    /// The first error that was not a lost race.
    pub first_error: Option<String>,
    /// Attempts of every acknowledged commit.
    pub attempts: u64,
    /// The most attempts one commit took.
    pub most_attempts: u32,
    /// Waits core asked for (after lost swaps and busy locks), and their milliseconds.
    pub waits: u64,
    pub waited_ms: u64,
    /// The most milliseconds one commit waited.
    pub most_waited_ms: u64,
    /// Acknowledged commits that held the lock.
    pub locked: u64,
    pub elapsed: Duration,
}

impl Race {
    /// Acknowledged commits.
    pub fn commits(&self) -> u64 {
        self.landed.iter().map(|w| w.len() as u64).sum()
    }
}

/// An operation that counts the waits it asks for.
struct Counted<O> {
    op: O,
    waits: u64,
    waited_ms: u64,
}

impl<O: Operation> Operation for Counted<O> {
    type Output = O::Output;
    type Error = O::Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<O::Output>, O::Error> {
        let step = self.op.poll(cache)?;
        if let Step::Wait { ms } = &step {
            self.waits += 1;
            self.waited_ms += ms;
        }
        Ok(step)
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), O::Error> {
        self.op.provide(cache, objects)
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), O::Error> {
        self.op.answer(cache, answer)
    }
}

fn signature(seconds: i64) -> Signature {
    Signature::new("Agent", "agent@example.com", 1_700_000_000 + seconds)
}

/// Create repo [`REPO`] with a few files on `main`; its first commit.
pub async fn create(store: &dyn Storage) -> ObjectId {
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let files = (0..20)
        .map(|i| Change::put(format!("notes/note-{i}.md"), format!("# note {i}\n")))
        .collect();
    let mut op = RepoOp::create_repo(&cache, REPO, "main", files, signature(0), "create").expect("valid");
    match driver::run(&mut op, &mut cache, store, None).await.expect("created") {
        AdminOutput::Created { commit, .. } => commit,
        other => panic!("{other:?}"),
    }
}

/// Run the race: `writers` tasks at once, `commits` each, taking the branch's lock for
/// `lock_ttl_ms` when `locks` is given.
pub async fn race(
    store: Arc<dyn Storage>,
    locks: Option<Arc<dyn Locks>>,
    lock_ttl_ms: u64,
    writers: usize,
    commits: usize,
) -> Race {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (store, locks) = (store.clone(), locks.clone());
            tokio::spawn(async move { write(store, locks, lock_ttl_ms, writer, commits).await })
        })
        .collect();
    let mut race = Race::default();
    for task in tasks {
        let mine = task.await.expect("a writer finished");
        race.landed.push(mine.landed.into_iter().flatten().collect());
        race.lost_race += mine.lost_race;
        race.failed += mine.failed;
        race.first_error = race.first_error.or(mine.first_error);
        race.attempts += mine.attempts;
        race.most_attempts = race.most_attempts.max(mine.most_attempts);
        race.waits += mine.waits;
        race.waited_ms += mine.waited_ms;
        race.most_waited_ms = race.most_waited_ms.max(mine.most_waited_ms);
        race.locked += mine.locked;
    }
    race.elapsed = start.elapsed();
    race
}

async fn write(
    store: Arc<dyn Storage>,
    locks: Option<Arc<dyn Locks>>,
    lock_ttl_ms: u64,
    writer: usize,
    commits: usize,
) -> Race {
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let mut race = Race::default();
    let mut landed = Vec::new();
    for turn in 0..commits {
        let change = Change::put(
            format!("writers/{writer}/turn-{turn}.md"),
            format!("writer {writer} remembers turn {turn}\n"),
        );
        let seconds = i64::try_from(turn * 1000 + writer).unwrap_or(0);
        let message = format!("writer {writer} turn {turn}");
        let mut request = CommitRequest::new(REPO, "main", vec![change], signature(seconds), message);
        request.line_stats = false;
        request.lock_ttl_ms = locks.is_some().then_some(lock_ttl_ms);
        let mut op = Counted {
            op: Commit::new(&cache, request).expect("valid"),
            waits: 0,
            waited_ms: 0,
        };
        let result = driver::run(&mut op, &mut cache, &*store, locks.as_deref()).await;
        race.waits += op.waits;
        race.waited_ms += op.waited_ms;
        race.most_waited_ms = race.most_waited_ms.max(op.waited_ms);
        match result {
            Ok(out) => {
                race.attempts += u64::from(out.attempts);
                race.most_attempts = race.most_attempts.max(out.attempts);
                race.locked += u64::from(out.locked);
                landed.push(out.commit);
            }
            Err(repo::Error::LostRace { .. }) => race.lost_race += 1,
            Err(err) => {
                race.failed += 1;
                race.first_error.get_or_insert(err.to_string());
            }
        }
    }
    race.landed = vec![landed];
    race
}

/// Every commit of `main`'s first-parent history, newest first, read with a cold cache.
pub async fn history(store: &dyn Storage) -> Vec<ObjectId> {
    let mut cache = ObjectCache::new(snapgit_core::HashKind::Sha1);
    let mut op = RepoOp::read_head(REPO, "main").expect("valid");
    let AdminOutput::Head(head) = driver::run(&mut op, &mut cache, store, None).await.expect("a head") else {
        panic!("read_head gives a head")
    };
    let mut op = Log::new(Request::new(head, 1_000_000)).expect("valid");
    let page = driver::run(&mut op, &mut cache, store, None).await.expect("the log");
    page.commits.iter().map(|c| c.id).collect()
}
