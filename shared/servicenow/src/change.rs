//! The domain's `ChangeManagement` port on ServiceNow's `change_request` table.

use async_trait::async_trait;
use domain::changes::{ChangeDraft, ChangeManagement, ChangeState, state};
use domain::{Error, Result};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{Client, DisplayValue, Query, Record};

const TABLE: &str = "change_request";
const FIELDS: &[&str] =
    &["sys_id", "number", "approval", "state", "correlation_id", "start_date", "end_date", "active"];

/// ServiceNow's stored date-times: `YYYY-MM-DD HH:MM:SS` in UTC.
fn glide_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn parse_glide_time(s: &str) -> Option<Timestamp> {
    let dt: jiff::civil::DateTime = s.trim().replace(' ', "T").parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

pub struct ServiceNowChanges {
    client: Client,
}

impl ServiceNowChanges {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    fn state_of(&self, r: &Record) -> Result<ChangeState> {
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

    async fn patch(&self, sys_id: &str, fields: &[(&str, &str)]) -> Result<()> {
        let map: Map<String, Value> =
            fields.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        self.client.update(TABLE, sys_id, &map).await.map(|_| ())
    }

    async fn fetch(&self, sys_id: &str) -> Result<ChangeState> {
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
        let mut fields = Map::new();
        let mut set = |k: &str, v: String| {
            fields.insert(k.to_string(), Value::String(v));
        };
        set("type", "normal".into());
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
        let existing = Query::new().eq("correlation_id", &draft.correlation_id)?.active(true);
        let (record, _) = self.client.find_or_create(TABLE, &existing, &fields).await?;
        let created = self.state_of(&record)?;
        // A normal change asks for approval once it is assessed and sent to Authorize.
        if created.state == state::NEW {
            self.patch(&created.sys_id, &[("state", "-4")]).await?;
            self.patch(&created.sys_id, &[("state", state::AUTHORIZE)]).await?;
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
        let current = self.fetch(sys_id).await?;
        let code = if successful { "successful" } else { "unsuccessful" };
        // ServiceNow closes a change only from Review, with its close code and notes set.
        if current.state != state::REVIEW && current.state != state::CLOSED {
            self.patch(sys_id, &[("state", state::REVIEW), ("close_code", code), ("close_notes", notes)]).await?;
        }
        if current.state != state::CLOSED {
            self.patch(sys_id, &[("state", state::CLOSED), ("close_code", code), ("close_notes", notes)]).await?;
        }
        self.fetch(sys_id).await
    }
}
