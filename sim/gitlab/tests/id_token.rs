//! ID tokens over HTTP, checked as a relying party checks them (discovery, JWKS, RS256 with
//! jsonwebtoken), playing jobs, and the demo's pipelines.

use std::time::Duration;

use gitlab_sim::{Faults, GitLabSim, GitLabSimConfig, UNPLAYABLE_JOB, demo};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "glpat-sim-test";
const AUD: &str = "gatehouse";

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn start() -> GitLabSim {
    let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig { token: TOKEN.into() }).await.unwrap();
    sim.seed_demo();
    sim
}

async fn get(url: &str) -> (StatusCode, Value) {
    let resp = http().get(url).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn play(sim: &GitLabSim, job: u64) -> (StatusCode, Value) {
    let url = format!("{}/api/v4/projects/{}/jobs/{job}/play", sim.base_url(), demo::PROJECT_ID);
    let resp = http().post(url).header("PRIVATE-TOKEN", TOKEN).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET /_sim/id_token` for `job` and [`AUD`] (plus `extra` query parts).
async fn token_of(sim: &GitLabSim, job: u64, extra: &str) -> String {
    let (status, body) = get(&format!("{}/_sim/id_token?job_id={job}&aud={AUD}{extra}", sim.base_url())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// Verifies `token` as Gatehouse would: issuer from discovery, key from its `jwks_uri` by `kid`.
async fn verify(issuer_url: &str, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let (status, discovery) = get(&format!("{issuer_url}/.well-known/openid-configuration")).await;
    assert_eq!(status, StatusCode::OK);
    let jwks: JwkSet = http().get(discovery["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[discovery["issuer"].as_str().unwrap()]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = 0;
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

#[tokio::test]
async fn discovery_and_jwks_are_where_gitlab_serves_them() {
    let sim = start().await;
    let base = sim.base_url();
    let (status, discovery) = get(&sim.discovery_url()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(discovery["issuer"], base);
    assert_eq!(discovery["jwks_uri"], format!("{base}/oauth/discovery/keys"));
    assert_eq!(discovery["jwks_uri"], sim.jwks_uri());
    assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["RS256"]));
    let (status, keys) = get(&sim.jwks_uri()).await;
    assert_eq!(status, StatusCode::OK);
    let key = &keys["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert_eq!(key["kid"], sim.kid());
    assert_eq!(key["e"], "AQAB");
    assert_eq!(keys, sim.jwks());
    assert_eq!(get(&format!("{base}/-/jwks")).await, (StatusCode::OK, keys));
    // Public: no token needed, but counted.
    assert_eq!(sim.calls().get("oauth.keys"), Some(&2));
    assert_eq!(sim.calls().get("openid.configuration"), Some(&1));
    assert_eq!(sim.issuer(), base);
}

#[tokio::test]
async fn the_verify_jobs_tokens_carry_gitlabs_claims() {
    let sim = start().await;
    let base = sim.base_url();
    let token = token_of(&sim, demo::JOB_ID, "").await;
    let c = verify(&base, &token).await.unwrap();
    let expected = [
        ("iss", base.as_str()),
        ("aud", AUD),
        ("sub", "project_path:acme/shop:ref_type:branch:ref:main"),
        ("namespace_id", "4240"),
        ("namespace_path", "acme"),
        ("project_id", "4242"),
        ("project_path", "acme/shop"),
        ("user_id", "1"),
        ("user_login", "root"),
        ("user_email", "admin@example.com"),
        ("pipeline_id", "900001"),
        ("pipeline_source", "push"),
        ("job_id", "77001"),
        ("ref", "main"),
        ("ref_type", "branch"),
        ("ref_path", "refs/heads/main"),
        ("ref_protected", "true"),
        ("environment", "production"),
        ("environment_protected", "true"),
        ("deployment_tier", "production"),
        ("sha", demo::SHA),
        ("runner_environment", "self-hosted"),
        ("ci_config_sha", demo::SHA),
    ];
    for (claim, value) in expected {
        assert_eq!(c[claim], value, "{claim} in {c}");
    }
    assert!(c["runner_id"].is_u64());
    assert_eq!(c["jti"].as_str().unwrap().len(), 36);
    let (iat, nbf, exp) = (c["iat"].as_i64().unwrap(), c["nbf"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert_eq!((nbf, exp), (iat - 5, iat + gitlab_sim::ID_TOKEN_TTL_SECS));
    assert!(c["ci_config_ref_uri"].as_str().unwrap().ends_with("/acme/shop//.gitlab-ci.yml@refs/heads/main"));

    // The second pipeline: another commit, its own job, also on protected main.
    let c = verify(&base, &token_of(&sim, demo::SECOND_JOB_ID, "").await).await.unwrap();
    for (claim, value) in [
        ("pipeline_id", "900002"),
        ("job_id", "77002"),
        ("sha", demo::SECOND_SHA),
        ("ref_protected", "true"),
        ("environment", "production"),
    ] {
        assert_eq!(c[claim], value, "{claim} in {c}");
    }
    assert_ne!(demo::SECOND_SHA, demo::SHA);

    // The Rust API signs the same way.
    let c = verify(&base, &sim.id_token(demo::JOB_ID, AUD)).await.unwrap();
    assert_eq!(c["job_id"], "77001");
}

#[tokio::test]
async fn a_job_without_environment_on_an_unprotected_branch() {
    let sim = start().await;
    sim.add_pipeline(demo::PROJECT_ID, 900003, "1111111111111111111111111111111111111111", "feature-x", "running");
    sim.add_job(demo::PROJECT_ID, 77003, 900003, "test", "running");
    let c = verify(&sim.base_url(), &sim.id_token(77003, AUD)).await.unwrap();
    assert_eq!(c["ref_protected"], "false");
    assert_eq!(c["ref_path"], "refs/heads/feature-x");
    assert_eq!(c["sub"], "project_path:acme/shop:ref_type:branch:ref:feature-x");
    for claim in ["environment", "environment_protected", "deployment_tier"] {
        assert!(c.get(claim).is_none(), "{claim} in {c}");
    }
    // Protection can be changed, and an environment named later.
    assert!(sim.set_pipeline_ref_protected(demo::PROJECT_ID, 900003, true));
    assert!(sim.set_job_environment(demo::PROJECT_ID, 77003, Some("staging")));
    let c = verify(&sim.base_url(), &sim.id_token(77003, AUD)).await.unwrap();
    assert_eq!(
        (c["ref_protected"].as_str(), c["environment"].as_str(), c["environment_protected"].as_str()),
        (Some("true"), Some("staging"), Some("false"))
    );
    assert_eq!(c["deployment_tier"], "staging");
}

#[tokio::test]
async fn bad_tokens_are_told_apart() {
    let sim = start().await;
    let base = sim.base_url();
    // Expired.
    let expired = token_of(&sim, demo::JOB_ID, "&exp_secs=-60").await;
    let err = verify(&base, &expired).await.unwrap_err();
    assert_eq!(*err.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature);
    // Another audience.
    let (status, body) = get(&format!("{base}/_sim/id_token?job_id={}&aud=someone-else", demo::JOB_ID)).await;
    assert_eq!(status, StatusCode::OK);
    let err = verify(&base, body["token"].as_str().unwrap()).await.unwrap_err();
    assert_eq!(*err.kind(), jsonwebtoken::errors::ErrorKind::InvalidAudience);
    // Another GitLab's key (and issuer): its kid is not in this JWKS.
    let other = start().await;
    assert_ne!(other.kid(), sim.kid());
    let foreign = other.id_token(demo::JOB_ID, AUD);
    let header = jsonwebtoken::decode_header(&foreign).unwrap();
    let jwks: JwkSet = serde_json::from_value(sim.jwks()).unwrap();
    assert!(jwks.find(&header.kid.unwrap()).is_none());
    assert!(verify(&other.base_url(), &foreign).await.is_ok());
}

#[tokio::test]
async fn the_id_token_control_call_checks_its_query() {
    let sim = start().await;
    let base = sim.base_url();
    assert_eq!(
        get(&format!("{base}/_sim/id_token?job_id=1&aud={AUD}")).await,
        (StatusCode::NOT_FOUND, json!({"message": "404 Not found"}))
    );
    assert!(sim.try_id_token(1, AUD, 60).is_none());
    for query in ["aud=x", "job_id=x&aud=x", "job_id=77001", "job_id=77001&aud=x&exp_secs=soon"] {
        let (status, body) = get(&format!("{base}/_sim/id_token?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body["error"].is_string(), "{query}: {body}");
    }
    // Several audiences: an array, as GitLab writes them.
    let (_, body) = get(&format!("{base}/_sim/id_token?job_id=77001&aud={AUD}&aud=vault")).await;
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    use base64::Engine;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["aud"], json!([AUD, "vault"]));
}

#[tokio::test]
async fn a_manual_job_plays_once_then_gitlab_refuses() {
    let sim = start().await;
    let base = sim.base_url();
    let job_url = format!("{base}/_sim/jobs/{}", demo::JOB_ID);
    let (status, before) = get(&job_url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&before["id"], &before["status"], &before["pipeline_id"], &before["name"], &before["play_count"]),
        (&json!(77001), &json!("manual"), &json!(900001), &json!("gatehouse:verify"), &json!(0))
    );
    assert_eq!(
        (&before["sha"], &before["ref"], &before["ref_protected"]),
        (&json!(demo::SHA), &json!("main"), &json!(true))
    );

    let (status, played) = play(&sim, demo::JOB_ID).await;
    assert_eq!((status, played["status"].as_str()), (StatusCode::OK, Some("pending")));
    let unplayable = json!({"message": "400 Bad request - Unplayable Job"});
    assert_eq!(unplayable["message"], UNPLAYABLE_JOB);
    assert_eq!(play(&sim, demo::JOB_ID).await, (StatusCode::BAD_REQUEST, unplayable.clone()));
    sim.set_job_status(demo::PROJECT_ID, demo::JOB_ID, "running");
    assert_eq!(play(&sim, demo::JOB_ID).await, (StatusCode::BAD_REQUEST, unplayable.clone()));
    let (_, after) = get(&job_url).await;
    assert_eq!((&after["status"], &after["play_count"]), (&json!("running"), &json!(1)), "played exactly once");
    assert_eq!(sim.job_by_id(demo::JOB_ID).unwrap().play_count, 1);
    assert_eq!(sim.calls().get("jobs.play"), Some(&3));

    // The job now runs as the user who played it, and its token says so.
    let c = verify(&base, &sim.id_token(demo::JOB_ID, AUD)).await.unwrap();
    assert_eq!((c["user_login"].as_str(), c["user_id"].as_str()), (Some(gitlab_sim::SIM_USERNAME), Some("4243")));

    // A job that is not manual never plays; a finished manual one may run again, as in GitLab.
    sim.add_job(demo::PROJECT_ID, 77004, demo::PIPELINE_ID, "build", "success");
    assert_eq!(play(&sim, 77004).await, (StatusCode::BAD_REQUEST, unplayable));
    sim.set_job_status(demo::PROJECT_ID, demo::JOB_ID, "success");
    assert_eq!(play(&sim, demo::JOB_ID).await.0, StatusCode::OK);
    assert_eq!(sim.job_by_id(demo::JOB_ID).unwrap().play_count, 2);

    assert_eq!(get(&format!("{base}/_sim/jobs/1")).await, (StatusCode::NOT_FOUND, json!({"message": "404 Not found"})));
}

#[tokio::test]
async fn the_demo_seeds_both_pipelines() {
    let sim = start().await;
    let base = sim.base_url();
    for (job, pipeline, sha) in [
        (demo::JOB_ID, demo::PIPELINE_ID, demo::SHA),
        (demo::SECOND_JOB_ID, demo::SECOND_PIPELINE_ID, demo::SECOND_SHA),
    ] {
        let (status, j) = get(&format!("{base}/_sim/jobs/{job}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (&j["status"], &j["name"], &j["pipeline_id"], &j["sha"], &j["environment"]),
            (&json!("manual"), &json!("gatehouse:verify"), &json!(pipeline), &json!(sha), &json!("production"))
        );
        let resp = http()
            .get(format!("{base}/api/v4/projects/{}/pipelines/{pipeline}", demo::PROJECT_ID))
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
            .unwrap();
        let p: Value = resp.json().await.unwrap();
        assert_eq!((&p["sha"], &p["ref"]), (&json!(sha), &json!("main")));
    }
}

#[tokio::test]
async fn oidc_endpoints_get_faults_only_when_named() {
    let sim = start().await;
    sim.set_faults(Faults { status: Some(503), ..Faults::default() });
    assert_eq!(get(&sim.jwks_uri()).await.0, StatusCode::OK, "a fault for every API call spares the JWKS");
    sim.set_faults(Faults {
        status: Some(503),
        only: Some("oauth.keys".into()),
        remaining: Some(1),
        ..Faults::default()
    });
    assert_eq!(get(&sim.jwks_uri()).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&sim.jwks_uri()).await.0, StatusCode::OK);
}
