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
pub mod jwk;
use claims::{Selected, refused, select_key, verify_claims};
pub use jwk::{ALLOWED_ALGORITHMS, key_fits};

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

/// How the client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    Post,
}

/// What is used of a discovery document, checked.
#[derive(Debug)]
struct Discovery {
    authorization_endpoint: Url,
    token_endpoint: Url,
    jwks_uri: Url,
    client_auth: ClientAuth,
}

struct CachedDiscovery {
    doc: Arc<Discovery>,
    refresh_at: Instant,
}

#[derive(Default)]
struct KeyCache {
    /// The `jwks_uri` the keys came from: a new one (after discovery changed) fetches again.
    uri: Option<Url>,
    keys: Vec<Jwk>,
    refresh_at: Option<Instant>,
    /// The last refetch caused by an unknown `kid`.
    last_forced: Option<Instant>,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    code_challenge_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
    error_description: Option<String>,
}

/// The claims of an ID token that are checked here; `iss`, `aud`, `exp` and `nbf` are checked by
/// jsonwebtoken's validation as well.
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

    /// Fetches and checks the discovery document now (for a start-up check), even if one is cached.
    pub async fn check_discovery(&self) -> Result<()> {
        let doc = Arc::new(self.fetch_discovery().await?);
        *self.discovery.lock().await = Some(CachedDiscovery { doc, refresh_at: Instant::now() + DISCOVERY_TTL });
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Discovery and keys
    // ----------------------------------------------------------------------------------------

    async fn discovery(&self) -> Result<Arc<Discovery>> {
        let mut cached = self.discovery.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.doc.clone());
        }
        match self.fetch_discovery().await {
            Ok(doc) => {
                let doc = Arc::new(doc);
                *cached = Some(CachedDiscovery { doc: doc.clone(), refresh_at: Instant::now() + DISCOVERY_TTL });
                Ok(doc)
            }
            Err(err) => match cached.as_mut() {
                Some(c) => {
                    tracing::warn!(error = %err.chain(), "refreshing the OpenID provider's discovery document failed; the previous one is used");
                    c.refresh_at = Instant::now() + RETRY_AFTER_FAILED_REFRESH;
                    Ok(c.doc.clone())
                }
                None => Err(err),
            },
        }
    }

    async fn fetch_discovery(&self) -> Result<Discovery> {
        let doc: DiscoveryDocument = self.get_json(&self.discovery_url, "the discovery document").await?;
        // OpenID Connect Discovery 1.0 §4.3: the issuer "MUST be identical" to the configured one,
        // else the document must not be used (a provider may not speak for another issuer).
        if doc.issuer != self.issuer {
            return Err(Error::upstream(
                SYSTEM,
                format!(
                    "the discovery document at {} names the issuer \"{}\", not \"{}\" as configured in {ISSUER_SETTING}; \
                     they must be identical (OpenID Connect Discovery 1.0 §4.3)",
                    self.discovery_url,
                    clip(&doc.issuer, 200),
                    self.issuer
                ),
            ));
        }
        let endpoint = |name: &str, value: Option<String>| -> Result<Url> {
            let value = value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                Error::upstream(SYSTEM, format!("the discovery document at {} has no {name}", self.discovery_url))
            })?;
            let url = Url::parse(value.trim()).map_err(|_| {
                Error::upstream(
                    SYSTEM,
                    format!("the discovery document's {name} \"{}\" is not a URL", clip(&value, 200)),
                )
            })?;
            if !scheme_allowed(&url) {
                return Err(Error::upstream(SYSTEM, format!("the discovery document's {name} \"{url}\" {HTTPS_RULE}")));
            }
            if url.fragment().is_some() {
                return Err(Error::upstream(SYSTEM, format!("the discovery document's {name} has a fragment")));
            }
            Ok(url)
        };
        let authorization_endpoint = endpoint("authorization_endpoint", doc.authorization_endpoint)?;
        let token_endpoint = endpoint("token_endpoint", doc.token_endpoint)?;
        let jwks_uri = endpoint("jwks_uri", doc.jwks_uri)?;
        if let Some(methods) = &doc.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(Error::upstream(
                SYSTEM,
                "the provider does not list PKCE S256 in code_challenge_methods_supported; sign-in requires it",
            ));
        }
        // Discovery §3: absent, the default is client_secret_basic.
        let client_auth = match &doc.token_endpoint_auth_methods_supported {
            None => ClientAuth::Basic,
            Some(methods) if methods.iter().any(|m| m == "client_secret_basic") => ClientAuth::Basic,
            Some(methods) if methods.iter().any(|m| m == "client_secret_post") => ClientAuth::Post,
            Some(_) => {
                return Err(Error::upstream(
                    SYSTEM,
                    "the provider supports neither client_secret_basic nor client_secret_post \
                     (token_endpoint_auth_methods_supported); no other client authentication is implemented",
                ));
            }
        };
        tracing::debug!(issuer = %self.issuer, ?client_auth, "OpenID provider discovered");
        Ok(Discovery { authorization_endpoint, token_endpoint, jwks_uri, client_auth })
    }

    async fn fetch_keys(&self, uri: &Url) -> Result<Vec<Jwk>> {
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<Value>,
        }
        let set: KeySet = self.get_json(uri, "the key set (jwks_uri)").await?;
        // Key by key: one the library does not know (another kty, an encryption alg) is skipped
        // rather than failing the whole set.
        let keys: Vec<Jwk> = set.keys.into_iter().filter_map(|k| serde_json::from_value::<Jwk>(k).ok()).collect();
        tracing::debug!(issuer = %self.issuer, keys = keys.len(), "OpenID provider keys fetched");
        Ok(keys)
    }

    /// The key to verify a token signed with `alg` under `kid`.
    async fn key_for(&self, discovery: &Discovery, kid: Option<&str>, alg: Algorithm) -> Result<Jwk> {
        let mut cache = self.keys.lock().await;
        let mut fetched_now = false;
        let stale =
            cache.uri.as_ref() != Some(&discovery.jwks_uri) || cache.refresh_at.is_none_or(|t| Instant::now() >= t);
        if stale {
            match self.fetch_keys(&discovery.jwks_uri).await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.uri = Some(discovery.jwks_uri.clone());
                    cache.refresh_at = Some(Instant::now() + JWKS_TTL);
                    fetched_now = true;
                }
                Err(err) if cache.uri.as_ref() == Some(&discovery.jwks_uri) => {
                    tracing::warn!(error = %err.chain(), "refreshing the OpenID provider's keys failed; the previous ones are used");
                    cache.refresh_at = Some(Instant::now() + RETRY_AFTER_FAILED_REFRESH);
                }
                Err(err) => return Err(err),
            }
        }
        match select_key(&cache.keys, kid, alg) {
            Selected::Key(k) => return Ok(k.clone()),
            Selected::Refused(why) => return Err(refused(why)),
            Selected::Missing => {}
        }
        // An unknown kid: the provider may have rotated its keys. Fetch again, unless the keys were
        // fetched for this very call or an unknown kid already caused a fetch a moment ago.
        let may_refetch = !fetched_now && cache.last_forced.is_none_or(|t| t.elapsed() >= JWKS_REFETCH_INTERVAL);
        if may_refetch {
            cache.last_forced = Some(Instant::now());
            let keys = self.fetch_keys(&discovery.jwks_uri).await?;
            cache.keys = keys;
            cache.uri = Some(discovery.jwks_uri.clone());
            cache.refresh_at = Some(Instant::now() + JWKS_TTL);
            match select_key(&cache.keys, kid, alg) {
                Selected::Key(k) => return Ok(k.clone()),
                Selected::Refused(why) => return Err(refused(why)),
                Selected::Missing => {}
            }
        }
        Err(refused(match kid {
            Some(kid) => format!("the provider's key set has no key \"{}\" for {alg:?}", clip(kid, 100)),
            None => format!("the token names no key (kid) and the provider's key set has no single {alg:?} key"),
        }))
    }

    // ----------------------------------------------------------------------------------------
    // HTTP
    // ----------------------------------------------------------------------------------------

    /// GET a JSON document that holds no secret (discovery, keys).
    async fn get_json<T: DeserializeOwned>(&self, url: &Url, what: &str) -> Result<T> {
        let resp = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Error::upstream_caused(SYSTEM, format!("{what} could not be fetched from {url}"), e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Error::upstream(
                SYSTEM,
                format!("{what} at {url} answered {status}, a redirect, which is not followed"),
            ));
        }
        if !status.is_success() {
            return Err(Error::upstream(SYSTEM, format!("{what} at {url} answered {status}")));
        }
        let body = read_body(resp, what).await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::upstream_caused(SYSTEM, format!("{what} at {url} is not what OpenID Connect specifies"), e)
        })
    }

    /// Redeems the code at the token endpoint; answers the ID token.
    async fn exchange_code(
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

    // ----------------------------------------------------------------------------------------
    // Verification
    // ----------------------------------------------------------------------------------------

    async fn verify_id_token(&self, d: &Discovery, id_token: &str, nonce: &str) -> Result<VerifiedIdentity> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| {
            refused("it is not a well-formed signed JWT with a supported alg (alg none is never accepted)".into())
        })?;
        let alg = header.alg;
        if !ALLOWED_ALGORITHMS.contains(&alg) {
            return Err(refused(format!(
                "its alg {alg:?} is not accepted (only asymmetric signatures: RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
            )));
        }
        let jwk = self.key_for(d, header.kid.as_deref(), alg).await?;
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| refused("the provider's key for it could not be read".into()))?;
        verify_claims(id_token, &key, alg, &self.issuer, &self.client_id, nonce, unix_now())
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

