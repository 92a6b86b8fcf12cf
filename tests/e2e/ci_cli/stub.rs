//! The stub: a small stand-in for Gatehouse's `/v1/changes` API that answers as each test scripts
//! it and records every call it gets.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::{CHANGE_URL, ID_TOKEN, PROJECT, SHA, TOKEN};

/// What the stub answers to the next call that gets past the token check.
#[derive(Clone, Debug)]
pub enum Answer {
    Proceed,
    Wait,
    Blocked,
    /// A problem+json with this status.
    Status(u16),
    /// A problem+json with this status and `Retry-After: secs`.
    RetryAfter(u16, u64),
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub auth: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
pub struct Stub {
    /// Answers in order; the last one repeats.
    script: Mutex<Vec<Answer>>,
    seen: Mutex<Vec<Seen>>,
    /// Changes known, by (project_id, sha, environment).
    changes: Mutex<HashSet<(u64, String, String)>>,
}

impl Stub {
    fn next(&self) -> Answer {
        let mut script = self.script.lock().unwrap();
        if script.len() > 1 { script.remove(0) } else { script[0].clone() }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn record(&self, method: Method, path: String, query: Option<String>, headers: &HeaderMap, body: Value) {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        self.seen.lock().unwrap().push(Seen {
            method,
            path,
            query,
            auth: text(header::AUTHORIZATION),
            content_type: text(header::CONTENT_TYPE),
            body,
            at: Instant::now(),
        });
    }
}

fn problem(status: u16, title: &str, detail: &str) -> Response {
    let body = json!({"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": []});
    let mut response = (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// The static token or the ID token.
fn authorized(headers: &HeaderMap) -> bool {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    [TOKEN, ID_TOKEN].iter().any(|token| auth == Some(&format!("Bearer {token}")))
}

/// DESIGN.md's change answer for a decision.
fn change_answer(decision: &str) -> Value {
    let rule = "weekly window mon–thu 19:00–23:00 Europe/Berlin";
    match decision {
        "proceed" => json!({
            "number": "CHG0030001", "sys_id": "c0ffee", "url": CHANGE_URL,
            "approval": "approved", "state": {"value": "-1", "display": "Implement"},
            "decision": "proceed", "reason": "approved; the window is open",
            "window": {"open": true, "next_open_at": null, "rule": rule}
        }),
        "wait" => json!({
            "number": "CHG0030001", "sys_id": "c0ffee", "url": CHANGE_URL,
            "approval": "requested", "state": {"value": "-3", "display": "Authorize"},
            "decision": "wait", "reason": "waiting for approval (state Authorize)",
            "window": {"open": false, "next_open_at": "2026-12-01T19:00:00+01:00", "rule": rule}
        }),
        "blocked" => json!({
            "number": "CHG0030001", "sys_id": "c0ffee", "url": CHANGE_URL,
            "approval": "rejected", "state": {"value": "4", "display": "Canceled"},
            "decision": "blocked", "reason": "rejected by the change manager",
            "window": {"open": true, "next_open_at": null, "rule": rule}
        }),
        "closed" => json!({
            "number": "CHG0030001", "sys_id": "c0ffee", "url": CHANGE_URL,
            "approval": "approved", "state": {"value": "3", "display": "Closed"},
            "decision": "blocked", "reason": "the change is closed",
            "window": {"open": true, "next_open_at": null, "rule": rule}
        }),
        other => panic!("no such decision {other}"),
    }
}

/// The decision a scripted answer stands for, or `None` for a failure.
fn decision_of(answer: &Answer) -> Option<&'static str> {
    match answer {
        Answer::Proceed => Some("proceed"),
        Answer::Wait => Some("wait"),
        Answer::Blocked => Some("blocked"),
        Answer::Status(_) | Answer::RetryAfter(..) => None,
    }
}

/// The problem+json a scripted failure stands for.
fn failure(answer: &Answer) -> Response {
    match answer {
        Answer::Status(status) => problem(*status, "Scripted failure", "the stub was told to fail"),
        Answer::RetryAfter(status, secs) => {
            let mut response = problem(*status, "Busy", "try again later");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_str(&secs.to_string()).unwrap());
            response
        }
        decision => panic!("{decision:?} is not a failure"),
    }
}

async fn create_change(State(stub): State<Arc<Stub>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    stub.record(Method::POST, "/v1/changes".into(), None, &headers, body.clone());
    if !authorized(&headers) {
        return problem(401, "Unauthorized", "a valid bearer token is required");
    }
    let answer = stub.next();
    let Some(decision) = decision_of(&answer) else { return failure(&answer) };
    let key = (
        body["project_id"].as_u64().unwrap_or(0),
        body["sha"].as_str().unwrap_or("").to_string(),
        body["environment"].as_str().unwrap_or("").to_string(),
    );
    let created = stub.changes.lock().unwrap().insert(key);
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    (status, Json(change_answer(decision))).into_response()
}

async fn get_change(
    State(stub): State<Arc<Stub>>,
    Path((project_id, sha)): Path<(u64, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    stub.record(Method::GET, format!("/v1/changes/{project_id}/{sha}"), query.clone(), &headers, Value::Null);
    if !authorized(&headers) {
        return problem(401, "Unauthorized", "a valid bearer token is required");
    }
    let environment = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("environment=")))
        .unwrap_or("")
        .to_string();
    if !stub.changes.lock().unwrap().contains(&(project_id, sha, environment)) {
        return problem(404, "Not Found", "no change for this commit and environment");
    }
    let answer = stub.next();
    match decision_of(&answer) {
        Some(decision) => Json(change_answer(decision)).into_response(),
        None => failure(&answer),
    }
}

async fn report_deployment(
    State(stub): State<Arc<Stub>>,
    Path((project_id, sha)): Path<(u64, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    stub.record(Method::POST, format!("/v1/changes/{project_id}/{sha}/deployments"), None, &headers, body.clone());
    if !authorized(&headers) {
        return problem(401, "Unauthorized", "a valid bearer token is required");
    }
    let environment = body["environment"].as_str().unwrap_or("").to_string();
    if !stub.changes.lock().unwrap().contains(&(project_id, sha, environment)) {
        return problem(404, "Not Found", "no change for this commit and environment");
    }
    let answer = stub.next();
    match decision_of(&answer) {
        Some(_) => Json(change_answer("closed")).into_response(),
        None => failure(&answer),
    }
}

/// Starts the stub with a script of answers; `known` seeds the change of (4242, SHA, production).
pub async fn start_stub(script: Vec<Answer>, known: bool) -> (String, Arc<Stub>) {
    let stub = Arc::new(Stub { script: Mutex::new(script), ..Default::default() });
    if known {
        stub.changes.lock().unwrap().insert((PROJECT, SHA.to_string(), "production".to_string()));
    }
    let app = Router::new()
        .route("/v1/changes", post(create_change))
        .route("/v1/changes/{project_id}/{sha}", get(get_change))
        .route("/v1/changes/{project_id}/{sha}/deployments", post(report_deployment))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), stub)
}
