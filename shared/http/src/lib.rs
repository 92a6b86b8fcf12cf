//! The HTTP edge every function shares: one mapping from the domain error to a status and an RFC
//! 9457 problem+json body, bearer-token auth, strict JSON bodies, security headers, telemetry and
//! the Lambda adapter.

pub mod auth;
pub mod body;
pub mod health;
pub mod lambda;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod telemetry;

pub use auth::check_scope;
pub use body::JsonBody;
pub use problem::ApiError;
pub use routes::{Access, Mounted, RouteSpec, Routes};
