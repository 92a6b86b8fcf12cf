use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::Error;
use domain::config::ApiTokens;

use crate::problem::ApiError;

/// Middleware for machine endpoints: `Authorization: Bearer <api token>`, compared in constant time
/// against every configured token.
pub async fn require_api_token(State(tokens): State<ApiTokens>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match presented {
        Some(token) if tokens.accepts(token) => next.run(request).await,
        _ => ApiError(Error::Unauthorized).into_response(),
    }
}
