//! The client against a small OpenID provider served in the test (discovery, JWKS, token
//! endpoint), whose ID tokens are whatever the test signs: the checks of an ID token one by one,
//! key rotation, discovery rules, the token endpoint's failures and redirects.

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

const CLIENT_ID: &str = "gatehouse";
/// With characters that RFC 6749 §2.3.1's form-urlencoding changes.
const CLIENT_SECRET: &str = "s3cr:t/+ü secret";
const REDIRECT_URI: &str = "http://127.0.0.1:8080/v1/auth/callback";
const CODE: &str = "the-authorization-code-0123456789";
const VERIFIER: &str = "the-pkce-verifier-abcdefghijklmnopqrstuvwxyz0123456789";
const NONCE: &str = "the-nonce-of-this-sign-in";

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn es256(kid: &str) -> TestKey {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        TestKey::with(kid, Algorithm::ES256, EncodingKey::from_ec_der(pkcs8.as_ref()), true)
    }

    /// An RSA key; its JWK names no alg, so it serves RS256 and PS256 alike.
    fn rsa(kid: &str, alg: Algorithm) -> TestKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
        let pem =
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(der.as_ref()));
        TestKey::with(kid, alg, EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(), false)
    }

    fn ed25519(kid: &str) -> TestKey {
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
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), claims)
    }

    fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

// ---------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
enum TokenReply {
    IdToken(String),
    /// 302 to `/elsewhere`.
    Redirect,
    Status(u16, Value),
}

/// The `Authorization` header and the form of a token request.
type TokenRequest = (Option<String>, HashMap<String, String>);

struct ProviderState {
    base: String,
    /// The `issuer` the discovery document names.
    doc_issuer: Mutex<String>,
    /// Replaces or adds members of the discovery document.
    doc_overrides: Mutex<serde_json::Map<String, Value>>,
    jwks: Mutex<Vec<Value>>,
    token_reply: Mutex<TokenReply>,
    /// `Authorization` and form of the last token request.
    token_request: Mutex<Option<TokenRequest>>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    token_hits: AtomicUsize,
    elsewhere_hits: AtomicUsize,
}

