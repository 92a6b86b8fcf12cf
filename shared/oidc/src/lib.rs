//! The OpenID Connect relying party approvers sign in with: an adapter of
//! [`domain::signin::IdentityProvider`] (DESIGN.md, "Trust and identity", Approver sign-in).
//!
//! - **Discovery.** `GET {issuer}/.well-known/openid-configuration`, fetched on first use and kept
//!   for [`DISCOVERY_TTL`]. The document's `issuer` must be identical to the configured issuer
//!   (OpenID Connect Discovery 1.0 §4.3: "The issuer value returned MUST be identical to the Issuer
//!   URL that was used as the prefix to /.well-known/openid-configuration"), and every endpoint must
//!   be https (plain http only to a loopback host).
//! - **Authorization.** [`OidcClient::authorize_url`] is the discovered `authorization_endpoint`
//!   with `response_type=code`, `scope=openid email`, `state`, `nonce` and the PKCE challenge
//!   (`S256`). The `state`, `nonce`, verifier and challenge are made by the domain.
//! - **Redemption.** The code goes to the `token_endpoint` with the PKCE verifier; the client
//!   authenticates with HTTP Basic (`client_secret_basic`, id and secret form-urlencoded first, RFC
//!   6749 §2.3.1), or in the form (`client_secret_post`) when discovery lists only that.
//! - **ID token verification** (OpenID Connect Core 1.0 §3.1.3.7). The header's `alg` must be an
//!   asymmetric one ([`ALLOWED_ALGORITHMS`]; never `none` or HS*); the key is taken only from the
//!   provider's JWKS (`jwks_uri`, kept for [`JWKS_TTL`]), by `kid`, and must fit the `alg` (a `jku`,
//!   `jwk` or `x5u` in the header is ignored). An unknown `kid` refetches the JWKS once, at most
//!   once per [`JWKS_REFETCH_INTERVAL`]. Then: the signature, `iss` equal to the issuer, `aud`
//!   naming the client (and `azp` equal to the client when present, required when `aud` names
//!   several), `exp` (and `nbf`) with [`LEEWAY`], `iat` neither in the future nor older than
//!   [`MAX_ID_TOKEN_AGE`], `nonce` equal to the sign-in's, a `sub`, an `email`, and
//!   `email_verified` true (absent counts as not verified). A token that fails is
//!   `Error::Forbidden` with a sentence saying why; the provider failing or being unreachable is
//!   `Error::Upstream { system: "identity provider" }`.
//! - **Outbound.** No redirect is followed (`redirect::Policy::none()`; a 3xx is an upstream
//!   error), each call has a timeout, and a body is read up to [`MAX_BODY`] bytes.
//! - **Secrets.** No error or log line holds the code, the verifier, a token or the client
//!   secret; `Debug` of the client shows the secret as `***`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use domain::config::{OidcSettings, Secret};
use domain::outbound::{HTTPS_RULE, scheme_allowed};
use domain::signin::{IdentityProvider, VerifiedIdentity};
use domain::{Error, Result};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use url::Url;

mod claims;
mod discovery;
pub mod jwk;
mod jwks;
mod outbound;
#[cfg(test)]
mod tests;
mod token;
use discovery::CachedDiscovery;
pub use jwk::{ALLOWED_ALGORITHMS, key_fits};
use jwks::KeyCache;

/// The `system` of every upstream error.
pub const SYSTEM: &str = "identity provider";
/// The setting named by start-up errors about the issuer.
const ISSUER_SETTING: &str = "GATEHOUSE_OIDC_ISSUER";
/// The scopes asked for.
pub const SCOPE: &str = "openid email";
/// How long a discovery document is used before it is fetched again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long the provider's keys are used before they are fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the keys at most this often.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed refresh, the previous document or keys are used this long before trying again.
const RETRY_AFTER_FAILED_REFRESH: Duration = Duration::from_secs(60);
/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// An ID token issued longer ago than this is refused (it was just issued by the token endpoint).
pub const MAX_ID_TOKEN_AGE: Duration = Duration::from_secs(600);
/// The largest discovery document, key set or token answer read.
pub const MAX_BODY: usize = 512 * 1024;

