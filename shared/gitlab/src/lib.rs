//! GitLab REST API v4 client for the CI change gate: the merge requests of a commit, notes on a
//! merge request, manual jobs, pipelines and deployment approvals.
//!
//! - Authenticates with a personal, group or project access token in `PRIVATE-TOKEN`; the token is
//!   never logged, shown by `Debug`, or put into an error.
//! - Each HTTP call has a timeout. Calls that can safely be repeated (reads, editing a note,
//!   approving a deployment, which GitLab records once per user) are retried on 429 (honouring
//!   `Retry-After` up to [`MAX_RETRY_AFTER`]), on 5xx, on timeouts and on connection failures,
//!   with capped exponential backoff, up to `max_retries` times. Calls that create something
//!   (a note, playing a job) are retried only when GitLab surely did not act: on 429, 503 and
//!   connection failures. [`Client::upsert_mr_note`] and [`Client::play_job`] then recover from a
//!   lost answer by looking at what happened (the marked note, the job's status).
//! - Failures become [`domain::Error`]: 404 is `NotFound`; everything else is
//!   `Upstream { system: "GitLab project {id}", detail }` with a sentence of ours as detail and
//!   GitLab's short message kept only as the source, for the log.
//! - Outbound rules: the URL must be https (plain http only to a loopback host), and a redirect
//!   is never followed (it would carry `PRIVATE-TOKEN` elsewhere): a 3xx is an upstream error.

mod code_host;
mod endpoints;
pub mod id_tokens;
mod releases;
mod types;

use std::fmt;
use std::time::{Duration, Instant};

use domain::Error;
use domain::outbound::is_loopback;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

pub use id_tokens::GitLabIdTokens;
pub use types::{
    Commit, Compare, Deployment, DeploymentApproval, Job, JobPipeline, MergeRequest, Note, Pipeline, TestReportSummary,
    TestReportTotal, User,
};

/// The longest `Retry-After` that is waited for; a longer one fails the call at once.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The first backoff between attempts; it doubles each time, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Page size for lists, and a bound on pages followed.
const PER_PAGE: &str = "100";
const MAX_PAGES: u32 = 100;
/// How much of GitLab's error message is kept for the log.
const MAX_MESSAGE: usize = 200;

/// Where GitLab is and how to talk to it.
#[derive(Clone)]
pub struct GitLabConfig {
    /// GitLab's address, e.g. `https://gitlab.example.com` (`/api/v4` is added unless present);
    /// https, or http only to a loopback host (127.0.0.0/8, `::1`, `localhost`).
    pub base_url: String,
    /// Sent as `PRIVATE-TOKEN`. Never shown by `Debug`.
    pub token: String,
    /// For each HTTP call (connect, answer and body).
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

impl GitLabConfig {
    /// A 10 s timeout and 3 retries.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        GitLabConfig {
            base_url: base_url.into(),
            token: token.into(),
            timeout: Duration::from_secs(10),
            max_retries: 3,
        }
    }
}

impl fmt::Debug for GitLabConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabConfig")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// A GitLab API client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `…/api/v4`.
    api: Url,
    token: HeaderValue,
    timeout: Duration,
    max_retries: u32,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("gitlab::Client")
            .field("api", &self.api.as_str())
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// Whether a call may be sent again after a failure that might have come after GitLab acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Repeating it does no harm: retried on 429, 5xx, timeouts and connection failures.
    Idempotent,
    /// It creates something: retried only on 429, 503 and connection failures.
    Unprocessed,
}

/// One API call.
struct Call {
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    retry: Retry,
    /// What Gatehouse was trying to do, after "could not": "play job 77001".
    what: String,
    /// What a 404 means is missing: "job 77001".
    thing: String,
}

/// How a call failed, before it becomes a [`domain::Error`].
#[derive(Debug)]
enum Failure {
    Status { status: StatusCode, message: Option<String>, attempts: u32, retry_after: Option<Duration> },
    Transport { error: reqwest::Error, attempts: u32 },
    Decode { error: serde_json::Error },
}

impl Failure {
    /// GitLab may have acted on the call even though it failed.
    fn maybe_processed(&self) -> bool {
        match self {
            Failure::Status { status, .. } => status.is_server_error() && *status != StatusCode::SERVICE_UNAVAILABLE,
            Failure::Transport { error, .. } => !error.is_connect(),
            Failure::Decode { .. } => true,
        }
    }
}

