//! A simulator of an OpenID Connect provider, for the demo's approver sign-in and for tests: the
//! authorization code flow with PKCE (S256 only), a plain HTML sign-in form (email + password), and
//! ID tokens signed ES256 with a P-256 key made at start (aws-lc-rs), published in a JWKS.
//!
//! One port serves:
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/openid-configuration` | discovery (issuer, endpoints, what is supported) |
//! | `GET /jwks` | the public signing key (`kty` EC, `crv` P-256, `kid` = its RFC 7638 thumbprint) |
//! | `GET /authorize` | checks the request, then shows the sign-in form (the seeded users are listed) |
//! | `POST /authorize` | form `request`, `email`, `password` (and `action=cancel`): 302 to `redirect_uri?code=…&state=…&iss=…`, or the form again with an error |
//! | `POST /token` | `grant_type=authorization_code`, `code`, `redirect_uri`, `code_verifier`; client auth HTTP Basic or `client_id` + `client_secret` in the form |
//! | `GET /userinfo` | `Authorization: Bearer <access token>`: `sub`, `email`, `email_verified`, `name` |
//!
//! `/authorize` refuses an unknown client, or a `redirect_uri` that is not exactly one the client
//! registered, with a 400 error page and never redirects there. Other faults of a request
//! (`response_type` not `code`, `scope` without `openid`, no `code_challenge` or a method other than
//! `S256`, `prompt=none`) redirect back with an RFC 6749 `error`. Codes are single-use (a code is
//! spent by any redemption attempt of its client, even a failed one) and live 60 s
//! ([`OidcSimConfig::code_ttl`]). `/token` errors are RFC 6749 JSON: `invalid_client` 401 (with
//! `WWW-Authenticate: Basic` when Basic was used), `invalid_grant`, `invalid_request` and
//! `unsupported_grant_type` 400.
//!
//! The ID token (`typ` JWT, `alg` ES256, `kid`) carries `iss`, `sub` (stable per user), `aud` (the
//! client id), `exp` (5 min, [`OidcSimConfig::id_token_ttl`]), `iat`, `auth_time`, `nonce` (when
//! the authorize request had one), `email`, `email_verified`, `name` and `amr` `["pwd"]`.
//!
//! Control API (same port, no credentials), for use from another process:
//! `POST /_sim/clients` `{"client_id", "client_secret"?, "redirect_uris": [..]}` registers a client,
//! or adds redirect URIs to a known one (and replaces its secret when given); answers
//! `{"client_id","redirect_uris"}`. `POST /_sim/users` `{"email","password","name"?,"sub"?,
//! "email_verified"?}` adds or replaces a user; answers `{"email","sub"}`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use oidc_sim::{OidcSim, OidcSimConfig, demo};
//! let sim = OidcSim::start("127.0.0.1:0".parse().unwrap(), OidcSimConfig::default()).await?;
//! // Learnt only now: where the relying party listens.
//! sim.add_redirect_uri(demo::CLIENT_ID, "http://127.0.0.1:8080/v1/auth/callback");
//! println!("issuer {}", sim.issuer());
//! sim.stop().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sim_server::Served;

mod authorize;
mod config;
mod control;
mod discovery;
mod sign_in;
mod state;
#[cfg(test)]
mod tests;
mod token;
pub use config::{OidcClient, OidcSimConfig, OidcUser, stable_sub};
pub use sign_in::try_sign_in;
use state::{ACCESS_TOKEN_TTL, Data, IdTokenClaims, IssuedCode, Pending, SigningKey, SimState, now_secs, random_token};

/// The demo's client and users ([`OidcSimConfig::default`]).
pub mod demo {
    pub const CLIENT_ID: &str = "gatehouse";
    pub const CLIENT_SECRET: &str = "gatehouse-demo-secret";
    /// The password of every demo user.
    pub const PASSWORD: &str = "demo";
    pub const APPROVER_EMAIL: &str = "approver@demo.invalid";
    pub const APPROVER_NAME: &str = "Demo Approver";
    pub const SECOND_EMAIL: &str = "second@demo.invalid";
    pub const SECOND_NAME: &str = "Second Approver";
}

/// Why [`try_sign_in`] did not reach a redirect back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// The form came back with this error (wrong email or password).
    InvalidCredentials(String),
    /// The provider answered this status and page instead of the form or a redirect (for example
    /// 400 for an unknown client or an unregistered `redirect_uri`).
    Refused { status: u16, body: String },
    /// The HTTP exchange failed or a page was not what the simulator serves.
    Protocol(String),
}

