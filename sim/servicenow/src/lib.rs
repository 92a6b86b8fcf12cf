//! A simulator of the ServiceNow Table API subset Gatehouse uses, for tests and the demo.
//!
//! Serves on one port:
//! - `POST /oauth_token.do` (form-encoded; `grant_type=client_credentials` with `client_id` and
//!   `client_secret`, or `grant_type=password` adding `username` and `password`), answering in
//!   the shape of ServiceNow's published token sample with `expires_in`;
//! - `GET|POST /api/now/table/{table}` and `GET|PATCH|PUT|DELETE /api/now/table/{table}/{sys_id}`,
//!   answering `{"result": ...}` with string values as the Table API does. Supported:
//!   `sysparm_query` (`=`, `!=`, `IN`, `LIKE`, `>`, `>=`, `<`, `<=`,
//!   `ORDERBY`/`ORDERBYDESC`, joined with `^`, on fields or
//!   dot-walked fields; any other condition, and a condition on a field the table lacks, is
//!   silently ignored, as ServiceNow does; `=` ignores case, as ServiceNow's database does),
//!   `sysparm_fields` (unknown fields are left out; dot-walked fields such as
//!   `requested_for.email` answer under their dotted name; `variables.<name>` reads a request
//!   item's catalog variable, left out when the item has no such variable),
//!   `sysparm_limit` / `sysparm_offset` (with `X-Total-Count` and a `Link` header carrying
//!   `rel="first"`, `"prev"`, `"next"` and `"last"`), `sysparm_display_value=false|true|all`
//!   and `sysparm_exclude_reference_link`;
//! - `GET /api/now/table/sys_journal_field` over the journal (`element_id`, `element`, `name`,
//!   `value`, `sys_created_on`, `sys_created_by`), queried and paged like any table (an auditor
//!   reads the anchors of Gatehouse's work notes so: `element=work_notes^valueLIKEgatehouse-chain:
//!   ^sys_created_on>=…^ORDERBYsys_created_on`); writing it is refused (403, an ACL exception);
//! - the Change Management API's standard changes: `GET /api/sn_chg_rest/change/standard/template`
//!   and `POST /api/sn_chg_rest/change/standard/{standard_change_template_id}` (fields as
//!   `{"display_value","value"}` with typed values; see `change_api.rs`). A change created from
//!   an active template (`std_change_record_producer`) is type standard, New and already approved;
//!   the Table API may then move it New → Scheduled. Seeded: [`DEPLOY_TEMPLATE_NAME`] (active,
//!   [`DEPLOY_TEMPLATE`]) and [`RETIRED_TEMPLATE_NAME`] (retired, [`RETIRED_TEMPLATE`]).
//!
//! Tables `sc_req_item` (numbers `RITM0010001`…; `stage` with its choices), `sc_request`
//! (`REQ0010001`…) and `change_request` (`CHG0030001`…, normal change state model: see
//! [`SnSim`]) have ServiceNow's fields and choices; `sys_user` (the integration user, and the
//! people of ordered items; references to it display the user's `name`), `sc_cat_item`,
//! `item_option_new_set`, `item_option_new` and `io_set_item` hold the seeded catalog: the item
//! "Virtual machine (Gatehouse)" ([`VM_CATALOG_ITEM`]) uses the Gatehouse variable set
//! ([`GATEHOUSE_VARIABLE_SET`], variables `gatehouse_cloud`, `gatehouse_image`,
//! `gatehouse_flavor`, `gatehouse_network`, `gatehouse_server_name`, `gatehouse_count`,
//! `gatehouse_lease_days`, `gatehouse_justification`), "Standard laptop" ([`LAPTOP_CATALOG_ITEM`]) and "Decommission
//! virtual machine (Gatehouse)" ([`DECOMMISSION_CATALOG_ITEM`]) do not. Any other
//! table name is accepted and stores whatever it is sent. Writing `work_notes` or `comments`
//! appends a journal entry instead of storing a value; reading with display values shows the
//! journal newest first (`"YYYY-MM-DD HH:MM:SS - Name (Work notes)\ntext\n\n"`). Variables are
//! not written through the Table API (only an order creates them).
//!
//! Every API call needs HTTP Basic or a bearer token from `/oauth_token.do`; otherwise 401 with
//! ServiceNow's "User Not Authenticated" body.
//!
//! Control API (same port, no auth, never faulted or counted): `GET|PUT /_sim/faults` (JSON
//! [`SnFaults`]), `GET|POST /_sim/records/{table}` (list stored values; insert a JSON object,
//! answering `{"sys_id"}`), `GET|PATCH /_sim/records/{table}/{sys_id}` (read; set fields as an
//! administrator would: no business rule refuses, derived fields follow; e.g. `{"state": "4"}`
//! closes an item and ends `active`), `GET /_sim/work_notes/{table}/{sys_id}` (a JSON array of
//! [`JournalEntry`]), `GET /_sim/calls` (`{"calls","token_requests"}`), `POST /_sim/expire-tokens`,
//! and the catalog:
//! - `POST /_sim/request_items` with a [`RequestItemSpec`] (`{"requested_for": {"email", "name",
//!   "user_name"}, "opened_by": {…}, "approval", "short_description", "variables": {"cloud",
//!   "image", "flavor", "network", "server_name", "count", "lease_days", "justification"}, "cat_item",
//!   "sys_id"}`; all but `requested_for` optional) orders an item: its users (a `sys_user` with
//!   the same `user_name` is reused), a request, and the item (state 1 Open, active, `approval`
//!   as asked, default `approved`), whose variables are stored under their `gatehouse_*` names
//!   as text when its catalog item (default the VM item) uses the Gatehouse variable set, and
//!   not otherwise. 201 `{"sys_id", "number"}`; 400 `{"error": {"message", "detail"}, "status":
//!   "failure"}` whose detail names the field;
//! - `GET|PATCH /_sim/request_items/{sys_id}/variables` (`{"gatehouse_cloud": "…", …}`; PATCH
//!   changes variables the item has, 400 for any other);
//! - `POST /_sim/catalog_items` with `{"name", "gatehouse_variables": bool}` (201 `{"sys_id"}`);
//! - `POST /_sim/changes/{sys_id}/approve` and `…/reject`: the change's current approval step is
//!   approved or rejected as its approvers would (see [`SnSim`]); 200 with the change as stored,
//!   404 for no such change, 409 when no approval is pending;
//! - `POST /_sim/standard_templates` with `{"name", "active"}` (active by default) adds a standard
//!   change template (201 `{"sys_id"}`).
//!
//! Seeded for changes: `sys_user_group` ([`CHANGE_GROUPS`]) and `cmdb_ci` ([`SHOP_SERVICE`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use servicenow_sim::{ItemVariables, PersonSpec, RequestItemSpec, SnSim, SnSimConfig};
//! let sim = SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await?;
//! let ada = PersonSpec::new("ada@example.com", "Ada Lovelace", "ada");
//! let vars = ItemVariables::vm("demo", "ubuntu-24.04", "m1.small", "private", "web-01", 1);
//! let (sys_id, number) = sim.create_request_item(&RequestItemSpec::new(ada, vars));
//! println!("{number}: {}/api/now/table/sc_req_item/{sys_id}", sim.base_url());
//! # Ok(()) }
//! ```

