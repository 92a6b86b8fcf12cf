//! GitLab CI/CD ID token verification against the GitLab simulator's tokens and JWKS.

use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use domain::Error;
use domain::changes::{CiIdentity, CiJobClaims};
use gatehouse_gitlab::GitLabIdTokens;
use gitlab_sim::{Faults, GitLabSim, GitLabSimConfig, demo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const AUD: &str = "gatehouse";

async fn sim() -> GitLabSim {
    let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig::default()).await.unwrap();
    sim.seed_demo();
    sim
}

fn verifier(url: &str) -> GitLabIdTokens {
    GitLabIdTokens::new(url, AUD, Duration::from_secs(5)).unwrap()
}

fn key_fetches(sim: &GitLabSim) -> u64 {
    sim.calls().get("oauth.keys").copied().unwrap_or(0)
}

fn demo_claims() -> CiJobClaims {
    CiJobClaims {
        project_id: demo::PROJECT_ID,
        project_path: demo::PROJECT_PATH.into(),
        pipeline_id: demo::PIPELINE_ID,
        job_id: demo::JOB_ID,
        sha: demo::SHA.into(),
        ref_name: demo::REF.into(),
        ref_protected: true,
        environment: Some(demo::ENVIRONMENT.into()),
        user_login: Some("root".into()),
        user_email: Some("admin@example.com".into()),
    }
}

async fn assert_refused(v: &GitLabIdTokens, token: &str, what: &str) {
    match v.verify(token).await {
        Err(Error::Unauthorized) => {}
        other => panic!("{what}: expected Unauthorized, got {other:?}"),
    }
}

/// The decoded payload of a JWT.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A fresh RSA key that GitLab never published, as a jsonwebtoken signer.
fn foreign_rsa_key() -> EncodingKey {
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8 = pair.as_der().unwrap();
    let body = STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn a_job_token_verifies_with_its_claims() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    let claims = v.verify(&sim.id_token(demo::JOB_ID, AUD)).await.unwrap();
    assert_eq!(claims, demo_claims());
    assert_eq!(claims.sha, "af5b13261899fb2c0db30abdd0af8b07cb44fdc5");

    // The second job, on another pipeline and commit.
    let second = v.verify(&sim.id_token(demo::SECOND_JOB_ID, AUD)).await.unwrap();
    assert_eq!(second.job_id, demo::SECOND_JOB_ID);
    assert_eq!(second.pipeline_id, demo::SECOND_PIPELINE_ID);
    assert_eq!(second.sha, demo::SECOND_SHA);
}

#[tokio::test]
async fn environment_and_ref_protection_follow_the_job() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    assert!(sim.set_job_environment(demo::PROJECT_ID, demo::JOB_ID, None));
    assert!(sim.set_pipeline_ref_protected(demo::PROJECT_ID, demo::PIPELINE_ID, false));
    let claims = v.verify(&sim.id_token(demo::JOB_ID, AUD)).await.unwrap();
    assert_eq!(claims.environment, None);
    assert!(!claims.ref_protected);
    assert_eq!(claims.project_id, demo::PROJECT_ID);
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    assert_refused(&v, &sim.id_token(demo::JOB_ID, "vault"), "another aud").await;
    assert_refused(&v, &sim.id_token(demo::JOB_ID, "gatehouse-other"), "a longer aud").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    let expired = sim.try_id_token(demo::JOB_ID, AUD, -120).unwrap();
    assert_refused(&v, &expired, "expired").await;
    // Within the leeway it still passes (clock skew).
    let just = sim.try_id_token(demo::JOB_ID, AUD, -5).unwrap();
    v.verify(&just).await.unwrap();
}

