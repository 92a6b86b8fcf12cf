//! The Change Management API (`/api/sn_chg_rest/...`) calls Gatehouse makes for standard changes,
//! over the client's transport (retries and checked writes in `transport.rs`, authorisation in
//! `auth.rs`).
//!
//! As documented in ServiceNow's Change Management API reference
//! (<https://www.servicenow.com/docs/r/api-reference/rest-apis/change-management-api.html>):
//! `GET /api/sn_chg_rest/change/standard/template` lists standard change templates
//! (`std_change_record_producer`) and takes `sysparm_query`, `sysparm_limit` (default 500) and
//! `sysparm_offset`; `POST /api/sn_chg_rest/change/standard/{standard_change_template_id}` creates
//! one standard change from the template with that sys_id, taking the change's fields as
//! name-value pairs, and answers 200 (404 when the template is not found). Both answer
//! `{"result": …}` with every field as `{"display_value", "value"}` ([`Record`] reads them). The
//! create's `result` is one record object (the captured answer in demisto/content
//! `Packs/ServiceNow/Integrations/ServiceNowv2/test_data/create_co_from_template_result.json`);
//! the reference's own abbreviated sample shows it inside a one-element list, which is read too.

use super::*;

/// Where the Change Management API keeps standard change templates (for errors and logs).
const TEMPLATES: &str = "std_change_record_producer";

impl Client {
    fn change_api_url(&self, segments: &[&str]) -> Url {
        let mut segs = vec!["api", "sn_chg_rest", "change", "standard"];
        segs.extend_from_slice(segments);
        join(&self.inner.base, &segs)
    }

    /// `GET /api/sn_chg_rest/change/standard/template?sysparm_query=…`: up to `limit` templates
    /// (one page: a template lookup by name or sys_id finds a handful at most).
    pub async fn standard_templates(&self, query: &Query, limit: usize) -> Result<Vec<Record>, Error> {
        let op = Op { table: TEMPLATES, target: Target::List };
        let mut url = self.change_api_url(&["template"]);
        {
            let mut q = url.query_pairs_mut();
            if !query.is_empty() {
                q.append_pair("sysparm_query", &query.to_string());
            }
            q.append_pair("sysparm_limit", &limit.clamp(1, 500).to_string());
        }
        match self.call(&op, &Req { method: Method::GET, url, body: None }, true).await? {
            Some(resp) => self.read::<Vec<Record>>(&op, resp).await,
            None => Ok(Vec::new()),
        }
    }

    /// `POST /api/sn_chg_rest/change/standard/{template}`: a standard change from the template
    /// with that sys_id, with `fields`; or the first `change_request` `existing` finds (checked
    /// with [`Query::matches`]) before the first attempt and before any retry of a create whose
    /// answer was lost, so the change is created at most once. `true` when this call created it.
    /// `existing` must find the change `fields` create (its `correlation_id`).
    pub async fn create_standard_change(
        &self,
        template: &str,
        existing: &Query,
        fields: &Map<String, Value>,
    ) -> Result<(Record, bool), Error> {
        check_sys_id(template)?;
        let op = Op { table: "change_request", target: Target::Create };
        let req = Req { method: Method::POST, url: self.change_api_url(&[template]), body: Some(fields) };
        let check = Check::Existing { table: "change_request", query: existing };
        match self.write_checked(&op, &req, check).await? {
            Written::Already { found, by_us } => Ok((found, by_us)),
            Written::Now(resp) => {
                let result: Value = self.read(&op, resp).await?;
                let record = match result {
                    Value::Array(items) => items.into_iter().next().and_then(Record::from_value),
                    other => Record::from_value(other),
                };
                record
                    .map(|r| (r, true))
                    .ok_or_else(|| self.fail(&op, "creating a record: answered a result that is not a record", None))
            }
        }
    }
}
