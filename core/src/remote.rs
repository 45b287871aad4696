//! A repo of the store as a git remote.

mod op_error;
pub mod receive;
pub mod refs;
pub mod upload;

pub use op_error::OpError;
