//! The control API under `/_sim/` (no credentials): seeding, inspection, faults, call counts and
//! reset, for tests and the demo in another process.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::model::{Data, Faults, SimApproval, SimNote};
use crate::state::{Shared, SimState, json_response, lock, not_found};

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/faults", get(control_get_faults).put(control_put_faults))
        .route("/_sim/calls", get(control_calls))
        .route("/_sim/reset", post(control_reset))
        .route("/_sim/demo", post(control_demo))
        .route("/_sim/projects", post(control_add_project))
        .route("/_sim/merge_requests", post(control_add_merge_request))
        .route("/_sim/pipelines", post(control_add_pipeline))
        .route("/_sim/jobs", post(control_add_job))
        .route("/_sim/jobs/{id}", get(control_job_by_id))
        .route("/_sim/deployments", post(control_add_deployment))
        .route("/_sim/projects/{p}/merge_requests/{iid}/notes", get(control_notes))
        .route("/_sim/projects/{p}/jobs/{id}", get(control_job))
        .route("/_sim/projects/{p}/jobs/{id}/status", put(control_job_status))
        .route("/_sim/projects/{p}/pipelines/{id}/status", put(control_pipeline_status))
        .route("/_sim/projects/{p}/deployments/{id}", get(control_deployment))
        .route("/_sim/projects/{p}/deployments/{id}/approvals", get(control_approvals))
}

fn control_error(message: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": message }))
}

fn control_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))
}

async fn control_get_faults(State(st): Shared) -> Json<Faults> {
    Json(lock(&st.faults).clone())
}

async fn control_put_faults(State(st): Shared, body: Bytes) -> Response {
    match control_body::<Faults>(&body) {
        Ok(f) => {
            *lock(&st.faults) = f.clone();
            Json(f).into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_calls(State(st): Shared) -> Json<BTreeMap<String, u64>> {
    Json(lock(&st.calls).clone())
}

async fn control_reset(State(st): Shared) -> StatusCode {
    *st.data() = Data::default();
    lock(&st.calls).clear();
    StatusCode::NO_CONTENT
}

async fn control_demo(State(st): Shared) -> StatusCode {
    st.data().seed_demo();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct NewProject {
    id: u64,
    path: String,
}

#[derive(Deserialize)]
struct NewMergeRequest {
    project_id: u64,
    iid: u64,
    sha: String,
    title: String,
}

#[derive(Deserialize)]
struct NewPipeline {
    project_id: u64,
    id: u64,
    #[serde(default)]
    sha: String,
    #[serde(default, rename = "ref")]
    ref_: String,
    #[serde(default = "running")]
    status: String,
    /// Default: true for "main" (the default branch), else false.
    ref_protected: Option<bool>,
}

#[derive(Deserialize)]
struct NewJob {
    project_id: u64,
    id: u64,
    pipeline_id: u64,
    name: String,
    #[serde(default = "manual")]
    status: String,
    /// The environment the job deploys to.
    environment: Option<String>,
    /// With `environment`: whether that environment is protected (default: left as it is).
    environment_protected: Option<bool>,
}

#[derive(Deserialize)]
struct NewDeployment {
    project_id: u64,
    id: u64,
    environment: String,
    #[serde(default = "blocked")]
    status: String,
}

#[derive(Deserialize)]
struct NewStatus {
    status: String,
}

fn running() -> String {
    "running".into()
}

fn manual() -> String {
    "manual".into()
}

fn blocked() -> String {
    "blocked".into()
}

async fn control_add_project(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewProject>(&body) {
        Ok(p) => {
            st.data().add_project(p.id, &p.path);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_merge_request(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewMergeRequest>(&body) {
        Ok(m) => {
            st.data().add_merge_request(m.project_id, m.iid, &m.sha, &m.title);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_pipeline(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewPipeline>(&body) {
        Ok(p) => {
            let mut data = st.data();
            data.add_pipeline(p.project_id, p.id, &p.sha, &p.ref_, &p.status);
            if let (Some(protected), Some(pipeline)) = (p.ref_protected, data.pipelines.get_mut(&(p.project_id, p.id)))
            {
                pipeline.protected = protected;
            }
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_job(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewJob>(&body) {
        Ok(j) => {
            let mut data = st.data();
            data.add_job(j.project_id, j.id, j.pipeline_id, &j.name, &j.status);
            data.set_job_environment(j.project_id, j.id, j.environment.as_deref());
            if let (Some(env), Some(protected)) = (&j.environment, j.environment_protected) {
                data.set_environment_protected(j.project_id, env, protected);
            }
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_add_deployment(State(st): Shared, body: Bytes) -> Response {
    match control_body::<NewDeployment>(&body) {
        Ok(d) => {
            st.data().add_deployment(d.project_id, d.id, &d.environment, &d.status);
            StatusCode::CREATED.into_response()
        }
        Err(e) => control_error(e),
    }
}

async fn control_notes(State(st): Shared, Path((p, iid)): Path<(u64, u64)>) -> Json<Vec<SimNote>> {
    Json(st.data().sim_notes(p, iid))
}

async fn control_job(State(st): Shared, Path((p, id)): Path<(u64, u64)>) -> Response {
    let data = st.data();
    match data.jobs.get(&(p, id)) {
        Some(job) => Json(data.sim_job(job)).into_response(),
        None => not_found(),
    }
}

/// `GET /_sim/jobs/{id}`: a job by its id alone (job ids are unique in a GitLab instance).
async fn control_job_by_id(State(st): Shared, Path(id): Path<u64>) -> Response {
    let data = st.data();
    match data.job_by_id(id) {
        Some(job) => Json(data.sim_job(job)).into_response(),
        None => not_found(),
    }
}

async fn control_job_status(State(st): Shared, Path((p, id)): Path<(u64, u64)>, body: Bytes) -> Response {
    let status = match control_body::<NewStatus>(&body) {
        Ok(s) => s.status,
        Err(e) => return control_error(e),
    };
    let mut data = st.data();
    match data.jobs.get_mut(&(p, id)) {
        Some(job) => {
            job.status = status;
            let job = &data.jobs[&(p, id)];
            Json(data.sim_job(job)).into_response()
        }
        None => not_found(),
    }
}

async fn control_pipeline_status(State(st): Shared, Path((p, id)): Path<(u64, u64)>, body: Bytes) -> Response {
    let status = match control_body::<NewStatus>(&body) {
        Ok(s) => s.status,
        Err(e) => return control_error(e),
    };
    match st.data().pipelines.get_mut(&(p, id)) {
        Some(pipeline) => {
            pipeline.status = status;
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(),
    }
}

async fn control_deployment(State(st): Shared, Path((p, id)): Path<(u64, u64)>) -> Response {
    match st.data().deployments.get(&(p, id)) {
        Some(d) => Json(d.sim()).into_response(),
        None => not_found(),
    }
}

async fn control_approvals(State(st): Shared, Path((p, id)): Path<(u64, u64)>) -> Json<Vec<SimApproval>> {
    Json(st.data().deployments.get(&(p, id)).map(|d| d.approvals.clone()).unwrap_or_default())
}
