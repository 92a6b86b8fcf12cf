//! The `approval` function: the pages behind the links in the approver's mail. GET and HEAD only
//! show (mail scanners fetch links); the page's button POSTs the one decision. The token in the
//! path is the credential, so no other auth, and every answer carries strict security headers.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

mod lease;
mod page;
mod sign_in;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Error;
use domain::config::ApiTokens;
use domain::usecases::Services;
use domain::usecases::approval::{DecideOutcome, Decision, LinkState, LinkView};
use http_api::body::{is_json, parse_json, read_limited};
use http_api::{Access, ApiError, Mounted, Routes};
use serde::Deserialize;
use serde_json::json;

const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

#[derive(Deserialize)]
struct PageQuery {
    decision: Option<String>,
}

fn status_of(state: &LinkState) -> StatusCode {
    match state {
        LinkState::Open => StatusCode::OK,
        LinkState::Decided | LinkState::StagePassed | LinkState::AlreadyCounted => StatusCode::CONFLICT,
        LinkState::Expired | LinkState::Cancelled => StatusCode::GONE,
        LinkState::OwnRequest
        | LinkState::SignInRequired
        | LinkState::NotTheApprover { .. }
        | LinkState::DelegationInactive { .. } => StatusCode::FORBIDDEN,
    }
}

pub(crate) fn error_response(e: Error, json: bool) -> Response {
    if json {
        return ApiError(e).into_response();
    }
    let (status, _, title) = http_api::problem::classify(&e);
    http_api::problem::log_error(&e);
    (status, page::message(title, &http_api::problem::public_detail(&e))).into_response()
}

async fn show(
    State(services): State<Services>,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&headers);
    let preselect = q.decision.as_deref().and_then(Decision::parse);
    let viewer = match viewer(&services, &headers).await {
        Ok(v) => v,
        Err(e) => return secure(error_response(e, json)),
    };
    let path = format!("/v1/approvals/{token}");
    let resp = match services.view_link(&token).await {
        // Looking is fine for anyone, the requester included: only deciding is refused. A dead
        // link says so with 410.
        Ok(view) => {
            let status = match view.state {
                LinkState::Expired | LinkState::Cancelled => StatusCode::GONE,
                _ => StatusCode::OK,
            };
            if json {
                (status, Json(view_json(&view, None))).into_response()
            } else {
                (status, page::link(&view, &viewer, &path, preselect, None)).into_response()
            }
        }
        Err(e) => error_response(e, json),
    };
    secure(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

fn view_json(view: &LinkView, message: Option<&str>) -> serde_json::Value {
    let r = &view.request;
    json!({
        "request_id": r.id,
        "number": r.source.number,
        "status": r.status,
        "link": match view.state {
            LinkState::Open => "open",
            LinkState::Decided => "decided",
            LinkState::Expired => "expired",
            LinkState::Cancelled => "cancelled",
            LinkState::OwnRequest => "own_request",
            LinkState::SignInRequired => "sign_in_required",
            LinkState::NotTheApprover { .. } => "not_the_approver",
            LinkState::StagePassed => "stage_passed",
            LinkState::AlreadyCounted => "already_counted",
            LinkState::DelegationInactive { .. } => "delegation_inactive",
        },
        "stage": view.stage + 1,
        "on_behalf_of": view.on_behalf_of,
        "decided_by": r.decided_by,
        "decision_comment": r.decision_comment,
        "expires_at": r.expires_at,
        "message": message,
    })
}

async fn read_decision(request: Request) -> Result<(Decision, Option<String>), Error> {
    let ct = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = read_limited(request).await.map_err(|e| e.0)?;
    let body: DecisionBody = if is_json(ct.as_deref()) {
        parse_json(&bytes)?.0
    } else if ct.as_deref().and_then(|c| c.split(';').next()).map(str::trim)
        == Some("application/x-www-form-urlencoded")
    {
        serde_urlencoded::from_bytes(&bytes).map_err(|e| Error::Malformed(format!("form body: {e}")))?
    } else {
        return Err(Error::UnsupportedMediaType { expected: "application/x-www-form-urlencoded or application/json" });
    };
    let decision = match body.decision.as_deref() {
        None | Some("") => return Err(Error::invalid("decision", "is required: approve or deny")),
        Some(d) => Decision::parse(d).ok_or_else(|| Error::invalid("decision", "must be approve or deny"))?,
    };
    Ok((decision, body.comment))
}

/// Who is looking, for the page: link only, not signed in, or signed in as someone.
async fn viewer(services: &Services, headers: &HeaderMap) -> Result<page::Viewer, Error> {
    if !services.sign_in_required() {
        return Ok(page::Viewer::LinkOnly);
    }
    Ok(match sign_in::session_of(services, headers).await? {
        Some(s) => page::Viewer::SignedIn { email: s.identity.email, issuer: s.identity.issuer },
        None => page::Viewer::NotSignedIn,
    })
}

async fn decide(State(services): State<Services>, Path(token): Path<String>, request: Request) -> Response {
    let json = wants_json(request.headers());
    let headers = request.headers().clone();
    let session = match sign_in::session_of(&services, &headers).await {
        Ok(s) => s,
        Err(e) => return secure(error_response(e, json)),
    };
    let viewer = match viewer(&services, &headers).await {
        Ok(v) => v,
        Err(e) => return secure(error_response(e, json)),
    };
    let path = format!("/v1/approvals/{token}");
    let outcome = match read_decision(request).await {
        Ok((decision, comment)) => services.decide(&token, decision, comment, session.as_ref()).await,
        Err(e) => Err(e),
    };
    let resp = match outcome {
        Ok(DecideOutcome::Decided { request, summary: msg }) => {
            let view =
                LinkView { request, approver: String::new(), on_behalf_of: None, stage: 0, state: LinkState::Decided };
            if json {
                (StatusCode::OK, Json(view_json(&view, Some(&msg)))).into_response()
            } else {
                (StatusCode::OK, page::decided(&view, &msg)).into_response()
            }
        }
        Ok(DecideOutcome::Refused(view)) => {
            let status = status_of(&view.state);
            let msg = page::refusal(&view);
            if json {
                (status, Json(view_json(&view, Some(&msg)))).into_response()
            } else {
                (status, page::link(&view, &viewer, &path, None, Some(&msg))).into_response()
            }
        }
        Err(e) => error_response(e, json),
    };
    secure(resp)
}

/// Approval and lease pages take no header: the link's token is the credential.
pub fn router(services: Services) -> Mounted {
    Routes::new(ApiTokens::default())
        .add(Method::GET, "/v1/approvals/{token}", Access::Public, show)
        .add(Method::POST, "/v1/approvals/{token}", Access::Public, decide)
        .add(Method::GET, "/v1/approvals/{token}/sign-in", Access::Public, sign_in::start)
        .add(Method::GET, "/v1/auth/callback", Access::Public, sign_in::callback)
        .add(Method::GET, "/v1/leases/{token}", Access::Public, lease::show)
        .add(Method::POST, "/v1/leases/{token}", Access::Public, lease::extend)
        .with_state(services)
}
