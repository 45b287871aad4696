//! Contention: how long to wait before trying again, and when to stop. The one retry
//! policy of every operation that can lose a race ([`Commit`](crate::repo::Commit), its
//! restore, [`Prune`](crate::gc::Prune)), whichever driver runs it.
//!
//! An operation that loses the compare-and-swap of its ref, or finds the advisory lock
//! busy, asks for a [`Step::Wait`](crate::Step::Wait) with the milliseconds decided here;
//! the driver only sleeps that long (a simulation may move its clock instead) and
//! answers [`Answer::Waited`](crate::step::Answer::Waited). So the npm package, the
//! component and native Rust wait alike, and no driver has a policy of its own.
//!
//! - **After a lost swap** a writer waits [`RACE`] (jittered exponential backoff), then
//!   reads the ref again and replays onto that head: information as old as the wait
//!   would lose the next swap too. It gives up with a lost race after `max_attempts`
//!   attempts or [`RACE_BUDGET_MS`] of waiting, whichever comes first. A writer that
//!   holds the branch's lock retries at once: waiting would only keep the queue behind it
//!   waiting too.
//! - **A busy lock** is waited for ([`LOCK`], short waits, so a lock released is soon
//!   taken again) and asked for again, until it is taken or the writer has waited the
//!   lock's ttl: by then the lease it first met has run out, so a lock still busy is held
//!   by later writers, and the commit goes ahead without it. That is safe: the lock only
//!   reduces contention, the compare-and-swap stays the fence.
//!
//! Jitter needs randomness, and core has none (no IO, deterministic on every target). The
//! jitter of each wait is drawn from what differs between writers instead: a seed hashed
//! from the writer's own work (after a lost swap, the id of the commit it built, which
//! covers its changes, author, time and parent; at a busy lock, its request), mixed with
//! the number of the wait by splitmix64. Writers that collided build different commits,
//! so their waits differ and they do not collide again in step; a writer that built the
//! very commit another one landed has nothing left to do after its replay.

/// Attempts a commit, restore or prune makes by default before it gives up the race,
/// unless its wait budget ([`RACE_BUDGET_MS`]) runs out first. 32 writers committing to
/// one branch at once need far fewer (the benchmark `contention` of snapgit-host
/// measures it); the bound is there for a store that keeps answering "lost".
pub const DEFAULT_MAX_ATTEMPTS: u32 = 100;

/// The backoff after a lost compare-and-swap: 4 to 8 ms first, the ceiling doubling up to
/// 500 ms. Chosen by measuring 32 writers committing back to back to one branch of a
/// folder store (snapgit-host's `contention` benchmark): a lower ceiling keeps more
/// writers contending at once, so each attempt is likelier to lose (about 1.8 to 2.6
/// attempts per commit at 256 ms, over 4 at 64 ms, against 1.4 here); a higher one
/// (1 s) needs no fewer attempts, but the unluckiest writer waits longer in all.
pub const RACE: Backoff = Backoff {
    base_ms: 8,
    max_ms: 500,
};

/// The most one operation waits, in total, after lost compare-and-swaps before it gives
/// up the race: 20 s, about fifty attempts. In the measurement above the unluckiest of
/// 1,280 commits waited 5 to 6 s; a call into the host's component has 60 s.
pub const RACE_BUDGET_MS: u64 = 20_000;

/// The backoff while the advisory lock is busy: short, so that a lock released is soon
/// taken again by one of the writers queued for it. The budget is the lock's ttl.
pub const LOCK: Backoff = Backoff { base_ms: 2, max_ms: 64 };

/// Jittered exponential backoff ("equal jitter"): the `n`-th wait is between half and all
/// of `min(max_ms, base_ms * 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait, in milliseconds.
    pub base_ms: u64,
    /// The largest ceiling, in milliseconds.
    pub max_ms: u64,
}

impl Backoff {
    /// The `n`-th wait (counting from 1), in milliseconds, for the draw `draw` (any
    /// number; [`draw`] makes one from a seed).
    pub fn delay(&self, n: u32, draw: u64) -> u64 {
        let doubling = 1u64 << n.saturating_sub(1).min(63);
        let ceiling = self.base_ms.saturating_mul(doubling).min(self.max_ms);
        let half = ceiling / 2;
        ceiling - half + draw % (half + 1)
    }
}

