//! The domain's `ChangeManagement` port on ServiceNow's `change_request` table.
//!
//! It respects ServiceNow's normal change state model (New -5 → Assess -4 → Authorize -3 →
//! Scheduled -2 → Implement -1 → Review 0 → Closed 3; Canceled 4 from an open state):
//! https://www.servicenow.com/docs/r/yokohama/it-service-management/change-management/c_ChangeStateModel.html
//! and https://www.servicenow.com/docs/r/australia/it-service-management/change-management/normal-standard-emergency-states.html.
//! Gatehouse only asks for approval (New → Assess, what "Request Approval" does); the change's
//! approvals move it to Authorize and Scheduled. On the report it walks Scheduled → Implement →
//! Review → Closed one documented step at a time. Standard changes are created from their
//! template through the Change Management API (see `standard_change.rs`); from Scheduled on they
//! are reported, closed and cancelled like the others.

use async_trait::async_trait;
use domain::changes::{ChangeDetails, ChangeDraft, ChangeKind, ChangeManagement, ChangeState, state};
use domain::{Error, Result};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{Client, DisplayValue, Query, Record};

pub(crate) const TABLE: &str = "change_request";
/// Assess: where "Request Approval" takes a new normal change (not in the domain's list).
const ASSESS: &str = "-4";
const FIELDS: &[&str] =
    &["sys_id", "number", "approval", "state", "correlation_id", "start_date", "end_date", "active"];

