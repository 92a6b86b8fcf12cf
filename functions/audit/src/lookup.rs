//! `GET /v1/audit/records?servicenow_sys_id=<32 hex>` (scope `audit`): the evidence record Gatehouse
//! keeps for a ServiceNow record, found by that record's sys_id. `gatehouse audit verify --anchors`
//! asks it for every record ServiceNow holds anchors of that the export did not bring: a 404 then
//! means Gatehouse no longer has the record the anchors were written for.
//!
//! Each kind of record is looked up in turn (`find`): provisioning requests by their request item
//! (the key intake stores a request under), then change records by their current change. 404 when none has the sys_id; 422 naming the field
//! when the query is malformed.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use domain::usecases::Services;
use domain::{Error, Result};
use http_api::ApiError;
use serde_json::Value;

/// The query's one parameter.
const FIELD: &str = "servicenow_sys_id";

pub async fn records(State(services): State<Services>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let sys_id = parse(raw.as_deref())?;
    let record = find(&services, &sys_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("a record of ServiceNow sys_id {sys_id}")))?;
    Ok(super::private(axum::Json(record).into_response()))
}

/// The evidence record whose ServiceNow record is `sys_id`, of whichever kind holds it.
async fn find(services: &Services, sys_id: &str) -> Result<Option<Value>> {
    if let Some(record) = request_record(services, sys_id).await? {
        return Ok(Some(record));
    }
    // A change record, by the ServiceNow change it has now (an earlier, cancelled change of the
    // same commit and environment is found through that change's correlation id instead).
    Ok(services.changes.change_by_sys_id(sys_id).await?.map(|rec| crate::change_record::evidence(services, &rec)))
}

/// The provisioning request created for the request item `sys_id`: intake keys a request by its
/// source (`Request::source_key`, `servicenow#<sys_id>`, the sys_id lower-case).
async fn request_record(services: &Services, sys_id: &str) -> Result<Option<Value>> {
    let Some(request) = services.store.find_by_source(&format!("servicenow#{sys_id}")).await? else { return Ok(None) };
    match services.read_consistent(&request.id).await? {
        Some(read) => Ok(Some(crate::record::evidence(&read).to_value()?)),
        None => Ok(None),
    }
}

/// `servicenow_sys_id`, required, once, 32 hexadecimal digits (read lower-case, as Gatehouse keeps
/// sys_ids); any other parameter is a 422 naming it.
fn parse(raw: Option<&str>) -> Result<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| Error::invalid("query", "is not a URL-encoded query string"))?;
    let mut sys_id = None;
    for (name, value) in pairs {
        if name != FIELD {
            return Err(Error::invalid(name, format!("is not a parameter of the lookup (only {FIELD})")));
        }
        if sys_id.replace(value).is_some() {
            return Err(Error::invalid(FIELD, "is given more than once"));
        }
    }
    let sys_id = sys_id.ok_or_else(|| Error::invalid(FIELD, "is required"))?;
    if sys_id.len() != 32 || !sys_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(FIELD, "must be a ServiceNow sys_id: 32 hexadecimal digits"));
    }
    Ok(sys_id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sys_id_is_32_hex_digits_read_lower_case() {
        let id = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(parse(Some(&format!("servicenow_sys_id={id}"))).unwrap(), id.to_ascii_lowercase());
        for bad in [
            "",
            "servicenow_sys_id=",
            "servicenow_sys_id=0123456789abcdef0123456789abcde",
            "servicenow_sys_id=0123456789abcdef0123456789abcdeg",
            "servicenow_sys_id=0123456789abcdef0123456789abcdef&servicenow_sys_id=0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(parse(Some(bad)).unwrap_err().invalid_field(), Some(FIELD), "{bad}");
        }
        assert_eq!(parse(Some("number=RITM0010001")).unwrap_err().invalid_field(), Some("number"));
    }
}
