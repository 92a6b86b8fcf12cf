//! `GET /healthz`: 200 when the process can serve. On Lambda the catalog function answers it (its
//! start-up has read the configuration by then); `gatehouse serve` mounts it beside the API.

use axum::http::Method;
use domain::config::ApiTokens;

use crate::routes::{Access, Mounted, Routes};

async fn healthz() -> &'static str {
    "ok"
}

/// The health route (public: it tells nothing but that the process answers).
pub fn router() -> Mounted {
    Routes::new(ApiTokens::default()).add(Method::GET, "/healthz", Access::Public, healthz).with_state(())
}
