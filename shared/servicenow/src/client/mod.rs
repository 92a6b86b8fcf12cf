//! [`Client`]: the Table API over HTTP, with authentication, retries, paging and checked writes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use domain::Error;
use domain::error::BoxError;
use domain::outbound::is_loopback;
use rand::Rng;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LINK, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use crate::config::{ServiceNowConfig, SnAuth};
use crate::query::{DisplayValue, Query};
use crate::record::Record;

/// Renew an OAuth token this long before ServiceNow says it expires.
pub const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);
/// How much of an upstream error message is kept (for logs only).
const MAX_MESSAGE: usize = 300;
/// Journal fields: every write appends an entry, so a blind retry would write it twice.
const JOURNAL_FIELDS: [&str; 2] = ["work_notes", "comments"];

mod change_api;
mod table;

/// A ServiceNow Table API client. Cheap to clone (one shared connection pool and token cache).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceNowConfig,
    /// The instance root, path without a trailing `/`.
    base: Url,
    http: reqwest::Client,
    /// `Basic …`, marked sensitive.
    basic: Option<HeaderValue>,
    token_url: Url,
    /// The current OAuth token; the lock also makes token requests one at a time.
    token: Mutex<Option<Arc<Token>>>,
}

struct Token {
    /// `Bearer …`, marked sensitive.
    header: HeaderValue,
    renew_at: Instant,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("instance_url", &self.instance_url())
            .field("auth", &self.inner.config.auth.kind())
            .finish()
    }
}

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
    fn parse(status: u16, body: &[u8]) -> UpstreamMessage {
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

// ---------------------------------------------------------------------------------------------
// Failures of one attempt, and what to do about them
// ---------------------------------------------------------------------------------------------

/// What a call was about, for the error's `system` and `detail`.
#[derive(Clone, Copy)]
struct Op<'a> {
    table: &'a str,
    target: Target<'a>,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Record(&'a str),
    List,
    Create,
}

impl Op<'_> {
    fn system(&self) -> String {
        format!("ServiceNow {}", self.table)
    }

    fn label(&self) -> String {
        match self.target {
            Target::Record(id) => format!("record {id}"),
            Target::List => "listing records".into(),
            Target::Create => "creating a record".into(),
        }
    }
}

struct Fail {
    /// The failure was the OAuth token request's, not the call's (nothing was written).
    token: bool,
    kind: FailKind,
}

enum FailKind {
    Status { status: u16, retry_after: Option<Duration>, upstream: UpstreamMessage },
    Transport(reqwest::Error),
    Unreadable(String),
}

impl Fail {
    fn transport(err: reqwest::Error, token: bool) -> Fail {
        Fail { token, kind: FailKind::Transport(err) }
    }

    async fn status(resp: Response, token: bool) -> Fail {
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        Fail { token, kind: FailKind::Status { status, retry_after, upstream: UpstreamMessage::parse(status, &body) } }
    }
}

enum Step {
    /// A 2xx answer.
    Done(Response),
    /// A 404.
    Missing,
    /// Worth another try. `ambiguous`: the request may have been processed (5xx, timeout).
    Retry {
        fail: Fail,
        wait: Option<Duration>,
        ambiguous: bool,
    },
    Stop(Fail),
}

fn classify(fail: Fail) -> Step {
    match &fail.kind {
        FailKind::Status { status: 429, retry_after, .. } => {
            let wait = *retry_after;
            Step::Retry { fail, wait, ambiguous: false }
        }
        FailKind::Status { status, retry_after, .. } if *status >= 500 => {
            let wait = *retry_after;
            let ambiguous = !fail.token;
            Step::Retry { fail, wait, ambiguous }
        }
        FailKind::Status { .. } | FailKind::Unreadable(_) => Step::Stop(fail),
        // Connecting failed: the request never left.
        FailKind::Transport(e) if e.is_connect() => Step::Retry { fail, wait: None, ambiguous: false },
        FailKind::Transport(_) => {
            let ambiguous = !fail.token;
            Step::Retry { fail, wait: None, ambiguous }
        }
    }
}

