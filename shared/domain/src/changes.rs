//! The CI change gate's model: one ServiceNow change request per (GitLab project, commit,
//! environment) while it is open, what Gatehouse keeps about it, and the ports it uses.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::evidence::ChainHead;
use crate::policy::{ChangeType, EnvironmentPolicy};

mod history;
pub use history::{ChangeEntry, ChangeEvent, GATE_ACTOR};

/// What identifies a change: the commit of a project deployed to an environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeKey {
    pub project_id: u64,
    pub sha: String,
    pub environment: String,
}

impl ChangeKey {
    /// The change request's `correlation_id`, checked exactly on lookup.
    pub fn correlation_id(&self) -> String {
        format!("gitlab:{}:{}:{}", self.project_id, self.sha, self.environment)
    }
    /// The record's key in both stores (`CHG#{project}#{sha}#{env}`), which also orders records
    /// touched at the same instant.
    pub fn storage_key(&self) -> String {
        format!("CHG#{}#{}#{}", self.project_id, self.sha, self.environment)
    }
    /// The hidden marker of the one MR note Gatehouse keeps per change.
    pub fn note_marker(&self) -> String {
        format!("<!-- gatehouse:change:{}:{}:{} -->", self.project_id, self.sha, self.environment)
    }
}

/// A change request as ServiceNow shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeState {
    pub sys_id: String,
    pub number: String,
    pub url: String,
    /// `requested`, `approved`, `rejected`, `not requested`, …
    pub approval: String,
    /// ServiceNow's stored value (`-5` New … `-1` Implement, `0` Review, `3` Closed, `4` Canceled).
    pub state: String,
    pub state_display: String,
    pub correlation_id: String,
    pub planned_start: Option<Timestamp>,
    pub planned_end: Option<Timestamp>,
}

pub mod state {
    pub const NEW: &str = "-5";
    pub const AUTHORIZE: &str = "-3";
    pub const SCHEDULED: &str = "-2";
    pub const IMPLEMENT: &str = "-1";
    pub const REVIEW: &str = "0";
    pub const CLOSED: &str = "3";
    pub const CANCELED: &str = "4";
}

impl ChangeState {
    pub fn is_open(&self) -> bool {
        self.state != state::CLOSED && self.state != state::CANCELED
    }
}

/// What a new change request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeDraft {
    pub correlation_id: String,
    pub short_description: String,
    pub description: String,
    pub planned_start: Option<Timestamp>,
    pub planned_end: Option<Timestamp>,
    /// From the environment's policy: who assesses it, what it touches, and how it is done.
    pub details: ChangeDetails,
    /// Which of ServiceNow's change models it follows.
    pub kind: ChangeKind,
}

/// Which of ServiceNow's change models a new change follows (DESIGN.md: `change_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// ServiceNow's normal change: assessed, then authorized by the CAB.
    Normal,
    /// A standard change from a pre-approved template (its name or sys_id, from the policy's
    /// `standard_template`): no CAB approval; it proceeds when its window is open.
    Standard { template: String },
    /// An emergency change, with the job's reason (`GATEHOUSE_EMERGENCY_REASON`): ServiceNow's
    /// emergency model (straight to Authorize), windows skipped, approval still needed.
    Emergency { reason: String },
}

impl ChangeKind {
    /// The kind of a new change to an environment with these rules: the job's emergency reason
    /// makes an emergency change wherever it is given; else the environment's `change_type`. An
    /// emergency-only environment never gets here without a reason (the request is refused first,
    /// see [`EnvironmentPolicy::check_emergency_reason`]); should it, the change is a normal one,
    /// which still waits for the CAB.
    pub fn of(policy: Option<&EnvironmentPolicy>, emergency_reason: Option<&str>) -> ChangeKind {
        if let Some(reason) = emergency_reason {
            return ChangeKind::Emergency { reason: reason.to_string() };
        }
        match policy.map(|p| &p.change_type) {
            Some(ChangeType::Standard { template }) => ChangeKind::Standard { template: template.clone() },
            _ => ChangeKind::Normal,
        }
    }

    /// ServiceNow's `type` value: `normal`, `standard` or `emergency`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChangeKind::Normal => "normal",
            ChangeKind::Standard { .. } => "standard",
            ChangeKind::Emergency { .. } => "emergency",
        }
    }

    pub fn emergency_reason(&self) -> Option<&str> {
        match self {
            ChangeKind::Emergency { reason } => Some(reason),
            _ => None,
        }
    }
}

/// What the environment's policy says every change to it carries (DESIGN.md's change policy:
/// `assignment_group`, `cmdb_ci`, risk, impact and the plans). Names as ServiceNow shows them;
/// the adapter resolves them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeDetails {
    pub assignment_group: Option<String>,
    pub cmdb_ci: Option<String>,
    /// ServiceNow's choice values (risk: 2 high, 3 moderate, 4 low; impact: 1 high … 3 low).
    pub risk: Option<String>,
    pub impact: Option<String>,
    pub implementation_plan: Option<String>,
    pub backout_plan: Option<String>,
    pub test_plan: Option<String>,
}

