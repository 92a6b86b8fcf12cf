//! The `intake` function: POST /v1/requests from ServiceNow, GET /v1/requests/{id}, and
//! POST /v1/requests/{id}/cancel. Machine endpoints, behind the API token.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use domain::config::{ApiTokens, Scope};
use domain::model::{HistoryEntry, Request as GateRequest, RequestId};
use domain::usecases::Services;
use domain::usecases::intake::{IntakeBody, IntakeOutcome};
use domain::{Error, Result};
use http_api::body::{is_json, parse_json, read_limited};
use http_api::{Access, ApiError, JsonBody, Mounted, Routes};
use serde::Deserialize;
use serde_json::{Value, json};

fn parse_id(id: &str) -> Result<RequestId> {
    RequestId::parse(id).ok_or_else(|| Error::NotFound(format!("request {id:?}")))
}

/// A request as GET /v1/requests/{id} shows it (DESIGN.md's shape).
pub fn request_view(r: &GateRequest, history: &[HistoryEntry]) -> Value {
    json!({
        "id": r.id,
        "status": r.status,
        "source": r.source,
        "requester": r.requester,
        "opened_by": r.opened_by,
        "cloud": r.cloud,
        "image": r.image,
        "flavor": r.flavor,
        "network": r.network,
        "server_name": r.server_name,
        "count": r.count,
        "justification": r.justification,
        "metadata": r.metadata,
        "approvers": r.approvers,
        "decided_by": r.decided_by,
        "decision_comment": r.decision_comment,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "expires_at": r.expires_at,
        "servers": r.servers,
        "error": r.error,
        "history": history,
    })
}

async fn submit(
    State(services): State<Services>,
    body: JsonBody<IntakeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (status, request) = match services.intake(body.value, &body.raw).await? {
        IntakeOutcome::Created(r) => (StatusCode::ACCEPTED, r),
        IntakeOutcome::Replayed(r) => (StatusCode::OK, r),
    };
    Ok((status, Json(json!({"id": request.id, "status": request.status, "expires_at": request.expires_at}))))
}

async fn show(State(services): State<Services>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let request = services.store.get(&id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
    let history = services.store.history(&id).await?;
    Ok(Json(request_view(&request, &history)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    actor: Option<String>,
}

async fn cancel(
    State(services): State<Services>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    // The body is optional: ServiceNow may send none, or {"reason","actor"}.
    let ct = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = read_limited(request).await?;
    let body: CancelBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else if is_json(ct.as_deref()) {
        parse_json(&bytes)?.0
    } else {
        return Err(ApiError(Error::UnsupportedMediaType { expected: "application/json" }));
    };
    for (field, value) in [("reason", &body.reason), ("actor", &body.actor)] {
        if let Some(v) = value {
            domain::mail::check_header_text(field, v, 500)?;
        }
    }
    let actor = body.actor.unwrap_or_else(|| "servicenow".into());
    let request = services.cancel(&id, &actor, body.reason).await?;
    let history = services.store.history(&id).await?;
    Ok(Json(request_view(&request, &history)))
}

pub fn router(services: Services, tokens: ApiTokens) -> Mounted {
    let servicenow = Access::Scope(Scope::ServiceNow);
    Routes::new(tokens)
        .add(Method::POST, "/v1/requests", servicenow, submit)
        .add(Method::GET, "/v1/requests/{id}", servicenow, show)
        .add(Method::POST, "/v1/requests/{id}/cancel", servicenow, cancel)
        .with_state(services)
}
