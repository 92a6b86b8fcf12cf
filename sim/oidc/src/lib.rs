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

/// The demo's client and users ([`OidcSimConfig::default`]).
mod authorize;
mod sign_in;
mod token;
pub use sign_in::try_sign_in;

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

/// How long a pending sign-in (the form shown by `GET /authorize`) stays usable.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long an access token answers at `/userinfo`.
const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(300);

/// A registered client (relying party). Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    /// Compared exactly (no prefix or pattern matching), as OpenID Connect requires.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl OidcClient {
    pub fn new<I, S>(client_id: &str, client_secret: &str, redirect_uris: I) -> OidcClient
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OidcClient {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        }
    }
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// A user who can sign in. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcUser {
    /// Matched case-insensitively at sign-in; put in the ID token as given here.
    pub email: String,
    pub password: String,
    /// The `sub` claim: stable for the user ([`stable_sub`] by default).
    pub sub: String,
    pub name: String,
    /// The `email_verified` claim (true by default; false lets tests try an unverified address).
    pub email_verified: bool,
}

impl OidcUser {
    /// A user with a verified email and the [`stable_sub`] of that email.
    pub fn new(email: &str, password: &str, name: &str) -> OidcUser {
        OidcUser {
            email: email.into(),
            password: password.into(),
            sub: stable_sub(email),
            name: name.into(),
            email_verified: true,
        }
    }
}

impl fmt::Debug for OidcUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcUser")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("sub", &self.sub)
            .field("name", &self.name)
            .field("email_verified", &self.email_verified)
            .finish()
    }
}

/// The default `sub` of a user: the same for an email (any case) in every run, and opaque
/// (`u-` and 24 hex digits of SHA-256 of the lower-cased email).
pub fn stable_sub(email: &str) -> String {
    let digest = Sha256::digest(format!("oidc-sim:{}", email.trim().to_lowercase()).as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("u-{hex}")
}

#[derive(Clone, Debug)]
pub struct OidcSimConfig {
    /// The issuer (no trailing slash); `None`: the base URL the simulator is bound to
    /// (`http://127.0.0.1:PORT`). Every endpoint is published below it.
    pub issuer: Option<String>,
    pub clients: Vec<OidcClient>,
    pub users: Vec<OidcUser>,
    /// How long an authorization code can be redeemed (60 s).
    pub code_ttl: Duration,
    /// `exp` - `iat` of ID tokens (5 min).
    pub id_token_ttl: Duration,
}

impl Default for OidcSimConfig {
    /// The demo: client `gatehouse` / `gatehouse-demo-secret` with no redirect URI yet (add it with
    /// [`OidcSim::add_redirect_uri`] once the relying party's address is known), and the users
    /// `approver@demo.invalid` and `second@demo.invalid`, password `demo`.
    fn default() -> Self {
        OidcSimConfig {
            issuer: None,
            clients: vec![OidcClient::new(demo::CLIENT_ID, demo::CLIENT_SECRET, Vec::<String>::new())],
            users: vec![
                OidcUser::new(demo::APPROVER_EMAIL, demo::PASSWORD, demo::APPROVER_NAME),
                OidcUser::new(demo::SECOND_EMAIL, demo::PASSWORD, demo::SECOND_NAME),
            ],
            code_ttl: Duration::from_secs(60),
            id_token_ttl: Duration::from_secs(300),
        }
    }
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

// State ----------------------------------------------------------------------------------------

struct SigningKey {
    encoding: EncodingKey,
    kid: String,
    jwk: Value,
}

impl SigningKey {
    fn generate() -> Result<SigningKey, String> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| "generating the P-256 key failed".to_string())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|e| format!("reading the P-256 key: {e}"))?;
        // X9.62 uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 0x04 {
            return Err("unexpected public key encoding".into());
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
        Ok(SigningKey { encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), kid, jwk })
    }
}

struct SimState {
    base: String,
    issuer: String,
    code_ttl: Duration,
    id_token_ttl: Duration,
    key: SigningKey,
    data: Mutex<Data>,
}

impl SimState {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Data {
    clients: Vec<OidcClient>,
    users: Vec<OidcUser>,
    /// Sign-in forms shown, by the `request` hidden field.
    pending: HashMap<String, Pending>,
    codes: HashMap<String, IssuedCode>,
    access_tokens: HashMap<String, (String, Instant)>,
}

impl Data {
    fn client(&self, client_id: &str) -> Option<&OidcClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    fn user(&self, email: &str) -> Option<&OidcUser> {
        let email = email.trim();
        self.users.iter().find(|u| u.email.eq_ignore_ascii_case(email))
    }

    fn upsert_user(&mut self, user: OidcUser) {
        self.users.retain(|u| !u.email.eq_ignore_ascii_case(&user.email));
        self.users.push(user);
    }