mod api;
mod catalog;
mod change_api;
mod control;
mod db;
mod query;
mod render;
mod samples;
mod schema;
mod standard_changes;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sim_server::Served;

use crate::api::{Reject, fault_response, router, valid_table};
pub use crate::catalog::{
    DECOMMISSION_CATALOG_ITEM, GATEHOUSE_VARIABLE_SET, ItemVariables, LAPTOP_CATALOG_ITEM, PersonSpec, RequestItemSpec,
    SpecError, VM_CATALOG_ITEM,
};
use crate::db::{Actor, Db};
pub use crate::standard_changes::{DEPLOY_TEMPLATE, DEPLOY_TEMPLATE_NAME, RETIRED_TEMPLATE, RETIRED_TEMPLATE_NAME};

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
    /// Writes (POST/PATCH/PUT on the Table API, and standard change creates) are applied, then
    /// answered with `status` (503 when unset), as when an answer is lost; reads are served
    /// normally and do not count against `remaining`.
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

/// The seeded `sys_user_group` names: the default Assess group ("Change Management"), the CAB
/// ("CAB Approval") and a few teams a policy may name.
pub const CHANGE_GROUPS: [&str; 5] = ["Change Management", "CAB Approval", "Service Desk", "Platform Team", "Network"];

/// The seeded configuration item (`cmdb_ci`, also in `cmdb_ci_service`).
pub const SHOP_SERVICE: &str = "Shop (business service)";

