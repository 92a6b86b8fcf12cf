//! The `servicenow-webhook` function: ServiceNow's Business Rule says a change's approval moved.
//! Authenticated by the API token, or by an HMAC signature over a timestamp and the body.

/// The Lambda start-up (secrets, DynamoDB, SES), run by functions/bootstrap and this crate's `main.rs`.
#[cfg(feature = "lambda")]
pub mod lambda;

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

/// The most `v1=` entries of one header that are looked at (one per secret during a rotation is
/// plenty); the rest are ignored, so a header of thousands costs no more than a few MACs.
pub const MAX_SIGNATURES: usize = 4;

/// Checks `X-Gatehouse-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`: `t` within
/// [`TOLERANCE_SECS`] of `now`, and one of the first [`MAX_SIGNATURES`] `v1` entries right.
pub fn signature_valid(secret: &Secret, header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1_seen = 0usize;
    let mut signatures = Vec::with_capacity(MAX_SIGNATURES);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => {
                v1_seen += 1;
                if v1_seen <= MAX_SIGNATURES {
                    signatures.extend(hex::decode(v).ok());
                }
            }
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    // `i64::abs_diff` answers a u64 and cannot overflow, unlike `(now - t).abs()` with an
    // extreme `t` (std docs: "computes the absolute difference between self and other").
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else { return false };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    signatures.iter().any(|sig| mac.clone().verify_slice(sig).is_ok())
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

    #[test]
    fn extreme_timestamps_neither_overflow_nor_pass() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let body = br#"{"sys_id":"x"}"#;
        let now = 1_800_000_000;
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1, 0] {
            assert!(!signature_valid(&secret, &sign(secret.expose(), t, body), body, now), "t={t}");
        }
        assert!(!signature_valid(&secret, &sign(secret.expose(), i64::MIN, body), body, i64::MAX));
        assert!(!signature_valid(&secret, &sign(secret.expose(), i64::MAX, body), body, i64::MIN));
        // At the ends of the range the arithmetic still holds: a fresh signature there is good.
        assert!(signature_valid(&secret, &sign(secret.expose(), i64::MAX, body), body, i64::MAX));
        assert!(signature_valid(&secret, &sign(secret.expose(), i64::MIN, body), body, i64::MIN + 300));
        assert!(!signature_valid(&secret, "t=99999999999999999999999,v1=00", body, now), "t beyond i64");
    }

    #[test]
    fn only_the_first_few_v1_entries_are_looked_at() {
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let body = br#"{"sys_id":"x"}"#;
        let now = 1_800_000_000;
        let good = sign(secret.expose(), now, body);
        let good_v1 = good.split_once(",v1=").unwrap().1.to_string();
        let wrong = "00".repeat(32);
        let header = |good_at: usize| {
            let mut h = format!("t={now}");
            for i in 0..1000 {
                h.push_str(",v1=");
                h.push_str(if i == good_at { &good_v1 } else { &wrong });
            }
            h
        };
        assert!(signature_valid(&secret, &header(0), body, now));
        assert!(signature_valid(&secret, &header(MAX_SIGNATURES - 1), body, now));
        assert!(!signature_valid(&secret, &header(MAX_SIGNATURES), body, now), "beyond the first few");
        assert!(!signature_valid(&secret, &header(999), body, now), "the last of 1000");
    }
}
