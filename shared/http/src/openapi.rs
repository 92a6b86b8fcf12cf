//! `GET /openapi.json`: the OpenAPI 3.1 document of the whole API, with a security scheme per
//! scope (`servicenow`, `ci`, `webhook`, `audit`) and `webhookSignature` for ServiceNow's signed
//! callback. tests/e2e/openapi.rs compares it with every function's route table (methods, paths,
//! security) and checks live answers against its schemas, so a route cannot be added, or its
//! scope or answer changed, without the document; tests/aws/validate-openapi.sh validates it as
//! OpenAPI 3.1 with its examples.

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
