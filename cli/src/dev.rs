//! Everything under /dev/: only mounted with `--demo` (the outbox shows live approval links, and
//! /dev/config.json hands out the API token).
//!
//! `/dev/` is the demo portal: a page that plays the ServiceNow catalog form, lists the requests
//! with their live status and history, and shows the outbox, so the whole flow can be clicked
//! through in a browser. Plain HTML, CSS and a little JavaScript, embedded in the binary.
//! `/dev/gate/...` plays a GitLab pipeline through the change gate (see `dev/gate.rs`).

mod gate;

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
    /// The demo's simulated ServiceNow instance, when it runs one: the portal opens its request
    /// items there (so that write-backs land on a record) and shows their work notes.
    servicenow: Option<Arc<str>>,
    http: reqwest::Client,
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
    let body = json!({
        "token": &*dev.api_token,
        "approvers": &*dev.approvers,
        "servicenow": dev.servicenow.as_deref(),
    });
    with_headers(Json(body).into_response(), "application/json")
}

/// Opens a request item on the simulated ServiceNow, as ordering in the catalog would — with the
/// order's requester and variables, already approved — and answers its `number` and `sys_id`.
/// Without a simulated ServiceNow, 404: the page then numbers its RITMs itself.
async fn new_ritm(State(dev): State<Dev>, Json(order): Json<Value>) -> Response {
    let Some(base) = dev.servicenow.clone() else {
        return http_api::problem::not_found().await.into_response();
    };
    match open_ritm(&dev.http, &base, order).await {
        Ok((number, sys_id)) => {
            with_headers(Json(json!({ "number": number, "sys_id": sys_id })).into_response(), "application/json")
        }
        Err(e) => {
            tracing::warn!(error = %e, "demo portal: cannot open a RITM on the simulated ServiceNow");
            ApiError(domain::Error::upstream("simulated ServiceNow", e)).into_response()
        }
    }
}

