//! A simulator of the ServiceNow Table API subset Gatehouse uses, for tests and the demo.
//!
//! Serves on one port:
//! - `POST /oauth_token.do` (form-encoded; `grant_type=client_credentials` with `client_id` and
//!   `client_secret`, or `grant_type=password` adding `username` and `password`), answering in
//!   the shape of ServiceNow's published token sample with `expires_in`;
//! - `GET|POST /api/now/table/{table}` and `GET|PATCH|PUT|DELETE /api/now/table/{table}/{sys_id}`,
//!   answering `{"result": ...}` with string values as the Table API does. Supported:
//!   `sysparm_query` (`=`, `!=`, `IN`, `ORDERBY`/`ORDERBYDESC`, joined with `^`; any other
//!   condition, and a condition on a field the table lacks, is silently ignored, as ServiceNow
//!   does; `=` ignores case, as ServiceNow's database does), `sysparm_fields`,
//!   `sysparm_limit` / `sysparm_offset` (with `X-Total-Count` and a `Link` header carrying
//!   `rel="first"`, `"prev"`, `"next"` and `"last"`), `sysparm_display_value=false|true|all`
//!   and `sysparm_exclude_reference_link`;
//! - `GET /api/now/table/sys_journal_field` over the journal (`element_id`, `element`, `name`,
//!   `value`, `sys_created_on`, `sys_created_by`).
//!
//! Tables `sc_req_item` (numbers `RITM0010001`…) and `change_request` (`CHG0030001`…, normal
//! change state model: see [`SnSim`]) have ServiceNow's fields and choices; `sys_user` holds the
//! integration user; any other table name is accepted and stores whatever it is sent. Writing
//! `work_notes` or `comments` appends a journal entry instead of storing a value; reading with
//! display values shows the journal newest first
//! (`"YYYY-MM-DD HH:MM:SS - Name (Work notes)\ntext\n\n"`).
//!
//! Every API call needs HTTP Basic or a bearer token from `/oauth_token.do`; otherwise 401 with
//! ServiceNow's "User Not Authenticated" body.
//!
//! Control API (same port, no auth, never faulted or counted): `GET|PUT /_sim/faults` (JSON
//! [`SnFaults`]), `GET|POST /_sim/records/{table}` (list stored values; insert a JSON object,
//! answering `{"sys_id"}`), `GET|PATCH /_sim/records/{table}/{sys_id}` (read; set fields as an
//! administrator would: no business rule refuses, derived fields follow),
//! `GET /_sim/work_notes/{table}/{sys_id}` (a JSON array of [`JournalEntry`]),
//! `GET /_sim/calls` (`{"calls","token_requests"}`), `POST /_sim/expire-tokens`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use servicenow_sim::{SnSim, SnSimConfig};
//! let sim = SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await?;
//! let mut ritm = serde_json::Map::new();
//! ritm.insert("short_description".into(), "VM web-01".into());
//! let sys_id = sim.insert("sc_req_item", ritm);
//! println!("{}/api/now/table/sc_req_item/{sys_id}", sim.base_url());
//! # Ok(()) }
//! ```

mod db;
mod samples;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sim_server::Served;

use crate::db::{Actor, Db, Mode, Refusal};

/// Who the simulated instance lets in, and how long its tokens live.
#[derive(Clone, Debug)]
pub struct SnSimConfig {
    /// HTTP Basic user (also the user name of `sys_created_by` etc.).
    pub user: String,
    pub password: String,
    /// The user's `sys_user.name`, shown in journal headers and reference display values.
    pub user_display_name: String,
    pub client_id: String,
    pub client_secret: String,
    /// The user a client-credentials token acts as.
    pub oauth_user: String,
    /// `expires_in` of issued tokens.
    pub token_ttl: Duration,
    /// `sysparm_limit` when a list call sends none.
    pub default_limit: usize,
}

impl Default for SnSimConfig {
    fn default() -> Self {
        SnSimConfig {
            user: "gatehouse".into(),
            password: "secret".into(),
            user_display_name: "Gatehouse Integration".into(),
            client_id: "gh-client".into(),
            client_secret: "gh-secret".into(),
            oauth_user: "gatehouse".into(),
            token_ttl: Duration::from_secs(1800),
            default_limit: 10_000,
        }
    }
}

