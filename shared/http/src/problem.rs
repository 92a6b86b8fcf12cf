use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Error, FieldError};
use serde::Serialize;

/// A domain error on its way out. `?` converts any `domain::Error` into it.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

/// Status, problem type slug and title for each error: the one place this is decided.
pub fn classify(e: &Error) -> (StatusCode, &'static str, &'static str) {
    match e {
        Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-input", "The input breaks a rule"),
        Error::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed-request", "The request could not be read"),
        Error::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Missing or invalid credentials"),
        Error::MissingScope(_) => {
            (StatusCode::FORBIDDEN, "insufficient-scope", "The credential lacks the scope needed")
        }
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
        Error::Conflict(_) | Error::Stale => (StatusCode::CONFLICT, "conflict", "Conflict"),
        Error::Gone(_) => (StatusCode::GONE, "gone", "No longer available"),
        Error::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Request body too large"),
        Error::UnsupportedMediaType { .. } => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported content type")
        }
        Error::Upstream { .. } | Error::Quota { .. } => {
            (StatusCode::BAD_GATEWAY, "upstream-failure", "An upstream system failed")
        }
        Error::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
    }
}

/// What a caller may read about an error: our own words, never a cause chain.
pub fn public_detail(e: &Error) -> String {
    match e {
        Error::Internal { .. } => "something went wrong on our side; it has been logged".to_string(),
        Error::Stale => "the record changed while this request was handled; try again".to_string(),
        Error::Malformed(m) | Error::Forbidden(m) | Error::Conflict(m) | Error::Gone(m) => m.clone(),
        other => other.to_string(),
    }
}

pub fn log_error(e: &Error) {
    match e {
        Error::Internal { .. } => tracing::error!(error = %e.chain(), "internal error"),
        Error::Upstream { .. } => {
            domain::metrics::upstream_error(e);
            tracing::warn!(error = %e.chain(), "upstream failure")
        }
        _ => tracing::debug!(error = %e, "request refused"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        log_error(&e);
        let (status, slug, title) = classify(&e);
        let errors: &[FieldError] = match &e {
            Error::Invalid(list) => list,
            _ => &[],
        };
        let body = Problem {
            kind: &format!("https://gatehouse.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: public_detail(&e),
            errors,
        };
        let mut resp = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Error::MissingScope(scope) = &e {
            // RFC 6750 §3.1: the scope the resource needs.
            let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// Answers any route nobody mounted with a problem+json 404.
pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("route".into()))
}
