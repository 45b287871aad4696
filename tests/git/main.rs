//! Real git as the oracle: ids, fsck, numstat and reading git-written repositories.

mod commit;
mod concurrency;
mod diff_tree;
mod gc;
mod generated;
mod history;
mod restore;
