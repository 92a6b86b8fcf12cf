//! The `intake` function: POST /v1/requests from ServiceNow, GET /v1/requests/{id},
//! POST /v1/requests/{id}/cancel, POST /v1/requests/{id}/retire (a decommission item approved in
//! ServiceNow) and POST /v1/requests/{id}/messages/{mid}/retry (a dead message
//! revived). Machine endpoints, behind the API token.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use domain::config::{ApiTokens, Scope};
use domain::evidence::{ChainBreak, EvidenceKey, Verified, verify};
use domain::metrics::{self, Counter};
use domain::model::{HistoryEntry, Request as GateRequest, RequestId, Status};
use domain::usecases::Services;
use domain::usecases::decommission::RetireBody;
use domain::usecases::intake::{IntakeBody, IntakeOutcome};
use domain::usecases::outbox::MessageView;
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
        "approval": approval_view(r),
        "decided_by": r.decided_by,
        "decision_comment": r.decision_comment,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "expires_at": r.expires_at,
        "retire_at": r.retirement.as_ref().map(|l| l.retire_at),
        "lease_extensions": r.retirement.as_ref().map(|l| l.extensions),
        "servers": r.servers,
        "error": r.error,
        "history": history,
    })
}

/// The rule and stages (DESIGN.md: `approval: {rule, stages: [{group, quorum, approved_by,
/// waiting_on, state}]}`), with each approval's delegate and time.
fn approval_view(r: &GateRequest) -> Value {
    let Some(approval) = &r.approval else { return Value::Null };
    let stages: Vec<Value> = approval
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let waiting_on =
                if r.status == Status::PendingApproval { approval.waiting_on(i, |a| r.is_requested_by(a)) } else { vec![] };
            json!({
                "group": s.group,
                "quorum": s.quorum,
                "state": s.state,
                "approved_by": s.approved_by.iter().map(|a| &a.approver).collect::<Vec<_>>(),
                "approvals": s.approved_by.iter().map(|a| json!({"approver": a.approver, "delegate": a.delegate, "at": a.at})).collect::<Vec<_>>(),
                "waiting_on": waiting_on,
                "members": s.members,
                "opened_at": s.opened_at,
                "escalated_to": s.escalated_to,
                "escalated_at": s.escalated_at,
            })
        })
        .collect();
    json!({"rule": approval.rule, "auto_approved": approval.auto_approved, "stages": stages})
}

async fn submit(
    State(services): State<Services>,
    body: JsonBody<IntakeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let outcome = services.intake(body.value, &body.raw).await;
    // `gatehouse_requests_total{outcome}`: what ServiceNow's Business Rule was answered.
    let counted = match &outcome {
        Ok(IntakeOutcome::Created(_)) => "accepted",
        Ok(IntakeOutcome::Replayed(_)) => "replayed",
        Err(Error::Invalid(_) | Error::Malformed(_) | Error::Conflict(_) | Error::Forbidden(_)) => "refused",
        Err(_) => "failed",
    };
    metrics::count(Counter::Requests, counted);
    let (status, request) = match outcome? {
        IntakeOutcome::Created(r) => (StatusCode::ACCEPTED, r),
        IntakeOutcome::Replayed(r) => (StatusCode::OK, r),
    };
    Ok((status, Json(json!({"id": request.id, "status": request.status, "expires_at": request.expires_at}))))
}

/// The request's history chain (DESIGN.md "Audit evidence"): its head, and whether the history
/// as stored verifies against it (`ok`); when not, the first broken entry (0-based) and why.
/// `unchained` counts the entries written before chaining, which the chain does not cover.
pub fn chain_view(key: &EvidenceKey, r: &GateRequest, history: &[HistoryEntry]) -> Value {
    chain_view_of(r, &verify(key, r.id.as_str(), history, &r.chain))
}

/// `chain_view` from what `verify` already found for `r`'s history.
pub fn chain_view_of(r: &GateRequest, verified: &std::result::Result<Verified, ChainBreak>) -> Value {
    let hash = Some(&r.chain.hash).filter(|h| !h.is_empty());
    let (ok, unchained, broken) = match verified {
        Ok(found) => (true, found.unchained, Value::Null),
        Err(b) => (false, 0, json!({"entry": b.entry, "reason": b.reason})),
    };
    json!({"count": r.chain.count, "hash": hash, "ok": ok, "unchained": unchained, "broken": broken})
}

/// `request_view` of request `id` as stored now, with its history chain and its owed and dead
/// messages, read together so that they agree (`Services::read_consistent`).
async fn full_view(services: &Services, id: &RequestId) -> Result<Value> {
    let read = services.read_consistent(id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
    let request = &read.request;
    let mut view = request_view(request, &read.history);
    view["chain"] = chain_view_of(request, &read.chain);
    view["messages"] = json!(read.messages.iter().map(|m| MessageView::of(m, request)).collect::<Vec<_>>());
    Ok(view)
}

async fn show(State(services): State<Services>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(full_view(&services, &id).await?))
}

/// Revives a dead message: 202 with the message, pending again; 409 when it is not dead.
async fn retry_message(
    State(services): State<Services>,
    Path((id, message_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = parse_id(&id)?;
    let message = services.retry_message(&id, &message_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(message))))
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
    Ok(Json(full_view(&services, &request.id).await?))
}

/// Retires an active request at once for an approved decommission item of its requester: 200 with
/// the retired request (again on a repeat); 422 naming the field the item fails on.
async fn retire(
    State(services): State<Services>,
    Path(id): Path<String>,
    body: JsonBody<RetireBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let request = services.retire_on_request(&id, body.value).await?;
    Ok(Json(full_view(&services, &request.id).await?))
}

pub fn router(services: Services, tokens: ApiTokens) -> Mounted {
    let servicenow = Access::Scope(Scope::ServiceNow);
    Routes::new(tokens)
        .add(Method::POST, "/v1/requests", servicenow, submit)
        .add(Method::GET, "/v1/requests/{id}", servicenow, show)
        .add(Method::POST, "/v1/requests/{id}/cancel", servicenow, cancel)
        .add(Method::POST, "/v1/requests/{id}/retire", servicenow, retire)
        .add(Method::POST, "/v1/requests/{id}/messages/{mid}/retry", servicenow, retry_message)
        .with_state(services)
}
