//! The CI change gate: a GitLab pipeline asks for the change of its commit and environment, waits
//! until the change is approved and its window is open, deploys, and reports back.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::gate_caller::check_key;
use crate::changes::{
    ChangeDraft, ChangeKey, ChangeManagement, ChangeRecord, ChangeRecords, ChangeState, CiCaller, CiIdentity, CodeHost,
    state,
};
use crate::error::{Error, FieldError, Result};
use crate::policy::{ChangePolicy, WindowVerdict};

/// `POST /v1/changes` as sent. With an ID token, what the token says (project, pipeline, job,
/// commit, ref) may be left out; what is given must agree with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequestBody {
    #[serde(default)]
    pub project_id: Option<u64>,
    #[serde(default)]
    pub project_path: Option<String>,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(rename = "ref", default)]
    pub ref_name: Option<String>,
    pub environment: String,
    #[serde(default)]
    pub pipeline_id: Option<u64>,
    pub pipeline_url: String,
    #[serde(default)]
    pub job_id: Option<u64>,
    #[serde(default)]
    pub merge_request_iid: Option<u64>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub planned_start: Option<Timestamp>,
    #[serde(default)]
    pub planned_end: Option<Timestamp>,
    /// Asks for an emergency change (the job's `GATEHOUSE_EMERGENCY_REASON`).
    #[serde(default)]
    pub emergency_reason: Option<String>,
}

/// A change request once the caller's identity has filled and checked it (see `gate_caller`).
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub project_id: u64,
    pub project_path: String,
    pub sha: String,
    pub ref_name: String,
    pub environment: String,
    pub pipeline_id: u64,
    pub pipeline_url: String,
    /// A verify job to play, checked in GitLab (static tokens only; with an ID token the
    /// pipeline's `gatehouse:verify` job is found and checked when it is played).
    pub job_id: Option<u64>,
    pub merge_request_iid: Option<u64>,
    pub title: String,
    pub description: Option<String>,
    pub planned_start: Option<Timestamp>,
    pub planned_end: Option<Timestamp>,
    pub emergency_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    Success,
    Failed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentBody {
    pub environment: String,
    pub status: DeployStatus,
    pub pipeline_url: String,
    #[serde(default)]
    pub job_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookBody {
    pub sys_id: String,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub approval: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateDecision {
    Proceed,
    Wait,
    Blocked,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateView {
    pub value: String,
    pub display: String,
}

/// DESIGN.md's change answer.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeAnswer {
    pub number: String,
    pub sys_id: String,
    pub url: String,
    pub approval: String,
    pub state: StateView,
    pub decision: GateDecision,
    pub reason: String,
    pub window: WindowVerdict,
}

fn since(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::from_hours(1))
}

fn when(z: &Option<jiff::Zoned>) -> String {
    z.as_ref().map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()).unwrap_or_else(|| "not within a year".into())
}

/// The gate's rule: `proceed` when approved, in Scheduled or Implement, and inside the window;
/// `blocked` when rejected, cancelled, closed, or past its planned end; `wait` otherwise.
pub fn decide(change: &ChangeState, window: &WindowVerdict, now: Timestamp) -> (GateDecision, String) {
    if window.unnamed {
        return (GateDecision::Blocked, window.rule.clone());
    }
    if change.approval == "rejected" {
        return (GateDecision::Blocked, "the change was rejected".into());
    }
    if change.state == state::CANCELED {
        return (GateDecision::Blocked, "the change was cancelled".into());
    }
    if change.state == state::CLOSED || change.state == state::REVIEW {
        return (GateDecision::Blocked, format!("the change is already {}", change.state_display));
    }
    if let Some(end) = change.planned_end
        && end <= now
    {
        return (GateDecision::Blocked, format!("the change's planned end {end} has passed"));
    }
    if change.approval != "approved" {
        return (GateDecision::Wait, format!("waiting for approval (state {})", change.state_display));
    }
    if change.state != state::SCHEDULED && change.state != state::IMPLEMENT {
        return (
            GateDecision::Wait,
            format!("approved; waiting for the change to be scheduled (state {})", change.state_display),
        );
    }
    if !window.open {
        return (
            GateDecision::Wait,
            format!("outside the change window: {}; next opening {}", window.rule, when(&window.next_open_at)),
        );
    }
    (GateDecision::Proceed, format!("approved, {} and inside the change window", change.state_display))
}

