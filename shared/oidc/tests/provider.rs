//! The client against a small OpenID provider served in the test (`support`): the sign-in flow and
//! the client's authentication, discovery rules, the token endpoint's failures and redirects; and
//! the whole flow against the OpenID provider simulator.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::Error;
use domain::config::Secret;
use domain::signin::IdentityProvider;
use gatehouse_oidc::OidcClient;
use serde_json::json;
use support::{
    CLIENT_ID, CLIENT_SECRET, CODE, NONCE, Provider, REDIRECT_URI, TokenReply, VERIFIER, assert_clean, redeem,
};

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