/// Fault switches for `/oauth_token.do` and `/api/...` calls. Settable with
/// [`SnSim::set_faults`] or `PUT /_sim/faults` (missing JSON fields take their defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnFaults {
    /// Answer this status (401, 429, 503, ...) instead of serving the call.
    pub status: Option<u16>,
    /// `Retry-After` (seconds) sent with the faulted answer (with 429, typically).
    pub retry_after_secs: Option<u64>,
    /// How many calls the fault lasts (each faulted call counts); `None`: until cleared. When it
    /// runs out, `status`, `retry_after_secs` and `drop_response_after_write` are cleared.
    pub remaining: Option<u32>,
    /// Added before answering every call (also when not faulted).
    pub latency_ms: u64,
    /// Writes (POST/PATCH/PUT on the Table API) are applied, then answered with `status` (503
    /// when unset), as when an answer is lost; reads are served normally and do not count
    /// against `remaining`.
    pub drop_response_after_write: bool,
}

/// One journal entry (a work note or a comment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// `YYYY-MM-DD HH:MM:SS` (UTC).
    pub at: String,
    /// The writer's user name.
    pub author: String,
    pub text: String,
}

/// A running simulator. Dropping it aborts the server task; [`SnSim::stop`] shuts it down
/// gracefully.
///
/// Change requests follow ServiceNow's normal change state model: they start in New (-5) with
/// approval "not requested"; moving to Authorize (-3) sets approval "requested"; Scheduled (-2)
/// and Implement (-1) are refused (403) until approval is "approved"; Closed (3) is refused
/// unless the change is in Review (0) and has `close_code` and `close_notes`; Closed and
/// Canceled (4) set `active` false. Request items: Closed Complete (3), Closed Incomplete (4) and
/// Closed Skipped (7) set `active` false. The simulator's own methods and control API are not
/// refused (they play a change manager or an administrator).
pub struct SnSim {
    state: Arc<SimState>,
    served: Served,
}

impl SnSim {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(addr: SocketAddr, config: SnSimConfig) -> std::io::Result<SnSim> {
        let (listener, base) = sim_server::bind(addr).await?;
        let state = Arc::new(SimState::new(config, base));
        let app = router(state.clone());
        let served = Served::spawn(listener, app, "servicenow-sim");
        tracing::info!(url = %state.base, "servicenow-sim listening");
        Ok(SnSim { state, served })
    }

    /// `http://127.0.0.1:PORT`: the instance URL.
    pub fn base_url(&self) -> String {
        self.state.base.clone()
    }

    pub fn config(&self) -> &SnSimConfig {
        &self.state.config
    }

    pub fn set_faults(&self, faults: SnFaults) {
        *lock(&self.state.faults) = faults;
    }

    pub fn faults(&self) -> SnFaults {
        lock(&self.state.faults).clone()
    }

    /// The table's records as stored (string values; journal fields are not stored), oldest first.
    pub fn records(&self, table: &str) -> Vec<Value> {
        lock(&self.state.db).rows(table).into_iter().map(|r| Value::Object(r.fields)).collect()
    }

    pub fn record(&self, table: &str, sys_id: &str) -> Option<Value> {
        lock(&self.state.db).row(table, sys_id).map(|r| Value::Object(r.fields))
    }

    /// The record's work notes, oldest first.
    pub fn work_notes(&self, table: &str, sys_id: &str) -> Vec<JournalEntry> {
        lock(&self.state.db).journal(table, sys_id, "work_notes")
    }

    /// The record's additional comments, oldest first.
    pub fn comments(&self, table: &str, sys_id: &str) -> Vec<JournalEntry> {
        lock(&self.state.db).journal(table, sys_id, "comments")
    }

    /// Inserts a record as the user "system" (defaults, numbers and journal fields as for an API
    /// insert; no business rule refuses) and answers its sys_id.
    pub fn insert(&self, table: &str, fields: Map<String, Value>) -> String {
        let actor = Actor { user: SYSTEM_USER, enforce: false };
        match lock(&self.state.db).insert(table, &fields, &actor) {
            Ok(id) => id,
            Err(r) => panic!("servicenow-sim: insert into {table} refused: {}", r.detail),
        }
    }

    /// Sets one field as the user "system" (a change manager approving: `approval` =
    /// `approved`; then `state` = `-1`). `work_notes` / `comments` add a journal entry. No
    /// business rule refuses; derived fields follow. `false` when there is no such record.
    pub fn set_field(&self, table: &str, sys_id: &str, field: &str, value: &str) -> bool {
        let mut m = Map::new();
        m.insert(field.to_string(), Value::String(value.to_string()));
        let actor = Actor { user: SYSTEM_USER, enforce: false };
        lock(&self.state.db).update(table, sys_id, &m, &actor).unwrap_or(false)
    }