/// Counts an answer a pipeline receives (`gatehouse_gate_decisions_total`).
fn counted(answer: ChangeAnswer) -> ChangeAnswer {
    let decision = match answer.decision {
        GateDecision::Proceed => "proceed",
        GateDecision::Wait => "wait",
        GateDecision::Blocked => "blocked",
    };
    crate::metrics::count(crate::metrics::Counter::GateDecisions, decision);
    answer
}

/// The template's manual job that the webhook plays when the change is approved.
pub const VERIFY_JOB_NAME: &str = "gatehouse:verify";

pub struct ChangeGate {
    /// How often an open change is looked at again (the sweeper's interval).
    pub recheck: Duration,
    /// How old a change's pipeline must be before the sweeper reads it to see whether it ended.
    pub pipeline_check_after: Duration,
    pub records: Arc<dyn ChangeRecords>,
    pub changes: Arc<dyn ChangeManagement>,
    pub code: Arc<dyn CodeHost>,
    pub policy: Arc<ChangePolicy>,
    /// Verifies CI jobs' GitLab ID tokens.
    pub identity: Arc<dyn CiIdentity>,
    /// Whether a static `ci` token may stand in for an ID token.
    pub allow_static_tokens: bool,
}

fn check_request(b: &ChangeRequest) -> Result<()> {
    let mut errors = Vec::new();
    if b.project_id == 0 {
        errors.push(FieldError::new("project_id", "must be GitLab's numeric project id"));
    }
    if b.sha.len() != 40 || !b.sha.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
        errors.push(FieldError::new("sha", "must be a full 40-character lowercase commit SHA"));
    }
    check_environment(&mut errors, &b.environment);
    for (field, value, max) in
        [("project_path", &b.project_path, 255), ("ref", &b.ref_name, 255), ("title", &b.title, 160)]
    {
        if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
            errors.push(FieldError::new(field, format!("must be 1 to {max} printable characters")));
        }
    }
    if !b.pipeline_url.starts_with("https://") && !b.pipeline_url.starts_with("http://") {
        errors.push(FieldError::new("pipeline_url", "must be an http(s) URL"));
    }
    if let Some(d) = &b.description
        && d.chars().count() > 4000
    {
        errors.push(FieldError::new("description", "must be at most 4000 characters"));
    }
    if let (Some(s), Some(e)) = (b.planned_start, b.planned_end)
        && e <= s
    {
        errors.push(FieldError::new("planned_end", "must be after planned_start"));
    }
    if let Some(r) = &b.emergency_reason
        && (r.trim().is_empty() || r.chars().count() > 1000 || r.chars().any(char::is_control))
    {
        errors.push(FieldError::new("emergency_reason", "must be 1 to 1000 printable characters"));
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
}

fn check_environment(errors: &mut Vec<FieldError>, env: &str) {
    let ok = (1..=64).contains(&env.len()) && env.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c));
    if !ok {
        errors.push(FieldError::new("environment", "must be a GitLab environment name (letters, digits, - _ . /)"));
    }
}

/// A key from path and query parts, with the same checks as a request body.
pub fn key(project_id: u64, sha: &str, environment: &str) -> Result<ChangeKey> {
    let mut errors = Vec::new();
    if sha.len() != 40 || !sha.bytes().all(|c| c.is_ascii_hexdigit()) {
        errors.push(FieldError::new("sha", "must be a full 40-character commit SHA"));
    }
    check_environment(&mut errors, environment);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(ChangeKey { project_id, sha: sha.to_ascii_lowercase(), environment: environment.to_string() })
}

