//! One call end to end: the request (replayable, with its credentials and one
//! re-authentication), the answer read from its `{"result": …}` envelope, retries with capped
//! exponential backoff, writes that must happen once (`Client::write_checked`), and
//! `Link: rel="next"` paging.

use std::time::{Duration, Instant};

use domain::Error;
use rand::Rng;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, LINK};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

use super::Client;
use super::auth::Authz;
use super::failure::{Fail, FailKind, Op};
use crate::query::{DisplayValue, Query};
use crate::record::Record;

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

/// One HTTP request, replayable.
pub(super) struct Req<'a> {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) body: Option<&'a Map<String, Value>>,
}

pub(super) enum Written {
    /// The write went through; its answer.
    Now(Response),
    /// The check found the write already done; `by_us`: found after one of our attempts may
    /// have been applied (else it was there before we wrote).
    Already { found: Record, by_us: bool },
}

/// How a write that must happen once finds out whether it already did.
pub(super) enum Check<'a> {
    /// A work note carrying the marker.
    WorkNote { table: &'a str, sys_id: &'a str, marker: &'a str },
    /// A record the query finds (and [`Query::matches`]).
    Existing { table: &'a str, query: &'a Query },
}

#[derive(Deserialize)]
struct Envelope<T> {
    result: T,
}

impl Client {
    /// The next page's URL: the link's query on our own list URL, so a link naming another host
    /// (an alias of the instance, or anything else) never receives our credentials.
    pub(super) fn follow(&self, op: &Op<'_>, list_url: &Url, link: &str) -> Result<Url, Error> {
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
    pub(super) async fn call(&self, op: &Op<'_>, req: &Req<'_>, idempotent: bool) -> Result<Option<Response>, Error> {
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
    pub(super) async fn write_checked(&self, op: &Op<'_>, req: &Req<'_>, check: Check<'_>) -> Result<Written, Error> {
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

    pub(super) async fn read<T: DeserializeOwned>(&self, op: &Op<'_>, resp: Response) -> Result<T, Error> {
        let bytes = resp.bytes().await.map_err(|e| self.error(op, Fail::transport(e, false), 1, false))?;
        serde_json::from_slice::<Envelope<T>>(&bytes).map(|e| e.result).map_err(|e| {
            self.error(op, Fail { token: false, kind: FailKind::Unreadable(format!("unexpected JSON: {e}")) }, 1, false)
        })
    }
}

/// The target of the `rel="next"` link among the `Link` headers, as sent.
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).find_map(|v| find_rel(v, "next"))
}

/// `<url>;rel="first",<url>;rel="next",…` → the URL whose `rel` includes `rel`.
pub(super) fn find_rel(header: &str, rel: &str) -> Option<String> {
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
