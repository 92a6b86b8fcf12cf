//! The CI change gate: a GitLab pipeline asks for the change of its commit and environment, waits
//! until the change is approved and its window is open, deploys, and reports back.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::gate_caller::check_key;
use super::gate_history::{record_answer, work_note};
use crate::changes::{
    ChangeDraft, ChangeEntry, ChangeEvent, ChangeKey, ChangeManagement, ChangeRecord, ChangeRecords, ChangeState,
    CiCaller, CiIdentity, CodeHost, state,
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

/// The first entry of a request for a change: what the pipeline asked for.
fn requested_note(body: &ChangeRequest) -> String {
    let mut note = format!(
        "pipeline {} of {} asks to deploy commit {} (ref {}) to {}: {}",
        body.pipeline_id, body.project_path, body.sha, body.ref_name, body.environment, body.title
    );
    if let Some(reason) = &body.emergency_reason {
        note.push_str(&format!(" (emergency: {reason})"));
    }
    note
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
                        let again = format!(
                            "pipeline {} (ref {}) asks again for change {}, which is open",
                            body.pipeline_id, body.ref_name, rec.number
                        );
                        rec.history.push(ChangeEntry::by(caller, now, ChangeEvent::Requested, again));
                        record_answer(&mut rec, &answer, now);
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
            // Claim the key, then create (or adopt a change an earlier attempt created). The
            // history of the key's earlier changes (cancelled, closed) is kept and goes on.
            let mut history = existing.as_ref().map(|r| r.history.clone()).unwrap_or_default();
            history.push(ChangeEntry::by(caller, now, ChangeEvent::Requested, requested_note(&body)));
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
                history,
                chain: existing.as_ref().map(|r| r.chain.clone()).unwrap_or_default(),
            };
            match self.records.put_change(&claim, existing.as_ref().map(|r| r.version)).await {
                Ok(()) => {}
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
            let (change, created) = match self.changes.find_open(&key.correlation_id()).await? {
                Some(found) => (found, None),
                None => {
                    let summary = super::gate_summary::release_summary(
                        self.code.as_ref(),
                        &key,
                        &body.ref_name,
                        body.pipeline_id,
                    )
                    .await;
                    let draft = self.draft(&key, &body, &summary);
                    (self.changes.create(&draft).await?, Some(draft.kind.type_name()))
                }
            };
            let mut rec = claim;
            let made = match created {
                Some(kind) => format!("{kind} change {} created in ServiceNow", change.number),
                None => format!("open change {} with this commit and environment adopted", change.number),
            };
            rec.history.push(ChangeEntry::gate(now, ChangeEvent::Created, made));
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
            record_answer(&mut rec, &answer, now);
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
        let recorded = record_answer(&mut rec, &answer, now);
        if self.refresh_note(&mut rec, &answer).await || recorded {
            rec.version += 1;
            rec.updated_at = now;
            // The note's bookkeeping and the answer, which the next look records again should this
            // write lose to a concurrent one (that one's answer is then recorded first).
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
        let rec = self.record(key).await?;
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
            self.changes.add_note(&rec.sys_id, &marker, &work_note(&warning, &marker, &rec.chain)).await?;
            let now = Timestamp::now();
            let entry = ChangeEntry::by(
                caller,
                now,
                ChangeEvent::Reported,
                format!(
                    "{text}; the change {} was not approved (approval {}): it stays open",
                    rec.number, current.approval
                ),
            );
            self.amend(key, |r| {
                r.history.push(entry.clone());
                r.updated_at = now;
            })
            .await?;
            return Err(Error::Conflict(format!(
                "change {} is not approved (approval {}); the deployment was recorded on it, the change stays open",
                current.number, current.approval
            )));
        }
        self.changes.add_note(&rec.sys_id, &marker, &work_note(&text, &marker, &rec.chain)).await?;
        let was_open = current.is_open();
        let change = match current {
            c if c.is_open() => self.changes.close(&rec.sys_id, body.status == DeployStatus::Success, &text).await?,
            closed => closed,
        };
        let now = Timestamp::now();
        let mut steps = vec![ChangeEntry::by(caller, now, ChangeEvent::Reported, text.clone())];
        steps.push(if was_open {
            let how = if result == "success" { "successful" } else { "unsuccessful" };
            ChangeEntry::gate(
                now,
                ChangeEvent::Closed,
                format!("change {} closed in ServiceNow ({how})", change.number),
            )
        } else {
            ChangeEntry::gate(
                now,
                ChangeEvent::Closed,
                format!("change {} was already {}: recorded, nothing changed", change.number, change.state_display),
            )
        });
        let mut rec = self
            .amend(key, |r| {
                r.reported = Some(result.to_string());
                r.updated_at = now;
                // Reported and closed: nothing left to act on.
                r.check_at = None;
                r.history.extend(steps.iter().cloned());
            })
            .await?;
        let answer = self.answer(&rec, &change, now);
        if self.refresh_note(&mut rec, &answer).await {
            rec.version += 1;
            // Only the note's bookkeeping: losing this write to a concurrent one is harmless.
            let _ = self.records.put_change(&rec, Some(rec.version - 1)).await;
        }
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
