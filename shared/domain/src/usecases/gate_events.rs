//! The result is never lost (DESIGN.md, "The result is never lost"): GitLab's deployment and
//! pipeline events are only a signal to look; Gatehouse re-reads the deployment or pipeline from
//! GitLab and then reports the deploy's result onto its change (whichever of this and
//! `gatehouse ci report` comes first closes it; the other is recorded and changes nothing), or
//! cancels the change of a pipeline that ended without deploying. The sweeper does the same for
//! the pipelines of open changes older than `pipeline_check_after`, so a lost event loses nothing.

use jiff::{SignedDuration, Timestamp};

use super::gate::{ChangeGate, DeployStatus, DeploymentBody};
use super::gate_history::work_note;
use crate::changes::{ChangeEntry, ChangeEvent, ChangeKey, ChangeRecord, CiCaller};
use crate::error::{Error, Result};

/// What a GitLab webhook says happened: only which object to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitLabEvent {
    Deployment { project_id: u64, deployment_id: u64 },
    Pipeline { project_id: u64, pipeline_id: u64 },
}

/// Pipelines in these states ended without (further) work.
const ENDED_WITHOUT_DEPLOYING: [&str; 3] = ["failed", "canceled", "skipped"];

impl ChangeGate {
    /// Acts on a GitLab event after reading its object from GitLab. An object GitLab does not have
    /// is `NotFound` (a forged event changes nothing).
    pub async fn gitlab_event(&self, event: GitLabEvent) -> Result<()> {
        match event {
            GitLabEvent::Deployment { project_id, deployment_id } => {
                let deployment = self
                    .code
                    .deployment(project_id, deployment_id)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("deployment {deployment_id} in GitLab")))?;
                let status = match deployment.status.as_str() {
                    "success" => DeployStatus::Success,
                    "failed" => DeployStatus::Failed,
                    // Not over yet: a later event says how it ended.
                    _ => return Ok(()),
                };
                let key = ChangeKey {
                    project_id,
                    sha: deployment.sha.to_ascii_lowercase(),
                    environment: deployment.environment.clone(),
                };
                if self.records.get_change(&key).await?.is_none_or(|r| r.sys_id.is_empty()) {
                    return Ok(());
                }
                let body = DeploymentBody {
                    environment: deployment.environment,
                    status,
                    pipeline_url: format!("GitLab deployment {deployment_id}"),
                    job_url: None,
                };
                match self.report(&CiCaller::GitLabEvent, &key, body).await {
                    // Recorded on an unapproved change: the report says so; the event is handled.
                    Ok(_) | Err(Error::Conflict(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            GitLabEvent::Pipeline { project_id, pipeline_id } => {
                let pipeline = self
                    .code
                    .pipeline(project_id, pipeline_id)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("pipeline {pipeline_id} in GitLab")))?;
                if !ENDED_WITHOUT_DEPLOYING.contains(&pipeline.status.as_str()) {
                    return Ok(());
                }
                // The open changes of that pipeline: every open change is watched (`check_at`).
                let watched = self.records.changes_due(Timestamp::MAX, 1000).await?;
                for rec in watched
                    .into_iter()
                    .filter(|r| r.key.project_id == project_id && r.pipeline_id == pipeline_id && r.reported.is_none())
                {
                    self.cancel_for_pipeline(rec, &pipeline.status).await?;
                }
                Ok(())
            }
        }
    }

    /// Cancels `rec`'s change because its pipeline ended `status` without deploying.
    pub(crate) async fn cancel_for_pipeline(&self, rec: ChangeRecord, status: &str) -> Result<()> {
        let Some(change) = self.changes.get(&rec.sys_id).await? else { return Ok(()) };
        let now = Timestamp::now();
        let mut step = None;
        if change.is_open() {
            let marker = format!("gatehouse:pipeline-ended:{}:{}", rec.key.correlation_id(), rec.pipeline_id);
            let note = format!(
                "Pipeline {} ended {status} without deploying; Gatehouse cancelled this change, so the next \
                 pipeline of commit {} gets a new one.",
                rec.pipeline_id, rec.key.sha
            );
            self.changes.cancel(&rec.sys_id, &marker, &work_note(&note, &marker, &rec.chain)).await?;
            step = Some(ChangeEntry::gate(now, ChangeEvent::Cancelled, format!("change {}: {note}", rec.number)));
        }
        let pipeline = rec.pipeline_id;
        self.amend(&rec.key, |r| {
            // A later pipeline may have taken the record over meanwhile: its watch stays.
            if r.pipeline_id == pipeline {
                r.check_at = None;
            }
            r.updated_at = now;
            r.history.extend(step.iter().cloned());
        })
        .await?;
        Ok(())
    }

    /// For the sweeper: whether `rec`'s pipeline, older than `pipeline_check_after`, ended
    /// without deploying (then its change is cancelled and nothing else is done for it).
    pub(crate) async fn pipeline_ended(&self, rec: &ChangeRecord, now: Timestamp) -> Result<bool> {
        let after = SignedDuration::try_from(self.pipeline_check_after).unwrap_or(SignedDuration::from_hours(1));
        if rec.reported.is_some() || now.duration_since(rec.created_at) < after {
            return Ok(false);
        }
        match self.code.pipeline(rec.key.project_id, rec.pipeline_id).await? {
            Some(p) if ENDED_WITHOUT_DEPLOYING.contains(&p.status.as_str()) => {
                self.cancel_for_pipeline(rec.clone(), &p.status).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
