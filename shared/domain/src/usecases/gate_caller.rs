//! Who may ask the change gate for what (DESIGN.md, "CI identity comes from the ID token, not the
//! body"): a job's verified ID token fills and checks the request; a static token's request is
//! checked in GitLab instead; and no job is recorded or played before GitLab says it is this
//! change's `gatehouse:verify` job, in its pipeline, at its commit.

use super::gate::{ChangeGate, ChangeRequest, ChangeRequestBody, VERIFY_JOB_NAME};
use crate::changes::{ChangeKey, ChangeRecord, CiCaller, CiJobClaims};
use crate::error::{Error, Result};

fn disagrees(field: &str) -> Error {
    Error::Forbidden(format!("{field} disagrees with the job's ID token"))
}

/// A body value must be absent or equal to the token's.
fn agree<T: PartialEq>(field: &str, body: Option<T>, claim: T) -> Result<T> {
    match body {
        Some(v) if v != claim => Err(disagrees(field)),
        _ => Ok(claim),
    }
}

fn required<T>(field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| Error::invalid(field, "is required (or call with the job's ID token, which carries it)"))
}

/// A path's project and commit (and the environment) must be the token's.
pub fn check_key(caller: &CiCaller, key: &ChangeKey) -> Result<()> {
    let CiCaller::Job(claims) = caller else { return Ok(()) };
    if key.project_id != claims.project_id {
        return Err(disagrees("project_id"));
    }
    if !key.sha.eq_ignore_ascii_case(&claims.sha) {
        return Err(disagrees("sha"));
    }
    check_environment_claim(claims, &key.environment)
}

fn check_environment_claim(claims: &CiJobClaims, environment: &str) -> Result<()> {
    match &claims.environment {
        Some(e) if e != environment => {
            Err(Error::Forbidden(format!("environment: this job's ID token is for environment {e}")))
        }
        _ => Ok(()),
    }
}

impl ChangeGate {
    /// The request with the caller's identity applied: filled and checked against a job's ID
    /// token, or (static token) checked in GitLab; then the environment's rules on who may deploy.
    pub(crate) async fn resolve(&self, caller: &CiCaller, body: ChangeRequestBody) -> Result<ChangeRequest> {
        let request = match caller {
            CiCaller::Job(claims) => {
                check_environment_claim(claims, &body.environment)?;
                if let Some(job) = body.job_id
                    && job != claims.job_id
                {
                    return Err(disagrees("job_id"));
                }
                ChangeRequest {
                    project_id: agree("project_id", body.project_id, claims.project_id)?,
                    project_path: agree("project_path", body.project_path, claims.project_path.clone())?,
                    sha: agree("sha", body.sha.map(|s| s.to_ascii_lowercase()), claims.sha.to_ascii_lowercase())?,
                    ref_name: agree("ref", body.ref_name, claims.ref_name.clone())?,
                    pipeline_id: agree("pipeline_id", body.pipeline_id, claims.pipeline_id)?,
                    // The token's job is the one asking (the request job), not the one to play.
                    job_id: None,
                    environment: body.environment,
                    pipeline_url: body.pipeline_url,
                    merge_request_iid: body.merge_request_iid,
                    title: body.title,
                    description: body.description,
                    planned_start: body.planned_start,
                    planned_end: body.planned_end,
                    emergency_reason: body.emergency_reason,
                }
            }
            CiCaller::StaticToken | CiCaller::GitLabEvent => ChangeRequest {
                project_id: required("project_id", body.project_id)?,
                project_path: required("project_path", body.project_path)?,
                sha: required("sha", body.sha)?.to_ascii_lowercase(),
                ref_name: required("ref", body.ref_name)?,
                pipeline_id: required("pipeline_id", body.pipeline_id)?,
                job_id: body.job_id,
                environment: body.environment,
                pipeline_url: body.pipeline_url,
                merge_request_iid: body.merge_request_iid,
                title: body.title,
                description: body.description,
                planned_start: body.planned_start,
                planned_end: body.planned_end,
                emergency_reason: body.emergency_reason,
            },
        };
        self.may_deploy(caller, &request)?;
        if !matches!(caller, CiCaller::Job(_)) {
            self.check_in_gitlab(&request).await?;
        }
        Ok(request)
    }

    /// The environment's rules: which projects may deploy there, from protected refs only, and
    /// (an emergency-only environment) with the job's emergency reason.
    fn may_deploy(&self, caller: &CiCaller, request: &ChangeRequest) -> Result<()> {
        let env = &request.environment;
        let policy = self.policy.environment(env).cloned().unwrap_or_default();
        if let Some(projects) = &policy.projects
            && !projects.iter().any(|p| p == &request.project_path)
        {
            return Err(Error::Forbidden(format!("project {} may not deploy to {env}", request.project_path)));
        }
        if let CiCaller::Job(claims) = caller
            && policy.protected
            && !claims.ref_protected
        {
            return Err(Error::Forbidden(format!(
                "{env} takes deploys from protected refs only, and {} is not protected",
                claims.ref_name
            )));
        }
        policy.check_emergency_reason(env, request.emergency_reason.as_deref())
    }

    /// A static token proves nothing: the pipeline must be this project's at this commit, and a
    /// named job this pipeline's `gatehouse:verify` job.
    async fn check_in_gitlab(&self, request: &ChangeRequest) -> Result<()> {
        let pipeline = self.code.pipeline(request.project_id, request.pipeline_id).await?;
        if pipeline.is_none_or(|p| !p.sha.eq_ignore_ascii_case(&request.sha)) {
            return Err(Error::Forbidden(format!(
                "pipeline {} of project {} is not at commit {}",
                request.pipeline_id, request.project_id, request.sha
            )));
        }
        if let Some(job) = request.job_id {
            let found = self.code.job(request.project_id, job).await?;
            let ok = found.is_some_and(|j| {
                j.pipeline_id == request.pipeline_id
                    && j.sha.eq_ignore_ascii_case(&request.sha)
                    && j.name == VERIFY_JOB_NAME
            });
            if !ok {
                return Err(Error::Forbidden(format!(
                    "job {job} is not the {VERIFY_JOB_NAME} job of pipeline {} at commit {}",
                    request.pipeline_id, request.sha
                )));
            }
        }
        Ok(())
    }

    /// Whether GitLab says `job` is this change's verify job: its pipeline, its commit, its name.
    pub(crate) async fn is_verify_job_of(&self, rec: &ChangeRecord, job: u64) -> Result<bool> {
        Ok(self.code.job(rec.key.project_id, job).await?.is_some_and(|j| {
            j.pipeline_id == rec.pipeline_id && j.sha.eq_ignore_ascii_case(&rec.key.sha) && j.name == VERIFY_JOB_NAME
        }))
    }
}
