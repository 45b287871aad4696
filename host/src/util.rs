//! Small helpers shared by the backends: the wall clock and unguessable tokens.

use std::{
    hash::{BuildHasher, Hasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Milliseconds since the Unix epoch for `time`, saturating (a clock before 1970 reads 0).
pub(crate) fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The wall clock, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    millis(SystemTime::now())
}

/// 64 random bits. Each `RandomState` is seeded from the operating system's randomness
/// (once per thread, then advanced), and a process-wide counter makes every call differ,
/// so no random-number crate is needed for jitter and tokens.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// A token no other writer can guess or produce: 128 random bits in hex.
pub(crate) fn token() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

/// A duration picked uniformly in `[0, max]`.
pub(crate) fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    match nanos.checked_add(1) {
        Some(range) => Duration::from_nanos(random_u64() % range),
        None => Duration::from_nanos(random_u64()),
    }
}

/// The cores this process may use, asked once: std reads the cgroup's CPU quota from
/// `/proc` and `/sys` on every call (about half a millisecond).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
