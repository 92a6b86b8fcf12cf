//! The HTTP client: one call, retries with back-off, and what an error answer means.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::env::{Credential, Gate, Subject};
use super::exit::Fail;
use super::pacing::{MAX_RETRIES, MAX_RETRY_AFTER, Pacing, parse_retry_after};
use super::text::{attempts_text, clip, one_line, seconds};

/// Gatehouse's `/v1/changes` API, as one command calls it.
pub(super) struct Api {
    http: reqwest::Client,
    pub(super) base: Url,
    /// `Bearer <token>`, marked sensitive: only ever sent, never shown.
    auth: HeaderValue,
    /// Which variable the token came from, for the messages.
    pub(super) credential: Credential,
    pacing: Pacing,
    /// `request`, `verify` or `report`, for the messages.
    command: &'static str,
}

/// What an answer is about, for the error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// `POST /v1/changes`.
    Request,
    /// An existing change: 404 means `request` did not run.
    Change,
}

/// An answer, whatever its status.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Reply {
    pub(super) fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, Fail> {
        serde_json::from_slice(&self.body)
            .map_err(|_| Fail(format!("Gatehouse answered {} with a body that is not a change", self.status)))
    }

    pub(super) fn status_text(&self) -> String {
        format!("Gatehouse answered {}", self.status)
    }

    /// The problem+json's title, detail and field errors, on one line; nothing else of the body.
    fn problem(&self) -> String {
        let Ok(problem) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return String::new();
        };
        let text = |key: &str| problem.get(key).and_then(|v| v.as_str()).map(one_line).unwrap_or_default();
        let (title, detail) = (text("title"), text("detail"));
        let mut out = match (title.is_empty(), detail.is_empty()) {
            (_, true) => title,
            (true, false) => detail,
            // "Unauthorized: missing or invalid credentials", but not the same words twice.
            (false, false) if title.eq_ignore_ascii_case(&detail) => title,
            (false, false) => format!("{title}: {detail}"),
        };
        if let Some(errors) = problem.get("errors").and_then(|e| e.as_array()).filter(|e| !e.is_empty()) {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| {
                    let field = e.get("field").and_then(|v| v.as_str()).map(one_line).unwrap_or_default();
                    let message = e.get("message").and_then(|v| v.as_str()).map(one_line).unwrap_or_default();
                    format!("{field}: {message}")
                })
                .collect();
            out.push_str(&format!(" ({})", fields.join("; ")));
        }
        clip(&out, 400)
    }

    /// What an error answer means, after `attempts` calls with the token from `credential`.
    pub(super) fn failure(&self, expect: Expect, attempts: u32, credential: Credential) -> Fail {
        let problem = self.problem();
        let problem = if problem.is_empty() { String::new() } else { format!(": {problem}") };
        let status = self.status;
        let variable = credential.variable();
        Fail(match (status.as_u16(), expect) {
            (401, _) => format!("Gatehouse refused {variable} ({status}){problem}; {}", credential.hint()),
            (403, _) => format!("Gatehouse does not allow {variable} to do that ({status}){problem}"),
            (404, Expect::Change) => format!(
                "Gatehouse knows no change for this commit and environment ({status}){problem}; \
                 run `gatehouse ci request` first"
            ),
            (404, Expect::Request) => {
                format!("Gatehouse has no /v1/changes ({status}){problem}; check GATEHOUSE_URL")
            }
            _ if retryable(status) => {
                format!("Gatehouse still answered {status} after {}{problem}", attempts_text(attempts))
            }
            _ => format!("Gatehouse refused the call ({status}){problem}"),
        })
    }
}

/// 429 and 5xx that a later attempt may not get.
pub(super) fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

pub(super) fn unreachable_gate(base: &Url, transport: &str, attempts: u32) -> Fail {
    Fail(format!("cannot reach Gatehouse at {base} after {}: {transport}", attempts_text(attempts)))
}