async fn open_ritm(http: &reqwest::Client, base: &str, order: Value) -> Result<(String, String), String> {
    let fail = |e: reqwest::Error| e.to_string();
    let item = json!({
        "requested_for": order["requested_for"],
        "approval": "approved",
        "short_description": "Virtual machine (Gatehouse demo portal)",
        "variables": order["variables"],
    });
    // DESIGN.md's control API: creates the users and the item with its variables.
    let created: Value = http
        .post(format!("{base}/_sim/request_items"))
        .json(&item)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(fail)?
        .json()
        .await
        .map_err(fail)?;
    let sys_id = created["sys_id"].as_str().filter(|s| is_sys_id(s)).ok_or("no sys_id in the answer")?.to_string();
    let number = created["number"].as_str().ok_or("no number in the answer")?.to_string();
    Ok((number, sys_id))
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The work notes on a request item of the simulated ServiceNow; `None` when it cannot tell.
async fn work_notes(http: reqwest::Client, base: Arc<str>, sys_id: String) -> Option<Value> {
    if !is_sys_id(&sys_id) {
        return None;
    }
    let resp = http.get(format!("{base}/_sim/work_notes/sc_req_item/{sys_id}")).send().await.ok()?;
    resp.error_for_status().ok()?.json().await.ok()
}

/// The newest requests, each as GET /v1/requests/{id} shows it (history included), and with a
/// simulated ServiceNow, the work notes of its RITM.
async fn requests(State(dev): State<Dev>) -> Response {
    let list = match dev.store.recent(RECENT).await {
        Ok(list) => list,
        Err(e) => return ApiError(e).into_response(),
    };
    let mut notes = tokio::task::JoinSet::new();
    if let Some(base) = &dev.servicenow {
        for (i, r) in list.iter().enumerate() {
            let (http, base, sys_id) = (dev.http.clone(), base.clone(), r.source.sys_id.clone());
            notes.spawn(async move { (i, work_notes(http, base, sys_id).await) });
        }
    }
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for r in &list {
        match dev.store.history(&r.id).await {
            Ok(history) => out.push(intake::request_view(r, &history)),
            Err(e) => return ApiError(e).into_response(),
        }
    }
    while let Some(joined) = notes.join_next().await {
        if let Ok((i, Some(n))) = joined
            && let Some(Value::Object(view)) = out.get_mut(i)
        {
            view.insert("work_notes".into(), n);
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
    let gate = gate::router(config, &api_token);
    let dev = Dev {
        outbox: outbox_dir,
        store,
        api_token: api_token.into(),
        approvers: config.approvers.default.clone().into(),
        servicenow: config.servicenow.as_ref().map(|sn| sn.instance_url.trim_end_matches('/').into()),
        http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build().unwrap_or_default(),
    };
    Router::new()
        .route("/dev", get(|| async { Redirect::to("/dev/") }))
        .route("/dev/", get(index))
        .route("/dev/app.js", get(app_js))
        .route("/dev/app.css", get(app_css))
        .route("/dev/config.json", get(config_json))
        .route("/dev/requests", get(requests))
        .route("/dev/ritm", axum::routing::post(new_ritm))
        .route("/dev/outbox", get(outbox))
        .with_state(dev)
        .merge(gate)
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

    /// With the demo's simulated ServiceNow, the portal opens each order's RITM there (with its
    /// requester and variables, approved), intake accepts it, and the request is listed with the
    /// work notes Gatehouse wrote on the RITM.
    #[tokio::test]
    async fn with_a_simulated_servicenow_ritms_open_there_and_show_their_work_notes() {
        use serde_json::{Value, json};

        let sn = servicenow_sim::SnSim::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
        let pcd = pcd_sim::PcdSim::start("127.0.0.1:0".parse().unwrap(), pcd_sim::SimConfig::default()).await.unwrap();
        let dir = std::env::temp_dir().join(format!("gatehouse-dev-test-{}", uuid_like()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (mut config, token) = crate::serve::demo_config(&pcd, dir.clone(), listener.local_addr().unwrap()).unwrap();
        crate::serve::use_servicenow_sim(&mut config, &sn);
        let running = crate::serve::start_with(
            listener,
            config,
            Some(token.clone()),
            crate::serve::Simulators { pcd: Some(pcd), ..Default::default() },
            true,
        )
        .await
        .unwrap();
        let base = running.base_url.clone();
        let http = reqwest::Client::new();

        let cfg: Value = http.get(format!("{base}/dev/config.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(cfg["token"], token.as_str());
        assert_eq!(cfg["servicenow"], sn.base_url().trim_end_matches('/'));
        let requester = json!({ "email": "ada@example.com", "name": "Ada Lovelace", "user_name": "ada" });
        let variables = json!({ "cloud": "demo", "image": "Ubuntu 24.04 LTS", "flavor": "m1.small",
            "network": "dev-net", "server_name": "web-01", "count": "1" });
        let ritm: Value = http
            .post(format!("{base}/dev/ritm"))
            .json(&json!({ "requested_for": requester, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let number = ritm["number"].as_str().unwrap().to_string();
        assert!(number.starts_with("RITM"), "{ritm}");

        let intake = http
            .post(format!("{base}/v1/requests"))
            .bearer_auth(&token)
            .json(&json!({
                "source": { "system": "servicenow", "number": number, "sys_id": ritm["sys_id"] },
                "requester": requester,
                "cloud": "demo", "image": "Ubuntu 24.04 LTS", "flavor": "m1.small", "network": "dev-net",
                "server_name": "web-01", "count": 1,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(intake.status(), 202, "{}", intake.text().await.unwrap());

        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let r = loop {
            let list: Value = http.get(format!("{base}/dev/requests")).send().await.unwrap().json().await.unwrap();
            let r = list["requests"][0].clone();
            if r["work_notes"].as_array().is_some_and(|n| !n.is_empty()) || std::time::Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(r["source"]["number"], number.as_str());
        assert_eq!(r["status"], "pending_approval");
        assert_eq!(r["history"][0]["to"], "pending_approval");
        assert!(r["work_notes"][0]["text"].as_str().unwrap().contains("Gatehouse received this request"), "{r}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Without a ServiceNow, the page numbers its own RITMs and shows no work notes.
    #[tokio::test]
    async fn without_servicenow_there_is_no_ritm_endpoint() {
        let pcd = pcd_sim::PcdSim::start("127.0.0.1:0".parse().unwrap(), pcd_sim::SimConfig::default()).await.unwrap();
        let dir = std::env::temp_dir().join(format!("gatehouse-dev-test-{}", uuid_like()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (mut config, token) = crate::serve::demo_config(&pcd, dir.clone(), listener.local_addr().unwrap()).unwrap();
        config.servicenow = None;
        let running = crate::serve::start_with(
            listener,
            config,
            Some(token),
            crate::serve::Simulators { pcd: Some(pcd), ..Default::default() },
            true,
        )
        .await
        .unwrap();
        let base = running.base_url.clone();
        let http = reqwest::Client::new();
        let cfg: serde_json::Value =
            http.get(format!("{base}/dev/config.json")).send().await.unwrap().json().await.unwrap();
        assert!(cfg["servicenow"].is_null());
        let ritm = http.post(format!("{base}/dev/ritm")).json(&serde_json::json!({})).send().await.unwrap();
        assert_eq!(ritm.status(), 404);
        let page = http.get(format!("{base}/dev/")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn uuid_like() -> String {
        use std::time::{SystemTime, UNIX_EPOCH};
        format!("{}-{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos())
    }

    #[test]
    fn the_page_loads_only_embedded_assets() {
        let html = super::INDEX_HTML;
        assert!(html.contains("src=\"/dev/app.js\""));
        assert!(!html.contains("http://") && !html.contains("https://"), "no outside assets");
        assert!(!super::APP_JS.contains("innerHTML"), "server data goes in with textContent only");
    }
}
