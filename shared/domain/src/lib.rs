//! Gatehouse's domain: the request model and its state machine, approval tokens, configuration,
//! the catalog, the use-cases, and the ports adapters implement. No AWS SDK, HTTP client or server
//! here.

pub mod approvals;
pub mod catalog;
pub mod changes;
pub mod compute;
pub mod config;
pub mod credentials;
pub mod error;
pub mod evidence;
pub mod identity;
mod keys;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod parallel;
pub mod policy;
pub mod ports;
pub mod signin;
pub mod token;

pub use error::{Error, FieldError, Result};
pub mod usecases;