/// `Retry-After` in seconds (an HTTP date is ignored: backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

enum Authz {
    Basic(HeaderValue),
    Bearer(Arc<Token>),
}

impl Authz {
    fn header(&self) -> &HeaderValue {
        match self {
            Authz::Basic(h) => h,
            Authz::Bearer(t) => &t.header,
        }
    }
}

/// One HTTP request, replayable.
struct Req<'a> {
    method: Method,
    url: Url,
    body: Option<&'a Map<String, Value>>,
}

enum Written {
    /// The write went through; its answer.
    Now(Response),
    /// The check found the write already done; `by_us`: found after one of our attempts may
    /// have been applied (else it was there before we wrote).
    Already { found: Record, by_us: bool },
}

/// How a write that must happen once finds out whether it already did.
enum Check<'a> {
    /// A work note carrying the marker.
    WorkNote { table: &'a str, sys_id: &'a str, marker: &'a str },
    /// A record the query finds (and [`Query::matches`]).
    Existing { table: &'a str, query: &'a Query },
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
}

/// `POST /oauth_token.do`'s answer. No `Debug`: it holds the token.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

impl Client {
    /// Checks the configuration and builds the HTTP client (no call is made).
    pub fn new(config: ServiceNowConfig) -> Result<Client, Error> {
        let setup = |problem: &str| Error::internal_msg(format!("ServiceNow configuration: {problem}"));
        let mut base = Url::parse(config.instance_url.trim())
            .map_err(|_| setup("instance_url is not a valid URL (expected https://<instance>.service-now.com)"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(setup("instance_url must be an http(s) URL with a host"));
        }
        if base.scheme() == "http" && !is_loopback(&base) {
            return Err(setup(
                "instance_url (GATEHOUSE_SERVICENOW_URL) must be https (plain http only to a loopback host: \
                 127.0.0.0/8, ::1 or localhost)",
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(setup("instance_url must not carry credentials; set them in the auth settings"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(setup("instance_url must not have a query or a fragment"));
        }
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);
        let basic = match &config.auth {
            SnAuth::Basic { user, password } => {
                if user.is_empty() {
                    return Err(setup("the basic auth user is empty"));
                }
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let mut h = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| setup("the basic auth credentials cannot be sent in a header"))?;
                h.set_sensitive(true);
                Some(h)
            }
            SnAuth::OAuthClientCredentials { client_id, .. } => {
                if client_id.is_empty() {
                    return Err(setup("the OAuth client_id is empty"));
                }
                None
            }
        };
        if config.page_size == 0 || config.max_pages == 0 {
            return Err(setup("page_size and max_pages must be at least 1"));
        }
        // No redirect is followed: reqwest's default policy follows up to 10 and a 307/308 would
        // resend the body (the OAuth client secret, a record) elsewhere. `Policy::none()` "does not
        // follow any redirect" (docs.rs reqwest::redirect::Policy); `describe` reports the 3xx.
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-servicenow/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal("ServiceNow: the HTTP client could not be built", e))?;
        let token_url = join(&base, &["oauth_token.do"]);
        Ok(Client { inner: Arc::new(Inner { config, base, http, basic, token_url, token: Mutex::new(None) }) })
    }

    /// The instance URL as configured (without a trailing `/`).
    pub fn instance_url(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    /// The record's form in the ServiceNow UI: `https://instance/change_request.do?sys_id=…`.
    pub fn form_url(&self, table: &str, sys_id: &str) -> String {
        let mut u = join(&self.inner.base, &[&format!("{table}.do")]);
        u.query_pairs_mut().append_pair("sys_id", sys_id);
        u.to_string()
    }

    fn table_url(&self, table: &str, sys_id: Option<&str>) -> Url {
        let mut segs = vec!["api", "now", "table", table];
        segs.extend(sys_id);
        join(&self.inner.base, &segs)
    }

    /// A write's URL: stored values in and out, said explicitly.
    fn write_url(&self, table: &str, sys_id: Option<&str>) -> Url {
        let mut url = self.table_url(table, sys_id);
        url.query_pairs_mut()
            .append_pair("sysparm_display_value", DisplayValue::Stored.as_param())
            .append_pair("sysparm_input_display_value", "false");
        url
    }

    /// The next page's URL: the link's query on our own list URL, so a link naming another host
    /// (an alias of the instance, or anything else) never receives our credentials.
    fn follow(&self, op: &Op<'_>, list_url: &Url, link: &str) -> Result<Url, Error> {
        let bad = || self.fail(op, "listing records: sent a paging link that is not this table's", None);
        let parsed = self.inner.base.join(link).map_err(|_| bad())?;
        let expected = format!("/api/now/table/{}", op.table);
        if !parsed.path().trim_end_matches('/').ends_with(&expected) {
            return Err(bad());
        }
        let mut next = list_url.clone();
        next.set_query(parsed.query());
        Ok(next)
    }

    /// A call with retries. `Ok(None)` on 404. `idempotent`: whether a 5xx or a timeout (the
    /// request may have been processed) may be retried.
    async fn call(&self, op: &Op<'_>, req: &Req<'_>, idempotent: bool) -> Result<Option<Response>, Error> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.step(req).await {
                Step::Done(resp) => return Ok(Some(resp)),
                Step::Missing => return Ok(None),
                Step::Retry { fail, ambiguous: true, .. } if !idempotent => {
                    return Err(self.error(op, fail, attempt, true));
                }
                Step::Retry { fail, wait, .. } => {
                    if attempt > self.inner.config.max_retries {
                        return Err(self.error(op, fail, attempt, false));
                    }
                    self.pause(op, &fail, attempt, wait).await;
                }
                Step::Stop(fail) => return Err(self.error(op, fail, attempt, false)),
            }
        }
    }

    /// A write that must happen once: `check` (did it already happen?) runs before the first
    /// attempt and before every retry; a 5xx or a timeout is retried only after it.
    async fn write_checked(&self, op: &Op<'_>, req: &Req<'_>, check: Check<'_>) -> Result<Written, Error> {
        let mut attempt = 0u32;
        let mut maybe_applied = false;
        loop {
            attempt += 1;
            if let Some(found) = self.check(&check).await? {
                return Ok(Written::Already { found, by_us: maybe_applied });
            }
            match self.step(req).await {
                Step::Done(resp) => return Ok(Written::Now(resp)),
                Step::Missing => return Err(self.missing(op)),
                Step::Retry { fail, wait, ambiguous } => {
                    maybe_applied |= ambiguous;
                    if attempt > self.inner.config.max_retries {
                        return Err(self.error(op, fail, attempt, maybe_applied));
                    }
                    self.pause(op, &fail, attempt, wait).await;
                }
                Step::Stop(fail) => return Err(self.error(op, fail, attempt, false)),
            }
        }
    }

    async fn check(&self, check: &Check<'_>) -> Result<Option<Record>, Error> {
        match *check {
            Check::WorkNote { table, sys_id, marker } => {
                Ok(self.has_work_note(table, sys_id, marker).await?.then(Record::default))
            }
            Check::Existing { table, query } => {
                let limit = self.inner.config.page_size as usize;
                let found = self.query(table, query, &[], DisplayValue::Stored, limit).await?;
                Ok(found.into_iter().find(|r| query.matches(r)))
            }
        }
    }

    async fn pause(&self, op: &Op<'_>, fail: &Fail, attempt: u32, wait: Option<Duration>) {
        let cfg = &self.inner.config;
        let delay = match wait {
            Some(w) => w.min(cfg.max_retry_after),
            None => {
                let exp = cfg.retry_base_delay.saturating_mul(1u32 << (attempt - 1).min(20));
                let d = exp.min(cfg.retry_max_delay);
                // Jitter: somewhere in the upper half.
                let half = d / 2;
                half + half.mul_f64(rand::rng().random::<f64>())
            }
        };
        tracing::warn!(
            system = %op.system(),
            target = %op.label(),
            attempt,
            problem = %self.describe(fail),
            delay_ms = delay.as_millis() as u64,
            "ServiceNow call failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }

    /// One attempt: credentials, the request, and one re-authentication when ServiceNow refuses
    /// an OAuth token (401).
    async fn step(&self, req: &Req<'_>) -> Step {
        let resp = match self.attempt(req).await {
            Ok(resp) => resp,
            Err(fail) => return classify(fail),
        };
        let status = resp.status();
        if status.is_success() {
            Step::Done(resp)
        } else if status == StatusCode::NOT_FOUND {
            let _ = resp.bytes().await;
            Step::Missing
        } else {
            classify(Fail::status(resp, false).await)
        }
    }

    async fn attempt(&self, req: &Req<'_>) -> Result<Response, Fail> {
        let auth = self.authorization(None).await?;
        let resp = self.send(req, &auth).await?;
        if resp.status() == StatusCode::UNAUTHORIZED
            && let Authz::Bearer(rejected) = &auth
        {
            let _ = resp.bytes().await;
            tracing::info!(instance = %self.inner.base, "ServiceNow refused the OAuth token; requesting a new one");
            let auth = self.authorization(Some(rejected)).await?;
            return self.send(req, &auth).await;
        }
        Ok(resp)
    }

    async fn send(&self, req: &Req<'_>, auth: &Authz) -> Result<Response, Fail> {
        let started = Instant::now();
        let mut b = self
            .inner
            .http
            .request(req.method.clone(), req.url.clone())
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, auth.header().clone());
        if let Some(body) = req.body {
            b = b.json(body);
        }
        let result = b.send().await;
        tracing::debug!(
            method = %req.method,
            path = req.url.path(),
            status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ServiceNow call"
        );
        result.map_err(|e| Fail::transport(e, false))
    }

    /// The `Authorization` header: Basic, or the cached OAuth token (fetched when missing, near
    /// expiry, or just `rejected` by ServiceNow and not yet replaced by another call).
    async fn authorization(&self, rejected: Option<&Arc<Token>>) -> Result<Authz, Fail> {
        if let Some(basic) = &self.inner.basic {
            return Ok(Authz::Basic(basic.clone()));
        }
        let mut slot = self.inner.token.lock().await;
        if let Some(current) = slot.as_ref() {
            let was_rejected = rejected.is_some_and(|r| Arc::ptr_eq(r, current));
            if !was_rejected && Instant::now() < current.renew_at {
                return Ok(Authz::Bearer(current.clone()));
            }
        }
        *slot = None;
        let token = Arc::new(self.fetch_token().await?);
        *slot = Some(token.clone());
        Ok(Authz::Bearer(token))
    }

    async fn fetch_token(&self) -> Result<Token, Fail> {
        let SnAuth::OAuthClientCredentials { client_id, client_secret } = &self.inner.config.auth else {
            return Err(Fail { token: true, kind: FailKind::Unreadable("no OAuth credentials configured".into()) });
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret)
            .finish();
        let requested = Instant::now();
        let resp = self
            .inner
            .http
            .post(self.inner.token_url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Fail::transport(e, true))?;
        tracing::debug!(status = resp.status().as_u16(), "ServiceNow OAuth token request");
        if !resp.status().is_success() {
            return Err(Fail::status(resp, true).await);
        }
        let bytes = resp.bytes().await.map_err(|e| Fail::transport(e, true))?;
        let unreadable = |why: String| Fail { token: true, kind: FailKind::Unreadable(why) };
        let answer: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| unreadable(format!("token answer is not the expected JSON: {:?}", e.classify())))?;
        if answer.access_token.is_empty() {
            return Err(unreadable("token answer has an empty access_token".into()));
        }
        let lifetime = match &answer.expires_in {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0).max(0.0) as u64,
            Some(Value::String(s)) => s.trim().parse::<u64>().unwrap_or(0),
            _ => 0,
        };
        let renew_at = requested + Duration::from_secs(lifetime).saturating_sub(TOKEN_RENEW_MARGIN);
        let mut header = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| unreadable("token answer has an access_token that cannot be sent in a header".into()))?;
        header.set_sensitive(true);
        Ok(Token { header, renew_at })
    }

    async fn read<T: DeserializeOwned>(&self, op: &Op<'_>, resp: Response) -> Result<T, Error> {
        let bytes = resp.bytes().await.map_err(|e| self.error(op, Fail::transport(e, false), 1, false))?;
        serde_json::from_slice::<Envelope<T>>(&bytes).map(|e| e.result).map_err(|e| {
            self.error(op, Fail { token: false, kind: FailKind::Unreadable(format!("unexpected JSON: {e}")) }, 1, false)
        })
    }

    /// What went wrong, in our words (never the upstream's body).
    fn describe(&self, fail: &Fail) -> String {
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

    fn error(&self, op: &Op<'_>, fail: Fail, attempts: u32, maybe_applied: bool) -> Error {
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

    fn missing(&self, op: &Op<'_>) -> Error {
        self.fail(op, format!("{}: does not exist (HTTP 404)", op.label()), None)
    }

    fn fail(&self, op: &Op<'_>, detail: impl Into<String>, source: Option<BoxError>) -> Error {
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

fn join(base: &Url, segments: &[&str]) -> Url {
    let mut u = base.clone();
    if let Ok(mut p) = u.path_segments_mut() {
        p.pop_if_empty().extend(segments);
    }
    u
}

/// Table names: lowercase letters, digits and `_` (scoped tables too: `x_acme_app_thing`).
fn check_table(table: &str) -> Result<(), Error> {
    let ok = !table.is_empty()
        && table.len() <= 80
        && table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(Error::internal_msg(format!("ServiceNow: {table:?} is not a table name"))) }
}

/// A sys_id (32 hex digits) or another record key ServiceNow uses in its place: letters,
/// digits, `.`, `_` and `-`.
fn check_sys_id(sys_id: &str) -> Result<(), Error> {
    let ok = !sys_id.is_empty()
        && sys_id.len() <= 64
        && sys_id != "."
        && sys_id != ".."
        && sys_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(Error::invalid("sys_id", "is not a ServiceNow sys_id")) }
}

fn check_marker(marker: &str) -> Result<(), Error> {
    let ok = !marker.trim().is_empty()
        && marker.len() <= 200
        && marker.bytes().all(|b| (b.is_ascii_graphic() || b == b' ') && !b"<>&\"'".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("marker", "must be 1 to 200 printable ASCII characters without < > & \" '"))
    }
}

