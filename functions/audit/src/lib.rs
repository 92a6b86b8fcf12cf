//! The `audit` function (DESIGN.md "Audit evidence"), scope `audit`:
//!
//! - `GET /v1/requests/{id}/evidence`: a provisioning request's evidence record (`record`), as
//!   JSON, or as a printable HTML page (`page`) with `Accept: text/html`;
//! - `GET /v1/audit/export?since=&until=&cursor=&limit=`: every request whose last write lies in
//!   [`since`, `until`), as JSON Lines (`application/jsonl`, one evidence record a line), in
//!   (`updated_at`, id) order, a page at a time: at most `PAGE_SIZE` records and about
//!   `PAGE_BYTES`, well inside Lambda's 6 MB response, with `Link: <…>; rel="next"` while more
//!   remain.
//!
//! Change records (the CI gate) have no history chain yet, so no evidence route or export lines.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

pub mod page;
pub mod record;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::config::{ApiTokens, Scope};
use domain::model::RequestId;
use domain::usecases::Services;
use domain::usecases::audit::{Period, Position};
use domain::{Error, Result};
use futures::{StreamExt, TryStreamExt};
use http_api::{Access, ApiError, Mounted, Routes};
use jiff::Timestamp;
use serde_json::Value;

/// The most records one export page holds (and the cap of `limit`).
pub const PAGE_SIZE: usize = 200;
/// About the most bytes of records one page holds: a page stops before the record that would pass
/// it (but holds at least one). Lambda answers at most 6 MB, its JSON envelope included.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// The export's media type: JSON Lines, one evidence record a line. (lambda_http sends a body
/// whose type starts with `application/json` as text; `application/x-ndjson` would go base64,
/// a third larger against Lambda's 6 MB.)
pub const JSON_LINES: &str = "application/jsonl";
/// How many records of a page are read at once (each is a few store round trips on DynamoDB).
const RECORDS_AT_ONCE: usize = 16;

fn parse_id(id: &str) -> Result<RequestId> {
    RequestId::parse(id).ok_or_else(|| Error::NotFound(format!("request {id:?}")))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// Every answer: never cached, never referred.
fn private(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

async fn evidence(
    State(services): State<Services>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let request = services.store.get(&id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
    let record = record::evidence(&services, &request).await?;
    if !wants_html(&headers) {
        return Ok(private(axum::Json(record).into_response()));
    }
    let mut resp = axum::response::Html(page::render(&record)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(page::CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(private(resp))
}

/// The export's query: `since` (required), `until`, `cursor`, `limit`; anything else, or a name
/// given twice, is a 422 naming it.
#[derive(Default)]
struct ExportQuery {
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

impl ExportQuery {
    fn parse(raw: Option<&str>) -> Result<ExportQuery> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| Error::invalid("query", "is not a URL-encoded query string"))?;
        let mut query = ExportQuery::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "since" => &mut query.since,
                "until" => &mut query.until,
                "cursor" => &mut query.cursor,
                "limit" => &mut query.limit,
                _ => {
                    return Err(Error::invalid(name, "is not a parameter of the export (since, until, cursor, limit)"));
                }
            };
            if slot.replace(value).is_some() {
                return Err(Error::invalid(name, "is given more than once"));
            }
        }
        Ok(query)
    }

    /// `limit`: 1 or more, at most `PAGE_SIZE` counted (a larger one is the page size).
    fn limit(&self) -> Result<usize> {
        match &self.limit {
            None => Ok(PAGE_SIZE),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n.min(PAGE_SIZE)),
                _ => Err(Error::invalid("limit", format!("must be a whole number from 1 to {PAGE_SIZE}"))),
            },
        }
    }
}

/// The next page's URL: the same period (its `until` fixed, so the walk does not grow while it
/// runs), after `last`.
fn next_link(period: &Period, last: &Position, limit: Option<&str>) -> String {
    let (since, until, cursor) = (period.since.to_string(), period.until.to_string(), last.to_cursor());
    let mut pairs = vec![("since", since.as_str()), ("until", until.as_str()), ("cursor", cursor.as_str())];
    if let Some(limit) = limit {
        pairs.push(("limit", limit));
    }
    // Plain strings: URL-encoding them cannot fail.
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("</v1/audit/export?{query}>; rel=\"next\"")
}

