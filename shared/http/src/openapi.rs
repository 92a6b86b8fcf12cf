//! `GET /openapi.json`: the OpenAPI 3.1 document of the whole API, with a security scheme per
//! scope. A test compares it with every function's route table, so a route cannot be added
//! without being described.

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use domain::config::ApiTokens;

use crate::routes::{Access, Mounted, Routes};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

async fn document() -> Response {
    let mut resp = DOCUMENT.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The route that serves the document (public: it holds no secret).
pub fn router() -> Mounted {
    Routes::new(ApiTokens::default()).add(Method::GET, "/openapi.json", Access::Public, document).with_state(())
}
