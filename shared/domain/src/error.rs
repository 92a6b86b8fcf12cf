//! The one error type of Gatehouse. Every adapter maps its failures into it, and the HTTP edge maps
//! it to a status and a problem+json body (shared/http), so each failure is said one way.

use serde::Serialize;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One problem with one input field, named the way the caller spelled it (`requester.email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Well-formed input that breaks a rule (422).
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// Input that could not be read at all (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// A known credential of another scope (403).
    #[error("this endpoint needs a credential of scope {0}")]
    MissingScope(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request contradicts what is recorded (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing existed but is over: expired, cancelled (410).
    #[error("gone: {0}")]
    Gone(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type; expected {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// A conditional write lost: the record changed since it was read. Use-cases retry or answer 409.
    #[error("the record changed concurrently")]
    Stale,
    /// An outside system (PCD, ServiceNow, GitLab, mail) failed or could not be reached. `detail` is
    /// written by us and safe to show; the upstream's raw answer only goes into `source`, for the log.
    #[error("{system}: {detail}")]
    Upstream {
        system: String,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The outside system refused for lack of quota (Nova 403/413).
    #[error("{system}: quota exceeded: {detail}")]
    Quota { system: String, detail: String },
    /// Anything unexpected. Logged with its cause chain, never shown to callers.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn upstream(system: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Upstream { system: system.into(), detail: detail.into(), source: None }
    }

    pub fn upstream_caused(system: impl Into<String>, detail: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Upstream { system: system.into(), detail: detail.into(), source: Some(source.into()) }
    }

    pub fn internal(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Internal { context: context.into(), source: Some(source.into()) }
    }

    pub fn internal_msg(context: impl Into<String>) -> Self {
        Error::Internal { context: context.into(), source: None }
    }

    /// The field the first complaint of a 422 names; `None` for any other error.
    pub fn invalid_field(&self) -> Option<&str> {
        match self {
            Error::Invalid(errors) => errors.first().map(|e| e.field.as_str()),
            _ => None,
        }
    }

    /// The message and every cause below it, for logs.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(cause) = cur {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            cur = cause.source();
        }
        out
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