fn note_body(rec: &ChangeRecord, answer: &ChangeAnswer) -> String {
    let short = &rec.key.sha[..rec.key.sha.len().min(8)];
    // Once the deploy was reported, the gate's "blocked: already closed" would mislead a reader.
    let gate = match (&rec.reported, answer.decision) {
        (Some(result), _) => format!("🏁 done: the deployment was reported ({result})"),
        (None, GateDecision::Proceed) => format!("✅ proceed: {}", answer.reason),
        (None, GateDecision::Wait) => format!("⏳ wait: {}", answer.reason),
        (None, GateDecision::Blocked) => format!("⛔ blocked: {}", answer.reason),
    };
    let mut body = format!(
        "{}\n**Change [{}]({})** gates the deploy of `{short}` to `{}`.\n\n| | |\n|---|---|\n| Approval | {} |\n| State | {} |\n| Gate | {gate} |\n| Pipeline | [#{}]({}) |\n",
        rec.key.note_marker(),
        answer.number,
        answer.url,
        rec.key.environment,
        answer.approval,
        answer.state.display,
        rec.pipeline_id,
        rec.pipeline_url,
    );
    if let Some(reason) = &rec.emergency_reason {
        body.push_str(&format!("| Type | 🚨 **emergency**: {reason} |\n"));
    }
    if let Some(result) = &rec.reported {
        body.push_str(&format!("| Deployment | {result} |\n"));
    }
    body.push_str("\n_Kept up to date by Gatehouse._");
    body
}

impl ChangeGate {
    pub(crate) fn answer(&self, rec: &ChangeRecord, change: &ChangeState, now: Timestamp) -> ChangeAnswer {
        let planned = change.planned_start.zip(change.planned_end).or(rec.planned_start.zip(rec.planned_end));
        let mut window = self.policy.evaluate(&rec.key.environment, now, planned);
        // An emergency change skips windows, blackouts and freezes — never approval, and never an
        // environment the policy does not name.
        if rec.emergency_reason.is_some() && !window.unnamed && !window.open {
            window = WindowVerdict {
                open: true,
                next_open_at: Some(now.to_zoned(jiff::tz::TimeZone::UTC)),
                rule: format!("emergency change: the change window is skipped ({})", window.rule),
                unnamed: false,
            };
        }
        let (decision, reason) = decide(change, &window, now);
        ChangeAnswer {
            number: change.number.clone(),
            sys_id: change.sys_id.clone(),
            url: change.url.clone(),
            approval: change.approval.clone(),
            state: StateView { value: change.state.clone(), display: change.state_display.clone() },
            decision,
            reason,
            window,
        }
    }

    /// Edits (or first posts) the MR note when what it shows changed. Best effort: the gate's
    /// answer never waits on GitLab being up.
    pub(crate) async fn refresh_note(&self, rec: &mut ChangeRecord, answer: &ChangeAnswer) -> bool {
        let Some(iid) = rec.merge_request_iid else { return false };
        let body = note_body(rec, answer);
        let summary = format!(
            "{}|{}|{:?}|{}|{:?}",
            answer.approval, answer.state.value, answer.decision, answer.reason, rec.reported
        );
        if rec.note_summary.as_deref() == Some(summary.as_str()) {
            return false;
        }
        match self.code.upsert_note(rec.key.project_id, iid, &rec.key.note_marker(), &body).await {
            Ok(id) => {
                rec.mr_note_id = Some(id);
                rec.note_summary = Some(summary);
                true
            }
            Err(e) => {
                tracing::warn!(change = %rec.number, error = %e.chain(), "could not update the MR note");
                false
            }
        }
    }