impl Client {
    pub fn new(cfg: GitLabConfig) -> Result<Client, Error> {
        let setup = |problem: &str| Error::internal_msg(format!("GitLab configuration: {problem}"));
        let mut api = Url::parse(cfg.base_url.trim())
            .map_err(|_| setup(&format!("base URL \"{}\" is not a valid URL", cfg.base_url)))?;
        if !matches!(api.scheme(), "http" | "https") || api.cannot_be_a_base() {
            return Err(setup(&format!("base URL \"{}\" is not an http(s) URL", cfg.base_url)));
        }
        if api.scheme() == "http" && !is_loopback(&api) {
            return Err(setup(&format!(
                "the URL (GATEHOUSE_GITLAB_URL) \"{}\" must be https (plain http only to a loopback host: \
                 127.0.0.0/8, ::1 or localhost)",
                cfg.base_url
            )));
        }
        api.set_query(None);
        api.set_fragment(None);
        let segments: Vec<String> =
            api.path_segments().map(|s| s.filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default();
        if let Ok(mut path) = api.path_segments_mut() {
            path.clear().extend(&segments);
            if !segments.ends_with(&["api".to_string(), "v4".to_string()]) {
                path.extend(["api", "v4"]);
            }
        }
        if cfg.token.trim().is_empty() {
            return Err(setup("the token is empty"));
        }
        let mut token = HeaderValue::from_str(cfg.token.trim())
            .map_err(|_| setup("the token contains characters that cannot be sent in a header"))?;
        token.set_sensitive(true);
        if cfg.timeout.is_zero() {
            return Err(setup("the timeout must be more than zero"));
        }
        // No redirect is followed: reqwest's default policy follows up to 10 and, across hosts,
        // strips only Authorization, Cookie and the like (reqwest 0.13 src/redirect.rs,
        // `remove_sensitive_headers`), so PRIVATE-TOKEN would travel on. `Policy::none()` "does
        // not follow any redirect" (docs.rs reqwest::redirect::Policy); `fail` reports the 3xx.
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-gitlab/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal("GitLab configuration: the HTTP client could not be built", e))?;
        Ok(Client { http, api, token, timeout: cfg.timeout, max_retries: cfg.max_retries })
    }

    /// The API root, `…/api/v4`.
    pub fn api_url(&self) -> &str {
        self.api.as_str()
    }

    // -----------------------------------------------------------------------------------------
    // Transport
    // -----------------------------------------------------------------------------------------