// --------------------------------------------------------------------------------------------
// Pure parts
// --------------------------------------------------------------------------------------------

/// Reads a body up to [`MAX_BODY`] bytes.
async fn read_body(mut resp: reqwest::Response, what: &str) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Error::upstream_caused(SYSTEM, format!("{what} could not be read"), e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::upstream(SYSTEM, format!("{what} is larger than {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// At most `max` characters of text from outside, for a message.
fn clip(text: &str, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for ok in [
            "https://login.example.com",
            "http://127.0.0.1:9000",
            "http://127.5.0.1",
            "http://[::1]:80",
            "http://localhost:1",
        ] {
            assert!(scheme_allowed(&url(ok)), "{ok}");
        }
        for bad in ["http://login.example.com", "http://10.0.0.1", "ftp://localhost", "http://localhost.example.com"] {
            assert!(!scheme_allowed(&url(bad)), "{bad}");
        }
    }

    #[test]
    fn the_issuer_must_be_https_except_on_loopback() {
        let secret = || Secret::new("s3cret");
        let t = Duration::from_secs(5);
        for bad in
            ["http://login.example.com", "not a url", "https://login.example.com/?x=1", "https://login.example.com/#f"]
        {
            let err = OidcClient::new(bad, "gatehouse", secret(), t).unwrap_err();
            assert!(err.to_string().contains("GATEHOUSE_OIDC_ISSUER"), "{err}");
        }
        for ok in ["https://login.example.com", "https://login.example.com/realms/x/", "http://127.0.0.1:8080"] {
            OidcClient::new(ok, "gatehouse", secret(), t).unwrap();
        }
        let c = OidcClient::new("https://login.example.com/tenant/", "gatehouse", secret(), t).unwrap();
        assert_eq!(c.issuer(), "https://login.example.com/tenant/");
        assert_eq!(c.discovery_url.as_str(), "https://login.example.com/tenant/.well-known/openid-configuration");
        assert!(OidcClient::new("https://login.example.com", " ", secret(), t).is_err());
        assert!(OidcClient::new("https://login.example.com", "x", Secret::new(""), t).is_err());
        assert!(OidcClient::new("https://login.example.com", "x", secret(), Duration::ZERO).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = OidcClient::new(
            "https://login.example.com",
            "gatehouse",
            Secret::new("hunter2-secret"),
            Duration::from_secs(5),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("gatehouse") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn client_credentials_are_form_urlencoded() {
        assert_eq!(form_encode("a b+c:d/é"), "a+b%2Bc%3Ad%2F%C3%A9");
        assert_eq!(form_encode("plain-id_1.x"), "plain-id_1.x");
    }

    #[test]
    fn keys_are_chosen_by_kid_and_must_fit_the_alg() {
        let ec: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        let enc: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        let oct: Jwk =
            serde_json::from_value(serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})).unwrap();
        let keys = vec![ec.clone(), enc, oct];
        assert!(matches!(select_key(&keys, Some("ec1"), Algorithm::ES256), Selected::Key(k) if *k == ec));
        assert!(matches!(select_key(&keys, Some("ec1"), Algorithm::ES384), Selected::Refused(_)));
        assert!(matches!(select_key(&keys, Some("ec1"), Algorithm::RS256), Selected::Refused(_)));
        assert!(matches!(select_key(&keys, Some("enc"), Algorithm::ES256), Selected::Refused(_)));
        assert!(matches!(select_key(&keys, Some("hmac"), Algorithm::ES256), Selected::Refused(_)));
        assert!(matches!(select_key(&keys, Some("nope"), Algorithm::ES256), Selected::Missing));
        // Without a kid: the only key that fits.
        assert!(matches!(select_key(&keys, None, Algorithm::ES256), Selected::Key(k) if *k == ec));
        assert!(matches!(select_key(&keys, None, Algorithm::RS256), Selected::Missing));
    }

    #[test]
    fn clip_cuts_and_drops_control_characters() {
        assert_eq!(clip("abc\ndef", 100), "abcdef");
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