    /// Calls received on `/oauth_token.do` and `/api/...` (whatever their answer).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Calls received on `/oauth_token.do`.
    pub fn token_requests(&self) -> u64 {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Every token issued so far is refused (401) from now on.
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// Graceful shutdown (gives up after 5 s and aborts).
    pub async fn stop(self) {
        self.served.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

const SYSTEM_USER: &str = "system";

struct SimState {
    config: SnSimConfig,
    base: String,
    faults: Mutex<SnFaults>,
    db: Mutex<Db>,
    /// Access token → (user, expiry).
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    calls: AtomicU64,
    token_requests: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Shared = State<Arc<SimState>>;

impl SimState {
    fn new(config: SnSimConfig, base: String) -> SimState {
        let mut db = Db::default();
        let mut users = vec![(config.user.clone(), config.user_display_name.clone())];
        if config.oauth_user != config.user {
            users.push((config.oauth_user.clone(), config.oauth_user.clone()));
        }
        users.push((SYSTEM_USER.into(), "System".into()));
        for (user_name, name) in users {
            let mut m = Map::new();
            m.insert("user_name".into(), Value::String(user_name));
            m.insert("name".into(), Value::String(name));
            let _ = db.insert("sys_user", &m, &Actor { user: SYSTEM_USER, enforce: false });
        }
        SimState {
            config,
            base,
            faults: Mutex::new(SnFaults::default()),
            db: Mutex::new(db),
            tokens: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
        }
    }

    /// Counts the call, waits the latency, and answers the status fault if one is due.
    async fn gate(&self) -> Result<(), Response> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let latency = lock(&self.faults).latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let mut f = lock(&self.faults);
        if f.drop_response_after_write {
            return Ok(());
        }
        match f.status {
            Some(status) if f.remaining != Some(0) => {
                let resp = fault_response(status, f.retry_after_secs);
                consume(&mut f);
                Err(resp)
            }
            _ => Ok(()),
        }
    }

    /// After a successful write: the lost answer, if `drop_response_after_write` is due.
    fn dropped_answer(&self) -> Option<Response> {
        let mut f = lock(&self.faults);
        if !f.drop_response_after_write || f.remaining == Some(0) {
            return None;
        }
        let resp = fault_response(f.status.unwrap_or(503), f.retry_after_secs);
        consume(&mut f);
        Some(resp)
    }

    /// The authenticated user, from `Authorization: Basic …` or `Bearer …`.
    /// What every Table API call goes through: the fault switches, then the credentials and the
    /// table name. Answers the authenticated user, or the answer to give instead.
    async fn admit(&self, headers: &HeaderMap, table: &str) -> Result<String, Response> {
        self.gate().await?;
        self.authenticate(headers).and_then(|u| valid_table(table).map(|_| u)).map_err(IntoResponse::into_response)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<String, Reject> {
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok();
            let text = decoded.and_then(|d| String::from_utf8(d).ok()).unwrap_or_default();
            if let Some((user, password)) = text.split_once(':')
                && user == self.config.user
                && password == self.config.password
            {
                return Ok(user.to_string());
            }
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some((user, expires)) = lock(&self.tokens).get(rest)
            && Instant::now() < *expires
        {
            return Ok(user.clone());
        }
        Err(Reject::Unauthenticated)
    }
}

fn consume(f: &mut SnFaults) {
    if let Some(n) = f.remaining {
        let left = n.saturating_sub(1);
        if left == 0 {
            *f = SnFaults { latency_ms: f.latency_ms, ..SnFaults::default() };
        } else {
            f.remaining = Some(left);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

fn raw_json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// ServiceNow's error shape: `{"error":{"message","detail"},"status":"failure"}`.
fn sn_error(status: StatusCode, message: &str, detail: Option<&str>) -> Response {
    json_response(status, json!({"error": {"message": message, "detail": detail}, "status": "failure"}))
}

fn unauthorized() -> Response {
    let mut resp = raw_json(StatusCode::UNAUTHORIZED, samples::ERROR_401);
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("BASIC realm=\"Service-now\""));
    resp
}

fn fault_response(status: u16, retry_after: Option<u64>) -> Response {
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

fn not_found() -> Response {
    sn_error(
        StatusCode::NOT_FOUND,
        "No Record found",
        Some("Record doesn't exist or ACL restricts the record retrieval"),
    )
}

fn refusal(r: Refusal) -> Response {
    sn_error(StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN), &r.message, Some(&r.detail))
}

/// An early answer of a handler.
enum Reject {
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

fn valid_table(table: &str) -> Result<(), Reject> {
    if !table.is_empty() && table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Ok(())
    } else {
        Err(Reject::InvalidTable(table.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// Query parameters
// ---------------------------------------------------------------------------------------------

struct Params(Vec<(String, String)>);

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

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Reject> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Reject::BadBody),
    }
}

// ---------------------------------------------------------------------------------------------
// Router and handlers
// ---------------------------------------------------------------------------------------------

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/oauth_token.do", post(oauth_token))
        .route("/api/now/table/{table}", get(table_list).post(table_create))
        .route(
            "/api/now/table/{table}/{sys_id}",
            get(record_get).patch(record_update).put(record_update).delete(record_delete),
        )
        .route("/_sim/faults", get(control_get_faults).put(control_put_faults))
        .route("/_sim/records/{table}", get(control_records).post(control_insert))
        .route("/_sim/records/{table}/{sys_id}", get(control_record).patch(control_set))
        .route("/_sim/work_notes/{table}/{sys_id}", get(control_work_notes))
        .route("/_sim/calls", get(control_calls))
        .route("/_sim/expire-tokens", post(control_expire_tokens))
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
    let user = match st.admit(&headers, &table).await {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let fields = match parse_body(&body) {
        Ok(m) => m,
        Err(resp) => return resp.into_response(),
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
    let user = match st.admit(&headers, &table).await {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let fields = match parse_body(&body) {
        Ok(m) => m,
        Err(resp) => return resp.into_response(),
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

async fn control_get_faults(State(st): Shared) -> Response {
    json_response(StatusCode::OK, json!(lock(&st.faults).clone()))
}

async fn control_put_faults(State(st): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<SnFaults>(&body) {
        Ok(f) => {
            *lock(&st.faults) = f.clone();
            json_response(StatusCode::OK, json!(f))
        }
        Err(err) => sn_error(StatusCode::BAD_REQUEST, "invalid faults", Some(&err.to_string())),
    }
}

async fn control_records(State(st): Shared, Path(table): Path<String>) -> Response {
    let rows: Vec<Value> = lock(&st.db).rows(&table).into_iter().map(|r| Value::Object(r.fields)).collect();
    json_response(StatusCode::OK, Value::Array(rows))
}

async fn control_insert(State(st): Shared, Path(table): Path<String>, body: Bytes) -> Response {
    if let Err(resp) = valid_table(&table) {
        return resp.into_response();
    }
    let fields = match parse_body(&body) {
        Ok(m) => m,
        Err(resp) => return resp.into_response(),
    };
    match lock(&st.db).insert(&table, &fields, &Actor { user: SYSTEM_USER, enforce: false }) {
        Ok(sys_id) => json_response(StatusCode::CREATED, json!({ "sys_id": sys_id })),
        Err(r) => refusal(r),
    }
}

async fn control_record(State(st): Shared, Path((table, sys_id)): Path<(String, String)>) -> Response {
    match lock(&st.db).row(&table, &sys_id) {
        Some(row) => json_response(StatusCode::OK, Value::Object(row.fields)),
        None => not_found(),
    }
}

async fn control_set(State(st): Shared, Path((table, sys_id)): Path<(String, String)>, body: Bytes) -> Response {
    let fields = match parse_body(&body) {
        Ok(m) => m,
        Err(resp) => return resp.into_response(),
    };
    let mut db = lock(&st.db);
    match db.update(&table, &sys_id, &fields, &Actor { user: SYSTEM_USER, enforce: false }) {
        Ok(true) => json_response(StatusCode::OK, db.row(&table, &sys_id).map(|r| Value::Object(r.fields)).into()),
        Ok(false) => not_found(),
        Err(r) => refusal(r),
    }
}

async fn control_work_notes(State(st): Shared, Path((table, sys_id)): Path<(String, String)>) -> Response {
    json_response(StatusCode::OK, json!(lock(&st.db).journal(&table, &sys_id, "work_notes")))
}

async fn control_calls(State(st): Shared) -> Response {
    json_response(
        StatusCode::OK,
        json!({"calls": st.calls.load(Ordering::SeqCst), "token_requests": st.token_requests.load(Ordering::SeqCst)}),
    )
}

async fn control_expire_tokens(State(st): Shared) -> StatusCode {
    lock(&st.tokens).clear();
    StatusCode::NO_CONTENT
}
