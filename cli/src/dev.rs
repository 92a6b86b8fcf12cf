//! Everything under /dev/: only mounted with `--demo` (the outbox shows live approval links, and
//! /dev/config.json hands out the API token).
//!
//! `/dev/` is the demo portal: a page that plays the ServiceNow catalog form, lists the requests
//! with their live status and history, and shows the outbox, so the whole flow can be clicked
//! through in a browser. Plain HTML, CSS and a little JavaScript, embedded in the binary.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::config::{Config, MailTransport};
use domain::ports::Store;
use html_escape::{encode_double_quoted_attribute as attr, encode_safe as esc};
use http_api::ApiError;
use serde_json::{Value, json};

const INDEX_HTML: &str = include_str!("dev/index.html");
const APP_JS: &str = include_str!("dev/app.js");
const APP_CSS: &str = include_str!("dev/app.css");

/// How many requests the portal lists, newest first.
const RECENT: usize = 50;

/// The portal's own pages load only from here; mails render in sandboxed frames without scripts.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'";

#[derive(Clone)]
struct Dev {
    outbox: PathBuf,
    store: Arc<store::SqliteStore>,
    api_token: Arc<str>,
    approvers: Arc<[String]>,
}

fn with_headers(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

async fn index() -> Response {
    with_headers(INDEX_HTML.into_response(), "text/html; charset=utf-8")
}

async fn app_js() -> Response {
    with_headers(APP_JS.into_response(), "text/javascript; charset=utf-8")
}

async fn app_css() -> Response {
    with_headers(APP_CSS.into_response(), "text/css; charset=utf-8")
}

/// What the page needs to call the API as ServiceNow would: the demo token. Demo only.
async fn config_json(State(dev): State<Dev>) -> Response {
    let body = json!({ "token": &*dev.api_token, "approvers": &*dev.approvers });
    with_headers(Json(body).into_response(), "application/json")
}

/// The newest requests, each as GET /v1/requests/{id} shows it (history included).
async fn requests(State(dev): State<Dev>) -> Response {
    let list = match dev.store.recent(RECENT).await {
        Ok(list) => list,
        Err(e) => return ApiError(e).into_response(),
    };
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for r in &list {
        match dev.store.history(&r.id).await {
            Ok(history) => out.push(intake::request_view(r, &history)),
            Err(e) => return ApiError(e).into_response(),
        }
    }
    with_headers(Json(json!({ "requests": out })).into_response(), "application/json")
}

async fn outbox(State(dev): State<Dev>, headers: HeaderMap) -> Response {
    let dir = dev.outbox.clone();
    let mails = match tokio::task::spawn_blocking(move || mail::read_outbox(&dir)).await {
        Ok(Ok(m)) => m,
        _ => Vec::new(),
    };
    let json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    if json {
        return with_headers(Json(json!({ "mails": mails })).into_response(), "application/json");
    }
    let mut body = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Outbox</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/dev/app.css\"></head><body class=\"plain\">\
         <h1>Outbox</h1><p><a href=\"/dev/\">\u{2190} Demo portal</a></p>",
    );
    if mails.is_empty() {
        body.push_str("<p>No mail yet.</p>");
    }
    for m in mails.iter().rev() {
        body.push_str(&format!(
            "<article class=\"mail\"><header><b>To:</b> {} &nbsp; <b>Subject:</b> {} &nbsp; <small>{}</small></header>\
             <iframe class=\"mail-body\" title=\"{}\" sandbox=\"{SANDBOX}\" srcdoc=\"{}\"></iframe></article>",
            esc(&m.to.join(", ")),
            esc(&m.subject),
            esc(&m.date),
            attr(&m.subject),
            // The mail's own HTML, as the recipient would see it (its fields were escaped when it
            // was written), in a frame without scripts whose links open in a new tab.
            attr(&with_link_target(&m.html)),
        ));
    }
    body.push_str("</body></html>");
    with_headers(Html(body).into_response(), "text/html; charset=utf-8")
}

/// The frame of a mail: no scripts, no same origin; its links may open a tab outside the sandbox
/// (the approval page refuses to be framed).
const SANDBOX: &str = "allow-popups allow-popups-to-escape-sandbox";

/// Makes a mail's links open in a new tab, as they would from a mail client.
fn with_link_target(html: &str) -> String {
    const BASE: &str = "<base target=\"_blank\">";
    match html.find("<html>") {
        Some(i) => format!("{}<html><head>{BASE}</head>{}", &html[..i], &html[i + "<html>".len()..]),
        None => format!("{BASE}{html}"),
    }
}

pub fn router(config: &Config, store: Arc<store::SqliteStore>, api_token: String) -> Router {
    let outbox_dir = match &config.mail_transport {
        MailTransport::Outbox { dir } => dir.clone(),
        _ => config.data_dir.join("outbox"),
    };
    let dev = Dev {
        outbox: outbox_dir,
        store,
        api_token: api_token.into(),
        approvers: config.approvers.default.clone().into(),
    };
    Router::new()
        .route("/dev", get(|| async { Redirect::to("/dev/") }))
        .route("/dev/", get(index))
        .route("/dev/app.js", get(app_js))
        .route("/dev/app.css", get(app_css))
        .route("/dev/config.json", get(config_json))
        .route("/dev/requests", get(requests))
        .route("/dev/outbox", get(outbox))
        .with_state(dev)
}

#[cfg(test)]
mod tests {
    use super::with_link_target;

    #[test]
    fn mail_links_open_in_a_new_tab() {
        assert_eq!(
            with_link_target("<!doctype html><html><body><a href=\"x\">A</a></body></html>"),
            "<!doctype html><html><head><base target=\"_blank\"></head><body><a href=\"x\">A</a></body></html>"
        );
        assert_eq!(with_link_target("<p>hi</p>"), "<base target=\"_blank\"><p>hi</p>");
    }

    #[test]
    fn the_page_loads_only_embedded_assets() {
        let html = super::INDEX_HTML;
        assert!(html.contains("src=\"/dev/app.js\""));
        assert!(!html.contains("http://") && !html.contains("https://"), "no outside assets");
        assert!(!super::APP_JS.contains("innerHTML"), "server data goes in with textContent only");
    }
}
