//! The Extend link in the lease reminder (`/v1/leases/{token}`): GET and HEAD show the lease and a
//! button (mail scanners fetch links, so looking never acts); the button's POST extends it. The
//! token in the path is the credential, and the answers carry the approval pages' headers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use domain::usecases::Services;
use domain::usecases::lease::{ExtendOutcome, LeaseLinkState, LeaseView};
use html_escape::encode_safe as esc;
use serde_json::json;

use crate::page::shell;
use crate::{error_response, secure, wants_json};

fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn human(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} day{}", s / 86_400, if s == 86_400 { "" } else { "s" }),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{s} s"),
    }
}

/// The sentence the page leads with.
fn state_line(view: &LeaseView) -> String {
    let r = &view.request;
    let retire_at = r.retirement.as_ref().map(|l| when(l.retire_at)).unwrap_or_default();
    match &view.state {
        LeaseLinkState::Open => format!(
            "These VMs are deleted at {retire_at}. Extending adds {} (extension {} of {}); no approval is needed.",
            human(view.extends_by),
            r.retirement.as_ref().map_or(0, |l| l.extensions) + 1,
            view.max_extensions
        ),
        LeaseLinkState::Used => {
            format!("This link was used to extend the lease already; the VMs are deleted at {retire_at}.")
        }
        LeaseLinkState::LimitReached { ask } => format!(
            "The lease was extended {} times, as often as allowed without approval; the VMs are deleted at \
             {retire_at}. To keep them longer, ask {}.",
            view.max_extensions,
            ask.join(", ")
        ),
        LeaseLinkState::Ended => format!("The request is {}: there is no lease to extend.", r.status),
    }
}

fn status_of(state: &LeaseLinkState) -> StatusCode {
    match state {
        LeaseLinkState::Open => StatusCode::OK,
        LeaseLinkState::Used => StatusCode::CONFLICT,
        LeaseLinkState::LimitReached { .. } => StatusCode::FORBIDDEN,
        LeaseLinkState::Ended => StatusCode::GONE,
    }
}

fn view_json(view: &LeaseView, message: &str) -> serde_json::Value {
    let r = &view.request;
    json!({
        "request_id": r.id,
        "number": r.source.number,
        "status": r.status,
        "retire_at": r.retirement.as_ref().map(|l| l.retire_at),
        "extensions": r.retirement.as_ref().map_or(0, |l| l.extensions),
        "max_extensions": view.max_extensions,
        "link": match view.state {
            LeaseLinkState::Open => "open",
            LeaseLinkState::Used => "used",
            LeaseLinkState::LimitReached { .. } => "limit_reached",
            LeaseLinkState::Ended => "ended",
        },
        "ask": match &view.state { LeaseLinkState::LimitReached { ask } => ask.clone(), _ => vec![] },
        "message": message,
    })
}

fn page(view: &LeaseView, message: &str) -> Html<String> {
    let r = &view.request;
    let mut body = format!("<h1>Lease of {}</h1><p class=\"note\">{}</p><table>", esc(&r.source.number), esc(message));
    let servers = r.servers.iter().map(|s| format!("{} ({})", s.name, s.id)).collect::<Vec<_>>().join(", ");
    for (k, v) in [
        ("Requester", format!("{} <{}>", r.requester.name, r.requester.email)),
        ("Cloud", r.cloud.clone()),
        ("Servers", servers),
    ] {
        body.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v)));
    }
    body.push_str("</table>");
    if view.state == LeaseLinkState::Open {
        body.push_str(&format!(
            "<form method=\"post\"><p><button type=\"submit\">Extend by {}</button></p></form>\
             <p class=\"note\">Nothing changes until you press the button.</p>",
            esc(&human(view.extends_by))
        ));
    }
    shell(&format!("Lease: {}", r.source.number), &body)
}

fn answer(view: &LeaseView, status: StatusCode, message: &str, json: bool) -> Response {
    if json {
        (status, Json(view_json(view, message))).into_response()
    } else {
        (status, page(view, message)).into_response()
    }
}

pub(crate) async fn show(State(services): State<Services>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let json = wants_json(&headers);
    let resp = match services.view_lease(&token).await {
        // Looking is always fine; only an ended lease says so with 410.
        Ok(view) => {
            let status = if view.state == LeaseLinkState::Ended { StatusCode::GONE } else { StatusCode::OK };
            answer(&view, status, &state_line(&view), json)
        }
        Err(e) => error_response(e, json),
    };
    secure(resp)
}

/// The button's POST. Its body (the empty form) carries nothing: the link is the credential.
pub(crate) async fn extend(
    State(services): State<Services>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&headers);
    let resp = match services.extend_lease(&token).await {
        Ok(ExtendOutcome::Extended(view)) => {
            let retire_at = view.request.retirement.as_ref().map(|l| when(l.retire_at)).unwrap_or_default();
            answer(&view, StatusCode::OK, &format!("Extended: the VMs are now deleted at {retire_at}."), json)
        }
        Ok(ExtendOutcome::Refused(view)) => answer(&view, status_of(&view.state), &state_line(&view), json),
        Err(e) => error_response(e, json),
    };
    secure(resp)
}
