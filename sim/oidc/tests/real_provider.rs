//! The sign-in helper of `tests/oidc/signin.rs` against the real provider of
//! `tests/oidc/provider.mjs` (node-oidc-provider), and that provider as a relying party sees it:
//! the code flow with PKCE, an RS256 ID token verified against its JWKS, single-use codes and a
//! wrong verifier refused. Runs only when `OIDC_ISSUER` is set
//! (`eval "$(tests/oidc/start-provider.sh)"`); otherwise each test prints a note and passes.

#[path = "../../../tests/oidc/signin.rs"]
mod signin;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use oidc_sim::{demo, stable_sub};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    discovery: Value,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn provider(test: &str) -> Option<Provider> {
    let Ok(issuer) = std::env::var("OIDC_ISSUER") else {
        println!("note: {test} skipped: OIDC_ISSUER is not set (eval \"$(tests/oidc/start-provider.sh)\" to run it)");
        return None;
    };
    let client_id = std::env::var("OIDC_CLIENT_ID").unwrap_or_else(|_| "gatehouse".into());
    let client_secret = std::env::var("OIDC_CLIENT_SECRET").unwrap_or_else(|_| "gatehouse-test-secret".into());
    let redirect_uri = std::env::var("OIDC_REDIRECT_URIS")
        .ok()
        .and_then(|uris| uris.split(',').next().map(str::to_string))
        .unwrap_or_else(|| "http://127.0.0.1:8080/v1/auth/callback".into());
    let discovery: Value = http()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("the provider at OIDC_ISSUER answers")
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer.as_str());
    Some(Provider { issuer, client_id, client_secret, redirect_uri, discovery })
}

struct Request {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn authorize_request(p: &Provider, redirect_uri: &str) -> Request {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let mut url = url::Url::parse(p.discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &p.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Request { url: url.to_string(), state, nonce, verifier }
}

fn query(location: &str) -> HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

async fn redeem(p: &Provider, code: &str, redirect_uri: &str, verifier: &str) -> (StatusCode, Value) {
    let resp = http()
        .post(p.discovery["token_endpoint"].as_str().unwrap())
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_helper_signs_in_at_the_real_provider_and_its_id_token_verifies() {
    let Some(p) = provider("the_helper_signs_in_at_the_real_provider").await else { return };
    let req = authorize_request(&p, &p.redirect_uri);
    let location = signin::sign_in_at_real_provider(&http(), &req.url, demo::APPROVER_EMAIL, demo::PASSWORD).await;
    assert!(location.starts_with(&format!("{}?", p.redirect_uri)), "{location}");
    let q = query(&location);
    assert_eq!(q.get("state"), Some(&req.state));
    assert_eq!(q.get("iss"), Some(&p.issuer));
    let code = q.get("code").expect("a code").clone();

    let (status, body) = redeem(&p, &code, &p.redirect_uri, &req.verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let id_token = body["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwks: JwkSet =
        http().get(p.discovery["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in the JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&p.issuer]);
    validation.set_audience(&[&p.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims["nonce"], req.nonce);
    assert_eq!(claims["email"], demo::APPROVER_EMAIL);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["auth_time"].as_u64().is_some());
    // The same stable sub as the simulator gives.
    assert_eq!(claims["sub"], stable_sub(demo::APPROVER_EMAIL));

    // Single use.
    let (status, body) = redeem(&p, &code, &p.redirect_uri, &req.verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn the_real_provider_refuses_a_wrong_verifier_and_a_wrong_password() {
    let Some(p) = provider("the_real_provider_refuses_a_wrong_verifier_and_a_wrong_password").await else { return };
    let req = authorize_request(&p, &p.redirect_uri);
    let location = signin::sign_in_at_real_provider(&http(), &req.url, demo::SECOND_EMAIL, demo::PASSWORD).await;
    let code = query(&location)["code"].clone();
    let other = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let (status, body) = redeem(&p, &code, &p.redirect_uri, &other).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    let req = authorize_request(&p, &p.redirect_uri);
    let err = signin::try_sign_in_at_real_provider(&http(), &req.url, demo::APPROVER_EMAIL, "wrong").await.unwrap_err();
    assert!(err.starts_with("invalid credentials"), "{err}");
}

#[tokio::test]
async fn the_real_provider_accepts_its_loopback_redirect_uri_on_another_port_only_with_the_same_path() {
    let Some(p) = provider("the_real_provider_accepts_its_loopback_redirect_uri_on_another_port").await else { return };
    let mut other_port = url::Url::parse(&p.redirect_uri).unwrap();
    if other_port.host_str() != Some("127.0.0.1") || std::env::var("OIDC_LOOPBACK_ANY_PORT").as_deref() == Ok("0") {
        println!("note: the registered redirect URI is not a loopback one matched on any port");
        return;
    }
    other_port.set_port(Some(1)).unwrap();
    let req = authorize_request(&p, other_port.as_str());
    let location = signin::sign_in_at_real_provider(&http(), &req.url, demo::APPROVER_EMAIL, demo::PASSWORD).await;
    assert!(location.starts_with(&format!("{other_port}?")), "{location}");
    let (status, body) = redeem(&p, &query(&location)["code"], other_port.as_str(), &req.verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Another path is refused with an error page, never redirected to.
    let mut other_path = other_port.clone();
    other_path.set_path("/elsewhere");
    let req = authorize_request(&p, other_path.as_str());
    let resp = http().get(&req.url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        signin::try_sign_in_at_real_provider(&http(), &req.url, demo::APPROVER_EMAIL, demo::PASSWORD).await.is_err()
    );
}
