//! Standard changes: created from a pre-approved template through the Change Management API, then
//! moved the one step the standard state model allows before the deploy.
//!
//! - Created with `POST /api/sn_chg_rest/change/standard/{standard_change_template_id}`, the id
//!   being the sys_id of a `std_change_record_producer`; a template named in the policy by name is
//!   first looked up with `GET /api/sn_chg_rest/change/standard/template` (exact name, active
//!   only). <https://www.servicenow.com/docs/r/api-reference/rest-apis/change-management-api.html>
//! - That endpoint does not take "Description, Backout plan, Test plan, Implementation plan" (the
//!   template's stand: they are what was pre-approved), so the deployment's description goes on
//!   the change as a work note instead, written once.
//! - A change from a template is already approved (`approval` "approved", state New, in the
//!   captured create answer of demisto/content
//!   `Packs/ServiceNow/Integrations/ServiceNowv2/test_data/create_co_from_template_result.json`),
//!   and "Standard changes are pre-authorized, so they bypass the Assess and Authorize states and
//!   move from New to Scheduled"
//!   (<https://www.servicenow.com/docs/r/australia/it-service-management/change-management/normal-standard-emergency-states.html>):
//!   Gatehouse makes that move, so the gate proceeds when the window is open. A change whose
//!   approval is anything else (an instance that asks for one) is left in New: the gate waits.

use domain::changes::{ChangeDetails, ChangeDraft, ChangeState, state};
use domain::{Error, Result};
use serde_json::{Map, Value};

use crate::change::{ServiceNowChanges, TABLE, glide_time};
use crate::{Query, Record};

/// For errors: where ServiceNow keeps standard change templates.
const TEMPLATES: &str = "ServiceNow std_change_record_producer";

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The templates of `found` that are exactly `template` by `field`, and active.
fn exact<'a>(found: &'a [Record], field: &str, template: &str) -> Vec<&'a Record> {
    found
        .iter()
        .filter(|r| r.value(field).as_deref() == Some(template) && r.value("active").as_deref() == Some("true"))
        .collect()
}

impl ServiceNowChanges {
    /// The sys_id of the active standard change template `template` names: its sys_id, or else
    /// its exact name (ServiceNow's `=` ignores case and drops conditions it does not understand,
    /// so the answer is checked here). None, or several by that name: an upstream error naming it.
    pub(crate) async fn standard_template(&self, template: &str) -> Result<String> {
        if is_sys_id(template) {
            let query = Query::new().eq("sys_id", template)?.active(true);
            let found = self.client.standard_templates(&query, 10).await?;
            if !exact(&found, "sys_id", template).is_empty() {
                return Ok(template.to_string());
            }
        }
        let query = Query::new().eq("name", template)?.active(true);
        let found = self.client.standard_templates(&query, 10).await?;
        match exact(&found, "name", template).as_slice() {
            [one] => {
                one.value("sys_id").ok_or_else(|| Error::upstream(TEMPLATES, "answered a template without sys_id"))
            }
            [] => Err(Error::upstream(
                TEMPLATES,
                format!(
                    "no active standard change template named {template:?} (standard_template in the change \
                     policy: a template's exact name or sys_id)"
                ),
            )),
            several => Err(Error::upstream(
                TEMPLATES,
                format!(
                    "{} active standard change templates are named {template:?}: name it by sys_id in \
                     standard_template",
                    several.len()
                ),
            )),
        }
    }

    /// The standard change of `draft` from `template`: found by its correlation id when an
    /// earlier attempt made it, else created; then in Scheduled when pre-approved.
    pub(crate) async fn create_standard(&self, draft: &ChangeDraft, template: &str) -> Result<ChangeState> {
        let template_id = self.standard_template(template).await?;
        let mut fields = Map::new();
        let mut set = |k: &str, v: String| {
            fields.insert(k.to_string(), Value::String(v));
        };
        set("short_description", draft.short_description.clone());
        set("correlation_id", draft.correlation_id.clone());
        set("correlation_display", "Gatehouse".into());
        if let Some(t) = draft.planned_start {
            set("start_date", glide_time(t));
        }
        if let Some(t) = draft.planned_end {
            set("end_date", glide_time(t));
        }
        // The plans are the template's (the endpoint would ignore them); who does it and what it
        // touches are the environment's.
        let details =
            ChangeDetails { implementation_plan: None, backout_plan: None, test_plan: None, ..draft.details.clone() };
        self.detail_fields(&details, &mut fields).await?;
        let existing = Query::new().eq("correlation_id", &draft.correlation_id)?.active(true);
        let (record, _) = self.client.create_standard_change(&template_id, &existing, &fields).await?;
        if let Some(Value::Array(ignored)) = record.raw("__meta").and_then(|m| m.get("ignoredFields"))
            && !ignored.is_empty()
        {
            tracing::warn!(template = %template, ignored = ?ignored, "ServiceNow ignored fields of the standard change");
        }
        let created = self.state_of(&record)?;
        let sys_id = created.sys_id.clone();
        if created.correlation_id != draft.correlation_id {
            // Not taken from the create (a template may not carry it): set now, so that the next
            // request finds this change instead of making another.
            self.patch(&sys_id, &[("correlation_id", &draft.correlation_id), ("correlation_display", "Gatehouse")])
                .await?;
        }
        let marker = format!("gatehouse:description:{}", draft.correlation_id);
        self.client.add_work_note(TABLE, &sys_id, &draft.description, &marker).await?;
        if created.state == state::NEW && created.approval == "approved" {
            self.patch(&sys_id, &[("state", state::SCHEDULED)]).await?;
        }
        self.fetch(&sys_id).await
    }
}
