//! The `audit` function (DESIGN.md "Audit evidence"), scope `audit`:
//!
//! - `GET /v1/requests/{id}/evidence`: a provisioning request's evidence record (`record`), as
//!   JSON, or as a printable HTML page (`page`) with `Accept: text/html`;
//! - `GET /v1/changes/{project_id}/{sha}/evidence?environment=`: a change record's evidence
//!   (`change_record`), JSON or HTML alike;
//! - `GET /v1/audit/export?since=&until=&cursor=&limit=` (`export`): every request and change
//!   record whose last write lies in [`since`, `until`), as JSON Lines, a page at a time;
//! - the audit page (`audit_page`, `GET /audit/`) and its API (`search`): search, who is calling,
//!   and the auditor's sign-in.
//!
//! These routes take a token of scope `audit` or a signed-in auditor's session.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

pub mod audit_page;
pub mod change_record;
pub mod export;
pub mod lookup;
pub mod page;
pub mod record;
pub mod search;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use domain::config::{ApiTokens, Scope};
use domain::model::RequestId;
use domain::usecases::Services;
use domain::{Error, Result};
use http_api::{Access, ApiError, Mounted, Routes};
use serde_json::Value;

pub use export::{JSON_LINES, PAGE_BYTES, PAGE_SIZE};

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
    let read = services.read_consistent(&id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
    Ok(answer(&headers, record::evidence(&read).to_value()?, page::render))
}

/// `?environment=` of a change's evidence: required, once, and nothing else.
fn environment_of(raw: Option<&str>) -> Result<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| Error::invalid("query", "is not a URL-encoded query string"))?;
    let mut environment = None;
    for (name, value) in pairs {
        if name != "environment" {
            return Err(Error::invalid(name, "is not a parameter of a change's evidence (environment)"));
        }
        if environment.replace(value).is_some() {
            return Err(Error::invalid("environment", "is given more than once"));
        }
    }
    environment.ok_or_else(|| Error::invalid("environment", "is required: the change's environment"))
}

async fn change_evidence(
    State(services): State<Services>,
    Path((project_id, sha)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project_id =
        project_id.parse::<u64>().map_err(|_| Error::invalid("project_id", "must be GitLab's numeric project id"))?;
    let key = domain::usecases::gate::key(project_id, &sha, &environment_of(raw.as_deref())?)?;
    let rec = services
        .changes
        .get_change(&key)
        .await?
        .filter(|r| !r.sys_id.is_empty() || !r.history.is_empty())
        .ok_or_else(|| Error::NotFound(format!("change of {}", key.record_id())))?;
    Ok(answer(&headers, change_record::evidence(&services, &rec), page::render_change))
}

/// An evidence record as JSON, or with `Accept: text/html` as its printable page.
fn answer(headers: &HeaderMap, record: Value, render: fn(&Value) -> String) -> Response {
    if !wants_html(headers) {
        return private(axum::Json(record).into_response());
    }
    let mut resp = axum::response::Html(render(&record)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(page::CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    private(resp)
}

pub fn router(services: Services, tokens: ApiTokens) -> Mounted {
    // A token of scope `audit`, or a signed-in auditor (the audit page's sign-in).
    let audit = Access::AuditorSessionOr(Scope::Audit);
    Routes::new(tokens)
        .with_auditor_sessions(services.clone())
        .add(Method::GET, "/v1/requests/{id}/evidence", audit, evidence)
        .add(Method::GET, "/v1/changes/{project_id}/{sha}/evidence", audit, change_evidence)
        .add(Method::GET, "/v1/audit/export", audit, export::export)
        .add(Method::GET, "/v1/audit/records", audit, lookup::records)
        .add(Method::GET, "/v1/audit/search", audit, search::search)
        .add(Method::GET, "/v1/audit/me", audit, search::me)
        .add(Method::GET, "/v1/audit/sign-in", Access::Public, search::sign_in)
        .add(Method::GET, "/audit/", Access::Public, audit_page::index)
        .add(Method::GET, "/audit/audit.js", Access::Public, audit_page::script)
        .add(Method::GET, "/audit/audit.css", Access::Public, audit_page::style)
        .with_state(services)
}