async fn export(State(services): State<Services>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let query = ExportQuery::parse(raw.as_deref())?;
    let limit = query.limit()?;
    let period = Period::parse(query.since.as_deref(), query.until.as_deref(), Timestamp::now())?;
    let after = query.cursor.as_deref().map(|c| Position::from_cursor(c, &period)).transpose()?;
    let page = services.touched_page(&period, after.as_ref(), limit).await?;
    let services = &services;
    let requests: Vec<_> = page.candidates.iter().map(|c| c.request.clone()).collect();
    let records: Vec<Option<Value>> = futures::stream::iter(requests)
        .map(move |request| async move {
            match request {
                Some(request) => record::evidence(services, &request).await.map(Some),
                None => Ok(None),
            }
        })
        .buffered(RECORDS_AT_ONCE)
        .try_collect()
        .await?;
    let mut body = String::new();
    let mut last = None;
    let mut cut = false;
    for (candidate, record) in page.candidates.iter().zip(records) {
        if let Some(record) = record {
            let line = record.to_string();
            if !body.is_empty() && body.len() + line.len() + 1 > PAGE_BYTES {
                cut = true;
                break;
            }
            body.push_str(&line);
            body.push('\n');
        }
        last = Some(&candidate.position);
    }
    let mut resp =
        (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_LINES))], body).into_response();
    if let Some(last) = last.filter(|_| cut || page.more) {
        let link = next_link(&period, last, query.limit.as_deref());
        let value = HeaderValue::from_str(&link).map_err(|e| Error::internal("the export's Link header", e))?;
        resp.headers_mut().insert(header::LINK, value);
    }
    Ok(private(resp))
}

pub fn router(services: Services, tokens: ApiTokens) -> Mounted {
    let audit = Access::Scope(Scope::Audit);
    Routes::new(tokens)
        .add(Method::GET, "/v1/requests/{id}/evidence", audit, evidence)
        .add(Method::GET, "/v1/audit/export", audit, export)
        .with_state(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid(errors) => errors[0].field.clone(),
            other => panic!("not a 422: {other}"),
        }
    }

    #[test]
    fn the_query_names_what_is_wrong() {
        let q = ExportQuery::parse(Some("since=2026-01-01T00%3A00%3A00Z&limit=5")).unwrap();
        assert_eq!(q.since.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(q.limit().unwrap(), 5);
        assert_eq!(ExportQuery::parse(Some("limit=100000")).unwrap().limit().unwrap(), PAGE_SIZE);
        assert_eq!(ExportQuery::parse(None).unwrap().limit().unwrap(), PAGE_SIZE);
        for bad in ["limit=0", "limit=-1", "limit=ten"] {
            assert_eq!(field_of(ExportQuery::parse(Some(bad)).unwrap().limit().unwrap_err()), "limit", "{bad}");
        }
        assert_eq!(field_of(ExportQuery::parse(Some("since=a&since=b")).err().unwrap()), "since");
        assert_eq!(field_of(ExportQuery::parse(Some("from=2026")).err().unwrap()), "from");
    }

    #[test]
    fn the_next_link_keeps_the_period_and_encodes_the_cursor() {
        let period =
            Period { since: "2026-01-01T00:00:00Z".parse().unwrap(), until: "2026-02-01T00:00:00Z".parse().unwrap() };
        let last = Position { updated_at: "2026-01-02T00:00:00Z".parse().unwrap(), id: RequestId::generate() };
        let link = next_link(&period, &last, Some("5"));
        assert_eq!(
            link,
            format!(
                "</v1/audit/export?since=2026-01-01T00%3A00%3A00Z&until=2026-02-01T00%3A00%3A00Z&cursor={}&limit=5>; rel=\"next\"",
                last.to_cursor()
            )
        );
    }
}
