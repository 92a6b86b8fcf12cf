//! The Table API and OAuth endpoints, the answers they share, and the router.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::db::{Actor, Mode, Refusal};
use crate::{Shared, SimState, lock, samples};
use crate::{change_api, control};
// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

pub(crate) fn raw_json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// ServiceNow's error shape: `{"error":{"message","detail"},"status":"failure"}`.
pub(crate) fn sn_error(status: StatusCode, message: &str, detail: Option<&str>) -> Response {
    json_response(status, json!({"error": {"message": message, "detail": detail}, "status": "failure"}))
}

pub(crate) fn unauthorized() -> Response {
    let mut resp = raw_json(StatusCode::UNAUTHORIZED, samples::ERROR_401);
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("BASIC realm=\"Service-now\""));
    resp
}

pub(crate) fn fault_response(status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = match code.as_u16() {
        401 => unauthorized(),
        429 => raw_json(code, samples::ERROR_429),
        _ => sn_error(code, code.canonical_reason().unwrap_or("Error"), Some("Simulated fault")),
    };
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

pub(crate) fn not_found() -> Response {
    sn_error(
        StatusCode::NOT_FOUND,
        "No Record found",
        Some("Record doesn't exist or ACL restricts the record retrieval"),
    )
}

pub(crate) fn refusal(r: Refusal) -> Response {
    sn_error(StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN), &r.message, Some(&r.detail))
}

/// An early answer of a handler.
pub(crate) enum Reject {
    Unauthenticated,
    InvalidTable(String),
    BadBody,
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        match self {
            Reject::Unauthenticated => unauthorized(),
            Reject::InvalidTable(table) => sn_error(StatusCode::BAD_REQUEST, &format!("Invalid table {table}"), None),
            Reject::BadBody => sn_error(
                StatusCode::BAD_REQUEST,
                "Exception while reading request",
                Some("The payload is not valid JSON."),
            ),
        }
    }
}

pub(crate) fn valid_table(table: &str) -> Result<(), Reject> {
    if !table.is_empty() && table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Ok(())
    } else {
        Err(Reject::InvalidTable(table.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// Query parameters
// ---------------------------------------------------------------------------------------------

pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Params {
        Params(url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn mode(&self) -> Mode {
        Mode::parse(self.get("sysparm_display_value"))
    }

    fn fields(&self) -> Option<Vec<String>> {
        let f = self.get("sysparm_fields")?;
        let list: Vec<String> = f.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        (!list.is_empty()).then_some(list)
    }

    fn links(&self) -> bool {
        !self.get("sysparm_exclude_reference_link").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// These parameters with `sysparm_offset` (and `sysparm_limit`) set, as a query string.
    fn with_page(&self, limit: usize, offset: usize) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if k != "sysparm_offset" && k != "sysparm_limit" {
                s.append_pair(k, v);
            }
        }
        s.append_pair("sysparm_limit", &limit.to_string());
        s.append_pair("sysparm_offset", &offset.to_string());
        s.finish()
    }
}

pub(crate) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Reject> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Reject::BadBody),
    }
}

/// A write's admission (faults, credentials, table) and its JSON object body: the caller's user
/// and the fields, or the answer to give.
async fn admit_write(
    st: &SimState,
    headers: &HeaderMap,
    table: &str,
    body: &[u8],
) -> Result<(String, Map<String, Value>), Response> {
    let user = st.admit(headers, table).await?;
    let fields = parse_body(body).map_err(IntoResponse::into_response)?;
    Ok((user, fields))
}

// ---------------------------------------------------------------------------------------------
// Router and handlers
// ---------------------------------------------------------------------------------------------

pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/oauth_token.do", post(oauth_token))
        .route("/api/now/table/{table}", get(table_list).post(table_create))
        .route(
            "/api/now/table/{table}/{sys_id}",
            get(record_get).patch(record_update).put(record_update).delete(record_delete),
        )
        .route("/api/sn_chg_rest/change/standard/template", get(change_api::standard_templates))
        .route("/api/sn_chg_rest/change/standard/{template}", post(change_api::create_standard_change))
        .route("/_sim/faults", get(control::get_faults).put(control::put_faults))
        .route("/_sim/records/{table}", get(control::records).post(control::insert))
        .route("/_sim/records/{table}/{sys_id}", get(control::record).patch(control::set))
        .route("/_sim/work_notes/{table}/{sys_id}", get(control::work_notes))
        .route("/_sim/request_items", post(control::create_request_item))
        .route("/_sim/request_items/{sys_id}/variables", get(control::variables).patch(control::set_variables))
        .route("/_sim/catalog_items", post(control::add_catalog_item))
        .route("/_sim/changes/{sys_id}/approve", post(control::approve_change))
        .route("/_sim/changes/{sys_id}/reject", post(control::reject_change))
        .route("/_sim/standard_templates", post(control::add_standard_template))
        .route("/_sim/calls", get(control::calls))
        .route("/_sim/expire-tokens", post(control::expire_tokens))
        .fallback(fallback)
        .with_state(state)
}

async fn fallback() -> Response {
    sn_error(StatusCode::BAD_REQUEST, "Requested URI does not represent any resource", None)
}

