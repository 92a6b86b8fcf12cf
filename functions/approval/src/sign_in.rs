//! The approver's sign-in routes and cookies: `GET /v1/approvals/{token}/sign-in` sends the browser
//! to the identity provider, `GET /v1/auth/callback` finishes there and returns to the link.
//!
//! Two cookies, both `HttpOnly; SameSite=Lax` (Lax, so the top-level redirect back from the
//! identity provider carries them) and `Secure` unless Gatehouse is served over plain http on
//! loopback: `gatehouse_link` (the link being signed in for, scoped to the callback path, so the
//! token never travels to the identity provider and is not stored) and `gatehouse_session` (scoped
//! to the approval pages, 15 minutes).
//!
//! The callback also finishes an auditor's sign-in started on the audit page (functions/audit):
//! it then sets the auditor's own session cookie and returns to `/audit/`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use domain::Error;
use domain::signin::ApproverSession;
use domain::usecases::Services;
use domain::usecases::signin::{CallbackCookies, SESSION_TTL, SignedIn};
use http_api::auth::{AUDIT_SIGN_IN_COOKIE, AUDITOR_SESSION_COOKIE};
use serde::Deserialize;

use crate::{error_response, secure};

const SESSION_COOKIE: &str = "gatehouse_session";
const LINK_COOKIE: &str = "gatehouse_link";

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn set_cookie(services: &Services, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    // `Secure` everywhere but plain http, which the configuration allows only on loopback.
    let secure = if services.config.public_base_url.starts_with("https://") { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("gatehouse_invalid=1"))
}

/// The session this browser holds, if it is live.
pub async fn session_of(services: &Services, headers: &HeaderMap) -> Result<Option<ApproverSession>, Error> {
    match cookie(headers, SESSION_COOKIE) {
        Some(id) => services.session(id).await,
        None => Ok(None),
    }
}

pub async fn start(State(services): State<Services>, Path(token): Path<String>) -> Response {
    let resp = match services.start_sign_in(&token).await {
        Ok(start) => {
            let mut resp = Redirect::to(&start.authorize_url).into_response();
            let link = set_cookie(&services, LINK_COOKIE, &token, "/v1/auth/callback", 600);
            resp.headers_mut().append(header::SET_COOKIE, link);
            resp
        }
        Err(e) => error_response(e, false),
    };
    secure(resp)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(State(services): State<Services>, Query(q): Query<Callback>, headers: HeaderMap) -> Response {
    let outcome = match (&q.code, &q.state, &q.error) {
        (_, _, Some(error)) => Err(Error::Forbidden(format!("the identity provider refused the sign-in ({error})"))),
        (Some(code), Some(state), None) => {
            let cookies = CallbackCookies {
                link: cookie(&headers, LINK_COOKIE),
                audit_browser: cookie(&headers, AUDIT_SIGN_IN_COOKIE),
            };
            services.finish_sign_in(state, code, &cookies).await
        }
        _ => Err(Error::Malformed("the callback needs code and state".into())),
    };
    let mut resp = match outcome {
        Ok(SignedIn::Approver { session_id, link }) => {
            let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/v1/approvals/{}", link.expose()))])
                .into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(&services, SESSION_COOKIE, &session_id, "/v1/approvals", SESSION_TTL.as_secs()),
            );
            h.append(header::SET_COOKIE, set_cookie(&services, LINK_COOKIE, "", "/v1/auth/callback", 0));
            resp
        }
        // The audit page (DESIGN.md "Audit evidence"): its own session cookie, for the whole site
        // (the page and the audit API).
        Ok(SignedIn::Auditor { session_id, .. }) => {
            let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/audit/")]).into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&services, AUDITOR_SESSION_COOKIE, &session_id, "/", SESSION_TTL.as_secs()),
            );
            resp
        }
        Err(e) => error_response(e, false),
    };
    if cookie(&headers, AUDIT_SIGN_IN_COOKIE).is_some() {
        resp.headers_mut()
            .append(header::SET_COOKIE, set_cookie(&services, AUDIT_SIGN_IN_COOKIE, "", "/v1/auth/callback", 0));
    }
    secure(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; gatehouse_session=abc"));
        h.append(header::COOKIE, HeaderValue::from_static("gatehouse_link=xyz"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LINK_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "gatehouse"), None);
    }
}
