//! Redemption of the authorization code at the token endpoint, with the PKCE verifier: the client
//! authenticated with HTTP Basic or in the form (RFC 6749 §2.3.1), and the endpoint's error answers
//! (RFC 6749 §5.2) turned into our errors without anything secret in them.

use super::*;
use crate::discovery::{ClientAuth, Discovery};
use crate::outbound::read_body;

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
    error_description: Option<String>,
}

impl OidcClient {
    /// Redeems the code at the token endpoint; answers the ID token.
    pub(crate) async fn exchange_code(
        &self,
        d: &Discovery,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<String> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce_verifier),
        ];
        let mut req = self.http.post(d.token_endpoint.clone()).header(ACCEPT, "application/json");
        match d.client_auth {
            // RFC 6749 §2.3.1: "The client identifier is encoded using the
            // application/x-www-form-urlencoded encoding algorithm [...], and the encoded value is
            // used as the username; the client password is encoded using the same algorithm and
            // used as the password." reqwest then base64-encodes `user:password` and marks the
            // header sensitive.
            ClientAuth::Basic => {
                req = req.basic_auth(form_encode(&self.client_id), Some(form_encode(self.client_secret.expose())));
            }
            ClientAuth::Post => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", self.client_secret.expose()));
            }
        }
        let endpoint = &d.token_endpoint;
        let resp = req.form(&form).send().await.map_err(|e| {
            Error::upstream_caused(
                SYSTEM,
                format!("the token endpoint {endpoint} could not be reached"),
                e.without_url(),
            )
        })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Error::upstream(
                SYSTEM,
                format!("the token endpoint {endpoint} answered {status}, a redirect, which is not followed"),
            ));
        }
        let body = read_body(resp, "the token endpoint's answer").await?;
        if !status.is_success() {
            return Err(self.token_error(status, &body, &[code, pkce_verifier]));
        }
        let answer: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            Error::upstream(
                SYSTEM,
                format!("the token endpoint {endpoint} answered {status} with a body that is not a token response"),
            )
        })?;
        answer.id_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::upstream(
                SYSTEM,
                format!("the token endpoint {endpoint} answered without an id_token (was the scope openid granted?)"),
            )
        })
    }

    /// An error answer of the token endpoint (RFC 6749 §5.2) as our error. `invalid_grant` (a code
    /// expired, already used, or issued for another redirect URI or verifier) is the signer's to
    /// retry: 403. The rest is the provider's or our configuration's fault: upstream.
    fn token_error(&self, status: StatusCode, body: &[u8], secrets: &[&str]) -> Error {
        let parsed: Option<TokenError> = serde_json::from_slice(body).ok();
        let code = parsed
            .as_ref()
            .and_then(|e| e.error.as_deref())
            .filter(|c| {
                c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            })
            .map(str::to_string);
        // The description goes only into the source (the log), cut short and with anything we sent
        // that must stay secret blotted out, in case the provider echoes it.
        let description = parsed.and_then(|e| e.error_description).map(|d| {
            let mut d = clip(&d, 300);
            for s in secrets.iter().copied().chain([self.client_secret.expose()]) {
                if !s.is_empty() {
                    d = d.replace(s, "***");
                }
            }
            d
        });
        let source = || -> domain::error::BoxError {
            format!("{status}: {}", description.clone().unwrap_or_else(|| "no error_description".into())).into()
        };
        match code.as_deref() {
            Some("invalid_grant") => {
                tracing::info!(%status, description = description.as_deref().unwrap_or(""), "the identity provider refused the authorization code");
                Error::Forbidden(
                    "the identity provider refused the sign-in's authorization code (invalid_grant: expired, \
                     already used, or not issued for this sign-in); please sign in again"
                        .into(),
                )
            }
            Some("invalid_client") => Error::upstream_caused(
                SYSTEM,
                "the token endpoint refused the client's credentials (invalid_client): check \
                 GATEHOUSE_OIDC_CLIENT_ID and GATEHOUSE_OIDC_CLIENT_SECRET",
                source(),
            ),
            Some(code) => {
                Error::upstream_caused(SYSTEM, format!("the token endpoint answered {status} ({code})"), source())
            }
            None if status == StatusCode::UNAUTHORIZED => Error::upstream_caused(
                SYSTEM,
                "the token endpoint answered 401: check GATEHOUSE_OIDC_CLIENT_ID and GATEHOUSE_OIDC_CLIENT_SECRET",
                source(),
            ),
            None => Error::upstream_caused(SYSTEM, format!("the token endpoint answered {status}"), source()),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