/// `POST /oauth_token.do`.
async fn oauth_token(State(st): Shared, headers: HeaderMap, body: Bytes) -> Response {
    st.token_requests.fetch_add(1, Ordering::SeqCst);
    if let Err(resp) = st.gate().await {
        return resp.into_response();
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    // Client authentication in the body, or as HTTP Basic (RFC 6749 §2.3.1).
    let (mut client_id, mut client_secret) = (field("client_id").to_string(), field("client_secret").to_string());
    if client_id.is_empty()
        && let Some(basic) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(encoded) = basic.strip_prefix("Basic ")
        && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim())
        && let Some((id, secret)) = String::from_utf8(decoded).ok().as_deref().and_then(|s| s.split_once(':'))
    {
        (client_id, client_secret) = (id.to_string(), secret.to_string());
    }
    let denied = || {
        json_response(StatusCode::UNAUTHORIZED, json!({"error_description": "access_denied", "error": "server_error"}))
    };
    if client_id != st.config.client_id || client_secret != st.config.client_secret {
        return denied();
    }
    let (user, refresh) = match field("grant_type") {
        "client_credentials" => (st.config.oauth_user.clone(), false),
        "password" => {
            if field("username") != st.config.user || field("password") != st.config.password {
                return denied();
            }
            (st.config.user.clone(), true)
        }
        other => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error_description": format!("unsupported grant_type: {other}"), "error": "unsupported_grant_type"}),
            );
        }
    };
    let token = random_token();
    lock(&st.tokens).insert(token.clone(), (user, Instant::now() + st.config.token_ttl));
    let mut answer = samples::oauth_token();
    answer.insert("access_token".into(), Value::String(token));
    answer.insert("expires_in".into(), json!(st.config.token_ttl.as_secs()));
    if refresh {
        answer.insert("refresh_token".into(), Value::String(random_token()));
    } else {
        answer.remove("refresh_token");
    }
    json_response(StatusCode::OK, Value::Object(answer))
}

fn random_token() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..86).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// `GET /api/now/table/{table}`.
async fn table_list(
    State(st): Shared,
    Path(table): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(resp) = st.admit(&headers, &table).await {
        return resp;
    }
    let params = Params::parse(q);
    let limit = params.get("sysparm_limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(st.config.default_limit);
    let limit = limit.max(1);
    let offset = params.get("sysparm_offset").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let fields = params.fields();
    let db = lock(&st.db);
    let rows = db.select(&table, params.get("sysparm_query").unwrap_or(""));
    let total = rows.len();
    let result: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| Value::Object(db.render(&table, r, params.mode(), fields.as_deref(), params.links(), &st.base)))
        .collect();
    drop(db);
    let page = |off: usize| format!("<{}/api/now/table/{table}?{}>", st.base, params.with_page(limit, off));
    let mut links = vec![format!("{};rel=\"first\"", page(0))];
    if offset > 0 {
        links.push(format!("{};rel=\"prev\"", page(offset.saturating_sub(limit))));
    }
    if offset + limit < total {
        links.push(format!("{};rel=\"next\"", page(offset + limit)));
    }
    let last = if total == 0 { 0 } else { (total - 1) / limit * limit };
    links.push(format!("{};rel=\"last\"", page(last)));
    let mut resp = json_response(StatusCode::OK, json!({ "result": result }));
    let h = resp.headers_mut();
    h.insert("X-Total-Count", HeaderValue::from(total as u64));
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        h.insert(header::LINK, v);
    }
    resp
}

/// `GET /api/now/table/{table}/{sys_id}`.
async fn record_get(
    State(st): Shared,
    Path((table, sys_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(resp) = st.admit(&headers, &table).await {
        return resp;
    }
    let params = Params::parse(q);
    let db = lock(&st.db);
    match db.row(&table, &sys_id) {
        None => not_found(),
        Some(row) => {
            let result = db.render(&table, &row, params.mode(), params.fields().as_deref(), params.links(), &st.base);
            json_response(StatusCode::OK, json!({ "result": result }))
        }
    }
}

/// `POST /api/now/table/{table}`: 201 with the record.
async fn table_create(
    State(st): Shared,
    Path(table): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let (user, fields) = match admit_write(&st, &headers, &table, &body).await {
        Ok(admitted) => admitted,
        Err(resp) => return resp,
    };
    let params = Params::parse(q);
    let answer = {
        let mut db = lock(&st.db);
        match db.insert(&table, &fields, &Actor { user: &user, enforce: true }) {
            Err(r) => return refusal(r),
            Ok(sys_id) => {
                let row = db.row(&table, &sys_id).expect("just inserted");
                let result =
                    db.render(&table, &row, params.mode(), params.fields().as_deref(), params.links(), &st.base);
                (sys_id, result)
            }
        }
    };
    if let Some(lost) = st.dropped_answer() {
        return lost;
    }
    let (sys_id, result) = answer;
    let mut resp = json_response(StatusCode::CREATED, json!({ "result": result }));
    if let Ok(v) = HeaderValue::from_str(&format!("{}/api/now/table/{table}/{sys_id}", st.base)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `PATCH` / `PUT /api/now/table/{table}/{sys_id}`.
async fn record_update(
    State(st): Shared,
    Path((table, sys_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let (user, fields) = match admit_write(&st, &headers, &table, &body).await {
        Ok(admitted) => admitted,
        Err(resp) => return resp,
    };
    let params = Params::parse(q);
    let result = {
        let mut db = lock(&st.db);
        match db.update(&table, &sys_id, &fields, &Actor { user: &user, enforce: true }) {
            Err(r) => return refusal(r),
            Ok(false) => return not_found(),
            Ok(true) => {
                let row = db.row(&table, &sys_id).expect("just updated");
                db.render(&table, &row, params.mode(), params.fields().as_deref(), params.links(), &st.base)
            }
        }
    };
    if let Some(lost) = st.dropped_answer() {
        return lost;
    }
    json_response(StatusCode::OK, json!({ "result": result }))
}

/// `DELETE /api/now/table/{table}/{sys_id}`: 204.
async fn record_delete(
    State(st): Shared,
    Path((table, sys_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = st.admit(&headers, &table).await {
        return resp;
    }
    if lock(&st.db).delete(&table, &sys_id) { StatusCode::NO_CONTENT.into_response() } else { not_found() }
}