/// The waits one operation makes for one kind of contention, within a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waits {
    backoff: Backoff,
    budget_ms: u64,
    count: u32,
    waited_ms: u64,
}

impl Waits {
    /// No wait made yet; at most `budget_ms` in all.
    pub fn new(backoff: Backoff, budget_ms: u64) -> Self {
        Waits {
            backoff,
            budget_ms,
            count: 0,
            waited_ms: 0,
        }
    }

    /// The next wait, in milliseconds, for the writer whose seed is `seed`; `None` once
    /// the budget is spent. The last wait is cut short so the total never exceeds it.
    pub fn next(&mut self, seed: u64) -> Option<u64> {
        let left = self.budget_ms.saturating_sub(self.waited_ms);
        if left == 0 {
            return None;
        }
        self.count = self.count.saturating_add(1);
        let ms = self.backoff.delay(self.count, draw(seed, self.count)).min(left);
        self.waited_ms += ms;
        Some(ms)
    }

    /// Waits made so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Milliseconds waited so far.
    pub fn waited_ms(&self) -> u64 {
        self.waited_ms
    }
}

/// The draw for the `n`-th wait of a writer with `seed`.
pub fn draw(seed: u64, n: u32) -> u64 {
    splitmix64(seed ^ u64::from(n).wrapping_mul(GOLDEN))
}

/// A seed hashed from `parts` (their bytes, and where each ends).
pub fn seed<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut state = 0u64;
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for chunk in chunks.by_ref() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            state = splitmix64(state ^ u64::from_le_bytes(word));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        state = splitmix64(state ^ u64::from_le_bytes(last));
        state = splitmix64(state ^ part.len() as u64);
    }
    state
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's step: every bit of the input moves every bit of the output.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base_ms: 10,
        max_ms: 100,
    };

    #[test]
    fn delays_grow_and_are_capped() {
        for d in 0..1000u64 {
            let draw = draw(d, 1);
            assert!((5..=10).contains(&B.delay(1, draw)));
            assert!((20..=40).contains(&B.delay(3, draw)));
            assert!((50..=100).contains(&B.delay(40, draw)));
            assert!((50..=100).contains(&B.delay(u32::MAX, draw)));
        }
        let huge = Backoff {
            base_ms: u64::MAX,
            max_ms: u64::MAX,
        };
        assert!(huge.delay(64, u64::MAX) >= u64::MAX / 2);
        let none = Backoff { base_ms: 0, max_ms: 0 };
        assert_eq!(none.delay(5, 12345), 0);
    }

    #[test]
    fn writers_draw_different_waits() {
        let a = seed([b"writer a".as_slice()]);
        let b = seed([b"writer b".as_slice()]);
        assert_ne!(a, b);
        let waits = |s| {
            let mut waits = Waits::new(B, u64::MAX);
            (0..8).map(|_| waits.next(s).unwrap()).collect::<Vec<_>>()
        };
        assert_ne!(waits(a), waits(b));
        assert_eq!(waits(a), waits(a), "the same writer draws the same waits");
        // Spread: the first waits of many writers cover the window.
        let firsts: std::collections::BTreeSet<u64> = (0..200u64)
            .map(|w| B.delay(4, draw(seed([w.to_le_bytes().as_slice()]), 4)))
            .collect();
        assert!(firsts.len() > 30, "{firsts:?}");
    }

    #[test]
    fn seeds_see_every_byte_and_the_boundaries() {
        assert_ne!(seed([b"ab".as_slice(), b"c"]), seed([b"a".as_slice(), b"bc"]));
        assert_ne!(seed([&[0u8; 9][..]]), seed([&[0u8; 8][..]]));
        let mut long = vec![7u8; 100];
        let before = seed([long.as_slice()]);
        long[93] = 8;
        assert_ne!(seed([long.as_slice()]), before);
    }

    #[test]
    fn waits_stay_within_their_budget() {
        let mut waits = Waits::new(B, 1000);
        let mut total = 0;
        while let Some(ms) = waits.next(42) {
            assert!(ms > 0);
            total += ms;
        }
        assert_eq!(total, 1000);
        assert_eq!(waits.waited_ms(), 1000);
        assert!((10..=200).contains(&waits.count()), "{}", waits.count());
        assert_eq!(waits.next(42), None, "spent stays spent");
        assert_eq!(Waits::new(B, 0).next(1), None);
    }
}