    async fn current(&self, rec: &ChangeRecord) -> Result<ChangeState> {
        self.changes
            .get(&rec.sys_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("change {} in ServiceNow", rec.number)))
    }

    /// POST /v1/changes: the open change of this commit and environment, or a new one. `true` when
    /// this call created it.
    pub async fn request(&self, caller: &CiCaller, body: ChangeRequestBody) -> Result<(bool, ChangeAnswer)> {
        let body = self.resolve(caller, body).await?;
        check_request(&body)?;
        let key =
            ChangeKey { project_id: body.project_id, sha: body.sha.clone(), environment: body.environment.clone() };
        for _ in 0..100 {
            let now = Timestamp::now();
            let existing = self.records.get_change(&key).await?;
            match &existing {
                // Another pipeline is creating it right now: wait for its number, unless it died.
                Some(rec)
                    if rec.sys_id.is_empty() && now.duration_since(rec.updated_at) < SignedDuration::from_secs(60) =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Some(rec) if !rec.sys_id.is_empty() => {
                    if let Some(change) = self.changes.get(&rec.sys_id).await?
                        && change.is_open()
                    {
                        let mut rec = rec.clone();
                        rec.pipeline_id = body.pipeline_id;
                        rec.pipeline_url = body.pipeline_url.clone();
                        rec.job_id = body.job_id.or(rec.job_id);
                        rec.merge_request_iid = body.merge_request_iid.or(rec.merge_request_iid);
                        rec.updated_at = now;
                        rec.check_at = Some(now + since(self.recheck));
                        let answer = self.answer(&rec, &change, now);
                        rec.note_summary = None; // a new pipeline: show it in the note
                        self.refresh_note(&mut rec, &answer).await;
                        rec.version += 1;
                        match self.records.put_change(&rec, Some(rec.version - 1)).await {
                            Ok(()) => return Ok((false, counted(answer))),
                            Err(Error::Stale) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                }
                _ => {}
            }
            // Claim the key, then create (or adopt a change an earlier attempt created).
            let claim = ChangeRecord {
                key: key.clone(),
                version: existing.as_ref().map_or(1, |r| r.version + 1),
                sys_id: String::new(),
                number: String::new(),
                url: String::new(),
                project_path: body.project_path.clone(),
                pipeline_id: body.pipeline_id,
                pipeline_url: body.pipeline_url.clone(),
                job_id: body.job_id,
                merge_request_iid: body.merge_request_iid,
                mr_note_id: None,
                title: body.title.clone(),
                planned_start: body.planned_start,
                planned_end: body.planned_end,
                last_approval: None,
                played_job: None,
                reported: None,
                note_summary: None,
                // Watched from now on: the sweeper acts when the gate says proceed.
                check_at: Some(now + since(self.recheck)),
                emergency_reason: body.emergency_reason.clone(),
                created_at: now,
                updated_at: now,
            };
            match self.records.put_change(&claim, existing.as_ref().map(|r| r.version)).await {
                Ok(()) => {}
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
            let change = match self.changes.find_open(&key.correlation_id()).await? {
                Some(found) => found,
                None => {
                    let summary = super::gate_summary::release_summary(
                        self.code.as_ref(),
                        &key,
                        &body.ref_name,
                        body.pipeline_id,
                    )
                    .await;
                    self.changes.create(&self.draft(&key, &body, &summary)).await?
                }
            };
            let mut rec = claim;
            rec.sys_id = change.sys_id.clone();
            rec.number = change.number.clone();
            rec.url = change.url.clone();
            if rec.merge_request_iid.is_none() {
                rec.merge_request_iid =
                    self.code.merge_request_of(key.project_id, &key.sha).await.unwrap_or_else(|e| {
                        tracing::warn!(error = %e.chain(), "could not look up the merge request of the commit");
                        None
                    });
            }
            let answer = self.answer(&rec, &change, now);
            self.refresh_note(&mut rec, &answer).await;
            rec.version += 1;
            self.records.put_change(&rec, Some(rec.version - 1)).await?;
            tracing::info!(change = %rec.number, correlation = %key.correlation_id(), "change created");
            return Ok((true, counted(answer)));
        }
        Err(Error::Conflict("another pipeline is creating this change; try again".into()))
    }

    fn draft(&self, key: &ChangeKey, body: &ChangeRequest, summary: &str) -> ChangeDraft {
        let mut description = format!(
            "Deployment of {} commit {} (ref {}) to {}.\nPipeline: {}\n",
            body.project_path, key.sha, body.ref_name, key.environment, body.pipeline_url
        );
        if let Some(iid) = body.merge_request_iid {
            description.push_str(&format!("Merge request: !{iid}\n"));
        }
        description.push('\n');
        description.push_str(summary);
        if let Some(d) = &body.description {
            description.push('\n');
            description.push_str(d);
        }
        ChangeDraft {
            correlation_id: key.correlation_id(),
            short_description: body.title.clone(),
            description,
            planned_start: body.planned_start,
            planned_end: body.planned_end,
            details: self.policy.environment(&key.environment).map(|p| p.details.clone()).unwrap_or_default(),
            kind: crate::changes::ChangeKind::of(
                self.policy.environment(&key.environment),
                body.emergency_reason.as_deref(),
            ),
        }
    }

    async fn record(&self, key: &ChangeKey) -> Result<ChangeRecord> {
        match self.records.get_change(key).await? {
            Some(rec) if !rec.sys_id.is_empty() => Ok(rec),
            _ => Err(Error::NotFound(format!("change for {}", key.correlation_id()))),
        }
    }

    /// GET /v1/changes/{project}/{sha}?environment=: the gate's answer now.
    pub async fn status(&self, caller: &CiCaller, key: &ChangeKey) -> Result<ChangeAnswer> {
        check_key(caller, key)?;
        let mut rec = self.record(key).await?;
        let change = self.current(&rec).await?;
        let now = Timestamp::now();
        let answer = self.answer(&rec, &change, now);
        if self.refresh_note(&mut rec, &answer).await {
            rec.version += 1;
            rec.updated_at = now;
            // Only the note's bookkeeping: losing this write to a concurrent one is harmless.
            let _ = self.records.put_change(&rec, Some(rec.version - 1)).await;
        }
        Ok(counted(answer))
    }

    /// POST …/deployments: the result onto the change, which is then closed.
    pub async fn report(&self, caller: &CiCaller, key: &ChangeKey, body: DeploymentBody) -> Result<ChangeAnswer> {
        check_key(caller, key)?;
        if body.environment != key.environment {
            return Err(Error::invalid("environment", "must match the change's environment"));
        }
        let mut rec = self.record(key).await?;
        let result = match body.status {
            DeployStatus::Success => "success",
            DeployStatus::Failed => "failed",
        };
        let mut text = format!(
            "Deployment to {} {}: pipeline {}",
            key.environment,
            if result == "success" { "succeeded" } else { "failed" },
            body.pipeline_url
        );
        if let Some(job) = &body.job_url {
            text.push_str(&format!(", job {job}"));
        }
        let marker = format!("gatehouse:deploy:{}:{}:{result}", key.correlation_id(), rec.pipeline_id);
        let current = self.current(&rec).await?;
        if current.is_open() && current.approval != "approved" {
            // A deploy ran without an approved change: record it for the audit, close nothing.
            let warning = format!("{text}\nWARNING: the change was not approved (approval {}).", current.approval);
            self.changes.add_note(&rec.sys_id, &marker, &warning).await?;
            return Err(Error::Conflict(format!(
                "change {} is not approved (approval {}); the deployment was recorded on it, the change stays open",
                current.number, current.approval
            )));
        }
        self.changes.add_note(&rec.sys_id, &marker, &text).await?;
        let change = match current {
            c if c.is_open() => self.changes.close(&rec.sys_id, body.status == DeployStatus::Success, &text).await?,
            closed => closed,
        };
        let now = Timestamp::now();
        rec.reported = Some(result.to_string());
        rec.updated_at = now;
        // Reported and closed: nothing left to act on.
        rec.check_at = None;
        let answer = self.answer(&rec, &change, now);
        self.refresh_note(&mut rec, &answer).await;
        rec.version += 1;
        let _ = self.records.put_change(&rec, Some(rec.version - 1)).await;
        Ok(answer)
    }

    /// ServiceNow's callback: the change's approval moved. It only says "look": the gate is
    /// evaluated with what ServiceNow says now, and Gatehouse acts only on `proceed`.
    pub async fn callback(&self, body: WebhookBody) -> Result<()> {
        let rec = self
            .records
            .change_by_sys_id(&body.sys_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("change {}", body.number.as_deref().unwrap_or(&body.sys_id))))?;
        let change = self.current(&rec).await?;
        let rec = self.act(rec, &change, Timestamp::now()).await?;
        tracing::info!(change = %rec.number, approval = %change.approval, played = ?rec.played_job, "change callback handled");
        Ok(())
    }
}
