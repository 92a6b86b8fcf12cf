//! Retiring on request (DESIGN.md "Provisioning", Leases): `POST /v1/requests/{id}/retire` retires
//! an active request at once when ServiceNow holds an approved decommission request item of the
//! same requester. The item is read in ServiceNow, as intake reads its own; the body only names it.

use serde::Deserialize;

use super::Services;
use crate::config::ServiceNowSettings;
use crate::error::{Error, FieldError, Result};
use crate::identity::same_person;
use crate::model::{Request, RequestId, Status};
use crate::ports::SourceItem;

/// sc_req_item states that end an item without fulfilling it: Closed Incomplete, Closed Skipped.
const UNFULFILLED_STATES: [&str; 2] = ["4", "7"];

/// The decommission request item, as ServiceNow's Business Rule names it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecommissionSource {
    /// `servicenow` when given.
    #[serde(default)]
    pub system: Option<String>,
    pub number: String,
    pub sys_id: String,
}

/// The body of `POST /v1/requests/{id}/retire`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetireBody {
    pub source: DecommissionSource,
}

fn check_shape(source: &DecommissionSource) -> Result<()> {
    let mut errors = Vec::new();
    if source.system.as_deref().is_some_and(|s| s != "servicenow") {
        errors.push(FieldError::new("source.system", "must be \"servicenow\""));
    }
    let number = source.number.trim();
    if number.is_empty() || number.len() > 40 || number.chars().any(char::is_control) {
        errors.push(FieldError::new("source.number", "must be a request item number like RITM0010001"));
    }
    if source.sys_id.len() != 32 || !source.sys_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        errors.push(FieldError::new("source.sys_id", "must be a ServiceNow sys_id: 32 hexadecimal characters"));
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
}

/// Whether `item` allows retiring the servers `requester` asked for: every refusal is a 422 naming
/// the body's field.
pub fn check_decommission(
    requester: &str,
    source: &DecommissionSource,
    item: &SourceItem,
    settings: &ServiceNowSettings,
) -> Result<()> {
    let refuse = |field: &str, message: String| Err(Error::invalid(field, message));
    if item.number != source.number.trim() {
        return refuse("source.number", format!("the item with this sys_id is {}", item.number));
    }
    if settings.decommission_items.is_empty() {
        return refuse(
            "source.sys_id",
            "no catalog item may decommission servers here (GATEHOUSE_DECOMMISSION_ITEMS is not set)".into(),
        );
    }
    if !settings.decommission_items.contains(&item.cat_item.to_ascii_lowercase()) {
        return refuse(
            "source.sys_id",
            format!("{} is not a decommission item (its catalog item is {})", item.number, item.cat_item),
        );
    }
    // Always required, whatever GATEHOUSE_INTAKE_REQUIRE_RITM_APPROVAL says: this deletes servers.
    if item.approval != "approved" {
        return refuse(
            "source.sys_id",
            format!("{} is not approved in ServiceNow (approval: {})", item.number, item.approval),
        );
    }
    if UNFULFILLED_STATES.contains(&item.state.as_str()) || (!item.active && item.state != "3") {
        return refuse("source.sys_id", format!("{} was cancelled or closed incomplete in ServiceNow", item.number));
    }
    match &item.requested_for {
        Some(p) if same_person(&p.email, requester) => Ok(()),
        Some(p) => refuse(
            "source.sys_id",
            format!("{} is requested for {}, not for {requester}, who asked for these servers", item.number, p.email),
        ),
        None => refuse("source.sys_id", format!("{} names nobody as requested for", item.number)),
    }
}

