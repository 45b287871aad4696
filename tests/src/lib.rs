//! Helpers shared by the cross-part tests and benchmarks.
