//! The `change-gate` function: what a GitLab pipeline's `gatehouse ci` calls. Machine endpoints,
//! behind the API token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use domain::Error;
use domain::config::{ApiTokens, Scope};
use domain::usecases::gate::{ChangeAnswer, ChangeGate, ChangeRequestBody, DeploymentBody, key};
use http_api::{Access, ApiError, JsonBody, Mounted, Routes};
use serde::Deserialize;

fn project(id: &str) -> Result<u64, Error> {
    id.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid("project_id", "must be GitLab's numeric project id"))
}

async fn request(
    State(gate): State<Arc<ChangeGate>>,
    body: JsonBody<ChangeRequestBody>,
) -> Result<(StatusCode, Json<ChangeAnswer>), ApiError> {
    let (created, answer) = gate.request(body.value).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(answer)))
}

#[derive(Deserialize)]
struct EnvQuery {
    environment: Option<String>,
}

async fn status(
    State(gate): State<Arc<ChangeGate>>,
    Path((project_id, sha)): Path<(String, String)>,
    Query(q): Query<EnvQuery>,
) -> Result<Json<ChangeAnswer>, ApiError> {
    let environment = q.environment.ok_or_else(|| Error::invalid("environment", "is required as ?environment="))?;
    Ok(Json(gate.status(&key(project(&project_id)?, &sha, &environment)?).await?))
}

async fn report(
    State(gate): State<Arc<ChangeGate>>,
    Path((project_id, sha)): Path<(String, String)>,
    body: JsonBody<DeploymentBody>,
) -> Result<Json<ChangeAnswer>, ApiError> {
    let key = key(project(&project_id)?, &sha, &body.value.environment)?;
    Ok(Json(gate.report(&key, body.value).await?))
}

pub fn router(gate: Arc<ChangeGate>, tokens: ApiTokens) -> Mounted {
    let ci = Access::Scope(Scope::Ci);
    Routes::new(tokens)
        .add(Method::POST, "/v1/changes", ci, request)
        .add(Method::GET, "/v1/changes/{project_id}/{sha}", ci, status)
        .add(Method::POST, "/v1/changes/{project_id}/{sha}/deployments", ci, report)
        .with_state(gate)
}
