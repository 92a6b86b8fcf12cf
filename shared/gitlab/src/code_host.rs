//! The domain's `CodeHost` port on GitLab.

use async_trait::async_trait;
use domain::Result;
use domain::changes::{CodeHost, JobInfo, PipelineInfo};

use crate::Client;

#[async_trait]
impl CodeHost for Client {
    async fn merge_request_of(&self, project_id: u64, sha: &str) -> Result<Option<u64>> {
        let mrs = self.merge_requests_of_commit(project_id, sha).await?;
        // Prefer the merge request that is still open, then the one that merged the commit.
        let pick = mrs
            .iter()
            .find(|m| m.state == "opened")
            .or_else(|| mrs.iter().find(|m| m.state == "merged"))
            .or(mrs.first());
        Ok(pick.map(|m| m.iid))
    }

    async fn upsert_note(&self, project_id: u64, mr_iid: u64, marker: &str, body: &str) -> Result<u64> {
        Ok(self.upsert_mr_note(project_id, mr_iid, marker, body).await?.id)
    }

    async fn play_job(&self, project_id: u64, job_id: u64) -> Result<()> {
        Client::play_job(self, project_id, job_id).await.map(|_| ())
    }

    async fn approve_deployments(
        &self,
        project_id: u64,
        environment: &str,
        sha: &str,
        comment: &str,
    ) -> Result<Vec<u64>> {
        let mut approved = Vec::new();
        for d in self.deployments(project_id, environment, "blocked").await? {
            if d.sha == sha {
                self.approve_deployment(project_id, d.id, Some(comment)).await?;
                approved.push(d.id);
            }
        }
        Ok(approved)
    }

    async fn job(&self, project_id: u64, job_id: u64) -> Result<Option<JobInfo>> {
        match Client::job(self, project_id, job_id).await {
            Ok(job) => Ok(Some(JobInfo {
                id: job.id,
                pipeline_id: job.pipeline.as_ref().map_or(0, |p| p.id),
                sha: job.pipeline.as_ref().map(|p| p.sha.clone()).unwrap_or_default(),
                name: job.name,
                status: job.status,
            })),
            Err(domain::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pipeline(&self, project_id: u64, pipeline_id: u64) -> Result<Option<PipelineInfo>> {
        match Client::pipeline(self, project_id, pipeline_id).await {
            Ok(p) => Ok(Some(PipelineInfo { id: p.id, sha: p.sha, ref_name: p.ref_, status: p.status })),
            Err(domain::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn reject_deployments(
        &self,
        project_id: u64,
        environment: &str,
        sha: &str,
        comment: &str,
    ) -> Result<Vec<u64>> {
        let mut rejected = Vec::new();
        for d in self.deployments(project_id, environment, "blocked").await? {
            if d.sha == sha {
                self.reject_deployment(project_id, d.id, Some(comment)).await?;
                rejected.push(d.id);
            }
        }
        Ok(rejected)
    }

    async fn manual_job(&self, project_id: u64, pipeline_id: u64, name: &str) -> Result<Option<u64>> {
        let jobs = self.pipeline_jobs(project_id, pipeline_id, Some("manual")).await?;
        Ok(jobs.iter().find(|j| j.name == name && j.status == "manual").map(|j| j.id))
    }
}
