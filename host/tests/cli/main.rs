//! The `snapgit` binary's tests.
