//! How a call fails: what ServiceNow said ([`UpstreamMessage`], for logs only), what the call
//! was about (`Op`), one attempt's failure (`Fail`), and the [`domain::Error`] it becomes,
//! described in our words (never the upstream's body).

use std::fmt;
use std::time::Duration;

use domain::Error;
use domain::error::BoxError;
use reqwest::Response;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use super::Client;

/// How much of an upstream error message is kept (for logs only).
pub(super) const MAX_MESSAGE: usize = 300;

/// What ServiceNow said when it refused a call: its `{"error":{"message","detail"}}` body (or
/// OAuth's `{"error","error_description"}`), cut short. Only ever an error's `source`, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamMessage {
    pub status: u16,
    pub message: Option<String>,
    pub detail: Option<String>,
}

impl fmt::Display for UpstreamMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for UpstreamMessage {}

impl UpstreamMessage {
    pub(super) fn parse(status: u16, body: &[u8]) -> UpstreamMessage {
        let cut = |s: &str| -> String {
            let s = s.trim();
            match s.char_indices().nth(MAX_MESSAGE) {
                Some((i, _)) => format!("{}…", &s[..i]),
                None => s.to_string(),
            }
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(cut);
        let (message, detail) = match serde_json::from_slice::<Value>(body) {
            Ok(v) => match v.get("error") {
                Some(Value::Object(e)) => (text(e.get("message")), text(e.get("detail"))),
                Some(Value::String(code)) => (Some(cut(code)), text(v.get("error_description"))),
                _ => (None, None),
            },
            Err(_) => (None, None),
        };
        UpstreamMessage { status, message, detail }
    }
}

/// What a call was about, for the error's `system` and `detail`.
#[derive(Clone, Copy)]
pub(super) struct Op<'a> {
    pub(super) table: &'a str,
    pub(super) target: Target<'a>,
}

#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    Record(&'a str),
    List,
    Create,
}

impl Op<'_> {
    pub(super) fn system(&self) -> String {
        format!("ServiceNow {}", self.table)
    }

    pub(super) fn label(&self) -> String {
        match self.target {
            Target::Record(id) => format!("record {id}"),
            Target::List => "listing records".into(),
            Target::Create => "creating a record".into(),
        }
    }
}

pub(super) struct Fail {
    /// The failure was the OAuth token request's, not the call's (nothing was written).
    pub(super) token: bool,
    pub(super) kind: FailKind,
}

pub(super) enum FailKind {
    Status { status: u16, retry_after: Option<Duration>, upstream: UpstreamMessage },
    Transport(reqwest::Error),
    Unreadable(String),
}

impl Fail {
    pub(super) fn transport(err: reqwest::Error, token: bool) -> Fail {
        Fail { token, kind: FailKind::Transport(err) }
    }

    pub(super) async fn status(resp: Response, token: bool) -> Fail {
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        Fail { token, kind: FailKind::Status { status, retry_after, upstream: UpstreamMessage::parse(status, &body) } }
    }
}

/// `Retry-After` in seconds (an HTTP date is ignored: backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

impl Client {
    /// What went wrong, in our words (never the upstream's body).
    pub(super) fn describe(&self, fail: &Fail) -> String {
        let what = match &fail.kind {
            FailKind::Status { status: 401, .. } => "credentials were refused (HTTP 401)".to_string(),
            FailKind::Status { status: 403, .. } if fail.token => "credentials were refused (HTTP 403)".to_string(),
            FailKind::Status { status: 403, .. } => "credentials were refused for this operation (HTTP 403: \
                 the account lacks a role or an ACL, or a business rule or data policy blocked it)"
                .to_string(),
            FailKind::Status { status: 429, .. } => "answered HTTP 429 (rate limit exceeded)".to_string(),
            FailKind::Status { status: status @ 300..=399, .. } => format!(
                "answered with a redirect (HTTP {status}), which Gatehouse does not follow; check \
                 GATEHOUSE_SERVICENOW_URL"
            ),
            FailKind::Status { status, .. } => format!("answered HTTP {status}"),
            FailKind::Transport(e) if e.is_timeout() => {
                format!("did not answer within {}", human(self.inner.config.timeout))
            }
            FailKind::Transport(e) if e.is_connect() => "could not be reached".to_string(),
            FailKind::Transport(e) if e.is_body() || e.is_decode() => {
                "sent an answer that could not be read".to_string()
            }
            FailKind::Transport(_) => "could not be called".to_string(),
            FailKind::Unreadable(_) => "sent an answer that could not be read".to_string(),
        };
        if fail.token { format!("OAuth token request: {what}") } else { what }
    }

    pub(super) fn error(&self, op: &Op<'_>, fail: Fail, attempts: u32, maybe_applied: bool) -> Error {
        let mut detail = format!("{}: {}", op.label(), self.describe(&fail));
        if attempts > 1 {
            detail.push_str(&format!(" ({attempts} attempts)"));
        }
        if maybe_applied {
            detail.push_str("; the write may or may not have been applied");
        }
        let source: BoxError = match fail.kind {
            FailKind::Status { upstream, .. } => Box::new(upstream),
            FailKind::Transport(e) => Box::new(e),
            FailKind::Unreadable(why) => why.into(),
        };
        self.fail(op, detail, Some(source))
    }

    pub(super) fn missing(&self, op: &Op<'_>) -> Error {
        self.fail(op, format!("{}: does not exist (HTTP 404)", op.label()), None)
    }

    pub(super) fn fail(&self, op: &Op<'_>, detail: impl Into<String>, source: Option<BoxError>) -> Error {
        let system = op.system();
        let detail = detail.into();
        let cause = source.as_ref().map(|s| s.to_string()).unwrap_or_default();
        tracing::warn!(%system, %detail, %cause, "ServiceNow call failed");
        match source {
            Some(s) => Error::upstream_caused(system, detail, s),
            None => Error::upstream(system, detail),
        }
    }
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
