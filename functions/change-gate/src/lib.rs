//! The `change-gate` function: what a GitLab pipeline's `gatehouse ci` calls. Machine endpoints,
//! behind the API token.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use domain::Error;
use domain::changes::CiCaller;
use domain::config::Grant;
use domain::config::{ApiTokens, Scope};
use domain::usecases::gate::{ChangeAnswer, ChangeGate, ChangeRequestBody, DeploymentBody, key};
use http_api::auth::bearer;
use http_api::{Access, ApiError, JsonBody, Mounted, Routes};
use serde::Deserialize;

fn project(id: &str) -> Result<u64, Error> {
    id.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid("project_id", "must be GitLab's numeric project id"))
}

/// The gate and the static tokens it may accept.
#[derive(Clone)]
struct Gate {
    gate: Arc<ChangeGate>,
    tokens: ApiTokens,
}

/// Who calls: a job by its verified GitLab ID token, or — only where allowed — a static `ci` token.
async fn caller(g: &Gate, headers: &HeaderMap) -> Result<CiCaller, Error> {
    let Some(token) = bearer(headers) else { return Err(Error::Unauthorized) };
    match g.tokens.grant(token, Scope::Ci) {
        Grant::Allowed if g.gate.allow_static_tokens => return Ok(CiCaller::StaticToken),
        Grant::Allowed => {
            return Err(Error::Forbidden(
                "static ci tokens are not accepted here: call with the job's ID token (GATEHOUSE_ID_TOKEN)".into(),
            ));
        }
        Grant::WrongScope => return Err(Error::MissingScope(Scope::Ci.as_str())),
        Grant::Unknown => {}
    }
    // A JWT has three dot-separated parts; anything else is an unknown static token.
    if token.split('.').count() != 3 {
        return Err(Error::Unauthorized);
    }
    Ok(CiCaller::Job(g.gate.identity.verify(token).await?))
}

/// The verified caller, taken before the body is read, so a caller without a credential learns
/// nothing about what the endpoint expects.
struct Caller(CiCaller);

impl FromRequestParts<Gate> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, g: &Gate) -> Result<Self, ApiError> {
        Ok(Caller(caller(g, &parts.headers).await?))
    }
}

async fn request(
    State(g): State<Gate>,
    Caller(caller): Caller,
    body: JsonBody<ChangeRequestBody>,
) -> Result<(StatusCode, Json<ChangeAnswer>), ApiError> {
    let (created, answer) = g.gate.request(&caller, body.value).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(answer)))
}

#[derive(Deserialize)]
struct EnvQuery {
    environment: Option<String>,
}

async fn status(
    State(g): State<Gate>,
    Caller(caller): Caller,
    Path((project_id, sha)): Path<(String, String)>,
    Query(q): Query<EnvQuery>,
) -> Result<Json<ChangeAnswer>, ApiError> {
    let environment = q.environment.ok_or_else(|| Error::invalid("environment", "is required as ?environment="))?;
    Ok(Json(g.gate.status(&caller, &key(project(&project_id)?, &sha, &environment)?).await?))
}

async fn report(
    State(g): State<Gate>,
    Caller(caller): Caller,
    Path((project_id, sha)): Path<(String, String)>,
    body: JsonBody<DeploymentBody>,
) -> Result<Json<ChangeAnswer>, ApiError> {
    let key = key(project(&project_id)?, &sha, &body.value.environment)?;
    Ok(Json(g.gate.report(&caller, &key, body.value).await?))
}

pub fn router(gate: Arc<ChangeGate>, tokens: ApiTokens) -> Mounted {
    let ci = Access::IdTokenOr(Scope::Ci);
    Routes::new(tokens.clone())
        .add(Method::POST, "/v1/changes", ci, request)
        .add(Method::GET, "/v1/changes/{project_id}/{sha}", ci, status)
        .add(Method::POST, "/v1/changes/{project_id}/{sha}/deployments", ci, report)
        .with_state(Gate { gate, tokens })
}