/// ServiceNow's stored date-times: `YYYY-MM-DD HH:MM:SS` in UTC.
pub(crate) fn glide_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn parse_glide_time(s: &str) -> Option<Timestamp> {
    let dt: jiff::civil::DateTime = s.trim().replace(' ', "T").parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

pub struct ServiceNowChanges {
    pub(crate) client: Client,
}

impl ServiceNowChanges {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub(crate) fn state_of(&self, r: &Record) -> Result<ChangeState> {
        let sys_id = r
            .value("sys_id")
            .ok_or_else(|| Error::upstream("ServiceNow change_request", "answered a record without sys_id"))?;
        Ok(ChangeState {
            url: self.client.form_url(TABLE, &sys_id),
            number: r.value("number").unwrap_or_default(),
            approval: r.value("approval").unwrap_or_default(),
            state: r.value("state").unwrap_or_default(),
            state_display: r.display("state").or_else(|| r.value("state")).unwrap_or_default(),
            correlation_id: r.value("correlation_id").unwrap_or_default(),
            planned_start: r.value("start_date").as_deref().and_then(parse_glide_time),
            planned_end: r.value("end_date").as_deref().and_then(parse_glide_time),
            sys_id,
        })
    }

    pub(crate) async fn patch(&self, sys_id: &str, fields: &[(&str, &str)]) -> Result<()> {
        let map: Map<String, Value> =
            fields.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        self.client.update(TABLE, sys_id, &map).await.map(|_| ())
    }

    /// The sys_id of the record of `table` whose `name` is exactly `name` (a reference field is
    /// set by sys_id). Names are resolved here rather than sent as display values with
    /// `sysparm_input_display_value=true` (which the Table API FAQ documents for reference
    /// fields, https://support.servicenow.com/kb?id=kb_article_view&sysparm_article=KB0534905):
    /// that parameter also reinterprets `start_date`/`end_date` in the integration user's time
    /// zone, and an unknown name would not say which one it was.
    async fn resolve(&self, table: &str, what: &str, name: &str) -> Result<String> {
        let query = Query::new().eq("name", name)?;
        let found = self.client.query(table, &query, &["sys_id", "name"], DisplayValue::Stored, 10).await?;
        // ServiceNow's `=` ignores case: prefer the exact name, else the only match.
        let exact = found.iter().find(|r| r.value("name").as_deref() == Some(name));
        let only = (found.len() == 1)
            .then(|| &found[0])
            .filter(|r| r.value("name").is_some_and(|n| n.eq_ignore_ascii_case(name)));
        exact
            .or(only)
            .and_then(|r| r.value("sys_id"))
            .ok_or_else(|| Error::upstream(format!("ServiceNow {table}"), format!("no {what} named {name:?}")))
    }

    /// The change's fields from the environment's policy: references resolved by name, choices
    /// and plans as they are.
    pub(crate) async fn detail_fields(&self, details: &ChangeDetails, fields: &mut Map<String, Value>) -> Result<()> {
        let present = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        if let Some(group) = present(&details.assignment_group) {
            let id = self.resolve("sys_user_group", "assignment group", &group).await?;
            fields.insert("assignment_group".into(), Value::String(id));
        }
        if let Some(ci) = present(&details.cmdb_ci) {
            let id = self.resolve("cmdb_ci", "configuration item", &ci).await?;
            fields.insert("cmdb_ci".into(), Value::String(id));
        }
        for (field, value) in [
            ("risk", &details.risk),
            ("impact", &details.impact),
            ("implementation_plan", &details.implementation_plan),
            ("backout_plan", &details.backout_plan),
            ("test_plan", &details.test_plan),
        ] {
            if let Some(v) = present(value) {
                fields.insert(field.into(), Value::String(v));
            }
        }
        Ok(())
    }

    pub(crate) async fn fetch(&self, sys_id: &str) -> Result<ChangeState> {
        let record = self
            .client
            .get(TABLE, sys_id, DisplayValue::Both)
            .await?
            .ok_or_else(|| Error::NotFound(format!("change {sys_id}")))?;
        self.state_of(&record)
    }
}

#[async_trait]
impl ChangeManagement for ServiceNowChanges {
    async fn find_open(&self, correlation_id: &str) -> Result<Option<ChangeState>> {
        let query = Query::new().eq("correlation_id", correlation_id)?.active(true).order_by_desc("sys_created_on")?;
        let found = self.client.query(TABLE, &query, FIELDS, DisplayValue::Both, 10).await?;
        // ServiceNow drops query parts it does not understand: check the value itself.
        found
            .iter()
            .find(|r| r.value("correlation_id").as_deref() == Some(correlation_id))
            .map(|r| self.state_of(r))
            .transpose()
    }

    async fn create(&self, draft: &ChangeDraft) -> Result<ChangeState> {
        if let ChangeKind::Standard { template } = &draft.kind {
            return self.create_standard(draft, template).await;
        }
        let mut fields = Map::new();
        let mut set = |k: &str, v: String| {
            fields.insert(k.to_string(), Value::String(v));
        };
        set("type", draft.kind.type_name().into());
        if let Some(reason) = draft.kind.emergency_reason() {
            set("justification", reason.to_string());
        }
        set("short_description", draft.short_description.clone());
        set("description", draft.description.clone());
        set("correlation_id", draft.correlation_id.clone());
        set("correlation_display", "Gatehouse".into());
        if let Some(t) = draft.planned_start {
            set("start_date", glide_time(t));
        }
        if let Some(t) = draft.planned_end {
            set("end_date", glide_time(t));
        }
        self.detail_fields(&draft.details, &mut fields).await?;
        let existing = Query::new().eq("correlation_id", &draft.correlation_id)?.active(true);
        let (record, _) = self.client.find_or_create(TABLE, &existing, &fields).await?;
        let created = self.state_of(&record)?;
        // "Request Approval": New → Assess, and no further; the Assess group's and the CAB's
        // approvals move it on. A change its approvers rejected (back in New, approval
        // "rejected") is not asked again: it is cancelled, and the next pipeline gets a new one.
        if created.state == state::NEW && created.approval != "rejected" {
            // An emergency change has no Assess step: straight to Authorize (ServiceNow's
            // emergency state model, as the simulator cites).
            let next = if draft.kind.emergency_reason().is_some() { state::AUTHORIZE } else { ASSESS };
            self.patch(&created.sys_id, &[("state", next)]).await?;
        }
        self.fetch(&created.sys_id).await
    }

    async fn get(&self, sys_id: &str) -> Result<Option<ChangeState>> {
        match self.client.get(TABLE, sys_id, DisplayValue::Both).await? {
            Some(r) => self.state_of(&r).map(Some),
            None => Ok(None),
        }
    }

    async fn add_note(&self, sys_id: &str, marker: &str, text: &str) -> Result<()> {
        self.client.add_work_note(TABLE, sys_id, text, marker).await
    }

    async fn close(&self, sys_id: &str, successful: bool, notes: &str) -> Result<ChangeState> {
        let code = if successful { "successful" } else { "unsuccessful" };
        // One documented step per write, from wherever the change is now (a retry continues
        // where an earlier attempt stopped): Scheduled → Implement → Review → Closed, the close
        // code and notes with the last step (ServiceNow requires them to close).
        for _ in 0..4 {
            let current = self.fetch(sys_id).await?;
            match current.state.as_str() {
                state::CLOSED => return Ok(current),
                state::SCHEDULED => self.patch(sys_id, &[("state", state::IMPLEMENT)]).await?,
                state::IMPLEMENT => self.patch(sys_id, &[("state", state::REVIEW)]).await?,
                state::REVIEW => {
                    self.patch(sys_id, &[("state", state::CLOSED), ("close_code", code), ("close_notes", notes)])
                        .await?
                }
                other => {
                    return Err(Error::Conflict(format!(
                        "change {} is {} ({other}): only a scheduled or implemented change can be closed",
                        current.number, current.state_display
                    )));
                }
            }
        }
        self.fetch(sys_id).await
    }

    async fn cancel(&self, sys_id: &str, marker: &str, note: &str) -> Result<ChangeState> {
        let current = self.fetch(sys_id).await?;
        if current.state == state::CLOSED {
            // Over already: nothing to cancel, and no note saying it was.
            return Ok(current);
        }
        if current.state == state::REVIEW {
            // "You cannot cancel the change request if it is in the Review state" (the state
            // model page above): the work is done; it is closed instead.
            return Err(Error::Conflict(format!(
                "change {} is in Review: it can no longer be canceled",
                current.number
            )));
        }
        // The note first (written once, by its marker), so a retry after a lost answer neither
        // loses it nor writes it twice; then Canceled, allowed from any open state.
        self.client.add_work_note(TABLE, sys_id, note, marker).await?;
        if current.state != state::CANCELED {
            self.patch(sys_id, &[("state", state::CANCELED)]).await?;
        }
        self.fetch(sys_id).await
    }
}
