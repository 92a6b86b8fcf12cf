//! The REST API (`/api/v4`) and the router that serves it with the control API and the ID token
//! endpoints.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::SIM_USERNAME;
use crate::model::{Job, Note, SimApproval};
use crate::samples;
use crate::shapes::{approval_json, deployment_json, job_json, merge_request_json, note_json, pipeline_json};
use crate::state::{Shared, SimState, api, bad_request, json_response, not_found, paginate, param_str, params, time};
use crate::{control, id_token};

pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/api/v4/projects/{id}/repository/commits/{sha}/merge_requests", get(commit_merge_requests))
        .route("/api/v4/projects/{id}/merge_requests/{iid}/notes", get(list_notes).post(create_note))
        .route("/api/v4/projects/{id}/merge_requests/{iid}/notes/{note_id}", get(get_note).put(edit_note))
        .route("/api/v4/projects/{id}/jobs/{job_id}", get(get_job))
        .route("/api/v4/projects/{id}/jobs/{job_id}/play", post(play_job))
        .route("/api/v4/projects/{id}/pipelines/{pipeline_id}", get(get_pipeline))
        .route("/api/v4/projects/{id}/pipelines/{pipeline_id}/jobs", get(pipeline_jobs))
        .route("/api/v4/projects/{id}/deployments", get(list_deployments))
        .route("/api/v4/projects/{id}/deployments/{deployment_id}", get(get_deployment))
        .route("/api/v4/projects/{id}/deployments/{deployment_id}/approval", post(approve_deployment))
        .merge(crate::repository::routes())
        .merge(id_token::routes())
        .merge(control::routes())
        .fallback(fallback)
        .with_state(state)
}

async fn fallback(State(st): Shared, headers: HeaderMap) -> Response {
    api(&st, "other", &headers, |_| not_found()).await
}

async fn commit_merge_requests(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, sha)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "commit.merge_requests", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        let items = data
            .merge_requests
            .values()
            .filter(|m| m.project_id == project && m.sha == sha)
            .map(|m| merge_request_json(st, &path, m))
            .collect();
        paginate(items, &params(query.as_deref(), &[]))
    })
    .await
}

async fn pipeline_jobs(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, pipeline_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "pipeline.jobs", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        if !data.pipelines.contains_key(&(project, pipeline_id)) {
            return not_found();
        }
        let p = params(query.as_deref(), &[]);
        // `scope` (or `scope[]`) filters by status, as GitLab does.
        let scope = p.get("scope").or_else(|| p.get("scope[]")).and_then(Value::as_str).map(str::to_string);
        let items = data
            .jobs
            .values()
            .filter(|j| j.project_id == project && j.pipeline_id == pipeline_id)
            .filter(|j| scope.as_deref().is_none_or(|s| s == j.status))
            .map(|j| job_json(st, &data, &path, j, false))
            .collect();
        paginate(items, &p)
    })
    .await
}

async fn list_notes(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "notes.list", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        if !data.merge_requests.contains_key(&(project, iid)) {
            return not_found();
        }
        let params = params(query.as_deref(), &[]);
        let mut notes: Vec<&Note> = data.notes.iter().filter(|n| n.project_id == project && n.mr_iid == iid).collect();
        let by_updated = param_str(&params, "order_by").as_deref() == Some("updated_at");
        notes.sort_by_key(|n| (if by_updated { n.updated_at } else { n.created_at }, n.id));
        // GitLab lists notes newest first unless asked otherwise.
        if param_str(&params, "sort").as_deref() != Some("asc") {
            notes.reverse();
        }
        let items = notes.into_iter().map(|n| note_json(st, n)).collect();
        paginate(items, &params)
    })
    .await
}

