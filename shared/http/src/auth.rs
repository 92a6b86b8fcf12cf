use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::Error;
use domain::config::{ApiTokens, Grant, Scope};
use domain::signin::ApproverSession;
use domain::usecases::Services;

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

/// The auditor's session cookie (set by the sign-in callback, `Path=/`, 15 minutes).
pub const AUDITOR_SESSION_COOKIE: &str = "gatehouse_audit_session";

/// The cookie binding an auditor's sign-in to the browser that started it (`Path` the callback,
/// 10 minutes): only its hash is stored with the sign-in.
pub const AUDIT_SIGN_IN_COOKIE: &str = "gatehouse_audit_signin";

/// Who is calling an `AuditorSessionOr` route, for the handler (a request extension).
#[derive(Debug, Clone)]
pub enum AuditCaller {
    /// A bearer token of the route's scope.
    Token,
    /// A signed-in auditor.
    Auditor(ApproverSession),
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Lax`, and `Secure` unless Gatehouse is served over
/// plain http (which the configuration allows only on loopback). `max_age` 0 deletes it.
pub fn set_cookie(services: &Services, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if services.config.public_base_url.starts_with("https://") { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("gatehouse_invalid=1"))
}

/// Middleware of `AuditorSessionOr` routes: a bearer token, when one is sent, decides as for
/// `Scope` routes; else a live auditor's session cookie lets the call through; else 401.
pub async fn require_scope_or_auditor(
    State((tokens, scope, services)): State<(ApiTokens, Scope, Services)>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = if bearer(request.headers()).is_some() {
        check_scope(&tokens, request.headers(), scope).map(|()| AuditCaller::Token)
    } else {
        match cookie(request.headers(), AUDITOR_SESSION_COOKIE) {
            Some(id) => match services.auditor_session(id).await {
                Ok(Some(session)) => Ok(AuditCaller::Auditor(session)),
                Ok(None) => Err(Error::Unauthorized),
                Err(e) => Err(e),
            },
            None => Err(Error::Unauthorized),
        }
    };
    match caller {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => ApiError(e).into_response(),
    }
}