/// What Gatehouse keeps per change: how to reach it and what it owes the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub key: ChangeKey,
    pub version: u64,
    /// Empty while the first pipeline is still creating the change.
    pub sys_id: String,
    pub number: String,
    pub url: String,
    pub project_path: String,
    pub pipeline_id: u64,
    pub pipeline_url: String,
    /// The manual job the webhook plays once the change is approved.
    pub job_id: Option<u64>,
    pub merge_request_iid: Option<u64>,
    pub mr_note_id: Option<u64>,
    pub title: String,
    pub planned_start: Option<Timestamp>,
    pub planned_end: Option<Timestamp>,
    /// The approval last acted on, so a replayed callback does nothing twice.
    pub last_approval: Option<String>,
    /// The job id already played for this change.
    pub played_job: Option<u64>,
    /// The deployment result reported, once.
    pub reported: Option<String>,
    /// What the MR note shows now, so it is edited only when that changes.
    pub note_summary: Option<String>,
    /// The reason of an emergency change (windows are skipped; approval is not).
    #[serde(default)]
    pub emergency_reason: Option<String>,
    /// When the sweeper next re-evaluates the gate for this change (a window that opens, a
    /// deployment that starts waiting for approval); `None` once there is nothing left to do.
    #[serde(default)]
    pub check_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Every step taken for this commit and environment, oldest first, across the ServiceNow
    /// changes it has had (a cancelled change is followed by a new one). Only ever appended to:
    /// `evidence::SealingChanges` seals new entries and refuses a write that drops or edits one.
    #[serde(default)]
    pub history: Vec<ChangeEntry>,
    /// The head of the history's chain (entry count and last hash).
    #[serde(default)]
    pub chain: ChainHead,
}

/// Storage of change records (the `CHG#…` items). Writes are conditional: `expected_version`
/// `None` means "must not exist yet"; losing is `Error::Stale`.
#[async_trait]
pub trait ChangeRecords: Send + Sync {
    async fn get_change(&self, key: &ChangeKey) -> Result<Option<ChangeRecord>>;
    async fn change_by_sys_id(&self, sys_id: &str) -> Result<Option<ChangeRecord>>;
    async fn put_change(&self, record: &ChangeRecord, expected_version: Option<u64>) -> Result<()>;
    /// Records whose `check_at` is at or before `now`, earliest first (at most `limit`).
    async fn changes_due(&self, now: Timestamp, limit: usize) -> Result<Vec<ChangeRecord>>;
    /// Records last written in [`since`, `until`), in (`updated_at`, key) order, after `after`
    /// (at most `limit`): the audit export's walk. An index may lag; the caller re-reads by key.
    async fn changes_touched(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, ChangeKey)>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>>;
}

/// ServiceNow's change requests.
#[async_trait]
pub trait ChangeManagement: Send + Sync {
    /// The open change whose `correlation_id` is exactly this one.
    async fn find_open(&self, correlation_id: &str) -> Result<Option<ChangeState>>;
    async fn create(&self, draft: &ChangeDraft) -> Result<ChangeState>;
    async fn get(&self, sys_id: &str) -> Result<Option<ChangeState>>;
    /// Adds a work note once (a retry finds the marker and does not add it again).
    async fn add_note(&self, sys_id: &str, marker: &str, text: &str) -> Result<()>;
    /// Records the close code and notes and moves the change to Closed the way ServiceNow's normal
    /// change model allows (Scheduled → Implement → Review → Closed).
    async fn close(&self, sys_id: &str, successful: bool, notes: &str) -> Result<ChangeState>;
    /// Cancels an open change (state Canceled) with a work note carrying `marker` once.
    async fn cancel(&self, sys_id: &str, marker: &str, note: &str) -> Result<ChangeState>;
}