/// A running simulator. Dropping it aborts the server task; [`SnSim::stop`] shuts it down
/// gracefully.
///
/// Change requests follow ServiceNow's normal change state model for Table API writers (see
/// `db::change_model::change_move`): they start in New (-5) with approval "not requested"; the API may move
/// them New → Assess (-4) (approval "requested", for the Assess group: the change's
/// `assignment_group`, else "Change Management"), Scheduled (-2) → Implement (-1) → Review (0) →
/// Closed (3) (with `close_code` and `close_notes`), and to Canceled (4) from any open state but
/// Review; anything else is refused with 403 `{"error":{"message":"Operation Failed","detail":
/// "Operation against file 'change_request' was aborted by Business Rule …"},"status":"failure"}`.
/// Approvals move them on: [`SnSim::approve_change`] (or `POST /_sim/changes/{sys_id}/approve`)
/// takes Assess to Authorize (-3; approval stays "requested", now for "CAB Approval"), then
/// Authorize to Scheduled with approval "approved"; [`SnSim::reject_change`] sets approval
/// "rejected" and sends the change back to New. Closed and Canceled set `active` false. Request
/// items: Closed Complete (3), Closed Incomplete (4) and
/// Closed Skipped (7) set `active` false; their `stage` (`fulfillment`, `complete`, `Request
/// Cancelled`, …) is whatever was last written, as no business rule derives it from the state.
/// The simulator's own methods and control API are not
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

    /// Approves the change's current approval step as its approvers would (Assess → Authorize,
    /// then Authorize → Scheduled with approval "approved"); answers the new state. `Err` when
    /// there is no such change or no approval is pending.
    pub fn approve_change(&self, sys_id: &str) -> Result<String, String> {
        decide(&self.state, sys_id, true)
    }

    /// Rejects the change's current approval step: approval "rejected", state New (-5), as
    /// ServiceNow does with a rejected normal change; answers the new state.
    pub fn reject_change(&self, sys_id: &str) -> Result<String, String> {
        decide(&self.state, sys_id, false)
    }

    /// Adds a standard change template (the seeded template's values) and answers its sys_id, the
    /// id `POST /api/sn_chg_rest/change/standard/{id}` takes; `active: false` is a retired one.
    pub fn add_standard_template(&self, name: &str, active: bool) -> String {
        standard_changes::add_template(&mut lock(&self.state.db), None, name, active)
    }

    /// The sys_id of the seeded catalog item "Virtual machine (Gatehouse)" ([`VM_CATALOG_ITEM`]).
    pub fn vm_catalog_item(&self) -> &'static str {
        VM_CATALOG_ITEM
    }

    /// The sys_id of the seeded catalog item "Standard laptop" ([`LAPTOP_CATALOG_ITEM`]).
    pub fn laptop_catalog_item(&self) -> &'static str {
        LAPTOP_CATALOG_ITEM
    }

    /// Adds a catalog item, with the Gatehouse variable set or without, and answers its sys_id.
    pub fn add_catalog_item(&self, name: &str, gatehouse_variables: bool) -> String {
        catalog::add_item(&mut lock(&self.state.db), None, name, gatehouse_variables)
    }

    /// Orders a request item as `POST /_sim/request_items` does; answers (sys_id, number).
    pub fn try_create_request_item(&self, spec: &RequestItemSpec) -> Result<(String, String), SpecError> {
        catalog::create_request_item(&mut lock(&self.state.db), spec)
    }

    /// [`SnSim::try_create_request_item`]; panics when the spec is refused.
    pub fn create_request_item(&self, spec: &RequestItemSpec) -> (String, String) {
        self.try_create_request_item(spec).unwrap_or_else(|e| panic!("servicenow-sim: request item refused: {e}"))
    }

    /// The request item's variables by name (`gatehouse_cloud` …); empty when it has none.
    pub fn variables(&self, sys_id: &str) -> BTreeMap<String, String> {
        lock(&self.state.db).variables(sys_id).unwrap_or_default().iter().cloned().collect()
    }

    /// Changes a variable the item has (someone editing it after its approval); `false` when it
    /// has no such variable.
    pub fn set_variable(&self, sys_id: &str, name: &str, value: &str) -> bool {
        lock(&self.state.db).set_variable(sys_id, name, value)
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

fn decide(st: &SimState, sys_id: &str, approve: bool) -> Result<String, String> {
    match lock(&st.db).decide_change(sys_id, approve, SYSTEM_USER) {
        Ok(Some(state)) => Ok(state),
        Ok(None) => Err(format!("no change_request {sys_id}")),
        Err(r) => Err(r.detail),
    }
}

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
        catalog::seed(&mut db);
        seed_change_management(&mut db);
        standard_changes::seed(&mut db);
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

/// The groups and the configuration item a change refers to by name: [`CHANGE_GROUPS`] in
/// `sys_user_group`, [`SHOP_SERVICE`] in `cmdb_ci` (and `cmdb_ci_service`, same sys_id).
fn seed_change_management(db: &mut Db) {
    let admin = Actor { user: SYSTEM_USER, enforce: false };
    for name in CHANGE_GROUPS {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(name.to_string()));
        let _ = db.insert("sys_user_group", &m, &admin);
    }
    let mut m = Map::new();
    m.insert("name".into(), Value::String(SHOP_SERVICE.into()));
    m.insert("operational_status".into(), Value::String("1".into()));
    if let Ok(id) = db.insert("cmdb_ci", &m, &admin) {
        m.insert("sys_id".into(), Value::String(id));
        let _ = db.insert("cmdb_ci_service", &m, &admin);
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
