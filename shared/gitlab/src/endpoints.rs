//! The GitLab REST endpoints Gatehouse uses (merge requests and their notes, jobs, pipelines,
//! deployments and their approvals), over the client's transport in `lib.rs`.

use super::*;

impl Client {
    // -----------------------------------------------------------------------------------------
    // Merge requests and notes
    // -----------------------------------------------------------------------------------------

    /// The merge requests whose head (or merge commit) is `sha`
    /// (`GET /projects/:id/repository/commits/:sha/merge_requests`).
    pub async fn merge_requests_of_commit(&self, project_id: u64, sha: &str) -> Result<Vec<MergeRequest>, Error> {
        let short = sha.get(..12).unwrap_or(sha);
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["repository", "commits", sha, "merge_requests"]),
            query: Vec::new(),
            body: None,
            retry: Retry::Idempotent,
            what: format!("list the merge requests of commit {short}"),
            thing: format!("commit {short}"),
        };
        self.list(project_id, call).await
    }

    /// `GET /projects/:id/deployments?environment=&status=` (all pages).
    pub async fn deployments(
        &self,
        project_id: u64,
        environment: &str,
        status: &str,
    ) -> Result<Vec<Deployment>, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["deployments"]),
            query: vec![("environment", environment.to_string()), ("status", status.to_string())],
            body: None,
            retry: Retry::Idempotent,
            what: format!("list the {status} deployments to {environment}"),
            thing: format!("deployments to {environment}"),
        };
        self.list(project_id, call).await
    }

    /// `GET /projects/:id/pipelines/:pipeline_id/jobs` (all pages; `scope` filters by status, e.g.
    /// `manual`).
    pub async fn pipeline_jobs(
        &self,
        project_id: u64,
        pipeline_id: u64,
        scope: Option<&str>,
    ) -> Result<Vec<Job>, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["pipelines", &pipeline_id.to_string(), "jobs"]),
            query: scope.map(|s| vec![("scope", s.to_string())]).unwrap_or_default(),
            body: None,
            retry: Retry::Idempotent,
            what: format!("list the jobs of pipeline {pipeline_id}"),
            thing: format!("pipeline {pipeline_id}"),
        };
        self.list(project_id, call).await
    }

    /// Every note of a merge request, oldest first (all pages).
    pub async fn mr_notes(&self, project_id: u64, mr_iid: u64) -> Result<Vec<Note>, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["merge_requests", &mr_iid.to_string(), "notes"]),
            query: vec![("sort", "asc".into()), ("order_by", "created_at".into())],
            body: None,
            retry: Retry::Idempotent,
            what: format!("list the notes of merge request !{mr_iid}"),
            thing: format!("merge request !{mr_iid}"),
        };
        self.list(project_id, call).await
    }

    /// The oldest non-system note of a merge request whose body contains `marker` (such as
    /// `<!-- gatehouse:change:CHG0030001 -->`).
    pub async fn find_mr_note(&self, project_id: u64, mr_iid: u64, marker: &str) -> Result<Option<Note>, Error> {
        let notes = self.mr_notes(project_id, mr_iid).await?;
        Ok(notes.into_iter().find(|n| !n.system && n.body.contains(marker)))
    }

    /// Adds a note to a merge request. Not retried when GitLab may already have added it: to write
    /// a note exactly once, use [`Client::upsert_mr_note`].
    pub async fn create_mr_note(&self, project_id: u64, mr_iid: u64, body: &str) -> Result<Note, Error> {
        let call = create_note_call(project_id, mr_iid, body);
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }

    /// Replaces the body of a note.
    pub async fn edit_mr_note(&self, project_id: u64, mr_iid: u64, note_id: u64, body: &str) -> Result<Note, Error> {
        let call = Call {
            method: Method::PUT,
            segments: segs(project_id, &["merge_requests", &mr_iid.to_string(), "notes", &note_id.to_string()]),
            query: Vec::new(),
            body: Some(json!({ "body": body })),
            retry: Retry::Idempotent,
            what: format!("edit note {note_id} of merge request !{mr_iid}"),
            thing: format!("note {note_id} of merge request !{mr_iid}"),
        };
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }

    /// Writes the note carrying `marker` on a merge request: edits the existing one (when its body
    /// differs) or creates it. `marker` is appended to `body` when `body` lacks it. When creating
    /// fails in a way that GitLab may have acted on (a lost answer), the notes are read again
    /// before trying once more, so the note is never written twice.
    pub async fn upsert_mr_note(&self, project_id: u64, mr_iid: u64, marker: &str, body: &str) -> Result<Note, Error> {
        let body = if body.contains(marker) { body.to_string() } else { format!("{body}\n\n{marker}") };
        if let Some(existing) = self.find_mr_note(project_id, mr_iid, marker).await? {
            if existing.body == body {
                return Ok(existing);
            }
            return self.edit_mr_note(project_id, mr_iid, existing.id, &body).await;
        }
        let call = create_note_call(project_id, mr_iid, &body);
        match self.fetch::<Note>(project_id, &call).await {
            Ok(note) => Ok(note),
            Err(failure) if failure.maybe_processed() => {
                tracing::info!(project_id, mr_iid, "note creation may have been lost; looking for it before retrying");
                if let Some(note) = self.find_mr_note(project_id, mr_iid, marker).await? {
                    return Ok(note);
                }
                self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
            }
            Err(failure) => Err(self.fail(project_id, &call, failure)),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Jobs, pipelines, deployments
    // -----------------------------------------------------------------------------------------

    /// Plays (starts) a manual job (`POST /projects/:id/jobs/:job_id/play`). GitLab answers 403
    /// when the job cannot be played (not manual, or the token's user may not run it).
    pub async fn play_job(&self, project_id: u64, job_id: u64) -> Result<Job, Error> {
        self.play_job_with_variables(project_id, job_id, &[]).await
    }

    /// [`Client::play_job`] with CI/CD variables for the job (`job_variables_attributes`). When
    /// the answer is lost after GitLab may have acted, the job is read: if it is no longer
    /// manual, it was played.
    pub async fn play_job_with_variables(
        &self,
        project_id: u64,
        job_id: u64,
        variables: &[(&str, &str)],
    ) -> Result<Job, Error> {
        let body = (!variables.is_empty()).then(|| {
            json!({
                "job_variables_attributes": variables.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()
            })
        });
        let call = Call {
            method: Method::POST,
            segments: segs(project_id, &["jobs", &job_id.to_string(), "play"]),
            query: Vec::new(),
            body,
            retry: Retry::Unprocessed,
            what: format!("play job {job_id}"),
            thing: format!("job {job_id}"),
        };
        match self.fetch::<Job>(project_id, &call).await {
            Ok(job) => Ok(job),
            Err(failure) if failure.maybe_processed() => {
                tracing::info!(project_id, job_id, "playing the job may have worked; reading it before retrying");
                let job = self.job(project_id, job_id).await?;
                if !job.is_manual() {
                    return Ok(job);
                }
                self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
            }
            Err(failure) => Err(self.fail(project_id, &call, failure)),
        }
    }

    /// `GET /projects/:id/jobs/:job_id`.
    pub async fn job(&self, project_id: u64, job_id: u64) -> Result<Job, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["jobs", &job_id.to_string()]),
            query: Vec::new(),
            body: None,
            retry: Retry::Idempotent,
            what: format!("read job {job_id}"),
            thing: format!("job {job_id}"),
        };
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }

    /// `GET /projects/:id/pipelines/:pipeline_id`.
    pub async fn pipeline(&self, project_id: u64, pipeline_id: u64) -> Result<Pipeline, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["pipelines", &pipeline_id.to_string()]),
            query: Vec::new(),
            body: None,
            retry: Retry::Idempotent,
            what: format!("read pipeline {pipeline_id}"),
            thing: format!("pipeline {pipeline_id}"),
        };
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }

    /// `GET /projects/:id/deployments/:deployment_id`.
    pub async fn deployment(&self, project_id: u64, deployment_id: u64) -> Result<Deployment, Error> {
        let call = Call {
            method: Method::GET,
            segments: segs(project_id, &["deployments", &deployment_id.to_string()]),
            query: Vec::new(),
            body: None,
            retry: Retry::Idempotent,
            what: format!("read deployment {deployment_id}"),
            thing: format!("deployment {deployment_id}"),
        };
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }

    /// Approves a blocked deployment as the token's user
    /// (`POST /projects/:id/deployments/:deployment_id/approval`, `status=approved`; GitLab
    /// Premium). GitLab keeps one approval per user, so approving again is harmless.
    pub async fn approve_deployment<'a>(
        &self,
        project_id: u64,
        deployment_id: u64,
        comment: impl Into<Option<&'a str>>,
    ) -> Result<DeploymentApproval, Error> {
        self.decide_deployment(project_id, deployment_id, "approved", comment).await
    }

    /// Rejects a blocked deployment (the same endpoint with `status=rejected`), so the waiting
    /// deploy job fails with the reason instead of waiting forever.
    pub async fn reject_deployment<'a>(
        &self,
        project_id: u64,
        deployment_id: u64,
        comment: impl Into<Option<&'a str>>,
    ) -> Result<DeploymentApproval, Error> {
        self.decide_deployment(project_id, deployment_id, "rejected", comment).await
    }

    async fn decide_deployment<'a>(
        &self,
        project_id: u64,
        deployment_id: u64,
        status: &str,
        comment: impl Into<Option<&'a str>>,
    ) -> Result<DeploymentApproval, Error> {
        let mut body = json!({ "status": status });
        if let Some(comment) = comment.into().filter(|c| !c.is_empty()) {
            body["comment"] = json!(comment);
        }
        let call = Call {
            method: Method::POST,
            segments: segs(project_id, &["deployments", &deployment_id.to_string(), "approval"]),
            query: Vec::new(),
            body: Some(body),
            retry: Retry::Idempotent,
            what: format!("{} deployment {deployment_id}", if status == "approved" { "approve" } else { "reject" }),
            thing: format!("deployment {deployment_id}"),
        };
        self.fetch(project_id, &call).await.map_err(|f| self.fail(project_id, &call, f))
    }
}