/// GitLab.
#[async_trait]
pub trait CodeHost: Send + Sync {
    /// The merge request that brought this commit, if any.
    async fn merge_request_of(&self, project_id: u64, sha: &str) -> Result<Option<u64>>;
    /// Creates or edits the one note carrying `marker`; answers its id.
    async fn upsert_note(&self, project_id: u64, mr_iid: u64, marker: &str, body: &str) -> Result<u64>;
    async fn play_job(&self, project_id: u64, job_id: u64) -> Result<()>;
    /// Approves the deployments of `sha` to `environment` that wait for approval (environments
    /// protected with deployment approvals); answers their ids.
    async fn approve_deployments(
        &self,
        project_id: u64,
        environment: &str,
        sha: &str,
        comment: &str,
    ) -> Result<Vec<u64>>;
    /// The id of the pipeline's manual job called `name`, if it is still waiting.
    async fn manual_job(&self, project_id: u64, pipeline_id: u64, name: &str) -> Result<Option<u64>>;
    /// A job as GitLab records it (`None` on 404): what Gatehouse checks before it records or
    /// plays a job.
    async fn job(&self, project_id: u64, job_id: u64) -> Result<Option<JobInfo>>;
    /// A deployment as GitLab records it (`None` on 404).
    async fn deployment(&self, project_id: u64, deployment_id: u64) -> Result<Option<DeploymentInfo>>;
    /// A pipeline as GitLab records it (`None` on 404).
    async fn pipeline(&self, project_id: u64, pipeline_id: u64) -> Result<Option<PipelineInfo>>;
    /// Rejects the deployments of `sha` to `environment` that wait for approval, with `comment`;
    /// answers their ids.
    async fn reject_deployments(
        &self,
        project_id: u64,
        environment: &str,
        sha: &str,
        comment: &str,
    ) -> Result<Vec<u64>>;
    /// The environment's most recently finished successful deployment, if it ever had one.
    async fn last_successful_deployment(&self, project_id: u64, environment: &str) -> Result<Option<DeployedCommit>>;
    /// The commits `to` has and `from` has not, oldest first (GitLab's compare).
    async fn commits_between(&self, project_id: u64, from: &str, to: &str) -> Result<Vec<CommitSummary>>;
    /// The merge requests merged into `target_branch` and updated after `since` (all, when `None`).
    async fn merged_merge_requests(
        &self,
        project_id: u64,
        target_branch: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<MergeRequestSummary>>;
    /// The pipeline's test report summary; `None` when the pipeline reported no tests.
    async fn test_summary(&self, project_id: u64, pipeline_id: u64) -> Result<Option<TestSummary>>;
}

/// A successful deployment as GitLab records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedCommit {
    pub deployment_id: u64,
    pub sha: String,
    /// When GitLab created it (with its pipeline): whatever merged after that is not in it.
    pub created_at: Option<Timestamp>,
}

/// A commit, as the change's description lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    pub sha: String,
    pub title: String,
    pub author: String,
}

/// A merged merge request, as the change's description lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRequestSummary {
    pub iid: u64,
    pub title: String,
    pub author: String,
    pub url: String,
    /// The commits that can stand for it in a branch's history: its head, its merge commit and
    /// its squash commit (whichever GitLab recorded).
    pub commits: Vec<String>,
}

/// A pipeline's test report summary (GitLab's `total`).
#[derive(Debug, Clone, PartialEq)]
pub struct TestSummary {
    pub count: u64,
    pub success: u64,
    pub failed: u64,
    pub skipped: u64,
    pub error: u64,
    pub time_secs: f64,
}

/// A job as GitLab shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: u64,
    pub name: String,
    pub pipeline_id: u64,
    pub sha: String,
    /// `manual`, `pending`, `running`, `success`, …
    pub status: String,
}

/// A deployment as GitLab shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    pub id: u64,
    /// `created`, `running`, `success`, `failed`, `canceled`, `blocked`.
    pub status: String,
    pub sha: String,
    pub environment: String,
}

/// A pipeline as GitLab shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineInfo {
    pub id: u64,
    pub sha: String,
    pub ref_name: String,
    /// `running`, `success`, `failed`, `canceled`, `manual`, …
    pub status: String,
}

/// What a verified GitLab CI/CD ID token says about the job presenting it (DESIGN.md: CI identity
/// comes from the ID token, not the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiJobClaims {
    pub project_id: u64,
    pub project_path: String,
    pub pipeline_id: u64,
    pub job_id: u64,
    pub sha: String,
    pub ref_name: String,
    /// GitLab's `ref_protected` claim is the string "true" or "false".
    pub ref_protected: bool,
    /// Only for jobs that name an environment.
    pub environment: Option<String>,
    /// The user the job runs as (`user_login`, `user_email`): whoever started the pipeline or
    /// played the job last.
    pub user_login: Option<String>,
    pub user_email: Option<String>,
}

impl CiJobClaims {
    /// The job's user as a person's name is shown: "login <email>", or whichever of them is known.
    pub fn user(&self) -> Option<String> {
        match (&self.user_login, &self.user_email) {
            (Some(login), Some(email)) => Some(format!("{login} <{email}>")),
            (login, email) => login.clone().or_else(|| email.clone()),
        }
    }
}

/// Verifies GitLab ID tokens against the instance's JWKS (`/oauth/discovery/keys`, cached,
/// refetched on an unknown `kid`): signature, `iss` = the GitLab URL, `aud`, `exp`, `nbf`. A token
/// that does not verify is `Error::Unauthorized`.
#[async_trait]
pub trait CiIdentity: Send + Sync {
    async fn verify(&self, id_token: &str) -> Result<CiJobClaims>;
}

/// Who a change-gate call comes from, as far as its credential proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiCaller {
    /// A job, by its verified ID token.
    Job(CiJobClaims),
    /// A static token of scope `ci` (only with `GATEHOUSE_CI_ALLOW_STATIC_TOKENS=true`): it proves
    /// the right to call, nothing about the job; what it names is checked in GitLab instead.
    StaticToken,
    /// A GitLab webhook (its secret checked): it names an object, which is read back from GitLab.
    GitLabEvent,
}