impl Api {
    pub(super) fn new(gate: Gate, pacing: Pacing, command: &'static str) -> Result<Api, Fail> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-ci/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            // The job's token goes to Gatehouse only, never to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Fail(format!("the HTTP client could not be built: {e}")))?;
        Ok(Api { http, base: gate.base, auth: gate.auth, credential: gate.credential, pacing, command })
    }

    pub(super) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(super) fn change_url(&self, subject: &Subject) -> Url {
        self.endpoint(&["v1", "changes", &subject.project_id.to_string(), &subject.sha])
    }

    /// One call, no retries: the answer whatever its status, or why there was none.
    pub(super) async fn attempt<B: Serialize>(
        &self,
        method: Method,
        mut url: Url,
        environment: Option<&str>,
        body: Option<&B>,
    ) -> Result<Reply, String> {
        if let Some(env) = environment {
            url.query_pairs_mut().append_pair("environment", env);
        }
        let mut call = self.http.request(method, url).header(AUTHORIZATION, self.auth.clone());
        if let Some(body) = body {
            call = call.json(body);
        }
        let response = call.send().await.map_err(|e| transport_text(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
        let body = response.bytes().await.map_err(|e| transport_text(&e))?.to_vec();
        Ok(Reply { status, retry_after, body })
    }

    /// A call with retries on connection failures, 429 and 5xx (back-off 2, 4, 8 s, or the
    /// `Retry-After` when larger). Every call is safe to repeat: `POST /v1/changes` finds the
    /// change it created, a report of the same result is the same report.
    pub(super) async fn call<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        environment: Option<&str>,
        body: Option<&B>,
        expect: Expect,
    ) -> Result<Reply, Fail> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let backoff = self.pacing.retry_unit * 2u32.pow(attempts - 1);
            let give_up = |wait: Duration| attempts > MAX_RETRIES || wait > MAX_RETRY_AFTER;
            let (wait, problem) = match self.attempt(method.clone(), url.clone(), environment, body).await {
                Ok(reply) if reply.status.is_success() => return Ok(reply),
                Ok(reply) if !retryable(reply.status) => return Err(reply.failure(expect, attempts, self.credential)),
                Ok(reply) => {
                    let wait = backoff.max(reply.retry_after.unwrap_or_default());
                    if give_up(wait) {
                        return Err(reply.failure(expect, attempts, self.credential));
                    }
                    (wait, reply.status_text())
                }
                Err(transport) => {
                    if give_up(backoff) {
                        return Err(unreachable_gate(&self.base, &transport, attempts));
                    }
                    (backoff, format!("cannot reach Gatehouse: {transport}"))
                }
            };
            eprintln!("gatehouse ci {}: {problem}; trying again in {}", self.command, seconds(wait));
            tokio::time::sleep(wait).await;
        }
    }
}

/// A transport error with its causes ("… : tcp connect error: Connection refused"), on one line.
fn transport_text(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "the call failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut seen = Vec::new();
    while let Some(cause) = source {
        let part = one_line(&cause.to_string());
        if !part.is_empty() && !seen.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
            seen.push(part);
        }
        source = cause.source();
    }
    clip(&text, 300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::env::gatehouse_base;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn api_paths_keep_a_base_path_and_encode_nothing_unexpected() {
        let gate = Gate {
            base: gatehouse_base("https://api.example.com/prod").unwrap(),
            auth: HeaderValue::from_static("Bearer t"),
            credential: Credential::IdToken,
        };
        let api = Api::new(gate, Pacing { floor: S(10), retry_unit: S(2) }, "verify").unwrap();
        let subject = Subject { project_id: 4242, sha: "a".repeat(40), environment: "production".into() };
        assert_eq!(
            api.change_url(&subject).as_str(),
            format!("https://api.example.com/prod/v1/changes/4242/{}", "a".repeat(40))
        );
        assert_eq!(api.endpoint(&["v1", "changes"]).as_str(), "https://api.example.com/prod/v1/changes");
    }

    #[test]
    fn problem_details_are_summarised_without_the_rest_of_the_body() {
        let reply = Reply {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            retry_after: None,
            body: br#"{"type":"about:blank","title":"Invalid request","status":422,"detail":"1 field is invalid",
                      "errors":[{"field":"sha","message":"must be 40 hex digits"}],"debug":"secret"}"#
                .to_vec(),
        };
        let Fail(message) = reply.failure(Expect::Request, 1, Credential::IdToken);
        assert!(message.contains("Invalid request: 1 field is invalid (sha: must be 40 hex digits)"), "{message}");
        assert!(!message.contains("secret"));
        let same = Reply {
            status: StatusCode::UNAUTHORIZED,
            retry_after: None,
            body: br#"{"title":"Missing or invalid credentials","detail":"missing or invalid credentials"}"#.to_vec(),
        };
        let Fail(message) = same.failure(Expect::Change, 1, Credential::StaticToken);
        assert!(
            message.starts_with(
                "Gatehouse refused GATEHOUSE_TOKEN (401 Unauthorized): Missing or invalid credentials; check"
            ),
            "{message}"
        );
        assert!(message.contains("GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true"), "{message}");
        let Fail(message) = same.failure(Expect::Change, 1, Credential::IdToken);
        assert!(message.starts_with("Gatehouse refused GATEHOUSE_ID_TOKEN (401 Unauthorized): "), "{message}");
        assert!(message.contains("id_tokens:"), "{message}");
        let html = Reply { status: StatusCode::BAD_GATEWAY, retry_after: None, body: b"<html>oops</html>".to_vec() };
        let Fail(message) = html.failure(Expect::Change, 4, Credential::IdToken);
        assert_eq!(message, "Gatehouse still answered 502 Bad Gateway after 4 attempts");
    }
}
