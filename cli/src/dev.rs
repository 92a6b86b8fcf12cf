//! Everything under /dev/: only mounted with `--demo` (the outbox shows live approval links).

use std::path::PathBuf;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use domain::config::{Config, MailTransport};
use html_escape::encode_safe as esc;

async fn outbox(State(dir): State<PathBuf>, headers: HeaderMap) -> Response {
    let mails = match tokio::task::spawn_blocking(move || mail::read_outbox(&dir)).await {
        Ok(Ok(m)) => m,
        _ => Vec::new(),
    };
    let json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    if json {
        return Json(serde_json::json!({ "mails": mails })).into_response();
    }
    let mut body = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Outbox</title>\
         <style>body{font-family:system-ui,sans-serif;margin:2rem}section{border:1px solid #ccd;margin:1rem 0;padding:1rem}</style>\
         </head><body><h1>Outbox</h1>",
    );
    for m in mails.iter().rev() {
        body.push_str(&format!(
            "<section><p><b>To:</b> {} &nbsp; <b>Subject:</b> {} &nbsp; <small>{}</small></p><div>{}</div></section>",
            esc(&m.to.join(", ")),
            esc(&m.subject),
            esc(&m.date),
            // The mail's own HTML, rendered as the recipient would see it; its fields were escaped when it was written.
            m.html
        ));
    }
    body.push_str("</body></html>");
    Html(body).into_response()
}

pub fn router(config: &Config) -> Router {
    let dir = match &config.mail_transport {
        MailTransport::Outbox { dir } => dir.clone(),
        _ => config.data_dir.join("outbox"),
    };
    Router::new().route("/dev/outbox", get(outbox)).with_state(dir)
}