/// The OpenID Connect client of one provider. Cheap to share behind an `Arc`; discovery and keys
/// are cached inside.
pub struct OidcClient {
    http: reqwest::Client,
    issuer: String,
    discovery_url: Url,
    client_id: String,
    client_secret: Secret,
    discovery: Mutex<Option<CachedDiscovery>>,
    keys: Mutex<KeyCache>,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// A client of the provider at `issuer` (no request is made yet: discovery happens on first
    /// use). `issuer` is used exactly as given (surrounding blanks aside) and must be https, plain
    /// http only to a loopback host (127.0.0.0/8, `::1`, `localhost`), without query or fragment;
    /// otherwise a start-up error naming `GATEHOUSE_OIDC_ISSUER`. `timeout` bounds each HTTP call.
    pub fn new(issuer: &str, client_id: &str, client_secret: Secret, timeout: Duration) -> Result<Self> {
        let issuer = issuer.trim();
        let setting =
            |problem: String| Error::internal_msg(format!("configuration setting {ISSUER_SETTING}: {problem}"));
        let parsed = Url::parse(issuer).map_err(|_| setting(format!("\"{issuer}\" is not a URL")))?;
        if !scheme_allowed(&parsed) {
            return Err(setting(format!("the issuer \"{issuer}\" {HTTPS_RULE}")));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(setting(format!("the issuer \"{issuer}\" must have no query or fragment")));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(setting("the issuer must not carry credentials".to_string()));
        }
        // Discovery §4: "If the Issuer value contains a path component, any terminating / MUST be
        // removed before appending /.well-known/openid-configuration."
        let discovery_url = Url::parse(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')))
            .map_err(|_| setting(format!("\"{issuer}\" is not a URL")))?;
        let client_id = client_id.trim();
        if client_id.is_empty() {
            return Err(Error::internal_msg("configuration setting GATEHOUSE_OIDC_CLIENT_ID: is empty"));
        }
        if client_secret.expose().is_empty() {
            return Err(Error::internal_msg("configuration setting GATEHOUSE_OIDC_CLIENT_SECRET: is empty"));
        }
        if timeout.is_zero() {
            return Err(Error::internal_msg("OpenID Connect client: the timeout must be more than zero"));
        }
        // No redirect is followed: the token request carries the client secret and the code.
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-oidc/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal("OpenID Connect client: the HTTP client could not be built", e))?;
        Ok(OidcClient {
            http,
            issuer: issuer.to_string(),
            discovery_url,
            client_id: client_id.to_string(),
            client_secret,
            discovery: Mutex::new(None),
            keys: Mutex::new(KeyCache::default()),
        })
    }

    /// [`OidcClient::new`] from the loaded configuration.
    pub fn from_settings(settings: &OidcSettings, timeout: Duration) -> Result<Self> {
        OidcClient::new(&settings.issuer, &settings.client_id, settings.client_secret.clone(), timeout)
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

#[async_trait]
impl IdentityProvider for OidcClient {
    fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        pkce_challenge: &str,
    ) -> Result<String> {
        if redirect_uri.is_empty() || state.is_empty() || nonce.is_empty() || pkce_challenge.is_empty() {
            return Err(Error::internal_msg("a sign-in needs a redirect URI, a state, a nonce and a PKCE challenge"));
        }
        let d = self.discovery().await?;
        let mut url = d.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", pkce_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    async fn redeem(
        &self,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedIdentity> {
        if code.is_empty() {
            return Err(Error::Forbidden("the sign-in came back without an authorization code".into()));
        }
        if nonce.is_empty() || pkce_verifier.is_empty() {
            return Err(Error::internal_msg("a sign-in is redeemed with its nonce and PKCE verifier"));
        }
        let d = self.discovery().await?;
        let id_token = self.exchange_code(&d, redirect_uri, code, pkce_verifier).await?;
        let identity = self.verify_id_token(&d, &id_token, nonce).await.inspect_err(|err| {
            tracing::warn!(issuer = %self.issuer, error = %err, "an ID token was refused");
        })?;
        tracing::info!(issuer = %identity.issuer, sub = %identity.subject, "ID token verified");
        Ok(identity)
    }
}

/// At most `max` characters of text from outside, for a message.
fn clip(text: &str, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}