impl Services {
    /// Retires `id` at once for the decommission item `body` names. A retired request answers
    /// itself again without asking ServiceNow (the item may be closed by then), so a retried call
    /// changes nothing.
    pub async fn retire_on_request(&self, id: &RequestId, mut body: RetireBody) -> Result<Request> {
        body.source.sys_id = body.source.sys_id.trim().to_ascii_lowercase();
        check_shape(&body.source)?;
        let request = self.store.get(id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
        match request.status {
            Status::Retired => return Ok(request),
            Status::Active => {}
            other => {
                return Err(Error::Conflict(format!("request is {other}; only an active request can be retired")));
            }
        }
        // Without ServiceNow there is nothing to check the decommission against, and a deletion
        // cannot be undone: refuse (409) rather than trust the caller's word. The lease's end, if
        // the request has one, still retires it.
        let (Some(items), Some(settings)) = (&self.source_items, &self.config.servicenow) else {
            return Err(Error::Conflict(
                "retiring on request needs ServiceNow to check the decommission item, and none is configured".into(),
            ));
        };
        let item = items.request_item(&body.source.sys_id).await?.ok_or_else(|| {
            Error::invalid(
                "source.sys_id",
                "ServiceNow has no request item with this sys_id (or Gatehouse may not read it)",
            )
        })?;
        check_decommission(&request.requester.email, &body.source, &item, settings)?;
        let actor = match item.requested_for.as_ref().map(|p| p.user_name.as_str()) {
            Some(user) if !user.is_empty() => format!("servicenow ({user})"),
            _ => "servicenow".to_string(),
        };
        tracing::info!(request = %id, decommission = %item.number, "retiring on request");
        self.retire(id, &actor, format!("decommissioned by {}", item.number)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServiceNowAuth;
    use crate::ports::SourcePerson;

    const DECOMMISSION: &str = "d1c0a7b9e2f34a5b8c6d7e8f9a0b1c2d";

    fn settings(items: &[&str]) -> ServiceNowSettings {
        let auth = ServiceNowAuth::Basic { user: "u".into(), password: crate::config::Secret::new("p") };
        ServiceNowSettings {
            decommission_items: items.iter().map(|i| i.to_string()).collect(),
            ..ServiceNowSettings::new("https://sn.example.com".into(), auth)
        }
    }

    fn item() -> SourceItem {
        SourceItem {
            sys_id: "0".repeat(32),
            number: "RITM0010002".into(),
            approval: "approved".into(),
            active: true,
            state: "1".into(),
            cat_item: DECOMMISSION.into(),
            requested_for: Some(SourcePerson { email: "Ada@Example.com".into(), ..Default::default() }),
            ..Default::default()
        }
    }

    fn source() -> DecommissionSource {
        DecommissionSource { system: None, number: "RITM0010002".into(), sys_id: "0".repeat(32) }
    }

    fn refusal(item: SourceItem, settings: &ServiceNowSettings) -> String {
        match check_decommission("ada@example.com", &source(), &item, settings) {
            Err(Error::Invalid(e)) => format!("{}: {}", e[0].field, e[0].message),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn only_an_approved_decommission_item_of_the_same_requester_retires() {
        let s = settings(&[DECOMMISSION]);
        let request = "ada@example.com";
        assert!(check_decommission(request, &source(), &item(), &s).is_ok());
        let closed_complete = SourceItem { active: false, state: "3".into(), ..item() };
        assert!(check_decommission(request, &source(), &closed_complete, &s).is_ok(), "fulfilled is fine");

        assert!(refusal(SourceItem { approval: "requested".into(), ..item() }, &s).contains("not approved"));
        assert!(refusal(SourceItem { state: "7".into(), active: false, ..item() }, &s).contains("cancelled"));
        assert!(refusal(SourceItem { cat_item: "f".repeat(32), ..item() }, &s).contains("not a decommission item"));
        let bob = Some(SourcePerson { email: "bob@example.com".into(), ..Default::default() });
        assert!(refusal(SourceItem { requested_for: bob, ..item() }, &s).contains("bob@example.com"));
        assert!(refusal(SourceItem { number: "RITM0000001".into(), ..item() }, &s).starts_with("source.number"));
        assert!(refusal(item(), &settings(&[])).contains("GATEHOUSE_DECOMMISSION_ITEMS"));
    }
}
