//! What the change-gate page shows of a pipeline after each step: its jobs as GitLab shows them,
//! the change as ServiceNow shows it (number, state, approval, work notes), the gate's decision as
//! `gatehouse ci verify` would see it now, and the merge request's notes.

use reqwest::Method;
use serde_json::{Value, json};

use super::{DEPLOY, GateDemo, JOB_NAMES, Outcome, PROJECT_ID, PROJECT_PATH, Pipeline, Refusal, VERIFY, text};

/// A field of a ServiceNow record as `(value, display value)`: the Table API's
/// `{"display_value", "value"}` with `sysparm_display_value=all`, or a plain stored value.
fn cell(record: &Value, field: &str) -> (String, String) {
    match &record[field] {
        Value::Object(o) => (
            text(&o.get("value").cloned().unwrap_or_default()),
            text(&o.get("display_value").cloned().unwrap_or_default()),
        ),
        other => (text(other), text(other)),
    }
}

/// The step the story goes on with, for the page to point at.
fn next_step(p: &Pipeline, state: &str, approval: &str, jobs: &[String]) -> Option<&'static str> {
    if p.change.is_none() {
        return Some("request");
    }
    match (approval, state) {
        ("requested", "-4") => return Some("approve-assess"),
        ("requested", "-3") => return Some("approve-cab"),
        _ => {}
    }
    match (jobs[VERIFY].as_str(), jobs[DEPLOY].as_str()) {
        (verify, "created") if approval == "approved" && verify != "success" => Some("verify"),
        ("success", "created") => Some("deploy"),
        (_, "running") => Some("report-success"),
        _ => None,
    }
}

impl GateDemo {
    /// What the page shows of a pipeline: its jobs, the change as ServiceNow shows it, the gate's
    /// decision as `gatehouse ci verify` would see it now, and the merge request's notes.
    pub(super) async fn view(&self, p: &Pipeline, step: Option<(&str, Outcome)>) -> Value {
        // The gate first: reading it brings the MR note up to date, as a verify job's call does.
        let gate = self.gate_view(p).await;
        let (jobs, change, notes) = tokio::join!(self.jobs_view(p), self.change_view(p), self.notes_view(p));
        let statuses: Vec<String> = jobs.iter().map(|j| text(&j["status"])).collect();
        let (state, approval) = (text(&change["state"]["value"]), text(&change["approval"]["value"]));
        json!({
            "id": p.id,
            "project_id": PROJECT_ID,
            "project_path": PROJECT_PATH,
            "sha": p.sha,
            "ref": "main",
            "environment": p.environment,
            "title": p.title,
            "merge_request_iid": p.merge_request_iid,
            "pipeline_url": self.pipeline_url(p),
            "status": p.status,
            "jobs": jobs,
            "change": change,
            "gate": gate,
            "merge_request_notes": notes,
            "next": next_step(p, &state, &approval, &statuses),
            "step": step.map(|(name, o)| json!({ "name": name, "line": o.line, "exit_code": o.exit_code })),
        })
    }

    async fn jobs_view(&self, p: &Pipeline) -> Vec<Value> {
        let mut jobs = Vec::with_capacity(JOB_NAMES.len());
        for (name, id) in JOB_NAMES.iter().zip(p.jobs) {
            let status = self.job_status(id).await.unwrap_or_else(|_| "unknown".into());
            jobs.push(json!({ "name": name, "id": id, "status": status, "url": self.job_url(id) }));
        }
        jobs
    }

    async fn change_view(&self, p: &Pipeline) -> Value {
        let Some((sys_id, _)) = &p.change else { return Value::Null };
        let record = match &self.servicenow_login {
            // The Table API's "retrieve a record", every field with its display value
            // (https://www.servicenow.com/docs/r/australia/api-reference/rest-apis/c_TableAPI.html).
            Some((user, password)) => {
                let url = format!("{}/api/now/table/change_request/{sys_id}", self.servicenow);
                let fields = "number,short_description,state,approval,type,assignment_group,close_code,close_notes";
                let read = async {
                    let resp = self
                        .http
                        .get(url)
                        .basic_auth(user, Some(password))
                        .query(&[("sysparm_display_value", "all"), ("sysparm_fields", fields)])
                        .send()
                        .await?
                        .error_for_status()?;
                    resp.json::<Value>().await
                };
                read.await.map(|body| body["result"].clone()).map_err(|e| e.to_string())
            }
            None => {
                let url = format!("{}/_sim/records/change_request/{sys_id}", self.servicenow);
                self.sim("ServiceNow", Method::GET, url, None).await.map_err(|e| e.to_string())
            }
        };
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(error = %e, "demo portal: cannot read the change from the simulated ServiceNow");
                return json!({ "sys_id": sys_id, "error": "the simulated ServiceNow did not answer" });
            }
        };
        let pair = |field: &str| {
            let (value, display) = cell(&record, field);
            json!({ "value": value, "display": display })
        };
        let notes_url = format!("{}/_sim/work_notes/change_request/{sys_id}", self.servicenow);
        let work_notes = self.sim("ServiceNow", Method::GET, notes_url, None).await.unwrap_or(json!([]));
        json!({
            "sys_id": sys_id,
            "number": cell(&record, "number").1,
            "short_description": cell(&record, "short_description").1,
            "state": pair("state"),
            "approval": pair("approval"),
            "type": pair("type"),
            "assignment_group": cell(&record, "assignment_group").1,
            "close_code": cell(&record, "close_code").1,
            "close_notes": cell(&record, "close_notes").1,
            "work_notes": work_notes,
        })
    }

    /// `GET /v1/changes/…` with the verify job's ID token; a refusal as its problem.
    async fn gate_view(&self, p: &Pipeline) -> Value {
        if p.change.is_none() {
            return Value::Null;
        }
        let answer = match self.id_token(p.jobs[VERIFY]).await {
            Ok(token) => self.gatehouse(Method::GET, &self.status_path(p), &token, None).await,
            Err(e) => Err(e.into()),
        };
        match answer {
            Ok((_, answer)) => answer,
            Err(Refusal::Problem(_, problem)) => json!({ "problem": problem }),
            Err(Refusal::Domain(e)) => {
                let (_, _, title) = http_api::problem::classify(&e);
                json!({ "problem": { "title": title, "detail": http_api::problem::public_detail(&e) } })
            }
        }
    }

    async fn notes_view(&self, p: &Pipeline) -> Value {
        let path = format!("/_sim/projects/{PROJECT_ID}/merge_requests/{}/notes", p.merge_request_iid);
        self.gitlab(Method::GET, &path, None).await.unwrap_or(json!([]))
    }
}