/// "Get single merge request note" (https://docs.gitlab.com/ee/api/notes.html): 404 when the
/// merge request holds no note of that id.
async fn get_note(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid, note_id)): Path<(String, u64, u64)>,
) -> Response {
    api(&st, "notes.get", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        match data.notes.iter().find(|n| n.project_id == project && n.mr_iid == iid && n.id == note_id) {
            Some(n) => json_response(StatusCode::OK, note_json(st, n)),
            None => not_found(),
        }
    })
    .await
}

async fn create_note(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "notes.create", &headers, |st| {
        let mut data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        if !data.merge_requests.contains_key(&(project, iid)) {
            return not_found();
        }
        let Some(text) = param_str(&params(query.as_deref(), &body), "body").filter(|b| !b.trim().is_empty()) else {
            return bad_request("body is missing");
        };
        match data.add_note(project, iid, &text, SIM_USERNAME) {
            Some(n) => json_response(StatusCode::CREATED, note_json(st, n)),
            None => not_found(),
        }
    })
    .await
}

async fn edit_note(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, iid, note_id)): Path<(String, u64, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "notes.edit", &headers, |st| {
        let mut data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        let Some(text) = param_str(&params(query.as_deref(), &body), "body").filter(|b| !b.trim().is_empty()) else {
            return bad_request("body is missing");
        };
        let Some(note) = data.notes.iter_mut().find(|n| n.project_id == project && n.mr_iid == iid && n.id == note_id)
        else {
            return not_found();
        };
        if note.author != SIM_USERNAME {
            return json_response(StatusCode::FORBIDDEN, samples::FORBIDDEN_BODY.clone());
        }
        note.body = text;
        note.updated_at = Timestamp::now();
        json_response(StatusCode::OK, note_json(st, note))
    })
    .await
}

async fn get_job(State(st): Shared, headers: HeaderMap, Path((id, job_id)): Path<(String, u64)>) -> Response {
    api(&st, "jobs.get", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        match data.jobs.get(&(project, job_id)) {
            Some(job) => json_response(StatusCode::OK, job_json(st, &data, &path, job, false)),
            None => not_found(),
        }
    })
    .await
}

