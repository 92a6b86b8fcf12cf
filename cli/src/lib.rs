//! The `gatehouse` binary's library: `serve` mounts every function in one process.

pub mod audit;
pub mod ci;
pub mod dev;
pub mod metrics_listen;
pub mod serve;
