//! Credentials for each call: HTTP Basic, or an OAuth client-credentials token from
//! `POST /oauth_token.do`, cached and renewed [`TOKEN_RENEW_MARGIN`] before it expires (or at
//! once after ServiceNow refuses it). Token and secrets are headers marked sensitive, never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::Client;
use super::failure::{Fail, FailKind};
use crate::config::SnAuth;

/// Renew an OAuth token this long before ServiceNow says it expires.
pub const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);

pub(super) struct Token {
    /// `Bearer …`, marked sensitive.
    header: HeaderValue,
    renew_at: Instant,
}

pub(super) enum Authz {
    Basic(HeaderValue),
    Bearer(Arc<Token>),
}

impl Authz {
    pub(super) fn header(&self) -> &HeaderValue {
        match self {
            Authz::Basic(h) => h,
            Authz::Bearer(t) => &t.header,
        }
    }
}

/// `POST /oauth_token.do`'s answer. No `Debug`: it holds the token.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
}

impl Client {
    /// The `Authorization` header: Basic, or the cached OAuth token (fetched when missing, near
    /// expiry, or just `rejected` by ServiceNow and not yet replaced by another call).
    pub(super) async fn authorization(&self, rejected: Option<&Arc<Token>>) -> Result<Authz, Fail> {
        if let Some(basic) = &self.inner.basic {
            return Ok(Authz::Basic(basic.clone()));
        }
        let mut slot = self.inner.token.lock().await;
        if let Some(current) = slot.as_ref() {
            let was_rejected = rejected.is_some_and(|r| Arc::ptr_eq(r, current));
            if !was_rejected && Instant::now() < current.renew_at {
                return Ok(Authz::Bearer(current.clone()));
            }
        }
        *slot = None;
        let token = Arc::new(self.fetch_token().await?);
        *slot = Some(token.clone());
        Ok(Authz::Bearer(token))
    }

    async fn fetch_token(&self) -> Result<Token, Fail> {
        let SnAuth::OAuthClientCredentials { client_id, client_secret } = &self.inner.config.auth else {
            return Err(Fail { token: true, kind: FailKind::Unreadable("no OAuth credentials configured".into()) });
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret)
            .finish();
        let requested = Instant::now();
        let resp = self
            .inner
            .http
            .post(self.inner.token_url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| Fail::transport(e, true))?;
        tracing::debug!(status = resp.status().as_u16(), "ServiceNow OAuth token request");
        if !resp.status().is_success() {
            return Err(Fail::status(resp, true).await);
        }
        let bytes = resp.bytes().await.map_err(|e| Fail::transport(e, true))?;
        let unreadable = |why: String| Fail { token: true, kind: FailKind::Unreadable(why) };
        let answer: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| unreadable(format!("token answer is not the expected JSON: {:?}", e.classify())))?;
        if answer.access_token.is_empty() {
            return Err(unreadable("token answer has an empty access_token".into()));
        }
        let lifetime = match &answer.expires_in {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0).max(0.0) as u64,
            Some(Value::String(s)) => s.trim().parse::<u64>().unwrap_or(0),
            _ => 0,
        };
        let renew_at = requested + Duration::from_secs(lifetime).saturating_sub(TOKEN_RENEW_MARGIN);
        let mut header = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| unreadable("token answer has an access_token that cannot be sent in a header".into()))?;
        header.set_sensitive(true);
        Ok(Token { header, renew_at })
    }
}