#[tokio::test]
async fn a_token_of_another_gitlab_is_refused_and_refetches_the_keys_at_most_once_a_minute() {
    let sim = sim().await;
    let other = self::sim().await;
    let v = verifier(&sim.issuer());
    v.verify(&sim.id_token(demo::JOB_ID, AUD)).await.unwrap();
    assert_eq!(key_fetches(&sim), 1);

    // Another instance's token: an unknown kid (and issuer). The keys are fetched again once, in
    // case GitLab rotated its key...
    let foreign = other.id_token(demo::JOB_ID, AUD);
    assert_refused(&v, &foreign, "another instance's token").await;
    assert_eq!(key_fetches(&sim), 2);
    // ...but not again within the minute.
    assert_refused(&v, &foreign, "another instance's token, again").await;
    assert_refused(&v, &other.id_token(demo::SECOND_JOB_ID, AUD), "another one").await;
    assert_eq!(key_fetches(&sim), 2);
    assert_eq!(key_fetches(&other), 0);

    // The same token with this instance's kid and issuer, signed by the other key.
    let mut header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(foreign.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"] = json!(sim.kid());
    let mut claims = payload(&foreign);
    claims["iss"] = json!(sim.issuer());
    let forged = format!("{}.{}.{}", b64_json(&header), b64_json(&claims), foreign.split('.').nth(2).unwrap());
    assert_refused(&v, &forged, "another instance's signature under this kid").await;

    // Signed properly by a key GitLab never published, under GitLab's kid.
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(sim.kid());
    let own = jsonwebtoken::encode(&h, &payload(&sim.id_token(demo::JOB_ID, AUD)), &foreign_rsa_key()).unwrap();
    assert_refused(&v, &own, "a token signed by an unpublished key").await;
    assert_eq!(key_fetches(&sim), 2);
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    let token = sim.id_token(demo::JOB_ID, AUD);
    let parts: Vec<&str> = token.split('.').collect();
    for (field, value) in [
        ("project_id", json!("1")),
        ("ref", json!("feature-1")),
        ("environment", json!("staging")),
        ("job_id", json!("77002")),
    ] {
        let mut claims = payload(&token);
        claims[field] = value;
        let tampered = format!("{}.{}.{}", parts[0], b64_json(&claims), parts[2]);
        assert_refused(&v, &tampered, field).await;
    }
    // A flipped signature byte; a truncated token; junk.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    assert_refused(&v, &format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig)), "signature").await;
    assert_refused(&v, &format!("{}.{}", parts[0], parts[1]), "two parts").await;
    assert_refused(&v, &format!("{}.{}.", parts[0], parts[1]), "no signature").await;
    for junk in ["", "   ", "not-a-jwt", "a.b.c", &"x".repeat(20_000)] {
        assert_refused(&v, junk, "junk").await;
    }
    // The genuine token still verifies.
    v.verify(&token).await.unwrap();
}

#[tokio::test]
async fn alg_none_and_hmac_forgeries_are_refused() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    let claims = payload(&sim.id_token(demo::JOB_ID, AUD));
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": sim.kid()});
        let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&claims));
        assert_refused(&v, &unsigned, alg).await;
    }
    // HS256 keyed with the public key's material (the classic key-confusion attack) or anything.
    let jwk = &sim.jwks()["keys"][0];
    for secret in
        [jwk["n"].as_str().unwrap().as_bytes().to_vec(), serde_json::to_vec(jwk).unwrap(), b"gatehouse".to_vec()]
    {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut h = Header::new(alg);
            h.kid = Some(sim.kid());
            let forged = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&secret).unwrap()).unwrap();
            assert_refused(&v, &forged, &format!("{alg:?}")).await;
        }
    }
    // An RS256 header with the kid left out.
    let token = sim.id_token(demo::JOB_ID, AUD);
    let parts: Vec<&str> = token.split('.').collect();
    let no_kid = format!("{}.{}.{}", b64_json(&json!({"alg": "RS256", "typ": "JWT"})), parts[1], parts[2]);
    assert_refused(&v, &no_kid, "no kid").await;
}

#[tokio::test]
async fn the_issuer_must_be_the_configured_gitlab_url() {
    let sim = sim().await;
    let token = sim.id_token(demo::JOB_ID, AUD);
    // Same server, another name: the keys are found, the issuer differs.
    let port = sim.issuer().rsplit(':').next().unwrap().to_string();
    let v = verifier(&format!("http://localhost:{port}"));
    assert_refused(&v, &token, "issuer mismatch").await;
    assert_eq!(key_fetches(&sim), 1);
    // A trailing slash in the setting is not part of the issuer.
    let v = verifier(&format!("{}/", sim.issuer()));
    assert_eq!(v.issuer(), sim.issuer());
    assert_eq!(v.jwks_url(), sim.jwks_uri());
    assert_eq!(v.verify(&token).await.unwrap(), demo_claims());
}

#[tokio::test]
async fn the_keys_are_fetched_once_for_many_tokens() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    assert_eq!(key_fetches(&sim), 0, "nothing is fetched before the first token");
    for _ in 0..5 {
        v.verify(&sim.id_token(demo::JOB_ID, AUD)).await.unwrap();
        v.verify(&sim.id_token(demo::SECOND_JOB_ID, AUD)).await.unwrap();
    }
    assert_refused(&v, &sim.id_token(demo::JOB_ID, "vault"), "wrong aud").await;
    assert_eq!(key_fetches(&sim), 1);
}

#[tokio::test]
async fn gitlab_failing_to_serve_its_keys_is_an_upstream_error() {
    let sim = sim().await;
    let token = sim.id_token(demo::JOB_ID, AUD);
    sim.set_faults(Faults { status: Some(503), only: Some("oauth.keys".into()), ..Faults::default() });
    let v = verifier(&sim.issuer());
    match v.verify(&token).await {
        Err(Error::Upstream { system, detail, .. }) => {
            assert_eq!(system, "GitLab");
            assert!(detail.contains("/oauth/discovery/keys") && detail.contains("503"), "{detail}");
            assert!(!detail.contains(&token));
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
    // Once GitLab serves them again, the token verifies.
    sim.set_faults(Faults::default());
    assert_eq!(v.verify(&token).await.unwrap(), demo_claims());

    // Nobody listening at all.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    match verifier(&closed).verify(&token).await {
        Err(Error::Upstream { system, .. }) => assert_eq!(system, "GitLab"),
        other => panic!("expected an upstream error, got {other:?}"),
    }
    // A token refused before any key is needed is Unauthorized even then.
    assert_refused(&verifier(&closed), "not-a-jwt", "junk while GitLab is down").await;
}

#[tokio::test]
async fn debug_shows_the_configuration_not_the_keys() {
    let sim = sim().await;
    let v = verifier(&sim.issuer());
    v.verify(&sim.id_token(demo::JOB_ID, AUD)).await.unwrap();
    let shown = format!("{v:?}");
    assert!(shown.contains(&sim.issuer()) && shown.contains(AUD), "{shown}");
    let n = sim.jwks()["keys"][0]["n"].as_str().unwrap().to_string();
    assert!(!shown.contains(&n[..32]) && !shown.contains("kty") && !shown.contains(&sim.kid()), "{shown}");
}
