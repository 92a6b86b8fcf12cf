//! The shared state of a running simulator, and what every API call goes through: call counts,
//! latency, faults, the token check, parameters, pagination and GitLab's error bodies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::id_token::SigningKey;
use crate::model::{Data, Faults};
use crate::{GitLabSimConfig, SIM_USER_ID, SIM_USERNAME};

pub(crate) struct SimState {
    pub config: GitLabSimConfig,
    /// `http://127.0.0.1:PORT`: also the issuer of ID tokens (GitLab's own URL).
    pub base: String,
    pub faults: Mutex<Faults>,
    pub data: Mutex<Data>,
    pub calls: Mutex<BTreeMap<String, u64>>,
    /// The ID token signing key, made on first use (an RSA key takes a moment to generate, and
    /// most simulators never sign anything).
    pub key: OnceLock<Result<SigningKey, String>>,
}

pub(crate) type Shared = State<Arc<SimState>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimState {
    pub fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }

    pub fn count(&self, key: &str) {
        *lock(&self.calls).entry(key.to_string()).or_default() += 1;
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let token = &self.config.token;
        if let Some(v) = headers.get("private-token").and_then(|v| v.to_str().ok()) {
            return v == token;
        }
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|v| v == token)
    }

    /// The fault this call gets, if any (taking one of `remaining`). `named_only`: the call gets
    /// a fault only when `only` names it.
    fn take_fault(&self, key: &str, after_processing: bool, named_only: bool) -> Option<(u16, Option<u64>)> {
        let mut f = lock(&self.faults);
        let status = f.status?;
        if f.after_processing != after_processing {
            return None;
        }
        match f.only.as_deref() {
            Some(only) if only != key => return None,
            None if named_only => return None,
            _ => {}
        }
        match f.remaining.as_mut() {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        Some((status, f.retry_after))
    }

    pub fn user(&self, username: &str) -> Value {
        let id = if username == SIM_USERNAME { SIM_USER_ID } else { 4300 + username.len() as u64 };
        json!({
            "id": id,
            "username": username,
            "name": if username == SIM_USERNAME { "Gatehouse".to_string() } else { username.to_string() },
            "state": "active",
            "avatar_url": format!("{}/uploads/-/system/user/avatar/{id}/avatar.png", self.base),
            "web_url": format!("{}/{username}", self.base),
        })
    }
}

/// Formats like GitLab: `2018-03-26T17:26:30.916Z`.
pub(crate) fn time(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn message(status: StatusCode) -> Response {
    let text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    json_response(status, json!({ "message": text.trim_end() }))
}

pub(crate) fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"message": "404 Not found"}))
}

/// A missing or invalid parameter, as Grape answers it.
pub(crate) fn bad_request(error: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

fn fault_response(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if status == StatusCode::TOO_MANY_REQUESTS {
        (status, [(header::CONTENT_TYPE, "text/plain")], "Retry later\n").into_response()
    } else {
        message(status)
    };
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Counts the call, waits the latency and applies faults around `serve`; `headers`: the token
/// must be there (REST API calls), `None`: no credentials needed and faults only when named
/// (GitLab's public OpenID endpoints).
async fn served(
    st: &SimState,
    key: &str,
    headers: Option<&HeaderMap>,
    serve: impl FnOnce(&SimState) -> Response,
) -> Response {
    st.count(key);
    tracing::debug!(key, "gitlab-sim call");
    let latency = lock(&st.faults).latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let named_only = headers.is_none();
    if let Some((status, retry_after)) = st.take_fault(key, false, named_only) {
        return fault_response(status, retry_after);
    }
    if let Some(headers) = headers
        && !st.authorized(headers)
    {
        return json_response(StatusCode::UNAUTHORIZED, json!({"message": "401 Unauthorized"}));
    }
    let resp = serve(st);
    if resp.status().is_success()
        && let Some((status, retry_after)) = st.take_fault(key, true, named_only)
    {
        return fault_response(status, retry_after);
    }
    resp
}

/// A REST API call: counted, delayed and faulted, and the token is checked.
pub(crate) async fn api(
    st: &SimState,
    key: &str,
    headers: &HeaderMap,
    serve: impl FnOnce(&SimState) -> Response,
) -> Response {
    served(st, key, Some(headers), serve).await
}

/// A public endpoint (no credentials): counted and delayed; faulted only when `only` names it.
pub(crate) async fn public(st: &SimState, key: &str, serve: impl FnOnce(&SimState) -> Response) -> Response {
    served(st, key, None, serve).await
}

/// The parameters of a call: the query string, then a JSON object or form body over it.
pub(crate) fn params(query: Option<&str>, body: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    let form = |text: &[u8], out: &mut Map<String, Value>| {
        if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(text) {
            for (k, v) in pairs {
                out.insert(k, Value::String(v));
            }
        }
    };
    if let Some(q) = query {
        form(q.as_bytes(), &mut out);
    }
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &body[i..]).unwrap_or(&[]);
    if trimmed.first() == Some(&b'{') {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(trimmed) {
            out.extend(map);
        }
    } else if !trimmed.is_empty() {
        form(trimmed, &mut out);
    }
    out
}

pub(crate) fn param_str(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// GitLab's offset pagination: `page` (from 1), `per_page` (default 20, at most 100), with the
/// `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Prev-Page`, `X-Total` and `X-Total-Pages` headers.
pub(crate) fn paginate(items: Vec<Value>, params: &Map<String, Value>) -> Response {
    let number = |k: &str| param_str(params, k).and_then(|v| v.parse::<usize>().ok());
    let per_page = number("per_page").filter(|n| *n > 0).unwrap_or(20).min(100);
    let page = number("page").filter(|n| *n > 0).unwrap_or(1);
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let chunk: Vec<Value> = items.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page).collect();
    let mut resp = json_response(StatusCode::OK, Value::Array(chunk));
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("x-page", page.to_string());
    set("x-per-page", per_page.to_string());
    set("x-next-page", if page < pages { (page + 1).to_string() } else { String::new() });
    set("x-prev-page", if page > 1 { (page - 1).to_string() } else { String::new() });
    set("x-total", total.to_string());
    set("x-total-pages", pages.to_string());
    resp
}
