//! `GET /audit/`: the audit page (DESIGN.md "Audit evidence"), static files compiled in. It
//! searches the records touched in a period (`/v1/audit/search`), opens their evidence
//! (`/v1/requests/{id}/evidence`) and downloads the export (`/v1/audit/export`), with an audit
//! token the auditor pastes (kept in the tab's sessionStorage) or an auditor's sign-in
//! (`/v1/audit/sign-in`). The page holds nothing private, so it is public; its script shows every
//! value as text, and the CSP lets it load only its own files and call only this origin.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("audit_page/index.html");
const AUDIT_JS: &str = include_str!("audit_page/audit.js");
const AUDIT_CSS: &str = include_str!("audit_page/audit.css");

/// Its own script and style only, no inline code, calls to this origin only, no frames. (`data:`
/// images: the page's empty icon, so that the browser asks for no /favicon.ico.)
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
    img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn with_headers(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

pub async fn index() -> Response {
    with_headers(INDEX_HTML, "text/html; charset=utf-8")
}

pub async fn script() -> Response {
    with_headers(AUDIT_JS, "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    with_headers(AUDIT_CSS, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_runs_no_inline_code_and_loads_only_its_own_files() {
        assert!(!INDEX_HTML.contains("<script>"), "no inline script");
        let handler = INDEX_HTML.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "no inline event handler");
        assert!(!INDEX_HTML.contains("style=\""), "no inline style");
        assert!(INDEX_HTML.contains("src=\"/audit/audit.js\"") && INDEX_HTML.contains("href=\"/audit/audit.css\""));
        assert!(!AUDIT_JS.contains("innerHTML") && !AUDIT_JS.contains("insertAdjacentHTML"), "values as text only");
    }
}