/// Plays a manual job ("Run a job"). GitLab answers `bad_request!("Unplayable Job")` unless
/// `job.playable?` (lib/api/ci/jobs.rb), i.e. 400 `{"message":"400 Bad request - Unplayable
/// Job"}` (lib/api/helpers.rb `bad_request!`; glab shows `400 {message: 400 Bad request -
/// Unplayable Job}`), and `playable?` is `action? && !archived? && (manual? || scheduled? ||
/// retryable?)` (app/models/ci/build.rb; https://gitlab.com/gitlab-org/gitlab/-/blob/master/app/models/ci/build.rb).
/// So a `when: manual` job plays while `manual`, is refused while `pending` or `running`, and may
/// be played again once finished (GitLab then retries it as a new job; the simulator re-runs it in
/// place and counts the play). A job that is not `when: manual` never plays.
async fn play_job(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, job_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "jobs.play", &headers, |st| {
        let mut data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        let params = params(query.as_deref(), &body);
        let Some(job) = data.jobs.get_mut(&(project, job_id)) else { return not_found() };
        if !playable(job) {
            return json_response(StatusCode::BAD_REQUEST, json!({ "message": UNPLAYABLE_JOB }));
        }
        job.status = "pending".into();
        job.play_count += 1;
        job.user = Some(SIM_USERNAME.into());
        job.variables = params
            .get("job_variables_attributes")
            .and_then(Value::as_array)
            .map(|vars| {
                vars.iter()
                    .filter_map(|v| Some((v.get("key")?.as_str()?.to_string(), v.get("value")?.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let data = &*data;
        let job = &data.jobs[&(project, job_id)];
        json_response(StatusCode::OK, job_json(st, data, &path, job, true))
    })
    .await
}

/// GitLab's answer to playing a job that cannot be played.
pub const UNPLAYABLE_JOB: &str = "400 Bad request - Unplayable Job";

fn playable(job: &Job) -> bool {
    job.manual && matches!(job.status.as_str(), "manual" | "scheduled" | "success" | "failed" | "canceled")
}

async fn get_pipeline(State(st): Shared, headers: HeaderMap, Path((id, pipeline_id)): Path<(String, u64)>) -> Response {
    api(&st, "pipelines.get", &headers, |st| {
        let data = st.data();
        let Some((project, path)) = data.project(&id) else { return not_found() };
        match data.pipelines.get(&(project, pipeline_id)) {
            Some(p) => json_response(StatusCode::OK, pipeline_json(st, &path, p)),
            None => not_found(),
        }
    })
    .await
}

/// `environment` and `status` filter, as in GitLab.
async fn list_deployments(
    State(st): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    api(&st, "deployments.list", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        let p = params(query.as_deref(), &[]);
        let want = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        let (environment, status) = (want("environment"), want("status"));
        let order_by = want("order_by").unwrap_or_else(|| "id".into());
        // GitLab's DeploymentsFinder refuses a `finished_at` order without a finished status
        // (app/finders/deployments_finder.rb), as `bad_request!` does.
        if order_by == "finished_at" && !status.as_deref().is_some_and(|s| matches!(s, "success" | "failed" | "canceled"))
        {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"message": "400 Bad request - `finished_at` sort requires `finished_at` filter or a filter with at least one of the finished statuses."}),
            );
        }
        let mut found: Vec<_> = data
            .deployments
            .values()
            .filter(|d| d.project_id == project)
            .filter(|d| environment.as_deref().is_none_or(|e| e == d.environment))
            .filter(|d| status.as_deref().is_none_or(|s| s == d.status))
            .collect();
        // The simulator's deployments finish in the order they were created.
        found.sort_by_key(|d| (d.created_at, d.id));
        if want("sort").as_deref() == Some("desc") {
            found.reverse();
        }
        let items = found.into_iter().map(|d| deployment_json(st, d)).collect();
        paginate(items, &p)
    })
    .await
}

async fn get_deployment(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, deployment_id)): Path<(String, u64)>,
) -> Response {
    api(&st, "deployments.get", &headers, |st| {
        let data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        match data.deployments.get(&(project, deployment_id)) {
            Some(d) => json_response(StatusCode::OK, deployment_json(st, d)),
            None => not_found(),
        }
    })
    .await
}

/// Approves or rejects as the token's user. As in GitLab, a user has one approval per deployment:
/// approving again updates it. A deployment that is no longer blocked takes no new approval.
async fn approve_deployment(
    State(st): Shared,
    headers: HeaderMap,
    Path((id, deployment_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    api(&st, "deployments.approve", &headers, |st| {
        let mut data = st.data();
        let Some((project, _)) = data.project(&id) else { return not_found() };
        let params = params(query.as_deref(), &body);
        let Some(deployment) = data.deployments.get_mut(&(project, deployment_id)) else { return not_found() };
        let status = match param_str(&params, "status").as_deref() {
            Some(s @ ("approved" | "rejected")) => s.to_string(),
            Some(_) => return bad_request("status does not have a valid value"),
            None => return bad_request("status is missing"),
        };
        let comment = param_str(&params, "comment");
        let existing = deployment.approvals.iter().position(|a| a.username == SIM_USERNAME);
        if existing.is_none() && deployment.status != "blocked" {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"message": "400 Bad request - This deployment is not waiting for approvals."}),
            );
        }
        let approval = SimApproval {
            username: SIM_USERNAME.into(),
            status: status.clone(),
            comment,
            created_at: time(Timestamp::now()),
        };
        match existing {
            Some(i) => deployment.approvals[i] = approval.clone(),
            None => deployment.approvals.push(approval.clone()),
        }
        deployment.status = if status == "approved" { "created".into() } else { "canceled".into() };
        json_response(StatusCode::CREATED, approval_json(st, &approval))
    })
    .await
}
