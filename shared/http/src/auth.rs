use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::Error;
use domain::config::{ApiTokens, Grant, Scope};

use crate::problem::ApiError;

/// The bearer token of `Authorization: Bearer <token>`, if one was sent.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Whether the request carries a bearer token of `scope`: `Err` is the 401 or the 403 to answer.
pub fn check_scope(tokens: &ApiTokens, headers: &HeaderMap, scope: Scope) -> Result<(), Error> {
    match bearer(headers).map(|token| tokens.grant(token, scope)) {
        Some(Grant::Allowed) => Ok(()),
        Some(Grant::WrongScope) => Err(Error::MissingScope(scope.as_str())),
        Some(Grant::Unknown) | None => Err(Error::Unauthorized),
    }
}

/// Middleware for machine endpoints: a bearer token of the route's scope (see `Routes`).
pub async fn require_scope(
    State((tokens, scope)): State<(ApiTokens, Scope)>,
    request: Request,
    next: Next,
) -> Response {
    match check_scope(&tokens, request.headers(), scope) {
        Ok(()) => next.run(request).await,
        Err(e) => ApiError(e).into_response(),
    }
}
