//! What a release holds, read from GitLab for the change's description: the environment's last
//! successful deployment, the commits since, the merge requests that brought them, and the
//! pipeline's test summary.

use jiff::Timestamp;

use super::*;

impl Client {
    /// The most recently finished successful deployment to `environment`
    /// (`GET /projects/:id/deployments?environment=&status=success&order_by=finished_at&sort=desc`:
    /// GitLab orders by `finished_at` only together with `status=success`,
    /// https://docs.gitlab.com/api/deployments/#list-project-deployments). One page is enough.
    pub async fn last_successful_deployment(
        &self,
        project_id: u64,
        environment: &str,
    ) -> Result<Option<Deployment>, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["deployments"]),
            query: vec![
                ("environment", environment.to_string()),
                ("status", "success".into()),
                ("order_by", "finished_at".into()),
                ("sort", "desc".into()),
            ],
            body: None,
            retry: Retry::Idempotent,
            what: format!("find the last successful deployment to {environment}"),
            thing: format!("deployments to {environment}"),
        };
        let (_, body) = self.send(project_id, &call, Some(1)).await.map_err(|f| self.fail(project_id, &call, f))?;
        let list: Vec<Deployment> =
            serde_json::from_slice(&body).map_err(|error| self.fail(project_id, &call, Failure::Decode { error }))?;
        Ok(list.into_iter().next())
    }

    /// `GET /projects/:id/repository/compare?from=&to=`: the commits of `to` that `from` lacks.
    /// An unknown commit is GitLab's 404 "Ref Not Found".
    pub async fn compare(&self, project_id: u64, from: &str, to: &str) -> Result<Compare, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["repository", "compare"]),
            query: vec![("from", from.to_string()), ("to", to.to_string())],
            body: None,
            retry: Retry::Idempotent,
            what: format!("compare {} with {}", from.get(..8).unwrap_or(from), to.get(..8).unwrap_or(to)),
            thing: format!("commit {} or {}", from.get(..8).unwrap_or(from), to.get(..8).unwrap_or(to)),
        };
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }

    /// `GET /projects/:id/merge_requests?state=merged&target_branch=&updated_after=` (all pages).
    pub async fn merged_merge_requests(
        &self,
        project_id: u64,
        target_branch: &str,
        updated_after: Option<Timestamp>,
    ) -> Result<Vec<MergeRequest>, Error> {
        let mut query = vec![("state", "merged".to_string()), ("target_branch", target_branch.to_string())];
        if let Some(t) = updated_after {
            query.push(("updated_after", t.to_string()));
        }
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["merge_requests"]),
            query,
            body: None,
            retry: Retry::Idempotent,
            what: format!("list the merge requests merged into {target_branch}"),
            thing: format!("merge requests into {target_branch}"),
        };
        self.list(project_id, call).await
    }

    /// `GET /projects/:id/pipelines/:pipeline_id/test_report_summary`.
    pub async fn test_report_summary(&self, project_id: u64, pipeline_id: u64) -> Result<TestReportSummary, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["pipelines", &pipeline_id.to_string(), "test_report_summary"]),
            query: Vec::new(),
            body: None,
            retry: Retry::Idempotent,
            what: format!("read the test report summary of pipeline {pipeline_id}"),
            thing: format!("pipeline {pipeline_id}"),
        };
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }
}