impl fmt::Display for SignInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignInError::InvalidCredentials(msg) => write!(f, "sign-in refused: {msg}"),
            SignInError::Refused { status, body } => write!(f, "provider answered {status}: {body}"),
            SignInError::Protocol(msg) => write!(f, "sign-in failed: {msg}"),
        }
    }
}

impl std::error::Error for SignInError {}

/// A running simulator. Dropping it aborts the server task; [`OidcSim::stop`] shuts it down
/// gracefully.
pub struct OidcSim {
    state: Arc<SimState>,
    served: Served,
}

impl OidcSim {
    /// Makes a fresh signing key, binds `listen` (port 0 picks a free port) and serves in a
    /// background task.
    pub async fn start(listen: SocketAddr, config: OidcSimConfig) -> std::io::Result<OidcSim> {
        let (listener, base) = sim_server::bind(listen).await?;
        let key = SigningKey::generate().map_err(std::io::Error::other)?;
        let issuer = config.issuer.clone().unwrap_or_else(|| base.clone()).trim_end_matches('/').to_string();
        let state = Arc::new(SimState {
            base,
            issuer,
            code_ttl: config.code_ttl,
            id_token_ttl: config.id_token_ttl,
            key,
            data: Mutex::new(Data {
                clients: config.clients,
                users: config.users,
                pending: HashMap::new(),
                codes: HashMap::new(),
                access_tokens: HashMap::new(),
            }),
        });
        let served = Served::spawn(listener, router(state.clone()), "oidc-sim");
        tracing::info!(url = %state.base, issuer = %state.issuer, "oidc-sim listening");
        Ok(OidcSim { state, served })
    }

    /// `http://127.0.0.1:PORT`, where it listens.
    pub fn base_url(&self) -> String {
        self.state.base.clone()
    }

    /// The issuer (`iss` of its ID tokens; discovery is at `{issuer}/.well-known/openid-configuration`).
    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.state.issuer)
    }

    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.state.issuer)
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.state.issuer)
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.state.issuer)
    }

    /// The key id in the header of every ID token it signs.
    pub fn kid(&self) -> String {
        self.state.key.kid.clone()
    }

    /// What `GET /jwks` answers.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.state.key.jwk.clone()] })
    }

    /// Registers a client, replacing one with the same `client_id`.
    pub fn add_client(&self, client: OidcClient) {
        let mut data = self.state.data();
        data.clients.retain(|c| c.client_id != client.client_id);
        data.clients.push(client);
    }

    /// Adds a redirect URI to a registered client (once); false if the client is unknown.
    pub fn add_redirect_uri(&self, client_id: &str, redirect_uri: &str) -> bool {
        let mut data = self.state.data();
        match data.clients.iter_mut().find(|c| c.client_id == client_id) {
            Some(client) => {
                if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
                    client.redirect_uris.push(redirect_uri.to_string());
                }
                true
            }
            None => false,
        }
    }

    /// Adds a user, replacing one with the same email (any case).
    pub fn add_user(&self, user: OidcUser) {
        self.state.data().upsert_user(user);
    }

    pub fn clients(&self) -> Vec<OidcClient> {
        self.state.data().clients.clone()
    }

    pub fn users(&self) -> Vec<OidcUser> {
        self.state.data().users.clone()
    }

    /// Signs in through the form over HTTP, as a browser would: `GET authorize_url`, then posts the
    /// form with `email` and `password`, and answers the `Location` of the redirect back to the
    /// client (`redirect_uri?code=…&state=…&iss=…`) without requesting it. Panics when the sign-in
    /// does not end in a redirect (see [`OidcSim::try_sign_in`]).
    pub async fn sign_in(&self, authorize_url: &str, email: &str, password: &str) -> String {
        match try_sign_in(authorize_url, email, password).await {
            Ok(location) => location,
            Err(err) => panic!("oidc-sim sign-in as {email} failed: {err}"),
        }
    }

    /// [`OidcSim::sign_in`] with the failure as an error.
    pub async fn try_sign_in(&self, authorize_url: &str, email: &str, password: &str) -> Result<String, SignInError> {
        try_sign_in(authorize_url, email, password).await
    }

    pub async fn stop(self) {
        self.served.stop().await;
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery::discovery))
        .route("/jwks", get(discovery::jwks))
        .route("/authorize", get(authorize::authorize_page).post(authorize::authorize_submit))
        .route("/token", post(token::token))
        .route("/userinfo", get(token::userinfo))
        .route("/_sim/clients", post(control::control_add_client))
        .route("/_sim/users", post(control::control_add_user))
        .with_state(state)
}