    fn purge(&mut self, now: Instant) {
        self.pending.retain(|_, p| now.duration_since(p.created) < PENDING_TTL);
        self.codes.retain(|_, c| c.expires > now);
        self.access_tokens.retain(|_, (_, expires)| *expires > now);
    }
}

#[derive(Clone)]
struct Pending {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    login_hint: Option<String>,
    created: Instant,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    email: String,
    auth_time: u64,
    expires: Instant,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    email: &'a str,
    email_verified: bool,
    name: &'a str,
    amr: [&'static str; 1],
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize::authorize_page).post(authorize::authorize_submit))
        .route("/token", post(token::token))
        .route("/userinfo", get(token::userinfo))
        .route("/_sim/clients", post(control_add_client))
        .route("/_sim/users", post(control_add_user))
        .with_state(state)
}

// Discovery and keys ---------------------------------------------------------------------------

async fn discovery(State(state): State<Arc<SimState>>) -> Json<Value> {
    let iss = &state.issuer;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "email"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "email", "email_verified", "name"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login"],
    }))
}

async fn jwks(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({ "keys": [state.key.jwk.clone()] }))
}

// Control API ----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ClientBody {
    client_id: String,
    client_secret: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

async fn control_add_client(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let body: ClientBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(err) => return (StatusCode::BAD_REQUEST, Json(json!({"error": err.to_string()}))).into_response(),
    };
    if body.client_id.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "client_id is empty"}))).into_response();
    }
    let mut data = state.data();
    let client = match data.clients.iter_mut().find(|c| c.client_id == body.client_id) {
        Some(client) => {
            if let Some(secret) = body.client_secret {
                client.client_secret = secret;
            }
            for uri in body.redirect_uris {
                if !client.redirect_uris.contains(&uri) {
                    client.redirect_uris.push(uri);
                }
            }
            client.clone()
        }
        None => {
            let Some(secret) = body.client_secret else {
                return (StatusCode::BAD_REQUEST, Json(json!({"error": "a new client needs a client_secret"})))
                    .into_response();
            };
            let client =
                OidcClient { client_id: body.client_id, client_secret: secret, redirect_uris: body.redirect_uris };
            data.clients.push(client.clone());
            client
        }
    };
    Json(json!({"client_id": client.client_id, "redirect_uris": client.redirect_uris})).into_response()
}

#[derive(Deserialize)]
struct UserBody {
    email: String,
    password: String,
    name: Option<String>,
    sub: Option<String>,
    email_verified: Option<bool>,
}

async fn control_add_user(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let body: UserBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(err) => return (StatusCode::BAD_REQUEST, Json(json!({"error": err.to_string()}))).into_response(),
    };
    if body.email.trim().is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "email is empty"}))).into_response();
    }
    let mut user = OidcUser::new(body.email.trim(), &body.password, body.name.as_deref().unwrap_or(body.email.trim()));
    if let Some(sub) = body.sub {
        user.sub = sub;
    }
    if let Some(verified) = body.email_verified {
        user.email_verified = verified;
    }
    let answer = json!({"email": user.email, "sub": user.sub});
    state.data().upsert_user(user);
    Json(answer).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorize::{sign_in_page, with_query};
    use crate::sign_in::{between, parse_form};

    #[test]
    fn stable_sub_ignores_case_and_differs_per_user() {
        assert_eq!(stable_sub("Approver@Demo.invalid"), stable_sub("approver@demo.invalid"));
        assert_ne!(stable_sub(demo::APPROVER_EMAIL), stable_sub(demo::SECOND_EMAIL));
        assert_eq!(stable_sub("a@b").len(), 26);
    }

    #[test]
    fn debug_hides_secrets() {
        let config = OidcSimConfig::default();
        let shown = format!("{config:?}");
        assert!(!shown.contains(demo::CLIENT_SECRET), "{shown}");
        assert!(!shown.contains("\"demo\""), "{shown}");
    }

    #[test]
    fn parses_its_own_form() {
        let data = Data {
            clients: vec![],
            users: OidcSimConfig::default().users,
            pending: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
        };
        let pending = Pending {
            client_id: "c".into(),
            redirect_uri: "http://x/cb".into(),
            state: None,
            nonce: None,
            code_challenge: String::new(),
            login_hint: None,
            created: Instant::now(),
        };
        let page = sign_in_page(&data, "r&1", &pending, "a\"b", Some("Wrong <email>"));
        let form = parse_form(&page).unwrap();
        assert_eq!(form.action, "/authorize");
        assert_eq!(form.hidden, vec![("request".to_string(), "r&1".to_string())]);
        assert_eq!(between(&page, "<p class=\"error\">", "</p>"), Some("Wrong &lt;email&gt;"));
    }

    #[test]
    fn redirect_keeps_an_existing_query() {
        assert_eq!(with_query("http://h/cb?x=1", &[("code", "a b")]), "http://h/cb?x=1&code=a+b");
    }
}
