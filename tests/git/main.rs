//! Real git as the oracle: ids, fsck, numstat and reading git-written repositories.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

mod commit;
mod compact;
mod concurrency;
mod diff_tree;
mod gc;
mod generated;
mod history;
mod packs;
mod restore;
mod rev;
mod tags;
