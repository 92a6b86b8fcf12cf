//! The SQLite store: the same records and conditional semantics as the DynamoDB table, in one file,
//! for `gatehouse serve` and single-box sites. `contract` is the suite every store must pass.

pub mod contract;
mod sqlite;
pub mod stale_index;

pub use sqlite::SqliteStore;