struct Provider {
    state: Arc<ProviderState>,
    key: TestKey,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// A provider at `http://127.0.0.1:PORT` (its issuer) publishing one ES256 key.
    async fn start() -> Provider {
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

    fn issuer(&self) -> String {
        self.state.base.clone()
    }

    fn client(&self) -> OidcClient {
        OidcClient::new(&self.issuer(), CLIENT_ID, Secret::new(CLIENT_SECRET), Duration::from_secs(5)).unwrap()
    }

    /// The claims of a good ID token.
    fn claims(&self) -> Value {
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

    fn answer(&self, reply: TokenReply) {
        *self.state.token_reply.lock().unwrap() = reply;
    }

    fn answer_id_token(&self, id_token: &str) {
        self.answer(TokenReply::IdToken(id_token.to_string()));
    }

    fn publish(&self, jwk: &Value) {
        self.state.jwks.lock().unwrap().push(jwk.clone());
    }

    fn override_doc(&self, name: &str, value: Value) {
        self.state.doc_overrides.lock().unwrap().insert(name.into(), value);
    }

    fn last_token_request(&self) -> TokenRequest {
        self.state.token_request.lock().unwrap().clone().expect("a token request")
    }

    fn jwks_hits(&self) -> usize {
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
fn swap_header(token: &str, header: Value) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

async fn redeem(client: &OidcClient) -> Result<domain::signin::VerifiedIdentity, Error> {
    client.redeem(REDIRECT_URI, CODE, VERIFIER, NONCE).await
}

/// A failure that must not hold anything secret.
fn assert_clean(err: &Error, secrets: &[&str]) {
    let said = format!("{} | {} | {err:?}", err.chain(), err);
    for s in secrets.iter().chain([&CODE, &VERIFIER, &CLIENT_SECRET, &"s3cr"]) {
        assert!(!said.contains(s), "the error shows a secret ({s}): {said}");
    }
}

fn expect_forbidden(result: Result<domain::signin::VerifiedIdentity, Error>, needle: &str, id_token: &str) {
    match result {
        Err(err @ Error::Forbidden(_)) => {
            assert!(err.to_string().contains(needle), "expected \"{needle}\" in: {err}");
            assert_clean(&err, &[id_token]);
        }
        other => panic!("expected Forbidden ({needle}), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_good_sign_in_goes_through() {
    let p = Provider::start().await;
    let client = p.client();
    assert_eq!(client.issuer(), p.issuer());

    let url = client.authorize_url(REDIRECT_URI, "state-1", NONCE, "challenge-1").await.unwrap();
    let url = url::Url::parse(&url).unwrap();
    assert_eq!(format!("{}{}", url.origin().ascii_serialization(), url.path()), format!("{}/authorize", p.issuer()));
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let expected = [
        ("tenant", "acme"),
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
        ("state", "state-1"),
        ("nonce", NONCE),
        ("code_challenge", "challenge-1"),
        ("code_challenge_method", "S256"),
    ];
    assert_eq!(q.len(), expected.len(), "{q:?}");
    for (k, v) in expected {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "{k}");
    }

    p.answer_id_token(&p.key.sign(&p.claims()));
    let who = redeem(&client).await.unwrap();
    assert_eq!(who.issuer, p.issuer());
    assert_eq!(who.subject, "user-42");
    assert_eq!(who.email, "approver@example.com");
    assert_eq!(who.amr, vec!["pwd".to_string(), "otp".to_string()]);

    // client_secret_basic with the id and secret form-urlencoded first (RFC 6749 §2.3.1).
    let (auth, form) = p.last_token_request();
    let basic = format!("{}:{}", CLIENT_ID, "s3cr%3At%2F%2B%C3%BC+secret");
    assert_eq!(auth.as_deref(), Some(format!("Basic {}", STANDARD.encode(basic)).as_str()));
    let expected_form: HashMap<String, String> = [
        ("grant_type", "authorization_code"),
        ("code", CODE),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form, expected_form);

    // Discovery and keys were fetched once and are reused.
    p.answer_id_token(&p.key.sign(&p.claims()));
    redeem(&client).await.unwrap();
    client.authorize_url(REDIRECT_URI, "state-2", NONCE, "challenge-2").await.unwrap();
    assert_eq!(p.state.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(p.jwks_hits(), 1);
}

#[tokio::test]
async fn rsa_pss_and_eddsa_tokens_verify() {
    let p = Provider::start().await;
    let rsa = TestKey::rsa("rsa-1", Algorithm::RS256);
    let ed = TestKey::ed25519("ed-1");
    p.publish(&rsa.jwk);
    p.publish(&ed.jwk);
    let client = p.client();
    for (name, token) in [
        ("RS256", rsa.sign(&p.claims())),
        ("PS256", rsa.sign_as(Algorithm::PS256, Some("rsa-1"), &p.claims())),
        ("EdDSA", ed.sign(&p.claims())),
    ] {
        p.answer_id_token(&token);
        let who = redeem(&client).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(who.subject, "user-42", "{name}");
    }
    // A token that names no kid is verified with the only key fitting its alg.
    p.answer_id_token(&ed.sign_as(Algorithm::EdDSA, None, &p.claims()));
    redeem(&client).await.unwrap();
}

#[tokio::test]
async fn client_secret_post_when_discovery_lists_only_that() {
    let p = Provider::start().await;
    p.override_doc("token_endpoint_auth_methods_supported", json!(["client_secret_post", "private_key_jwt"]));
    let client = p.client();
    p.answer_id_token(&p.key.sign(&p.claims()));
    redeem(&client).await.unwrap();
    let (auth, form) = p.last_token_request();
    assert_eq!(auth, None);
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert_eq!(form.get("client_secret").map(String::as_str), Some(CLIENT_SECRET));
    assert_eq!(form.get("code_verifier").map(String::as_str), Some(VERIFIER));
}

#[tokio::test]
async fn bad_id_tokens_are_forbidden() {
    let p = Provider::start().await;
    let client = p.client();
    let good = p.claims();
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let impostor = TestKey::es256("key-1"); // same kid, another key: not published
    let header_b64 = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let payload_b64 = URL_SAFE_NO_PAD.encode(good.to_string());
    let hs256 = jsonwebtoken::encode(
        &{
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("key-1".into());
            h
        },
        &good,
        &EncodingKey::from_secret(b"any shared secret at all").unwrap(),
    )
    .unwrap();
    let now = now();

    let cases: Vec<(&str, String, &str)> = vec![
        ("wrong nonce", p.key.sign(&with(json!({"nonce": "another-nonce"}))), "nonce"),
        ("no nonce", p.key.sign(&with(json!({"nonce": null}))), "nonce"),
        ("wrong aud", p.key.sign(&with(json!({"aud": "another-client"}))), "aud"),
        ("no aud", p.key.sign(&with(json!({"aud": null}))), "aud"),
        ("several aud, no azp", p.key.sign(&with(json!({"aud": [CLIENT_ID, "other"]}))), "azp"),
        ("wrong azp", p.key.sign(&with(json!({"azp": "other"}))), "azp"),
        ("wrong iss", p.key.sign(&with(json!({"iss": "https://evil.example.com"}))), "iss"),
        ("expired", p.key.sign(&with(json!({"exp": now - 120, "iat": now - 420}))), "expired"),
        ("no exp", p.key.sign(&with(json!({"exp": null}))), "exp"),
        ("iat in the future", p.key.sign(&with(json!({"iat": now + 600}))), "iat"),
        ("no iat", p.key.sign(&with(json!({"iat": null}))), "iat"),
        ("nbf in the future", p.key.sign(&with(json!({"nbf": now + 600}))), "nbf"),
        ("no sub", p.key.sign(&with(json!({"sub": null}))), "sub"),
        ("no email", p.key.sign(&with(json!({"email": null}))), "email"),
        ("email not verified", p.key.sign(&with(json!({"email_verified": false}))), "not verified"),
        ("email_verified absent", p.key.sign(&with(json!({"email_verified": null}))), "no email_verified claim"),
        ("signed by another key", impostor.sign(&good), "signature"),
        ("alg none", format!("{}.{payload_b64}.", header_b64(json!({"alg": "none", "typ": "JWT"}))), "alg none"),
        ("alg none with kid", format!("{}.{payload_b64}.", header_b64(json!({"alg": "none", "kid": "key-1"}))), "alg"),
        ("HS256 under the EC key's kid", hs256.clone(), "HS256"),
        (
            "ES384 header on the P-256 key",
            swap_header(&p.key.sign(&good), json!({"alg": "ES384", "kid": "key-1"})),
            "ES384",
        ),
        (
            "RS256 header on the P-256 key",
            swap_header(&p.key.sign(&good), json!({"alg": "RS256", "kid": "key-1"})),
            "RS256",
        ),
        ("not a JWT", "not.a.jwt".to_string(), "well-formed"),
    ];
    for (name, token, needle) in cases {
        p.answer_id_token(&token);
        let result = redeem(&client).await;
        if result.is_ok() {
            panic!("{name}: accepted");
        }
        expect_forbidden(result, needle, &token);
    }

    // An HMAC key published in the JWKS does not help an HS256 token either.
    p.publish(&json!({"kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(b"any shared secret at all")}));
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("hmac".into());
    let token =
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(b"any shared secret at all").unwrap()).unwrap();
    p.answer_id_token(&token);
    expect_forbidden(redeem(&client).await, "HS256", &token);

    // email_verified as the string "true" (some providers) is accepted, and the good token still is.
    p.answer_id_token(&p.key.sign(&with(json!({"email_verified": "true", "amr": null}))));
    let who = redeem(&client).await.unwrap();
    assert!(who.amr.is_empty());
    p.answer_id_token(&p.key.sign(&with(json!({"aud": [CLIENT_ID, "other"], "azp": CLIENT_ID}))));
    redeem(&client).await.unwrap();
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_once() {
    let p = Provider::start().await;
    let client = p.client();
    p.answer_id_token(&p.key.sign(&p.claims()));
    redeem(&client).await.unwrap();
    assert_eq!(p.jwks_hits(), 1);

    let stranger = TestKey::es256("key-unknown");
    let token = stranger.sign(&p.claims());
    p.answer_id_token(&token);
    expect_forbidden(redeem(&client).await, "key-unknown", &token);
    assert_eq!(p.jwks_hits(), 2, "one refetch for the unknown kid");

    // Rate-limited: another unknown kid right after does not fetch again.
    p.answer_id_token(&TestKey::es256("key-other").sign(&p.claims()));
    assert!(matches!(redeem(&client).await, Err(Error::Forbidden(_))));
    assert_eq!(p.jwks_hits(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_found_by_refetching() {
    let p = Provider::start().await;
    let client = p.client();
    p.answer_id_token(&p.key.sign(&p.claims()));
    redeem(&client).await.unwrap();
    assert_eq!(p.jwks_hits(), 1);

    let next = TestKey::es256("key-2");
    p.publish(&next.jwk);
    p.answer_id_token(&next.sign(&p.claims()));
    let who = redeem(&client).await.unwrap();
    assert_eq!(who.email, "approver@example.com");
    assert_eq!(p.jwks_hits(), 2);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let p = Provider::start().await;
    *p.state.doc_issuer.lock().unwrap() = format!("{}/", p.issuer());
    let client = p.client();
    let err = client.authorize_url(REDIRECT_URI, "s", NONCE, "c").await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
    assert!(err.to_string().contains("§4.3"), "{err}");
    p.answer_id_token(&p.key.sign(&p.claims()));
    assert!(matches!(redeem(&client).await, Err(Error::Upstream { .. })));
    assert_eq!(p.state.token_hits.load(Ordering::SeqCst), 0, "nothing is sent to an unverified provider");
}

#[tokio::test]
async fn discovered_endpoints_must_be_https_except_on_loopback() {
    let p = Provider::start().await;
    p.override_doc("token_endpoint", json!("http://login.example.com/token"));
    let err = p.client().authorize_url(REDIRECT_URI, "s", NONCE, "c").await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }) && err.to_string().contains("token_endpoint"), "{err}");

    let p = Provider::start().await;
    p.override_doc("jwks_uri", json!(null));
    let err = p.client().authorize_url(REDIRECT_URI, "s", NONCE, "c").await.unwrap_err();
    assert!(err.to_string().contains("jwks_uri"), "{err}");

    let p = Provider::start().await;
    p.override_doc("code_challenge_methods_supported", json!(["plain"]));
    let err = p.client().authorize_url(REDIRECT_URI, "s", NONCE, "c").await.unwrap_err();
    assert!(err.to_string().contains("S256"), "{err}");
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let p = Provider::start().await;
    let client = p.client();
    p.answer(TokenReply::Redirect);
    let err = redeem(&client).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
    assert!(err.to_string().contains("not followed"), "{err}");
    assert_clean(&err, &[]);
    assert_eq!(p.state.token_hits.load(Ordering::SeqCst), 1);
    assert_eq!(p.state.elsewhere_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn token_endpoint_failures() {
    let p = Provider::start().await;
    let client = p.client();

    // A spent or foreign code: the signer may try again (403). The description echoes the code,
    // which must not reach the error.
    p.answer(TokenReply::Status(
        400,
        json!({"error": "invalid_grant", "error_description": format!("code {CODE} was already used")}),
    ));
    let err = redeem(&client).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    assert_clean(&err, &[]);

    p.answer(TokenReply::Status(
        401,
        json!({"error": "invalid_client", "error_description": format!("bad secret {CLIENT_SECRET}")}),
    ));
    let err = redeem(&client).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }) && err.to_string().contains("GATEHOUSE_OIDC_CLIENT_SECRET"), "{err}");
    assert_clean(&err, &[]);

    p.answer(TokenReply::Status(503, json!({"message": "maintenance"})));
    let err = redeem(&client).await.unwrap_err();
    assert!(matches!(&err, Error::Upstream { system, .. } if system == "identity provider"), "{err:?}");
    assert!(err.to_string().contains("503"), "{err}");

    p.answer(TokenReply::Status(200, json!({"access_token": "x", "token_type": "Bearer"})));
    let err = redeem(&client).await.unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }) && err.to_string().contains("id_token"), "{err}");
}

#[tokio::test]
async fn an_unreachable_provider_is_an_upstream_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = OidcClient::new(&issuer, CLIENT_ID, Secret::new(CLIENT_SECRET), Duration::from_secs(2)).unwrap();
    let err = client.authorize_url(REDIRECT_URI, "s", NONCE, "c").await.unwrap_err();
    assert!(matches!(&err, Error::Upstream { system, .. } if system == "identity provider"), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Against the OpenID provider simulator
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_whole_flow_against_oidc_sim() {
    use oidc_sim::{OidcSim, OidcSimConfig, OidcUser, demo};

    let sim = OidcSim::start("127.0.0.1:0".parse().unwrap(), OidcSimConfig::default()).await.unwrap();
    assert!(sim.add_redirect_uri(demo::CLIENT_ID, REDIRECT_URI));
    let client =
        OidcClient::new(&sim.issuer(), demo::CLIENT_ID, Secret::new(demo::CLIENT_SECRET), Duration::from_secs(5))
            .unwrap();

    // PKCE S256 (RFC 7636 §4.2), as the domain makes it.
    let verifier = URL_SAFE_NO_PAD.encode(b"a verifier of enough entropy for the test, 32+ bytes");
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));

    let sign_in = |state: &'static str| {
        let client = &client;
        let challenge = challenge.clone();
        let sim = &sim;
        async move {
            let url = client.authorize_url(REDIRECT_URI, state, NONCE, &challenge).await.unwrap();
            let location = sim.sign_in(&url, demo::APPROVER_EMAIL, demo::PASSWORD).await;
            let location = url::Url::parse(&location).unwrap();
            let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
            assert_eq!(q.get("state").map(String::as_str), Some(state));
            q["code"].clone()
        }
    };

    let code = sign_in("state-sim-1").await;
    let who = client.redeem(REDIRECT_URI, &code, &verifier, NONCE).await.unwrap();
    assert_eq!(who.issuer, sim.issuer());
    assert_eq!(who.email, demo::APPROVER_EMAIL);
    assert_eq!(who.subject, oidc_sim::stable_sub(demo::APPROVER_EMAIL));
    assert_eq!(who.amr, vec!["pwd".to_string()]);

    // The code is single-use: a replay is refused as invalid_grant.
    let err = client.redeem(REDIRECT_URI, &code, &verifier, NONCE).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");

    // A wrong verifier is refused by the provider; a wrong nonce by us.
    let code = sign_in("state-sim-2").await;
    let err = client.redeem(REDIRECT_URI, &code, "a-wrong-verifier-a-wrong-verifier-a-wrong-verifier", NONCE).await;
    assert!(matches!(err, Err(Error::Forbidden(_))), "{err:?}");
    let code = sign_in("state-sim-3").await;
    let err = client.redeem(REDIRECT_URI, &code, &verifier, "another-nonce").await;
    assert!(matches!(&err, Err(Error::Forbidden(m)) if m.contains("nonce")), "{err:?}");

    // A user whose address the provider has not verified cannot sign in.
    let mut unverified = OidcUser::new("unverified@demo.invalid", "pw", "Unverified");
    unverified.email_verified = false;
    sim.add_user(unverified);
    let url = client.authorize_url(REDIRECT_URI, "state-sim-4", NONCE, &challenge).await.unwrap();
    let location = sim.sign_in(&url, "unverified@demo.invalid", "pw").await;
    let code = url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let err = client.redeem(REDIRECT_URI, &code, &verifier, NONCE).await;
    assert!(matches!(&err, Err(Error::Forbidden(m)) if m.contains("not verified")), "{err:?}");

    sim.stop().await;
}