    fn url(&self, call: &Call, page: Option<u32>) -> Url {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&call.segments);
        }
        if !call.query.is_empty() || page.is_some() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &call.query {
                q.append_pair(k, v);
            }
            if let Some(page) = page {
                q.append_pair("per_page", PER_PAGE);
                q.append_pair("page", &page.to_string());
            }
        }
        url
    }

    /// Sends a call, retrying as its [`Retry`] allows; answers the headers and body of a 2xx.
    async fn send(&self, project_id: u64, call: &Call, page: Option<u32>) -> Result<(HeaderMap, Vec<u8>), Failure> {
        let url = self.url(call, page);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let last = attempt > self.max_retries;
            let mut req = self
                .http
                .request(call.method.clone(), url.clone())
                .header("PRIVATE-TOKEN", self.token.clone())
                .header(ACCEPT, "application/json");
            if let Some(body) = &call.body {
                req = req.json(body);
            }
            let started = Instant::now();
            let result = req.send().await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let resp = match result {
                Ok(resp) => resp,
                Err(error) => {
                    tracing::debug!(project_id, method = %call.method, path = url.path(), attempt, elapsed_ms, error = %error, "GitLab call failed");
                    let retriable = error.is_connect() || (call.retry == Retry::Idempotent && error.is_timeout());
                    if retriable && !last {
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(Failure::Transport { error, attempts: attempt });
                }
            };
            let status = resp.status();
            tracing::debug!(project_id, method = %call.method, path = url.path(), status = status.as_u16(), attempt, elapsed_ms, "GitLab call");
            if status.is_success() {
                let headers = resp.headers().clone();
                let body = match resp.bytes().await {
                    Ok(b) => b.to_vec(),
                    Err(error) => return Err(Failure::Transport { error, attempts: attempt }),
                };
                return Ok((headers, body));
            }
            let retry_after = retry_after(resp.headers());
            let message = upstream_message(&resp.bytes().await.unwrap_or_default());
            let retriable = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE
                || (call.retry == Retry::Idempotent && status.is_server_error());
            let wait = retry_after.unwrap_or_else(|| backoff(attempt));
            if retriable && !last && wait <= MAX_RETRY_AFTER {
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(Failure::Status { status, message, attempts: attempt, retry_after });
        }
    }

    async fn fetch<T: DeserializeOwned>(&self, project_id: u64, call: &Call) -> Result<T, Failure> {
        let (_, body) = self.send(project_id, call, None).await?;
        serde_json::from_slice(&body).map_err(|error| Failure::Decode { error })
    }

    /// Every page of a list call (GitLab's `X-Next-Page`).
    async fn list<T: DeserializeOwned>(&self, project_id: u64, call: Call) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let (headers, body) =
                self.send(project_id, &call, Some(page)).await.map_err(|f| self.fail(project_id, &call, f))?;
            let items: Vec<T> = serde_json::from_slice(&body)
                .map_err(|error| self.fail(project_id, &call, Failure::Decode { error }))?;
            out.extend(items);
            let next = headers
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|n| *n > page);
            match next {
                Some(n) if n <= MAX_PAGES => page = n,
                Some(_) => {
                    tracing::warn!(project_id, what = %call.what, pages = MAX_PAGES, "GitLab list cut short");
                    return Ok(out);
                }
                None => return Ok(out),
            }
        }
    }

    /// The error Gatehouse reports for a failed call.
    fn fail(&self, project_id: u64, call: &Call, failure: Failure) -> Error {
        let system = format!("GitLab project {project_id}");
        let (detail, cause): (String, String) = match &failure {
            Failure::Status { status, .. } if *status == StatusCode::NOT_FOUND => {
                tracing::info!(project_id, what = %call.what, "GitLab answered 404");
                return Error::NotFound(format!("{} in {system}", call.thing));
            }
            Failure::Status { status, message, attempts, retry_after } => {
                let code = status.as_u16();
                let desc = match *status {
                    StatusCode::UNAUTHORIZED => "GitLab refused Gatehouse's token (HTTP 401)".to_string(),
                    StatusCode::FORBIDDEN => {
                        "GitLab did not allow it (HTTP 403): the token's user lacks the permission, or it cannot be done \
                         in the current state"
                            .to_string()
                    }
                    StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                        format!("GitLab refused the request (HTTP {code})")
                    }
                    StatusCode::CONFLICT => "GitLab answered HTTP 409 (conflict)".to_string(),
                    s if s.is_redirection() => format!(
                        "GitLab answered with a redirect (HTTP {code}), which Gatehouse does not follow; \
                         check GATEHOUSE_GITLAB_URL"
                    ),
                    StatusCode::TOO_MANY_REQUESTS => match retry_after {
                        Some(wait) if *wait > MAX_RETRY_AFTER => {
                            format!("GitLab is rate limiting Gatehouse (HTTP 429) and asked it to wait {} s", wait.as_secs())
                        }
                        _ => format!("GitLab is rate limiting Gatehouse (HTTP 429; {})", tries(*attempts)),
                    },
                    s if s.is_server_error() => format!("GitLab answered HTTP {code} ({})", tries(*attempts)),
                    _ => format!("GitLab answered HTTP {code}"),
                };
                (desc, format!("HTTP {code}: {}", message.as_deref().unwrap_or("")))
            }
            Failure::Transport { error, attempts } => {
                let desc = if error.is_timeout() {
                    format!("GitLab did not answer within {} ({})", human(self.timeout), tries(*attempts))
                } else if error.is_connect() {
                    format!("GitLab could not be reached ({})", tries(*attempts))
                } else if error.is_body() || error.is_decode() {
                    "GitLab's answer could not be read".to_string()
                } else {
                    "GitLab could not be called".to_string()
                };
                (desc, error.to_string())
            }
            Failure::Decode { error } => {
                ("GitLab sent an answer Gatehouse does not understand".to_string(), format!("unexpected JSON: {error}"))
            }
        };
        let detail = format!("could not {}: {detail}", call.what);
        tracing::warn!(project_id, %detail, cause = %cause, "GitLab call failed");
        match failure {
            Failure::Transport { error, .. } => Error::upstream_caused(system, detail, error),
            _ => Error::upstream_caused(system, detail, cause),
        }
    }
}

fn create_note_call(project_id: u64, mr_iid: u64, body: &str) -> Call {
    Call {
        method: Method::POST,
        segments: segs(project_id, &["merge_requests", &mr_iid.to_string(), "notes"]),
        query: Vec::new(),
        body: Some(json!({ "body": body })),
        retry: Retry::Unprocessed,
        what: format!("add a note to merge request !{mr_iid}"),
        thing: format!("merge request !{mr_iid}"),
    }
}

/// `projects/{id}/…` as path segments (each escaped on its own).
fn segs(project_id: u64, rest: &[&str]) -> Vec<String> {
    let mut out = vec!["projects".to_string(), project_id.to_string()];
    out.extend(rest.iter().map(|s| s.to_string()));
    out
}

fn tries(attempts: u32) -> String {
    if attempts == 1 { "1 attempt".to_string() } else { format!("{attempts} attempts") }
}

