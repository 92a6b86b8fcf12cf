//! The audit page's API (DESIGN.md "Audit evidence"), for a token of scope `audit` or a signed-in
//! auditor:
//!
//! - `GET /v1/audit/search?since=&until=&number=&person=&cloud=&environment=&status=&cursor=`:
//!   the records touched in the period that match, as JSON (`domain::usecases::audit_search`);
//! - `GET /v1/audit/me`: who is calling (a signed-in auditor, or a token);
//! - `GET /v1/audit/sign-in` (public): starts an auditor's OpenID Connect sign-in; the callback
//!   (`GET /v1/auth/callback`, functions/approval) returns to `/audit/` with the auditor's session.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::usecases::Services;
use domain::usecases::audit::{ExportCursor, Period};
use domain::usecases::audit_search::SearchFilter;
use domain::{Error, Result};
use http_api::ApiError;
use http_api::auth::{AUDIT_SIGN_IN_COOKIE, AuditCaller, set_cookie};
use jiff::Timestamp;
use serde_json::json;

use super::private;

/// The search's query: each parameter at most once, nothing else (a 422 naming it).
#[derive(Default)]
struct SearchQuery {
    since: Option<String>,
    until: Option<String>,
    number: Option<String>,
    person: Option<String>,
    cloud: Option<String>,
    environment: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

impl SearchQuery {
    fn parse(raw: Option<&str>) -> Result<SearchQuery> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| Error::invalid("query", "is not a URL-encoded query string"))?;
        let mut query = SearchQuery::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "since" => &mut query.since,
                "until" => &mut query.until,
                "number" => &mut query.number,
                "person" => &mut query.person,
                "cloud" => &mut query.cloud,
                "environment" => &mut query.environment,
                "status" => &mut query.status,
                "cursor" => &mut query.cursor,
                _ => {
                    return Err(Error::invalid(
                        name,
                        "is not a parameter of the search (since, until, number, person, cloud, environment, \
                         status, cursor)",
                    ));
                }
            };
            if slot.replace(value).is_some() {
                return Err(Error::invalid(name, "is given more than once"));
            }
        }
        Ok(query)
    }

    fn filter(&self) -> Result<SearchFilter> {
        SearchFilter::new(
            self.number.as_deref(),
            self.person.as_deref(),
            self.cloud.as_deref(),
            self.environment.as_deref(),
            self.status.as_deref(),
        )
    }
}

pub async fn search(State(services): State<Services>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let query = SearchQuery::parse(raw.as_deref())?;
    let period = Period::parse(query.since.as_deref(), query.until.as_deref(), Timestamp::now())?;
    let filter = query.filter()?;
    let after = query.cursor.as_deref().map(|c| ExportCursor::from_cursor(c, &period)).transpose()?;
    let page = services.search_touched(&period, &filter, after).await?;
    let body = json!({
        "results": page.results,
        "next_cursor": page.next.map(|p| p.to_cursor()),
        "scanned": page.scanned,
    });
    Ok(private(axum::Json(body).into_response()))
}

pub async fn me(Extension(caller): Extension<AuditCaller>) -> Response {
    let body = match caller {
        AuditCaller::Token => json!({"via": "token", "email": null, "issuer": null, "expires_at": null}),
        AuditCaller::Auditor(session) => json!({
            "via": "sign_in",
            "email": session.identity.email,
            "issuer": session.identity.issuer,
            "expires_at": session.expires_at,
        }),
    };
    private(axum::Json(body).into_response())
}

/// Sends the browser to the identity provider, with a cookie that binds the sign-in to it.
pub async fn sign_in(State(services): State<Services>) -> Result<Response, ApiError> {
    let start = services.start_audit_sign_in().await?;
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, start.authorize_url)]).into_response();
    let binding = set_cookie(&services, AUDIT_SIGN_IN_COOKIE, &start.browser, "/v1/auth/callback", 600);
    resp.headers_mut().append(header::SET_COOKIE, binding);
    Ok(private(resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_what_is_wrong() {
        let q = SearchQuery::parse(Some("since=2026-01-01T00%3A00%3A00Z&person=Ada&number=")).unwrap();
        assert_eq!((q.since.as_deref(), q.person.as_deref()), (Some("2026-01-01T00:00:00Z"), Some("Ada")));
        let filter = q.filter().unwrap();
        assert_eq!((filter.person.as_deref(), filter.number), (Some("ada"), None));
        assert_eq!(SearchQuery::parse(Some("person=a&person=b")).err().unwrap().invalid_field(), Some("person"));
        assert_eq!(SearchQuery::parse(Some("requester=ada")).err().unwrap().invalid_field(), Some("requester"));
        assert_eq!(SearchQuery::parse(Some("limit=5")).err().unwrap().invalid_field(), Some("limit"));
    }
}
