//! The domain's `CodeHost` port on GitLab.

use async_trait::async_trait;
use domain::Result;
use domain::changes::{
    CodeHost, CommitSummary, DeployedCommit, DeploymentInfo, JobInfo, MergeRequestSummary, PipelineInfo, TestSummary,
};
use jiff::Timestamp;

use crate::Client;
use crate::types::MergeRequest;

/// The MR whose merge or squash commit `sha` is (what is deployed came from it); else the open MR
/// whose head it is. An MR that merely contains the commit is not the one.
fn merge_request_for(mrs: &[MergeRequest], sha: &str) -> Option<u64> {
    let is = |c: &Option<String>| c.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(sha));
    mrs.iter()
        .find(|m| is(&m.merge_commit_sha) || is(&m.squash_commit_sha))
        .or_else(|| mrs.iter().find(|m| m.state == "opened" && is(&m.sha)))
        .map(|m| m.iid)
}

#[async_trait]
impl CodeHost for Client {
    async fn merge_request_of(&self, project_id: u64, sha: &str) -> Result<Option<u64>> {
        Ok(merge_request_for(&self.merge_requests_of_commit(project_id, sha).await?, sha))
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

    async fn deployment(&self, project_id: u64, deployment_id: u64) -> Result<Option<DeploymentInfo>> {
        match Client::deployment(self, project_id, deployment_id).await {
            Ok(d) => Ok(Some(DeploymentInfo {
                id: d.id,
                status: d.status,
                sha: d.sha,
                environment: d.environment.map(|e| e.name).unwrap_or_default(),
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

    async fn last_successful_deployment(&self, project_id: u64, environment: &str) -> Result<Option<DeployedCommit>> {
        Ok(Client::last_successful_deployment(self, project_id, environment).await?.map(|d| DeployedCommit {
            deployment_id: d.id,
            sha: d.sha,
            created_at: d.created_at,
        }))
    }

    async fn commits_between(&self, project_id: u64, from: &str, to: &str) -> Result<Vec<CommitSummary>> {
        Ok(self
            .compare(project_id, from, to)
            .await?
            .commits
            .into_iter()
            .map(|c| CommitSummary { sha: c.id, title: c.title, author: c.author_name.unwrap_or_default() })
            .collect())
    }

    async fn merged_merge_requests(
        &self,
        project_id: u64,
        target_branch: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<MergeRequestSummary>> {
        let mrs = Client::merged_merge_requests(self, project_id, target_branch, since).await?;
        Ok(mrs
            .into_iter()
            .map(|m| MergeRequestSummary {
                iid: m.iid,
                commits: [m.sha, m.merge_commit_sha, m.squash_commit_sha].into_iter().flatten().collect(),
                author: m.author.map(|a| a.name).unwrap_or_default(),
                title: m.title,
                url: m.web_url,
            })
            .collect())
    }

    async fn test_summary(&self, project_id: u64, pipeline_id: u64) -> Result<Option<TestSummary>> {
        match self.test_report_summary(project_id, pipeline_id).await {
            Ok(s) => Ok(Some(TestSummary {
                count: s.total.count,
                success: s.total.success,
                failed: s.total.failed,
                skipped: s.total.skipped,
                error: s.total.error,
                time_secs: s.total.time,
            })),
            Err(domain::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn manual_job(&self, project_id: u64, pipeline_id: u64, name: &str) -> Result<Option<u64>> {
        let jobs = self.pipeline_jobs(project_id, pipeline_id, Some("manual")).await?;
        Ok(jobs.iter().find(|j| j.name == name && j.status == "manual").map(|j| j.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mr(iid: u64, state: &str, head: &str, merge: Option<&str>, squash: Option<&str>) -> MergeRequest {
        serde_json::from_value(serde_json::json!({
            "id": iid + 100, "iid": iid, "project_id": 4242, "title": "t", "state": state,
            "sha": head, "merge_commit_sha": merge, "squash_commit_sha": squash,
            "web_url": format!("https://gitlab.example.com/acme/shop/-/merge_requests/{iid}")
        }))
        .unwrap()
    }

    #[test]
    fn the_mr_noted_is_the_one_that_merged_the_commit() {
        let sha = "a".repeat(40);
        let other = "b".repeat(40);
        // An open MR that merely contains the commit, and the MR whose merge commit it is.
        let mrs = [mr(9, "opened", &other, None, None), mr(7, "merged", &other, Some(&sha), None)];
        assert_eq!(merge_request_for(&mrs, &sha), Some(7));
        let squashed = [mr(9, "opened", &other, None, None), mr(8, "merged", &other, None, Some(&sha))];
        assert_eq!(merge_request_for(&squashed, &sha), Some(8));
        // Not merged yet: the open MR whose head it is.
        assert_eq!(merge_request_for(&[mr(7, "opened", &sha, None, None)], &sha), Some(7));
        assert_eq!(merge_request_for(&[mr(9, "opened", &other, None, None)], &sha), None);
    }
}
