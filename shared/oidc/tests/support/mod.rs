//! What the client's tests share: a small OpenID provider served in the test (discovery, JWKS,
//! token endpoint), whose ID tokens are whatever the test signs, the keys to sign them with, and the
//! checks that a failure is the one expected and shows nothing secret.

// Each test file uses only part of this.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::Error;
use domain::config::Secret;
use domain::signin::IdentityProvider;
use gatehouse_oidc::OidcClient;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "gatehouse";
/// With characters that RFC 6749 §2.3.1's form-urlencoding changes.
pub const CLIENT_SECRET: &str = "s3cr:t/+ü secret";
pub const REDIRECT_URI: &str = "http://127.0.0.1:8080/v1/auth/callback";
pub const CODE: &str = "the-authorization-code-0123456789";
pub const VERIFIER: &str = "the-pkce-verifier-abcdefghijklmnopqrstuvwxyz0123456789";
pub const NONCE: &str = "the-nonce-of-this-sign-in";

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

pub struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    pub fn es256(kid: &str) -> TestKey {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        TestKey::with(kid, Algorithm::ES256, EncodingKey::from_ec_der(pkcs8.as_ref()), true)
    }

    /// An RSA key; its JWK names no alg, so it serves RS256 and PS256 alike.
    pub fn rsa(kid: &str, alg: Algorithm) -> TestKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
        let pem =
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(der.as_ref()));
        TestKey::with(kid, alg, EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(), false)
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let pair = Ed25519KeyPair::generate().unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        TestKey::with(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(pkcs8.as_ref()), true)
    }

    fn with(kid: &str, alg: Algorithm, encoding: EncodingKey, name_alg: bool) -> TestKey {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        let obj = jwk.as_object_mut().unwrap();
        obj.insert("kid".into(), json!(kid));
        obj.insert("use".into(), json!("sig"));
        if !name_alg {
            obj.remove("alg");
        }
        TestKey { kid: kid.into(), alg, encoding, jwk }
    }

    /// Signs `claims` with this key, under `kid` (this key's unless another is given).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), claims)
    }

    pub fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

// ---------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
pub enum TokenReply {
    IdToken(String),
    /// 302 to `/elsewhere`.
    Redirect,
    Status(u16, Value),
}

/// The `Authorization` header and the form of a token request.
pub type TokenRequest = (Option<String>, HashMap<String, String>);

pub struct ProviderState {
    base: String,
    /// The `issuer` the discovery document names.
    pub doc_issuer: Mutex<String>,
    /// Replaces or adds members of the discovery document.
    doc_overrides: Mutex<serde_json::Map<String, Value>>,
    jwks: Mutex<Vec<Value>>,
    token_reply: Mutex<TokenReply>,
    /// `Authorization` and form of the last token request.
    token_request: Mutex<Option<TokenRequest>>,
    pub discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    pub token_hits: AtomicUsize,
    pub elsewhere_hits: AtomicUsize,
}

pub struct Provider {
    pub state: Arc<ProviderState>,
    pub key: TestKey,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// A provider at `http://127.0.0.1:PORT` (its issuer) publishing one ES256 key.
    pub async fn start() -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let key = TestKey::es256("key-1");
        let state = Arc::new(ProviderState {
            base: base.clone(),
            doc_issuer: Mutex::new(base),
            doc_overrides: Mutex::new(serde_json::Map::new()),
            jwks: Mutex::new(vec![key.jwk.clone()]),
            token_reply: Mutex::new(TokenReply::Status(500, json!({"error": "server_error"}))),
            token_request: Mutex::new(None),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
            token_hits: AtomicUsize::new(0),
            elsewhere_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/elsewhere", any(elsewhere))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Provider { state, key, task }
    }

    pub fn issuer(&self) -> String {
        self.state.base.clone()
    }

    pub fn client(&self) -> OidcClient {
        OidcClient::new(&self.issuer(), CLIENT_ID, Secret::new(CLIENT_SECRET), Duration::from_secs(5)).unwrap()
    }

    /// The claims of a good ID token.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.issuer(),
            "sub": "user-42",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": NONCE,
            "email": "approver@example.com",
            "email_verified": true,
            "amr": ["pwd", "otp"],
        })
    }

    pub fn answer(&self, reply: TokenReply) {
        *self.state.token_reply.lock().unwrap() = reply;
    }

    pub fn answer_id_token(&self, id_token: &str) {
        self.answer(TokenReply::IdToken(id_token.to_string()));
    }

    pub fn publish(&self, jwk: &Value) {
        self.state.jwks.lock().unwrap().push(jwk.clone());
    }

    pub fn override_doc(&self, name: &str, value: Value) {
        self.state.doc_overrides.lock().unwrap().insert(name.into(), value);
    }

    pub fn last_token_request(&self) -> TokenRequest {
        self.state.token_request.lock().unwrap().clone().expect("a token request")
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }
}

async fn discovery(State(s): State<Arc<ProviderState>>) -> Response {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let mut doc = json!({
        "issuer": s.doc_issuer.lock().unwrap().clone(),
        "authorization_endpoint": format!("{}/authorize?tenant=acme", s.base),
        "token_endpoint": format!("{}/token", s.base),
        "jwks_uri": format!("{}/jwks", s.base),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "code_challenge_methods_supported": ["S256"],
    });
    for (k, v) in s.doc_overrides.lock().unwrap().iter() {
        if v.is_null() {
            doc.as_object_mut().unwrap().remove(k);
        } else {
            doc[k] = v.clone();
        }
    }
    axum::Json(doc).into_response()
}

async fn jwks(State(s): State<Arc<ProviderState>>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({ "keys": s.jwks.lock().unwrap().clone() })).into_response()
}

async fn token(State(s): State<Arc<ProviderState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.token_hits.fetch_add(1, Ordering::SeqCst);
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_string());
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    *s.token_request.lock().unwrap() = Some((auth, form));
    let reply = s.token_reply.lock().unwrap().clone();
    match reply {
        TokenReply::IdToken(id_token) => axum::Json(json!({
            "access_token": "an-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }))
        .into_response(),
        TokenReply::Redirect => {
            (StatusCode::FOUND, [(header::LOCATION, format!("{}/elsewhere", s.base))]).into_response()
        }
        TokenReply::Status(status, body) => (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response(),
    }
}

async fn elsewhere(State(s): State<Arc<ProviderState>>) -> Response {
    s.elsewhere_hits.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"id_token": "should-never-be-fetched"})).into_response()
}

/// `token` with another header (its signature no longer matching).
pub fn swap_header(token: &str, header: Value) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

pub async fn redeem(client: &OidcClient) -> Result<domain::signin::VerifiedIdentity, Error> {
    client.redeem(REDIRECT_URI, CODE, VERIFIER, NONCE).await
}

/// A failure that must not hold anything secret.
pub fn assert_clean(err: &Error, secrets: &[&str]) {
    let said = format!("{} | {} | {err:?}", err.chain(), err);
    for s in secrets.iter().chain([&CODE, &VERIFIER, &CLIENT_SECRET, &"s3cr"]) {
        assert!(!said.contains(s), "the error shows a secret ({s}): {said}");
    }
}

pub fn expect_forbidden(result: Result<domain::signin::VerifiedIdentity, Error>, needle: &str, id_token: &str) {
    match result {
        Err(err @ Error::Forbidden(_)) => {
            assert!(err.to_string().contains(needle), "expected \"{needle}\" in: {err}");
            assert_clean(&err, &[id_token]);
        }
        other => panic!("expected Forbidden ({needle}), got {other:?}"),
    }
}
