//! The `change-gate` function: what a GitLab pipeline's `gatehouse ci` calls. Machine endpoints,
//! behind the API token.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

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
use domain::config::{ApiTokens, Scope, Secret};
use domain::usecases::gate::{ChangeAnswer, ChangeGate, ChangeRequestBody, DeploymentBody, key};
use domain::usecases::gate_events::GitLabEvent;
use http_api::auth::bearer;
use http_api::{Access, ApiError, JsonBody, Mounted, Routes};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

fn project(id: &str) -> Result<u64, Error> {
    id.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid("project_id", "must be GitLab's numeric project id"))
}

/// The gate, the static tokens it may accept, and GitLab's webhook secret.
#[derive(Clone)]
struct Gate {
    gate: Arc<ChangeGate>,
    tokens: ApiTokens,
    gitlab_secret: Option<Secret>,
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

#[derive(Deserialize)]
struct GitLabProject {
    id: u64,
}

#[derive(Deserialize)]
struct GitLabObject {
    id: u64,
}

/// What Gatehouse reads of a GitLab webhook: which object to look at, nothing else.
#[derive(Deserialize)]
struct GitLabHook {
    object_kind: String,
    #[serde(default)]
    project: Option<GitLabProject>,
    #[serde(default)]
    deployment_id: Option<u64>,
    #[serde(default)]
    object_attributes: Option<GitLabObject>,
}

/// `POST /v1/webhooks/gitlab`: a deployment or pipeline event, authenticated by `X-Gitlab-Token`
/// (compared in constant time). Other events are accepted and ignored.
async fn gitlab_hook(
    State(g): State<Gate>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let presented = headers.get("x-gitlab-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let valid = g.gitlab_secret.as_ref().is_some_and(|secret| {
        use subtle::ConstantTimeEq;
        let (a, b) = (Sha256::digest(secret.expose().as_bytes()), Sha256::digest(presented.as_bytes()));
        bool::from(a.ct_eq(&b))
    });
    if !valid {
        return Err(ApiError(Error::Unauthorized));
    }
    let (hook, _): (GitLabHook, _) = http_api::body::parse_json(&body)?;
    let project = hook.project.map(|p| p.id);
    let event = match (hook.object_kind.as_str(), project) {
        ("deployment", Some(project_id)) => hook
            .deployment_id
            .map(|deployment_id| GitLabEvent::Deployment { project_id, deployment_id })
            .ok_or_else(|| Error::invalid("deployment_id", "is required in a deployment event"))?,
        ("pipeline", Some(project_id)) => hook
            .object_attributes
            .map(|o| GitLabEvent::Pipeline { project_id, pipeline_id: o.id })
            .ok_or_else(|| Error::invalid("object_attributes.id", "is required in a pipeline event"))?,
        ("deployment" | "pipeline", None) => return Err(ApiError(Error::invalid("project.id", "is required"))),
        _ => return Ok((StatusCode::ACCEPTED, Json(json!({"status": "ignored"})))),
    };
    g.gate.gitlab_event(event).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))))
}

pub fn router(gate: Arc<ChangeGate>, tokens: ApiTokens, gitlab_secret: Option<Secret>) -> Mounted {
    let ci = Access::IdTokenOr(Scope::Ci);
    Routes::new(tokens.clone())
        .add(Method::POST, "/v1/changes", ci, request)
        .add(Method::GET, "/v1/changes/{project_id}/{sha}", ci, status)
        .add(Method::POST, "/v1/changes/{project_id}/{sha}/deployments", ci, report)
        .add(Method::POST, "/v1/webhooks/gitlab", Access::GitLabWebhookToken, gitlab_hook)
        .with_state(Gate { gate, tokens, gitlab_secret })
}