/// The target of the `rel="next"` link among the `Link` headers, as sent.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).find_map(|v| find_rel(v, "next"))
}

/// `<url>;rel="first",<url>;rel="next",…` → the URL whose `rel` includes `rel`.
fn find_rel(header: &str, rel: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let target = &after[..close];
        let tail = &after[close + 1..];
        let params_end = tail.find('<').unwrap_or(tail.len());
        for param in tail[..params_end].split(';') {
            let param = param.trim_matches(|c: char| c.is_whitespace() || c == ',');
            let Some((key, value)) = param.split_once('=') else { continue };
            if key.trim().eq_ignore_ascii_case("rel")
                && value.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case(rel))
            {
                return Some(target.to_string());
            }
        }
        rest = &tail[params_end..];
    }
    None
}

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

    #[test]
    fn finds_the_next_link() {
        let h = "<https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=0>;rel=\"first\",\
                 <https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=1>;rel=\"next\",\
                 <https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=9>;rel=\"last\"";
        assert_eq!(
            find_rel(h, "next").as_deref(),
            Some("https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=1")
        );
        assert_eq!(find_rel(h, "prev"), None);
        assert_eq!(find_rel("<a,b>; rel=\"prev next\"", "next").as_deref(), Some("a,b"));
        assert_eq!(find_rel("<x>; REL=next", "next").as_deref(), Some("x"));
        assert_eq!(find_rel("garbage", "next"), None);
        assert_eq!(find_rel("<unterminated", "next"), None);
        let mut headers = HeaderMap::new();
        headers.append(LINK, HeaderValue::from_static("<p>;rel=\"prev\""));
        headers.append(LINK, HeaderValue::from_static("<n>;rel=\"next\""));
        assert_eq!(next_link(&headers).as_deref(), Some("n"));
    }

    #[test]
    fn parses_servicenow_error_bodies() {
        let m = UpstreamMessage::parse(
            401,
            br#"{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}"#,
        );
        assert_eq!(m.message.as_deref(), Some("User Not Authenticated"));
        assert_eq!(m.to_string(), "HTTP 401: User Not Authenticated (Required to provide Auth information)");
        let o = UpstreamMessage::parse(401, br#"{"error_description":"access_denied","error":"server_error"}"#);
        assert_eq!(o.to_string(), "HTTP 401: server_error (access_denied)");
        assert_eq!(UpstreamMessage::parse(503, b"<html>").to_string(), "HTTP 503");
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(1000));
        assert!(UpstreamMessage::parse(500, long.as_bytes()).message.unwrap().chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn validates_names() {
        assert!(check_table("change_request").is_ok());
        assert!(check_table("x_acme_app_thing").is_ok());
        for bad in ["", "Change", "a/b", "a.b", "a?b"] {
            assert!(check_table(bad).is_err(), "{bad:?}");
        }
        assert!(check_sys_id("9d385017c611228701d22104cc95c371").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "a^b", "a?b"] {
            assert!(check_sys_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_marker("[gatehouse:REQ-1:msg-2]").is_ok());
        for bad in ["", " ", "a\nb", "<b>", "a&b", "é"] {
            assert!(check_marker(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_checks_its_configuration() {
        let basic = SnAuth::Basic { user: "u".into(), password: "p".into() };
        let ok = Client::new(ServiceNowConfig::new("https://acme.service-now.com/", basic.clone())).unwrap();
        assert_eq!(ok.instance_url(), "https://acme.service-now.com");
        assert_eq!(ok.form_url("change_request", "abc"), "https://acme.service-now.com/change_request.do?sys_id=abc");
        assert_eq!(
            ok.table_url("sc_req_item", Some("abc")).as_str(),
            "https://acme.service-now.com/api/now/table/sc_req_item/abc"
        );
        let proxied = Client::new(ServiceNowConfig::new("https://proxy/sn/", basic.clone())).unwrap();
        assert_eq!(proxied.table_url("x", None).as_str(), "https://proxy/sn/api/now/table/x");
        assert_eq!(proxied.inner.token_url.as_str(), "https://proxy/sn/oauth_token.do");
        for bad in ["", "acme.service-now.com", "ftp://x", "https://u:p@x", "https://x/?a=1", "https://x/#f"] {
            let err = Client::new(ServiceNowConfig::new(bad, basic.clone())).unwrap_err();
            assert!(!err.to_string().contains("p@x"), "{err}");
        }
        for plain in ["http://acme.service-now.com", "http://10.1.2.3:8080/sn", "http://localhost.example.com"] {
            let err = Client::new(ServiceNowConfig::new(plain, basic.clone())).unwrap_err().to_string();
            assert!(err.contains("GATEHOUSE_SERVICENOW_URL") && err.contains("must be https"), "{plain}: {err}");
        }
        for loopback in ["http://127.0.0.1:8080", "http://127.3.2.1/sn", "http://[::1]:1", "http://localhost:9"] {
            assert!(Client::new(ServiceNowConfig::new(loopback, basic.clone())).is_ok(), "{loopback}");
        }
        let no_user = SnAuth::Basic { user: String::new(), password: "p".into() };
        assert!(Client::new(ServiceNowConfig::new("https://x", no_user)).is_err());
        assert_eq!(format!("{ok:?}"), r#"Client { instance_url: "https://acme.service-now.com", auth: "basic" }"#);
    }
}
