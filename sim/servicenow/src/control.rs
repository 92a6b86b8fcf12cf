//! The control API (`/_sim/...`): no credentials, never faulted or counted.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{json_response, not_found, parse_body, refusal, sn_error, valid_table};
use crate::catalog::{self, RequestItemSpec};
use crate::db::Actor;
use crate::{SYSTEM_USER, Shared, SnFaults, lock};

pub(crate) async fn get_faults(State(st): Shared) -> Response {
    json_response(StatusCode::OK, json!(lock(&st.faults).clone()))
}

pub(crate) async fn put_faults(State(st): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<SnFaults>(&body) {
        Ok(f) => {
            *lock(&st.faults) = f.clone();
            json_response(StatusCode::OK, json!(f))
        }
        Err(err) => sn_error(StatusCode::BAD_REQUEST, "invalid faults", Some(&err.to_string())),
    }
}

pub(crate) async fn records(State(st): Shared, Path(table): Path<String>) -> Response {
    let rows: Vec<Value> = lock(&st.db).rows(&table).into_iter().map(|r| Value::Object(r.fields)).collect();
    json_response(StatusCode::OK, Value::Array(rows))
}

pub(crate) async fn insert(State(st): Shared, Path(table): Path<String>, body: Bytes) -> Response {
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

pub(crate) async fn record(State(st): Shared, Path((table, sys_id)): Path<(String, String)>) -> Response {
    match lock(&st.db).row(&table, &sys_id) {
        Some(row) => json_response(StatusCode::OK, Value::Object(row.fields)),
        None => not_found(),
    }
}

pub(crate) async fn set(State(st): Shared, Path((table, sys_id)): Path<(String, String)>, body: Bytes) -> Response {
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

pub(crate) async fn work_notes(State(st): Shared, Path((table, sys_id)): Path<(String, String)>) -> Response {
    json_response(StatusCode::OK, json!(lock(&st.db).journal(&table, &sys_id, "work_notes")))
}

pub(crate) async fn calls(State(st): Shared) -> Response {
    json_response(
        StatusCode::OK,
        json!({"calls": st.calls.load(Ordering::SeqCst), "token_requests": st.token_requests.load(Ordering::SeqCst)}),
    )
}

pub(crate) async fn expire_tokens(State(st): Shared) -> StatusCode {
    lock(&st.tokens).clear();
    StatusCode::NO_CONTENT
}

/// `POST /_sim/request_items`: orders a request item (body [`RequestItemSpec`]); 201
/// `{"sys_id","number"}`, 400 naming the field that is wrong.
pub(crate) async fn create_request_item(State(st): Shared, body: Bytes) -> Response {
    let spec = match serde_json::from_slice::<RequestItemSpec>(&body) {
        Ok(spec) => spec,
        Err(err) => return sn_error(StatusCode::BAD_REQUEST, "Invalid request item", Some(&err.to_string())),
    };
    match catalog::create_request_item(&mut lock(&st.db), &spec) {
        Ok((sys_id, number)) => json_response(StatusCode::CREATED, json!({"sys_id": sys_id, "number": number})),
        Err(err) => sn_error(StatusCode::BAD_REQUEST, "Invalid request item", Some(&err.to_string())),
    }
}

/// `GET /_sim/request_items/{sys_id}/variables`: `{"gatehouse_cloud": …, …}` (`{}` when the item
/// has no variables).
pub(crate) async fn variables(State(st): Shared, Path(sys_id): Path<String>) -> Response {
    let db = lock(&st.db);
    if db.row("sc_req_item", &sys_id).is_none() {
        return not_found();
    }
    let vars: Map<String, Value> =
        db.variables(&sys_id).unwrap_or_default().iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json_response(StatusCode::OK, Value::Object(vars))
}

/// `PATCH /_sim/request_items/{sys_id}/variables` with `{"gatehouse_flavor": "m1.large", …}`:
/// changes variables the item has (someone editing the item after its approval); 400 for a
/// variable it does not have, and then nothing changes.
pub(crate) async fn set_variables(State(st): Shared, Path(sys_id): Path<String>, body: Bytes) -> Response {
    let fields = match parse_body(&body) {
        Ok(m) => m,
        Err(resp) => return resp.into_response(),
    };
    let mut db = lock(&st.db);
    if db.row("sc_req_item", &sys_id).is_none() {
        return not_found();
    }
    let has = |name: &str| db.variables(&sys_id).unwrap_or_default().iter().any(|(n, _)| n == name);
    let mut changes = Vec::new();
    for (name, value) in &fields {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return sn_error(StatusCode::BAD_REQUEST, "Invalid variables", Some(&format!("{name}: not text"))),
        };
        if !has(name) {
            let detail = format!("{name}: the item has no such variable");
            return sn_error(StatusCode::BAD_REQUEST, "Invalid variables", Some(&detail));
        }
        changes.push((name.clone(), text));
    }
    for (name, text) in changes {
        db.set_variable(&sys_id, &name, &text);
    }
    let vars: Map<String, Value> =
        db.variables(&sys_id).unwrap_or_default().iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json_response(StatusCode::OK, Value::Object(vars))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCatalogItem {
    name: String,
    #[serde(default)]
    gatehouse_variables: bool,
}

/// `POST /_sim/catalog_items` with `{"name", "gatehouse_variables": bool}`: 201 `{"sys_id"}`.
pub(crate) async fn add_catalog_item(State(st): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<NewCatalogItem>(&body) {
        Ok(item) if !item.name.trim().is_empty() => {
            let sys_id = catalog::add_item(&mut lock(&st.db), None, item.name.trim(), item.gatehouse_variables);
            json_response(StatusCode::CREATED, json!({"sys_id": sys_id}))
        }
        Ok(_) => sn_error(StatusCode::BAD_REQUEST, "Invalid catalog item", Some("name: must not be empty")),
        Err(err) => sn_error(StatusCode::BAD_REQUEST, "Invalid catalog item", Some(&err.to_string())),
    }
}

/// `POST /_sim/changes/{sys_id}/approve`: the change's current approval step is approved (Assess
/// → Authorize, Authorize → Scheduled); 200 with the change as stored, 404 for no such change,
/// 409 when no approval is pending.
pub(crate) async fn approve_change(State(st): Shared, Path(sys_id): Path<String>) -> Response {
    decide(&st, &sys_id, true)
}

/// `POST /_sim/changes/{sys_id}/reject`: approval "rejected", back to New (-5).
pub(crate) async fn reject_change(State(st): Shared, Path(sys_id): Path<String>) -> Response {
    decide(&st, &sys_id, false)
}

fn decide(st: &crate::SimState, sys_id: &str, approve: bool) -> Response {
    let mut db = lock(&st.db);
    match db.decide_change(sys_id, approve, SYSTEM_USER) {
        Ok(Some(_)) => json_response(
            StatusCode::OK,
            db.row("change_request", sys_id).map(|r| Value::Object(r.fields)).unwrap_or(Value::Null),
        ),
        Ok(None) => not_found(),
        Err(r) => refusal(r),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStandardTemplate {
    name: String,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// `POST /_sim/standard_templates` with `{"name", "active"}` (active by default): a standard change
/// template with the seeded template's values; 201 `{"sys_id"}`, the id the Change Management
/// API creates changes from.
pub(crate) async fn add_standard_template(State(st): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<NewStandardTemplate>(&body) {
        Ok(t) if !t.name.trim().is_empty() => {
            let sys_id = crate::standard_changes::add_template(&mut lock(&st.db), None, t.name.trim(), t.active);
            json_response(StatusCode::CREATED, json!({"sys_id": sys_id}))
        }
        Ok(_) => sn_error(StatusCode::BAD_REQUEST, "Invalid standard change template", Some("name: must not be empty")),
        Err(err) => sn_error(StatusCode::BAD_REQUEST, "Invalid standard change template", Some(&err.to_string())),
    }
}