/// Exponential backoff from [`FIRST_BACKOFF`], capped at [`MAX_BACKOFF`], with jitter (50–100 %).
fn backoff(attempt: u32) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let factor: f64 = rand::random_range(0.5..=1.0);
    exp.mul_f64(factor)
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// GitLab's `message` (or `error`) from an error body, on one line and cut short; else the start
/// of the text.
fn upstream_message(body: &[u8]) -> Option<String> {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let m = v.get("message").or_else(|| v.get("error"))?;
        Some(match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    })
}

/// `10 s`, `250 ms`.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(GitLabConfig::new(base, "glpat-secret-token")).unwrap()
    }

    #[test]
    fn the_api_root_is_found() {
        assert_eq!(client("https://gitlab.example.com").api_url(), "https://gitlab.example.com/api/v4");
        assert_eq!(client("https://gitlab.example.com/").api_url(), "https://gitlab.example.com/api/v4");
        assert_eq!(client("https://example.com/gitlab/").api_url(), "https://example.com/gitlab/api/v4");
        assert_eq!(client("https://gitlab.example.com/api/v4/").api_url(), "https://gitlab.example.com/api/v4");
    }

    #[test]
    fn urls_escape_each_segment() {
        let c = client("https://gitlab.example.com");
        let call = create_note_call(4242, 7, "x");
        assert_eq!(
            c.url(&call, None).as_str(),
            "https://gitlab.example.com/api/v4/projects/4242/merge_requests/7/notes"
        );
        let call = Call {
            method: Method::GET,
            segments: segs(1, &["repository", "commits", "a/b?c", "merge_requests"]),
            query: vec![("sort", "asc".into())],
            body: None,
            retry: Retry::Idempotent,
            what: String::new(),
            thing: String::new(),
        };
        assert_eq!(
            c.url(&call, Some(2)).as_str(),
            "https://gitlab.example.com/api/v4/projects/1/repository/commits/a%2Fb%3Fc/merge_requests?sort=asc&per_page=100&page=2"
        );
    }

    #[test]
    fn bad_configuration_is_refused_without_showing_the_token() {
        for (base, token) in
            [("not a url", "t"), ("ftp://x", "t"), ("https://x", " "), ("https://x", "bad\ntoken-secret")]
        {
            let err = Client::new(GitLabConfig::new(base, token)).unwrap_err();
            assert!(!err.chain().contains("secret"), "{err}");
        }
        let mut cfg = GitLabConfig::new("https://x", "t");
        cfg.timeout = Duration::ZERO;
        assert!(Client::new(cfg).is_err());
    }

    #[test]
    fn the_url_is_https_except_on_loopback() {
        for ok in [
            "https://gitlab.example.com",
            "http://127.0.0.1:8929",
            "http://127.9.9.9",
            "http://[::1]:80",
            "http://localhost/",
        ] {
            assert!(Client::new(GitLabConfig::new(ok, "t")).is_ok(), "{ok}");
        }
        for bad in ["http://gitlab.example.com", "http://10.0.0.5:8080/gitlab", "http://localhost.example.com"] {
            let err = Client::new(GitLabConfig::new(bad, "t")).unwrap_err().to_string();
            assert!(err.contains("GATEHOUSE_GITLAB_URL") && err.contains("must be https"), "{err}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let cfg = GitLabConfig::new("https://gitlab.example.com", "glpat-secret-token");
        assert!(!format!("{cfg:?}").contains("secret"));
        assert!(format!("{cfg:?}").contains("<redacted>"));
        let c = Client::new(cfg).unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::to_string(&later.to_zoned(jiff::tz::TimeZone::UTC)).unwrap();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..40 {
            let b = backoff(attempt);
            assert!(b <= MAX_BACKOFF, "{attempt}: {b:?}");
            assert!(b >= FIRST_BACKOFF / 2, "{attempt}: {b:?}");
        }
        assert!(backoff(1) <= FIRST_BACKOFF);
        assert!(backoff(10) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn upstream_messages_are_short_and_on_one_line() {
        assert_eq!(upstream_message(br#"{"message":"403 Forbidden"}"#).as_deref(), Some("403 Forbidden"));
        assert_eq!(upstream_message(br#"{"error":"body is missing"}"#).as_deref(), Some("body is missing"));
        assert_eq!(upstream_message(br#"{"message":{"base":["x"]}}"#).as_deref(), Some(r#"{"base":["x"]}"#));
        assert_eq!(upstream_message(b"Retry later\n").as_deref(), Some("Retry later"));
        assert_eq!(upstream_message(b"").as_deref(), None);
        let long = "x".repeat(500);
        assert_eq!(upstream_message(long.as_bytes()).unwrap().chars().count(), MAX_MESSAGE + 1);
    }
}
