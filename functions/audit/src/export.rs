//! `GET /v1/audit/export?since=&until=&cursor=&limit=`: every record whose last write lies in
//! [`since`, `until`) as JSON Lines (`application/jsonl`, one evidence record a line): first the
//! provisioning requests in (`updated_at`, id) order, then the change records in (`updated_at`,
//! key) order. A page at a time: at most `PAGE_SIZE` records and about `PAGE_BYTES`, well inside
//! Lambda's 6 MB response, with `Link: <…>; rel="next"` while more remain.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::usecases::Services;
use domain::usecases::audit::{ExportCursor, Period};
use domain::{Error, Result};
use http_api::ApiError;
use jiff::Timestamp;

use crate::{change_record, private, record};

/// The most records one export page holds (and the cap of `limit`).
pub const PAGE_SIZE: usize = 200;
/// About the most bytes of records one page holds: a page stops before the record that would pass
/// it (but holds at least one). Lambda answers at most 6 MB, its JSON envelope included.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// The export's media type: JSON Lines, one evidence record a line. (lambda_http sends a body
/// whose type starts with `application/json` as text; `application/x-ndjson` would go base64,
/// a third larger against Lambda's 6 MB.)
pub const JSON_LINES: &str = "application/jsonl";

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
/// runs), from `cursor`.
fn next_link(period: &Period, cursor: &ExportCursor, limit: Option<&str>) -> String {
    let (since, until, cursor) = (period.since.to_string(), period.until.to_string(), cursor.to_cursor());
    let mut pairs = vec![("since", since.as_str()), ("until", until.as_str()), ("cursor", cursor.as_str())];
    if let Some(limit) = limit {
        pairs.push(("limit", limit));
    }
    // Plain strings: URL-encoding them cannot fail.
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("</v1/audit/export?{query}>; rel=\"next\"")
}

/// A page's body as it fills: lines up to `PAGE_BYTES` (at least one) and `limit` places.
struct Body {
    text: String,
    room: usize,
}

impl Body {
    /// Adds a record's line; `false` (nothing added) when it would pass the byte budget.
    fn push(&mut self, line: &str) -> bool {
        if !self.text.is_empty() && self.text.len() + line.len() + 1 > PAGE_BYTES {
            return false;
        }
        self.text.push_str(line);
        self.text.push('\n');
        true
    }
}

/// The requests' part of a page after `after`; answers where the next page starts, if not among
/// the change records from their start.
async fn requests(
    services: &Services,
    period: &Period,
    after: Option<&domain::usecases::audit::Position>,
    body: &mut Body,
) -> Result<Option<ExportCursor>> {
    let (candidates, more) = services.touched_reads(period, after, body.room).await?;
    let (positions, reads): (Vec<_>, Vec<_>) = candidates.into_iter().map(|c| (c.position, c.read)).unzip();
    let render = |read: Option<_>| read.map(|read| record::evidence(&read).to_line()).transpose();
    let lines = domain::parallel::map_in_chunks(reads, render).await?.into_iter().collect::<Result<Vec<_>>>()?;
    let mut last = None;
    for (position, line) in positions.into_iter().zip(lines) {
        if let Some(line) = line
            && !body.push(&line)
        {
            return Ok(last.map(ExportCursor::Request).or(after.cloned().map(ExportCursor::Request)));
        }
        body.room -= 1;
        last = Some(position);
    }
    match last {
        Some(last) if more => Ok(Some(ExportCursor::Request(last))),
        _ => Ok(None),
    }
}

/// The change records' part of a page after `after`; answers where the next page starts, if any.
async fn changes(
    services: &Services,
    period: &Period,
    after: Option<&domain::usecases::audit::ChangePosition>,
    body: &mut Body,
) -> Result<Option<ExportCursor>> {
    let page = services.changes_page(period, after, body.room).await?;
    let mut last = after.cloned();
    for candidate in &page.candidates {
        if let Some(rec) = &candidate.record
            && !body.push(&change_record::evidence(services, rec).to_string())
        {
            return Ok(Some(ExportCursor::Change(last)));
        }
        body.room -= 1;
        last = Some(candidate.position.clone());
    }
    Ok(page.more.then_some(ExportCursor::Change(last)))
}

pub async fn export(State(services): State<Services>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let query = ExportQuery::parse(raw.as_deref())?;
    let limit = query.limit()?;
    let period = Period::parse(query.since.as_deref(), query.until.as_deref(), Timestamp::now())?;
    let cursor = query.cursor.as_deref().map(|c| ExportCursor::from_cursor(c, &period)).transpose()?;
    let mut body = Body { text: String::new(), room: limit };
    let next = match cursor {
        None | Some(ExportCursor::Request(_)) => {
            let after = match &cursor {
                Some(ExportCursor::Request(p)) => Some(p),
                _ => None,
            };
            match requests(&services, &period, after, &mut body).await? {
                Some(next) => Some(next),
                // The requests are done: the change records follow, in this page while it has room.
                None if body.room > 0 => changes(&services, &period, None, &mut body).await?,
                // A full page: the next one starts the change records, if the period has any.
                None => services.changes_page(&period, None, 0).await?.more.then_some(ExportCursor::Change(None)),
            }
        }
        Some(ExportCursor::Change(after)) => changes(&services, &period, after.as_ref(), &mut body).await?,
    };
    let mut resp =
        (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_LINES))], body.text).into_response();
    if let Some(next) = next {
        let link = next_link(&period, &next, query.limit.as_deref());
        let value = HeaderValue::from_str(&link).map_err(|e| Error::internal("the export's Link header", e))?;
        resp.headers_mut().insert(header::LINK, value);
    }
    Ok(private(resp))
}

#[cfg(test)]
mod tests {
    use domain::model::RequestId;
    use domain::usecases::audit::Position;

    use super::*;

    #[test]
    fn the_query_names_what_is_wrong() {
        let q = ExportQuery::parse(Some("since=2026-01-01T00%3A00%3A00Z&limit=5")).unwrap();
        assert_eq!(q.since.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(q.limit().unwrap(), 5);
        assert_eq!(ExportQuery::parse(Some("limit=100000")).unwrap().limit().unwrap(), PAGE_SIZE);
        assert_eq!(ExportQuery::parse(None).unwrap().limit().unwrap(), PAGE_SIZE);
        for bad in ["limit=0", "limit=-1", "limit=ten"] {
            assert_eq!(
                ExportQuery::parse(Some(bad)).unwrap().limit().unwrap_err().invalid_field(),
                Some("limit"),
                "{bad}"
            );
        }
        assert_eq!(ExportQuery::parse(Some("since=a&since=b")).err().unwrap().invalid_field(), Some("since"));
        assert_eq!(ExportQuery::parse(Some("from=2026")).err().unwrap().invalid_field(), Some("from"));
    }

    #[test]
    fn the_next_link_keeps_the_period_and_encodes_the_cursor() {
        let period =
            Period { since: "2026-01-01T00:00:00Z".parse().unwrap(), until: "2026-02-01T00:00:00Z".parse().unwrap() };
        let last = Position { updated_at: "2026-01-02T00:00:00Z".parse().unwrap(), id: RequestId::generate() };
        let link = next_link(&period, &ExportCursor::Request(last.clone()), Some("5"));
        assert_eq!(
            link,
            format!(
                "</v1/audit/export?since=2026-01-01T00%3A00%3A00Z&until=2026-02-01T00%3A00%3A00Z&cursor={}&limit=5>; rel=\"next\"",
                last.to_cursor()
            )
        );
    }
}
