//! The Change Management API (`/api/sn_chg_rest/...`) subset for standard changes:
//!
//! - `GET /api/sn_chg_rest/change/standard/template` lists standard change templates
//!   (`std_change_record_producer`), filtered by `sysparm_query` (the simulator's encoded-query
//!   subset), paged by `sysparm_limit` (default 500, as documented) and `sysparm_offset`;
//! - `POST /api/sn_chg_rest/change/standard/{standard_change_template_id}` creates one standard
//!   change from an active template, with the JSON body's fields (the template's description and
//!   plans, and read-only fields, are not taken: they are listed in `__meta.ignoredFields`);
//!   an unknown or retired template is 404.
//!
//! Both as documented in ServiceNow's Change Management API reference
//! (<https://www.servicenow.com/docs/r/api-reference/rest-apis/change-management-api.html>):
//! 200 with `{"result": …}`, every field as `{"display_value", "value"}` where `value` is a JSON
//! number for integer and choice fields (`"state": {"display_value": "New", "value": -5.0}`), a
//! JSON boolean for booleans, and date-times add `display_value_internal` (the published
//! `sn_chg_rest-change-get-response.json` sample and the captured standard-change create answer in
//! demisto/content `…/ServiceNowv2/test_data/create_co_from_template_result.json`, whose `result`
//! is one object). Credentials and faults are checked as for the Table API.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::api::{json_response, parse_body, refusal};
use crate::db::{Db, Mode, Row};
use crate::standard_changes::{self, PRODUCERS};
use crate::{Shared, lock};

/// Integer and choice fields: their `value` is a JSON number in this API.
const NUMBER_FIELDS: &[&str] =
    &["state", "impact", "urgency", "priority", "risk", "sys_mod_count", "reassignment_count", "escalation", "order"];
const BOOLEAN_FIELDS: &[&str] = &["active", "cab_required", "knowledge", "on_hold", "made_sla", "production_system"];
const DATE_FIELDS: &[&str] = &[
    "sys_created_on",
    "sys_updated_on",
    "opened_at",
    "closed_at",
    "start_date",
    "end_date",
    "approval_set",
    "work_start",
    "work_end",
    "due_date",
];

/// A record as this API shows it.
pub(crate) fn chg_record(db: &Db, table: &str, row: &Row, base: &str) -> Map<String, Value> {
    let shown = db.render(table, row, Mode::All, None, false, base);
    shown.into_iter().map(|(k, v)| (k.clone(), typed(&k, v))).collect()
}

/// `{"display_value", "value"}` with the value's JSON type (and a date's internal display value).
fn typed(field: &str, cell: Value) -> Value {
    let Value::Object(mut cell) = cell else { return cell };
    let text = cell.get("value").and_then(Value::as_str).unwrap_or("").to_string();
    if NUMBER_FIELDS.contains(&field)
        && let Ok(n) = text.parse::<f64>()
    {
        cell.insert("value".into(), json!(n));
    } else if BOOLEAN_FIELDS.contains(&field) && (text == "true" || text == "false") {
        cell.insert("value".into(), Value::Bool(text == "true"));
    } else if DATE_FIELDS.contains(&field) {
        let display = cell.get("display_value").cloned().unwrap_or_default();
        cell.insert("display_value_internal".into(), display);
    }
    Value::Object(cell)
}

fn param(q: &Option<String>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into())
}

/// `GET /api/sn_chg_rest/change/standard/template`.
pub(crate) async fn standard_templates(State(st): Shared, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(resp) = st.admit(&headers, PRODUCERS).await {
        return resp;
    }
    let limit = param(&q, "sysparm_limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(500).max(1);
    let offset = param(&q, "sysparm_offset").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let db = lock(&st.db);
    let rows = db.select(PRODUCERS, &param(&q, "sysparm_query").unwrap_or_default());
    let result: Vec<Value> =
        rows.iter().skip(offset).take(limit).map(|r| Value::Object(chg_record(&db, PRODUCERS, r, &st.base))).collect();
    json_response(StatusCode::OK, json!({ "result": result }))
}

/// `POST /api/sn_chg_rest/change/standard/{standard_change_template_id}`.
pub(crate) async fn create_standard_change(
    State(st): Shared,
    Path(template): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match st.admit(&headers, "change_request").await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let fields = match parse_body(&body) {
        Ok(fields) => fields,
        Err(reject) => return reject.into_response(),
    };
    let result = {
        let mut db = lock(&st.db);
        match standard_changes::create_change(&mut db, &template, &fields, &user) {
            Err(r) => return refusal(r),
            Ok((sys_id, ignored)) => {
                let row = db.row("change_request", &sys_id).expect("just created");
                let mut result = chg_record(&db, "change_request", &row, &st.base);
                result.insert("__meta".into(), json!({ "ignoredFields": ignored }));
                result
            }
        }
    };
    if let Some(lost) = st.dropped_answer() {
        return lost;
    }
    json_response(StatusCode::OK, json!({ "result": result }))
}
