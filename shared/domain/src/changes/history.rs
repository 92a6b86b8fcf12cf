//! A change record's history (DESIGN.md "Audit evidence"): every step the gate took for the
//! commit and environment — who asked and how they proved it, the change created in ServiceNow,
//! each new answer of the gate, what was done in GitLab, the deployment's result, the close or
//! cancellation — chained like a request's history (`evidence::Chained`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{ChangeKey, CiCaller};
use crate::evidence::Chained;

/// What kind of step an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeEvent {
    /// A pipeline asked for the change (the first entry of a record, or a later pipeline).
    Requested,
    /// The ServiceNow change was created, or an open one with this correlation id adopted.
    Created,
    /// The gate's answer changed (approval, state, window): what it says now and why.
    Gate,
    /// What Gatehouse did in GitLab on the gate's answer (a job played, deployments approved or
    /// rejected) or in ServiceNow (a change cancelled).
    Acted,
    /// A deployment's result was reported (and noted on the change).
    Reported,
    /// The change was closed in ServiceNow.
    Closed,
    /// The change was cancelled in ServiceNow, or found gone from it.
    Cancelled,
}

/// One step of a change record's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEntry {
    pub at: Timestamp,
    /// Who took the step: a CI job (`gitlab:<project> pipeline <id> job <id>`), `ci-token`,
    /// `gitlab-webhook`, or `gatehouse` for the gate's own steps.
    pub actor: String,
    pub event: ChangeEvent,
    pub note: String,
    /// How the actor proved who they are, for a pipeline's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The GitLab user a job ran as ("login <email>"), as its ID token names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// HMAC-SHA256 (hex) chaining this entry to the one before; set by `SealingChanges`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The gate's own steps are recorded under this actor.
pub const GATE_ACTOR: &str = "gatehouse";

impl ChangeEntry {
    /// A step of the gate itself.
    pub fn gate(at: Timestamp, event: ChangeEvent, note: impl Into<String>) -> ChangeEntry {
        ChangeEntry { at, actor: GATE_ACTOR.into(), event, note: note.into(), proof: None, user: None, hash: None }
    }

    /// A step a caller took, named and proved as far as its credential proves it.
    pub fn by(caller: &CiCaller, at: Timestamp, event: ChangeEvent, note: impl Into<String>) -> ChangeEntry {
        let (actor, proof) = caller.described();
        let user = match caller {
            CiCaller::Job(claims) => claims.user(),
            CiCaller::StaticToken | CiCaller::GitLabEvent => None,
        };
        ChangeEntry { at, actor, event, note: note.into(), proof: Some(proof), user, hash: None }
    }
}

impl Chained for ChangeEntry {
    fn hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }
    fn set_hash(&mut self, hash: Option<String>) {
        self.hash = hash;
    }
    fn opens_record(&self) -> bool {
        // Every change record starts with a pipeline's request; later requests follow entries.
        self.event == ChangeEvent::Requested
    }
}

impl CiCaller {
    /// The caller as a history entry names it, and how it proved that.
    pub fn described(&self) -> (String, String) {
        match self {
            CiCaller::Job(c) => (
                format!("gitlab:{} pipeline {} job {}", c.project_path, c.pipeline_id, c.job_id),
                format!(
                    "GitLab ID token: project {} ({}), pipeline {}, job {}, ref {}{}, commit {}",
                    c.project_path,
                    c.project_id,
                    c.pipeline_id,
                    c.job_id,
                    c.ref_name,
                    if c.ref_protected { " (protected)" } else { "" },
                    c.sha
                ),
            ),
            CiCaller::StaticToken => (
                "ci-token".into(),
                "static token of scope ci: proves the right to call, not the job; what it named was checked in \
                 GitLab"
                    .into(),
            ),
            CiCaller::GitLabEvent => (
                "gitlab-webhook".into(),
                "GitLab webhook (secret token checked); the object it named was read back from GitLab".into(),
            ),
        }
    }
}

impl super::ChangeRecord {
    /// Where the change stands, as far as Gatehouse recorded it: `creating` (no ServiceNow change
    /// yet), `open` (watched), `reported` (a deploy's result came), `cancelled`, or `done`.
    pub fn status(&self) -> &'static str {
        match (&self.reported, self.check_at, self.history.last().map(|e| e.event)) {
            (Some(_), _, _) => "reported",
            (None, _, Some(ChangeEvent::Cancelled)) => "cancelled",
            (None, Some(_), _) => "open",
            (None, None, _) if self.sys_id.is_empty() => "creating",
            (None, None, _) => "done",
        }
    }
}

impl ChangeKey {
    /// The record's id in audit evidence (and the first link of its chain):
    /// `<project_id>/<sha>/<environment>`.
    pub fn record_id(&self) -> String {
        format!("{}/{}/{}", self.project_id, self.sha, self.environment)
    }
}
