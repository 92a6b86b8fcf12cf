//! The `servicenow-webhook` function: ServiceNow's Business Rule says a change's approval moved.
//! Authenticated by the API token, or by an HMAC signature over a timestamp and the body.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use domain::Error;
use domain::config::{ApiTokens, Scope, Secret};
use domain::usecases::gate::{ChangeGate, WebhookBody};
use hmac::{Hmac, Mac};
use http_api::body::{is_json, parse_json, read_limited};
use http_api::{Access, ApiError, Mounted, Routes, check_scope};
use serde_json::json;
use sha2::Sha256;

/// How far a signature's timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;

/// Checks `X-Gatehouse-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`.
pub fn signature_valid(secret: &Secret, header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > TOLERANCE_SECS {
        return false;
    }
    signatures.iter().any(|sig| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else { return false };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(sig).is_ok()
    })
}

#[derive(Clone)]
struct Webhook {
    gate: Arc<ChangeGate>,
    tokens: ApiTokens,
    secret: Option<Secret>,
}

async fn callback(
    State(hook): State<Webhook>,
    request: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let headers = request.headers().clone();
    let bearer = check_scope(&hook.tokens, &headers, Scope::Webhook);
    let signature = headers.get("x-gatehouse-signature").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = read_limited(request).await?;
    let signed = match (&hook.secret, &signature) {
        (Some(secret), Some(sig)) => signature_valid(secret, sig, &body, jiff::Timestamp::now().as_second()),
        _ => false,
    };
    if !signed {
        // Without a valid signature, a bearer token of scope webhook (401 or 403 otherwise).
        bearer?;
    }
    // Only a caller who proved who they are learns what the endpoint expects.
    if !is_json(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())) {
        return Err(ApiError(Error::UnsupportedMediaType { expected: "application/json" }));
    }
    let (callback, _): (WebhookBody, _) = parse_json(&body)?;
    if callback.sys_id.len() != 32 || !callback.sys_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError(Error::invalid("sys_id", "must be a ServiceNow sys_id: 32 hexadecimal characters")));
    }
    hook.gate.callback(callback).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))))
}

pub fn router(gate: Arc<ChangeGate>, tokens: ApiTokens, secret: Option<Secret>) -> Mounted {
    Routes::new(tokens.clone())
        .add(Method::POST, "/v1/webhooks/servicenow", Access::SignedOr(Scope::Webhook), callback)
        .with_state(Webhook { gate, tokens, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_with_their_timestamp() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let body = br#"{"sys_id":"x"}"#;
        let now = 1_800_000_000;
        assert!(signature_valid(&secret, &sign(secret.expose(), now, body), body, now));
        assert!(signature_valid(&secret, &sign(secret.expose(), now - 299, body), body, now));
        assert!(!signature_valid(&secret, &sign(secret.expose(), now - 301, body), body, now), "too old");
        assert!(!signature_valid(&secret, &sign(secret.expose(), now, body), br#"{"sys_id":"y"}"#, now), "other body");
        assert!(!signature_valid(&secret, &sign("another-secret-another-secret-xx", now, body), body, now));
        assert!(!signature_valid(&secret, "v1=abcd", body, now), "no timestamp");
        assert!(!signature_valid(&secret, "garbage", body, now));
    }
}
