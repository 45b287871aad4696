//! Writers racing on one branch: what a commit costs under contention, with core's
//! default retry policy (`snapgit_core::retry`).
//!
//! ```text
//! cargo bench -p snapgit-host --no-default-features --bench contention
//! cargo bench -p snapgit-host --no-default-features --bench contention -- --commits 50 --writers 1,8,32,64
//! ```
//!
//! For each number of writers (tasks of this process, each with its own cache, as
//! separate processes would be as far as core can tell), every writer commits its own
//! file `--commits` times to one branch of a folder store (git's layout and lock files),
//! through the host's driver; then again with the branch's advisory lock (in-process
//! locks). It prints commits per second, attempts, waits and milliseconds waited per
//! commit, the most attempts and waiting one commit took, and how many commits failed
//! with `LOST_RACE`; and checks that every acknowledged commit is in the branch's history.
//! Nothing is asserted beyond that: the figures are of one run.

use std::{collections::HashSet, sync::Arc};

use clap::Parser;
use snapgit_host::{
    Locks, Storage,
    lock::memory::MemoryLocks,
    storage::fs::{FsOptions, FsStorage},
};

#[path = "../tests/support/race.rs"]
mod race;

/// What to measure.
#[derive(Debug, Parser)]
#[command(name = "bench-contention", about = "Writers racing on one branch of a folder store")]
struct Args {
    /// Commits per writer.
    #[arg(long, default_value_t = 20)]
    commits: usize,
    /// The numbers of writers to run, one after the other.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
    writers: Vec<usize>,
    /// Do not flush writes to disk (the folder backend flushes by default).
    #[arg(long)]
    no_fsync: bool,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    println!(
        "writers on one branch of a folder store, {} commits each (fsync {})",
        args.commits,
        if args.no_fsync { "off" } else { "on" }
    );
    println!(
        "{:<8} {:>7} {:>8} {:>10} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}",
        "writers", "lock", "commits", "commits/s", "attempts", "most", "waits", "waited", "most", "LOST_RACE"
    );
    println!(
        "{:<8} {:>7} {:>8} {:>10} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}",
        "", "", "", "", "/commit", "attempts", "/commit", "ms/commit", "waited ms", ""
    );
    for &writers in &args.writers {
        for lock in [false, true] {
            let dir = tempfile::tempdir()?;
            let options = FsOptions {
                fsync: !args.no_fsync,
                ..FsOptions::default()
            };
            let store: Arc<dyn Storage> = Arc::new(FsStorage::open_with(dir.path(), options)?);
            let locks: Option<Arc<dyn Locks>> = lock.then(|| Arc::new(MemoryLocks::new()) as Arc<dyn Locks>);
            race::create(&*store).await;
            let race = race::race(store.clone(), locks, 30_000, writers, args.commits).await;
            if let Some(err) = &race.first_error {
                return Err(format!("a commit failed: {err}").into());
            }
            let history: HashSet<_> = race::history(&*store).await.into_iter().collect();
            let missing = race.landed.iter().flatten().filter(|id| !history.contains(*id)).count();
            if missing > 0 {
                return Err(format!("{missing} acknowledged commits are not in the history").into());
            }
            let commits = race.commits().max(1) as f64;
            println!(
                "{:<8} {:>7} {:>8} {:>10.1} {:>9.2} {:>9} {:>8.2} {:>10.1} {:>9} {:>9}",
                writers,
                if lock { "memory" } else { "none" },
                race.commits(),
                race.commits() as f64 / race.elapsed.as_secs_f64(),
                race.attempts as f64 / commits,
                race.most_attempts,
                race.waits as f64 / commits,
                race.waited_ms as f64 / commits,
                race.most_waited_ms,
                race.lost_race,
            );
        }
    }
    println!("every acknowledged commit is in the branch's history (checked)");
    Ok(())
}
