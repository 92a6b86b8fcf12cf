//! The OpenID provider simulator over HTTP: discovery, the code + PKCE flow with an ID token that
//! verifies against the JWKS, and the refusals (wrong verifier, reused code, unregistered
//! redirect_uri, wrong client secret, wrong password).

use std::io::{BufRead, BufReader};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oidc_sim::{OidcClient, OidcSim, OidcSimConfig, SignInError, demo, stable_sub};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:8080/v1/auth/callback";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn start() -> OidcSim {
    start_with(OidcSimConfig::default()).await
}

async fn start_with(config: OidcSimConfig) -> OidcSim {
    let sim = OidcSim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    assert!(sim.add_redirect_uri(demo::CLIENT_ID, REDIRECT));
    sim
}

struct Request {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_request(sim: &OidcSim, redirect_uri: &str) -> Request {
    let (verifier, challenge) = pkce();
    let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let mut url = url::Url::parse(&sim.authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", demo::CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Request { url: url.to_string(), state, nonce, verifier }
}

fn query(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Signs in and answers the code, checking the redirect.
async fn code_for(sim: &OidcSim, req: &Request, email: &str) -> String {
    let location = sim.sign_in(&req.url, email, demo::PASSWORD).await;
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let q = query(&location);
    assert_eq!(q.get("state"), Some(&req.state));
    assert_eq!(q.get("iss"), Some(&sim.issuer()));
    q["code"].clone()
}

async fn redeem(sim: &OidcSim, code: &str, verifier: &str, secret: &str) -> (StatusCode, Value) {
    let resp = http()
        .post(sim.token_endpoint())
        .basic_auth(demo::CLIENT_ID, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn discovery_names_the_endpoints_and_what_is_supported() {
    let sim = start().await;
    let doc: Value = http().get(sim.discovery_url()).send().await.unwrap().json().await.unwrap();
    let iss = sim.issuer();
    assert_eq!(iss, sim.base_url());
    assert_eq!(doc["issuer"], iss);
    assert_eq!(doc["authorization_endpoint"], format!("{iss}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{iss}/token"));
    assert_eq!(doc["jwks_uri"], format!("{iss}/jwks"));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["grant_types_supported"], json!(["authorization_code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(doc["scopes_supported"], json!(["openid", "email"]));
    assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));

    let jwks: Value = http().get(sim.jwks_uri()).send().await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert_eq!(key["kid"], sim.kid());
    assert_eq!(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().len(), 32);
    assert_eq!(URL_SAFE_NO_PAD.decode(key["y"].as_str().unwrap()).unwrap().len(), 32);
    assert_eq!(jwks, sim.jwks());
}

#[tokio::test]
async fn the_code_flow_with_pkce_yields_an_id_token_that_verifies_against_the_jwks() {
    let sim = start().await;
    let req = authorize_request(&sim, REDIRECT);

    // The form lists the seeded users.
    let page = http().get(&req.url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(demo::APPROVER_EMAIL) && page.contains(demo::SECOND_EMAIL), "{page}");

    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    let (status, body) = redeem(&sim, &code, &req.verifier, demo::CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let id_token = body["id_token"].as_str().unwrap();

    // Verify as a relying party would: the key by kid from the JWKS, iss, aud, exp.
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let jwks: JwkSet = http().get(sim.jwks_uri()).send().await.unwrap().json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in the JWKS");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[sim.issuer()]);
    validation.set_audience(&[demo::CLIENT_ID]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims["nonce"], req.nonce);
    assert_eq!(claims["email"], demo::APPROVER_EMAIL);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["sub"], stable_sub(demo::APPROVER_EMAIL));
    assert_eq!(claims["amr"], json!(["pwd"]));
    let (iat, exp, auth_time) =
        (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap(), claims["auth_time"].as_u64().unwrap());
    assert_eq!(exp - iat, 300);
    assert!(auth_time <= iat);

    // Another audience or issuer does not verify.
    let mut other = validation.clone();
    other.set_audience(&["someone-else"]);
    assert!(jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &other).is_err());

    // The access token answers at /userinfo.
    let info: Value = http()
        .get(format!("{}/userinfo", sim.issuer()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], demo::APPROVER_EMAIL);

    // Another user gets another, stable sub.
    let req2 = authorize_request(&sim, REDIRECT);
    let code2 = code_for(&sim, &req2, "Second@Demo.invalid").await;
    let (_, body2) = redeem(&sim, &code2, &req2.verifier, demo::CLIENT_SECRET).await;
    let claims2 =
        jsonwebtoken::dangerous::insecure_decode::<Value>(body2["id_token"].as_str().unwrap()).unwrap().claims;
    assert_eq!(claims2["sub"], stable_sub(demo::SECOND_EMAIL));
    assert_eq!(claims2["email"], demo::SECOND_EMAIL);
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_and_spends_the_code() {
    let sim = start().await;
    let req = authorize_request(&sim, REDIRECT);
    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    let (other_verifier, _) = pkce();
    let (status, body) = redeem(&sim, &code, &other_verifier, demo::CLIENT_SECRET).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let (status, body) = redeem(&sim, &code, &req.verifier, demo::CLIENT_SECRET).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    // No verifier at all.
    let req = authorize_request(&sim, REDIRECT);
    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    let resp = http()
        .post(sim.token_endpoint())
        .basic_auth(demo::CLIENT_ID, Some(demo::CLIENT_SECRET))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_code_is_single_use() {
    let sim = start().await;
    let req = authorize_request(&sim, REDIRECT);
    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    let (status, _) = redeem(&sim, &code, &req.verifier, demo::CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = redeem(&sim, &code, &req.verifier, demo::CLIENT_SECRET).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn a_code_expires() {
    let sim = start_with(OidcSimConfig { code_ttl: Duration::from_millis(300), ..OidcSimConfig::default() }).await;
    let req = authorize_request(&sim, REDIRECT);
    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = redeem(&sim, &code, &req.verifier, demo::CLIENT_SECRET).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let sim = start().await;
    for uri in [
        "http://evil.invalid/cb",
        "http://127.0.0.1:8080/v1/auth/callback/x",
        "http://127.0.0.1:8080/v1/auth/callback?x=1",
    ] {
        let req = authorize_request(&sim, uri);
        let resp = http().get(&req.url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(resp.headers().get("location").is_none());
        assert!(resp.text().await.unwrap().contains("not registered"));
        match sim.try_sign_in(&req.url, demo::APPROVER_EMAIL, demo::PASSWORD).await {
            Err(SignInError::Refused { status: 400, .. }) => {}
            other => panic!("{uri}: {other:?}"),
        }
    }
    // An unknown client too.
    let req = authorize_request(&sim, REDIRECT);
    let url = req.url.replace("client_id=gatehouse", "client_id=nobody");
    assert_eq!(http().get(&url).send().await.unwrap().status(), StatusCode::BAD_REQUEST);

    // A redirect_uri at /token that differs from the authorize request's.
    sim.add_redirect_uri(demo::CLIENT_ID, "http://127.0.0.1:9999/cb");
    let req = authorize_request(&sim, REDIRECT);
    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    let resp = http()
        .post(sim.token_endpoint())
        .basic_auth(demo::CLIENT_ID, Some(demo::CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9999/cb"),
            ("code_verifier", &req.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn faulty_requests_from_a_known_client_are_redirected_back_with_an_error() {
    let sim = start().await;
    let req = authorize_request(&sim, REDIRECT);
    for (from, to, error) in [
        ("code_challenge_method=S256", "code_challenge_method=plain", "invalid_request"),
        ("scope=openid+email", "scope=email", "invalid_scope"),
        ("response_type=code", "response_type=token", "unsupported_response_type"),
    ] {
        let url = req.url.replace(from, to);
        assert_ne!(url, req.url);
        let resp = http().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(REDIRECT), "{location}");
        let q = query(&location);
        assert_eq!((q["error"].as_str(), q.get("state")), (error, Some(&req.state)));
    }
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused() {
    let sim = start().await;
    let req = authorize_request(&sim, REDIRECT);
    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    let resp = http()
        .post(sim.token_endpoint())
        .basic_auth(demo::CLIENT_ID, Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &req.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Basic"));
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_client");

    // client_secret_post: a wrong secret, then (the code was not spent by a stranger) the right one.
    let post = |secret: &'static str| {
        http().post(sim.token_endpoint()).form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &req.verifier),
            ("client_id", demo::CLIENT_ID),
            ("client_secret", secret),
        ])
    };
    let resp = post("wrong").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_client");
    let resp = post(demo::CLIENT_SECRET).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.json::<Value>().await.unwrap()["id_token"].is_string());
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again() {
    let sim = start().await;
    let req = authorize_request(&sim, REDIRECT);
    match sim.try_sign_in(&req.url, demo::APPROVER_EMAIL, "not-the-password").await {
        Err(SignInError::InvalidCredentials(msg)) => assert!(msg.contains("Wrong email or password"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match sim.try_sign_in(&req.url, "nobody@demo.invalid", demo::PASSWORD).await {
        Err(SignInError::InvalidCredentials(_)) => {}
        other => panic!("{other:?}"),
    }
    // The same request still signs in with the right password.
    let code = code_for(&sim, &req, demo::APPROVER_EMAIL).await;
    assert!(!code.is_empty());
}

#[tokio::test]
async fn the_control_api_registers_clients_and_users() {
    let sim = OidcSim::start("127.0.0.1:0".parse().unwrap(), OidcSimConfig::default()).await.unwrap();
    // Not registered yet: refused.
    let req = authorize_request(&sim, REDIRECT);
    assert_eq!(http().get(&req.url).send().await.unwrap().status(), StatusCode::BAD_REQUEST);

    let resp = http()
        .post(format!("{}/_sim/clients", sim.base_url()))
        .json(&json!({"client_id": demo::CLIENT_ID, "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["redirect_uris"], json!([REDIRECT]));
    let resp = http()
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&json!({"email": "delegate@demo.invalid", "password": "pw", "name": "Delegate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["sub"], stable_sub("delegate@demo.invalid"));

    let location = oidc_sim::try_sign_in(&req.url, "delegate@demo.invalid", "pw").await.unwrap();
    let code = query(&location)["code"].clone();
    let (status, body) = redeem(&sim, &code, &req.verifier, demo::CLIENT_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A new client needs a secret; then it works with its own credentials.
    let resp = http()
        .post(format!("{}/_sim/clients", sim.base_url()))
        .json(&json!({"client_id": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    sim.add_client(OidcClient::new("other", "other-secret", ["http://127.0.0.1:1/cb"]));
    assert!(sim.clients().iter().any(|c| c.client_id == "other"));
    assert!(!sim.add_redirect_uri("unknown", REDIRECT));
}

#[tokio::test]
async fn cancel_redirects_back_with_access_denied() {
    let sim = start().await;
    let req = authorize_request(&sim, REDIRECT);
    let page = http().get(&req.url).send().await.unwrap().text().await.unwrap();
    let request_id = page.split("name=\"request\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let resp = http()
        .post(sim.authorization_endpoint())
        .form(&[("request", request_id.as_str()), ("action", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query(resp.headers()["location"].to_str().unwrap());
    assert_eq!((q["error"].as_str(), q.get("state")), ("access_denied", Some(&req.state)));
}

#[test]
fn the_binary_prints_its_url_and_serves() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oidc-sim"))
        .args(["--listen", "127.0.0.1:0", "--redirect-uri", REDIRECT])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url =
        line.trim().strip_prefix("OIDC_SIM_URL=").unwrap_or_else(|| panic!("unexpected line: {line}")).to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (issuer, form_status) = rt.block_on(async {
        let doc: Value = http().get(format!("{url}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
        let (_, challenge) = pkce();
        let authorize = format!(
            "{url}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
            demo::CLIENT_ID,
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        );
        (doc["issuer"].clone(), http().get(authorize).send().await.unwrap().status())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(issuer, url);
    assert_eq!(form_status, StatusCode::OK);
}
